//! Takeovers of replicated controllers on a real 3-member etcd, in
//! namespaces the benchmark creates (the shared testbed's replicas,
//! `gwanje::testbed::cluster`).
//!
//!   sudo cargo bench --bench cluster -- [--kills 20] [--seconds 60]
//!
//! Kills the leader with SIGKILL `--kills` times (the killed replica is
//! started again and waited for as a follower between kills) and prints
//! the distribution of the time until the other replica leads; then stops
//! the leader with SIGTERM 5 times (a resignation); then counts etcd's
//! writes (revisions) over `--seconds` of steady state with both replicas
//! running and nothing failing.

#![allow(
    clippy::disallowed_methods,
    reason = "the benchmark measures real time"
)]

use std::time::{Duration, Instant};

use gwanje::testbed::TestbedError;
use gwanje::testbed::cluster::{Replicas, TTL, role, wait};
use gwanje::testbed::etcd::Etcd;
use gwanje::testbed::topology::preflight;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn revision(r: &Replicas) -> Result<u64, TestbedError> {
    let out = r.etcd.etcdctl(&["endpoint", "status", "-w", "json"])?;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    Ok(v[0]["Status"]["header"]["revision"].as_u64().unwrap_or(0))
}

fn leader(r: &Replicas) -> Option<usize> {
    (0..2).find(|i| role(r.replica(*i), "leader"))
}

/// Stops the leader with `sig` and returns how long until the other leads.
fn takeover(r: &mut Replicas, sig: i32) -> Result<Duration, TestbedError> {
    let i = leader(r).ok_or_else(|| TestbedError::Timeout {
        what: "a leader".into(),
        limit: Duration::ZERO,
        last: "none".into(),
    })?;
    let other = 1 - i;
    // SAFETY: kill(2) on the PID of a replica this benchmark started.
    unsafe {
        libc::kill(r.replica(i).pid() as i32, sig);
    }
    let took = wait("the other replica leads", TTL * 3, || {
        role(r.replica(other), "leader")
    })?;
    let _ = r.replica(i).terminate();
    r.restart(i)?;
    r.wait_follows(i)?;
    Ok(took)
}

fn summary(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} min={:.0} ms median={:.0} ms max={:.0} ms",
        v.len(),
        ms(v[0]),
        ms(v[v.len() / 2]),
        ms(v[v.len() - 1])
    );
}

fn main() -> Result<(), TestbedError> {
    if let Err(e) = preflight() {
        eprintln!("cluster benchmark needs root and iproute2/nftables: {e}");
        return Ok(());
    }
    if !Etcd::installed() {
        eprintln!("cluster benchmark needs etcd-server and etcd-client");
        return Ok(());
    }
    let kills = arg("--kills", 20);
    let seconds = arg("--seconds", 60);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut r = Replicas::start(
        env!("CARGO_BIN_EXE_gwanje").as_ref(),
        dir.path(),
        &Etcd::endpoints(),
    )?;
    println!("lease TTL {} s", TTL.as_secs());
    let mut killed = Vec::new();
    for n in 0..kills {
        let t = takeover(&mut r, libc::SIGKILL)?;
        eprintln!("kill {}: {:.0} ms", n + 1, t.as_secs_f64() * 1000.0);
        killed.push(t);
    }
    summary("takeover after kill -9", killed);
    let mut resigned = Vec::new();
    for _ in 0..5 {
        resigned.push(takeover(&mut r, libc::SIGTERM)?);
    }
    summary("handover after SIGTERM", resigned);
    let (from, start) = (revision(&r)?, Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let writes = revision(&r)?.saturating_sub(from);
    println!(
        "etcd writes in steady state: {writes} in {:.0} s ({:.2}/s; lease keepalives are not writes)",
        start.elapsed().as_secs_f64(),
        writes as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}
