//! The quorum's metrics: each target's votes, each vantage's health, and
//! each followed peer's stream.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::core::{Ballot, Quorum, Timestamp};

/// Why a peer's line was refused (the `reason` label).
pub const REJECT_REASONS: [&str; 8] = [
    "unauthorized",
    "tls",
    "connect",
    "garbage",
    "oversized",
    "wrong_vantage",
    "sequence",
    "stalled",
];

/// The quorum's version last shown, and each target's values then.
type Shown = (
    Option<u64>,
    std::collections::BTreeMap<crate::core::TargetKey, Vec<i64>>,
);

/// The quorum's and the peers' metrics.
pub struct VantageMetrics {
    /// What `show` last set, per target, and the quorum's version then:
    /// unchanged series are not touched (a thousand targets' votes are
    /// shown every second).
    shown: std::sync::Mutex<Shown>,
    /// Vantages per target and vote (`up`, `down`, `unknown`, `stale`, `isolated`, `skewed`).
    pub target_votes: IntGaugeVec,
    /// Each vantage's vote on each target: 1 up, 0 down, -1 unknown or abstaining.
    pub vantage_vote: IntGaugeVec,
    /// 1 while a vantage reports fresh results.
    pub vantage_up: IntGaugeVec,
    /// Receipt time minus result time of a vantage's latest result.
    pub vantage_lag: GaugeVec,
    /// 1 while a vantage is isolated.
    pub vantage_isolated: IntGaugeVec,
    /// 1 while a followed peer's stream is connected.
    pub peer_connected: IntGaugeVec,
    /// Peer stream faults, by peer and reason.
    pub peer_rejected: IntCounterVec,
    /// Results received from each peer.
    pub peer_results: IntCounterVec,
    /// Stream bytes received from each peer (as sent, before decompression).
    pub peer_bytes: IntCounterVec,
}

impl VantageMetrics {
    /// Creates the metrics and registers them in `r`.
    pub fn register(r: &Registry) -> Self {
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let m = VantageMetrics {
            shown: Default::default(),
            target_votes: gauge(
                "gwanje_target_votes",
                "Vantages per target by vote: up, down, unknown, or abstaining (stale, isolated, skewed).",
                &["service", "target", "verdict"],
            ),
            vantage_vote: gauge(
                "gwanje_vantage_vote",
                "Each vantage's vote on each target: 1 up, 0 down, -1 unknown or abstaining.",
                &["service", "target", "vantage"],
            ),
            vantage_up: gauge(
                "gwanje_vantage_up",
                "1 while a vantage reports fresh results, 0 while it is silent.",
                &["vantage"],
            ),
            vantage_lag: GaugeVec::new(
                Opts::new(
                    "gwanje_vantage_lag_seconds",
                    "Receipt time minus result time of a vantage's latest result (negative: its clock is ahead).",
                ),
                &["vantage"],
            )
            .expect("valid metric"),
            vantage_isolated: gauge(
                "gwanje_vantage_isolated",
                "1 while a vantage is isolated (its controls fail): its votes abstain.",
                &["vantage"],
            ),
            peer_connected: gauge(
                "gwanje_peer_connected",
                "1 while a followed peer's observation stream is connected.",
                &["peer"],
            ),
            peer_rejected: counter(
                "gwanje_peer_stream_faults_total",
                "Faults of followed peers' streams, by reason; nothing from a faulty stream votes.",
                &["peer", "reason"],
            ),
            peer_results: counter(
                "gwanje_peer_results_total",
                "Probe results received from each followed peer.",
                &["peer"],
            ),
            peer_bytes: counter(
                "gwanje_peer_stream_bytes_total",
                "Bytes of observation stream received from each peer, as sent.",
                &["peer"],
            ),
        };
        for c in [
            Box::new(m.target_votes.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.vantage_vote.clone()),
            Box::new(m.vantage_up.clone()),
            Box::new(m.vantage_lag.clone()),
            Box::new(m.vantage_isolated.clone()),
            Box::new(m.peer_connected.clone()),
            Box::new(m.peer_rejected.clone()),
            Box::new(m.peer_results.clone()),
            Box::new(m.peer_bytes.clone()),
        ] {
            r.register(c).expect("register");
        }
        m
    }

    /// Drops every quorum series (a new plan: targets or vantages may be gone).
    pub fn forget(&self) {
        *self.shown.lock().expect("shown lock") = Default::default();
        self.target_votes.reset();
        self.vantage_vote.reset();
        self.vantage_up.reset();
        self.vantage_lag.reset();
        self.vantage_isolated.reset();
    }

    /// Shows the quorum as it stands at `now` (once a second: the votes
    /// change with time as well as with results). Series are updated in
    /// place, not rebuilt.
    pub fn show(&self, quorum: Option<&Quorum>, now: Timestamp) {
        let Some(q) = quorum else { return };
        for v in q.vantages(now) {
            let name = v.name.as_str();
            self.vantage_up
                .with_label_values(&[name])
                .set(i64::from(v.up));
            self.vantage_lag
                .with_label_values(&[name])
                .set(v.lag_ms as f64 / 1000.0);
            self.vantage_isolated
                .with_label_values(&[name])
                .set(i64::from(v.isolated_since.is_some()));
        }
        let mut guard = self.shown.lock().expect("shown lock");
        let (version, shown) = &mut *guard;
        if *version == Some(q.version()) {
            return;
        }
        *version = Some(q.version());
        for (key, _, _, votes) in q.verdicts() {
            let counts = Ballot::LABELS.map(|label| {
                let n = votes.iter().filter(|v| v.ballot.as_str() == label).count();
                i64::try_from(n).unwrap_or(i64::MAX)
            });
            let each = votes.iter().map(|v| match v.ballot {
                Ballot::Up => 1,
                Ballot::Down => 0,
                Ballot::Unknown | Ballot::Abstain(_) => -1,
            });
            let now: Vec<i64> = counts.iter().copied().chain(each).collect();
            if shown.get(key) == Some(&now) {
                continue;
            }
            let (service, target) = key.parts();
            for (label, n) in Ballot::LABELS.iter().zip(counts) {
                self.target_votes
                    .with_label_values(&[service, target, label])
                    .set(n);
            }
            for (v, value) in votes.iter().zip(&now[counts.len()..]) {
                self.vantage_vote
                    .with_label_values(&[service, target, v.vantage.as_str()])
                    .set(*value);
            }
            shown.insert(key.clone(), now);
        }
    }
}
