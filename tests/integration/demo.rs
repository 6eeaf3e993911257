//! `gwanje demo` end to end (root): the story's output, and cleanup on a
//! normal exit, on SIGTERM, and at the start after a SIGKILLed run.

#![allow(clippy::disallowed_methods, reason = "the test waits in real time")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::failover::available;

const VETHS: [&str; 8] = ["ca", "cb", "ac", "bc", "as", "bs", "sa", "sb"];

/// A demo process, killed by its PID if the test ends before it does.
struct Demo(Child);

impl std::ops::Deref for Demo {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Demo {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        // SIGTERM first, so a failed test still leaves no namespaces.
        // SAFETY: kill(2) on the PID of our child, not yet reaped.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        for _ in 0..100 {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_demo(args: &[&str], out: &Path) -> Demo {
    let log = out.with_extension("err");
    Demo(
        Command::new(env!("CARGO_BIN_EXE_gwanje"))
            .arg("demo")
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out).expect("output file"))
            .stderr(std::fs::File::create(log).expect("error file"))
            .spawn()
            .expect("start gwanje demo"),
    )
}

fn demo(out: &Path) -> Demo {
    spawn_demo(&["--pace", "fast"], out)
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
fn wait_for(out: &Path, child: &mut Demo, text: &str, limit: Duration) -> String {
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
    let err = std::fs::read_to_string(out.with_extension("err")).unwrap_or_default();
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
        "VantageIsolated after",
        "ALERT ServiceDown: portal/http is down from 3 of 3 vantages",
        "failover at seoul-dc only",
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

/// A blocking HTTP/1.0 GET on the host: the body, or "" when nothing answers.
fn get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

fn poll(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_interactive_demo_is_watched_from_the_host_and_broken_from_another_command() {
    if !available() {
        return;
    }
    let prometheus = Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("interactive.out");
    let mut args = vec!["--interactive", "--listen", "127.0.0.1:0"];
    if prometheus {
        args.push("--with-prometheus");
    }
    let mut child = spawn_demo(&args, &out);
    let pid = child.id().to_string();
    let text = wait_for(
        &out,
        &mut child,
        "From another terminal",
        Duration::from_secs(90),
    );
    let url = |label: &str| -> String {
        text.split(label)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(|u| {
                u.trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_string()
            })
            .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
    };
    let api = url("gwanje's API on the host: ");
    assert!(get(&api, "/metrics").contains("probe_success"));
    let gwanje = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_gwanje"))
            .args(["demo"])
            .args(args)
            .args(["--pid", &pid])
            .output()
            .expect("gwanje demo …");
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(gwanje(&["break", "router-a", "--how", "far-link"]).contains("far-side link cut"));
    let active = |p: &str| {
        let s: serde_json::Value =
            serde_json::from_str(&get(&api, "/api/v1/status")).unwrap_or_default();
        s["groups"][0]["active_path"] == p
    };
    poll(
        Duration::from_secs(15),
        "failover seen from the host",
        || active("standby"),
    );
    assert!(gwanje(&["list"]).contains("path primary: down"));
    gwanje(&["mend", "router-a"]);
    if prometheus {
        let prom = url("Prometheus (scraping the demo every 5 s, with deploy/prometheus/rules): ");
        poll(
            Duration::from_secs(30),
            "Prometheus scrapes the demo",
            || {
                let up = get(&prom, "/api/v1/query?query=up%7Bjob%3D%22gwanje%22%7D");
                up.contains(r#""job":"gwanje""#) && up.contains(r#","1"]"#)
            },
        );
    }
    poll(Duration::from_secs(30), "failback after the mend", || {
        active("primary")
    });
    let gwanje_pid = gwanje_pid(&text);
    // SAFETY: kill(2) on the PID of the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("status") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "demo ignored Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "Ctrl-C ends an interactive demo normally: {status}"
    );
    assert_gone(child.id(), gwanje_pid);
    assert_eq!(get(&api, "/metrics"), "", "the forwarder is gone");
}
