//! The incidents of a record, for the first screen of the report: each
//! stretch in which some probe of a service failed, with what failed, and
//! what gwanje decided, whom it told and who acknowledged, within it.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::{Effect, Event, Observation, Order, Subject, TargetState};
use crate::replay::Entry;

/// Failures of one service this close together are one incident.
pub const MERGE_MS: u64 = 30_000;
/// Subjects an incident names; the rest are counted.
const LISTED: usize = 4;

/// One incident.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Incident {
    /// The service.
    pub service: String,
    /// The first failing probe, Unix ms.
    pub from: u64,
    /// The first probe after which every probe passed again, if any did.
    pub to: Option<u64>,
    /// What failed (subjects), the first few.
    pub failed: Vec<String>,
    /// How many subjects failed in all.
    pub subjects: usize,
    /// Failed probes in it.
    pub failures: u32,
    /// When a subject of the service was first decided down.
    pub detected: Option<u64>,
    /// The first route change in it, and where traffic went.
    pub switched: Option<(u64, String)>,
    /// Alerts sent firing in it, by name.
    pub alerts: Vec<String>,
    /// The first acknowledgement in it.
    pub acknowledged: Option<u64>,
}

/// The service a subject belongs to (routers belong to none).
pub(super) fn service_of(s: &Subject) -> Option<&str> {
    match s {
        Subject::Target(k) | Subject::Check(k, _) => Some(k.parts().0),
        Subject::Router(_) => None,
    }
}

/// The incidents of the services a report covers, folded probe by probe.
#[derive(Default)]
pub struct Tracker {
    open: BTreeMap<String, (Incident, BTreeSet<String>)>,
    done: Vec<Incident>,
}

impl Tracker {
    /// Folds in a probe result `o` of service `svc` at `at` (Unix ms);
    /// `failing`: whether some subject of the service fails after it.
    pub fn probe(&mut self, at: u64, o: &Observation, svc: &str, failing: bool) {
        if o.failure.is_some() {
            let subject = o.subject.to_string();
            let (i, seen) = self.open.entry(svc.to_string()).or_insert_with(|| {
                // Close enough to the last one: the same incident goes on.
                let resumed = self
                    .done
                    .iter()
                    .rposition(|d| {
                        d.service == svc && d.to.is_some_and(|t| at.saturating_sub(t) < MERGE_MS)
                    })
                    .map(|k| self.done.remove(k));
                let i = resumed.map_or_else(
                    || Incident {
                        service: svc.to_string(),
                        from: at,
                        to: None,
                        failed: Vec::new(),
                        subjects: 0,
                        failures: 0,
                        detected: None,
                        switched: None,
                        alerts: Vec::new(),
                        acknowledged: None,
                    },
                    |mut d| {
                        d.to = None;
                        d
                    },
                );
                let seen = i.failed.iter().cloned().collect();
                (i, seen)
            });
            i.failures += 1;
            if seen.insert(subject.clone()) {
                i.subjects += 1;
                if i.failed.len() < LISTED {
                    i.failed.push(subject);
                }
            }
        } else if !failing && let Some((mut i, _)) = self.open.remove(svc) {
            i.to = Some(at);
            self.done.push(i);
        }
    }

    /// The incidents, with what gwanje did in each (from the replayed
    /// `entries`); one still open at `to` has no end.
    pub fn finish(self, entries: &[Entry], to: u64, acks: &[u64]) -> Vec<Incident> {
        let mut done = self.done;
        done.extend(self.open.into_values().map(|(i, _)| i));
        for i in &mut done {
            let end = i.to.unwrap_or(to);
            for e in entries.iter().filter(|e| (i.from..=end).contains(&e.at)) {
                match &e.effect {
                    Some(Effect::Event(Event::HealthChanged { subject, to, .. }))
                        if i.detected.is_none()
                            && *to == TargetState::Down
                            && service_of(subject) == Some(i.service.as_str()) =>
                    {
                        i.detected = Some(e.at);
                    }
                    Some(Effect::Event(Event::RouteChanged { to, .. })) if i.switched.is_none() => {
                        i.switched = Some((e.at, to.to_string()));
                    }
                    Some(Effect::Order(Order::DeliverAlerts { alerts, .. })) => {
                        for a in alerts.iter().filter(|a| a.firing()) {
                            let labels = a.labels();
                            let ours = labels.get("service").is_none_or(|s| *s == i.service);
                            let name = a.name().as_str().to_string();
                            if ours && !i.alerts.contains(&name) {
                                i.alerts.push(name);
                            }
                        }
                    }
                    _ => {}
                }
            }
            i.acknowledged = acks.iter().copied().find(|a| (i.from..=end).contains(a));
        }
        done.sort_by(|a, b| (a.from, &a.service).cmp(&(b.from, &b.service)));
        done
    }
}
