//! Per-target probe metrics under blackbox_exporter's names.
//!
//! Each target's last result lives in one compact row; the series are written
//! as text only when Prometheus scrapes. That keeps memory per target small and
//! label cardinality bounded by the plan (no per-target histograms).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::core::{Subject, TargetState};
use crate::plan::Plan;
use crate::probe::{Details, HttpPhases, ProbeResult};

struct Row {
    service: Arc<str>,
    name: Arc<str>,
    /// `""` for a target probed directly.
    path: Arc<str>,
    router: bool,
    last: Option<ProbeResult>,
    state: TargetState,
}

/// The last probe result and health state of every planned job.
pub struct TargetTable {
    rows: RwLock<BTreeMap<Subject, Row>>,
}

/// Family name, help, and the label it adds besides `service` and `target`.
const FAMILIES: &[(&str, &str, &[&str])] = &[
    (
        "probe_success",
        "Whether the last probe succeeded (1) or failed (0).",
        &[],
    ),
    (
        "probe_duration_seconds",
        "How long the last probe took.",
        &[],
    ),
    (
        "probe_http_status_code",
        "Status code of the last HTTP response (0 if none).",
        &[],
    ),
    (
        "probe_http_duration_seconds",
        "Duration of the last HTTP probe by phase, summed over redirects.",
        &["phase"],
    ),
    (
        "probe_http_content_length",
        "Body bytes of the last HTTP response (-1 if none).",
        &[],
    ),
    (
        "probe_http_version",
        "HTTP version of the last response.",
        &[],
    ),
    (
        "probe_http_redirects",
        "Redirects followed by the last HTTP probe.",
        &[],
    ),
    (
        "probe_failed_due_to_regex",
        "Whether the last HTTP probe failed a body regex.",
        &[],
    ),
    (
        "probe_ssl_earliest_cert_expiry",
        "Earliest certificate expiry in the presented chain, Unix seconds.",
        &[],
    ),
    (
        "probe_dns_lookup_time_seconds",
        "How long the last DNS lookup took.",
        &[],
    ),
    (
        "probe_dns_answer_rrs",
        "Records in the last DNS answer section.",
        &[],
    ),
    (
        "probe_icmp_duration_seconds",
        "Mean ICMP round-trip time of the last probe by phase.",
        &["phase"],
    ),
    (
        "gwanje_icmp_packet_loss_ratio",
        "Fraction of ICMP echo requests without a reply in the last probe.",
        &[],
    ),
    (
        "gwanje_personal_data_detected",
        "Whether the last HTTP response carried a resident registration number.",
        &[],
    ),
    (
        "gwanje_target_up",
        "Decided health of the target: 1 up, 0 down; absent while unknown.",
        &[],
    ),
    (
        "gwanje_identity_round_duration_seconds",
        "Wall time of one round of the last identity probe (every canary through the flow).",
        &[],
    ),
    (
        "gwanje_identity_request_duration_seconds",
        "Request latency of the last identity probe by quantile (0.5, 0.95, 1).",
        &["quantile"],
    ),
];

/// Families of path routers, labelled `path` only.
const ROUTER_FAMILIES: &[(&str, &str)] = &[
    (
        "gwanje_router_up",
        "Decided health of the path's router: 1 up, 0 down; absent while unknown.",
    ),
    (
        "gwanje_router_rtt_seconds",
        "Mean ICMP round-trip time to the path's router in the last check.",
    ),
    (
        "gwanje_router_loss_ratio",
        "Fraction of ICMP echo requests to the path's router without a reply in the last check.",
    ),
];

impl TargetTable {
    /// An empty table.
    pub fn new() -> Self {
        TargetTable {
            rows: RwLock::new(BTreeMap::new()),
        }
    }

    /// Makes the rows match `plan`: new targets appear, removed ones vanish,
    /// unchanged ones keep their last result.
    pub fn sync(&self, plan: &Plan) {
        let mut rows = self.rows.write().expect("target table lock");
        let mut old = std::mem::take(&mut *rows);
        for job in &plan.jobs {
            let row = old.remove(&job.subject).unwrap_or_else(|| Row {
                service: job.target.service.clone(),
                name: job.target.name.clone(),
                path: job.path_label().into(),
                router: matches!(job.subject, Subject::Router(_)),
                last: None,
                state: TargetState::Unknown,
            });
            rows.insert(job.subject.clone(), row);
        }
    }

