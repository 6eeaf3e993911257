//! Two replicas of the real gwanje binary on a 3-member etcd, in the
//! failover testbed's client namespace, each with its co-located actuator
//! steering the same kernel route (own policy-routing tables). The cluster
//! tests and the takeover benchmark build on it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::etcd::Etcd;
use super::failover_config::replica_setup;
use super::gwanje::Gwanje;
use super::{Lab, Setup, TestbedError};

/// The cluster's name.
pub const CLUSTER: &str = "capital";
/// The replicas' lease TTL.
pub const TTL: Duration = Duration::from_secs(3);

/// The replicas and their etcd. Fields drop in order: replica b, etcd,
/// then the lab (replica a, the services, the namespaces).
pub struct Replicas {
    /// Replica b (replica a is `lab.gwanje`).
    pub b: Gwanje,
    /// The etcd members.
    pub etcd: Etcd,
    /// The testbed with replica a.
    pub lab: Lab,
    exe: PathBuf,
    dir: PathBuf,
    setups: [Setup; 2],
}

impl Replicas {
    /// Starts etcd and replica a (reaching etcd on `a_endpoints`) until it
    /// leads, then replica b until it follows with every path up; files
    /// and logs go to `dir`. Each replica has its co-located actuator.
    pub fn start(exe: &Path, dir: &Path, a_endpoints: &[String]) -> Result<Replicas, TestbedError> {
        Self::start_with(exe, dir, a_endpoints, true)
    }

    /// Like [`Replicas::start`]; with `actuate` false the replicas leave
    /// routes to `gwanje actuate` ([`Replicas::start_actuator`]).
    pub fn start_with(
        exe: &Path,
        dir: &Path,
        a_endpoints: &[String],
        actuate: bool,
    ) -> Result<Replicas, TestbedError> {
        let setups = [
            replica_setup("a", 0, 9470, CLUSTER, a_endpoints, actuate),
            replica_setup("b", 1, 9471, CLUSTER, &Etcd::endpoints(), actuate),
        ];
        let mut etcd = None;
        let lab = Lab::start(exe, dir, &setups[0], |bed| {
            etcd = Some(Etcd::start(&bed.client, dir)?);
            Ok(())
        })?;
        let etcd = etcd.expect("prepare ran");
        wait("replica a leads", Duration::from_secs(15), || {
            role(&lab.gwanje, "leader")
        })?;
        write(dir, &setups[1])?;
        let b = start(exe, &lab, dir, &setups[1], "b")?;
        let r = Replicas {
            b,
            etcd,
            lab,
            exe: exe.to_path_buf(),
            dir: dir.to_path_buf(),
            setups,
        };
        r.wait_follows(1)?;
        Ok(r)
    }

    /// Replica a.
    pub fn a(&self) -> &Gwanje {
        &self.lab.gwanje
    }

    /// Replica `i` (0: a, 1: b).
    pub fn replica(&self, i: usize) -> &Gwanje {
        if i == 0 { &self.lab.gwanje } else { &self.b }
    }

    /// Starts replica `i` again (after it was killed), its log appended.
    pub fn restart(&mut self, i: usize) -> Result<(), TestbedError> {
        let name = if i == 0 { "a" } else { "b" };
        let g = start(&self.exe, &self.lab, &self.dir, &self.setups[i], name)?;
        if i == 0 {
            self.lab.gwanje = g;
        } else {
            self.b = g;
        }
        Ok(())
    }

    /// Waits until replica `i` follows and sees every path up.
    pub fn wait_follows(&self, i: usize) -> Result<Duration, TestbedError> {
        let g = self.replica(i);
        wait("the replica follows", Duration::from_secs(15), || {
            role(g, "follower")
                && g.status()["groups"][0]["paths"]
                    .as_array()
                    .is_some_and(|p| p.iter().all(|p| p["state"] == "up"))
        })
    }

    /// The order in etcd for the testbed's group, if any.
    pub fn desired(&self) -> Option<serde_json::Value> {
        let key = format!("/gwanje/{CLUSTER}/desired/services");
        let out = self
            .etcd
            .etcdctl(&["get", "--print-value-only", &key])
            .ok()?;
        serde_json::from_str(out.trim()).ok()
    }

