//! Real traffic gaps on router failures, in namespaces the benchmark creates.
//!
//!   sudo cargo bench --bench failover -- [--runs 5] [--seconds 60]
//!
//! Runs failures (a) far-side link cut, (b) router stops forwarding,
//! (c) client–router link down and (h) packets of 1,400 bytes and more
//! dropped, `--runs` times each, with 100 ms probes and a fall count of 3,
//! and prints min/median/max of the longest time without a reply seen by a
//! traffic generator sending every 10 ms. Then `--seconds` with no failure
//! and `--seconds` with 10% random loss on the primary, counting switches
//! (every one of them false).

#![allow(
    clippy::disallowed_methods,
    reason = "the benchmark measures real time"
)]

#[path = "../tests/integration/common/mod.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "a benchmark uses part of the test helpers"
)]
mod common;

use std::time::{Duration, Instant};

use common::expo;
use common::failover::Rig;
use common::netns::{GW_B, Testbed, Traffic, available, longest_gap};

const AUTO: &str = "{mode: auto, after: 2s}";

type Failure = (&'static str, usize, fn(&Rig));

fn failures() -> Vec<Failure> {
    vec![
        ("(a) far-side link cut", 64, |r| {
            r.bed.ra.ip(&["link", "set", "as", "down"])
        }),
        ("(b) router stops forwarding", 64, |r| {
            r.bed.ra.sysctl("net.ipv4.ip_forward=0")
        }),
        ("(c) client-router link down", 64, |r| {
            r.bed.ra.ip(&["link", "set", "ac", "down"])
        }),
        ("(h) >=1400-byte packets dropped", 1400, |r| {
            Testbed::nft_forward(&r.bed.ra, "meta length >= 1400 drop")
        }),
    ]
}

fn gap_once(payload: usize, fail: fn(&Rig)) -> Duration {
    let rig = Rig::start(AUTO);
    let traffic = Traffic::start(&rig.bed.client, Duration::from_secs(30), payload);
    std::thread::sleep(Duration::from_millis(500));
    let broken = Instant::now();
    fail(&rig);
    rig.wait_route(GW_B, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let end = Instant::now();
    longest_gap(&traffic.finish(), broken, end)
}

fn switches_over(seconds: u64, loss: bool) -> u64 {
    let rig = Rig::start(AUTO);
    if loss {
        Testbed::nft_forward(&rig.bed.ra, "numgen random mod 100 < 10 drop");
    }
    std::thread::sleep(Duration::from_secs(seconds));
    expo::sum(&expo::parse(&rig.metrics()), "gwanje_failovers_total", &[]).round() as u64
}

fn main() {
    let mut runs = 5;
    let mut seconds = 60;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--seconds N")
            }
            "--bench" => {}
            other => panic!("unknown argument {other}; use --runs, --seconds"),
        }
    }
    if !available() {
        println!("the failover benchmark needs root, iproute2 and nftables");
        return;
    }
    println!("failure                           runs   min ms  median ms   max ms");
    for (name, payload, fail) in failures() {
        let mut gaps: Vec<f64> = (0..runs)
            .map(|_| gap_once(payload, fail).as_secs_f64() * 1000.0)
            .collect();
        gaps.sort_by(f64::total_cmp);
        println!(
            "{name:<33} {runs:>4} {:>8.0} {:>10.0} {:>8.0}",
            gaps[0],
            gaps[gaps.len() / 2],
            gaps[gaps.len() - 1]
        );
    }
    println!(
        "no failure, {seconds} s:               {} false switches",
        switches_over(seconds, false)
    );
    println!(
        "10% random loss on primary, {seconds} s: {} false switches",
        switches_over(seconds, true)
    );
}
