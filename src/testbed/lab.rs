//! A whole failover lab: the testbed, the data centre's services, and the
//! real gwanje in the client namespace steering the data centre's prefix.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::gwanje::Gwanje;
use super::services::Services;
use super::topology::{SERVICE_PREFIX, Testbed};
use super::{TestbedError, interrupted};

/// The files gwanje runs with, written into the lab's folder.
pub struct Setup {
    /// (path relative to the folder, contents), the config among them.
    pub files: Vec<(String, String)>,
    /// The config's path relative to the folder.
    pub config: String,
    /// The port of gwanje's API on the client namespace's loopback.
    pub port: u16,
}

/// Everything one scenario or demo needs. Fields drop in order: gwanje is
/// ended before the namespaces go.
pub struct Lab {
    /// gwanje in the client namespace.
    pub gwanje: Gwanje,
    /// The services (take them to stop them).
    pub services: Option<Services>,
    /// The namespaces.
    pub bed: Testbed,
    /// Where the config, log and journal are.
    pub dir: PathBuf,
}

impl Lab {
    /// Builds the testbed, changes it with `prepare` (e.g. removing a route
    /// for a cold start), starts the services and `exe` with `setup` in
    /// `dir`, and waits until gwanje routes via the primary and sees every
    /// path up.
    pub fn start(
        exe: &Path,
        dir: &Path,
        setup: &Setup,
        prepare: impl FnOnce(&Testbed) -> Result<(), TestbedError>,
    ) -> Result<Lab, TestbedError> {
        let bed = Testbed::new()?;
        prepare(&bed)?;
        let services = Services::start(&bed.server)?;
        for (rel, text) in &setup.files {
            let path = dir.join(rel);
            let write = || {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                // Owner-only, like the token among them must be.
                crate::config::write_secret_file(&path, text)
            };
            write().map_err(|e| TestbedError::io("write", path.display().to_string(), e))?;
        }
        let gwanje = Gwanje::start(
            exe,
            &bed.client,
            &dir.join(&setup.config),
            setup.port,
            dir.join("gwanje.log"),
        )?;
        let lab = Lab {
            gwanje,
            services: Some(services),
            bed,
            dir: dir.to_path_buf(),
        };
        lab.wait_status(Duration::from_secs(20), "both paths up", |s| {
            s["groups"].as_array().is_some_and(|gs| {
                gs.iter().all(|g| {
                    g["active_path"] == g["paths"][0]["name"]
                        && g["paths"]
                            .as_array()
                            .is_some_and(|p| p.iter().all(|p| p["state"] == "up"))
                })
            })
        })?;
        Ok(lab)
    }

    /// Polls the status API every 50 ms (at most `limit`) until `done` holds.
    pub fn wait_status(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, TestbedError> {
        self.gwanje.wait_status(limit, what, done)
    }

    /// The client's gateway for the data centre's prefix.
    pub fn route(&self) -> Option<String> {
        self.bed.client.route_via(SERVICE_PREFIX)
    }

    /// Polls the kernel route every 5 ms (at most `limit`) until it goes via
    /// `gateway`; returns when it did.
    pub fn wait_route(&self, gateway: &str, limit: Duration) -> Result<Instant, TestbedError> {
        let start = Instant::now();
        loop {
            let now = self.route();
            if now.as_deref() == Some(gateway) {
                return Ok(Instant::now());
            }
            if interrupted() {
                return Err(TestbedError::Interrupted);
            }
            if start.elapsed() >= limit {
                return Err(TestbedError::Timeout {
                    what: format!("route via {gateway}"),
                    limit,
                    last: format!("route via {now:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
