//! What one probe reports: success or a classified failure, plus details.
//!
//! A failed probe is data, not an `Err`: the failure class is a closed set
//! and the detail is a short diagnostic that never carries response content.

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
    /// A failure of `kind` described by `detail`.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Failure {
            kind,
            detail: detail.into(),
        }
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

/// HTTP-specific results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpDetails {
    /// Final status code (0 when no response).
    pub status: u16,
    /// 1.0, 1.1 or 2.0 (0 when no response).
    pub version: f64,
    /// Bytes of body received (-1 when no response).
    pub content_length: i64,
    /// Phase timings summed over redirects.
    pub phases: HttpPhases,
    /// Earliest `notAfter` in the chain, Unix seconds.
    pub cert_expiry: Option<i64>,
    /// A body regex assertion failed.
    pub failed_due_to_regex: bool,
    /// Redirects followed.
    pub redirects: u32,
    /// The personal-data guard found a resident registration number.
    pub personal_data: bool,
}

/// DNS-specific results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsDetails {
    /// Time the lookup took, seconds.
    pub lookup_seconds: f64,
    /// Records in the answer section.
    pub answers: u32,
}

/// ICMP-specific results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IcmpDetails {
    /// Mean round-trip time of the replies, seconds.
    pub rtt_seconds: Option<f64>,
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
}

/// Kind-specific results.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Details {
    /// No details (e.g. the probe could not start).
    #[default]
    None,
    /// HTTP details.
    Http(Box<HttpDetails>),
    /// TCP details: the certificate expiry when TLS was used.
    Tcp {
        /// Earliest `notAfter` in the chain, Unix seconds.
        cert_expiry: Option<i64>,
    },
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

impl ProbeResult {
    /// Whether the probe succeeded.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}
