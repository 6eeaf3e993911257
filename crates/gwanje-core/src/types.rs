//! Plain data shared by the core and the adapters around it.

use std::fmt;
use std::sync::Arc;

/// Milliseconds since the Unix epoch, as given to the core by the clock adapter.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds elapsed from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// A target's stable identity: `service/name`, unique within a plan.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TargetKey(Arc<str>);

impl TargetKey {
    /// Builds the key of target `name` in `service`.
    pub fn new(service: &str, name: &str) -> Self {
        let mut key = String::with_capacity(service.len() + 1 + name.len());
        key.push_str(service);
        key.push('/');
        key.push_str(name);
        TargetKey(key.into())
    }

    /// The key as `service/name`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The service and the target name (the labels alerts carry).
    pub fn parts(&self) -> (&str, &str) {
        self.0.split_once('/').unwrap_or((&self.0, ""))
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a probe failed: a closed set, so it can label metrics and alerts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum FailureKind {
    /// The probe did not finish within its timeout.
    Timeout,
    /// The target's name did not resolve.
    Dns,
    /// The connection was refused.
    Refused,
    /// The connection was reset by the peer.
    Reset,
    /// No route, network or host unreachable.
    Unreachable,
    /// Another connection-level failure.
    Connect,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// The peer spoke something that is not the expected protocol.
    Protocol,
    /// The HTTP status code was not one of the valid ones.
    Status,
    /// A body, JSON, answer or expect assertion failed.
    Assertion,
    /// The response carried a resident registration number.
    PersonalData,
    /// The body was larger than the configured cap.
    BodyTooLarge,
    /// The DNS response code was not one of the valid ones.
    Rcode,
    /// Too many ICMP echo requests were lost.
    Loss,
    /// The operating system refused the socket (e.g. raw ICMP without CAP_NET_RAW).
    Permission,
    /// A canary received a document not its own: one carrying another
    /// canary's markers, or a document of the step carrying none of its own.
    IdentityMismatch,
    /// An identity step's response was not a document of the step (an
    /// error page served with a valid status): a failed step, nothing exposed.
    NotADocument,
}

impl FailureKind {
    /// Every failure kind, in label order.
    pub const ALL: [FailureKind; 17] = [
        FailureKind::Timeout,
        FailureKind::Dns,
        FailureKind::Refused,
        FailureKind::Reset,
        FailureKind::Unreachable,
        FailureKind::Connect,
        FailureKind::Tls,
        FailureKind::Protocol,
        FailureKind::Status,
        FailureKind::Assertion,
        FailureKind::PersonalData,
        FailureKind::BodyTooLarge,
        FailureKind::Rcode,
        FailureKind::Loss,
        FailureKind::Permission,
        FailureKind::IdentityMismatch,
        FailureKind::NotADocument,
    ];

    /// The lowercase label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Dns => "dns",
            FailureKind::Refused => "refused",
            FailureKind::Reset => "reset",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Protocol => "protocol",
            FailureKind::Status => "status",
            FailureKind::Assertion => "assertion",
            FailureKind::PersonalData => "personal_data",
            FailureKind::BodyTooLarge => "body_too_large",
            FailureKind::Rcode => "rcode",
            FailureKind::Loss => "loss",
            FailureKind::Permission => "permission",
            FailureKind::IdentityMismatch => "identity_mismatch",
            FailureKind::NotADocument => "not_a_document",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a validated name.
            pub fn new(name: &str) -> Self {
                $name(name.into())
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A network path (a gateway and the way to reach it).
    PathName
);
name_type!(
    /// A failover group (prefixes steered over ordered paths).
    GroupName
);
name_type!(
    /// A vantage point: one gwanje instance probing from its own site.
    VantageName
);

/// What a probe measured: a plain target, a check through one path, or a
/// path's router.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Subject {
    /// A target probed directly.
    Target(TargetKey),
    /// A group's check target probed through one path.
    Check(TargetKey, PathName),
    /// The router (gateway) of a path.
    Router(PathName),
}

impl Subject {
    /// The path this subject is bound to, if any.
    pub fn path(&self) -> Option<&PathName> {
        match self {
            Subject::Target(_) => None,
            Subject::Check(_, p) | Subject::Router(p) => Some(p),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Target(t) => write!(f, "{t}"),
            Subject::Check(t, p) => write!(f, "{t} via {p}"),
            Subject::Router(p) => write!(f, "router of {p}"),
        }
    }
}

/// What the core learns from one finished probe.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    /// What was probed.
    pub subject: Subject,
    /// When the probe finished.
    pub at: Timestamp,
    /// `None` on success, the failure class otherwise.
    pub failure: Option<FailureKind>,
    /// The earliest `notAfter` of the certificate chain, Unix seconds, when
    /// the probe saw one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_not_after: Option<i64>,
    /// Packets the probe sent and lost (ICMP echoes), for path quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<(u16, u16)>,
    /// How long the probe took, µs (for the record: history exports and
    /// reports plot it; no decision uses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u32>,
    /// Mean round-trip time of an ICMP probe's replies, µs (for the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<u32>,
    /// What an identity probe's round found (canary ids and counts, never
    /// response content), for the alert and the disclosure record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityFindings>,
}

/// One canary that received another canary's document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mismatch {
    /// The flow step whose response it was.
    pub step: String,
    /// The canary that made the request.
    pub canary: String,
    /// The canary whose markers the response carried.
    pub owner: String,
}

/// An identity round's counts; canary ids are synthetic, not personal data.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdentityFindings {
    /// Requests the round sent.
    pub requests: u32,
    /// Responses that were a document not the canary's own: another
    /// canary's markers, or (`unknown_owner`) none of its own.
    pub mismatches: u32,
    /// Of those, documents of the step with none of the canary's markers and
    /// no other canary's: whose, gwanje cannot tell.
    #[serde(default)]
    pub unknown_owner: u32,
    /// Responses with a resident registration number they may not carry.
    pub personal_data: u32,
    /// The first mismatches, in the order seen (at most [`IdentityFindings::MAX_LISTED`]).
    pub first: Vec<Mismatch>,
}

impl IdentityFindings {
    /// How many mismatches an observation names; the rest are counted only.
    pub const MAX_LISTED: usize = 8;
}

impl Mismatch {
    /// The owner named when a document carried none of the canary's own
    /// markers and no other canary's: a citizen gwanje knows nothing of.
    pub const NOT_A_CANARY: &'static str = "someone who is not a canary";
}

/// A target's health as decided from its recent observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TargetState {
    /// Not enough observations yet to decide.
    Unknown,
    /// Healthy.
    Up,
    /// Failing beyond its threshold.
    Down,
}

impl TargetState {
    /// The lowercase label used in logs and the status API.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Unknown => "unknown",
            TargetState::Up => "up",
            TargetState::Down => "down",
        }
    }
}

impl fmt::Display for TargetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
