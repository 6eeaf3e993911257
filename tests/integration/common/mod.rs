//! Shared test helpers: a loopback target fleet (HTTP, HTTPS, misbehaving
//! TCP servers, DNS), generated certificates, config writers and a small
//! HTTP client. Everything listens on 127.0.0.1 and stops when dropped.
#![allow(clippy::disallowed_methods, reason = "tests measure real elapsed time")]

pub mod browser;
pub mod certs;
pub mod client;
pub mod companions;
pub mod daemon;
pub mod dashboards;
pub mod dns;
pub mod expo;
pub mod failover;
pub mod fleet;
pub mod plan;
pub mod raw;
pub mod record;
pub mod vantages;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// A server task on loopback, stopped when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Wraps a running server task.
    pub fn new(addr: SocketAddr, task: JoinHandle<()>) -> Self {
        Server { addr, task }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `https://localhost:PORT{path}` (the certificates name localhost).
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether tests needing a capability (root, promtool…) must fail rather than skip.
pub fn required(what: &str) -> bool {
    let required = std::env::var("GWANJE_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
    if !required {
        eprintln!(
            "skipping: {what} is not available (set GWANJE_REQUIRE_TOOLS=1 to make this an error)"
        );
    }
    required
}

/// Whether we run as root (needed for raw ICMP and namespaces).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The address a process we started bound on port 0 of loopback, read from
/// its log (`listen=…` for gwanje, `"Listening on" address=…` for the
/// Prometheus tools), so no test races another for a port it did not bind.
pub fn bound_address(child: &mut Child, log: &Path) -> SocketAddr {
    let re = regex::Regex::new(r#"(?:listen|address)\W{1,3}(127\.\d+\.\d+\.\d+:[1-9]\d*)"#)
        .expect("regex");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(c) = re.captures(&text) {
            return c[1].parse().expect("address");
        }
        if let Some(status) = child.try_wait().expect("child status") {
            panic!("{log:?}: exited with {status} before listening:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "{log:?}: no listen address within 30 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every record of the journal in `dir`, decoded (the segments are
/// compressed), one JSON line each: what tests search for what was kept.
pub fn journal_text(dir: &Path) -> String {
    let mut out = String::new();
    for seg in gwanje::journal::segments(dir).expect("a journal folder") {
        let (records, _) = gwanje::journal::read_segment(&seg.path).expect("a readable segment");
        for r in records {
            let line = match &r {
                gwanje::journal::Record::EffectV1 { .. } => format!("{r:?}"),
                _ => serde_json::to_string(&r).expect("records encode"),
            };
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Runs `gwanje report` on the journal in `journal` and returns the folder
/// it wrote `report.md` and `report.html` into (deleted when dropped).
pub fn report(journal: &Path) -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("temp dir");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .args(["report", "--journal"])
        .arg(journal)
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("gwanje runs");
    assert!(
        made.status.success(),
        "gwanje report: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    out
}
