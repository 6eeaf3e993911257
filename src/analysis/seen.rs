//! What the probes in a report's range saw, folded as the replay reads
//! them, one result at a time: the first failures for the timeline (a
//! burst folded into one line), each service's impact window, the
//! incidents, the data-protection exposures and the plots' buckets. Memory
//! holds these, never the record.

use std::collections::{BTreeMap, BTreeSet};

use super::buckets::Buckets;
use super::incidents::{Tracker, service_of};
use crate::core::{Effect, Event, FailureKind, Observation, Subject};

/// One service's impact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Impact {
    /// The service.
    pub service: String,
    /// First failing probe, Unix ms.
    pub first_failure: u64,
    /// First probe after which everything passed again, Unix ms.
    pub recovered: Option<u64>,
    /// First subject of the service decided down.
    pub detected: Option<u64>,
    /// First route change after the first failure.
    pub switched: Option<u64>,
    /// First acknowledgement after the first failure.
    pub acknowledged: Option<u64>,
}

/// Personal data or identity mismatches seen at one target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exposure {
    /// `service/target`.
    pub target: String,
    /// `personal_data` or `identity_mismatch`.
    pub kind: &'static str,
    /// Probes that saw it.
    pub probes: u32,
    /// Responses that carried it (identity rounds count each response).
    pub responses: u32,
    /// First seen, Unix ms.
    pub first: u64,
    /// Last seen, Unix ms.
    pub last: u64,
}

/// What the probes in a report's range saw, folded as the replay reads them.
pub(super) struct Seen {
    /// Per service (routers under ""), its subjects failing at their last
    /// result: the one record of it the timeline, impacts and incidents read.
    failing: BTreeMap<String, BTreeSet<String>>,
    /// The first failures of subjects after a pass, for the timeline: a
    /// burst of one service's and one kind is one line.
    pub(super) first_failures: Vec<FirstFailures>,
    pub(super) impacts: Impacts,
    pub(super) incidents: Tracker,
    pub(super) exposures: BTreeMap<(String, &'static str), Exposure>,
    pub(super) plots: ProbePlots,
}

impl Seen {
    /// Empty folds over `from..=to` (Unix ms).
    pub(super) fn new(from: u64, to: u64) -> Self {
        Seen {
            failing: BTreeMap::new(),
            first_failures: Vec::new(),
            impacts: Impacts::default(),
            incidents: Tracker::default(),
            exposures: BTreeMap::new(),
            plots: ProbePlots::new(from, to),
        }
    }

    /// Folds in the probe result `o` at `at`; `wanted` says whether its
    /// subject belongs to the report.
    pub(super) fn probe(&mut self, at: u64, o: &Observation, wanted: &dyn Fn(&Subject) -> bool) {
        self.plots.probe(at, o, wanted);
        if !wanted(&o.subject) {
            return;
        }
        let service = service_of(&o.subject).unwrap_or_default();
        if !self.failing.contains_key(service) {
            self.failing.insert(service.to_string(), BTreeSet::new());
        }
        let failing = self.failing.get_mut(service).expect("inserted");
        let subject = o.subject.to_string();
        let was = if o.failure.is_some() {
            !failing.insert(subject)
        } else {
            failing.remove(&subject)
        };
        let still = !failing.is_empty();
        if o.failure.is_some() && !was {
            let kind = o.failure.map_or("", |k| k.as_str());
            match self.first_failures.last_mut() {
                Some(b) if b.service == service && b.kind == kind && at < b.at + BURST_MS => {
                    b.subjects += 1;
                    if b.named.len() < LISTED {
                        b.named.push(o.subject.to_string());
                    }
                }
                _ => self.first_failures.push(FirstFailures {
                    at,
                    service: service.to_string(),
                    kind,
                    subjects: 1,
                    named: vec![o.subject.to_string()],
                }),
            }
        }
        let Some(svc) = service_of(&o.subject) else {
            return;
        };
        self.impacts.probe(at, o, svc, still);
        self.incidents.probe(at, o, svc, still);
        self.exposure(at, o);
    }

