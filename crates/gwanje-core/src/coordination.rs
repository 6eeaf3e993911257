//! What the coordination session tells the core: whether this replica
//! leads, follows, or cannot tell (see `leadership`).

/// What the coordination session reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Coordination {
    /// Connected and campaigning (or resigned): another replica may lead.
    Following,
    /// Elected: orders carry `fence`.
    Leading {
        /// The revision at which this replica's election key was created.
        fence: u64,
    },
    /// The store cannot be trusted to say who leads: order nothing.
    Lost {
        /// Why.
        fault: CoordinationFault,
    },
}

/// Why a replica no longer knows it may lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CoordinationFault {
    /// The store did not answer (connection, quorum, TLS).
    Unreachable,
    /// No keepalive was acknowledged before the safety deadline.
    DeadlinePassed,
    /// The lease's keepalive failed or the store said the lease is gone.
    LeaseLost,
    /// A write guarded by the election key was refused: another leads.
    Superseded,
    /// The cluster's name is in use in etcd by a configuration whose
    /// groups or paths differ: this replica does not campaign.
    Misconfigured,
}

impl CoordinationFault {
    /// The label value (`reason` of the alert and metrics).
    pub fn label(self) -> &'static str {
        match self {
            CoordinationFault::Unreachable => "unreachable",
            CoordinationFault::DeadlinePassed => "deadline_passed",
            CoordinationFault::LeaseLost => "lease_lost",
            CoordinationFault::Superseded => "superseded",
            CoordinationFault::Misconfigured => "misconfigured",
        }
    }
}
