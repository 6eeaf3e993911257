//! One line of the observation stream (newline-delimited JSON): a probe
//! result with its sequence number, vantage, own time, target or router,
//! path, outcome and loss counts; or a heartbeat. Never a body, a header
//! or anything a response carried.

use serde::{Deserialize, Serialize};

use crate::config::valid_name;
use crate::core::{FailureKind, Observation, PathName, Subject, TargetKey, Timestamp};

/// The longest line a follower accepts, in bytes.
pub const MAX_LINE: usize = 2048;

/// A line as written and read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The result's number in its vantage's stream (heartbeats: the last one).
    pub seq: u64,
    /// The vantage that probed.
    pub vantage: String,
    /// When the probe finished on the vantage's clock, Unix ms (heartbeats: when sent).
    pub at: u64,
    /// `service/target`, for a target or a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The vantage's path a check or router was probed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Set for a path's router (then `path` names it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub router: bool,
    /// Whether the probe succeeded.
    #[serde(default)]
    pub ok: bool,
    /// The failure class when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Echoes sent and lost (ICMP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<u16>,
    /// Echoes lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<u16>,
    /// Whether the subject is one of the vantage's controls.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub control: bool,
    /// A sign of life while nothing finishes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub heartbeat: bool,
}

/// A validated line from a peer.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A probe result.
    Result {
        /// Its sequence number.
        seq: u64,
        /// Whether it is a control of the vantage.
        control: bool,
        /// What was seen.
        observation: Observation,
    },
    /// The stream is alive; `seq` is the last result sent.
    Heartbeat {
        /// The last sequence number.
        seq: u64,
    },
}

/// Why a peer's line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not JSON of the expected shape.
    #[error("not an observation line: {0}")]
    Garbage(String),
    /// Longer than [`MAX_LINE`].
    #[error("a line longer than {MAX_LINE} bytes")]
    Oversized,
    /// It names another vantage than the peer configured.
    #[error("it claims to be vantage {claimed:?}, not the configured peer")]
    WrongVantage {
        /// The name it claimed (escaped when logged).
        claimed: String,
    },
}

impl LineError {
    /// The `reason` label of `gwanje_peer_stream_faults_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            LineError::Garbage(_) => "garbage",
            LineError::Oversized => "oversized",
            LineError::WrongVantage { .. } => "wrong_vantage",
        }
    }
}

impl Line {
    /// The line for a local result numbered `seq`.
    pub fn of(vantage: &str, seq: u64, control: bool, obs: &Observation) -> Self {
        let (target, path, router) = match &obs.subject {
            Subject::Target(k) => (Some(k.as_str().to_string()), None, false),
            Subject::Check(k, p) => (Some(k.as_str().to_string()), Some(p.to_string()), false),
            Subject::Router(p) => (None, Some(p.to_string()), true),
        };
        Line {
            seq,
            vantage: vantage.to_string(),
            at: obs.at.0,
            target,
            path,
            router,
            ok: obs.failure.is_none(),
            failure: obs.failure.map(|f| f.as_str().to_string()),
            sent: obs.packets.map(|p| p.0),
            lost: obs.packets.map(|p| p.1),
            control,
            heartbeat: false,
        }
    }

    /// A heartbeat after result `seq`, sent at `at`.
    pub fn heartbeat(vantage: &str, seq: u64, at: Timestamp) -> Self {
        Line {
            seq,
            vantage: vantage.to_string(),
            at: at.0,
            target: None,
            path: None,
            router: false,
            ok: true,
            failure: None,
            sent: None,
            lost: None,
            control: false,
            heartbeat: true,
        }
    }

    /// The line as JSON with its newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("a line serializes");
        v.push(b'\n');
        v
    }
}

