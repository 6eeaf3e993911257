//! What following peers costs the instance that receives their results.
//!
//!   cargo bench --bench vantages -- [--targets 1000] [--interval 5s] [--window 30s]
//!
//! Three real gwanje processes on loopback (a, b, c), each probing the
//! same catalog (`--targets` TCP targets every `--interval`, plus two
//! controls) against one loopback listener; a follows b's and c's
//! observation streams. The receiving instance's CPU per remote result is
//! the difference of its CPU time (from /proc) between windows with and
//! without peers (its own probing and journaling are the same in both),
//! divided by the results received; stream bytes per result come from its
//! own counters (bytes as sent, zstd-compressed). Then, in process, the
//! core alone (quorum decisions for 3 vantages) and the line parser alone.
//! Only loopback traffic.

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark measures real elapsed time"
)]

#[path = "../tests/integration/common/mod.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "a benchmark uses part of the test helpers"
)]
mod common;

use std::time::{Duration, Instant};

use common::vantages::Vantage;
use gwanje::core::{
    Core, CoreConfig, FailureKind, HealthPolicy, Input, Observation, QuorumConfig, QuorumTarget,
    Subject, SubjectConfig, TargetKey, Timestamp, VantageName,
};

struct Args {
    targets: usize,
    interval: Duration,
    window: Duration,
    /// Hold the settled fleet this long before measuring (to attach a profiler).
    hold: Duration,
}

fn args() -> Args {
    let mut a = Args {
        targets: 1000,
        interval: Duration::from_secs(5),
        window: Duration::from_secs(30),
        hold: Duration::ZERO,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let dur = |v: String| humantime::parse_duration(&v).expect("a duration like 5s");
        match flag.as_str() {
            "--targets" => a.targets = value().parse().expect("a number"),
            "--interval" => a.interval = dur(value()),
            "--window" => a.window = dur(value()),
            "--hold" => a.hold = dur(value()),
            "--bench" => {}
            other => {
                panic!("unknown argument {other}; use --targets, --interval, --window, --hold")
            }
        }
    }
    a
}

/// The catalogs: `fleet` with `n` TCP targets and the two controls.
fn catalogs(n: usize, interval: Duration, addr: std::net::SocketAddr) -> Vec<(String, String)> {
    let timing = format!(
        "interval: {}ms\ntimeout: 2s\nhealth: {{fall: 2, rise: 2}}\n",
        interval.as_millis()
    );
    let mut fleet = format!("service: fleet\n{timing}targets:\n");
    for i in 0..n {
        fleet.push_str(&format!(
            "  - {{name: t{i:05}, tcp: {{address: '{addr}'}}}}\n"
        ));
    }
    let infra = format!(
        "service: infra\n{timing}targets:\n  - {{name: gw1, tcp: {{address: '{addr}'}}}}\n  - {{name: gw2, tcp: {{address: '{addr}'}}}}\n"
    );
    vec![("fleet".into(), fleet), ("infra".into(), infra)]
}

/// User plus system CPU time of process `pid`.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &stat[stat.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

async fn counter(v: &Vantage, name: &str) -> f64 {
    let text = common::client::get(v.addr(), "/metrics")
        .await
        .expect("scrape")
        .body;
    common::expo::sum(&common::expo::parse(&text), name, &[])
}

struct Window {
    cpu: Duration,
    results: f64,
    bytes: f64,
}

async fn window(a: &Vantage, pid: u32, length: Duration) -> Window {
    let (c0, r0, b0) = (
        cpu(pid),
        counter(a, "gwanje_peer_results_total").await,
        counter(a, "gwanje_peer_stream_bytes_total").await,
    );
    tokio::time::sleep(length).await;
    Window {
        cpu: cpu(pid) - c0,
        results: counter(a, "gwanje_peer_results_total").await - r0,
        bytes: counter(a, "gwanje_peer_stream_bytes_total").await - b0,
    }
}

