//! One target's probe: exactly one of `http`, `tcp`, `dns`, `icmp`, `identity`.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RecordType;

use super::document::Document;
use super::error::ConfigError;
use super::raw::{RawDns, RawHttp, RawIcmp, RawTarget, RawTcp};
use super::tls::{DEFAULT_MAX_BODY_BYTES, tls};
use super::values;
use crate::plan::{
    DnsProtocol, DnsSpec, ExchangeStep, HttpSpec, HttpVersion, IcmpSpec, JsonAssertion,
    JsonExpectation, MAX_REDIRECTS, ProbeSpec, RequestHeader, TcpSpec,
};

/// The most echoes one ICMP probe sends.
pub const MAX_ICMP_PACKETS: u16 = 100;
/// Most confirmation echoes an ICMP probe may send (below the prober's
/// budget of 30 a second per destination and path, so a burst fits).
pub const MAX_ICMP_CONFIRM: u16 = 16;
/// The largest ICMP payload (below the 65,507-byte IPv4 maximum, with room for headers).
pub const MAX_ICMP_PAYLOAD: usize = 65_000;
/// The largest `min_answers` of a DNS probe.
pub const MAX_DNS_ANSWERS: usize = 1_000;
/// The largest `max_body_bytes`: a probe reads at most this much per response.
pub const MAX_BODY_BYTES: u64 = 64 << 20;

