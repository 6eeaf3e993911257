//! The identity probe: canaries run the flow at once, interleaved, because
//! the April 2024 failure (a portal handing out other people's certificates)
//! appeared only under concurrent use. Every response is judged against
//! every canary's markers; the result names canaries and steps, never data.

mod judge;
mod session;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use self::session::Ended;
use super::Failure;
use super::net::SystemResolver;
use super::outcome::IdentityDetails;
use super::tls::{TlsClient, TlsSetupError};
use crate::core::{FailureKind, IdentityFindings, Mismatch};
use crate::plan::identity::IdentitySpec;

const USER_AGENT: &str = concat!("gwanje/", env!("CARGO_PKG_VERSION"));

/// When each identity target may send its next request, shared by every
/// run of that target (bounded: one entry per target key).
#[derive(Debug, Default)]
pub struct Pacers(Mutex<std::collections::HashMap<String, Arc<Pacer>>>);

impl Pacers {
    /// More keys than this are forgotten at once (targets removed by reloads).
    const MAX: usize = 4096;

    /// The pacer of target `key`.
    pub fn of(&self, key: &str) -> Arc<Pacer> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= Self::MAX && !m.contains_key(key) {
            m.clear();
        }
        m.entry(key.to_string())
            .or_insert_with(|| Arc::new(Pacer::new()))
            .clone()
    }
}

/// One target's request slots, in two lanes: scheduled runs reserve slots
/// ahead, first come first served; a verification takes a slot only when
/// one is free now and no scheduled run is in flight, so it may wait but
/// never makes the scheduled probe late (and the target look down).
#[derive(Debug)]
pub struct Pacer {
    next: Mutex<Instant>,
    scheduled: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Pacer {
    fn new() -> Self {
        Pacer {
            next: Mutex::new(Instant::now()),
            scheduled: std::sync::atomic::AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        }
    }

    /// Marks a scheduled run in flight until the guard drops.
    pub fn scheduled(&self) -> ScheduledRun<'_> {
        self.scheduled
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ScheduledRun(self)
    }
}

/// A scheduled run in flight (see [`Pacer::scheduled`]).
pub struct ScheduledRun<'a>(&'a Pacer);

impl Drop for ScheduledRun<'_> {
    fn drop(&mut self) {
        self.0
            .scheduled
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.idle.notify_waiters();
    }
}

/// Which lane a run's requests take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The scheduled probe: reserves its slots.
    Scheduled,
    /// A verification: yields to the scheduled probe.
    Verification,
}

/// How hard one run pushes: flows at once and rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Flows in flight at once.
    pub concurrency: usize,
    /// Rounds; each runs every canary at least once.
    pub rounds: u32,
}

/// An identity probe prepared once per target.
#[derive(Debug)]
pub struct IdentityProbe {
    spec: IdentitySpec,
    tls: OnceLock<Result<Arc<TlsClient>, TlsSetupError>>,
}

impl IdentityProbe {
    /// Prepares the probe.
    pub fn new(spec: &IdentitySpec) -> Self {
        IdentityProbe {
            spec: spec.clone(),
            tls: OnceLock::new(),
        }
    }

    /// How long a run of `load` may take: each round the target's
    /// `timeout`, and never less than twice what the pacing alone needs.
    pub fn deadline(&self, load: Load, timeout: Duration) -> Duration {
        let paced = self.spec.least_run_time(load.rounds, load.concurrency);
        timeout
            .saturating_mul(load.rounds.max(1))
            .max(paced.saturating_mul(2) + timeout)
    }

    /// The configured load.
    pub fn load(&self) -> Load {
        Load {
            concurrency: self.spec.concurrency,
            rounds: self.spec.rounds,
        }
    }

