//! What one probe reports: success or a classified failure, plus details.
//!
//! A failed probe is data, not an `Err`: the failure class is a closed set
//! and the detail is a short diagnostic that never carries response content.

use std::net::IpAddr;
use std::time::Duration;

use crate::core::FailureKind;

/// A classified failure with a short diagnostic (never response content).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The failure class.
    pub kind: FailureKind,
    /// What happened, for logs: phase, address, error text.
    pub detail: String,
}

impl Failure {
    /// A failure of `kind` described by `detail`, whose invisible and
    /// control characters (a server's text may carry them) are escaped once
    /// here, for every sink.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let detail = if detail.chars().any(crate::logging::is_invisible) {
            crate::logging::escape(&detail).to_string()
        } else {
            detail
        };
        Failure { kind, detail }
    }
}

/// Per-phase HTTP timings in seconds, as blackbox_exporter reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HttpPhases {
    /// Name resolution.
    pub resolve: f64,
    /// TCP connect.
    pub connect: f64,
    /// TLS handshake.
    pub tls: f64,
    /// Request sent until response headers arrived.
    pub processing: f64,
    /// Reading the body.
    pub transfer: f64,
}

impl HttpPhases {
    /// The phase labels, in order.
    pub const NAMES: [&'static str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];

    /// The values in the order of [`HttpPhases::NAMES`].
    pub fn values(&self) -> [f64; 5] {
        [
            self.resolve,
            self.connect,
            self.tls,
            self.processing,
            self.transfer,
        ]
    }
}

/// The first resolution of the target's name: what blackbox_exporter
/// reports as `probe_dns_lookup_time_seconds`, `probe_ip_protocol` and
/// `probe_ip_addr_hash` on every prober.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lookup {
    /// How long resolving took, seconds (an address literal takes ~0).
    pub seconds: f64,
    /// The address probed; `None` when resolution failed.
    pub ip: Option<IpAddr>,
}

impl Lookup {
    /// 4 or 6 for the address family probed (0 when resolution failed).
    pub fn protocol(&self) -> f64 {
        match self.ip {
            Some(IpAddr::V4(_)) => 4.0,
            Some(IpAddr::V6(_)) => 6.0,
            None => 0.0,
        }
    }

    /// FNV-1a (32 bit) of the address's bytes, blackbox_exporter's
    /// `probe_ip_addr_hash`: it changes when a name moves to another address.
    pub fn addr_hash(&self) -> Option<f64> {
        let bytes = match self.ip? {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let hash = bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
        });
        Some(f64::from(hash))
    }
}

/// What a TLS handshake showed: version and the presented chain's dates
/// and leaf identity (never verified-or-not; that is the probe's result).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsInfo {
    /// Negotiated version as blackbox_exporter spells it ("TLS 1.3"); `None`
    /// when the handshake did not finish.
    pub version: Option<&'static str>,
    /// Earliest `notAfter` among the presented certificates, Unix seconds.
    pub earliest_expiry: Option<i64>,
    /// Earliest `notAfter` of the chain from the leaf up, Unix seconds.
    pub chain_expiry: Option<i64>,
    /// The leaf certificate, as `probe_ssl_last_chain_info` labels it.
    pub leaf: Option<LeafInfo>,
}

/// The leaf certificate's identity, public data from the handshake.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeafInfo {
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: String,
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS subject alternative names, comma-separated.
    pub subject_alternative: String,
}

/// HTTP-specific results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpDetails {
    /// The first resolution of the URL's host.
    pub lookup: Option<Lookup>,
    /// Final status code (0 when no response).
    pub status: u16,
    /// 1.0, 1.1 or 2.0 (0 when no response).
    pub version: f64,
    /// The final response's Content-Length header (-1 when it has none,
    /// 0 when no response), as blackbox_exporter reports it.
    pub content_length: i64,
    /// Bytes of the final body read (0 when no response).
    pub body_length: i64,
    /// The final response's Last-Modified, Unix seconds.
    pub last_modified: Option<i64>,
    /// The final response came over TLS.
    pub ssl: bool,
    /// Phase timings summed over redirects.
    pub phases: HttpPhases,
    /// The last TLS handshake of the chain.
    pub tls: Option<TlsInfo>,
    /// A body regex assertion failed.
    pub failed_due_to_regex: bool,
    /// Redirects followed.
    pub redirects: u32,
    /// The personal-data guard found a resident registration number.
    pub personal_data: bool,
}

/// Per-phase DNS timings in seconds, as blackbox_exporter reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DnsPhases {
    /// Resolving the server's name.
    pub resolve: f64,
    /// Opening the socket (the TCP handshake over TCP).
    pub connect: f64,
    /// Query sent until the response arrived.
    pub request: f64,
}

/// DNS-specific results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsDetails {
    /// The server's address.
    pub lookup: Option<Lookup>,
    /// Phase timings.
    pub phases: DnsPhases,
    /// A response arrived (whatever it said).
    pub query_succeeded: bool,
    /// Records in the answer section of the asked type.
    pub answers: u32,
    /// Records in the authority section.
    pub authority: u32,
    /// Records in the additional section.
    pub additional: u32,
    /// The SOA serial when the answer carried one.
    pub serial: Option<u32>,
}

