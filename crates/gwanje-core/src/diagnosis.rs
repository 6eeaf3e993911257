//! What is broken on a down path, in words an on-call engineer acts on:
//! the router or the link to it, something beyond the router, large packets
//! dying (with the largest size that passes), or the checks alone. It is
//! decided from what the core already knows and from a bounded examination
//! of the path (a ladder of don't-fragment echo sizes and a TTL-limited
//! trace) that the engine runs when the core asks and feeds back as an input,
//! so a replay reaches the same diagnosis.

use std::fmt;

use super::path::PathReason;

/// The shortest time between two traces (localizations) of one path.
pub const TRACE_EVERY_MS: u64 = 60_000;
/// The shortest time between two packet-size ladders of one down path: the
/// evidence changes as a fault does (a router comes back dropping only
/// large packets), and a ladder is 14 echoes.
pub const LADDER_EVERY_MS: u64 = 10_000;

/// `refused_by` when this host itself refused to send the size (its
/// outgoing interface's MTU is smaller).
pub const LOCAL: &str = "local";

/// One size of the ladder: don't-fragment echoes of `payload` bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rung {
    /// ICMP payload bytes (the IPv4 packet is 28 bytes more).
    pub payload: u16,
    /// Echoes sent.
    pub sent: u8,
    /// Replies received.
    pub received: u8,
    /// The MTU a "fragmentation needed" error named, when one arrived:
    /// the size is refused, not silently lost.
    pub frag_needed: Option<u16>,
    /// The hop that sent that error.
    #[serde(default)]
    pub refused_by: Option<String>,
}

impl Rung {
    fn passed(&self) -> bool {
        self.received > 0
    }
}

/// Who answered one TTL of the trace, for a small and a large packet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hop {
    /// The TTL sent.
    pub ttl: u8,
    /// The address that answered a small packet (time exceeded or reply).
    pub small: Option<String>,
    /// The address that answered a large packet.
    pub large: Option<String>,
}

/// What the engine found when it examined a path.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Examination {
    /// The address examined (the destination of the path's checks).
    pub destination: String,
    /// The ladder, smallest payload first.
    pub ladder: Vec<Rung>,
    /// The trace, TTL 1 first.
    pub hops: Vec<Hop>,
    /// Packets the examination sent.
    pub packets: u32,
    /// Why it could not examine, if it could not.
    pub error: Option<String>,
}

/// The closed set of diagnoses (the `kind` label of `gwanje_path_diagnosis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosisKind {
    /// The router does not answer: the router or the link to it.
    RouterOrLink,
    /// The router answers, packets beyond it die: its far side or upstream.
    BeyondRouter,
    /// Small packets pass, large ones vanish without an error.
    LargePacketLoss,
    /// Large packets are refused with "fragmentation needed": an MTU limit.
    MtuLimit,
    /// Packets pass at random: the path loses a share of them.
    Lossy,
    /// Packets of every size pass; only the checks fail through the path.
    ChecksOnly,
    /// Not examined (yet), or the examination could not run.
    Unknown,
}

impl DiagnosisKind {
    /// Every kind, in label order.
    pub const ALL: [DiagnosisKind; 7] = [
        DiagnosisKind::RouterOrLink,
        DiagnosisKind::BeyondRouter,
        DiagnosisKind::LargePacketLoss,
        DiagnosisKind::MtuLimit,
        DiagnosisKind::Lossy,
        DiagnosisKind::ChecksOnly,
        DiagnosisKind::Unknown,
    ];

    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosisKind::RouterOrLink => "router_or_link",
            DiagnosisKind::BeyondRouter => "beyond_router",
            DiagnosisKind::LargePacketLoss => "large_packet_loss",
            DiagnosisKind::MtuLimit => "mtu_limit",
            DiagnosisKind::Lossy => "lossy",
            DiagnosisKind::ChecksOnly => "checks_only",
            DiagnosisKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for DiagnosisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A down path's diagnosis with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnosis {
    /// What is broken.
    pub kind: DiagnosisKind,
    /// The same in plain words, with the evidence.
    pub summary: String,
    /// The largest payload that passed, when large ones did not.
    pub max_passing_payload: Option<u16>,
    /// The MTU a hop reported, for `MtuLimit`.
    pub mtu: Option<u16>,
    /// The last hop that answered, and its TTL.
    pub last_hop: Option<(u8, String)>,
}

