//! The engine on paused time with in-memory fakes only (no socket is
//! opened): probe outcomes come from a modelled world, the route table and
//! the alert sink record what they are asked, and the clock follows tokio's
//! paused clock. Whole failovers run in virtual seconds, in milliseconds.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use gwanje::actuate::{ActuateError, RouteTable};
use gwanje::alert::{AlertSink, AlertmanagerAlert, Receiver};
use gwanje::clock::Clock;
use gwanje::core::{FailureKind, GroupName, Kernel, PathName, Subject, SwitchReason, Timestamp};
use gwanje::engine::{Adapters, Command, CommandKind, Driver, Shared};
use gwanje::plan::{GroupSpec, Job, PathSpec, Plan};
use gwanje::probe::{Details, Executor, Failure, Probe, ProbeResult};
use tokio::sync::{mpsc, oneshot, watch};

use crate::common::plan::ConfigDir;

/// Which subjects fail now; everything else succeeds.
#[derive(Clone, Default)]
struct World(Arc<Mutex<BTreeMap<String, bool>>>);

impl World {
    fn set(&self, subject: &str, ok: bool) {
        self.0.lock().unwrap().insert(subject.to_string(), ok);
    }
}

struct Modelled {
    subject: String,
    world: World,
}

impl Probe for Modelled {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        let ok = self
            .world
            .0
            .lock()
            .unwrap()
            .get(&self.subject)
            .copied()
            .unwrap_or(true);
        Box::pin(async move {
            ProbeResult {
                duration: Duration::from_millis(1),
                failure: (!ok).then(|| Failure::new(FailureKind::Timeout, "modelled")),
                details: Details::None,
            }
        })
    }
}

impl Executor for World {
    fn prepare(&self, job: &Arc<Job>) -> Box<dyn Probe> {
        Box::new(Modelled {
            subject: job.subject.to_string(),
            world: self.clone(),
        })
    }
}

/// The core's simulated kernel (the one the virtual-time driver's actuator
/// changes), behind the engine's route-table interface, on virtual time.
#[derive(Clone)]
struct Routes {
    kernel: Arc<Mutex<Kernel>>,
    epoch: tokio::time::Instant,
}

impl Routes {
    fn new(epoch: tokio::time::Instant) -> Self {
        Routes {
            kernel: Default::default(),
            epoch,
        }
    }

    fn now(&self) -> Timestamp {
        Virtual(self.epoch).now()
    }
}

impl RouteTable for Routes {
    fn change<'a>(
        &'a self,
        group: &'a GroupSpec,
        _from: Option<&'a PathSpec>,
        to: &'a PathSpec,
        _reason: &'a SwitchReason,
        _fence: Option<u64>,
    ) -> BoxFuture<'a, Result<(), ActuateError>> {
        let made = self
            .kernel
            .lock()
            .unwrap()
            .change(self.now(), group.name(), &to.name);
        assert!(made.is_ok(), "the test kernel accepts every change");
        Box::pin(async { Ok(()) })
    }

    fn observe<'a>(
        &'a self,
        group: &'a GroupSpec,
        _paths: &'a [PathSpec],
    ) -> BoxFuture<'a, Result<Option<PathName>, ActuateError>> {
        let current = self.kernel.lock().unwrap().route(group.name()).cloned();
        Box::pin(async move { Ok(current) })
    }
}

/// Every alert batch the engine sends.
#[derive(Clone, Default)]
struct Pager(Arc<Mutex<Vec<AlertmanagerAlert>>>);

impl AlertSink for Pager {
    fn send(&self, alerts: Vec<AlertmanagerAlert>) {
        self.0.lock().unwrap().extend(alerts);
    }

    fn reconfigure(&mut self, _receivers: &[Receiver]) {}
}

impl Pager {
    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.labels["alertname"].clone())
            .collect()
    }
}

/// An examiner for a dead link: nothing answers any size or TTL.
#[derive(Clone, Default)]
struct Silence(Arc<Mutex<u32>>);

impl gwanje::examine::Examiner for Silence {
    fn examine(
        &self,
        destination: std::net::IpAddr,
        _gateway: std::net::IpAddr,
        _source: gwanje::plan::Source,
        _trace: bool,
    ) -> BoxFuture<'static, gwanje::core::Examination> {
        *self.0.lock().unwrap() += 1;
        Box::pin(async move {
            gwanje::core::Examination {
                destination: destination.to_string(),
                ladder: vec![gwanje::core::Rung {
                    payload: 64,
                    sent: 2,
                    received: 0,
                    frag_needed: None,
                    refused_by: None,
                }],
                hops: vec![gwanje::core::Hop {
                    ttl: 1,
                    small: None,
                    large: None,
                }],
                packets: 4,
                error: None,
            }
        })
    }
}

