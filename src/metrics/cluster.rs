//! The cluster's metrics: this replica's role, its fence, and the orders its
//! actuator refused.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Why an actuator refused an order (the `reason` label).
pub const REFUSAL_REASONS: [&str; 2] = ["stale_fence", "unreadable"];

/// The roles of `gwanje_cluster_role`.
pub const ROLES: [&str; 3] = ["leader", "follower", "lost"];

/// The cluster's metrics.
pub struct ClusterMetrics {
    /// 1 for this replica's role (`leader`, `follower`, `lost`).
    pub role: IntGaugeVec,
    /// Times this replica became leader.
    pub leader_changes: IntCounter,
    /// The fence this replica leads with (0 while it does not).
    pub fence: IntGauge,
    /// The highest fence this replica's actuator applied.
    pub fence_applied: IntGauge,
    /// Orders the actuator refused, by reason.
    pub fence_rejections: IntCounterVec,
    /// Guarded writes of desired routes, by result (`ok`, `superseded`, `error`).
    pub orders: IntCounterVec,
}

impl ClusterMetrics {
    /// Creates the metrics and registers them in `r`.
    pub fn register(r: &Registry) -> Self {
        let m = ClusterMetrics {
            role: IntGaugeVec::new(
                Opts::new(
                    "gwanje_cluster_role",
                    "1 for this replica's role in its cluster",
                ),
                &["role"],
            )
            .expect("valid metric"),
            leader_changes: IntCounter::new(
                "gwanje_cluster_leader_changes_total",
                "Times this replica was elected leader",
            )
            .expect("valid metric"),
            fence: IntGauge::new(
                "gwanje_cluster_fence",
                "The fence (election revision) this replica leads with; 0 while it does not lead",
            )
            .expect("valid metric"),
            fence_applied: IntGauge::new(
                "gwanje_cluster_fence_applied",
                "The highest fence this replica's actuator has applied",
            )
            .expect("valid metric"),
            fence_rejections: IntCounterVec::new(
                Opts::new(
                    "gwanje_fence_rejections_total",
                    "Route orders this replica's actuator refused, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            orders: IntCounterVec::new(
                Opts::new(
                    "gwanje_cluster_orders_total",
                    "Guarded writes of a desired route to etcd, by result",
                ),
                &["result"],
            )
            .expect("valid metric"),
        };
        r.register(Box::new(m.role.clone())).expect("register");
        r.register(Box::new(m.leader_changes.clone()))
            .expect("register");
        r.register(Box::new(m.fence.clone())).expect("register");
        r.register(Box::new(m.fence_applied.clone()))
            .expect("register");
        r.register(Box::new(m.fence_rejections.clone()))
            .expect("register");
        r.register(Box::new(m.orders.clone())).expect("register");
        m
    }

    /// Shows `role` as this replica's only role.
    pub fn set_role(&self, role: &str) {
        for r in ROLES {
            self.role.with_label_values(&[r]).set(i64::from(r == role));
        }
    }

    /// Creates the series a cluster replica exports from its start.
    pub fn init(&self) {
        self.set_role("follower");
        for r in REFUSAL_REASONS {
            self.fence_rejections.with_label_values(&[r]);
        }
        for r in ["ok", "superseded", "error"] {
            self.orders.with_label_values(&[r]);
        }
    }
}
