//! Prometheus metrics: per-target probe results plus gwanje's own health.

mod cluster;
pub mod exposition;
mod targets;
mod vantages;

use std::sync::Arc;

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub use cluster::{ClusterMetrics, REFUSAL_REASONS};
pub use targets::TargetTable;
pub use vantages::{REJECT_REASONS, VantageMetrics};

/// Every metric gwanje exports, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// Per-target probe results and health.
    pub targets: Arc<TargetTable>,
    /// Probes finished, by service, kind and result (`success` or a failure kind).
    pub probes_total: IntCounterVec,
    /// Target health changes, by service and new state.
    pub target_changes_total: IntCounterVec,
    /// How late probes started relative to their schedule.
    pub scheduler_lateness: Histogram,
    /// Scheduled probe slots skipped because the previous run overran.
    pub scheduler_overruns: IntCounter,
    /// Probes running now.
    pub probes_in_flight: IntGauge,
    /// Targets in the running plan, by service and kind.
    pub targets_planned: IntGaugeVec,
    /// Whether the last reload succeeded.
    pub reload_successful: IntGauge,
    /// When the last successful reload happened.
    pub reload_success_timestamp: Gauge,
    /// Reloads by result.
    pub reloads_total: IntCounterVec,
    /// 1 when a path is up, 0 when down (absent while unknown).
    pub path_up: IntGaugeVec,
    /// One-hot path state.
    pub path_state: IntGaugeVec,
    /// One-hot active path per group.
    pub group_active_path: IntGaugeVec,
    /// The largest echo payload that passed a down path's last examination.
    pub path_max_passing_payload: IntGaugeVec,
    /// One-hot diagnosis of a down path (all 0 while it is not down).
    pub path_diagnosis: IntGaugeVec,
    /// The last hop that answered a down path's trace (one series per path).
    pub path_last_hop: IntGaugeVec,
    /// Examinations of paths, and the packets they sent.
    pub path_examinations_total: IntCounterVec,
    /// Packets sent by examinations of paths.
    pub path_examination_packets_total: IntCounterVec,
    /// Each path's `path_last_hop` labels, so a new hop replaces the old.
    pub last_hops: std::sync::Mutex<std::collections::BTreeMap<String, [String; 2]>>,
    /// Route moves by group, from, to and reason.
    pub failovers_total: IntCounterVec,
    /// 1 while a group is frozen by its flap guard.
    pub group_frozen: IntGaugeVec,
    /// 1 while a check loses more than the tolerated share through every path.
    pub service_degraded: IntGaugeVec,
    /// A path's failback dampening penalty, per group.
    pub path_penalty: IntGaugeVec,
    /// External route changes found and undone.
    pub route_drift_total: IntCounterVec,
    /// Failed route changes (each is retried).
    pub route_change_failures_total: IntCounterVec,
    /// Identity-probe requests by service, target and result.
    pub identity_requests_total: IntCounterVec,
    /// Responses that carried another canary's document, by service and target.
    pub identity_mismatches_total: IntCounterVec,
    /// Alert batches delivered or failed, by receiver.
    pub alert_deliveries_total: IntCounterVec,
    /// Alert batches dropped because a receiver's queue was full.
    pub alert_queue_dropped_total: IntCounterVec,
    /// Alerts firing now, by name, severity and whether acknowledged.
    pub alerts_firing: IntGaugeVec,
    /// Critical alerts firing that nobody acknowledged.
    pub alerts_unacknowledged_critical: IntGauge,
    /// Connections open to the admin/metrics listener.
    pub api_connections: IntGauge,
    /// Connections closed at once because the listener was at its cap.
    pub api_connections_rejected: IntCounter,
    /// API connections closed to make room for a new one.
    pub api_connections_evicted: IntCounter,
    /// The engine's last sign of life, Unix seconds.
    pub engine_heartbeat: Gauge,
    /// Journal records dropped (queue full, disk failing).
    pub journal_dropped: IntCounter,
    /// Bytes written to the journal.
    pub journal_written: IntCounter,
    /// 1 while journal writes fail.
    pub journal_failing: IntGauge,
    /// The quorum's votes and the peers' streams.
    pub vantages: VantageMetrics,
    /// The cluster's (series exist only for a replica).
    pub cluster: ClusterMetrics,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let targets = Arc::new(TargetTable::new());
        let vantages = VantageMetrics::register(&registry);
        let cluster = ClusterMetrics::register(&registry);
        let m = Metrics {
            probes_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_probes_total",
                    "Probes finished, by service, probe kind and result.",
                ),
                &["service", "kind", "result"],
            )
            .expect("valid metric"),
            target_changes_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_target_state_changes_total",
                    "Target health changes, by service and new state.",
                ),
                &["service", "state"],
            )
            .expect("valid metric"),
            scheduler_lateness: Histogram::with_opts(
                HistogramOpts::new(
                    "gwanje_scheduler_lateness_seconds",
                    "Delay between a probe's scheduled and actual start.",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ]),
            )
            .expect("valid metric"),
            scheduler_overruns: IntCounter::new(
                "gwanje_scheduler_overruns_total",
                "Probe slots skipped because a probe could not start within its interval.",
            )
            .expect("valid metric"),
            probes_in_flight: IntGauge::new("gwanje_probes_in_flight", "Probes running now.")
                .expect("valid metric"),
            targets_planned: IntGaugeVec::new(
                Opts::new(
                    "gwanje_targets",
                    "Targets in the running configuration, by service and kind.",
                ),
                &["service", "kind"],
            )
            .expect("valid metric"),
            reload_successful: IntGauge::new(
                "gwanje_config_last_reload_successful",
                "Whether the last configuration reload succeeded.",
            )
            .expect("valid metric"),
            reload_success_timestamp: Gauge::new(
                "gwanje_config_last_reload_success_timestamp_seconds",
                "Time of the last successful configuration load, Unix seconds.",
            )
            .expect("valid metric"),
            reloads_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_config_reloads_total",
                    "Configuration reloads by result.",
                ),
                &["result"],
            )
            .expect("valid metric"),
            path_up: IntGaugeVec::new(
                Opts::new(
                    "gwanje_path_up",
                    "Whether the path is up (1) or down (0); absent while unknown.",
                ),
                &["path"],
            )
            .expect("valid metric"),
            path_state: IntGaugeVec::new(
                Opts::new(
                    "gwanje_path_state",
                    "The path's state: 1 for the current one of up, down, unknown.",
                ),
                &["path", "state"],
            )
            .expect("valid metric"),
            path_max_passing_payload: IntGaugeVec::new(
                Opts::new(
                    "gwanje_path_max_passing_payload_bytes",
                    "Largest don't-fragment echo payload that passed the down path's last examination (absent when every size passed or none did).",
                ),
                &["path"],
            )
            .expect("valid metric"),
            path_diagnosis: IntGaugeVec::new(
                Opts::new(
                    "gwanje_path_diagnosis",
                    "What is broken on a down path: 1 for the current kind (router_or_link, beyond_router, large_packet_loss, mtu_limit, lossy, checks_only, unknown), 0 otherwise.",
                ),
                &["path", "kind"],
            )
            .expect("valid metric"),
            path_last_hop: IntGaugeVec::new(
                Opts::new(
                    "gwanje_path_last_answering_hop_info",
                    "The last hop that answered the down path's trace, and its TTL (1; one series per path).",
                ),
                &["path", "hop", "ttl"],
            )
            .expect("valid metric"),
            path_examinations_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_path_examinations_total",
                    "Examinations of down paths: kind=ladder (packet sizes, at most every 10 s) or trace (sizes and hops, at most once a minute).",
                ),
                &["path", "kind"],
            )
            .expect("valid metric"),
            path_examination_packets_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_path_examination_packets_total",
                    "Packets the examinations of a path sent.",
                ),
                &["path"],
            )
            .expect("valid metric"),
            last_hops: std::sync::Mutex::default(),
            group_active_path: IntGaugeVec::new(
                Opts::new(
                    "gwanje_group_active_path",
                    "1 for the path the group's route uses now.",
                ),
                &["group", "path"],
            )
            .expect("valid metric"),
            failovers_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_failovers_total",
                    "Route moves, by group, from, to and reason.",
                ),
                &["group", "from", "to", "reason"],
            )
            .expect("valid metric"),
            group_frozen: IntGaugeVec::new(
                Opts::new(
                    "gwanje_group_frozen",
                    "1 while the group's flap guard has frozen automatic switching.",
                ),
                &["group"],
            )
            .expect("valid metric"),
            service_degraded: IntGaugeVec::new(
                Opts::new(
                    "gwanje_service_degraded",
                    "1 while the check loses more than the tolerated share of packets through every path of its group (ServiceDegraded).",
                ),
                &["group", "service", "target"],
            )
            .expect("valid metric"),
            path_penalty: IntGaugeVec::new(
                Opts::new(
                    "gwanje_path_failback_penalty",
                    "The path's route-flap dampening penalty in its group (each failure adds one penalty, halving every half-life); above the reuse threshold it is no failback target.",
                ),
                &["group", "path"],
            )
            .expect("valid metric"),
            route_drift_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_route_drift_total",
                    "Times the kernel's route differed from gwanje's and was restored.",
                ),
                &["group"],
            )
            .expect("valid metric"),
            route_change_failures_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_route_change_failures_total",
                    "Route changes that failed (each is retried with backoff).",
                ),
                &["group"],
            )
            .expect("valid metric"),
            identity_requests_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_identity_requests_total",
                    "Identity-probe requests by result: ok, identity_mismatch, personal_data or the failure kind.",
                ),
                &["service", "target", "result"],
            )
            .expect("valid metric"),
            identity_mismatches_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_identity_mismatches_total",
                    "Responses in which a canary received a document not its own: one carrying another canary's markers, or a document of the step carrying none of the canary's own (owner unknown).",
                ),
                &["service", "target"],
            )
            .expect("valid metric"),
            alert_deliveries_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_alert_deliveries_total",
                    "Alert batches sent to a receiver, by result.",
                ),
                &["receiver", "result"],
            )
            .expect("valid metric"),
            alert_queue_dropped_total: IntCounterVec::new(
                Opts::new(
                    "gwanje_alert_queue_dropped_total",
                    "Alert batches dropped because the receiver's queue was full.",
                ),
                &["receiver"],
            )
            .expect("valid metric"),
            alerts_firing: IntGaugeVec::new(
                Opts::new(
                    "gwanje_alerts_firing",
                    "Alerts firing now, by name, severity and acknowledgement.",
                ),
                &["alertname", "severity", "acknowledged"],
            )
            .expect("valid metric"),
            alerts_unacknowledged_critical: IntGauge::new(
                "gwanje_alerts_unacknowledged_critical",
                "Critical alerts firing that nobody has acknowledged.",
            )
            .expect("valid metric"),
            api_connections: IntGauge::new(
                "gwanje_api_connections",
                "Connections open to the admin and metrics listener.",
            )
            .expect("valid metric"),
            api_connections_rejected: IntCounter::new(
                "gwanje_api_connections_rejected_total",
                "Connections closed at once because the listener had admin.max_connections open.",
            )
            .expect("valid metric"),
            api_connections_evicted: IntCounter::new(
                "gwanje_api_connections_evicted_total",
                "API connections closed to make room when every slot was taken: the one that had made no progress for longest, outside any handler.",
            )
            .expect("valid metric"),
            engine_heartbeat: Gauge::new(
                "gwanje_engine_heartbeat_timestamp_seconds",
                "When the engine last showed it is running, Unix seconds.",
            )
            .expect("valid metric"),
            journal_dropped: IntCounter::new(
                "gwanje_journal_dropped_records_total",
                "Journal records dropped because the queue was full or the disk failed.",
            )
            .expect("valid metric"),
            journal_written: IntCounter::new(
                "gwanje_journal_written_bytes_total",
                "Bytes written to the journal.",
            )
            .expect("valid metric"),
            journal_failing: IntGauge::new(
                "gwanje_journal_failing",
                "1 while writes to the journal fail.",
            )
            .expect("valid metric"),
            targets,
            registry,
            vantages,
            cluster,
        };
        // Every documented series exists from the start, so rate() sees the first event.
        for result in ["success", "failure"] {
            m.reloads_total.with_label_values(&[result]);
        }
        let build_info = IntGaugeVec::new(
            Opts::new("gwanje_build_info", "Build information; always 1."),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let r = &m.registry;
        for c in [
            Box::new(m.probes_total.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.target_changes_total.clone()),
            Box::new(m.scheduler_lateness.clone()),
            Box::new(m.scheduler_overruns.clone()),
            Box::new(m.probes_in_flight.clone()),
            Box::new(m.targets_planned.clone()),
            Box::new(m.reload_successful.clone()),
            Box::new(m.reload_success_timestamp.clone()),
            Box::new(m.reloads_total.clone()),
            Box::new(m.path_up.clone()),
            Box::new(m.path_state.clone()),
            Box::new(m.path_max_passing_payload.clone()),
            Box::new(m.path_diagnosis.clone()),
            Box::new(m.path_last_hop.clone()),
            Box::new(m.path_examinations_total.clone()),
            Box::new(m.path_examination_packets_total.clone()),
            Box::new(m.group_active_path.clone()),
            Box::new(m.failovers_total.clone()),
            Box::new(m.group_frozen.clone()),
            Box::new(m.service_degraded.clone()),
            Box::new(m.path_penalty.clone()),
            Box::new(m.route_drift_total.clone()),
            Box::new(m.route_change_failures_total.clone()),
            Box::new(m.identity_requests_total.clone()),
            Box::new(m.identity_mismatches_total.clone()),
            Box::new(m.alert_deliveries_total.clone()),
            Box::new(m.alert_queue_dropped_total.clone()),
            Box::new(m.alerts_firing.clone()),
            Box::new(m.alerts_unacknowledged_critical.clone()),
            Box::new(m.api_connections.clone()),
            Box::new(m.api_connections_rejected.clone()),
            Box::new(m.api_connections_evicted.clone()),
            Box::new(m.engine_heartbeat.clone()),
            Box::new(m.journal_dropped.clone()),
            Box::new(m.journal_written.clone()),
            Box::new(m.journal_failing.clone()),
            Box::new(build_info),
        ] {
            r.register(c).expect("register");
        }
        Arc::new(m)
    }

    /// The text exposition of every metric.
    pub fn render(self: &Arc<Self>) -> String {
        Self::render_chunks(self.clone()).collect()
    }

    /// Shows `diagnosis` for `path` (`None`: the path is not down).
    pub fn set_diagnosis(&self, path: &str, diagnosis: Option<&crate::core::Diagnosis>) {
        for k in crate::core::DiagnosisKind::ALL {
            let on = diagnosis.is_some_and(|d| d.kind == k);
            self.path_diagnosis
                .with_label_values(&[path, k.as_str()])
                .set(i64::from(on));
        }
        match diagnosis.and_then(|d| d.evidence.max_passing_payload) {
            Some(b) => self
                .path_max_passing_payload
                .with_label_values(&[path])
                .set(i64::from(b)),
            None => {
                let _ = self.path_max_passing_payload.remove_label_values(&[path]);
            }
        }
        let mut hops = self.last_hops.lock().expect("last hops lock");
        if let Some([hop, ttl]) = hops.remove(path) {
            let _ = self.path_last_hop.remove_label_values(&[path, &hop, &ttl]);
        }
        if let Some((ttl, hop)) = diagnosis.and_then(|d| d.evidence.last_hop.clone()) {
            let ttl = ttl.to_string();
            self.path_last_hop
                .with_label_values(&[path, &hop, &ttl])
                .set(1);
            hops.insert(path.to_string(), [hop, ttl]);
        }
    }

    /// Counts an identity run's requests and mismatches for `target`.
    pub fn count_identity(
        &self,
        target: &crate::plan::Target,
        run: &crate::probe::IdentityDetails,
    ) {
        let (s, t) = (&*target.service, &*target.name);
        for (result, n) in &run.results {
            self.identity_requests_total
                .with_label_values(&[s, t, result])
                .inc_by(u64::from(*n));
        }
        self.identity_mismatches_total
            .with_label_values(&[s, t])
            .inc_by(u64::from(run.findings.mismatches));
    }

    /// Starts an identity target's counters at zero, so `rate()` and
    /// `increase()` see the first mismatch.
    pub fn init_identity(&self, target: &crate::plan::Target) {
        let (s, t) = (&*target.service, &*target.name);
        for result in ["ok", "identity_mismatch", "personal_data", "not_a_document"] {
            self.identity_requests_total
                .with_label_values(&[s, t, result]);
        }
        self.identity_mismatches_total.with_label_values(&[s, t]);
    }

    /// The exposition in chunks, one metric family of the target table at a
    /// time, produced as they are consumed: a scrape of 5,000 targets then
    /// never holds the whole text (about 4 MB) in memory.
    pub fn render_chunks(self: Arc<Self>) -> impl Iterator<Item = String> + Send + 'static {
        let own = self.clone();
        let own_metrics = std::iter::once_with(move || {
            TextEncoder::new()
                .encode_to_string(&own.registry.gather())
                .expect("text encoding into a String cannot fail")
        });
        let families = (0..TargetTable::FAMILY_COUNT).map(move |i| {
            let mut out = String::new();
            self.targets.render_family(i, &mut out);
            out
        });
        own_metrics.chain(families)
    }
}
