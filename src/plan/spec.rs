//! Validated probe specifications, one type per probe kind.

use std::net::SocketAddr;

use super::parts::{Pattern, Source, TlsSpec};

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/2 when the server offers it over TLS, else HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only (prior knowledge on cleartext).
    Http2,
}

/// What a JSON field must be.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonExpectation {
    /// The field exists.
    Exists,
    /// The field equals this value.
    Equals(serde_json::Value),
}

/// One assertion on a JSON response body.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonAssertion {
    /// RFC 6901 JSON pointer, e.g. `/status/db`.
    pub pointer: String,
    /// What the field must be.
    pub expect: JsonExpectation,
}

/// The most redirects a probe may follow (`max_redirects`).
pub const MAX_REDIRECTS: u32 = 20;

/// One configured request header.
#[derive(Clone, PartialEq)]
pub struct RequestHeader {
    /// Header name as configured.
    pub name: String,
    /// Header value; may be a secret.
    pub value: String,
    /// Sent only to the configured URL's origin: its value came from a file
    /// or the environment, or it carries credentials by name.
    pub sensitive: bool,
}

impl std::fmt::Debug for RequestHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.sensitive {
            "<secret>"
        } else {
            &self.value
        };
        write!(f, "{}: {value}", self.name)
    }
}

/// Header names that carry credentials whatever their source.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

impl RequestHeader {
    /// A header; `secret` marks a value read from a file or the environment.
    pub fn new(name: &str, value: String, secret: bool) -> Self {
        let credential = CREDENTIAL_HEADERS
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name));
        RequestHeader {
            name: name.to_string(),
            value,
            sensitive: secret || credential,
        }
    }
}

/// An HTTP or HTTPS probe.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    /// The URL (http or https).
    pub url: url::Url,
    /// Request method.
    pub method: http::Method,
    /// Extra request headers, in configuration order.
    pub headers: Vec<RequestHeader>,
    /// Request body.
    pub body: Option<String>,
    /// Status codes that count as success; empty means any 2xx.
    pub valid_status: Vec<u16>,
    /// Follow redirects (up to `max_redirects`).
    pub follow_redirects: bool,
    /// Redirect limit, at most [`MAX_REDIRECTS`].
    pub max_redirects: u32,
    /// Follow a redirect from https to plain http (off: such a redirect fails).
    pub allow_https_downgrade: bool,
    /// Every pattern must match the body.
    pub body_must_match: Vec<Pattern>,
    /// No pattern may match the body.
    pub body_must_not_match: Vec<Pattern>,
    /// JSON assertions.
    pub json: Vec<JsonAssertion>,
    /// Fail when the body carries a resident registration number.
    pub personal_data_guard: bool,
    /// Bodies larger than this fail the probe; reading stops there.
    pub max_body_bytes: u64,
    /// TLS settings (used for https URLs).
    pub tls: TlsSpec,
    /// HTTP version policy.
    pub version: HttpVersion,
    /// Probe every address the name resolves to.
    pub all_addresses: bool,
    /// Source address/interface.
    pub source: Source,
}

/// One step of a TCP exchange.
#[derive(Debug, Clone, PartialEq)]
pub enum ExchangeStep {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Read until this pattern matches what was received in this step.
    Expect(Pattern),
}

/// A TCP connect probe.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpSpec {
    /// Host (name or address).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Wrap the connection in TLS.
    pub tls: Option<TlsSpec>,
    /// Send/expect steps after connecting.
    pub exchange: Vec<ExchangeStep>,
    /// Source address/interface.
    pub source: Source,
}

/// Transport for DNS probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsProtocol {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// A DNS query probe.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsSpec {
    /// The server to ask.
    pub server: SocketAddr,
    /// Transport.
    pub protocol: DnsProtocol,
    /// The name to query, fully qualified (checked when the config loads).
    pub name: hickory_resolver::proto::rr::Name,
    /// The record type (A, AAAA, MX, …).
    pub record_type: hickory_resolver::proto::rr::RecordType,
    /// Response codes that count as success.
    pub valid_rcodes: Vec<hickory_resolver::proto::op::ResponseCode>,
    /// Fewer answers than this fail the probe.
    pub min_answers: usize,
    /// Each of these must equal one answer's data.
    pub answers_include: Vec<String>,
    /// Each pattern must match one answer's data.
    pub answers_match: Vec<Pattern>,
    /// Where the query leaves from (address, interface, fwmark).
    pub source: Source,
}

/// An ICMP echo probe.
#[derive(Debug, Clone, PartialEq)]
pub struct IcmpSpec {
    /// Host (name or address).
    pub host: String,
    /// Echo requests per probe.
    pub packets: u16,
    /// Fail when more than this fraction is lost (0.0..1.0).
    pub max_loss: f64,
    /// Payload bytes per request.
    pub payload_size: usize,
    /// Set the don't-fragment bit (IPv4), so oversized paths fail visibly.
    pub dont_fragment: bool,
    /// When the echoes would fail the probe, this many more are sent 1 ms
    /// apart and the probe fails only if every one of them is lost too: a
    /// lost echo under random loss is not a dead path (0 = off). Bursts
    /// share a budget per destination and path; one it cannot pay for is
    /// not sent, and the probe fails.
    pub confirm: u16,
    /// Source address/interface.
    pub source: Source,
}

/// What to probe, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    /// HTTP or HTTPS.
    Http(Box<HttpSpec>),
    /// TCP connect (+TLS, +exchange).
    Tcp(TcpSpec),
    /// DNS query.
    Dns(DnsSpec),
    /// ICMP echo.
    Icmp(IcmpSpec),
    /// Canary identities through an HTTP flow.
    Identity(Box<super::identity::IdentitySpec>),
}

impl ProbeSpec {
    /// Sends this probe through `path`: its mark, interface and source.
    pub fn bind_to(&mut self, path: &super::PathSpec) {
        let source = match self {
            ProbeSpec::Http(s) => &mut s.source,
            ProbeSpec::Tcp(s) => &mut s.source,
            ProbeSpec::Dns(s) => &mut s.source,
            ProbeSpec::Icmp(s) => &mut s.source,
            ProbeSpec::Identity(s) => &mut s.source,
        };
        // Both are honoured: the mark picks the path's routing table, and
        // binding to the interface keeps the probe from leaving any other
        // way should that table be wrong (then the probe fails, visibly).
        source.mark = path.fwmark;
        source.interface = path.interface.clone();
        if path.source.is_some() {
            source.address = path.source;
        }
    }

    /// The kind label: `http`, `tcp`, `dns`, `icmp` or `identity`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Http(_) => "http",
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Dns(_) => "dns",
            ProbeSpec::Icmp(_) => "icmp",
            ProbeSpec::Identity(_) => "identity",
        }
    }
}
