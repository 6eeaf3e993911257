//! A network testbed in namespaces the test creates itself:
//!
//! ```text
//!              198.18.1.0/24          198.18.3.0/24
//!   client ──ca──────────ac── ra ──as──────────sa──┐
//!     │                                            server (198.18.100.1 on lo)
//!     └────cb──────────bc── rb ──bs──────────sb──┘
//!              198.18.2.0/24          198.18.4.0/24
//! ```
//!
//! Routing is symmetric: the server returns traffic for 198.18.1.0/24 via
//! router A and for 198.18.2.0/24 via router B. The client starts with
//! 198.18.100.0/24 via router A. Everything is deleted by name when the
//! testbed is dropped; namespaces left by a killed earlier run (whose PID is
//! gone) are deleted when a new testbed starts.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The service address in the server namespace.
pub const SERVICE: &str = "198.18.100.1";
/// The prefix gwanje steers.
pub const SERVICE_PREFIX: &str = "198.18.100.0/24";
/// Router A's address on the client side.
pub const GW_A: &str = "198.18.1.1";
/// Router B's address on the client side.
pub const GW_B: &str = "198.18.2.1";

const PREFIX: &str = "gwj";

/// Runs `ip` (or another command) and panics with its stderr on failure.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this machine lets us build the testbed (root, iproute2, nft).
pub fn available() -> bool {
    let ok = super::is_root()
        && Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
        && Command::new("nft")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        let required = std::env::var("GWANJE_REQUIRE_NETNS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "GWANJE_REQUIRE_NETNS=1 but root, iproute2 or nftables is missing"
        );
        eprintln!("skipping: network namespace tests need root, iproute2 and nftables");
    }
    ok
}

/// One namespace, by name.
#[derive(Clone)]
pub struct Ns(pub String);

impl Ns {
    /// Runs `ip -n NS args...`.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["ip", "-n", &self.0];
        full.extend_from_slice(args);
        sh(&full);
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.0];
        full.extend_from_slice(args);
        sh(&full);
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key_value: &str) {
        self.exec(&["sysctl", "-q", "-w", key_value]);
    }

    /// Runs `f` on a thread inside the namespace and returns its result.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f).join().expect("namespace thread")
    }

    /// Starts `f` on a thread inside the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/var/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on this thread only, with an open namespace fd.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
    }

    /// The gateway of the main-table route to `prefix`, if any.
    pub fn route_via(&self, prefix: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["-n", &self.0, "route", "show", prefix])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        words
            .find(|w| *w == "via")
            .and_then(|_| words.next())
            .map(str::to_string)
    }
}

/// The four namespaces and their links.
pub struct Testbed {
    /// Where gwanje runs.
    pub client: Ns,
    /// The primary router.
    pub ra: Ns,
    /// The standby router.
    pub rb: Ns,
    /// The service host.
    pub server: Ns,
}

