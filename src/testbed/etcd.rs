//! A 3-member etcd cluster (Debian's `etcd-server`) on the loopback of a
//! namespace this process created: its fixed ports are free there, and
//! nothing outside can reach it. Members are ended by PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestbedError;
use super::gwanje::tie_to_parent;
use super::netns::Netns;

/// Members of the cluster.
pub const MEMBERS: usize = 3;

fn client_url(i: usize) -> String {
    format!("http://127.0.0.1:{}", 23791 + i)
}

/// The same members' client URLs on a second loopback address, which a
/// test can cut off alone (one replica's view of etcd).
fn second_url(i: usize) -> String {
    format!("http://127.0.0.2:{}", 23791 + i)
}

fn peer_url(i: usize) -> String {
    format!("http://127.0.0.1:{}", 23801 + i)
}

/// The running members.
pub struct Etcd {
    ns: Netns,
    dir: PathBuf,
    members: Vec<Option<Child>>,
}

impl Etcd {
    /// Whether `etcd` and `etcdctl` are installed.
    pub fn installed() -> bool {
        [("etcd", "--version"), ("etcdctl", "version")]
            .iter()
            .all(|(c, arg)| {
                Command::new(c)
                    .arg(arg)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
    }

    /// Starts the members in `ns` with their data under `dir`, and waits
    /// (at most 20 s) until the cluster answers.
    pub fn start(ns: &Netns, dir: &Path) -> Result<Etcd, TestbedError> {
        let mut etcd = Etcd {
            ns: ns.clone(),
            dir: dir.to_path_buf(),
            members: (0..MEMBERS).map(|_| None).collect(),
        };
        for i in 0..MEMBERS {
            etcd.start_member(i)?;
        }
        etcd.wait_healthy(Duration::from_secs(20))?;
        Ok(etcd)
    }

    /// The client URLs, for gwanje's `cluster.etcd.endpoints`.
    pub fn endpoints() -> Vec<String> {
        (0..MEMBERS).map(client_url).collect()
    }

    /// The client URLs on 127.0.0.2 (see [`Etcd::cut_second`]).
    pub fn second_endpoints() -> Vec<String> {
        (0..MEMBERS).map(second_url).collect()
    }

    /// Drops every packet to the members' 127.0.0.2 ports in the
    /// namespace: a replica configured with [`Etcd::second_endpoints`] is
    /// cut off from etcd, and nothing else is.
    pub fn cut_second(&self) -> Result<(), TestbedError> {
        self.ns.nft_rule(
            "etcdcut",
            "output",
            "ip daddr 127.0.0.2 tcp dport 23791-23793 drop",
        )
    }

    /// Undoes [`Etcd::cut_second`].
    pub fn mend_second(&self) -> Result<(), TestbedError> {
        self.ns.nft_drop_table("etcdcut")
    }

    /// (Re)starts member `i`.
    pub fn start_member(&mut self, i: usize) -> Result<(), TestbedError> {
        let cluster: Vec<String> = (0..MEMBERS)
            .map(|j| format!("m{j}={}", peer_url(j)))
            .collect();
        let log_path = self.dir.join(format!("etcd-m{i}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| TestbedError::io("create log", log_path.display().to_string(), e))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns.0, "etcd"])
            .arg(format!("--name=m{i}"))
            .arg(format!(
                "--data-dir={}",
                self.dir.join(format!("m{i}")).display()
            ))
            .arg(format!(
                "--listen-client-urls={},{}",
                client_url(i),
                second_url(i)
            ))
            .arg(format!("--advertise-client-urls={}", client_url(i)))
            .arg(format!("--listen-peer-urls={}", peer_url(i)))
            .arg(format!("--initial-advertise-peer-urls={}", peer_url(i)))
            .arg(format!("--initial-cluster={}", cluster.join(",")))
            .arg("--initial-cluster-state=new")
            .arg("--initial-cluster-token=gwanje-test")
            .args(["--heartbeat-interval=100", "--election-timeout=1000"])
            .args(["--logger=zap", "--log-level=warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        tie_to_parent(&mut cmd);
        let child = cmd.spawn().map_err(|source| TestbedError::Spawn {
            command: format!("ip netns exec {} etcd", self.ns.0),
            source,
        })?;
        self.members[i] = Some(child);
        Ok(())
    }

    /// Stops member `i` (SIGKILL by its PID).
    pub fn stop_member(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs `etcdctl` (API v3) against the cluster with `args`; its stdout.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String, TestbedError> {
        let endpoints = format!("--endpoints={}", Self::endpoints().join(","));
        let mut full = vec![
            "env",
            "ETCDCTL_API=3",
            "etcdctl",
            &endpoints,
            "--command-timeout=3s",
        ];
        full.extend_from_slice(args);
        self.ns.exec(&full)
    }

    /// Waits until every member answers its health check.
    pub fn wait_healthy(&self, limit: Duration) -> Result<(), TestbedError> {
        let start = Instant::now();
        loop {
            let last = match self.etcdctl(&["endpoint", "health"]) {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if start.elapsed() >= limit || super::interrupted() {
                return Err(TestbedError::Timeout {
                    what: "etcd to answer".into(),
                    limit,
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..MEMBERS {
            self.stop_member(i);
        }
    }
}
