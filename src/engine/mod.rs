//! The engine: one task that owns the core, applies plans and turns probe
//! results into core inputs, metrics and log lines.

pub mod clock;
mod scheduler;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, watch};

pub use scheduler::{Completed, Scheduler, phase_offset};

use crate::core::{Core, Effect, Input, Observation, Subject, TargetState};
use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::probe::ProbeContext;

/// Capacity of the results channel; probes wait when the engine is behind.
const RESULTS_CAPACITY: usize = 4096;

/// Runs until `plans` closes. `ready` turns true once the first plan runs.
pub async fn run(
    mut plans: watch::Receiver<Arc<Plan>>,
    ctx: Arc<ProbeContext>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) {
    let (tx, mut results) = mpsc::channel(RESULTS_CAPACITY);
    let first = plans.borrow_and_update().clone();
    let mut scheduler = Scheduler::new(ctx, first.settings.max_concurrency, tx, metrics.clone());
    let mut core = Core::new();
    apply(&first, &mut core, &mut scheduler, &metrics);
    ready.store(true, Ordering::SeqCst);
    loop {
        tokio::select! {
            changed = plans.changed() => {
                if changed.is_err() {
                    return;
                }
                let plan = plans.borrow_and_update().clone();
                apply(&plan, &mut core, &mut scheduler, &metrics);
            }
            Some(done) = results.recv() => handle(done, &mut core, &metrics),
        }
    }
}

fn apply(plan: &Plan, core: &mut Core, scheduler: &mut Scheduler, metrics: &Metrics) {
    // The core learns the targets before their first results can arrive.
    core.handle_input(clock::now(), Input::PlanApplied(plan.core_config()));
    metrics.targets.sync(plan);
    metrics.targets_planned.reset();
    for t in &plan.targets {
        metrics
            .targets_planned
            .with_label_values(&[&*t.service, t.probe.kind()])
            .inc();
    }
    scheduler.apply(plan);
    tracing::info!(
        targets = scheduler.len(),
        services = plan.services.len(),
        "plan applied"
    );
}

fn handle(done: Completed, core: &mut Core, metrics: &Metrics) {
    let t = &done.target;
    let failure = done.result.failure.as_ref().map(|f| f.kind);
    metrics
        .probes_total
        .with_label_values(&[
            &*t.service,
            t.probe.kind(),
            failure.map_or("success", |k| k.as_str()),
        ])
        .inc();
    if let Some(f) = &done.result.failure {
        tracing::debug!(target_key = %t.key, kind = %f.kind, detail = %f.detail, "probe failed");
    }
    core.handle_input(
        done.at,
        Input::ProbeCompleted(Observation {
            subject: Subject::Target(t.key.clone()),
            at: done.at,
            failure,
        }),
    );
    let detail = done.result.failure.as_ref().map(|f| f.detail.clone());
    metrics.targets.record(&t.key, done.result);
    while let Some(effect) = core.poll_effect() {
        report(effect, detail.as_deref(), metrics);
    }
}

/// One effect → one log line and its metrics.
fn report(effect: Effect, detail: Option<&str>, metrics: &Metrics) {
    match effect {
        Effect::HealthChanged {
            subject: Subject::Target(target),
            from,
            to,
            failures_in_window,
            cause,
            ..
        } => {
            metrics.targets.set_state(&target, to);
            let service = target.as_str().split('/').next().unwrap_or_default();
            metrics
                .target_changes_total
                .with_label_values(&[service, to.as_str()])
                .inc();
            match to {
                TargetState::Down => tracing::warn!(
                    target_key = %target, %from, %to, failures_in_window,
                    cause = cause.map_or("none", |c| c.as_str()),
                    detail = detail.unwrap_or(""),
                    "target down"
                ),
                _ => tracing::info!(target_key = %target, %from, %to, "target {to}"),
            }
        }
        // Paths and groups are wired in with the failover controller.
        other => tracing::info!(?other, "core effect"),
    }
}