    /// Stores a job's latest result.
    pub fn record(&self, key: &Subject, result: ProbeResult) {
        if let Some(row) = self.rows.write().expect("target table lock").get_mut(key) {
            row.last = Some(result);
        }
    }

    /// Stores a job's decided health.
    pub fn set_state(&self, key: &Subject, state: TargetState) {
        if let Some(row) = self.rows.write().expect("target table lock").get_mut(key) {
            row.state = state;
        }
    }
}

impl Default for TargetTable {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes one family's samples in the text exposition format, the header
/// only when there is a sample. Rendering straight to text (rather than
/// through the prometheus crate's object model) keeps a scrape of 5,000
/// targets from allocating tens of megabytes of label objects.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
    help: &'static str,
    started: bool,
    /// Without the service/target/path labels, as blackbox_exporter's
    /// `/probe` answers (the scrape adds the target's identity).
    bare: bool,
}

impl Family<'_> {
    fn sample(&mut self, row: &Row, extra: Option<(&str, &str)>, value: f64) {
        use std::fmt::Write;
        if !self.started {
            let _ = write!(
                self.out,
                "# HELP {} {}\n# TYPE {} gauge\n",
                self.name, self.help, self.name
            );
            self.started = true;
        }
        if self.bare {
            let _ = write!(self.out, "{}", self.name);
            match extra {
                Some((k, v)) => {
                    let _ = write!(self.out, "{{{k}=\"");
                    escape_into(self.out, v);
                    self.out.push_str("\"} ");
                }
                None => self.out.push(' '),
            }
        } else if row.router {
            let _ = write!(self.out, "{}{{path=\"", self.name);
            escape_into(self.out, &row.path);
        } else {
            let _ = write!(self.out, "{}{{service=\"", self.name);
            escape_into(self.out, &row.service);
            self.out.push_str("\",target=\"");
            escape_into(self.out, &row.name);
            self.out.push_str("\",path=\"");
            escape_into(self.out, &row.path);
        }
        if !self.bare {
            if let Some((k, v)) = extra {
                let _ = write!(self.out, "\",{k}=\"");
                escape_into(self.out, v);
            }
            self.out.push_str("\"} ");
        }
        if value.is_nan() {
            self.out.push_str("NaN");
        } else if value.is_infinite() {
            self.out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(self.out, "{value}");
        }
        self.out.push('\n');
    }
}

fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl TargetTable {
    /// The latest result of `subject` alone, without identity labels, as
    /// blackbox_exporter's `/probe` answers; `None` before its first result.
    pub fn render_probe(&self, subject: &Subject) -> Option<String> {
        let rows = self.rows.read().expect("target table lock");
        let row = rows.get(subject).filter(|r| r.last.is_some())?;
        let mut out = String::new();
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        for (name, help, _) in FAMILIES {
            let mut f = Family {
                out: &mut out,
                name,
                help,
                started: false,
                bare: true,
            };
            write_samples(&mut f, row, b);
        }
        Some(out)
    }

    /// Number of families [`TargetTable::render_family`] knows.
    pub const FAMILY_COUNT: usize = FAMILIES.len() + ROUTER_FAMILIES.len();

    /// Appends family `i` (of [`TargetTable::FAMILY_COUNT`]) to `out`.
    pub fn render_family(&self, i: usize, out: &mut String) {
        let rows = self.rows.read().expect("target table lock");
        if let Some((name, help, _)) = FAMILIES.get(i) {
            let mut f = Family {
                out,
                name,
                help,
                started: false,
                bare: false,
            };
            let b = |x: bool| if x { 1.0 } else { 0.0 };
            for row in rows.values().filter(|r| !r.router) {
                write_samples(&mut f, row, b);
            }
        } else if let Some((name, help)) = ROUTER_FAMILIES.get(i - FAMILIES.len()) {
            let mut f = Family {
                out,
                name,
                help,
                started: false,
                bare: false,
            };
            for row in rows.values().filter(|r| r.router) {
                write_router_samples(&mut f, row);
            }
        }
    }
}