    /// Starts `gwanje actuate` (replica c's configuration) beside the
    /// replicas: it applies their orders without probing or campaigning, to
    /// the kernel's route, or with `hook` through a hook that appends
    /// `<to> <fence>` to [`Replicas::hook_out`].
    pub fn start_actuator(&self, hook: bool) -> Result<Gwanje, TestbedError> {
        let mut setup = replica_setup("c", 2, 9472, CLUSTER, &Etcd::endpoints(), true);
        let exec = format!(
            "    paths: [primary, standby]\n    action: exec\n    exec: {{command: [sh, -c, 'echo \"$GWANJE_TO $GWANJE_FENCE\" >> {}'], timeout: 5s}}\n",
            self.hook_out().display()
        );
        if hook {
            setup.files[0].1 = setup.files[0]
                .1
                .replace("    paths: [primary, standby]\n", &exec);
        }
        write(&self.dir, &setup)?;
        Gwanje::start_as(
            "actuate",
            &self.exe,
            &self.lab.bed.client,
            &self.dir.join(&setup.config),
            setup.port,
            self.dir.join("gwanje-c.log"),
        )
    }

    /// Where the actuator's hook writes what it was ordered.
    pub fn hook_out(&self) -> PathBuf {
        self.dir.join("hook.out")
    }

    /// The folder of files, logs and journals.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn write(dir: &Path, setup: &Setup) -> Result<(), TestbedError> {
    for (rel, text) in &setup.files {
        let path = dir.join(rel);
        crate::config::write_secret_file(&path, text)
            .map_err(|e| TestbedError::io("write", path.display().to_string(), e))?;
    }
    Ok(())
}

fn start(
    exe: &Path,
    lab: &Lab,
    dir: &Path,
    setup: &Setup,
    name: &str,
) -> Result<Gwanje, TestbedError> {
    Gwanje::start(
        exe,
        &lab.bed.client,
        &dir.join(&setup.config),
        setup.port,
        dir.join(format!("gwanje-{name}.log")),
    )
}

/// Whether `g` reports `role` (`leader`, `follower`, `lost`).
pub fn role(g: &Gwanje, role: &str) -> bool {
    g.metric_sum(&format!("gwanje_cluster_role{{role=\"{role}\"}}")) == 1.0
}

/// Polls `done` every 20 ms for at most `limit`; how long it took.
pub fn wait(
    what: &str,
    limit: Duration,
    done: impl Fn() -> bool,
) -> Result<Duration, TestbedError> {
    let start = Instant::now();
    while !done() {
        if super::interrupted() {
            return Err(TestbedError::Interrupted);
        }
        if start.elapsed() >= limit {
            return Err(TestbedError::Timeout {
                what: what.into(),
                limit,
                last: "not yet".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(start.elapsed())
}

/// Prometheus (Debian's) in the replicas' namespace, scraping both every
/// second as job `gwanje`; ended by its PID when dropped.
pub struct Prometheus {
    child: std::process::Child,
    ns: super::Netns,
}

/// Where the namespace's Prometheus listens (its own loopback).
const PROMETHEUS_PORT: u16 = 9090;

impl Prometheus {
    /// Starts it with its files under `dir`.
    pub fn start(r: &Replicas) -> Result<Prometheus, TestbedError> {
        let dir = r.dir.join("prometheus");
        std::fs::create_dir_all(&dir)
            .map_err(|e| TestbedError::io("create", dir.display().to_string(), e))?;
        let config = dir.join("prometheus.yml");
        let text = "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: gwanje\n    static_configs: [{targets: ['127.0.0.1:9470', '127.0.0.1:9471']}]\n";
        std::fs::write(&config, text)
            .map_err(|e| TestbedError::io("write", config.display().to_string(), e))?;
        let log = std::fs::File::create(dir.join("prometheus.log"))
            .map_err(|e| TestbedError::io("create log", dir.display().to_string(), e))?;
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &r.lab.bed.client.0, "prometheus"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log);
        super::gwanje::tie_to_parent(&mut cmd);
        let child = cmd.spawn().map_err(|source| TestbedError::Spawn {
            command: "ip netns exec prometheus".into(),
            source,
        })?;
        Ok(Prometheus {
            child,
            ns: r.lab.bed.client.clone(),
        })
    }

    /// An instant query's JSON answer (`Null` when it does not answer).
    pub fn query(&self, expr: &str) -> serde_json::Value {
        let q: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
        let (_, body) = super::gwanje::http(
            &self.ns,
            PROMETHEUS_PORT,
            "GET",
            &format!("/api/v1/query?query={q}"),
            "",
            None,
        );
        serde_json::from_str(&body).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