/// Round-trip statistics of the replies to one probe's echoes, seconds
/// (SmokePing's view of a path).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RttStats {
    /// Fastest reply.
    pub min: f64,
    /// Mean.
    pub avg: f64,
    /// Slowest reply.
    pub max: f64,
    /// Population standard deviation.
    pub stddev: f64,
}

impl RttStats {
    /// Statistics of `rtts`; `None` when there are none.
    pub fn of(rtts: &[f64]) -> Option<Self> {
        if rtts.is_empty() {
            return None;
        }
        let n = rtts.len() as f64;
        let avg = rtts.iter().sum::<f64>() / n;
        let var = rtts.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / n;
        Some(RttStats {
            min: rtts.iter().copied().fold(f64::INFINITY, f64::min),
            avg,
            max: rtts.iter().copied().fold(0.0, f64::max),
            stddev: var.sqrt(),
        })
    }
}

/// ICMP-specific results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IcmpDetails {
    /// The host's address.
    pub lookup: Option<Lookup>,
    /// Opening (or reusing) the socket, seconds.
    pub setup_seconds: f64,
    /// Round-trip time of the first echo answered, seconds.
    pub first_rtt: Option<f64>,
    /// IP TTL (hop limit) of that reply, when the socket shows it.
    pub reply_hop_limit: Option<u8>,
    /// Mean round-trip time of the replies, seconds.
    pub rtt_seconds: Option<f64>,
    /// Round-trip statistics of all replies.
    pub rtt: Option<RttStats>,
    /// Echo requests sent.
    pub sent: u16,
    /// Echo replies received.
    pub received: u16,
    /// Whether a confirmation burst was sent, and whether it got a reply.
    pub confirmed: Option<bool>,
}

impl IcmpDetails {
    /// Fraction of requests without a reply.
    pub fn loss_ratio(&self) -> f64 {
        if self.sent == 0 {
            return 1.0;
        }
        1.0 - f64::from(self.received) / f64::from(self.sent)
    }
}

/// TCP-specific results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TcpDetails {
    /// The host's address.
    pub lookup: Option<Lookup>,
    /// The handshake, when TLS was used.
    pub tls: Option<TlsInfo>,
    /// An `expect` step did not match.
    pub failed_due_to_regex: bool,
}

/// Identity-probe results: counts and canary ids, never content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentityDetails {
    /// What the run found, as the core records it.
    pub findings: crate::core::IdentityFindings,
    /// Responses by result (`ok`, `identity_mismatch`, `personal_data` or a failure kind).
    pub results: Vec<(&'static str, u32)>,
    /// Wall time of one round, seconds (the run's time over its rounds).
    pub round_seconds: f64,
    /// Median request latency, seconds.
    pub latency_p50: Option<f64>,
    /// 95th-percentile request latency, seconds.
    pub latency_p95: Option<f64>,
    /// Slowest request, seconds.
    pub latency_max: Option<f64>,
    /// The most requests that were in flight at one moment.
    pub peak_in_flight: u32,
}

/// Kind-specific results.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Details {
    /// No details (e.g. the probe could not start).
    #[default]
    None,
    /// HTTP details.
    Http(Box<HttpDetails>),
    /// TCP details.
    Tcp(Box<TcpDetails>),
    /// DNS details.
    Dns(DnsDetails),
    /// ICMP details.
    Icmp(IcmpDetails),
    /// Identity-probe details.
    Identity(Box<IdentityDetails>),
}

/// The result of one probe run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// Wall time the probe took.
    pub duration: Duration,
    /// `None` on success.
    pub failure: Option<Failure>,
    /// Kind-specific details.
    pub details: Details,
}

impl Details {
    /// The first resolution of the target's name, for probes that resolve.
    pub fn lookup(&self) -> Option<&Lookup> {
        match self {
            Details::Http(h) => h.lookup.as_ref(),
            Details::Tcp(t) => t.lookup.as_ref(),
            Details::Dns(d) => d.lookup.as_ref(),
            Details::Icmp(i) => i.lookup.as_ref(),
            Details::None | Details::Identity(_) => None,
        }
    }

    /// The TLS handshake's findings, for probes that speak TLS.
    pub fn tls(&self) -> Option<&TlsInfo> {
        match self {
            Details::Http(h) => h.tls.as_ref(),
            Details::Tcp(t) => t.tls.as_ref(),
            _ => None,
        }
    }
}

impl ProbeResult {
    /// Whether the probe succeeded.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_hash_is_blackbox_exporters() {
        // blackbox_exporter 0.23 reports 3.668918509e+09 for 127.0.0.1.
        let l = Lookup {
            seconds: 0.0,
            ip: Some("127.0.0.1".parse().unwrap()),
        };
        assert_eq!(l.addr_hash(), Some(3_668_918_509.0));
        assert_eq!(l.protocol(), 4.0);
        let none = Lookup {
            seconds: 0.1,
            ip: None,
        };
        assert_eq!((none.addr_hash(), none.protocol()), (None, 0.0));
    }

    #[test]
    fn rtt_statistics() {
        let s = RttStats::of(&[0.001, 0.003]).unwrap();
        assert_eq!((s.min, s.max), (0.001, 0.003));
        assert!((s.avg - 0.002).abs() < 1e-12 && (s.stddev - 0.001).abs() < 1e-12);
        assert_eq!(RttStats::of(&[]), None);
    }
}
