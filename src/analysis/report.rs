//! `gwanje report`: the incident report from the journal, as Markdown and
//! as one self-contained HTML page with inline SVG plots. Facts only: what
//! the probes saw, what gwanje decided and when, who was told and who
//! acknowledged, the impact per service, and for a disclosure what was
//! exposed (counts and times, never the data). Gaps stay unknown.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use super::history::{self, History};
use super::incidents::service_of;
pub use super::seen::{Exposure, Impact};
use super::seen::{FirstFailures, ProbePlots, Seen};
use super::summary::{clock, seconds};
use super::svg::{self, Band, Row};
use crate::core::{Effect, Event, Input, Order, PathState, Subject};
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
    let mut seen = Seen::new(from, to);
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