/// Waits until every one of the `n` targets is up by three votes.
async fn settled(v: &Vantage, limit: Duration, n: usize) {
    v.wait_status(limit, "every target up by three votes", |s| {
        s["vantage"]["verdicts"].as_array().is_some_and(|v| {
            v.len() == n
                && v.iter().all(|x| {
                    x["votes"]
                        .as_array()
                        .is_some_and(|vs| vs.iter().filter(|v| v["vote"] == "up").count() == 3)
                })
        })
    })
    .await;
}

/// The core alone: `n` targets voted on by three vantages, fed
/// `rounds` rounds of both peers' results on virtual time.
fn core_only(n: usize, rounds: u64, interval_ms: u64) -> Duration {
    let policy = HealthPolicy::consecutive(2, 2);
    let keys: Vec<TargetKey> = (0..n)
        .map(|i| TargetKey::new("fleet", &format!("t{i:05}")))
        .collect();
    let cfg = CoreConfig {
        subjects: keys
            .iter()
            .map(|k| SubjectConfig {
                subject: Subject::Target(k.clone()),
                policy,
            })
            .collect(),
        quorum: Some(QuorumConfig {
            local: VantageName::new("a"),
            peers: vec![VantageName::new("b"), VantageName::new("c")],
            min_vantages: 2,
            max_skew_ms: 5_000,
            isolation_share_permille: None,
            controls: Vec::new(),
            targets: keys
                .iter()
                .map(|k| QuorumTarget {
                    target: k.clone(),
                    interval_ms,
                    k: None,
                    policy,
                    groups: Vec::new(),
                })
                .collect(),
        }),
        ..Default::default()
    };
    let mut core = Core::new();
    core.handle_input(Timestamp(0), Input::PlanApplied(cfg));
    let peers = [VantageName::new("b"), VantageName::new("c")];
    let mut seq = 0;
    let mut fed = Duration::ZERO;
    for r in 0..rounds {
        let base = 1_000 + r * interval_ms;
        let inputs: Vec<(Timestamp, Input)> = keys
            .iter()
            .enumerate()
            .flat_map(|(i, k)| peers.iter().map(move |p| (i, k, p)))
            .map(|(i, k, p)| {
                seq += 1;
                let at = base + (i as u64 * interval_ms) / n as u64;
                // A tenth of the targets fail for a while: verdicts move.
                let failing = (r / 4) % 2 == 1 && i % 10 == 0;
                (
                    Timestamp(at),
                    Input::VantageObserved {
                        vantage: p.clone(),
                        seq,
                        control: false,
                        observation: Observation {
                            subject: Subject::Target(k.clone()),
                            at: Timestamp(at),
                            failure: failing.then_some(FailureKind::Refused),
                            cert_not_after: None,
                            packets: None,
                            duration_us: None,
                            rtt_us: None,
                            identity: None,
                        },
                    },
                )
            })
            .collect();
        let start = Instant::now();
        for (at, input) in inputs {
            core.handle_input(at, input);
            while core.poll_effect().is_some() {}
            if let Some(t) = core.poll_timeout().filter(|t| *t <= at) {
                core.handle_timeout(t);
                while core.poll_effect().is_some() {}
            }
        }
        fed += start.elapsed();
    }
    fed
}

