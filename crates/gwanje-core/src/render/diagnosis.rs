//! A down path's diagnosis in words an on-call engineer acts on.

use crate::diagnosis::{Diagnosis, DiagnosisKind, Evidence, Examined, LOCAL};
use crate::types::PathName;

/// What is broken on `path`, with the evidence.
pub fn diagnosis(path: &PathName, d: &Diagnosis) -> String {
    super::done(words_of(path, d))
}

/// Who answered last, or why nobody is named.
fn hop(ev: &Evidence) -> String {
    match &ev.last_hop {
        Some((ttl, addr)) => format!("the last hop to answer is {addr} (TTL {ttl})"),
        None if ev.untraced => "hops not traced since the evidence changed".to_string(),
        None => "no hop answers (or every hop rate-limits its ICMP errors)".to_string(),
    }
}

/// Where the sizes stop passing.
fn boundary(ev: &Evidence) -> String {
    format!(
        "echoes of up to {} bytes pass, from {} bytes on {} of {} are lost",
        ev.max_passing_payload.unwrap_or(0),
        ev.min_failing_payload.unwrap_or(0),
        ev.failing_lost,
        ev.failing_sent
    )
}

pub(super) fn words_of(path: &PathName, d: &Diagnosis) -> String {
    let ev = &d.evidence;
    let destination = ev
        .destination
        .as_deref()
        .unwrap_or("the checks' destination");
    match d.kind {
        DiagnosisKind::RouterOrLink => {
            let evidence = match ev.examined {
                Examined::Done => format!("; {}", hop(ev)),
                _ => String::new(),
            };
            format!(
                "path {path}'s router or the link to it: the router does not answer its check{evidence}"
            )
        }
        DiagnosisKind::Unknown => match &ev.examined {
            Examined::Failed(why) => format!("not examined: {why}"),
            _ => "examining the path (packet sizes, hops)".into(),
        },
        DiagnosisKind::MtuLimit => {
            let by = match ev.refused_by.as_deref() {
                Some(LOCAL) => "this host's outgoing interface".to_string(),
                Some(by) => by.to_string(),
                None => "a hop".to_string(),
            };
            let mtu = ev
                .mtu
                .map_or_else(|| "no MTU given".to_string(), |m| format!("MTU {m}"));
            format!(
                "an MTU limit on path {path}: {}, refused by {by} with \"fragmentation needed\" and {mtu} (fix the MTU there, or make sure the error reaches senders)",
                boundary(ev)
            )
        }
        DiagnosisKind::LargePacketLoss => {
            let large = match &ev.last_hop {
                Some((ttl, a)) => format!("large packets die after {a} (TTL {ttl})"),
                None if ev.untraced => "hops not traced since the evidence changed".to_string(),
                None => "no hop answers a large packet".to_string(),
            };
            format!(
                "large-packet loss on path {path}: {}, with no \"fragmentation needed\" error (damaged ports or a PMTU black hole, not the service); {large}",
                boundary(ev)
            )
        }
        DiagnosisKind::Lossy => format!(
            "path {path} loses packets at random: echoes of some sizes got through, others not, or every size only sometimes; {}",
            hop(ev)
        ),
        DiagnosisKind::BeyondRouter => format!(
            "beyond path {path}'s router (its far side or upstream): the router answers its check, echoes to {destination} do not; {}",
            hop(ev)
        ),
        DiagnosisKind::ChecksOnly => format!(
            "packets of every size pass through path {path} to {destination}, but checks fail only through it: look above the network (a firewall, proxy or NAT on this path)"
        ),
    }
}
