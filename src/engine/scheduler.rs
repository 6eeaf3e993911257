//! Runs each target's probe on its own interval.
//!
//! Every target has its own task, so a hung target only delays itself; its
//! start is offset within the interval by a hash of its key, so 10,000
//! targets do not fire at once and a target keeps its phase across reloads.
//! A probe never overlaps itself (timeout < interval, and the next run waits
//! for this one); a global semaphore caps probes in flight.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::core::{Subject, TargetKey, Timestamp};
use crate::metrics::Metrics;
use crate::plan::{Job, Plan};
use crate::probe::{Executor, Probe, ProbeResult};

/// A finished probe, sent to the engine.
#[derive(Debug)]
pub struct Completed {
    /// The job that ran.
    pub job: Arc<Job>,
    /// When it finished.
    pub at: Timestamp,
    /// What it found.
    pub result: ProbeResult,
}

struct Running {
    job: Arc<Job>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Owns one task per target and keeps them in line with the plan.
pub struct Scheduler {
    executor: Arc<dyn Executor>,
    clock: Arc<dyn Clock>,
    permits: Arc<Semaphore>,
    results: mpsc::Sender<Completed>,
    metrics: Arc<Metrics>,
    running: HashMap<Subject, Running>,
}

/// The key a job's phase is derived from. A check has the same phase through
/// every path, and all routers share one, so results that the core compares
/// across paths are taken at the same moments.
fn phase_key(subject: &Subject) -> TargetKey {
    match subject {
        Subject::Target(k) | Subject::Check(k, _) => k.clone(),
        Subject::Router(_) => TargetKey::new("path", "router"),
    }
}

/// Where in its interval a target starts: stable for a key and interval.
pub fn phase_offset(key: &TargetKey, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

impl Scheduler {
    /// A scheduler with at most `max_concurrency` probes in flight.
    pub fn new(
        executor: Arc<dyn Executor>,
        clock: Arc<dyn Clock>,
        max_concurrency: usize,
        results: mpsc::Sender<Completed>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Scheduler {
            executor,
            clock,
            permits: Arc::new(Semaphore::new(max_concurrency)),
            results,
            metrics,
            running: HashMap::new(),
        }
    }

    /// Starts, stops and restarts job tasks to match `plan`; an unchanged
    /// job keeps its task and its phase.
    pub fn apply(&mut self, plan: &Plan) {
        let mut old = std::mem::take(&mut self.running);
        for job in &plan.jobs {
            let running = match old.remove(&job.subject) {
                Some(r) if r.job == *job => r,
                _ => self.spawn(job.clone()),
            };
            self.running.insert(job.subject.clone(), running);
        }
        // Whatever is left in `old` was removed or changed: dropping aborts it.
    }

    /// Number of targets being probed.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether no target is being probed.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    fn spawn(&self, job: Arc<Job>) -> Running {
        let task = tokio::spawn(job_loop(
            job.clone(),
            self.executor.prepare(&job),
            self.clock.clone(),
            self.permits.clone(),
            self.results.clone(),
            self.metrics.clone(),
        ));
        Running { job, task }
    }
}

async fn job_loop(
    job: Arc<Job>,
    probe: Box<dyn Probe>,
    clock: Arc<dyn Clock>,
    permits: Arc<Semaphore>,
    results: mpsc::Sender<Completed>,
    metrics: Arc<Metrics>,
) {
    let interval = job.target.interval;
    let mut due = Instant::now() + phase_offset(&phase_key(&job.subject), interval);
    loop {
        tokio::time::sleep_until(due).await;
        let Ok(_permit) = permits.acquire().await else {
            return;
        };
        metrics
            .scheduler_lateness
            .observe(Instant::now().saturating_duration_since(due).as_secs_f64());
        metrics.probes_in_flight.inc();
        // A bug that panics on some response must not end this target's
        // probing silently: the run counts as failed and the loop goes on.
        let run = std::panic::AssertUnwindSafe(probe.run());
        let result = futures_util::FutureExt::catch_unwind(run)
            .await
            .unwrap_or_else(|_| {
                tracing::error!(subject = %job.subject, "the probe panicked; counted as failed");
                crate::probe::ProbeResult {
                    duration: Duration::ZERO,
                    failure: Some(crate::probe::Failure::new(
                        crate::core::FailureKind::Protocol,
                        "internal error: the probe panicked",
                    )),
                    details: crate::probe::Details::None,
                }
            });
        metrics.probes_in_flight.dec();
        drop(_permit);
        let done = Completed {
            job: job.clone(),
            at: clock.now(),
            result,
        };
        if results.send(done).await.is_err() {
            return;
        }
        due += interval;
        let now = Instant::now();
        if due < now {
            // Keep the phase: skip the slots that passed, and count them.
            let behind = now - due;
            let skipped = behind.as_nanos() / interval.as_nanos() + 1;
            due += interval * skipped as u32;
            metrics.scheduler_overruns.inc_by(skipped as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_offsets_spread_within_the_interval() {
        let interval = Duration::from_secs(10);
        let offsets: Vec<Duration> = (0..1000)
            .map(|i| phase_offset(&TargetKey::new("svc", &format!("t{i}")), interval))
            .collect();
        assert!(offsets.iter().all(|o| *o < interval));
        // Every tenth of the interval gets some targets: no thundering herd.
        let mut buckets = [0usize; 10];
        for o in &offsets {
            buckets[(o.as_millis() / 1000) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (50..=150).contains(&n)),
            "{buckets:?}"
        );
        let again = phase_offset(&TargetKey::new("svc", "t0"), interval);
        assert_eq!(again, offsets[0], "the offset is stable for a key");
    }

    /// Guards memory per target: an idle target's task must not carry a
    /// probe's state machine (it did, at 20 KB each, before the probe future was boxed).
    #[tokio::test]
    async fn idle_target_task_stays_small() {
        let target = Arc::new(crate::plan::Target {
            key: TargetKey::new("svc", "t"),
            service: "svc".into(),
            name: "t".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            health: Default::default(),
            probe: crate::plan::ProbeSpec::Icmp(crate::plan::IcmpSpec {
                host: "127.0.0.1".into(),
                packets: 1,
                max_loss: 0.5,
                payload_size: 8,
                dont_fragment: false,
                confirm: 0,
                source: Default::default(),
            }),
        });
        let job = Arc::new(Job {
            subject: Subject::Target(target.key.clone()),
            health: target.health,
            target: target.clone(),
        });
        let (tx, _rx) = mpsc::channel(1);
        let executor =
            crate::probe::NetExecutor(crate::probe::ProbeContext::new().expect("probe context"));
        let probe = executor.prepare(&job);
        let task = job_loop(
            job,
            probe,
            Arc::new(crate::clock::SystemClock),
            Arc::new(Semaphore::new(1)),
            tx,
            Metrics::new(),
        );
        assert!(
            std::mem::size_of_val(&task) <= 2048,
            "{} bytes",
            std::mem::size_of_val(&task)
        );
    }
}
