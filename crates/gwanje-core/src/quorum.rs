//! The quorum of vantages: each vantage's own fall/rise window on a target
//! is a vote, and a target is down only when at least `k` eligible
//! vantages vote down. A vantage is eligible for a target while its
//! results on it are fresh (within two intervals), stamped near this
//! clock, its window has decided (up or down), and it is not isolated
//! (every one of its controls failing twice in a row). Too few eligible
//! vantages make the verdict insufficient: never down, and monitoring is
//! reported degraded (until two of the longest intervals pass without an
//! insufficient target).
//!
//! Local and remote results go through the same code, so a replay of one
//! journal reproduces every multi-vantage decision.

use std::collections::{BTreeMap, BTreeSet};

use super::effect::{Effect, Event};
use super::health::HealthWindow;
use super::types::{
    FailureKind, Observation, PathName, Subject, TargetKey, TargetState, Timestamp, VantageName,
};
use super::vantage::{Abstention, Ballot, QuorumConfig, QuorumTarget, VantageView, Verdict, Vote};

/// Consecutive failures of every control that isolate a vantage.
const CONTROL_FALL: u8 = 2;
/// The share rule needs at least this many subjects with a latest result.
const SHARE_MIN_SUBJECTS: u32 = 4;
/// The most paths one vantage's vote on a target is kept for, and the most
/// controls a vantage is judged by: what a peer sends cannot grow the
/// core's state without bound.
const MAX_WINDOWS: usize = 8;
const MAX_CONTROLS: usize = 16;

/// What is known of one vantage as a whole.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Vantage {
    seq: u64,
    last_at: Option<Timestamp>,
    lag_ms: i64,
    skewed: u64,
    /// Its latest result was refused for skew.
    skewed_now: bool,
    isolated_since: Option<Timestamp>,
    /// Consecutive failures of each control (saturating).
    #[serde(with = "super::pairs")]
    controls: BTreeMap<Subject, u8>,
    /// Whether each subject's latest result failed (for the share rule).
    #[serde(with = "super::pairs")]
    latest: BTreeMap<Subject, bool>,
    failing: u32,
}

/// One vantage's evidence on one target.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Seen {
    /// A window per path it probes the target through (`None`: directly),
    /// with when that path's latest result arrived: a path no longer
    /// probed stops counting after two intervals.
    windows: Vec<(Option<PathName>, HealthWindow, Timestamp)>,
    /// When its latest result on the target arrived.
    last: Timestamp,
    ballot: Ballot,
    since: Timestamp,
    cause: Option<FailureKind>,
}

/// The votes on one target.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Tally {
    target: QuorumTarget,
    seen: BTreeMap<VantageName, Seen>,
    verdict: Verdict,
    since: Timestamp,
    /// The vantages voting down, as last reported.
    downs: Vec<VantageName>,
}

/// The quorum's state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quorum {
    cfg: QuorumConfig,
    /// When the quorum began (or restarted): no degradation is reported
    /// before every vantage had two intervals to speak.
    started: Timestamp,
    vantages: BTreeMap<VantageName, Vantage>,
    targets: BTreeMap<TargetKey, Tally>,
    /// When each (vantage, target) vote expires.
    expiries: BTreeSet<(Timestamp, VantageName, TargetKey)>,
    insufficient: BTreeSet<TargetKey>,
    degraded: bool,
    /// When some target was last insufficient: degradation clears only
    /// after a quiet spell, so a peer that keeps dropping does not flap it.
    #[serde(default)]
    insufficient_at: Option<Timestamp>,
    controls: BTreeSet<Subject>,
    /// Two of the longest interval: how long the start grace is, and how
    /// long degradation must stay away to clear.
    #[serde(default)]
    hold_ms: u64,
    /// Two of the shortest interval: a vantage silent this long is not up.
    #[serde(default)]
    silent_ms: u64,
    /// Counts every change of a ballot or verdict, so views of them are
    /// rebuilt only when something moved.
    #[serde(default)]
    version: u64,
}

