//! Per-target probe metrics under blackbox_exporter's names.
//!
//! Each target's last result lives in one compact row; the series are built
//! only when Prometheus scrapes. That keeps memory per target small and
//! label cardinality bounded by the plan (no per-target histograms).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

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
    descs: Vec<Desc>,
}

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
        let descs = FAMILIES
            .iter()
            .map(|(name, help, extra)| {
                let mut labels = vec!["service".to_string(), "target".to_string()];
                labels.extend(extra.iter().map(|s| s.to_string()));
                Desc::new(
                    name.to_string(),
                    help.to_string(),
                    labels,
                    Default::default(),
                )
                .expect("static metric descriptions are valid")
            })
            .collect();
        TargetTable {
            rows: RwLock::new(BTreeMap::new()),
            descs,
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

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

struct Families(Vec<MetricFamily>);

impl Families {
    fn push(&mut self, index: usize, row: &Row, extra: Option<(&str, &str)>, value: f64) {
        let mut labels = vec![label("service", &row.service), label("target", &row.name)];
        if let Some((k, v)) = extra {
            labels.push(label(k, v));
        }
        let mut g = Gauge::default();
        g.set_value(value);
        let mut m = Metric::default();
        m.set_label(labels);
        m.set_gauge(g);
        self.0[index].mut_metric().push(m);
    }
}

fn index_of(name: &str) -> usize {
    FAMILIES
        .iter()
        .position(|(n, ..)| *n == name)
        .expect("known family")
}

/// Registers a shared [`TargetTable`] with a registry.
pub struct TableCollector(pub Arc<TargetTable>);

impl Collector for TableCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut fams = Families(
            FAMILIES
                .iter()
                .map(|(name, help, _)| {
                    let mut f = MetricFamily::default();
                    f.set_name(name.to_string());
                    f.set_help(help.to_string());
                    f.set_field_type(MetricType::GAUGE);
                    f
                })
                .collect(),
        );
        let rows = self.0.rows.read().expect("target table lock");
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        for row in rows.values() {
            match row.state {
                TargetState::Up => fams.push(index_of("gwanje_target_up"), row, None, 1.0),
                TargetState::Down => fams.push(index_of("gwanje_target_up"), row, None, 0.0),
                TargetState::Unknown => {}
            }
            let Some(last) = &row.last else { continue };
            fams.push(index_of("probe_success"), row, None, b(last.ok()));
            fams.push(
                index_of("probe_duration_seconds"),
                row,
                None,
                last.duration.as_secs_f64(),
            );
            match &last.details {
                Details::Http(h) => {
                    fams.push(
                        index_of("probe_http_status_code"),
                        row,
                        None,
                        f64::from(h.status),
                    );
                    for (phase, v) in HttpPhases::NAMES.iter().zip(h.phases.values()) {
                        fams.push(
                            index_of("probe_http_duration_seconds"),
                            row,
                            Some(("phase", phase)),
                            v,
                        );
                    }
                    fams.push(
                        index_of("probe_http_content_length"),
                        row,
                        None,
                        h.content_length as f64,
                    );
                    fams.push(index_of("probe_http_version"), row, None, h.version);
                    fams.push(
                        index_of("probe_http_redirects"),
                        row,
                        None,
                        f64::from(h.redirects),
                    );
                    fams.push(
                        index_of("probe_failed_due_to_regex"),
                        row,
                        None,
                        b(h.failed_due_to_regex),
                    );
                    fams.push(
                        index_of("gwanje_personal_data_detected"),
                        row,
                        None,
                        b(h.personal_data),
                    );
                    if let Some(e) = h.cert_expiry {
                        fams.push(
                            index_of("probe_ssl_earliest_cert_expiry"),
                            row,
                            None,
                            e as f64,
                        );
                    }
                }
                Details::Tcp {
                    cert_expiry: Some(e),
                } => {
                    fams.push(
                        index_of("probe_ssl_earliest_cert_expiry"),
                        row,
                        None,
                        *e as f64,
                    );
                }
                Details::Dns(d) => {
                    fams.push(
                        index_of("probe_dns_lookup_time_seconds"),
                        row,
                        None,
                        d.lookup_seconds,
                    );
                    fams.push(
                        index_of("probe_dns_answer_rrs"),
                        row,
                        None,
                        f64::from(d.answers),
                    );
                }
                Details::Icmp(i) => {
                    if let Some(rtt) = i.rtt_seconds {
                        fams.push(
                            index_of("probe_icmp_duration_seconds"),
                            row,
                            Some(("phase", "rtt")),
                            rtt,
                        );
                    }
                    fams.push(
                        index_of("gwanje_icmp_packet_loss_ratio"),
                        row,
                        None,
                        i.loss_ratio(),
                    );
                }
                Details::Tcp { cert_expiry: None } | Details::None => {}
            }
        }
        fams.0
            .into_iter()
            .filter(|f| !f.get_metric().is_empty())
            .collect()
    }
}