/// Unix-ms time that follows tokio's (paused) clock.
struct Virtual(tokio::time::Instant);

impl Clock for Virtual {
    fn now(&self) -> Timestamp {
        Timestamp(1_764_000_000_000 + self.0.elapsed().as_millis() as u64)
    }
}

struct Rig {
    engine: tokio::task::JoinHandle<()>,
    world: World,
    routes: Routes,
    pager: Pager,
    examiner: Silence,
    commands: mpsc::Sender<Command>,
    _plans: watch::Sender<Arc<Plan>>,
    _dir: ConfigDir,
}

const PATHS: &str = "paths:\n  - {name: a, gateway: 198.18.0.1, interface: lo, router_check: {interval: 100ms, timeout: 50ms, health: {fall: 3, rise: 3}}}\n  - {name: b, gateway: 198.18.0.2, interface: lo, router_check: {interval: 100ms, timeout: 50ms, health: {fall: 3, rise: 3}}}\n\
failover_groups:\n  - {name: local, routes: [198.18.200.0/24], paths: [a, b], checks: [portal/home, portal/ping], action: route, hold_down: 1s, min_dwell: 1s}\n";

fn start(kernel: Option<&str>) -> Rig {
    start_with(kernel, "", None)
}

/// Starts the engine on the fakes; `group_extra` adds keys to the group,
/// `journal` records what the engine feeds and decides.
fn start_with(
    kernel: Option<&str>,
    group_extra: &str,
    journal: Option<gwanje::journal::Journal>,
) -> Rig {
    let paths = if group_extra.is_empty() {
        PATHS.to_string()
    } else {
        PATHS.replace("min_dwell: 1s}", &format!("min_dwell: 1s, {group_extra}}}"))
    };
    let dir = ConfigDir::new(
        &format!("alerting: {{resend_interval: 1s}}\n{paths}"),
        &[(
            "portal",
            "service: portal\ninterval: 100ms\ntimeout: 50ms\nhealth: {fall: 3, rise: 3}\ntargets:\n  - {name: home, http: {url: 'http://198.18.1.1/'}}\n  - {name: ping, icmp: {host: 198.18.1.1}}\n",
        )],
    );
    let plan = Arc::new(dir.load());
    let world = World::default();
    let epoch = tokio::time::Instant::now();
    let routes = Routes::new(epoch);
    routes
        .kernel
        .lock()
        .unwrap()
        .set(&GroupName::new("local"), kernel.map(PathName::new));
    let pager = Pager::default();
    let examiner = Silence::default();
    let (plans, plans_rx) = watch::channel(plan);
    let (commands, commands_rx) = mpsc::channel(8);
    let shared = Shared {
        metrics: gwanje::metrics::Metrics::new(),
        ready: Arc::new(AtomicBool::new(false)),
        status: Default::default(),
        observations: Default::default(),
    };
    let adapters = Adapters {
        executor: Arc::new(world.clone()),
        routes: Arc::new(routes.clone()),
        alerts: Box::new(pager.clone()),
        clock: Arc::new(Virtual(epoch)),
        listen: None,
        cluster: None,
        examiner: Arc::new(examiner.clone()),
    };
    let engine = tokio::spawn(gwanje::engine::run_with(
        plans_rx,
        adapters,
        shared,
        commands_rx,
        Driver::new(gwanje::core::Core::new(), journal),
    ));
    Rig {
        engine,
        world,
        routes,
        pager,
        examiner,
        commands,
        _plans: plans,
        _dir: dir,
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.engine.abort();
    }
}

impl Rig {
    fn changes(&self) -> Vec<String> {
        self.routes
            .kernel
            .lock()
            .unwrap()
            .changes
            .iter()
            .map(|(_, g, to, _)| format!("{g}->{to}"))
            .collect()
    }

    /// Router `path` and every check through it fail (or recover).
    fn router(&self, path: &str, ok: bool) {
        self.world
            .set(&Subject::Router(PathName::new(path)).to_string(), ok);
        self.world.set(&format!("portal/home via {path}"), ok);
        self.world.set(&format!("portal/ping via {path}"), ok);
    }
}

