//! The running daemon: wires the engine, the API and signals together.
//!
//! Like mini-redis, [`run`] takes a bound listener and a shutdown future,
//! so tests and `main` drive the same code.

mod files;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use files::raise_open_file_limit;

use crate::actuate::{Actuator, Netlink};
use crate::api::{self, ApiState};
use crate::clock;
use crate::control::{AdminToken, Reloader};
use crate::core::Input;
use crate::engine::{self, Shared};
use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::probe::ProbeContext;

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The admin token file could not be read.
    #[error("reading the admin token file {path}: {source}")]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The probe context (resolver) could not be set up.
    #[error("setting up probes: {0}")]
    Probes(std::io::Error),
    /// The API server failed.
    #[error("serving the API: {0}")]
    Serve(std::io::Error),
    /// Netlink is needed (route actions, policy routing) but unavailable.
    #[error("netlink (needed by `action: route` and `manage_policy_routing`): {0}")]
    Netlink(crate::actuate::NetlinkError),
    /// Installing per-path policy routing failed.
    #[error("installing per-path policy routing: {0}")]
    PolicyRouting(crate::actuate::ActuateError),
    /// The journal could not be opened.
    #[error("opening the journal in {dir}: {source}")]
    Journal {
        /// Its folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The engine stopped while gwanje was meant to run: nothing is
    /// probed or decided any more, so the process must not stay up.
    #[error("the engine stopped unexpectedly ({0}); exiting so a supervisor restarts gwanje")]
    EngineStopped(String),
}

fn needs_netlink(plan: &Plan) -> bool {
    plan.groups
        .iter()
        .any(|g| g.action == crate::plan::Action::Route)
        || plan.paths.iter().any(|p| p.manage_policy_routing)
}

/// Runs gwanje with `plan` (loaded from `config_path`) until `shutdown` resolves.
pub async fn run(
    config_path: PathBuf,
    plan: Plan,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let token = load_token(&plan)?;
    let metrics = Metrics::new();
    metrics.reload_successful.set(1);
    metrics.reload_success_timestamp.set(clock::unix_seconds());
    let own = listener.local_addr().map_err(DaemonError::Serve)?;
    let ctx = ProbeContext::guarding(Some(own)).map_err(DaemonError::Probes)?;
    let actuator = Actuator::new(
        needs_netlink(&plan)
            .then(Netlink::connect)
            .transpose()
            .map_err(DaemonError::Netlink)?,
    );
    // Before any rule is installed, so a journal that cannot open leaves nothing behind.
    let driver = open_driver(&plan)?;
    actuator
        .install_policy_routing(&plan.paths)
        .await
        .map_err(DaemonError::PolicyRouting)?;
    let paths = plan.paths.clone();
    let max_connections = plan.settings.max_connections;
    let (plans, plan_rx) = watch::channel(Arc::new(plan));
    let shared = Shared {
        metrics: metrics.clone(),
        ready: Arc::new(AtomicBool::new(false)),
        status: Arc::default(),
        observations: Arc::default(),
    };
    metrics.engine_heartbeat.set(clock::unix_seconds());
    let (commands, command_rx) = mpsc::channel(16);
    let reloader = Arc::new(Reloader::new(
        config_path,
        plans,
        metrics.clone(),
        token,
        commands.clone(),
    ));

    let mut adapters = engine::Adapters::live(
        ctx.clone(),
        actuator.clone(),
        &plan_rx.borrow(),
        metrics.clone(),
    );
    let cluster = plan_rx.borrow().settings.cluster.clone();
    let (stop_cluster, stopping) = watch::channel(false);
    let mut session = None;
    let mut applier = None;
    let mut operator_watch = None;
    let mut routes_mirror = None;
    if let Some(spec) = cluster {
        metrics.cluster.init();
        let (coordination, coordination_rx) = mpsc::channel(16);
        let (reports, reports_rx) = mpsc::channel(64);
        let (operator, operator_rx) = mpsc::channel(64);
        operator_watch = Some(tokio::spawn(crate::cluster::operator::watch(
            spec.clone(),
            operator,
        )));
        let gate = crate::cluster::Gate::default();
        if spec.campaign {
            tracing::info!(cluster = %spec.name, replica = %spec.replica, "campaigning; ordering nothing until elected");
            session = Some(tokio::spawn(crate::cluster::campaign(
                spec.clone(),
                gate.clone(),
                coordination,
                stopping,
            )));
        } else {
            tracing::info!(cluster = %spec.name, replica = %spec.replica, "applying the leader's orders; not campaigning");
        }
        if spec.actuate {
            applier = Some(tokio::spawn(crate::cluster::actuate(
                spec.clone(),
                plan_rx.clone(),
                Arc::new(actuator.clone()),
                reports,
                metrics.clone(),
            )));
        } else {
            // Its routes are the router hosts': it follows what they applied.
            let groups = plan_rx
                .borrow()
                .groups
                .iter()
                .map(|g| g.name().clone())
                .collect();
            routes_mirror = Some(tokio::spawn(crate::cluster::mirror(
                spec.clone(),
                groups,
                reports,
            )));
        }
        adapters.cluster = Some(engine::ClusterLink {
            spec,
            gate,
            coordination: coordination_rx,
            reports: reports_rx,
            operator: operator_rx,
        });
    }
    let engine = tokio::spawn(engine::run_with(
        plan_rx,
        adapters,
        shared.clone(),
        command_rx,
        driver,
    ));
    let hup = tokio::spawn(reload_on_sighup(reloader.clone()));
    let app = api::router(ApiState {
        shared,
        reloader: reloader.clone(),
        commands,
        probes: ctx,
        verifying: Arc::new(tokio::sync::Semaphore::new(1)),
        probe_index: Arc::default(),
        backlogs: Arc::new(tokio::sync::Semaphore::new(1)),
    });
    let limits = api::Limits::new(max_connections, raise_open_file_limit());
    tracing::info!(listen = %own, max_connections = limits.max_connections, "gwanje running");
    let mut engine = engine;
    let served = api::serve(listener, app, limits, metrics, shutdown);
    // A finished JoinHandle must not be awaited again (tokio panics), or the
    // cleanup below never runs.
    let mut engine_done = false;
    let result = tokio::select! {
        served = served => served.map_err(DaemonError::Serve),
        // The election session ends only when told to: otherwise this
        // replica would believe in a role nobody keeps up.
        Some(ended) = join_opt(&mut session) => {
            // Finished: not awaited again below.
            session = None;
            let why = match ended {
                Err(e) => e.to_string(),
                Ok(()) => "it returned".to_string(),
            };
            tracing::error!("the cluster session stopped ({why}); exiting");
            Err(DaemonError::EngineStopped(format!("the cluster session stopped: {why}")))
        }
        // The actuator ends only on a fence file it cannot trust.
        Some(ended) = join_opt(&mut applier) => {
            let why = match ended {
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(())) => "it returned".to_string(),
                Err(e) => e.to_string(),
            };
            tracing::error!("the cluster actuator stopped ({why}); exiting");
            Err(DaemonError::EngineStopped(format!("the cluster actuator stopped: {why}")))
        }
        ended = &mut engine => {
            engine_done = true;
            let why = match ended {
                Err(e) if e.is_panic() => "it panicked".to_string(),
                Err(e) => e.to_string(),
                Ok(()) => "it returned".to_string(),
            };
            tracing::error!("the engine stopped unexpectedly ({why}); exiting");
            Err(DaemonError::EngineStopped(why))
        }
    };
    hup.abort();
    // A leader resigns, so a standby takes over at once.
    let _ = stop_cluster.send(true);
    if let Some(s) = session {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s).await;
    }
    for task in [
        applier.map(|a| a.abort_handle()),
        operator_watch.map(|o| o.abort_handle()),
        routes_mirror.map(|m| m.abort_handle()),
    ]
    .into_iter()
    .flatten()
    {
        task.abort();
    }
    // Dropping the last plan sender ends the engine, which aborts every probe task.
    drop(reloader);
    if !engine_done {
        engine.abort();
        let _ = engine.await;
    }
    actuator.remove_policy_routing(&paths).await;
    tracing::info!("gwanje stopped");
    result
}