fn write_router_samples(f: &mut Family<'_>, row: &Row) {
    match f.name {
        "gwanje_router_up" => match row.state {
            TargetState::Up => f.sample(row, None, 1.0),
            TargetState::Down => f.sample(row, None, 0.0),
            TargetState::Unknown => {}
        },
        "gwanje_router_rtt_seconds" => {
            if let Some(Details::Icmp(i)) = row.last.as_ref().map(|l| &l.details)
                && let Some(rtt) = i.rtt_seconds
            {
                f.sample(row, None, rtt);
            }
        }
        "gwanje_router_loss_ratio" => {
            if let Some(Details::Icmp(i)) = row.last.as_ref().map(|l| &l.details) {
                f.sample(row, None, i.loss_ratio());
            }
        }
        _ => {}
    }
}

fn write_samples(f: &mut Family<'_>, row: &Row, b: impl Fn(bool) -> f64) {
    let name = f.name;
    if name == "gwanje_target_up" {
        match row.state {
            TargetState::Up => f.sample(row, None, 1.0),
            TargetState::Down => f.sample(row, None, 0.0),
            TargetState::Unknown => {}
        }
        return;
    }
    let Some(last) = &row.last else { return };
    match (name, &last.details) {
        ("probe_success", _) => f.sample(row, None, b(last.ok())),
        ("probe_duration_seconds", _) => f.sample(row, None, last.duration.as_secs_f64()),
        ("probe_http_status_code", Details::Http(h)) => f.sample(row, None, f64::from(h.status)),
        ("probe_http_duration_seconds", Details::Http(h)) => {
            for (phase, v) in HttpPhases::NAMES.iter().zip(h.phases.values()) {
                f.sample(row, Some(("phase", phase)), v);
            }
        }
        ("probe_http_content_length", Details::Http(h)) => {
            f.sample(row, None, h.content_length as f64)
        }
        ("probe_http_version", Details::Http(h)) => f.sample(row, None, h.version),
        ("probe_http_redirects", Details::Http(h)) => f.sample(row, None, f64::from(h.redirects)),
        ("probe_failed_due_to_regex", Details::Http(h)) => {
            f.sample(row, None, b(h.failed_due_to_regex))
        }
        ("gwanje_personal_data_detected", Details::Http(h)) => {
            f.sample(row, None, b(h.personal_data))
        }
        ("gwanje_personal_data_detected", Details::Identity(i)) => {
            f.sample(row, None, b(i.findings.personal_data > 0))
        }
        ("gwanje_identity_round_duration_seconds", Details::Identity(i)) => {
            f.sample(row, None, i.round_seconds)
        }
        ("gwanje_identity_request_duration_seconds", Details::Identity(i)) => {
            for (q, v) in [
                ("0.5", i.latency_p50),
                ("0.95", i.latency_p95),
                ("1", i.latency_max),
            ] {
                if let Some(v) = v {
                    f.sample(row, Some(("quantile", q)), v);
                }
            }
        }
        ("probe_ssl_earliest_cert_expiry", Details::Http(h)) => {
            if let Some(e) = h.cert_expiry {
                f.sample(row, None, e as f64);
            }
        }
        (
            "probe_ssl_earliest_cert_expiry",
            Details::Tcp {
                cert_expiry: Some(e),
            },
        ) => f.sample(row, None, *e as f64),
        ("probe_dns_lookup_time_seconds", Details::Dns(d)) => f.sample(row, None, d.lookup_seconds),
        ("probe_dns_answer_rrs", Details::Dns(d)) => f.sample(row, None, f64::from(d.answers)),
        ("probe_icmp_duration_seconds", Details::Icmp(i)) => {
            if let Some(rtt) = i.rtt_seconds {
                f.sample(row, Some(("phase", "rtt")), rtt);
            }
        }
        ("gwanje_icmp_packet_loss_ratio", Details::Icmp(i)) => f.sample(row, None, i.loss_ratio()),
        _ => {}
    }
}