    /// Runs `load` within `deadline`. What was seen before the deadline is
    /// kept: a mismatch found by a run that then timed out still counts.
    pub async fn run(
        &self,
        resolver: &SystemResolver,
        pacer: &Pacer,
        lane: Lane,
        load: Load,
        deadline: Duration,
    ) -> (Option<Failure>, IdentityDetails) {
        let _scheduled = (lane == Lane::Scheduled).then(|| pacer.scheduled());
        let round = Round {
            spec: &self.spec,
            resolver,
            tls: &self.tls,
            pacer,
            lane,
            interval: Duration::from_secs(1) / self.spec.max_requests_per_second.max(1),
            tally: Mutex::new(Tally::default()),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            peak: std::sync::atomic::AtomicUsize::new(0),
        };
        let n = self.spec.canaries.len();
        // Below `concurrency` canaries, some run more than one session at once.
        let per_round = n.max(load.concurrency);
        let owners: Vec<usize> = (0..load.rounds as usize * per_round)
            .map(|i| i % n)
            .collect();
        let start = Instant::now();
        // In waves of `concurrency` flows that send each step's requests
        // together: a level of N puts N requests in flight at once.
        let all = async {
            for members in owners.chunks(load.concurrency.max(1)) {
                let wave = Wave::new(members.len());
                futures_util::future::join_all(members.iter().map(|&own| {
                    let (round, wave) = (&round, &wave);
                    // Recorded as each ends: what was seen before the deadline is kept.
                    async move {
                        let ended = session::run(round, wave, own).await;
                        round.record(own, ended);
                    }
                }))
                .await;
            }
        };
        let timed_out = tokio::time::timeout(deadline, all).await.is_err();
        let elapsed = start.elapsed();
        let peak = round.peak.load(std::sync::atomic::Ordering::SeqCst);
        let tally = round.tally.into_inner().unwrap_or_else(|e| e.into_inner());
        let (failure, mut details) = tally.finish(load, elapsed, timed_out, deadline);
        details.peak_in_flight = u32::try_from(peak).unwrap_or(u32::MAX);
        (failure, details)
    }
}

/// What a run's sessions share.
pub struct Round<'a> {
    spec: &'a IdentitySpec,
    resolver: &'a SystemResolver,
    tls: &'a OnceLock<Result<Arc<TlsClient>, TlsSetupError>>,
    pacer: &'a Pacer,
    lane: Lane,
    interval: Duration,
    tally: Mutex<Tally>,
    in_flight: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

/// A request on the wire while it lives (see [`Round::request`]).
pub struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The flows of one wave: each waits at every step until every member still
/// running has reached it (and its own pacing slot has come), so the step's
/// requests leave together, at the latest of their slots.
pub struct Wave {
    state: Mutex<WaveState>,
    released: tokio::sync::watch::Sender<u64>,
}

struct WaveState {
    members: usize,
    waiting: usize,
    bursts: u64,
}

impl Wave {
    fn new(members: usize) -> Self {
        Wave {
            state: Mutex::new(WaveState {
                members,
                waiting: 0,
                bursts: 0,
            }),
            released: tokio::sync::watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WaveState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every member still running is here.
    pub async fn together(&self) {
        let mut rx = self.released.subscribe();
        let burst = {
            let mut s = self.lock();
            s.waiting += 1;
            let b = s.bursts;
            self.release_if_all(&mut s);
            b
        };
        let _ = rx.wait_for(|b| *b > burst).await;
    }

    /// A member whose flow ended: the others stop waiting for it.
    pub fn leave(&self) {
        let mut s = self.lock();
        s.members = s.members.saturating_sub(1);
        self.release_if_all(&mut s);
    }

    fn release_if_all(&self, s: &mut WaveState) {
        if s.waiting > 0 && s.waiting >= s.members {
            s.bursts += 1;
            s.waiting = 0;
            self.released.send_replace(s.bursts);
        }
    }
}

impl Round<'_> {
    /// Waits for this request's slot under `max_requests_per_second`.
    async fn pace(&self) {
        let slots = &self.pacer.next;
        if self.lane == Lane::Scheduled {
            let at = {
                let mut next = slots.lock().unwrap_or_else(|e| e.into_inner());
                let at = (*next).max(Instant::now());
                *next = at + self.interval;
                at
            };
            tokio::time::sleep_until(at).await;
            return;
        }
        loop {
            let idle = self.pacer.idle.notified();
            if self
                .pacer
                .scheduled
                .load(std::sync::atomic::Ordering::SeqCst)
                > 0
            {
                idle.await;
                continue;
            }
            // Never a reservation ahead: a slot free now, or wait and look again.
            let wait = {
                let mut next = slots.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if *next <= now {
                    *next = now + self.interval;
                    None
                } else {
                    Some(*next)
                }
            };
            match wait {
                None => return,
                Some(at) => tokio::time::sleep_until(at).await,
            }
        }
    }

    /// Counts a request in flight until the guard drops, keeping the peak.
    fn request(&self) -> InFlight<'_> {
        let now = self
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        self.peak
            .fetch_max(now, std::sync::atomic::Ordering::SeqCst);
        InFlight(&self.in_flight)
    }