    fn exposure(&mut self, at: u64, o: &Observation) {
        let kind = match o.failure {
            Some(FailureKind::PersonalData) => "personal_data",
            Some(FailureKind::IdentityMismatch) => "identity_mismatch",
            _ => return,
        };
        let responses = o.identity.as_ref().map_or(1, |f| {
            if kind == "identity_mismatch" {
                f.mismatches
            } else {
                f.personal_data
            }
        });
        let target = match &o.subject {
            Subject::Target(k) | Subject::Check(k, _) => k.to_string(),
            Subject::Router(_) => return,
        };
        let e = self
            .exposures
            .entry((target.clone(), kind))
            .or_insert(Exposure {
                target,
                kind,
                probes: 0,
                responses: 0,
                first: at,
                last: at,
            });
        e.probes += 1;
        e.responses += responses;
        e.last = at;
    }
}

/// First failures this close to a burst's first are the same burst.
const BURST_MS: u64 = 10_000;
/// Subjects a burst's line names; the rest are counted.
const LISTED: usize = 4;

/// Subjects of one service that began failing the same way together.
pub(super) struct FirstFailures {
    at: u64,
    service: String,
    kind: &'static str,
    subjects: usize,
    named: Vec<String>,
}

impl FirstFailures {
    /// Its line of the timeline.
    pub(super) fn line(&self) -> (u64, String) {
        let text = if self.subjects == 1 {
            format!("first failing probe: {} ({})", self.named[0], self.kind)
        } else {
            let more = self.subjects - self.named.len();
            format!(
                "first failing probes of {} subjects within {} s: {}{} ({})",
                self.subjects,
                BURST_MS / 1000,
                self.named.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                },
                self.kind
            )
        };
        (self.at, text)
    }
}

/// Routers' loss and each service's results, folded into buckets that
/// keep the extremes: the plots stay small over days, and one failure
/// stays visible.
pub(super) struct ProbePlots {
    from: u64,
    to: u64,
    /// Each router's share of lost echoes.
    pub(super) routers: BTreeMap<String, Buckets>,
    /// Each service's results.
    pub(super) success: BTreeMap<String, Buckets>,
    /// Personal-data and identity findings.
    pub(super) findings: Buckets,
    /// Whether there was any finding.
    pub(super) found: bool,
}

impl ProbePlots {
    fn new(from: u64, to: u64) -> Self {
        ProbePlots {
            from,
            to,
            routers: BTreeMap::new(),
            success: BTreeMap::new(),
            findings: Buckets::new(from, to),
            found: false,
        }
    }

    fn probe(&mut self, at: u64, o: &Observation, wanted: &dyn Fn(&Subject) -> bool) {
        let (from, to) = (self.from, self.to);
        match &o.subject {
            Subject::Router(p) => {
                if let Some((sent, lost)) = o.packets.filter(|(s, _)| *s > 0) {
                    let loss = f64::from(lost) / f64::from(sent);
                    self.routers
                        .entry(p.to_string())
                        .or_insert_with(|| Buckets::new(from, to))
                        .add(at, loss, lost > 0);
                }
            }
            s if wanted(s) => {
                let svc = service_of(s).unwrap_or_default();
                let ok = o.failure.is_none();
                if !self.success.contains_key(svc) {
                    self.success.insert(svc.to_string(), Buckets::new(from, to));
                }
                self.success.get_mut(svc).expect("inserted").add(
                    at,
                    if ok { 1.0 } else { 0.0 },
                    !ok,
                );
                let exposed = matches!(
                    o.failure,
                    Some(FailureKind::PersonalData | FailureKind::IdentityMismatch)
                );
                self.found |= exposed;
                self.findings.add(at, f64::from(u8::from(exposed)), exposed);
            }
            _ => {}
        }
    }
}

/// Each service's impact window, folded probe by probe.
#[derive(Default)]
pub(super) struct Impacts {
    by_service: BTreeMap<String, Impact>,
}

impl Impacts {
    /// `failing`: whether some subject of `svc` fails after `o`.
    fn probe(&mut self, at: u64, o: &Observation, svc: &str, failing: bool) {
        match self.by_service.get_mut(svc) {
            None if o.failure.is_some() => {
                self.by_service.insert(
                    svc.to_string(),
                    Impact {
                        service: svc.to_string(),
                        first_failure: at,
                        recovered: None,
                        detected: None,
                        switched: None,
                        acknowledged: None,
                    },
                );
            }
            Some(i) if !failing && i.recovered.is_none() => i.recovered = Some(at),
            Some(i) if failing && i.recovered.is_some_and(|r| r < at) => {
                // Failing again: the impact window runs on.
                i.recovered = None;
            }
            _ => {}
        }
    }

    /// Each service's impact, with when it was detected, switched and
    /// acknowledged (from the replayed `entries` and `acks`).
    pub(super) fn finish(self, entries: &[crate::replay::Entry], acks: &[u64]) -> Vec<Impact> {
        let mut by_service = self.by_service;
        for i in by_service.values_mut() {
            for e in entries.iter().filter(|e| e.at >= i.first_failure) {
                match &e.effect {
                    Some(Effect::Event(Event::HealthChanged { subject, to, .. }))
                        if i.detected.is_none()
                            && *to == crate::core::TargetState::Down
                            && service_of(subject) == Some(i.service.as_str()) =>
                    {
                        i.detected = Some(e.at);
                    }
                    Some(Effect::Event(Event::RouteChanged { .. })) if i.switched.is_none() => {
                        i.switched = Some(e.at)
                    }
                    _ => {}
                }
            }
            i.acknowledged = acks.iter().copied().find(|a| *a >= i.first_failure);
        }
        by_service.into_values().collect()
    }
}