/// Diagnoses `path` (its name, for the words) down for `reason`, from the
/// latest `exam` of it.
pub fn diagnose(path: &str, reason: &PathReason, exam: Option<&Examination>) -> Diagnosis {
    let mut d = Diagnosis {
        kind: DiagnosisKind::Unknown,
        summary: String::new(),
        max_passing_payload: None,
        mtu: None,
        last_hop: None,
    };
    let error = exam.and_then(|e| e.error.clone());
    let exam = exam.filter(|e| e.error.is_none());
    if let Some(e) = exam {
        d.last_hop = last_hop(&e.hops);
    }
    // No hops at all: not traced since the evidence changed (one trace a minute).
    let untraced = exam.is_some_and(|e| e.hops.is_empty());
    let hop = |d: &Diagnosis| match &d.last_hop {
        Some((ttl, addr)) => format!("the last hop to answer is {addr} (TTL {ttl})"),
        None if untraced => "hops not traced since the evidence changed".to_string(),
        None => "no hop answers (or every hop rate-limits its ICMP errors)".to_string(),
    };
    if *reason == PathReason::RouterDown {
        d.kind = DiagnosisKind::RouterOrLink;
        let evidence = exam.map_or(String::new(), |_| format!("; {}", hop(&d)));
        d.summary = format!(
            "path {path}'s router or the link to it: the router does not answer its check{evidence}"
        );
        return d;
    }
    let Some(e) = exam else {
        d.summary = match error {
            Some(why) => format!("not examined: {why}"),
            None => "examining the path (packet sizes, hops)".into(),
        };
        return d;
    };
    let ladder = &e.ladder;
    let smallest_ok = ladder.first().is_some_and(Rung::passed);
    let failing: Vec<&Rung> = ladder.iter().filter(|r| !r.passed()).collect();
    // A size problem is a clean step: every size up to a boundary passes,
    // every size above it fails. Anything else is loss at random.
    let passing_prefix = ladder.iter().take_while(|r| r.passed()).count();
    let clean_step = passing_prefix > 0
        && passing_prefix < ladder.len()
        && ladder[passing_prefix..].iter().all(|r| !r.passed());
    if clean_step {
        // The boundary: the largest size below which every size passed.
        let max = ladder[..passing_prefix].last().map(|r| r.payload);
        d.max_passing_payload = max;
        let above = failing.first().map_or(0, |r| r.payload);
        let (sent, lost) = failing.iter().fold((0u32, 0u32), |(s, l), r| {
            (
                s + u32::from(r.sent),
                l + u32::from(r.sent - r.received.min(r.sent)),
            )
        });
        let boundary = format!(
            "echoes of up to {} bytes pass, from {above} bytes on {lost} of {sent} are lost",
            max.unwrap_or(0)
        );
        if let Some(r) = failing.iter().find(|r| r.frag_needed.is_some()) {
            let mtu = r.frag_needed.filter(|m| *m > 0);
            d.kind = DiagnosisKind::MtuLimit;
            d.mtu = mtu;
            let by = match r.refused_by.as_deref() {
                Some(LOCAL) => "this host's outgoing interface".to_string(),
                Some(by) => by.to_string(),
                None => "a hop".to_string(),
            };
            let mtu = mtu.map_or_else(|| "no MTU given".to_string(), |m| format!("MTU {m}"));
            d.summary = format!(
                "an MTU limit on path {path}: {boundary}, refused by {by} with \"fragmentation needed\" and {mtu} (fix the MTU there, or make sure the error reaches senders)"
            );
        } else {
            d.kind = DiagnosisKind::LargePacketLoss;
            // Where large packets stop is the hop that matters.
            d.last_hop = large_hop(&e.hops);
            let large = large_hop(&e.hops).map_or_else(
                || {
                    if untraced {
                        "hops not traced since the evidence changed".to_string()
                    } else {
                        "no hop answers a large packet".to_string()
                    }
                },
                |(ttl, a)| format!("large packets die after {a} (TTL {ttl})"),
            );
            d.summary = format!(
                "large-packet loss on path {path}: {boundary}, with no \"fragmentation needed\" error (damaged ports or a PMTU black hole, not the service); {large}"
            );
        }
        return d;
    }
    if !failing.is_empty() && failing.len() < ladder.len() {
        d.kind = DiagnosisKind::Lossy;
        d.summary = format!(
            "path {path} loses packets at random: echoes of some sizes got through, others not, with no size boundary; {}",
            hop(&d)
        );
        return d;
    }
    if !smallest_ok {
        d.kind = DiagnosisKind::BeyondRouter;
        d.summary = format!(
            "beyond path {path}'s router (its far side or upstream): the router answers its check, echoes to {} do not; {}",
            e.destination,
            hop(&d)
        );
        return d;
    }
    if matches!(reason, PathReason::Degraded { .. }) {
        // The loss figure stays in the reason: here it would change the
        // diagnosis (and re-send the alert) with every probe.
        d.kind = DiagnosisKind::Lossy;
        d.summary = format!(
            "path {path} loses packets at random; echoes of every size get through sometimes; {}",
            hop(&d)
        );
        return d;
    }
    d.kind = DiagnosisKind::ChecksOnly;
    d.summary = format!(
        "packets of every size pass through path {path} to {}, but checks fail only through it: look above the network (a firewall, proxy or NAT on this path)",
        e.destination
    );
    d
}