/// The core, restored from the journal when there is one, and the journal
/// it records into from now on.
fn open_driver(plan: &Plan) -> Result<engine::Driver, DaemonError> {
    let Some(spec) = &plan.settings.journal else {
        return Ok(engine::Driver::new(crate::core::Core::new(), None));
    };
    // A journal folder that cannot be read does not stop monitoring: gwanje
    // starts afresh and the journal reports itself failing.
    let (restored, warnings) = crate::journal::restore(&spec.dir).unwrap_or_else(|e| {
        tracing::error!(dir = %spec.dir.display(), "the journal cannot be read: {e}; starting without its state");
        (None, Vec::new())
    });
    for w in warnings {
        tracing::warn!("journal: {w}");
    }
    let lead = restored
        .as_ref()
        .map_or(0, |core| core.now().0.saturating_sub(clock::now().0));
    let restored = restored.filter(|_| lead <= clock::MAX_RESTORED_LEAD_MS);
    if lead > clock::MAX_RESTORED_LEAD_MS {
        tracing::error!(
            dir = %spec.dir.display(),
            lead_s = lead / 1000,
            "the journal is dated ahead of the system clock by more than an hour: its state is not restored (the segments stay for analysis)"
        );
    }
    let core = match restored {
        Some(core) => {
            clock::not_before(core.now());
            tracing::info!(
                alerts = core.alerts().filter(|a| a.firing()).count(),
                groups = core.groups().len(),
                "restored operator state from the journal"
            );
            core
        }
        None => crate::core::Core::new(),
    };
    let journal =
        crate::journal::Journal::open(spec, &core).map_err(|source| DaemonError::Journal {
            dir: spec.dir.clone(),
            source,
        })?;
    let mut driver = engine::Driver::new(core, Some(journal));
    if lead > clock::MAX_RESTORED_LEAD_MS {
        driver.feed(clock::now(), Input::JournalRestoreRefused { lead_ms: lead });
    }
    Ok(driver)
}

fn load_token(plan: &Plan) -> Result<AdminToken, DaemonError> {
    let file = plan.settings.admin_token_file.as_deref();
    AdminToken::load(file).map_err(|source| DaemonError::Token {
        path: file.map(PathBuf::from).unwrap_or_default(),
        source,
    })
}

async fn join_opt<T>(
    task: &mut Option<tokio::task::JoinHandle<T>>,
) -> Option<Result<T, tokio::task::JoinError>> {
    match task {
        Some(t) => Some(t.await),
        None => std::future::pending().await,
    }
}

async fn reload_on_sighup(reloader: Arc<Reloader>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading configuration");
        // Errors are logged and counted inside reload().
        let _ = reloader.reload().await;
    }
}
