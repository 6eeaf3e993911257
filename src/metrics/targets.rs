//! Per-target probe metrics under blackbox_exporter's names.
//!
//! Each target's last result lives in one compact row; the series are written
//! as text only when Prometheus scrapes. That keeps memory per target small and
//! label cardinality bounded by the plan (no per-target histograms).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::core::{Subject, TargetState};
use crate::plan::Plan;
use crate::probe::{
    Details, DnsDetails, HttpDetails, HttpPhases, IcmpDetails, IdentityDetails, ProbeResult,
    TlsInfo,
};

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

/// Family name and help, in the order they are written.
const FAMILIES: &[(&str, &str)] = &[
    (
        "probe_success",
        "Whether the last probe succeeded (1) or failed (0).",
    ),
    (
        "probe_duration_seconds",
        "How long the last probe took (an ICMP probe's echoes are spaced over it).",
    ),
    (
        "probe_dns_lookup_time_seconds",
        "How long resolving the target's name took in the last probe (every prober that resolves).",
    ),
    (
        "probe_ip_protocol",
        "IP version of the address probed: 4 or 6 (0 when resolution failed).",
    ),
    (
        "probe_ip_addr_hash",
        "FNV-1a hash of the address probed (0 when resolution failed): it changes when the name moves.",
    ),
    (
        "probe_http_status_code",
        "Status code of the last HTTP response (0 if none).",
    ),
    (
        "probe_http_duration_seconds",
        "Duration of the last HTTP probe by phase, summed over redirects.",
    ),
    (
        "probe_http_content_length",
        "Content-Length header of the last HTTP response (-1 without one, 0 if no response).",
    ),
    (
        "probe_http_uncompressed_body_length",
        "Body bytes read from the last HTTP response (0 if none).",
    ),
    (
        "probe_http_version",
        "HTTP version of the last response (0 if none).",
    ),
    (
        "probe_http_redirects",
        "Redirects followed by the last HTTP probe.",
    ),
    (
        "probe_http_ssl",
        "Whether the last HTTP response came over TLS.",
    ),
    (
        "probe_http_last_modified_timestamp_seconds",
        "Last-Modified header of the last HTTP response, Unix seconds.",
    ),
    (
        "probe_failed_due_to_regex",
        "Whether the last probe failed a body (HTTP) or expect (TCP) regex.",
    ),
    (
        "probe_ssl_earliest_cert_expiry",
        "Earliest certificate expiry in the presented chain, Unix seconds (also when verification failed).",
    ),
    (
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "Earliest expiry in the verified chain, trust anchor included, Unix seconds.",
    ),
    (
        "probe_ssl_last_chain_info",
        "The leaf certificate of the last verified TLS handshake (always 1).",
    ),
    (
        "probe_tls_version_info",
        "The TLS version of the last handshake (always 1).",
    ),
    (
        "probe_dns_duration_seconds",
        "Duration of the last DNS query by phase.",
    ),
    (
        "probe_dns_query_succeeded",
        "Whether the last DNS query got a response (whatever its code).",
    ),
    (
        "probe_dns_answer_rrs",
        "Records in the last DNS response's answer section.",
    ),
    (
        "probe_dns_authority_rrs",
        "Records in the last DNS response's authority section.",
    ),
    (
        "probe_dns_additional_rrs",
        "Records in the last DNS response's additional section.",
    ),
    ("probe_dns_serial", "SOA serial in the last DNS answer."),
    (
        "probe_icmp_duration_seconds",
        "Duration of the last ICMP probe by phase; rtt is the first echo's (0 without a reply).",
    ),
    (
        "probe_icmp_reply_hop_limit",
        "IP TTL of the first ICMP reply of the last probe.",
    ),
    (
        "gwanje_icmp_packet_loss_ratio",
        "Fraction of ICMP echo requests without a reply in the last probe.",
    ),
    (
        "gwanje_icmp_rtt_min_seconds",
        "Fastest ICMP reply of the last probe.",
    ),
    (
        "gwanje_icmp_rtt_avg_seconds",
        "Mean ICMP round-trip time of the last probe's replies.",
    ),
    (
        "gwanje_icmp_rtt_max_seconds",
        "Slowest ICMP reply of the last probe.",
    ),
    (
        "gwanje_icmp_rtt_stddev_seconds",
        "Standard deviation of the last ICMP probe's round-trip times.",
    ),
    (
        "gwanje_personal_data_detected",
        "Whether the last HTTP response carried a resident registration number.",
    ),
    (
        "gwanje_target_up",
        "Decided health of the target: 1 up, 0 down; absent while unknown.",
    ),
    (
        "gwanje_identity_round_duration_seconds",
        "Wall time of one round of the last identity probe (every canary through the flow).",
    ),
    (
        "gwanje_identity_request_duration_seconds",
        "Request latency of the last identity probe by quantile (0.5, 0.95, 1).",
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
    fn sample(&mut self, row: &Row, labels: &[(&str, &str)], value: f64) {
        use std::fmt::Write;
        if !self.started {
            let _ = write!(
                self.out,
                "# HELP {} {}\n# TYPE {} gauge\n",
                self.name, self.help, self.name
            );
            self.started = true;
        }
        self.out.push_str(self.name);
        let identity: &[(&str, &str)] = if self.bare {
            &[]
        } else if row.router {
            &[("path", &row.path)]
        } else {
            &[
                ("service", &row.service),
                ("target", &row.name),
                ("path", &row.path),
            ]
        };
        let mut sep = '{';
        for (k, v) in identity.iter().chain(labels) {
            self.out.push(sep);
            sep = ',';
            let _ = write!(self.out, "{k}=\"");
            escape_into(self.out, v);
            self.out.push('"');
        }
        if sep == ',' {
            self.out.push('}');
        }
        self.out.push(' ');
        if value.is_nan() {
            self.out.push_str("NaN");
        } else if value.is_infinite() {
            self.out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(self.out, "{value}");
        }
        self.out.push('\n');
    }

    fn one(&mut self, row: &Row, value: f64) {
        self.sample(row, &[], value);
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
        for (name, help) in FAMILIES {
            let mut f = Family {
                out: &mut out,
                name,
                help,
                started: false,
                bare: true,
            };
            write_samples(&mut f, row);
        }
        Some(out)
    }

    /// Number of families [`TargetTable::render_family`] knows.
    pub const FAMILY_COUNT: usize = FAMILIES.len() + ROUTER_FAMILIES.len();

    /// Appends family `i` (of [`TargetTable::FAMILY_COUNT`]) to `out`.
    pub fn render_family(&self, i: usize, out: &mut String) {
        let rows = self.rows.read().expect("target table lock");
        if let Some((name, help)) = FAMILIES.get(i) {
            let mut f = Family {
                out,
                name,
                help,
                started: false,
                bare: false,
            };
            for row in rows.values().filter(|r| !r.router) {
                write_samples(&mut f, row);
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
    let icmp = match row.last.as_ref().map(|l| &l.details) {
        Some(Details::Icmp(i)) => Some(i),
        _ => None,
    };
    match f.name {
        "gwanje_router_up" => write_state(f, row),
        "gwanje_router_rtt_seconds" => {
            if let Some(rtt) = icmp.and_then(|i| i.rtt_seconds) {
                f.one(row, rtt);
            }
        }
        "gwanje_router_loss_ratio" => {
            if let Some(i) = icmp {
                f.one(row, i.loss_ratio());
            }
        }
        _ => {}
    }
}

fn write_state(f: &mut Family<'_>, row: &Row) {
    match row.state {
        TargetState::Up => f.one(row, 1.0),
        TargetState::Down => f.one(row, 0.0),
        TargetState::Unknown => {}
    }
}

fn b(x: bool) -> f64 {
    if x { 1.0 } else { 0.0 }
}

/// Writes `row`'s samples of family `f`: blackbox_exporter's families only
/// for the probers that have them, present or absent as it makes them.
fn write_samples(f: &mut Family<'_>, row: &Row) {
    if f.name == "gwanje_target_up" {
        return write_state(f, row);
    }
    let Some(last) = &row.last else { return };
    let d = &last.details;
    match f.name {
        "probe_success" => return f.one(row, b(last.ok())),
        "probe_duration_seconds" => return f.one(row, blackbox_duration(last)),
        _ => {}
    }
    if f.name.starts_with("probe_ip_") || f.name == "probe_dns_lookup_time_seconds" {
        if let Some(l) = d.lookup() {
            let v = match f.name {
                "probe_ip_protocol" => l.protocol(),
                "probe_ip_addr_hash" => l.addr_hash().unwrap_or(0.0),
                _ => l.seconds,
            };
            f.one(row, v);
        }
        return;
    }
    if f.name.starts_with("probe_ssl_") || f.name == "probe_tls_version_info" {
        return write_tls(f, row, d.tls());
    }
    match d {
        Details::Http(h) => write_http(f, row, h),
        Details::Tcp(t) => {
            if f.name == "probe_failed_due_to_regex" {
                f.one(row, b(t.failed_due_to_regex));
            }
        }
        Details::Dns(dns) => write_dns(f, row, dns),
        Details::Icmp(i) => write_icmp(f, row, i),
        Details::Identity(i) => write_identity(f, row, i),
        Details::None => {}
    }
}

fn write_tls(f: &mut Family<'_>, row: &Row, tls: Option<&TlsInfo>) {
    let Some(tls) = tls else { return };
    match f.name {
        "probe_ssl_earliest_cert_expiry" => {
            if let Some(e) = tls.earliest_expiry {
                f.one(row, e as f64);
            }
        }
        "probe_ssl_last_chain_expiry_timestamp_seconds" => {
            if let Some(e) = tls.chain_expiry {
                f.one(row, e as f64);
            }
        }
        "probe_tls_version_info" => {
            if let Some(v) = tls.version {
                f.sample(row, &[("version", v)], 1.0);
            }
        }
        "probe_ssl_last_chain_info" => {
            if let (Some(leaf), Some(_)) = (&tls.leaf, tls.version) {
                f.sample(
                    row,
                    &[
                        ("fingerprint_sha256", &leaf.fingerprint_sha256),
                        ("subject", &leaf.subject),
                        ("issuer", &leaf.issuer),
                        ("subjectalternative", &leaf.subject_alternative),
                    ],
                    1.0,
                );
            }
        }
        _ => {}
    }
}

fn write_http(f: &mut Family<'_>, row: &Row, h: &HttpDetails) {
    let v = match f.name {
        "probe_http_status_code" => f64::from(h.status),
        "probe_http_duration_seconds" => {
            for (phase, v) in HttpPhases::NAMES.iter().zip(h.phases.values()) {
                f.sample(row, &[("phase", phase)], v);
            }
            return;
        }
        "probe_http_content_length" => h.content_length as f64,
        "probe_http_uncompressed_body_length" => h.body_length as f64,
        "probe_http_version" => h.version,
        "probe_http_redirects" => f64::from(h.redirects),
        "probe_http_ssl" => b(h.ssl),
        "probe_http_last_modified_timestamp_seconds" => match h.last_modified {
            Some(t) => t as f64,
            None => return,
        },
        "probe_failed_due_to_regex" => b(h.failed_due_to_regex),
        "gwanje_personal_data_detected" => b(h.personal_data),
        _ => return,
    };
    f.one(row, v);
}

fn write_dns(f: &mut Family<'_>, row: &Row, d: &DnsDetails) {
    let v = match f.name {
        "probe_dns_duration_seconds" => {
            let p = &d.phases;
            for (phase, v) in [
                ("resolve", p.resolve),
                ("connect", p.connect),
                ("request", p.request),
            ] {
                f.sample(row, &[("phase", phase)], v);
            }
            return;
        }
        "probe_dns_query_succeeded" => b(d.query_succeeded),
        "probe_dns_answer_rrs" => f64::from(d.answers),
        "probe_dns_authority_rrs" => f64::from(d.authority),
        "probe_dns_additional_rrs" => f64::from(d.additional),
        "probe_dns_serial" => match d.serial {
            Some(s) => f64::from(s),
            None => return,
        },
        _ => return,
    };
    f.one(row, v);
}

/// The probe's duration as blackbox_exporter measures it: for ICMP, which
/// it probes with one echo, up to the first reply (gwanje's spaced echoes
/// would otherwise make it tens of times longer); otherwise the whole probe.
fn blackbox_duration(last: &ProbeResult) -> f64 {
    match &last.details {
        Details::Icmp(IcmpDetails {
            lookup,
            setup_seconds,
            first_rtt: Some(rtt),
            ..
        }) => lookup.map_or(0.0, |l| l.seconds) + setup_seconds + rtt,
        _ => last.duration.as_secs_f64(),
    }
}

fn write_icmp(f: &mut Family<'_>, row: &Row, i: &IcmpDetails) {
    let stat = |pick: fn(&crate::probe::RttStats) -> f64| i.rtt.as_ref().map(pick);
    let v = match f.name {
        "probe_icmp_duration_seconds" => {
            let resolve = i.lookup.map_or(0.0, |l| l.seconds);
            for (phase, v) in [
                ("resolve", resolve),
                ("setup", i.setup_seconds),
                ("rtt", i.first_rtt.unwrap_or(0.0)),
            ] {
                f.sample(row, &[("phase", phase)], v);
            }
            return;
        }
        "probe_icmp_reply_hop_limit" => i.reply_hop_limit.map(f64::from),
        "gwanje_icmp_packet_loss_ratio" => Some(i.loss_ratio()),
        "gwanje_icmp_rtt_min_seconds" => stat(|s| s.min),
        "gwanje_icmp_rtt_avg_seconds" => stat(|s| s.avg),
        "gwanje_icmp_rtt_max_seconds" => stat(|s| s.max),
        "gwanje_icmp_rtt_stddev_seconds" => stat(|s| s.stddev),
        _ => None,
    };
    if let Some(v) = v {
        f.one(row, v);
    }
}

fn write_identity(f: &mut Family<'_>, row: &Row, i: &IdentityDetails) {
    match f.name {
        "gwanje_personal_data_detected" => f.one(row, b(i.findings.personal_data > 0)),
        "gwanje_identity_round_duration_seconds" => f.one(row, i.round_seconds),
        "gwanje_identity_request_duration_seconds" => {
            for (q, v) in [
                ("0.5", i.latency_p50),
                ("0.95", i.latency_p95),
                ("1", i.latency_max),
            ] {
                if let Some(v) = v {
                    f.sample(row, &[("quantile", q)], v);
                }
            }
        }
        _ => {}
    }
}