    fn latency(&self, d: Duration) {
        let mut t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        t.latencies.push(d.as_secs_f32());
    }

    fn tls(&self) -> Result<Arc<TlsClient>, Failure> {
        self.tls
            .get_or_init(|| TlsClient::shared(&self.spec.tls, &[b"http/1.1"]))
            .as_ref()
            .map(Arc::clone)
            .map_err(|e| Failure::new(FailureKind::Tls, e.to_string()))
    }

    fn record(&self, own: usize, ended: Ended) {
        let spec = self.spec;
        let mut t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        let step = |i: usize| spec.steps[i].name.clone();
        match ended {
            Ended::Passed => {}
            Ended::Mismatch { step: i, owner } => {
                t.found.mismatches += 1;
                if owner.is_none() {
                    t.found.unknown_owner += 1;
                }
                t.mix("identity_mismatch");
                if t.found.first.len() < IdentityFindings::MAX_LISTED {
                    t.found.first.push(Mismatch {
                        step: step(i),
                        canary: spec.canaries[own].id.clone(),
                        owner: owner.map_or_else(
                            || Mismatch::NOT_A_CANARY.to_string(),
                            |o| spec.canaries[o].id.clone(),
                        ),
                    });
                }
            }
            Ended::PersonalData { step: i } => {
                t.found.personal_data += 1;
                t.mix("personal_data");
                t.personal_step
                    .get_or_insert((step(i), spec.canaries[own].id.clone()));
            }
            Ended::Failed { step: i, failure } => {
                t.mix(failure.kind.as_str());
                if t.failure.is_none() {
                    let detail = format!(
                        "canary {} at step {}: {}",
                        spec.canaries[own].id,
                        step(i),
                        failure.detail
                    );
                    t.failure = Some(Failure::new(failure.kind, detail));
                }
            }
        }
    }
}

/// Counts of one run, filled in as sessions end.
#[derive(Default)]
struct Tally {
    found: IdentityFindings,
    latencies: Vec<f32>,
    /// Responses by result label, for `gwanje_identity_requests_total`.
    results: std::collections::BTreeMap<&'static str, u32>,
    personal_step: Option<(String, String)>,
    failure: Option<Failure>,
}

impl Tally {
    fn mix(&mut self, label: &'static str) {
        *self.results.entry(label).or_default() += 1;
    }

    fn finish(
        mut self,
        load: Load,
        elapsed: Duration,
        timed_out: bool,
        deadline: Duration,
    ) -> (Option<Failure>, IdentityDetails) {
        let requests = self.latencies.len() as u32;
        self.found.requests = requests;
        let bad: u32 = self.results.values().sum();
        *self.results.entry("ok").or_default() += requests.saturating_sub(bad);
        self.latencies.sort_by(f32::total_cmp);
        let pick = |q: f64| {
            let l = &self.latencies;
            (!l.is_empty()).then(|| f64::from(l[((l.len() - 1) as f64 * q) as usize]))
        };
        // Most serious first: a mix-up, then a leak, then anything else.
        let failure = if let Some(m) = self.found.first.first() {
            Some(Failure::new(
                FailureKind::IdentityMismatch,
                format!(
                    "{} ({} of {requests} responses; content not logged)",
                    crate::core::render::mismatch(m),
                    self.found.mismatches
                ),
            ))
        } else if let Some((step, canary)) = &self.personal_step {
            Some(Failure::new(
                FailureKind::PersonalData,
                format!(
                    "canary {canary} at step {step}: a resident registration number the step may not carry ({} responses; content not logged)",
                    self.found.personal_data
                ),
            ))
        } else if timed_out {
            Some(Failure::new(
                FailureKind::Timeout,
                format!(
                    "the rounds did not finish within {}",
                    humantime::format_duration(deadline)
                ),
            ))
        } else {
            self.failure.take()
        };
        let details = IdentityDetails {
            findings: self.found,
            results: self.results.into_iter().collect(),
            round_seconds: elapsed.as_secs_f64() / f64::from(load.rounds.max(1)),
            latency_p50: pick(0.5),
            latency_p95: pick(0.95),
            latency_max: pick(1.0),
            peak_in_flight: 0,
        };
        (failure, details)
    }
}
