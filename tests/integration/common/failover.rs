//! The failover rig: gwanje's testbed lab (`gwanje::testbed`) with the
//! failover setup, in a temporary folder, with waits that fail the test and
//! show gwanje's log.

use std::time::{Duration, Instant};

pub use gwanje::testbed::failover_config::TOKEN;
use gwanje::testbed::failover_config::{Mode, failover_setup_in};
use gwanje::testbed::{Lab, Testbed, TestbedError};

/// Everything one scenario needs.
pub struct Rig {
    /// The lab (dropped before its folder).
    pub lab: Lab,
    /// Config, log and journal.
    pub dir: tempfile::TempDir,
}

/// Whether this machine can build the testbed; `GWANJE_REQUIRE_NETNS=1`
/// makes a missing capability a failure instead of a skip.
pub fn available() -> bool {
    match gwanje::testbed::topology::preflight() {
        Ok(()) => true,
        Err(e) => {
            let required = std::env::var("GWANJE_REQUIRE_NETNS").is_ok_and(|v| v == "1");
            assert!(!required, "GWANJE_REQUIRE_NETNS=1 but {e}");
            eprintln!("skipping: {e}");
            false
        }
    }
}

impl Rig {
    /// Starts the lab with `failback`, waiting until both paths are up.
    pub fn start(failback: &str) -> Rig {
        Self::start_with(failback, |_| Ok(()))
    }

    /// Like [`Rig::start`] with the group's `flap_guard` given.
    pub fn start_guarded(failback: &str, flap_guard: &str) -> Rig {
        Self::start_full(Mode::Default, failback, flap_guard, |_| Ok(()))
    }

    /// Like [`Rig::start`] in fast liveness mode.
    pub fn start_fast(failback: &str) -> Rig {
        Self::start_full(
            Mode::Fast,
            failback,
            "{max_switches: 6, window: 1m}",
            |_| Ok(()),
        )
    }

    /// Like [`Rig::start`], changing the testbed with `prepare` before
    /// gwanje starts.
    pub fn start_with(
        failback: &str,
        prepare: impl FnOnce(&Testbed) -> Result<(), TestbedError>,
    ) -> Rig {
        Self::start_full(
            Mode::Default,
            failback,
            "{max_switches: 6, window: 1m}",
            prepare,
        )
    }

    fn start_full(
        mode: Mode,
        failback: &str,
        flap_guard: &str,
        prepare: impl FnOnce(&Testbed) -> Result<(), TestbedError>,
    ) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let setup = failover_setup_in(mode, failback, flap_guard);
        let lab = Lab::start(
            env!("CARGO_BIN_EXE_gwanje").as_ref(),
            dir.path(),
            &setup,
            prepare,
        )
        .unwrap_or_else(|e| {
            let log = std::fs::read_to_string(dir.path().join("gwanje.log"));
            panic!("lab: {e}\nlog:\n{}", log.unwrap_or_default())
        });
        Rig { lab, dir }
    }

    /// The testbed.
    pub fn bed(&self) -> &Testbed {
        &self.lab.bed
    }

    /// Breaks the testbed with `failure`.
    pub fn apply(&self, failure: gwanje::testbed::Failure) {
        failure
            .apply(&self.lab.bed)
            .unwrap_or_else(|e| panic!("{failure}: {e}"));
    }

    /// Mends `failure`.
    pub fn repair(&self, failure: gwanje::testbed::Failure) {
        failure
            .repair(&self.lab.bed)
            .unwrap_or_else(|e| panic!("repair {failure}: {e}"));
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.lab.gwanje.log_text()
    }

    /// Stops gwanje and runs `gwanje replay` on its journal with `args`:
    /// (exit code, stdout, stderr).
    pub fn replay(&self, args: &[&str]) -> (i32, String, String) {
        self.lab.gwanje.terminate().expect("gwanje stops");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gwanje"))
            .arg("replay")
            .arg("--journal")
            .arg(self.dir.path().join("journal"))
            .args(args)
            .output()
            .expect("run gwanje replay");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// gwanje's configuration file.
    pub fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("gwanje.yaml")
    }

    /// Where gwanje journals.
    pub fn journal(&self) -> std::path::PathBuf {
        self.dir.path().join("journal")
    }

    /// One exchange with gwanje's API: (status, body).
    pub fn http(&self, method: &str, path: &str, body: &str, token: Option<&str>) -> (u16, String) {
        self.lab.gwanje.http(method, path, body, token)
    }

    /// The status API's answer.
    pub fn status(&self) -> serde_json::Value {
        self.lab.gwanje.status()
    }

    /// Gwanje's metrics text.
    pub fn metrics(&self) -> String {
        self.lab.gwanje.metrics()
    }

    /// Polls the status (at most `limit`) until `done` holds.
    pub fn wait_status(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let waited = self.lab.wait_status(limit, what, done);
        waited.unwrap_or_else(|e| panic!("{e}\nlog:\n{}", self.log()))
    }

    /// The kernel's gateway for the service prefix in the client namespace.
    pub fn route(&self) -> Option<String> {
        self.lab.route()
    }

    /// Polls the kernel route (at most `limit`) until it goes via `gateway`.
    pub fn wait_route(&self, gateway: &str, limit: Duration) -> Instant {
        let waited = self.lab.wait_route(gateway, limit);
        waited.unwrap_or_else(|e| panic!("{e}\nlog:\n{}", self.log()))
    }
}
