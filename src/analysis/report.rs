//! `gwanje report`: the incident report from the journal, as Markdown and
//! as one self-contained HTML page with inline SVG plots. Facts only: what
//! the probes saw, what gwanje decided and when, who was told and who
//! acknowledged, the impact per service, and for a disclosure what was
//! exposed (counts and times, never the data). Gaps stay unknown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use super::buckets::Buckets;
use super::history::{self, History};
use super::summary::{clock, seconds};
use super::svg::{self, Band, Row};
use crate::core::{Effect, Event, FailureKind, Input, Observation, Order, PathState, Subject};
use crate::journal::JournalError;

/// What to report on.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// From, Unix ms (the first record when `None`).
    pub from: Option<u64>,
    /// To, Unix ms (the last record when `None`).
    pub to: Option<u64>,
    /// Only this service's targets and checks.
    pub service: Option<String>,
}

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

/// The report's content.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The range, Unix ms.
    pub from: u64,
    /// The range's end, Unix ms.
    pub to: u64,
    /// The service reported on, if one.
    pub service: Option<String>,
    /// (Unix ms, what happened), in time order.
    pub timeline: Vec<(u64, String)>,
    /// Each incident: what failed, where, when, and what was done.
    pub incidents: Vec<super::incidents::Incident>,
    /// Per service.
    pub impact: Vec<Impact>,
    /// The disclosure facts.
    pub exposures: Vec<Exposure>,
    /// Holes in the record.
    pub gaps: Vec<history::Gap>,
    /// The plots, as inline SVG.
    #[serde(skip)]
    pub plots: Vec<(String, String)>,
}

fn service_of(s: &Subject) -> Option<&str> {
    match s {
        Subject::Target(k) | Subject::Check(k, _) => k.as_str().split('/').next(),
        Subject::Router(_) => None,
    }
}