fn stale_cleanup() {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: i32 = rest
            .split('-')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        // SAFETY: kill with signal 0 only checks whether the PID exists.
        let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl Testbed {
    /// Builds the topology.
    pub fn new() -> Self {
        stale_cleanup();
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let ns = |role: &str| Ns(format!("{id}-{role}"));
        let bed = Testbed {
            client: ns("cl"),
            ra: ns("ra"),
            rb: ns("rb"),
            server: ns("sv"),
        };
        for n in [&bed.client, &bed.ra, &bed.rb, &bed.server] {
            sh(&["ip", "netns", "add", &n.0]);
            n.ip(&["link", "set", "lo", "up"]);
            n.sysctl("net.ipv4.conf.all.rp_filter=0");
            n.sysctl("net.ipv4.conf.default.rp_filter=0");
        }
        let link = |a: &Ns, an: &str, aip: &str, b: &Ns, bn: &str, bip: &str| {
            sh(&[
                "ip", "link", "add", "name", an, "netns", &a.0, "type", "veth", "peer", "name", bn,
                "netns", &b.0,
            ]);
            a.ip(&["addr", "add", aip, "dev", an]);
            b.ip(&["addr", "add", bip, "dev", bn]);
            a.ip(&["link", "set", an, "up"]);
            b.ip(&["link", "set", bn, "up"]);
        };
        link(
            &bed.client,
            "ca",
            "198.18.1.2/24",
            &bed.ra,
            "ac",
            "198.18.1.1/24",
        );
        link(
            &bed.client,
            "cb",
            "198.18.2.2/24",
            &bed.rb,
            "bc",
            "198.18.2.1/24",
        );
        link(
            &bed.ra,
            "as",
            "198.18.3.1/24",
            &bed.server,
            "sa",
            "198.18.3.2/24",
        );
        link(
            &bed.rb,
            "bs",
            "198.18.4.1/24",
            &bed.server,
            "sb",
            "198.18.4.2/24",
        );
        bed.server
            .ip(&["addr", "add", &format!("{SERVICE}/32"), "dev", "lo"]);
        bed.server
            .ip(&["route", "add", "198.18.1.0/24", "via", "198.18.3.1"]);
        bed.server
            .ip(&["route", "add", "198.18.2.0/24", "via", "198.18.4.1"]);
        for (r, next) in [(&bed.ra, "198.18.3.2"), (&bed.rb, "198.18.4.2")] {
            r.sysctl("net.ipv4.ip_forward=1");
            r.ip(&["route", "add", SERVICE_PREFIX, "via", next]);
        }
        bed.client
            .ip(&["route", "add", SERVICE_PREFIX, "via", GW_A]);
        bed
    }

    /// Adds an nftables rule to router `r`'s forward chain (e.g. `numgen random mod 100 < 10 drop`).
    pub fn nft_forward(r: &Ns, rule: &str) {
        r.exec(&["nft", "add", "table", "inet", "gwj"]);
        r.exec(&["nft", "add chain inet gwj forward_filter { type filter hook forward priority 0 ; policy accept ; }"]);
        r.exec(&["nft", &format!("add rule inet gwj forward_filter {rule}")]);
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for n in [&self.client, &self.ra, &self.rb, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", &n.0]).status();
        }
    }
}

/// A UDP echo service and an HTTP service on the server's service address.
pub struct Services {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Services {
    /// Starts both in `server` (UDP echo on port 7, HTTP on port 80).
    pub fn start(server: &Ns) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s1 = stop.clone();
        let echo = server.spawn(move || {
            let sock = UdpSocket::bind((SERVICE, 7)).expect("bind echo");
            sock.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            let mut buf = [0u8; 2048];
            while !s1.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..n], peer);
                }
            }
        });
        let s2 = stop.clone();
        let http = server.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind((SERVICE, 80))
                    .await
                    .expect("bind http");
                let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
                let shutdown = async move {
                    while !s2.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await;
            });
        });
        Services {
            stop,
            threads: vec![echo, http],
        }
    }

    /// Stops both (the HTTP port then refuses connections).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Measures the service as a user sees it: a UDP request every 10 ms from
/// the client, and the longest time without a reply.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Instant>>>,
}

impl Traffic {
    /// Starts sending `payload`-byte datagrams from `client` (at most
    /// `limit`, then it stops by itself).
    pub fn start(client: &Ns, limit: Duration, payload: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = client.spawn(move || {
            let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
            sock.set_read_timeout(Some(Duration::from_millis(2)))
                .expect("timeout");
            let target: SocketAddr = format!("{SERVICE}:7").parse().expect("addr");
            let start = Instant::now();
            let mut replies = Vec::new();
            let mut next_send = start;
            let mut buf = [0u8; 2048];
            let data = vec![0x47u8; payload];
            while !s.load(Ordering::Relaxed) && start.elapsed() < limit {
                if Instant::now() >= next_send {
                    let _ = sock.send_to(&data, target);
                    next_send += Duration::from_millis(10);
                }
                if sock.recv_from(&mut buf).is_ok() {
                    replies.push(Instant::now());
                }
            }
            replies
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns the reply times.
    pub fn finish(mut self) -> Vec<Instant> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("traffic thread")
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The longest time without a reply after `from`, and whether replies came at the end.
pub fn longest_gap(replies: &[Instant], from: Instant, until: Instant) -> Duration {
    let mut last = from;
    let mut gap = Duration::ZERO;
    for t in replies.iter().filter(|t| **t >= from && **t <= until) {
        gap = gap.max(t.duration_since(last));
        last = *t;
    }
    gap.max(until.saturating_duration_since(last))
}