/// The line parser alone, on `lines` lines as a peer sends them.
fn parse_only(lines: usize) -> Duration {
    let texts: Vec<Vec<u8>> = (0..lines)
        .map(|i| {
            format!(
                "{{\"seq\":{},\"vantage\":\"b\",\"at\":1796535950385,\"target\":\"fleet/t{:05}\",\"ok\":true}}",
                i + 1,
                i % 1000
            )
            .into_bytes()
        })
        .collect();
    let start = Instant::now();
    for t in &texts {
        std::hint::black_box(gwanje::vantage::wire::parse(t, "b").expect("a line"));
    }
    start.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    println!(
        "three vantages × {} targets every {:?}; windows of {:?}",
        a.targets, a.interval, a.window
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fleet = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let cats = catalogs(a.targets, a.interval, addr);
    // The journal as deployed by default (forced to disk once a second).
    let journal = "journal: {dir: journal}";
    let b = Vantage::start_with("b", &cats, "", journal).await;
    let c = Vantage::start_with("c", &cats, "", journal).await;
    let mut recv = Vantage::start_with("a", &cats, "", journal).await;
    let peers = [("b", b.addr()), ("c", c.addr())];
    recv.follow(&peers, "").await;
    let pid = recv.daemon.as_ref().expect("running").pid();
    // Every target decided by three votes before measuring: steady state.
    let limit = a.interval * 6 + Duration::from_secs(30);
    let n = a.targets + 2;
    let settle = Instant::now();
    settled(&recv, limit, n).await;
    println!("settled in {:.1} s", settle.elapsed().as_secs_f64());
    if !a.hold.is_zero() {
        println!("receiver pid {pid}; holding {:?}", a.hold);
        tokio::time::sleep(a.hold).await;
    }

    let mut with = Vec::new();
    let mut without = Vec::new();
    for round in 0..2 {
        if round > 0 {
            recv.follow(&peers, "").await;
            settled(&recv, limit, n).await;
        }
        with.push(window(&recv, pid, a.window).await);
        recv.rewrite("", "").await;
        tokio::time::sleep(a.interval).await;
        without.push(window(&recv, pid, a.window).await);
    }
    let secs = a.window.as_secs_f64();
    let rate = |w: &Window| w.cpu.as_secs_f64() / secs;
    let results: f64 = with.iter().map(|w| w.results).sum();
    let bytes: f64 = with.iter().map(|w| w.bytes).sum();
    let cpu_with: f64 = with.iter().map(rate).sum::<f64>() / with.len() as f64;
    let cpu_without: f64 = without.iter().map(rate).sum::<f64>() / without.len() as f64;
    let per_second = results / (secs * with.len() as f64);
    let per_result_us = (cpu_with - cpu_without) / per_second * 1e6;
    println!(
        "receiver CPU: {:.1}% with peers, {:.1}% without ({} windows each)",
        cpu_with * 100.0,
        cpu_without * 100.0,
        with.len()
    );
    for (i, (w, o)) in with.iter().zip(&without).enumerate() {
        println!(
            "  window {i}: with {:.1}% ({:.0} results), without {:.1}%",
            rate(w) * 100.0,
            w.results,
            rate(o) * 100.0
        );
    }
    println!(
        "remote results: {per_second:.0}/s; CPU per remote result at the receiver: {per_result_us:.1} µs (goal ≤ 20 µs)"
    );
    println!(
        "stream bytes per result: {:.1} B (zstd; goal ≤ 100 B); uncompressed line ≈ {} B",
        bytes / results.max(1.0),
        gwanje::vantage::Line::of(
            "b",
            123_456,
            false,
            &Observation {
                subject: Subject::Target(TargetKey::new("fleet", "t00042")),
                at: Timestamp(1_796_535_950_385),
                failure: None,
                cert_not_after: None,
                packets: None,
                duration_us: None,
                rtt_us: None,
                identity: None,
            }
        )
        .to_bytes()
        .len()
    );
    drop(b);
    drop(c);
    recv.stop();
    fleet.abort();

    let rounds = 40;
    let fed = core_only(a.targets, rounds, a.interval.as_millis() as u64);
    let n = (a.targets as u64 * 2 * rounds) as f64;
    println!(
        "core alone: {:.2} µs per remote result ({} results, 3 vantages)",
        fed.as_secs_f64() / n * 1e6,
        n
    );
    let lines = 200_000;
    let parsed = parse_only(lines);
    println!(
        "line parser alone: {:.2} µs per line",
        parsed.as_secs_f64() / lines as f64 * 1e6
    );
}