/// Builds the probe of target `rt` found at `path`, adding its errors to `errors`.
pub fn probe(
    doc: &Document,
    path: &str,
    rt: &RawTarget,
    timeout: std::time::Duration,
    errors: &mut Vec<ConfigError>,
) -> Option<ProbeSpec> {
    match one_probe(doc, path, rt, timeout, errors) {
        Ok(p) => p,
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

fn one_probe(
    doc: &Document,
    path: &str,
    rt: &RawTarget,
    timeout: std::time::Duration,
    errors: &mut Vec<ConfigError>,
) -> Result<Option<ProbeSpec>, ConfigError> {
    let given: Vec<&str> = [
        rt.http.as_ref().map(|_| "http"),
        rt.tcp.as_ref().map(|_| "tcp"),
        rt.dns.as_ref().map(|_| "dns"),
        rt.icmp.as_ref().map(|_| "icmp"),
        rt.identity.as_ref().map(|_| "identity"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() != 1 {
        return Err(doc.error_at_key(
            path,
            format!(
                "target {:?} has {} probe kinds ({}); valid: exactly one of http, tcp, dns, icmp, identity",
                rt.name,
                given.len(),
                if given.is_empty() {
                    "none".into()
                } else {
                    given.join(", ")
                }
            ),
        ));
    }
    let p = |k: &str| format!("{path}.{k}");
    if let Some(h) = &rt.http {
        return http(doc, &p("http"), h).map(|s| Some(ProbeSpec::Http(Box::new(s))));
    }
    if let Some(t) = &rt.tcp {
        return tcp(doc, &p("tcp"), t).map(|s| Some(ProbeSpec::Tcp(s)));
    }
    if let Some(d) = &rt.dns {
        return dns(doc, &p("dns"), d).map(|s| Some(ProbeSpec::Dns(s)));
    }
    if let Some(i) = &rt.identity {
        return Ok(
            super::identity::identity(doc, &p("identity"), i, timeout, errors)
                .map(|s| ProbeSpec::Identity(Box::new(s))),
        );
    }
    let i = rt.icmp.as_ref().expect("exactly one kind is set");
    icmp(doc, &p("icmp"), i).map(|s| Some(ProbeSpec::Icmp(s)))
}

fn http(doc: &Document, path: &str, raw: &RawHttp) -> Result<HttpSpec, ConfigError> {
    let key = |k: &str| format!("{path}.{k}");
    let url = url::Url::parse(&raw.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            doc.error_at(
                &key("url"),
                format!("{:?} is not a valid URL; valid: an absolute http:// or https:// URL such as https://portal.example/health", redact_userinfo(&raw.url)),
            )
        })?;
    if !url.username().is_empty() || url.password().is_some() {
        // Never echoed: the user part may be a password.
        return Err(doc.error_at(
            &key("url"),
            "the URL carries credentials (user:password@), which would not be sent; valid: a URL without them, and the credentials in `headers`, e.g. Authorization: {file: /etc/gwanje/portal.auth}",
        ));
    }
    let method_text = raw.method.as_deref().unwrap_or("GET");
    let method = http::Method::from_bytes(method_text.as_bytes())
        .ok()
        .filter(|m| method_text.chars().all(|c| c.is_ascii_uppercase()) && !m.as_str().is_empty())
        .ok_or_else(|| {
            doc.error_at(
                &key("method"),
                format!("{method_text:?} is not an HTTP method; valid: GET, HEAD, POST, PUT, …"),
            )
        })?;
    let mut headers = Vec::with_capacity(raw.headers.len());
    for (name, value) in &raw.headers {
        let hpath = format!("{}.{name}", key("headers"));
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(doc.error_at_key(&hpath, format!("{name:?} is not a valid header name")));
        }
        let v = values::secret(doc, &hpath, value)?;
        if http::HeaderValue::from_str(&v).is_err() {
            // The value may be a secret: describe it without echoing it.
            return Err(doc.error_at(
                &hpath,
                "the header value has characters not allowed in HTTP headers",
            ));
        }
        let secret = !matches!(value, super::raw::RawSecret::Inline(_));
        headers.push(RequestHeader::new(name, v, secret));
    }
    for (i, s) in raw.valid_status.iter().enumerate() {
        if !(100..=599).contains(s) {
            return Err(doc.error_at(
                &format!("{}[{i}]", key("valid_status")),
                format!("{s} is not an HTTP status; valid: 100 to 599"),
            ));
        }
    }
    let patterns = |name: &str, list: &[String]| -> Result<Vec<_>, ConfigError> {
        list.iter()
            .enumerate()
            .map(|(i, s)| values::pattern(doc, &format!("{}[{i}]", key(name)), s))
            .collect()
    };
    let mut json = Vec::new();
    for (i, j) in raw.json.iter().enumerate() {
        let jpath = format!("{}[{i}]", key("json"));
        if !(j.pointer.is_empty() || j.pointer.starts_with('/')) {
            return Err(doc.error_at(
                &format!("{jpath}.pointer"),
                format!("{:?} is not a JSON pointer; valid: RFC 6901 pointers such as /status or /checks/0/ok", j.pointer),
            ));
        }
        let expect = match (&j.equals, j.exists) {
            (Some(v), None) => JsonExpectation::Equals(
                serde_json::to_value(v)
                    .map_err(|e| doc.error_at(&format!("{jpath}.equals"), e.to_string()))?,
            ),
            (None, Some(true)) => JsonExpectation::Exists,
            _ => {
                return Err(doc.error_at_key(
                    &jpath,
                    "give exactly one of `equals: <value>` or `exists: true`",
                ));
            }
        };
        json.push(JsonAssertion {
            pointer: j.pointer.clone(),
            expect,
        });
    }
    let version = match raw.http_version.as_deref() {
        None | Some("auto") => HttpVersion::Auto,
        Some("1.1") => HttpVersion::Http1,
        Some("2") => HttpVersion::Http2,
        Some(v) => {
            return Err(doc.error_at(
                &key("http_version"),
                format!("{v:?} is not an HTTP version; valid: auto, \"1.1\", \"2\""),
            ));
        }
    };
    let max_body_bytes = values::in_range(
        doc,
        &key("max_body_bytes"),
        raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        1..=MAX_BODY_BYTES,
        "bytes",
    )?;
    let max_redirects = values::in_range(
        doc,
        &key("max_redirects"),
        raw.max_redirects.unwrap_or(10),
        0..=MAX_REDIRECTS,
        "redirects",
    )?;
    Ok(HttpSpec {
        method,
        headers,
        body: raw.body.clone(),
        valid_status: raw.valid_status.clone(),
        follow_redirects: raw.follow_redirects.unwrap_or(true),
        max_redirects,
        allow_https_downgrade: raw.allow_https_downgrade,
        body_must_match: patterns("body_must_match", &raw.body_must_match)?,
        body_must_not_match: patterns("body_must_not_match", &raw.body_must_not_match)?,
        json,
        personal_data_guard: raw.personal_data_guard.unwrap_or(true),
        max_body_bytes,
        tls: tls(doc, &key("tls"), raw.tls.as_ref())?,
        version,
        all_addresses: raw.all_addresses,
        source: values::source(doc, &key("source"), raw.source.as_ref())?,
        url,
    })
}

fn tcp(doc: &Document, path: &str, raw: &RawTcp) -> Result<TcpSpec, ConfigError> {
    let (host, port) = values::host_port(doc, &format!("{path}.address"), &raw.address)?;
    let mut exchange = Vec::new();
    for (i, step) in raw.exchange.iter().enumerate() {
        let spath = format!("{path}.exchange[{i}]");
        exchange.push(match (&step.send, &step.expect) {
            (Some(s), None) => ExchangeStep::Send(s.clone().into_bytes()),
            (None, Some(e)) => {
                ExchangeStep::Expect(values::pattern(doc, &format!("{spath}.expect"), e)?)
            }
            _ => {
                return Err(doc.error_at_key(
                    &spath,
                    "give exactly one of `send: <text>` or `expect: <regex>`",
                ));
            }
        });
    }
    let tls = match &raw.tls {
        Some(t) => Some(tls(doc, &format!("{path}.tls"), Some(t))?),
        None => None,
    };
    Ok(TcpSpec {
        host,
        port,
        tls,
        exchange,
        source: values::source(doc, &format!("{path}.source"), raw.source.as_ref())?,
    })
}

const RCODES: &[(&str, ResponseCode)] = &[
    ("NOERROR", ResponseCode::NoError),
    ("FORMERR", ResponseCode::FormErr),
    ("SERVFAIL", ResponseCode::ServFail),
    ("NXDOMAIN", ResponseCode::NXDomain),
    ("NOTIMP", ResponseCode::NotImp),
    ("REFUSED", ResponseCode::Refused),
];

fn dns(doc: &Document, path: &str, raw: &RawDns) -> Result<DnsSpec, ConfigError> {
    let key = |k: &str| format!("{path}.{k}");
    let server = raw
        .server
        .parse::<SocketAddr>()
        .or_else(|_| raw.server.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| doc.error_at(&key("server"), format!("{:?} is not a server address; valid: an IP address with an optional port, like 198.18.0.53 or 198.18.0.53:5353", raw.server)))?;
    let protocol = match raw.protocol.as_deref() {
        None | Some("udp") => DnsProtocol::Udp,
        Some("tcp") => DnsProtocol::Tcp,
        Some(p) => {
            return Err(doc.error_at(
                &key("protocol"),
                format!("{p:?} is not a DNS transport; valid: udp, tcp"),
            ));
        }
    };
    let type_text = raw.record_type.as_deref().unwrap_or("A");
    let record_type: RecordType = type_text
        .parse()
        .ok()
        .filter(|t| !matches!(t, RecordType::Unknown(_)))
        .ok_or_else(|| doc.error_at(&key("type"), format!("{type_text:?} is not a record type; valid: A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT, …")))?;
    let mut valid_rcodes = Vec::new();
    for (i, r) in raw.valid_rcodes.iter().enumerate() {
        let code = RCODES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(r))
            .map(|(_, c)| *c)
            .ok_or_else(|| doc.error_at(&format!("{}[{i}]", key("valid_rcodes")), format!("{r:?} is not a response code; valid: NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED")))?;
        valid_rcodes.push(code);
    }
    if valid_rcodes.is_empty() {
        valid_rcodes.push(ResponseCode::NoError);
    }
    // An empty NOERROR answer usually means a broken zone, so it fails unless
    // the catalog expects something other than NOERROR.
    let default_min = usize::from(valid_rcodes == [ResponseCode::NoError]);
    let mut name = hickory_resolver::proto::rr::Name::from_ascii(&raw.name)
        .ok()
        .filter(|_| !raw.name.is_empty())
        .ok_or_else(|| {
            doc.error_at(
                &key("name"),
                format!(
                    "{:?} is not a domain name; valid: e.g. portal.example.",
                    raw.name
                ),
            )
        })?;
    name.set_fqdn(true);
    Ok(DnsSpec {
        server,
        protocol,
        name,
        record_type,
        valid_rcodes,
        min_answers: values::in_range(
            doc,
            &key("min_answers"),
            raw.min_answers.unwrap_or(default_min),
            0..=MAX_DNS_ANSWERS,
            "answers",
        )?,
        answers_include: raw.answers_include.clone(),
        answers_match: raw
            .answers_match
            .iter()
            .enumerate()
            .map(|(i, s)| values::pattern(doc, &format!("{}[{i}]", key("answers_match")), s))
            .collect::<Result<_, _>>()?,
        source: values::source(doc, &key("source"), raw.source.as_ref())?,
    })
}

fn icmp(doc: &Document, path: &str, raw: &RawIcmp) -> Result<IcmpSpec, ConfigError> {
    let key = |k: &str| format!("{path}.{k}");
    if raw.host.is_empty() {
        return Err(doc.error_at(
            &key("host"),
            "the host is empty; valid: an IP address or host name",
        ));
    }
    let packets = values::in_range(
        doc,
        &key("packets"),
        raw.packets.unwrap_or(3),
        1..=MAX_ICMP_PACKETS,
        "echoes",
    )?;
    let max_loss = raw.max_loss.unwrap_or(0.5);
    if !(0.0..1.0).contains(&max_loss) {
        return Err(doc.error_at(
            &key("max_loss"),
            format!(
                "{max_loss} is not valid; valid: a fraction from 0.0 up to (not including) 1.0"
            ),
        ));
    }
    let payload_size = values::in_range(
        doc,
        &key("payload_size"),
        raw.payload_size.unwrap_or(56),
        0..=MAX_ICMP_PAYLOAD,
        "bytes",
    )?;
    let confirm = values::in_range(
        doc,
        &key("confirm"),
        raw.confirm.unwrap_or(0),
        0..=MAX_ICMP_CONFIRM,
        "echoes",
    )?;
    Ok(IcmpSpec {
        host: raw.host.clone(),
        packets,
        max_loss,
        payload_size,
        dont_fragment: raw.dont_fragment,
        confirm,
        source: values::source(doc, &key("source"), raw.source.as_ref())?,
    })
}

/// `scheme://user:pass@host…` with the user part masked, for messages.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}
