//! Replicated controllers on a real 3-member etcd (Debian's etcd-server) in
//! the failover testbed: two replicas of the real gwanje binary in the
//! client namespace, each with its co-located actuator steering the same
//! kernel route. Needs root, iproute2, nftables and etcd
//! (GWANJE_REQUIRE_NETNS=1 / GWANJE_REQUIRE_TOOLS=1 turn a missing one into
//! a failure).

#![allow(
    clippy::disallowed_methods,
    reason = "the test measures a takeover in real time"
)]

use std::time::{Duration, Instant};

use crate::common;
use common::expo;
use common::failover::available;
use gwanje::testbed::Router::A;
use gwanje::testbed::etcd::Etcd;
use gwanje::testbed::failover_config::replica_setup;
use gwanje::testbed::gwanje::Gwanje;
use gwanje::testbed::topology::{GW_A, GW_B};
use gwanje::testbed::{Failure, Lab};

const CLUSTER: &str = "capital";
const TTL: Duration = Duration::from_secs(3);

fn tools() -> bool {
    if Etcd::installed() {
        return true;
    }
    let required = std::env::var("GWANJE_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "GWANJE_REQUIRE_TOOLS=1 but etcd/etcdctl are missing"
    );
    eprintln!("skipping: etcd is not installed");
    false
}

/// One sample of metric `name` with `labels` (0 when absent or no answer).
fn metric(g: &Gwanje, name: &str, labels: &[(&str, &str)]) -> f64 {
    expo::value(&expo::parse(&g.metrics()), name, labels).unwrap_or(0.0)
}

fn role(g: &Gwanje, role: &str) -> bool {
    metric(g, "gwanje_cluster_role", &[("role", role)]) == 1.0
}

/// Polls `done` every 20 ms for at most `limit`; how long it took.
fn wait(what: &str, limit: Duration, logs: &[&Gwanje], done: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        if start.elapsed() >= limit {
            let logs: Vec<String> = logs.iter().map(|g| g.log_text()).collect();
            panic!(
                "{what}: not within {limit:?}\nlogs:\n{}",
                logs.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn firing(g: &Gwanje, name: &str) -> bool {
    g.status()["alerts"]
        .as_array()
        .is_some_and(|a| a.iter().any(|a| a["name"] == name))
}

#[test]
fn a_killed_leader_is_replaced_within_the_ttl_and_stale_or_garbled_orders_are_refused() {
    if !available() || !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = env!("CARGO_BIN_EXE_gwanje");
    let endpoints = Etcd::endpoints();
    let mut etcd = None;
    let lab = Lab::start(
        exe.as_ref(),
        dir.path(),
        &replica_setup("a", 9470, CLUSTER, &endpoints),
        |bed| {
            etcd = Some(Etcd::start(&bed.client, dir.path())?);
            Ok(())
        },
    )
    .unwrap_or_else(|e| panic!("lab: {e}"));
    let etcd = etcd.expect("etcd started");
    let a = &lab.gwanje;
    wait("replica a leads", Duration::from_secs(15), &[a], || {
        role(a, "leader")
    });
    // Replica b: same files but its own config, journal and fence.
    let b_setup = replica_setup("b", 9471, CLUSTER, &endpoints);
    for (rel, text) in &b_setup.files {
        gwanje::config::write_secret_file(&dir.path().join(rel), text).expect("write");
    }
    let b = Gwanje::start(
        exe.as_ref(),
        &lab.bed.client,
        &dir.path().join(&b_setup.config),
        9471,
        dir.path().join("gwanje-b.log"),
    )
    .expect("start b");
    wait("replica b follows", Duration::from_secs(15), &[&b], || {
        role(&b, "follower")
            && b.status()["groups"][0]["paths"]
                .as_array()
                .is_some_and(|p| p.iter().all(|p| p["state"] == "up"))
    });
    assert!(role(a, "leader"), "a still leads");

    // kill -9 the leader: b leads within the TTL and a second, and with no
    // path fault nothing is ordered and the route stays.
    // SAFETY: kill(2) on the PID of the child this test started.
    unsafe {
        libc::kill(a.pid() as i32, libc::SIGKILL);
    }
    let took = wait("b takes over", TTL + Duration::from_secs(3), &[&b], || {
        role(&b, "leader")
    });
    eprintln!("takeover after kill -9: {took:?}");
    assert!(took <= TTL + Duration::from_secs(1), "took {took:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lab.route().as_deref(),
        Some(GW_A),
        "no route change in the takeover"
    );
    let orders = etcd
        .etcdctl(&[
            "get",
            "--prefix",
            "--keys-only",
            &format!("/gwanje/{CLUSTER}/desired/"),
        ])
        .expect("etcdctl get");
    assert!(orders.trim().is_empty(), "no order was written: {orders}");
    let fence = metric(&b, "gwanje_cluster_fence", &[]);
    assert!(fence > 0.0, "b leads with a fence");

    // The primary breaks: the new leader orders the standby, under its fence.
    Failure::NoForwarding(A)
        .apply(&lab.bed)
        .expect("break the primary");
    lab.wait_route(GW_B, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", b.log_text()));
    let written = etcd
        .etcdctl(&[
            "get",
            "--print-value-only",
            &format!("/gwanje/{CLUSTER}/desired/services"),
        ])
        .expect("etcdctl get");
    let desired: serde_json::Value = serde_json::from_str(written.trim()).expect("json order");
    assert_eq!(desired["path"], "standby");
    assert_eq!(desired["fence"].as_f64(), Some(fence), "{desired}");
    assert_eq!(metric(&b, "gwanje_cluster_fence_applied", &[]), fence);

    // An older fence written straight into etcd: refused, counted,
    // alerted; the route stays.
    let stale = format!(
        r#"{{"path":"primary","from":"standby","fence":{},"reason":"failback","by":"a"}}"#,
        fence as u64 - 1
    );
    etcd.etcdctl(&[
        "put",
        &format!("/gwanje/{CLUSTER}/desired/services"),
        &stale,
    ])
    .expect("etcdctl put");
    wait(
        "the stale order is refused",
        Duration::from_secs(5),
        &[&b],
        || {
            metric(
                &b,
                "gwanje_fence_rejections_total",
                &[("reason", "stale_fence")],
            ) == 1.0
        },
    );
    wait("OrderRefused fires", Duration::from_secs(5), &[&b], || {
        firing(&b, "OrderRefused")
    });
    // Garbage in the key: refused as unreadable.
    etcd.etcdctl(&[
        "put",
        &format!("/gwanje/{CLUSTER}/desired/services"),
        "{not json",
    ])
    .expect("etcdctl put");
    wait(
        "the garbage is refused",
        Duration::from_secs(5),
        &[&b],
        || {
            metric(
                &b,
                "gwanje_fence_rejections_total",
                &[("reason", "unreadable")],
            ) == 1.0
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lab.route().as_deref(),
        Some(GW_B),
        "refused orders move nothing"
    );
    assert!(role(&b, "leader"), "b still leads");
}
