//! Inputs the core takes and what it hands out: orders the engine must
//! carry out, and events (facts, in the past tense) it reports. Plain data,
//! so a journal can record them and a replay can reproduce them.

use super::alert::{Alert, AlertName};
use super::config::CoreConfig;
use super::coordination::{Coordination, CoordinationFault};
use super::shared::{PathReason, PathState, SwitchReason};
use super::types::{
    FailureKind, GroupName, Observation, PathName, Subject, TargetKey, TargetState, Timestamp,
    VantageName,
};
use super::vantage::{Verdict, Vote};

/// A timestamped input to the core.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Input {
    /// A (new) plan was applied.
    PlanApplied(CoreConfig),
    /// A probe finished.
    ProbeCompleted(Observation),
    /// The kernel's route for a group's prefixes was read: via `path`, or
    /// absent / via no configured path (`None`).
    RoutesObserved {
        /// The group.
        group: GroupName,
        /// The path the route uses.
        path: Option<PathName>,
        /// When the read started: a read begun before the group's last
        /// route change finished is stale and ignored.
        read_at: Timestamp,
    },
    /// A requested route change finished.
    RouteChangeCompleted {
        /// The group.
        group: GroupName,
        /// The path it was moved to.
        to: PathName,
        /// `None` when it succeeded, the actuator's error when it failed.
        error: Option<String>,
    },
    /// An operator pinned a group to a path until a time.
    Pin {
        /// The group.
        group: GroupName,
        /// The path.
        path: PathName,
        /// When the pin expires.
        until: Timestamp,
        /// Who pinned (for the record).
        by: String,
    },
    /// An operator removed a pin.
    Unpin {
        /// The group.
        group: GroupName,
        /// Who.
        by: String,
    },
    /// An operator lifted a flap-guard freeze.
    Unfreeze {
        /// The group.
        group: GroupName,
        /// Who.
        by: String,
    },
    /// An operator acknowledged a firing alert: it no longer escalates.
    AlertAcknowledged {
        /// The alert's id.
        id: String,
        /// Who.
        by: String,
    },
    /// A configuration reload was rejected; the running plan stays.
    ReloadRejected {
        /// How many errors the new configuration had.
        errors: u32,
    },
    /// The journal is dropping records (disk full or failing, queue full).
    JournalFailing {
        /// Records dropped so far.
        dropped: u64,
    },
    /// The journal writes again.
    JournalRecovered,
    /// The journal found at start was dated ahead of the system clock by
    /// more than gwanje trusts; its state was not restored.
    JournalRestoreRefused {
        /// How far ahead, ms.
        lead_ms: u64,
    },
    /// A peer vantage's probe result arrived (the input's time is its
    /// receipt on this clock; the observation keeps the sender's stamp).
    VantageObserved {
        /// The vantage that probed.
        vantage: VantageName,
        /// Its sequence number in that vantage's stream.
        seq: u64,
        /// Whether the subject is one of that vantage's controls.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        control: bool,
        /// What it saw (paths are the sender's).
        observation: Observation,
    },
    /// A peer's stream restarted its sequence: what it said is forgotten.
    VantageRestarted {
        /// The vantage.
        vantage: VantageName,
    },
    /// The coordination session's news: this replica leads, follows, or
    /// cannot tell.
    Coordination(Coordination),
    /// An actuator refused a desired route: its fence was older than one
    /// it had applied (a deposed leader's order), or it was unreadable.
    OrderRefused {
        /// The group.
        group: GroupName,
        /// The order's fence, when it could be read.
        fence: Option<u64>,
        /// The highest fence the actuator has applied.
        highest: u64,
    },
    /// The engine examined a path the core asked about (`ExaminePath`).
    PathExamined {
        /// The path.
        path: PathName,
        /// What the examination found.
        examination: super::diagnosis::Examination,
    },
}