/// Builds the report of the journal in `dir` for `scope`.
pub fn build(dir: &Path, scope: &Scope) -> Result<Report, JournalError> {
    let h = history::from_journal(dir)?;
    let (from, to) = (scope.from.unwrap_or(h.span.0), scope.to.unwrap_or(h.span.1));
    let wanted = |s: &Subject| match (&scope.service, service_of(s)) {
        (Some(want), Some(have)) => *want == have,
        (Some(_), None) => true,
        (None, _) => true,
    };
    // One pass: the replay, and every probe result it reads folded into
    // what the report shows (memory: the folds, not the record).
    let mut seen = Seen {
        failing: BTreeMap::new(),
        first_failures: Vec::new(),
        impacts: Impacts::default(),
        incidents: super::incidents::Tracker::default(),
        exposures: BTreeMap::new(),
        plots: ProbePlots::new(from, to),
    };
    let replayed = crate::replay::replay_with(dir, Some(from), Some(to), &mut |at, input| {
        if let Input::ProbeCompleted(o) = input
            && (from..=to).contains(&at.0)
        {
            seen.probe(at.0, o, &wanted);
        }
    })?;
    let mut timeline: Vec<(u64, String)> = seen
        .first_failures
        .iter()
        .map(FirstFailures::line)
        .collect();
    let mut acks = Vec::new();
    // The state of each alert last shown.
    let mut shown: BTreeMap<String, (bool, bool, bool)> = BTreeMap::new();
    // Steady state is folded: first results after a start (unknown → up)
    // become one line per run of them, not one per target.
    let mut coming_up: Option<(u64, usize)> = None;
    let fold = |timeline: &mut Vec<(u64, String)>, run: &mut Option<(u64, usize)>| {
        if let Some((at, n)) = run.take() {
            let what = if n == 1 { "subject" } else { "subjects" };
            timeline.push((at, format!("{n} {what} up on their first results")));
        }
    };
    for e in &replayed.entries {
        if let Some(Effect::Event(Event::HealthChanged {
            subject,
            from: crate::core::TargetState::Unknown,
            to: crate::core::TargetState::Up,
            ..
        })) = &e.effect
        {
            if wanted(subject) {
                let run = coming_up.get_or_insert((e.at, 0));
                run.1 += 1;
            }
            continue;
        }
        let keep = match &e.effect {
            Some(Effect::Event(Event::HealthChanged { subject, .. })) => wanted(subject),
            Some(
                Effect::Event(Event::PathChanged { .. })
                | Effect::Event(Event::PathDiagnosed { .. })
                | Effect::Event(Event::RouteChanged { .. })
                | Effect::Event(Event::RouteAdopted { .. })
                | Effect::Event(Event::ServiceDown { .. })
                | Effect::Event(Event::ServiceRecovered { .. })
                | Effect::Event(Event::ServiceDegraded { .. })
                | Effect::Event(Event::ServiceDegradationCleared { .. })
                | Effect::Event(Event::FailoverImpossible { .. })
                | Effect::Event(Event::MonitorIsolated { .. })
                | Effect::Event(Event::GroupFrozen { .. })
                | Effect::Event(Event::MovedDespiteFreeze { .. }),
            ) => true,
            // Another service's alerts stay out of this service's report,
            // and so do re-sends: an alert's line shows when its state changes.
            Some(Effect::Order(Order::DeliverAlerts { alerts, .. })) => {
                let mut news = false;
                for a in alerts.iter().filter(|a| {
                    match (&scope.service, a.labels().get("service").cloned()) {
                        (Some(want), Some(have)) => *want == have,
                        _ => true,
                    }
                }) {
                    let state = (a.firing(), a.escalated, a.acknowledged.is_some());
                    news |= shown.insert(a.id.clone(), state) != Some(state);
                }
                news
            }
            Some(Effect::Event(Event::AlertAcknowledged { .. })) => {
                acks.push(e.at);
                true
            }
            Some(_) => false,
            // Operator commands and rejected reloads.
            None => true,
        };
        if keep {
            fold(&mut timeline, &mut coming_up);
            timeline.push((e.at, e.text.clone()));
        }
    }
    fold(&mut timeline, &mut coming_up);
    for g in &h.gaps {
        timeline.push((
            g.from,
            format!("gap in the record until {}: {}", clock(g.to), g.why),
        ));
    }
    timeline.sort_by_key(|(at, _)| *at);
    let impact = seen.impacts.finish(&replayed.entries, &acks);
    let incidents = seen.incidents.finish(&replayed.entries, to, &acks);
    let exposures = seen.exposures.into_values().collect();
    let plots = plots(&h, &replayed.entries, from, to, seen.plots);
    Ok(Report {
        from,
        to,
        service: scope.service.clone(),
        timeline,
        incidents,
        impact,
        exposures,
        gaps: h.gaps.clone(),
        plots,
    })
}