#[tokio::test(start_paused = true)]
async fn a_dead_router_moves_the_route_within_the_detection_time_and_pages() {
    let rig = start(Some("a"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        rig.changes().is_empty(),
        "the kernel's route is adopted, not replaced"
    );

    let broken = rig.routes.now();
    rig.router("a", false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rig.changes(), ["local->b"]);
    let moved = rig.routes.kernel.lock().unwrap().changes[0].0;
    // fall 3 at 100 ms: three failed rounds, and the decision at the third.
    let took = Duration::from_millis(moved.since(broken));
    assert!(
        took <= Duration::from_millis(400),
        "moved {took:?} after the failure"
    );
    let names = rig.pager.names();
    assert!(names.contains(&"FailoverExecuted".to_string()), "{names:?}");
    assert!(names.contains(&"PathDown".to_string()), "{names:?}");
    // The path was examined once, and the page says which box and why.
    assert_eq!(*rig.examiner.0.lock().unwrap(), 1);
    let described = rig.pager.0.lock().unwrap().iter().rev().find_map(|a| {
        (a.labels["alertname"] == "PathDown").then(|| a.annotations["description"].clone())
    });
    let described = described.unwrap();
    assert!(
        described.contains("Diagnosis (router_or_link): path a's router or the link to it")
            && described.contains("no hop answers"),
        "{described}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_down_everywhere_pages_without_moving_and_an_ack_stops_escalation() {
    let rig = start(Some("a"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    rig.world.set("portal/home via a", false);
    rig.world.set("portal/home via b", false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        rig.changes().is_empty(),
        "a service failure is not a path failure"
    );
    let sent = rig.pager.0.lock().unwrap().clone();
    let down = sent
        .iter()
        .find(|a| a.labels["alertname"] == "ServiceDown")
        .expect("ServiceDown sent");
    // Acknowledge through the command channel, as the API does.
    let alerts_id = down.labels["id"].clone();
    let (reply, answer) = oneshot::channel();
    rig.commands
        .send(Command {
            group: String::new(),
            by: "kim".into(),
            kind: CommandKind::Ack { id: alerts_id },
            reply,
        })
        .await
        .unwrap();
    answer.await.unwrap().expect("acknowledged");
    rig.pager.0.lock().unwrap().clear();
    // Past escalate_after (10 min by default): no escalation for an acknowledged alert.
    tokio::time::sleep(Duration::from_secs(11 * 60)).await;
    let escalated = rig
        .pager
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|a| a.labels["alertname"] == "ServiceDown" && a.labels.contains_key("escalation"));
    assert!(!escalated);
    assert!(rig.changes().is_empty());
}

/// A fresh journal in a temporary folder.
fn journal(
    fsync: gwanje::plan::Fsync,
) -> (
    tempfile::TempDir,
    gwanje::plan::JournalSpec,
    gwanje::journal::Journal,
) {
    let dir = tempfile::tempdir().unwrap();
    let spec = gwanje::plan::JournalSpec {
        dir: dir.path().join("journal"),
        segment_bytes: 1 << 20,
        segment_age: Duration::from_secs(3600),
        retain_bytes: 1 << 30,
        retain_age: Duration::from_secs(86_400),
        fsync,
        queue: 1 << 16,
    };
    let journal = gwanje::journal::Journal::open(&spec, &gwanje::core::Core::new()).unwrap();
    (dir, spec, journal)
}

#[tokio::test(start_paused = true)]
async fn a_freeze_and_its_flap_history_survive_a_restart_through_the_journal() {
    let (_dir, spec, journal) = journal(gwanje::plan::Fsync::Never);
    let rig = start_with(
        Some("a"),
        "flap_guard: {max_switches: 2, window: 10m}, failback: {mode: auto, after: 2s}",
        Some(journal),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Router a fails and recovers until the flap guard freezes the group.
    for _ in 0..4 {
        rig.router("a", false);
        tokio::time::sleep(Duration::from_secs(2)).await;
        rig.router("a", true);
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    assert!(
        rig.pager.names().contains(&"GroupFrozen".to_string()),
        "{:?}",
        rig.pager.names()
    );
    // Stop the engine (it owns the journal) and restore from what it wrote.
    drop(rig);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut restored = None;
    for _ in 0..50 {
        // The writer thread flushes on its own clock once the engine is gone.
        std::thread::sleep(Duration::from_millis(20));
        let (core, _) = gwanje::journal::restore(&spec.dir).unwrap();
        if core
            .as_ref()
            .is_some_and(|c| c.groups().values().any(|g| g.frozen_until.is_some()))
        {
            restored = core;
            break;
        }
    }
    let core = restored.expect("the freeze is in the journal");
    let g = &core.groups()[&gwanje::core::GroupName::new("local")];
    assert!(g.switches.len() >= 2, "flap history kept: {:?}", g.switches);
    assert!(
        !g.adopted,
        "the kernel's route is read again after a restart"
    );
}

/// Runs `gwanje` with `args`; returns (exit code, stdout, stderr).
fn gwanje_cli(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(start_paused = true)]
async fn what_if_a_flapping_primary_with_a_longer_failback_switches_less() {
    let (dir, spec, journal) = journal(gwanje::plan::Fsync::Always);
    let rig = start_with(
        Some("a"),
        // Without dampening, so what changes is failback.after alone.
        "flap_guard: {max_switches: 50, window: 10m}, failback: {mode: auto, after: 2s, dampening: {penalty: 0}}",
        Some(journal),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The primary flaps: 1.5 s down, 5 s up, six times.
    for _ in 0..6 {
        rig.router("a", false);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        rig.router("a", true);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let recorded = rig.changes().len();
    assert!(recorded >= 6, "the flapping run switched {recorded} times");
    // The same history with failback after 30 s: one failover, no failback.
    let config = rig._dir.config.clone();
    let text = std::fs::read_to_string(&config).unwrap();
    let strict = dir.path().join("strict.yaml");
    std::fs::write(&strict, text.replace("after: 2s", "after: 30s")).unwrap();
    std::fs::create_dir_all(dir.path().join("probes")).unwrap();
    for e in std::fs::read_dir(config.parent().unwrap().join("probes")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join("probes").join(e.file_name())).unwrap();
    }
    drop(rig);
    // The writer thread flushes on its own clock once the engine is gone.
    std::thread::sleep(Duration::from_millis(300));
    let j = spec.dir.as_os_str();
    let (code, out, err) = gwanje_cli(&[
        "what-if".as_ref(),
        "--journal".as_ref(),
        j,
        "--config".as_ref(),
        strict.as_os_str(),
    ]);
    eprintln!("{out}{err}");
    assert_eq!(code, 0, "{out}{err}");
    // The form before `what-if` was a command of its own still works, with a note.
    let (code, old, note) = gwanje_cli(&[
        "replay".as_ref(),
        "--journal".as_ref(),
        j,
        "--config".as_ref(),
        strict.as_os_str(),
    ]);
    assert_eq!((code, old.as_str()), (0, out.as_str()));
    assert!(note.contains("is now `gwanje what-if`"), "{note}");
    let (base, other) = {
        let n = |prefix: &str| -> usize {
            let line = out.lines().find(|l| l.starts_with(prefix)).unwrap();
            line.split(", ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        (n("recorded configuration:"), n("what-if configuration:"))
    };
    assert!(base >= 6 && other < base, "{out}");
    assert!(
        out.contains(&format!(
            "{} fewer switches ({other} instead of {base})",
            base - other
        )),
        "{out}"
    );
    // JSON says the same.
    let (_, json, _) = gwanje_cli(&[
        "what-if".as_ref(),
        "--journal".as_ref(),
        j,
        "--config".as_ref(),
        strict.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["what_if"]["switches"].as_array().unwrap().len(), other);

    // The sweep lists each value with its switches.
    let (code, table, err) = gwanje_cli(&[
        "sweep".as_ref(),
        "--journal".as_ref(),
        j,
        "failback.after=2s,10s,30s".as_ref(),
    ]);
    eprintln!("{table}{err}");
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with(['1', '2', '3']))
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    let switches = |row: &str| -> usize {
        // Columns: value, detect…, switches, false, alerts.
        let cols: Vec<&str> = row
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        cols[2].parse().unwrap()
    };
    assert!(switches(rows[0]) > switches(rows[2]), "{table}");

    // A bad OTHER.yaml gets the usual located error.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, text.replace("after: 2s", "after: soon")).unwrap();
    let (code, _, err) = gwanje_cli(&[
        "what-if".as_ref(),
        "--journal".as_ref(),
        j,
        "--config".as_ref(),
        broken.as_os_str(),
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("broken.yaml:")
            && err.contains("after")
            && err.contains("\"soon\" is not a duration"),
        "{err}"
    );
}