impl Quorum {
    /// A quorum configured by `cfg`, starting at `now`.
    pub fn new(cfg: QuorumConfig, now: Timestamp) -> Self {
        let mut q = Quorum {
            cfg: cfg.clone(),
            started: now,
            vantages: BTreeMap::new(),
            targets: BTreeMap::new(),
            expiries: BTreeSet::new(),
            insufficient: BTreeSet::new(),
            degraded: false,
            insufficient_at: None,
            controls: BTreeSet::new(),
            hold_ms: 0,
            silent_ms: 0,
            version: 0,
        };
        q.apply(cfg, now, &mut Vec::new());
        q
    }

    /// Applies a reloaded configuration: evidence on unchanged targets and
    /// vantages is kept.
    pub fn apply(&mut self, cfg: QuorumConfig, now: Timestamp, out: &mut Vec<Effect>) {
        let names: Vec<VantageName> = std::iter::once(cfg.local.clone())
            .chain(cfg.peers.iter().cloned())
            .collect();
        // A vantage no longer configured (or this one renamed) ends its
        // isolation with it, so its alert resolves.
        for (n, v) in &self.vantages {
            if !names.contains(n) && v.isolated_since.is_some() {
                out.push(Effect::Event(Event::VantageReconnected {
                    vantage: n.clone(),
                    local: *n == self.cfg.local,
                }));
            }
        }
        self.vantages.retain(|n, _| names.contains(n));
        if let Some(local) = self.vantages.get_mut(&cfg.local) {
            local.controls.retain(|s, _| cfg.controls.contains(s));
        }
        for n in &names {
            self.vantages.entry(n.clone()).or_default();
        }
        let mut old = std::mem::take(&mut self.targets);
        let mut fresh = false;
        for t in &cfg.targets {
            let tally = match old.remove(&t.target) {
                Some(mut tally) => {
                    if tally.target.policy != t.policy {
                        tally.seen.clear();
                        fresh = true;
                    }
                    tally.seen.retain(|n, _| names.contains(n));
                    tally.target = t.clone();
                    tally
                }
                None => {
                    fresh = true;
                    Tally {
                        target: t.clone(),
                        seen: BTreeMap::new(),
                        verdict: Verdict::Unknown,
                        since: now,
                        downs: Vec::new(),
                    }
                }
            };
            self.targets.insert(t.target.clone(), tally);
        }
        self.expiries.clear();
        for (key, tally) in &self.targets {
            for (v, seen) in &tally.seen {
                self.expiries
                    .insert((expiry(seen.last, &tally.target), v.clone(), key.clone()));
            }
        }
        self.insufficient.retain(|k| self.targets.contains_key(k));
        // New targets (or new thresholds) need their votes gathered before
        // too few of them is news: the start grace begins again.
        if fresh && !self.degraded {
            self.started = now;
        }
        self.controls = cfg.controls.iter().cloned().collect();
        self.version += 1;
        let intervals = cfg.targets.iter().map(|t| t.interval_ms);
        self.hold_ms = intervals.clone().max().unwrap_or(0).saturating_mul(2);
        self.silent_ms = intervals.min().unwrap_or(0).saturating_mul(2).max(1);
        self.cfg = cfg;
        self.recount(now, out);
    }

    /// The configuration in force.
    pub fn config(&self) -> &QuorumConfig {
        &self.cfg
    }

    /// The same quorum after a restart: the sequence numbers and isolation
    /// (with the control results behind it) are kept, the votes must be
    /// gathered again.
    pub fn restarted(mut self, now: Timestamp) -> Self {
        for t in self.targets.values_mut() {
            t.seen.clear();
            t.verdict = Verdict::Unknown;
            t.since = now;
            t.downs.clear();
        }
        for v in self.vantages.values_mut() {
            v.latest.clear();
            v.failing = 0;
            v.last_at = None;
        }
        self.expiries.clear();
        self.insufficient.clear();
        self.started = now;
        self.version += 1;
        self
    }

    /// Whether this instance's own vantage is isolated.
    pub fn isolated_here(&self) -> bool {
        self.vantages
            .get(&self.cfg.local)
            .is_some_and(|v| v.isolated_since.is_some())
    }