/// The highest TTL any packet got an answer from.
fn last_hop(hops: &[Hop]) -> Option<(u8, String)> {
    hops.iter().rev().find_map(|h| {
        h.small
            .as_ref()
            .or(h.large.as_ref())
            .map(|a| (h.ttl, a.clone()))
    })
}

/// The highest TTL a large packet got an answer from.
fn large_hop(hops: &[Hop]) -> Option<(u8, String)> {
    hops.iter()
        .rev()
        .find_map(|h| h.large.as_ref().map(|a| (h.ttl, a.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(payload: u16, received: u8) -> Rung {
        Rung {
            payload,
            sent: 2,
            received,
            frag_needed: None,
            refused_by: None,
        }
    }

    fn hop(ttl: u8, small: Option<&str>, large: Option<&str>) -> Hop {
        Hop {
            ttl,
            small: small.map(str::to_string),
            large: large.map(str::to_string),
        }
    }

    fn exam(ladder: Vec<Rung>, hops: Vec<Hop>) -> Examination {
        Examination {
            destination: "198.18.100.1".into(),
            ladder,
            hops,
            packets: 20,
            error: None,
        }
    }

    const A: &str = "198.18.1.1";
    const SERVER: &str = "198.18.100.1";

    #[test]
    fn large_packets_dying_after_the_router_are_named_with_the_boundary() {
        let e = exam(
            vec![
                rung(64, 2),
                rung(1000, 2),
                rung(1300, 2),
                rung(1400, 0),
                rung(1472, 0),
            ],
            vec![hop(1, Some(A), Some(A)), hop(2, Some(SERVER), None)],
        );
        let checks = PathReason::ChecksFailing(vec![]);
        let d = diagnose("primary", &checks, Some(&e));
        assert_eq!(d.kind, DiagnosisKind::LargePacketLoss);
        assert_eq!(d.max_passing_payload, Some(1300));
        assert!(
            d.summary
                .contains("up to 1300 bytes pass, from 1400 bytes on 4 of 4 are lost"),
            "{}",
            d.summary
        );
        assert!(
            d.summary
                .contains("large packets die after 198.18.1.1 (TTL 1)"),
            "{}",
            d.summary
        );
        // The same with a "fragmentation needed" answer is an MTU limit.
        let mut e = e;
        e.ladder[3].frag_needed = Some(1400);
        let d = diagnose("primary", &checks, Some(&e));
        assert_eq!((d.kind, d.mtu), (DiagnosisKind::MtuLimit, Some(1400)));
    }

    #[test]
    fn which_side_of_the_router() {
        let dead_beyond = exam(
            vec![rung(64, 0), rung(1472, 0)],
            vec![hop(1, Some(A), Some(A)), hop(2, None, None)],
        );
        let checks = PathReason::ChecksFailing(vec![]);
        let d = diagnose("primary", &checks, Some(&dead_beyond));
        assert_eq!(d.kind, DiagnosisKind::BeyondRouter);
        assert_eq!(d.last_hop, Some((1, A.to_string())));
        assert!(
            d.summary
                .contains("the last hop to answer is 198.18.1.1 (TTL 1)"),
            "{}",
            d.summary
        );
        let nothing = exam(vec![rung(64, 0)], vec![hop(1, None, None)]);
        let d = diagnose("primary", &PathReason::RouterDown, Some(&nothing));
        assert_eq!(d.kind, DiagnosisKind::RouterOrLink);
        assert!(d.summary.contains("no hop answers"), "{}", d.summary);
        let fine = exam(
            vec![rung(64, 2), rung(1472, 2)],
            vec![hop(1, Some(SERVER), Some(SERVER))],
        );
        assert_eq!(
            diagnose("p", &checks, Some(&fine)).kind,
            DiagnosisKind::ChecksOnly
        );
        let lossy = PathReason::Degraded { loss_permille: 300 };
        assert_eq!(
            diagnose("p", &lossy, Some(&fine)).kind,
            DiagnosisKind::Lossy
        );
        assert_eq!(diagnose("p", &checks, None).kind, DiagnosisKind::Unknown);
        let failed = Examination {
            error: Some("no raw socket".into()),
            ..Examination::default()
        };
        let d = diagnose("p", &checks, Some(&failed));
        assert!(
            d.summary.contains("not examined: no raw socket"),
            "{}",
            d.summary
        );
    }
}