/// Parses and checks one line from the peer expected to be `vantage`.
pub fn parse(bytes: &[u8], vantage: &str) -> Result<Received, LineError> {
    if bytes.len() > MAX_LINE {
        return Err(LineError::Oversized);
    }
    let line: Line =
        serde_json::from_slice(bytes).map_err(|e| LineError::Garbage(e.to_string()))?;
    if line.vantage != vantage {
        return Err(LineError::WrongVantage {
            claimed: line.vantage,
        });
    }
    if line.heartbeat {
        return Ok(Received::Heartbeat { seq: line.seq });
    }
    let bad = |why: &str| LineError::Garbage(why.to_string());
    let path = match &line.path {
        Some(p) if valid_name(p) => Some(PathName::new(p)),
        Some(_) => return Err(bad("an invalid path name")),
        None => None,
    };
    let subject = match (&line.target, line.router, path) {
        (None, true, Some(p)) => Subject::Router(p),
        (Some(t), false, path) => {
            let key = match t.split_once('/') {
                Some((s, n)) if valid_name(s) && valid_name(n) => TargetKey::new(s, n),
                _ => return Err(bad("an invalid target key")),
            };
            match path {
                Some(p) => Subject::Check(key, p),
                None => Subject::Target(key),
            }
        }
        _ => return Err(bad("neither a target nor a path's router")),
    };
    let failure = match &line.failure {
        None => None,
        Some(f) => Some(
            FailureKind::ALL
                .into_iter()
                .find(|k| k.as_str() == f)
                .ok_or_else(|| bad("an unknown failure class"))?,
        ),
    };
    if line.ok != failure.is_none() {
        return Err(bad("ok and failure disagree"));
    }
    let packets = match (line.sent, line.lost) {
        (Some(s), Some(l)) if l <= s => Some((s, l)),
        (None, None) => None,
        _ => return Err(bad("lost echoes without sent ones, or more lost than sent")),
    };
    Ok(Received::Result {
        seq: line.seq,
        control: line.control,
        observation: Observation {
            subject,
            at: Timestamp(line.at),
            failure,
            cert_not_after: None,
            packets,
            duration_us: None,
            rtt_us: None,
            identity: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(subject: Subject, failure: Option<FailureKind>) -> Observation {
        Observation {
            subject,
            at: Timestamp(1_700_000_000_123),
            failure,
            cert_not_after: Some(1),
            packets: Some((3, 1)),
            duration_us: Some(5),
            rtt_us: Some(7),
            identity: None,
        }
    }

    #[test]
    fn a_result_goes_through_the_wire_unchanged_but_for_what_decides_nothing() {
        let k = TargetKey::new("portal", "home");
        for subject in [
            Subject::Target(k.clone()),
            Subject::Check(k.clone(), PathName::new("primary")),
            Subject::Router(PathName::new("primary")),
        ] {
            let o = obs(subject, Some(FailureKind::Timeout));
            let bytes = Line::of("seoul", 42, true, &o).to_bytes();
            assert!(bytes.len() < 160, "{}", String::from_utf8_lossy(&bytes));
            let got = parse(bytes.trim_ascii_end(), "seoul").expect("parses");
            let Received::Result {
                seq,
                control,
                observation,
            } = got
            else {
                panic!("{got:?}")
            };
            assert_eq!((seq, control), (42, true));
            assert_eq!(observation.subject, o.subject);
            assert_eq!(observation.failure, o.failure);
            assert_eq!(observation.packets, o.packets);
            assert_eq!(observation.at, o.at);
            // Certificates, timings and identity findings stay home.
            assert_eq!(observation.cert_not_after, None);
        }
    }

    #[test]
    fn hostile_lines_are_refused_with_a_reason() {
        let cases: [(&[u8], &str); 9] = [
            (b"not json", "garbage"),
            (
                br#"{"seq":1,"vantage":"b","at":1,"target":"x/y","ok":true}"#,
                "wrong_vantage",
            ),
            (
                br#"{"seq":1,"vantage":"a","at":1,"target":"no-slash","ok":true}"#,
                "garbage",
            ),
            (
                br#"{"seq":1,"vantage":"a","at":1,"target":"a/b","ok":true,"failure":"timeout"}"#,
                "garbage",
            ),
            (
                br#"{"seq":1,"vantage":"a","at":1,"target":"a/b","ok":false,"failure":"gremlins"}"#,
                "garbage",
            ),
            (
                br#"{"seq":1,"vantage":"a","at":1,"target":"a/b","ok":true,"sent":1,"lost":2}"#,
                "garbage",
            ),
            (br#"{"seq":1,"vantage":"a","at":1,"ok":true}"#, "garbage"),
            (
                br#"{"seq":1,"vantage":"a","at":1,"target":"a/b\n","ok":true}"#,
                "garbage",
            ),
            (
                br#"{"seq":-1,"vantage":"a","at":1,"target":"a/b","ok":true}"#,
                "garbage",
            ),
        ];
        for (bytes, reason) in cases {
            let e = parse(bytes, "a").expect_err(&String::from_utf8_lossy(bytes));
            assert_eq!(e.reason(), reason, "{}", String::from_utf8_lossy(bytes));
        }
        let long = vec![b' '; MAX_LINE + 1];
        assert_eq!(parse(&long, "a").expect_err("long").reason(), "oversized");
    }
}