    /// Whether `subject` is one of this vantage's controls.
    pub fn is_control(&self, subject: &Subject) -> bool {
        self.controls.contains(subject)
    }

    /// The last sequence number seen from `vantage`.
    pub fn seq(&self, vantage: &VantageName) -> Option<u64> {
        self.vantages.get(vantage).map(|v| v.seq)
    }

    /// Records one result from `vantage` (this one or a peer), received at `now`.
    pub fn observe(
        &mut self,
        now: Timestamp,
        vantage: &VantageName,
        seq: u64,
        control: bool,
        obs: &Observation,
        out: &mut Vec<Effect>,
    ) {
        let share = self.cfg.isolation_share_permille;
        let max_skew = self.cfg.max_skew_ms;
        let Some(v) = self.vantages.get_mut(vantage) else {
            return;
        };
        v.seq = v.seq.max(seq);
        let lag = i64::try_from(now.0)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(obs.at.0).unwrap_or(i64::MAX));
        v.lag_ms = lag;
        if lag.unsigned_abs() > max_skew {
            // Stamped an hour off, or delivered long after it happened:
            // either way it says nothing about now.
            v.skewed = v.skewed.saturating_add(1);
            v.skewed_now = true;
            return;
        }
        v.skewed_now = false;
        v.last_at = Some(now);
        let failed = obs.failure.is_some();
        if control && (v.controls.len() < MAX_CONTROLS || v.controls.contains_key(&obs.subject)) {
            let n = v.controls.entry(obs.subject.clone()).or_insert(0);
            *n = if failed { n.saturating_add(1) } else { 0 };
        }
        // The share rule's bookkeeping, only when it is on, and only for
        // what this instance probes too (a peer cannot grow it at will).
        let known = match &obs.subject {
            Subject::Target(k) | Subject::Check(k, _) => self.targets.contains_key(k),
            Subject::Router(_) => v.latest.len() < self.targets.len() + MAX_CONTROLS,
        };
        if share.is_some() && (known || v.latest.contains_key(&obs.subject)) {
            match v.latest.insert(obs.subject.clone(), failed) {
                Some(true) if !failed => v.failing -= 1,
                Some(false) | None if failed => v.failing += 1,
                _ => {}
            }
        }
        // Isolated when every control failed twice in a row; back as soon
        // as one passes (not merely when one is forgotten).
        let was = v.isolated_since.is_some();
        // This vantage's own controls are known: all of them must fail.
        let needed = if *vantage == self.cfg.local {
            self.controls.len().max(2)
        } else {
            2
        };
        let cut_off = if was {
            !v.controls.is_empty() && !v.controls.values().any(|n| *n == 0)
        } else {
            v.controls.len() >= needed && v.controls.values().all(|n| *n >= CONTROL_FALL)
        };
        let now_isolated = cut_off || share_cut(v, share);
        if now_isolated != was {
            v.isolated_since = now_isolated.then_some(now);
            let local = *vantage == self.cfg.local;
            out.push(Effect::Event(if now_isolated {
                Event::VantageIsolated {
                    vantage: vantage.clone(),
                    local,
                }
            } else {
                Event::VantageReconnected {
                    vantage: vantage.clone(),
                    local,
                }
            }));
            // What a vantage saw while cut off (or just before) is the cut:
            // it votes again only on fresh evidence.
            self.forget(now, vantage, out);
        }
        let (key, path) = match &obs.subject {
            Subject::Target(k) => (k, None),
            Subject::Check(k, p) => (k, Some(p)),
            Subject::Router(_) => return,
        };
        let Some(tally) = self.targets.get_mut(key) else {
            return;
        };
        let policy = tally.target.policy;
        let seen = tally.seen.entry(vantage.clone()).or_insert_with(|| Seen {
            windows: Vec::new(),
            last: now,
            ballot: Ballot::Abstain(Abstention::Stale),
            since: now,
            cause: None,
        });
        let at = match seen.windows.iter().position(|(p, _, _)| p.as_ref() == path) {
            Some(i) => i,
            None if seen.windows.len() < MAX_WINDOWS => {
                seen.windows
                    .push((path.cloned(), HealthWindow::new(policy), now));
                seen.windows.len() - 1
            }
            None => return,
        };
        seen.windows[at].1.observe(!failed);
        seen.windows[at].2 = now;
        if failed {
            seen.cause = obs.failure;
        }
        let old = expiry(seen.last, &tally.target);
        seen.last = now;
        let new = expiry(now, &tally.target);
        if old != new {
            self.expiries.remove(&(old, vantage.clone(), key.clone()));
        }
        self.expiries.insert((new, vantage.clone(), key.clone()));
        // Most results change no ballot (up stays up): then no verdict can change.
        let Some(v) = self.vantages.get(vantage) else {
            return;
        };
        let b = ballot(v, seen, now, &tally.target);
        if b != seen.ballot {
            seen.ballot = b;
            seen.since = now;
            self.version += 1;
            let key = key.clone();
            self.recount_target(now, &key, out);
        }
    }

    /// A vantage's stream restarted its sequence: what it said before is
    /// forgotten, so it votes again only on fresh evidence.
    pub fn reset(&mut self, now: Timestamp, vantage: &VantageName, out: &mut Vec<Effect>) {
        let Some(v) = self.vantages.get_mut(vantage) else {
            return;
        };
        // Its isolation and the control results behind it stay: only
        // fresh control results end it.
        v.seq = 0;
        v.latest.clear();
        v.failing = 0;
        self.forget(now, vantage, out);
    }

    /// Forgets `vantage`'s votes on every target: it votes again only when
    /// its windows decide on new results.
    fn forget(&mut self, now: Timestamp, vantage: &VantageName, out: &mut Vec<Effect>) {
        self.version += 1;
        self.expiries.retain(|(_, n, _)| n != vantage);
        let keys: Vec<TargetKey> = self.targets.keys().cloned().collect();
        for k in keys {
            if let Some(t) = self.targets.get_mut(&k) {
                t.seen.remove(vantage);
            }
            self.recount_target(now, &k, out);
        }
    }

    /// Expires votes whose time is up; reports degradation once the start
    /// grace is over.
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<Effect>) {
        while let Some(first) = self.expiries.first().cloned() {
            if first.0 > now {
                break;
            }
            self.expiries.pop_first();
            let (_, v, k) = first;
            self.revote(now, &v, &k, out);
        }
        self.degradation(now, out);
    }

    /// The next time [`Quorum::tick`] has work.
    pub fn next_deadline(&self, now: Timestamp) -> Option<Timestamp> {
        let grace = self.grace_end();
        let grace =
            (!self.degraded && !self.insufficient.is_empty() && grace > now).then_some(grace);
        let clear = self
            .insufficient_at
            .filter(|_| self.degraded && self.insufficient.is_empty())
            .map(|t| Timestamp(t.0.saturating_add(self.hold())));
        self.expiries
            .first()
            .map(|e| e.0)
            .into_iter()
            .chain(grace)
            .chain(clear)
            .min()
    }

    fn hold(&self) -> u64 {
        self.hold_ms
    }

    fn grace_end(&self) -> Timestamp {
        Timestamp(self.started.0.saturating_add(self.hold()))
    }

    /// Recomputes `vantage`'s ballot on `key`, then the verdict.
    fn revote(
        &mut self,
        now: Timestamp,
        vantage: &VantageName,
        key: &TargetKey,
        out: &mut Vec<Effect>,
    ) {
        let Some(v) = self.vantages.get(vantage) else {
            return;
        };
        let Some(tally) = self.targets.get_mut(key) else {
            return;
        };
        if let Some(seen) = tally.seen.get_mut(vantage) {
            let b = ballot(v, seen, now, &tally.target);
            if b != seen.ballot {
                seen.ballot = b;
                seen.since = now;
                self.version += 1;
                self.recount_target(now, key, out);
            }
        }
    }

    /// Every ballot again, then every verdict (after a reload).
    fn recount(&mut self, now: Timestamp, out: &mut Vec<Effect>) {
        for t in self.targets.values_mut() {
            for (n, seen) in &mut t.seen {
                if let Some(v) = self.vantages.get(n) {
                    let b = ballot(v, seen, now, &t.target);
                    if b != seen.ballot {
                        seen.ballot = b;
                        seen.since = now;
                        self.version += 1;
                    }
                }
            }
        }
        let keys: Vec<TargetKey> = self.targets.keys().cloned().collect();
        for k in keys {
            self.recount_target(now, &k, out);
        }
    }

    /// Counts the votes on `key`; reports a changed verdict, or a changed
    /// set of vantages seeing a down target down.
    fn recount_target(&mut self, now: Timestamp, key: &TargetKey, out: &mut Vec<Effect>) {
        let Some(tally) = self.targets.get_mut(key) else {
            return;
        };
        let (mut eligible, mut up, mut down) = (0u32, 0u32, 0u32);
        for name in self.vantages.keys() {
            // An undecided window is no evidence either way.
            match tally.seen.get(name).map(|s| s.ballot) {
                Some(Ballot::Up) => up += 1,
                Some(Ballot::Down) => down += 1,
                Some(Ballot::Unknown | Ballot::Abstain(_)) | None => continue,
            }
            eligible += 1;
        }
        let k = QuorumConfig::needed(tally.target.k, eligible);
        let verdict = if eligible < self.cfg.min_vantages.max(k) {
            Verdict::Insufficient
        } else if down >= k {
            Verdict::Down
        } else if up > eligible - k {
            Verdict::Up
        } else {
            Verdict::Unknown
        };
        if verdict == Verdict::Insufficient {
            self.insufficient.insert(key.clone());
        } else if self.insufficient.remove(key) {
            // The quiet spell before degradation clears starts now.
            self.insufficient_at = Some(now);
        }
        let downs: Vec<VantageName> = tally
            .seen
            .iter()
            .filter(|(n, s)| s.ballot == Ballot::Down && self.vantages.contains_key(*n))
            .map(|(n, _)| n.clone())
            .collect();
        let changed = verdict != tally.verdict;
        if changed {
            self.version += 1;
        }
        let votes_moved = !changed && verdict == Verdict::Down && downs != tally.downs;
        tally.downs = downs;
        if changed || votes_moved {
            let votes = votes_of(&self.vantages, tally);
            let cause = tally
                .seen
                .values()
                .filter(|s| s.ballot == Ballot::Down)
                .find_map(|s| s.cause);
            if changed {
                let from = tally.verdict;
                tally.verdict = verdict;
                tally.since = now;
                out.push(Effect::Event(Event::VerdictChanged {
                    target: key.clone(),
                    groups: tally.target.groups.clone(),
                    from,
                    to: verdict,
                    votes,
                    cause,
                    at: now,
                }));
            } else {
                out.push(Effect::Event(Event::VotesChanged {
                    target: key.clone(),
                    groups: tally.target.groups.clone(),
                    votes,
                }));
            }
        }
        self.degradation(now, out);
    }

    fn degradation(&mut self, now: Timestamp, out: &mut Vec<Effect>) {
        if !self.insufficient.is_empty() {
            self.insufficient_at = Some(now);
        }
        let quiet = self
            .insufficient_at
            .is_none_or(|t| now.since(t) >= self.hold());
        let should = if self.degraded {
            !quiet
        } else {
            !self.insufficient.is_empty() && now >= self.grace_end()
        };
        if should == self.degraded {
            return;
        }
        self.degraded = should;
        out.push(Effect::Event(if should {
            Event::MonitoringDegraded {
                targets: u32::try_from(self.insufficient.len()).unwrap_or(u32::MAX),
                eligible: self.eligible_vantages(now),
                min_vantages: self.cfg.min_vantages,
            }
        } else {
            Event::MonitoringRestored
        }));
    }

    /// Vantages that are neither isolated nor silent for two intervals of
    /// the shortest target.
    fn eligible_vantages(&self, now: Timestamp) -> Vec<VantageName> {
        self.vantages
            .iter()
            .filter(|(_, v)| v.isolated_since.is_none() && self.fresh(v, now))
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn fresh(&self, v: &Vantage, now: Timestamp) -> bool {
        !v.skewed_now && v.last_at.is_some_and(|t| now.since(t) < self.silent_ms)
    }

    /// Every vantage as the status API shows it.
    pub fn vantages(&self, now: Timestamp) -> Vec<VantageView> {
        self.vantages
            .iter()
            .map(|(n, v)| VantageView {
                name: n.clone(),
                local: *n == self.cfg.local,
                up: self.fresh(v, now),
                isolated_since: v.isolated_since,
                lag_ms: v.lag_ms,
                skewed: v.skewed,
                seq: v.seq,
                last_at: v.last_at,
            })
            .collect()
    }

    /// Each target's verdict, since when, and its votes.
    pub fn verdicts(&self) -> impl Iterator<Item = (&TargetKey, Verdict, Timestamp, Vec<Vote>)> {
        self.targets
            .iter()
            .map(|(k, t)| (k, t.verdict, t.since, votes_of(&self.vantages, t)))
    }

    /// The verdict on `key`, if it is voted on.
    pub fn verdict(&self, key: &TargetKey) -> Option<Verdict> {
        self.targets.get(key).map(|t| t.verdict)
    }

    /// A number that changes whenever a ballot or a verdict does.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether monitoring is reported degraded.
    pub fn degraded(&self) -> bool {
        self.degraded
    }
}

