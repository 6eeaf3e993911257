//! The scheduler keeps 900 healthy targets on time while 100 others hang.

use crate::common;

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::expo;
use common::plan::ConfigDir;
use common::raw::{self, Behaviour};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_targets_do_not_delay_the_others() {
    let fast = common::fleet::http(common::fleet::app()).await;
    let hang = raw::serve(Behaviour::Hang).await;
    let mut catalog = String::from("service: fleet\ninterval: 2s\ntimeout: 1500ms\ntargets:\n");
    for i in 0..1000 {
        let url = if i % 10 == 0 {
            hang.url("/")
        } else {
            fast.url("/")
        };
        writeln!(
            catalog,
            "  - {{name: t{i}, http: {{url: '{url}', personal_data_guard: false}}}}"
        )
        .unwrap();
    }
    let dir = ConfigDir::new("", &[("fleet", &catalog)]);
    let plan = dir.load();
    assert_eq!(plan.targets.len(), 1000);

    let metrics = gwanje::metrics::Metrics::new();
    let ctx = gwanje::probe::ProbeContext::new().unwrap();
    let (_plans, rx) = tokio::sync::watch::channel(Arc::new(plan));
    let shared = gwanje::engine::Shared {
        metrics: metrics.clone(),
        ready: Arc::new(AtomicBool::new(false)),
        status: Default::default(),
        observations: Default::default(),
    };
    let (_commands, command_rx) = tokio::sync::mpsc::channel(1);
    let actuator = gwanje::actuate::Actuator::new(None);
    let engine = tokio::spawn(gwanje::engine::run(rx, ctx, shared, actuator, command_rx));
    // Three full intervals: every healthy target is due at least three times.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    engine.abort();

    let s = expo::parse(&metrics.render());
    let ok = expo::sum(&s, "gwanje_probes_total", &[("result", "success")]);
    let timeouts = expo::sum(&s, "gwanje_probes_total", &[("result", "timeout")]);
    let count = expo::value(&s, "gwanje_scheduler_lateness_seconds_count", &[]).unwrap();
    let within_100ms = expo::value(
        &s,
        "gwanje_scheduler_lateness_seconds_bucket",
        &[("le", "0.1")],
    )
    .unwrap();
    let overruns = expo::value(&s, "gwanje_scheduler_overruns_total", &[]).unwrap();
    eprintln!(
        "ok={ok} timeouts={timeouts} starts={count} within_100ms={within_100ms} overruns={overruns}"
    );

    assert!(
        ok >= 900.0 * 3.0,
        "every healthy target ran at least three times: {ok}"
    );
    assert!(
        timeouts >= 100.0 * 2.0,
        "hung targets time out on their own: {timeouts}"
    );
    assert_eq!(overruns, 0.0, "no slot was skipped");
    // Hung probes holding up the rest would make starts seconds late (their
    // timeout is 1.5 s); the real lateness figure is the fleet benchmark's.
    let within_1s = expo::value(
        &s,
        "gwanje_scheduler_lateness_seconds_bucket",
        &[("le", "1")],
    )
    .unwrap();
    assert!(
        within_1s / count >= 0.99,
        "99% of probes start within 1 s of schedule: {within_1s}/{count} (within 100 ms: {within_100ms})"
    );
}
