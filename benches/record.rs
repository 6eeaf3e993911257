//! The postmortem tools on a long record.
//!
//!   cargo bench --bench record -- [--targets 1000] [--hours 24] [--interval 10s] [--keep DIR]
//!
//! --keep DIR writes the record and every output into DIR and leaves them.
//!
//! Writes a fleet's record (default: 24 hours of 1,000 targets every 10 s,
//! two paths, five injected incidents) through the real journal writer and
//! core on virtual time, then runs the release binary's `replay --verify`,
//! a what-if, a 5-value sweep, `journal export` and `report` on it, each as
//! its own process, and prints for each its wall time, its peak memory
//! (the process's maximum resident set, from wait4) and what it wrote.
//! Nothing is probed and no traffic is sent.

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

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::record::{self, Shape};

struct Args {
    shape: Shape,
    keep: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        shape: Shape::DAY,
        keep: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--targets" => a.shape.targets = value().parse().expect("a number of targets"),
            "--hours" => {
                let h: f64 = value().parse().expect("hours");
                a.shape.span_ms = (h * 3_600_000.0) as u64;
            }
            "--interval" => {
                a.shape.interval_ms = humantime::parse_duration(&value())
                    .expect("an interval like 10s")
                    .as_millis() as u64
            }
            "--keep" => a.keep = Some(PathBuf::from(value())),
            "--bench" => {}
            other => panic!("unknown argument {other}; use --targets, --hours, --interval, --keep"),
        }
    }
    a
}

/// One tool's run: wall time, peak resident memory, exit status.
struct Measured {
    wall: Duration,
    peak_kib: i64,
    ok: bool,
    stdout: String,
}

/// Runs `gwanje args…` and measures it; its standard output is kept.
fn measure(args: &[&str]) -> Measured {
    let start = Instant::now();
    // Waited for below with wait4, which also gives its peak memory.
    #[allow(clippy::zombie_processes, reason = "reaped by wait4")]
    let child = Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gwanje starts");
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).expect("gwanje's output");
        s
    });
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; pid is our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 on gwanje");
    Measured {
        wall: start.elapsed(),
        peak_kib: usage.ru_maxrss,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout: reader.join().expect("the reader"),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() {
    let a = args();
    let temp = tempfile::tempdir().expect("a temporary folder");
    let dir = a.keep.as_deref().unwrap_or(temp.path());
    if let Some(keep) = &a.keep {
        // A kept record of an earlier run is written anew.
        let _ = std::fs::remove_dir_all(keep);
        std::fs::create_dir_all(keep).expect("the --keep folder");
    }
    let s = a.shape;
    println!(
        "# {} targets, {:.1} h, every {} ms (mobile-id every 1 s)",
        s.targets,
        s.span_ms as f64 / 3_600_000.0,
        s.interval_ms
    );
    let t = Instant::now();
    let w = record::write(dir, s);
    let took = t.elapsed();
    println!(
        "written: {} probes, {} records in {:.1} s; journal {:.1} MiB = {:.1} B per probe",
        w.probes,
        w.records,
        took.as_secs_f64(),
        mib(w.bytes),
        w.bytes as f64 / w.probes as f64
    );
    let journal = w.journal.to_str().expect("a UTF-8 path").to_string();
    let what_if = dir.join("what-if");
    let out = dir.join("report");
    let export = dir.join("export.om");
    let other = record::config(&what_if, s, 3);
    let other = other.to_str().expect("UTF-8");
    let runs: [(&str, Vec<&str>); 5] = [
        (
            "replay --verify",
            vec!["replay", "--verify", "--journal", &journal],
        ),
        (
            "what-if (detection.fall 3)",
            vec!["what-if", "--journal", &journal, "--config", other],
        ),
        (
            "sweep (5 values)",
            vec!["sweep", "--journal", &journal, "detection.fall=1,2,3,4,5"],
        ),
        (
            "journal export",
            vec![
                "journal",
                "export",
                "--journal",
                &journal,
                "--out",
                export.to_str().expect("UTF-8"),
            ],
        ),
        (
            "report",
            vec![
                "report",
                "--journal",
                &journal,
                "--out",
                out.to_str().expect("UTF-8"),
            ],
        ),
    ];
    println!(
        "{:<28} {:>8} {:>12} {:>10}  output",
        "tool", "wall s", "records/s", "peak MiB"
    );
    for (name, args) in runs {
        let m = measure(&args);
        let output = match name {
            "journal export" => format!("{:.1} MiB", mib(file_size(&export))),
            "report" => format!(
                "report.html {:.2} MiB, report.md {:.2} MiB",
                mib(file_size(&out.join("report.html"))),
                mib(file_size(&out.join("report.md")))
            ),
            _ => m.stdout.lines().next().unwrap_or_default().to_string(),
        };
        println!(
            "{:<28} {:>8.1} {:>12.0} {:>10.1}  {}{}",
            name,
            m.wall.as_secs_f64(),
            w.records as f64 / m.wall.as_secs_f64(),
            m.peak_kib as f64 / 1024.0,
            if m.ok { "" } else { "FAILED: " },
            output
        );
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}