/// What the probes in a report's range saw, folded as the replay reads them.
struct Seen {
    /// Each subject failing at its last result.
    failing: BTreeMap<String, bool>,
    /// The first failures of subjects after a pass, for the timeline: a
    /// burst of one service's and one kind is one line.
    first_failures: Vec<FirstFailures>,
    impacts: Impacts,
    incidents: super::incidents::Tracker,
    exposures: BTreeMap<(String, &'static str), Exposure>,
    plots: ProbePlots,
}

impl Seen {
    fn probe(&mut self, at: u64, o: &Observation, wanted: &dyn Fn(&Subject) -> bool) {
        self.plots.probe(at, o, wanted);
        if !wanted(&o.subject) {
            return;
        }
        let was = self
            .failing
            .insert(o.subject.to_string(), o.failure.is_some());
        if o.failure.is_some() && was != Some(true) {
            let kind = o.failure.map_or("", |k| k.as_str());
            let service = service_of(&o.subject).unwrap_or_default();
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
        self.impacts.probe(at, o, svc);
        self.incidents.probe(at, o, svc);
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
struct FirstFailures {
    at: u64,
    service: String,
    kind: &'static str,
    subjects: usize,
    named: Vec<String>,
}

impl FirstFailures {
    fn line(&self) -> (u64, String) {
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
struct ProbePlots {
    from: u64,
    to: u64,
    routers: BTreeMap<String, Buckets>,
    success: BTreeMap<String, Buckets>,
    findings: Buckets,
    found: bool,
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
struct Impacts {
    by_service: BTreeMap<String, Impact>,
    /// Per service, its subjects failing now.
    failing: BTreeMap<String, BTreeSet<String>>,
}

impl Impacts {
    fn probe(&mut self, at: u64, o: &Observation, svc: &str) {
        let failing = self.failing.entry(svc.to_string()).or_default();
        if o.failure.is_some() {
            failing.insert(o.subject.to_string());
        } else if !failing.is_empty() {
            failing.remove(&o.subject.to_string());
        }
        let failing = !failing.is_empty();
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

    fn finish(self, entries: &[crate::replay::Entry], acks: &[u64]) -> Vec<Impact> {
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

fn plots(
    h: &History,
    entries: &[crate::replay::Entry],
    from: u64,
    to: u64,
    probes: ProbePlots,
) -> Vec<(String, String)> {
    let gap_bands = |rows: &mut Vec<Row>| {
        for r in rows.iter_mut() {
            for g in &h.gaps {
                r.bands.push(Band {
                    from: g.from,
                    to: g.to,
                    colour: "#999",
                    title: format!("unknown: {}", g.why),
                });
            }
        }
    };
    // Paths: state bands, and the active path per group.
    let mut path_rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut open: BTreeMap<String, (u64, PathState)> = BTreeMap::new();
    let mut active: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut active_rows: BTreeMap<String, Row> = BTreeMap::new();
    // The active path's colour: the first path named blue, the others orange, purple.
    let mut palette: Vec<String> = Vec::new();
    let mut path_colour = |p: &str| -> &'static str {
        let i = palette.iter().position(|x| x == p).unwrap_or_else(|| {
            palette.push(p.to_string());
            palette.len() - 1
        });
        ["#36c", "#e80", "#839"][i % 3]
    };
    let colour = |s: PathState| match s {
        PathState::Up => "#3a3",
        PathState::Down => "#d33",
        PathState::Unknown => "#ccc",
    };
    let close =
        |rows: &mut BTreeMap<String, Row>, name: &str, since: u64, s: PathState, until: u64| {
            rows.entry(name.to_string())
                .or_insert_with(|| Row {
                    label: format!("path {name}"),
                    bands: vec![],
                    points: vec![],
                })
                .bands
                .push(Band {
                    from: since,
                    to: until,
                    colour: colour(s),
                    title: format!("{name} {s}"),
                });
        };
    for e in entries {
        match &e.effect {
            Some(Effect::Event(Event::PathChanged {
                path, to: state, ..
            })) => {
                if let Some((since, s)) = open.insert(path.to_string(), (e.at, *state)) {
                    close(&mut path_rows, path.as_str(), since, s, e.at);
                }
            }
            Some(Effect::Event(Event::RouteChanged { group, to: p, .. }))
            | Some(Effect::Event(Event::RouteAdopted {
                group,
                path: Some(p),
            })) => {
                if let Some((since, was)) = active.insert(group.to_string(), (e.at, p.to_string()))
                {
                    active_rows
                        .entry(group.to_string())
                        .or_insert_with(|| Row {
                            label: format!("{group}: active"),
                            bands: vec![],
                            points: vec![],
                        })
                        .bands
                        .push(Band {
                            from: since,
                            to: e.at,
                            colour: path_colour(&was),
                            title: format!("via {was}"),
                        });
                }
            }
            _ => {}
        }
    }
    for (name, (since, s)) in open {
        close(&mut path_rows, &name, since, s, to);
    }
    for (group, (since, p)) in active {
        active_rows
            .entry(group.clone())
            .or_insert_with(|| Row {
                label: format!("{group}: active"),
                bands: vec![],
                points: vec![],
            })
            .bands
            .push(Band {
                from: since,
                to,
                colour: path_colour(&p),
                title: format!("via {p}"),
            });
    }
    let mut rows: Vec<Row> = path_rows
        .into_values()
        .chain(active_rows.into_values())
        .collect();
    gap_bands(&mut rows);
    // A plot with nothing to show is left out (a fleet without paths).
    let mut out = Vec::new();
    if !rows.is_empty() {
        out.push((
            "Paths (green up, red down, grey unknown) and the active path per group (blue: the first path, orange: the next)".to_string(),
            svg::plot("paths", from, to, &rows),
        ));
    }
    let ProbePlots {
        routers,
        success,
        findings,
        found,
        ..
    } = probes;
    let mut rows: Vec<Row> = routers
        .into_iter()
        .map(|(p, b)| Row {
            label: format!("router {p} loss"),
            bands: vec![],
            points: b.extremes("lost"),
        })
        .collect();
    gap_bands(&mut rows);
    if !rows.is_empty() {
        out.push((
            "Router probe loss (a point high up is a lost echo share; each point is the worst of its stretch of time)".into(),
            svg::plot("routers", from, to, &rows),
        ));
    }
    let mut rows: Vec<Row> = success
        .into_iter()
        .map(|(svc, b)| Row {
            label: format!("{svc} success"),
            bands: b.bands(),
            points: vec![],
        })
        .collect();
    if found {
        rows.push(Row {
            label: "personal data".into(),
            bands: findings
                .bands()
                .into_iter()
                .filter(|b| b.colour == "#d33")
                .collect(),
            points: vec![],
        });
    }
    gap_bands(&mut rows);
    out.push((
        "Probe results per service (green: every probe passed; red: some failed, however briefly) and personal-data findings"
            .into(),
        svg::plot("probes", from, to, &rows),
    ));
    out
}

/// An incident's detailed timeline starts this long before its first failure.
const DETAIL_BEFORE_MS: u64 = 10_000;
/// And ends this long after it recovered (the failback, the resolutions).
const DETAIL_AFTER_MS: u64 = 60_000;

/// The 72-hour personal-data breach report's deadline for a discovery at `first`.
fn due(first: u64) -> u64 {
    first.saturating_add(72 * 3_600_000)
}

/// An incident's row, its text escaped by `esc` for the output at hand.
fn incident_cells(i: &super::incidents::Incident, esc: &dyn Fn(&str) -> String) -> [String; 8] {
    [
        esc(&i.service),
        clock(i.from),
        at_or(i.to, i.from),
        esc(&failed(i)),
        at_or(i.detected, i.from),
        i.switched.as_ref().map_or("—".into(), |(t, p)| {
            format!("{} to {}", at_or(Some(*t), i.from), esc(p))
        }),
        if i.alerts.is_empty() {
            "—".into()
        } else {
            esc(&i.alerts.join(", "))
        },
        at_or(i.acknowledged, i.from),
    ]
}

/// What failed in an incident, in words.
fn failed(i: &super::incidents::Incident) -> String {
    let more = i.subjects.saturating_sub(i.failed.len());
    let mut text = i.failed.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    let plural = if i.failures == 1 { "" } else { "s" };
    format!("{text} ({} failed probe{plural})", i.failures)
}

fn at_or(t: Option<u64>, from: u64) -> String {
    t.map_or("—".into(), |t| {
        format!("{} (+{})", clock(t), seconds(t.saturating_sub(from)))
    })
}

/// Text from the journal (names, `by`, timeline lines) made safe for
/// Markdown: invisible characters escaped, HTML escaped (a Markdown viewer
/// renders raw HTML), and table cells kept whole.
fn md(text: &str) -> String {
    svg::esc(&crate::logging::escape(text).to_string()).replace('|', "\\|")
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Incident report{}\n",
            self.service
                .as_ref()
                .map_or(String::new(), |v| format!(": {}", md(v)))
        );
        let _ = writeln!(
            s,
            "From {} to {} (UTC), from gwanje's journal.\n",
            crate::clock::rfc3339(crate::core::Timestamp(self.from)),
            crate::clock::rfc3339(crate::core::Timestamp(self.to))
        );
        let _ = writeln!(s, "## Incidents\n");
        if self.incidents.is_empty() {
            let _ = writeln!(s, "No probe failed in this range.\n");
        } else {
            let _ = writeln!(
                s,
                "| service | from | to | what failed | detected | switched | alerts | acknowledged |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
            );
            for i in &self.incidents {
                let _ = writeln!(s, "| {} |", incident_cells(i, &md).join(" | "));
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "## Impact per service\n\n| service | first failing probe | detected | switched | acknowledged | recovered |\n| --- | --- | --- | --- | --- | --- |"
        );
        for i in &self.impact {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                md(&i.service),
                clock(i.first_failure),
                at_or(i.detected, i.first_failure),
                at_or(i.switched, i.first_failure),
                at_or(i.acknowledged, i.first_failure),
                at_or(i.recovered, i.first_failure)
            );
        }
        let _ = writeln!(s, "\n## Disclosure\n");
        if self.exposures.is_empty() {
            let _ = writeln!(
                s,
                "gwanje observed no personal data in a response and no identity mismatch in this range."
            );
        } else {
            let _ = writeln!(
                s,
                "| target | finding | probes | responses | first seen (discovery) | last seen | 72-hour report due |\n| --- | --- | --- | --- | --- | --- | --- |"
            );
            for e in &self.exposures {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    md(&e.target),
                    md(e.kind),
                    e.probes,
                    e.responses,
                    crate::clock::rfc3339(crate::core::Timestamp(e.first)),
                    crate::clock::rfc3339(crate::core::Timestamp(e.last)),
                    crate::clock::rfc3339(crate::core::Timestamp(due(e.first)))
                );
            }
            let _ = writeln!(s, "\nFacts only: gwanje never stores the data itself.");
        }
        let _ = writeln!(s, "\n## Gaps in the record\n");
        if self.gaps.is_empty() {
            let _ = writeln!(s, "None: the record is complete for this range.");
        }
        for g in &self.gaps {
            let _ = writeln!(
                s,
                "- {} to {}: {} (unknown, not up)",
                clock(g.from),
                clock(g.to),
                g.why
            );
        }
        for (n, i) in self.incidents.iter().enumerate() {
            let _ = writeln!(
                s,
                "\n## Incident {}: {} from {}\n",
                n + 1,
                md(&i.service),
                clock(i.from)
            );
            for (at, text) in self.during(i) {
                let _ = writeln!(s, "- {} {}", clock(*at), md(text));
            }
        }
        let _ = writeln!(s, "\n## Timeline\n");
        for (at, text) in &self.timeline {
            let _ = writeln!(s, "- {} {}", clock(*at), md(text));
        }
        s
    }

    /// The timeline around incident `i`: from a little before it starts
    /// to a little after it ends (what led to it, and what followed).
    fn during(&self, i: &super::incidents::Incident) -> impl Iterator<Item = &(u64, String)> {
        let start = i.from.saturating_sub(DETAIL_BEFORE_MS);
        let end = i.to.unwrap_or(self.to).saturating_add(DETAIL_AFTER_MS);
        self.timeline
            .iter()
            .filter(move |(at, _)| (start..=end).contains(at))
    }

    /// The report as one HTML page (inline CSS and SVG, nothing fetched).
    pub fn html(&self) -> String {
        let e = svg::esc;
        let mut s = String::from(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>gwanje incident report</title><style>body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px}th{background:#eee}.timeline td:first-child{white-space:nowrap}</style></head><body>",
        );
        let _ = write!(
            s,
            "<h1>Incident report{}</h1><p>From {} to {} (UTC), from gwanje's journal.</p>",
            self.service
                .as_ref()
                .map_or(String::new(), |v| format!(": {}", e(v))),
            crate::clock::rfc3339(crate::core::Timestamp(self.from)),
            crate::clock::rfc3339(crate::core::Timestamp(self.to))
        );
        s.push_str("<h2>Incidents</h2>");
        if self.incidents.is_empty() {
            s.push_str("<p>No probe failed in this range.</p>");
        } else {
            s.push_str("<table id=\"incidents\"><tr><th>service</th><th>from</th><th>to</th><th>what failed</th><th>detected</th><th>switched</th><th>alerts</th><th>acknowledged</th></tr>");
            for i in &self.incidents {
                let _ = write!(
                    s,
                    "<tr><td>{}</td></tr>",
                    incident_cells(i, &|t: &str| e(t)).join("</td><td>")
                );
            }
            s.push_str("</table>");
        }
        s.push_str("<h2>Impact per service</h2><table id=\"impact\"><tr><th>service</th><th>first failing probe</th><th>detected</th><th>switched</th><th>acknowledged</th><th>recovered</th></tr>");
        for i in &self.impact {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&i.service),
                clock(i.first_failure),
                at_or(i.detected, i.first_failure),
                at_or(i.switched, i.first_failure),
                at_or(i.acknowledged, i.first_failure),
                at_or(i.recovered, i.first_failure)
            );
        }
        s.push_str("</table><h2>Plots</h2>");
        for (title, plot) in &self.plots {
            let _ = write!(s, "<h3>{}</h3>{plot}", e(title));
        }
        s.push_str("<h2 id=\"disclosure\">Disclosure</h2>");
        if self.exposures.is_empty() {
            s.push_str("<p>gwanje observed no personal data in a response and no identity mismatch in this range.</p>");
        } else {
            s.push_str("<table id=\"exposures\"><tr><th>target</th><th>finding</th><th>probes</th><th>responses</th><th>first seen (discovery)</th><th>last seen</th><th>72-hour report due</th></tr>");
            for x in &self.exposures {
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    e(&x.target),
                    x.kind,
                    x.probes,
                    x.responses,
                    crate::clock::rfc3339(crate::core::Timestamp(x.first)),
                    crate::clock::rfc3339(crate::core::Timestamp(x.last)),
                    crate::clock::rfc3339(crate::core::Timestamp(due(x.first)))
                );
            }
            s.push_str("</table><p>Facts only: gwanje never stores the data itself.</p>");
        }
        s.push_str("<h2>Gaps in the record</h2>");
        if self.gaps.is_empty() {
            s.push_str("<p>None: the record is complete for this range.</p>");
        } else {
            s.push_str("<ul>");
            for g in &self.gaps {
                let _ = write!(
                    s,
                    "<li>{} to {}: {} (unknown, not up)</li>",
                    clock(g.from),
                    clock(g.to),
                    g.why
                );
            }
            s.push_str("</ul>");
        }
        for (n, i) in self.incidents.iter().enumerate() {
            let _ = write!(
                s,
                "<h2 id=\"incident-{}\">Incident {}: {} from {}</h2><table class=\"timeline\">",
                n + 1,
                n + 1,
                e(&i.service),
                clock(i.from)
            );
            for (at, text) in self.during(i) {
                let _ = write!(s, "<tr><td>{}</td><td>{}</td></tr>", clock(*at), e(text));
            }
            s.push_str("</table>");
        }
        s.push_str("<h2>Timeline</h2><table class=\"timeline\" id=\"timeline\">");
        for (at, text) in &self.timeline {
            let _ = write!(s, "<tr><td>{}</td><td>{}</td></tr>", clock(*at), e(text));
        }
        s.push_str("</table></body></html>\n");
        s
    }
}