/// What the engine must do: each one is carried out (a route moved, a
/// path examined, alerts delivered) and, where asked, answered with an
/// input. The engine matches them exhaustively, so a new order does not
/// compile until something carries it out.
///
/// ```compile_fail
/// use gwanje_core::Order;
/// // An engine that forgot to deliver alerts:
/// fn carry_out(order: Order) {
///     match order {
///         Order::ChangeRoute { .. } => {}
///         Order::ExaminePath { .. } => {}
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Order {
    /// Examine the path (a packet-size ladder, and a trace
    /// when `trace`) and answer with `PathExamined`; a ladder at most every
    /// 10 s, a trace at most once a minute per path.
    ExaminePath {
        /// The path.
        path: PathName,
        /// Whether to trace the hops too.
        trace: bool,
    },
    /// Move the group's route; answer with `RouteChangeCompleted`.
    ChangeRoute {
        /// The group.
        group: GroupName,
        /// Current path, if any.
        from: Option<PathName>,
        /// Target path.
        to: PathName,
        /// Why.
        reason: SwitchReason,
        /// 1 for the first try.
        attempt: u32,
        /// In a cluster: the leader's fence, which actuators check.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fence: Option<u64>,
    },
    /// Deliver these alerts now (new, re-sent, escalated or resolved).
    DeliverAlerts {
        /// The alerts as they stand.
        alerts: Vec<Alert>,
        /// Until when a firing alert holds without a re-send (`endsAt`).
        lease_until: Timestamp,
    },
}

