//! What is broken on a down path: the router or the link to it, something
//! beyond the router, large packets dying (with the largest size that
//! passes), or the checks alone, with the numbers that show it. It is
//! decided from what the core already knows and from a bounded examination
//! of the path (a ladder of don't-fragment echo sizes and a TTL-limited
//! trace) that the engine runs when the core asks and feeds back as an input,
//! so a replay reaches the same diagnosis. `render` puts it in words.

use std::fmt;

use super::shared::PathReason;

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

/// A down path's diagnosis: what is broken, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnosis {
    /// What is broken.
    pub kind: DiagnosisKind,
    /// The numbers and addresses behind it.
    pub evidence: Evidence,
}

/// How far the examination behind a diagnosis got.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Examined {
    /// Not yet (or, for a dead router, not usefully): it has been asked for.
    Pending,
    /// It could not run, for this reason (the engine's error).
    Failed(String),
    /// It ran.
    Done,
}

/// What a diagnosis rests on: facts only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// How far the examination got.
    pub examined: Examined,
    /// The examination's hops were not traced since the evidence changed
    /// (one trace a minute), for the kinds whose words name a hop.
    #[serde(default)]
    pub untraced: bool,
    /// The address examined (the destination of the path's checks).
    pub destination: Option<String>,
    /// The largest payload that passed, when large ones did not.
    pub max_passing_payload: Option<u16>,
    /// The smallest payload that failed above that boundary.
    pub min_failing_payload: Option<u16>,
    /// Echoes sent at the failing sizes.
    pub failing_sent: u32,
    /// Of those, lost.
    pub failing_lost: u32,
    /// The MTU a hop reported, for `MtuLimit` (`None`: none was given).
    pub mtu: Option<u16>,
    /// Who refused the size ([`LOCAL`]: this host), for `MtuLimit`.
    pub refused_by: Option<String>,
    /// The last hop that answered (for `LargePacketLoss`, a large packet),
    /// and its TTL.
    pub last_hop: Option<(u8, String)>,
}

/// Diagnoses a path down for `reason` from the latest `exam` of it.
pub fn diagnose(reason: &PathReason, exam: Option<&Examination>) -> Diagnosis {
    let mut ev = Evidence {
        examined: match exam {
            None => Examined::Pending,
            Some(e) => match &e.error {
                Some(why) => Examined::Failed(why.clone()),
                None => Examined::Done,
            },
        },
        untraced: false,
        destination: None,
        max_passing_payload: None,
        min_failing_payload: None,
        failing_sent: 0,
        failing_lost: 0,
        mtu: None,
        refused_by: None,
        last_hop: None,
    };
    let exam = exam.filter(|e| e.error.is_none());
    if let Some(e) = exam {
        ev.last_hop = last_hop(&e.hops);
        ev.destination = Some(e.destination.clone());
    }
    // Only what the kind's words rest on is kept, so a diagnosis changes
    // (and is reported again) only when what it says changes.
    let untraced = exam.is_some_and(|e| e.hops.is_empty());
    let done = |kind, mut evidence: Evidence| {
        evidence.untraced = untraced
            && matches!(
                kind,
                DiagnosisKind::RouterOrLink
                    | DiagnosisKind::BeyondRouter
                    | DiagnosisKind::LargePacketLoss
                    | DiagnosisKind::Lossy
            );
        Diagnosis { kind, evidence }
    };
    if *reason == PathReason::RouterDown {
        // A dead router's examination adds hops when it ran; that it could
        // not run says nothing more.
        if ev.examined != Examined::Done {
            ev.examined = Examined::Pending;
        }
        return done(DiagnosisKind::RouterOrLink, ev);
    }
    let Some(e) = exam else {
        return done(DiagnosisKind::Unknown, ev);
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
        ev.max_passing_payload = ladder[..passing_prefix].last().map(|r| r.payload);
        ev.min_failing_payload = failing.first().map(|r| r.payload);
        for r in &failing {
            ev.failing_sent += u32::from(r.sent);
            ev.failing_lost += u32::from(r.sent - r.received.min(r.sent));
        }
        if let Some(r) = failing.iter().find(|r| r.frag_needed.is_some()) {
            ev.mtu = r.frag_needed.filter(|m| *m > 0);
            ev.refused_by = r.refused_by.clone();
            return done(DiagnosisKind::MtuLimit, ev);
        }
        // Where large packets stop is the hop that matters.
        ev.last_hop = large_hop(&e.hops);
        return done(DiagnosisKind::LargePacketLoss, ev);
    }
    if !failing.is_empty() && failing.len() < ladder.len() {
        return done(DiagnosisKind::Lossy, ev);
    }
    if !smallest_ok {
        return done(DiagnosisKind::BeyondRouter, ev);
    }
    if matches!(reason, PathReason::Degraded { .. }) {
        // The loss figure stays in the reason: here it would change the
        // diagnosis (and re-send the alert) with every probe.
        return done(DiagnosisKind::Lossy, ev);
    }
    done(DiagnosisKind::ChecksOnly, ev)
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
        let d = diagnose(&checks, Some(&e));
        assert_eq!(d.kind, DiagnosisKind::LargePacketLoss);
        let ev = &d.evidence;
        assert_eq!(
            (
                ev.max_passing_payload,
                ev.min_failing_payload,
                ev.failing_lost,
                ev.failing_sent
            ),
            (Some(1300), Some(1400), 4, 4)
        );
        assert_eq!(
            ev.last_hop,
            Some((1, A.to_string())),
            "where large packets die"
        );
        // The same with a "fragmentation needed" answer is an MTU limit.
        let mut e = e;
        e.ladder[3].frag_needed = Some(1400);
        let d = diagnose(&checks, Some(&e));
        assert_eq!(
            (d.kind, d.evidence.mtu),
            (DiagnosisKind::MtuLimit, Some(1400))
        );
    }

    #[test]
    fn which_side_of_the_router() {
        let dead_beyond = exam(
            vec![rung(64, 0), rung(1472, 0)],
            vec![hop(1, Some(A), Some(A)), hop(2, None, None)],
        );
        let checks = PathReason::ChecksFailing(vec![]);
        let d = diagnose(&checks, Some(&dead_beyond));
        assert_eq!(d.kind, DiagnosisKind::BeyondRouter);
        assert_eq!(d.evidence.last_hop, Some((1, A.to_string())));
        let nothing = exam(vec![rung(64, 0)], vec![hop(1, None, None)]);
        let d = diagnose(&PathReason::RouterDown, Some(&nothing));
        assert_eq!(d.kind, DiagnosisKind::RouterOrLink);
        assert_eq!(d.evidence.last_hop, None, "no hop answers");
        let fine = exam(
            vec![rung(64, 2), rung(1472, 2)],
            vec![hop(1, Some(SERVER), Some(SERVER))],
        );
        assert_eq!(
            diagnose(&checks, Some(&fine)).kind,
            DiagnosisKind::ChecksOnly
        );
        let lossy = PathReason::Degraded { loss_permille: 300 };
        assert_eq!(diagnose(&lossy, Some(&fine)).kind, DiagnosisKind::Lossy);
        assert_eq!(diagnose(&checks, None).kind, DiagnosisKind::Unknown);
        let failed = Examination {
            error: Some("no raw socket".into()),
            ..Examination::default()
        };
        let d = diagnose(&checks, Some(&failed));
        assert_eq!(
            d.evidence.examined,
            Examined::Failed("no raw socket".into())
        );
    }
}
