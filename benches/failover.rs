//! Real traffic gaps on router failures, in namespaces the benchmark creates
//! (the shared testbed, `gwanje::testbed`).
//!
//!   sudo cargo bench --bench failover -- [--runs 5] [--seconds 60] [--mode default|fast|both]
//!
//! For each mode (the default 100 ms checks, and fast liveness: a confirmed
//! echo every 50 ms), runs failures (a) far-side link cut, (b) router stops forwarding,
//! (c) client–router link down and (h) packets of 1,400 bytes and more
//! dropped, `--runs` times each (default mode: 100 ms probes, fall 3; fast:
//! a confirmed full-size echo every 50 ms, fall 2), and prints min/median/max of the longest time without a reply seen by a
//! traffic generator sending every 10 ms. Then `--seconds` with no failure
//! and `--seconds` with 10% random loss on the primary, counting switches
//! (every one of them false).

#![allow(
    clippy::disallowed_methods,
    reason = "the benchmark measures real time"
)]

use std::time::{Duration, Instant};

use gwanje::testbed::Router::A;
use gwanje::testbed::failover_config::{Mode, failover_setup_in};
use gwanje::testbed::topology::{GW_B, preflight};
use gwanje::testbed::{Failure, Lab, TestbedError, Traffic, longest_gap};

const AUTO: &str = "{mode: auto, after: 2s}";

fn failures() -> [(&'static str, Failure); 4] {
    [
        ("(a) far-side link cut", Failure::FarSideCut(A)),
        ("(b) router stops forwarding", Failure::NoForwarding(A)),
        ("(c) client-router link down", Failure::NearLinkDown(A)),
        (
            "(h) >=1400-byte packets dropped",
            Failure::LargePacketDrop {
                router: A,
                min_bytes: 1400,
            },
        ),
    ]
}

fn lab(mode: Mode, dir: &tempfile::TempDir) -> Result<Lab, TestbedError> {
    let setup = failover_setup_in(mode, AUTO, "{max_switches: 6, window: 1m}");
    Lab::start(
        env!("CARGO_BIN_EXE_gwanje").as_ref(),
        dir.path(),
        &setup,
        |_| Ok(()),
    )
}

fn gap_once(mode: Mode, failure: Failure) -> Result<Duration, TestbedError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let lab = lab(mode, &dir)?;
    let traffic = Traffic::start(
        &lab.bed.client,
        Duration::from_secs(30),
        failure.meter_payload(),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let broken = Instant::now();
    failure.apply(&lab.bed)?;
    lab.wait_route(GW_B, Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(500));
    let end = Instant::now();
    Ok(longest_gap(&traffic.finish()?, broken, end))
}

fn switches_over(mode: Mode, seconds: u64, failure: Option<Failure>) -> Result<u64, TestbedError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let lab = lab(mode, &dir)?;
    if let Some(f) = failure {
        f.apply(&lab.bed)?;
    }
    std::thread::sleep(Duration::from_secs(seconds));
    Ok(lab.gwanje.metric_sum("gwanje_failovers_total").round() as u64)
}

fn main() -> Result<(), TestbedError> {
    let mut runs = 5;
    let mut seconds = 60;
    let mut modes = vec![Mode::Default, Mode::Fast];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .expect("--runs N (1 or more)")
            }
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--seconds N")
            }
            "--mode" => {
                modes = match args.next().as_deref() {
                    Some("default") => vec![Mode::Default],
                    Some("fast") => vec![Mode::Fast],
                    Some("both") => vec![Mode::Default, Mode::Fast],
                    _ => panic!("--mode default|fast|both"),
                }
            }
            "--bench" => {}
            other => panic!("unknown argument {other}; use --runs, --seconds, --mode"),
        }
    }
    if let Err(e) = preflight() {
        println!("the failover benchmark needs the namespace testbed: {e}");
        return Ok(());
    }
    let loss = Failure::RandomLoss {
        router: A,
        percent: 10,
    };
    for mode in modes {
        println!("mode {mode:?}");
        println!("  failure                           runs   min ms  median ms   max ms");
        for (name, failure) in failures() {
            let mut gaps = Vec::new();
            for _ in 0..runs {
                gaps.push(gap_once(mode, failure)?.as_secs_f64() * 1000.0);
            }
            gaps.sort_by(f64::total_cmp);
            println!(
                "  {name:<33} {runs:>4} {:>8.0} {:>10.0} {:>8.0}",
                gaps[0],
                gaps[gaps.len() / 2],
                gaps[gaps.len() - 1]
            );
        }
        println!(
            "  no failure, {seconds} s:               {} false switches",
            switches_over(mode, seconds, None)?
        );
        println!(
            "  10% random loss on primary, {seconds} s: {} false switches",
            switches_over(mode, seconds, Some(loss))?
        );
    }
    Ok(())
}