/// What happened, in the past tense: reported (logged, counted, shown),
/// never carried out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// A subject's health changed.
    HealthChanged {
        /// What.
        subject: Subject,
        /// Before.
        from: TargetState,
        /// Now.
        to: TargetState,
        /// When.
        at: Timestamp,
        /// Failures in the window at the change.
        failures_in_window: u32,
        /// The deciding probe's failure class.
        cause: Option<FailureKind>,
        /// Set when the subject's path is down: this change is a consequence.
        behind: Option<PathName>,
    },
    /// A path's state changed.
    PathChanged {
        /// The path.
        path: PathName,
        /// Before.
        from: PathState,
        /// Now.
        to: PathState,
        /// Why.
        reason: PathReason,
        /// When.
        at: Timestamp,
    },
    /// A down path's diagnosis changed.
    PathDiagnosed {
        /// The path.
        path: PathName,
        /// What is broken, with the evidence.
        diagnosis: super::diagnosis::Diagnosis,
    },
    /// The route now uses `to`.
    RouteChanged {
        /// The group.
        group: GroupName,
        /// Previous path.
        from: Option<PathName>,
        /// New path.
        to: PathName,
        /// Why.
        reason: SwitchReason,
        /// When it was confirmed.
        at: Timestamp,
    },
    /// A route change failed; it is retried at `retry_at`.
    RouteChangeFailed {
        /// The group.
        group: GroupName,
        /// Target path.
        to: PathName,
        /// Which try failed.
        attempt: u32,
        /// The actuator's error.
        error: String,
        /// Next try.
        retry_at: Timestamp,
    },
    /// At start, the kernel's route was adopted as is.
    RouteAdopted {
        /// The group.
        group: GroupName,
        /// The adopted path (`None`: no route via a configured path).
        path: Option<PathName>,
    },
    /// The kernel's route differs from gwanje's; it will be restored.
    RouteDrifted {
        /// The group.
        group: GroupName,
        /// What gwanje set.
        expected: Option<PathName>,
        /// What the kernel has.
        actual: Option<PathName>,
    },
    /// The active path is down and no other path is healthy.
    FailoverImpossible {
        /// The group.
        group: GroupName,
        /// The active path.
        active: Option<PathName>,
        /// Checks failing through the active path while every other path
        /// is down: gwanje cannot tell whether the path or the service is
        /// at fault (empty when the active path itself is down).
        #[serde(default)]
        unsure: Vec<TargetKey>,
    },
    /// A previously impossible failover situation has cleared.
    FailoverPossibleAgain {
        /// The group.
        group: GroupName,
    },
    /// A check fails through every path: the service is down (no switch).
    ServiceDown {
        /// The group.
        group: GroupName,
        /// The check.
        check: TargetKey,
    },
    /// The check passes again through some path.
    ServiceRecovered {
        /// The group.
        group: GroupName,
        /// The check.
        check: TargetKey,
    },
    /// A check loses more than the tolerated share of packets through every
    /// path: the service is degraded wherever traffic goes (no switch).
    ServiceDegraded {
        /// The group.
        group: GroupName,
        /// The check.
        check: TargetKey,
        /// Each path's one-way loss over the quality window, per mille.
        losses: Vec<(PathName, u16)>,
    },
    /// The check's loss fell back through some path (or it is down).
    ServiceDegradationCleared {
        /// The group.
        group: GroupName,
        /// The check.
        check: TargetKey,
    },
    /// Every path went down at once: gwanje itself is probably cut off (no switch).
    MonitorIsolated {
        /// The group.
        group: GroupName,
    },
    /// Isolation ended.
    MonitorReconnected {
        /// The group.
        group: GroupName,
    },
    /// Too many switches: automatic switching is frozen until `until`.
    GroupFrozen {
        /// The group.
        group: GroupName,
        /// Until when.
        until: Timestamp,
        /// Switches counted in the window.
        switches: u32,
    },
    /// While frozen, the active path went down and traffic moved anyway: a
    /// freeze stops oscillation, it never holds traffic on a dead path.
    MovedDespiteFreeze {
        /// The group.
        group: GroupName,
        /// The dead path.
        from: PathName,
        /// Where traffic goes.
        to: PathName,
    },
    /// Automatic switching resumed.
    GroupUnfrozen {
        /// The group.
        group: GroupName,
        /// "expired" or the operator.
        by: String,
    },
    /// (Manual failback) a more preferred path is healthy again.
    FailbackAvailable {
        /// The group.
        group: GroupName,
        /// The path an operator can pin.
        to: PathName,
    },
    /// An operator pin was set.
    PinSet {
        /// The group.
        group: GroupName,
        /// The path.
        path: PathName,
        /// Expiry.
        until: Timestamp,
        /// Who.
        by: String,
    },
    /// A pin ended.
    PinCleared {
        /// The group.
        group: GroupName,
        /// "expired" or the operator.
        by: String,
    },
    /// An alert was acknowledged.
    AlertAcknowledged {
        /// Its id.
        id: String,
        /// Its name.
        name: AlertName,
        /// Who.
        by: String,
    },
    /// The vantages' verdict on a target changed.
    VerdictChanged {
        /// The target.
        target: TargetKey,
        /// The groups it is a check of (empty: probed directly).
        groups: Vec<GroupName>,
        /// Before.
        from: Verdict,
        /// Now.
        to: Verdict,
        /// Every vantage's vote at the change.
        votes: Vec<Vote>,
        /// A failure class a down vote saw last.
        cause: Option<FailureKind>,
        /// When.
        at: Timestamp,
    },
    /// The vantages seeing a down target down changed.
    VotesChanged {
        /// The target.
        target: TargetKey,
        /// The groups it is a check of.
        groups: Vec<GroupName>,
        /// Every vantage's vote now.
        votes: Vec<Vote>,
    },
    /// A vantage is cut off (its controls fail): it abstains.
    VantageIsolated {
        /// The vantage.
        vantage: VantageName,
        /// Whether it is this instance.
        local: bool,
    },
    /// A control of an isolated vantage passes again.
    VantageReconnected {
        /// The vantage.
        vantage: VantageName,
        /// Whether it is this instance.
        local: bool,
    },
    /// Some targets have fewer eligible vantages than the quorum needs.
    MonitoringDegraded {
        /// How many targets.
        targets: u32,
        /// The vantages still eligible.
        eligible: Vec<VantageName>,
        /// How many the quorum needs.
        min_vantages: u32,
    },
    /// Every target has enough eligible vantages again.
    MonitoringRestored,
    /// This replica was elected: its orders carry `fence`.
    LeadershipAcquired {
        /// The fence.
        fence: u64,
    },
    /// This replica stopped leading: it orders nothing more.
    LeadershipLost {
        /// The fence it led with.
        fence: u64,
        /// Why; `None` when it resigned or another term began.
        fault: Option<CoordinationFault>,
    },
    /// The coordination store cannot say who leads: nobody here orders.
    CoordinationLost {
        /// Why.
        fault: CoordinationFault,
    },
    /// The coordination store answers again.
    CoordinationRestored,
    /// An actuator refused a desired route (see `Input::OrderRefused`).
    OrderRefused {
        /// The group.
        group: GroupName,
        /// The order's fence, when it could be read.
        fence: Option<u64>,
        /// The highest fence the actuator has applied.
        highest: u64,
    },
    /// A follower's group took the route the leader's order left.
    RouteFollowed {
        /// The group.
        group: GroupName,
        /// The route before.
        from: Option<PathName>,
        /// The route now.
        to: Option<PathName>,
    },
}

/// What the core hands out, in the order it decided it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Effect {
    /// Something the engine must carry out.
    Order(Order),
    /// Something that happened, to report.
    Event(Event),
}

impl From<Order> for Effect {
    fn from(o: Order) -> Self {
        Effect::Order(o)
    }
}

impl From<Event> for Effect {
    fn from(e: Event) -> Self {
        Effect::Event(e)
    }
}