/// When a vote last refreshed at `last` expires: two intervals later.
fn expiry(last: Timestamp, t: &QuorumTarget) -> Timestamp {
    Timestamp(last.0.saturating_add(t.interval_ms.saturating_mul(2)))
}

/// Whether the share rule cuts `v` off.
fn share_cut(v: &Vantage, share: Option<u16>) -> bool {
    let seen = u32::try_from(v.latest.len()).unwrap_or(u32::MAX);
    share.is_some_and(|s| {
        seen >= SHARE_MIN_SUBJECTS && u64::from(v.failing) * 1000 >= u64::from(s) * u64::from(seen)
    })
}

/// What vantage `v` says about a target, given its evidence `seen`.
fn ballot(v: &Vantage, seen: &Seen, now: Timestamp, t: &QuorumTarget) -> Ballot {
    if v.isolated_since.is_some() {
        return Ballot::Abstain(Abstention::Isolated);
    }
    if now.since(seen.last) >= t.interval_ms.saturating_mul(2) {
        return Ballot::Abstain(if v.skewed_now {
            Abstention::Skewed
        } else {
            Abstention::Stale
        });
    }
    let lifetime = t.interval_ms.saturating_mul(2);
    let mut states = seen
        .windows
        .iter()
        .filter(|(_, _, at)| now.since(*at) < lifetime)
        .map(|(_, w, _)| w.state())
        .peekable();
    let any = states.peek().is_some();
    let (mut up, mut all_down) = (false, true);
    for s in states {
        up |= s == TargetState::Up;
        all_down &= s == TargetState::Down;
    }
    if up {
        Ballot::Up
    } else if any && all_down {
        Ballot::Down
    } else {
        Ballot::Unknown
    }
}

/// Every configured vantage's vote on `t` (never heard: stale).
fn votes_of(vantages: &BTreeMap<VantageName, Vantage>, t: &Tally) -> Vec<Vote> {
    vantages
        .iter()
        .map(|(n, v)| match t.seen.get(n) {
            Some(s) => Vote {
                vantage: n.clone(),
                ballot: s.ballot,
                since: s.since,
            },
            None => Vote {
                vantage: n.clone(),
                ballot: Ballot::Abstain(if v.isolated_since.is_some() {
                    Abstention::Isolated
                } else if v.skewed_now {
                    Abstention::Skewed
                } else {
                    Abstention::Stale
                }),
                since: t.since,
            },
        })
        .collect()
}
