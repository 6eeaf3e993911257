//! Per-target probe metrics under blackbox_exporter's names.
//!
//! Each target's last result lives in one compact row; the series are written
//! as text only when Prometheus scrapes. That keeps memory per target small and
//! label cardinality bounded by the plan (no per-target histograms).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::core::{TargetKey, TargetState};
use crate::plan::Plan;
use crate::probe::{Details, HttpPhases, ProbeResult};

struct Row {
    service: Arc<str>,
    name: Arc<str>,
    last: Option<ProbeResult>,
    state: TargetState,
}

/// The last probe result and health state of every planned target.
pub struct TargetTable {
    rows: RwLock<BTreeMap<TargetKey, Row>>,
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
        for t in &plan.targets {
            let row = old.remove(&t.key).unwrap_or(Row {
                service: t.service.clone(),
                name: t.name.clone(),
                last: None,
                state: TargetState::Unknown,
            });
            rows.insert(t.key.clone(), row);
        }
    }

    /// Stores a target's latest result.
    pub fn record(&self, key: &TargetKey, result: ProbeResult) {
        if let Some(row) = self.rows.write().expect("target table lock").get_mut(key) {
            row.last = Some(result);
        }
    }

    /// Stores a target's decided health.
    pub fn set_state(&self, key: &TargetKey, state: TargetState) {
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
        let _ = write!(self.out, "{}{{service=\"", self.name);
        escape_into(self.out, &row.service);
        self.out.push_str("\",target=\"");
        escape_into(self.out, &row.name);
        if let Some((k, v)) = extra {
            let _ = write!(self.out, "\",{k}=\"");
            escape_into(self.out, v);
        }
        self.out.push_str("\"} ");
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
    /// Appends every per-target series to `out` in the text exposition format.
    pub fn render_into(&self, out: &mut String) {
        let rows = self.rows.read().expect("target table lock");
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        for (name, help, _) in FAMILIES {
            let mut f = Family {
                out: &mut *out,
                name,
                help,
                started: false,
            };
            for row in rows.values() {
                write_samples(&mut f, row, b);
            }
        }
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
