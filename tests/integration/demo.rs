//! `gwanje demo` end to end (root): the story's output, and cleanup on a
//! normal exit, on SIGTERM, and at the start after a SIGKILLed run.

#![allow(clippy::disallowed_methods, reason = "the test waits in real time")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::failover::available;

const VETHS: [&str; 8] = ["ca", "cb", "ac", "bc", "as", "bs", "sa", "sb"];

fn demo(out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .args(["demo", "--pace", "fast"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).expect("output file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gwanje demo")
}

fn namespaces_of(pid: u32) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("gwj{pid}-")))
        .map(str::to_string)
        .collect()
}

/// Whether `pid` is a live process (a zombie is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Waits (at most `limit`) until the output holds `text`; returns it.
fn wait_for(out: &Path, child: &mut Child, text: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let now = std::fs::read_to_string(out).unwrap_or_default();
        if now.contains(text) {
            return now;
        }
        let exited = child.try_wait().expect("status");
        assert!(
            exited.is_none() && start.elapsed() < limit,
            "no {text:?} within {limit:?} (exit {exited:?}):\n{now}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The gwanje PID the demo printed.
fn gwanje_pid(output: &str) -> u32 {
    output
        .split("gwanje pid ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no gwanje pid in:\n{output}"))
}

fn assert_gone(demo_pid: u32, gwanje: u32) {
    let start = Instant::now();
    while alive(gwanje) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(gwanje), "gwanje (pid {gwanje}) outlived the demo");
    assert_eq!(namespaces_of(demo_pid), Vec::<String>::new());
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    let links = String::from_utf8_lossy(&links.stdout);
    for v in VETHS {
        assert!(
            !links.lines().any(|l| l
                .split(": ")
                .nth(1)
                .is_some_and(|n| n.starts_with(&format!("{v}@")))),
            "veth {v} on the host"
        );
    }
}

#[test]
fn the_demo_tells_the_whole_story_and_leaves_nothing_behind() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("demo.out");
    let mut child = demo(&out);
    let pid = child.id();
    let status = {
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().expect("status") {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "demo still running after 3 min"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).ok();
    eprintln!("{text}\n{err}");
    assert!(status.success(), "exit {status}");
    for expected in [
        "→ traffic now flows via standby (was primary)",
        "failover: the kernel route moved to router B",
        "large-packet loss detected on primary: checks failing only through this path: routers/portal-reachable-large",
        "no failback: traffic stays on router B",
        "ALERT ServiceDown",
        "service failure: ServiceDown raised, no switch",
        "→ traffic now flows via primary (was standby)",
        "identical: ",
    ] {
        assert!(text.contains(expected), "missing {expected:?}");
    }
    assert!(
        !text.contains("FailoverImpossible"),
        "the service failure is named as such"
    );
    assert_gone(pid, gwanje_pid(&text));
}

#[test]
fn a_killed_demo_is_cleaned_up_by_the_next_start_and_sigterm_cleans_up() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let first_out = dir.path().join("first.out");
    let mut first = demo(&first_out);
    let text = wait_for(&first_out, &mut first, "── 1.", Duration::from_secs(60));
    let first_pid = first.id();
    let first_gwanje = gwanje_pid(&text);
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    // gwanje dies with its parent; the namespaces stay until someone cleans up.
    let leftovers = namespaces_of(first_pid);
    let second_out = dir.path().join("second.out");
    let mut second = demo(&second_out);
    let text = wait_for(&second_out, &mut second, "── 1.", Duration::from_secs(60));
    if leftovers.len() == 4 {
        // (Another test's testbed may have removed them first.)
        for n in &leftovers {
            assert!(
                text.contains(n.as_str()),
                "the start names {n} as removed:\n{text}"
            );
        }
    }
    assert_gone(first_pid, first_gwanje);
    // SIGTERM mid-story: the demo ends with 130 and removes everything.
    let second_pid = second.id();
    let second_gwanje = gwanje_pid(&text);
    // SAFETY: kill(2) on the PID of the child this test started.
    unsafe {
        libc::kill(second_pid as i32, libc::SIGTERM);
    }
    let start = Instant::now();
    let status = loop {
        if let Some(s) = second.try_wait().expect("status") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "demo ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    assert_gone(second_pid, second_gwanje);
}
