//! Several gwanje vantages on loopback: each probes its own "site" (an
//! HTTP server whose portal and controls the test can cut off), the
//! portal's health is shared by every site, and every vantage follows the
//! others' observation streams.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::Server;
use super::client;
use super::daemon::Daemon;
use super::plan::ConfigDir;

/// The admin token every vantage of these tests uses.
pub const ADMIN: &str = "admin-token-for-vantage-tests";
/// The observer token every vantage accepts.
pub const OBSERVER: &str = "observer-token-for-vantage-tests";
/// The probe interval, ms.
pub const INTERVAL_MS: u64 = 250;

/// What a site serves: the portal's shared status, and whether the site
/// is cut off (everything it serves then fails).
#[derive(Clone)]
pub struct World {
    /// The portal's status code, shared by every site.
    pub portal: Arc<AtomicU16>,
    /// This site's cut.
    pub cut: Arc<AtomicBool>,
}

async fn portal(State(w): State<World>) -> StatusCode {
    if w.cut.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::from_u16(w.portal.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
}

async fn control(State(w): State<World>) -> StatusCode {
    if w.cut.load(Ordering::SeqCst) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// One site's server.
pub async fn site(world: World) -> Server {
    super::fleet::http(
        Router::new()
            .route("/portal", get(portal))
            .route("/gw1", get(control))
            .route("/gw2", get(control))
            .with_state(world),
    )
    .await
}

/// One vantage: its config folder and daemon.
pub struct Vantage {
    /// Its name.
    pub name: String,
    /// Its config folder.
    pub dir: ConfigDir,
    /// The running daemon.
    pub daemon: Option<Daemon>,
    /// Its `journal` section.
    pub journal_yaml: String,
}

/// The tests' journal: every batch forced to disk.
pub const JOURNAL: &str = "journal: {dir: journal, fsync: always}";

/// The catalogs of a site served at `site`: `portal/web` and two controls.
pub fn catalogs(site: &Server) -> [(String, String); 2] {
    let timing =
        format!("interval: {INTERVAL_MS}ms\ntimeout: 200ms\nhealth: {{fall: 2, rise: 2}}\n");
    [
        (
            "portal".into(),
            format!(
                "service: portal\n{timing}targets:\n  - {{name: web, http: {{url: '{}'}}}}\n",
                site.url("/portal")
            ),
        ),
        (
            "infra".into(),
            format!(
                "service: infra\n{timing}targets:\n  - {{name: gw1, http: {{url: '{}'}}}}\n  - {{name: gw2, http: {{url: '{}'}}}}\n",
                site.url("/gw1"),
                site.url("/gw2")
            ),
        ),
    ]
}

impl Vantage {
    /// Writes vantage `name`'s config for `site` (no peers yet) and starts it.
    pub async fn start(name: &str, site: &Server, vantage_extra: &str) -> Vantage {
        Self::start_with(name, &catalogs(site), vantage_extra, JOURNAL).await
    }

    /// Like [`Vantage::start`] with its own catalogs (name, text); they
    /// must hold `infra/gw1` and `infra/gw2`, the controls.
    pub async fn start_with(
        name: &str,
        cats: &[(String, String)],
        vantage_extra: &str,
        journal: &str,
    ) -> Vantage {
        let cats: Vec<(&str, &str)> = cats.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        let dir = ConfigDir::new(&Self::settings(name, vantage_extra, journal, ""), &cats);
        for (file, token) in [("admin.token", ADMIN), ("observer.token", OBSERVER)] {
            gwanje::config::write_secret_file(&dir.dir.path().join(file), token)
                .expect("token file");
        }
        let mut daemon = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
        daemon.wait_ready(Duration::from_secs(20)).await;
        Vantage {
            name: name.into(),
            dir,
            daemon: Some(daemon),
            journal_yaml: journal.into(),
        }
    }

    fn settings(name: &str, vantage_extra: &str, journal: &str, peers: &str) -> String {
        format!(
            "listen: 127.0.0.1:0\nadmin: {{token_file: admin.token, observer_token_file: observer.token}}\n\
             logging: {{format: json}}\n{journal}\n\
             vantage: {{name: {name}, site: site-{name}, controls: [infra/gw1, infra/gw2]{vantage_extra}}}\n{peers}"
        )
    }

    /// Its API's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.daemon.as_ref().expect("running").addr
    }

    /// Its journal folder.
    pub fn journal(&self) -> PathBuf {
        self.dir.dir.path().join("journal")
    }

    /// Follows `peers` (name, address, token file text) from now on: the
    /// config is rewritten and reloaded.
    pub async fn follow(&self, peers: &[(&str, std::net::SocketAddr)], vantage_extra: &str) {
        let token = self.dir.dir.path().join("peer.token");
        gwanje::config::write_secret_file(&token, OBSERVER).expect("peer token");
        let mut list = String::from("peers:\n");
        for (n, a) in peers {
            list.push_str(&format!(
                "  - {{name: {n}, url: 'http://{a}', token_file: peer.token}}\n"
            ));
        }
        self.rewrite(&list, vantage_extra).await;
    }

    /// Rewrites the config with `peers_yaml` and reloads it.
    pub async fn rewrite(&self, peers_yaml: &str, vantage_extra: &str) {
        std::fs::write(
            &self.dir.config,
            format!(
                "probe_files: [\"probes/*.yaml\"]\n{}",
                Self::settings(&self.name, vantage_extra, &self.journal_yaml, peers_yaml)
            ),
        )
        .expect("rewrite config");
        let auth = format!("Bearer {ADMIN}");
        let r = client::request(
            "POST",
            self.addr(),
            "/-/reload",
            &[("authorization", &auth)],
        )
        .await
        .expect("reload");
        assert_eq!(r.status, 200, "{}: reload: {}", self.name, r.body);
    }

    /// The status API's JSON.
    pub async fn status(&self) -> serde_json::Value {
        let r = client::get(self.addr(), "/api/v1/status")
            .await
            .expect("status");
        serde_json::from_str(&r.body).expect("status json")
    }

    /// Polls the status (at most `limit`) until `done` holds; returns it.
    pub async fn wait_status(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let s = self.status().await;
            if done(&s) {
                return s;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{}: {what} not within {limit:?}:\n{s:#}\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.dir.path().join("gwanje.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops it (SIGTERM) and waits.
    pub fn stop(&mut self) {
        if let Some(d) = self.daemon.take() {
            assert!(d.stop().success(), "{} did not stop cleanly", self.name);
        }
    }

    /// Starts it again (after [`Vantage::stop`]) on the same folder and journal.
    pub async fn restart(&mut self) {
        let mut daemon = Daemon::start(&self.dir.config, self.dir.dir.path().join("gwanje.log"));
        daemon.wait_ready(Duration::from_secs(20)).await;
        self.daemon = Some(daemon);
    }

    /// Kills it (SIGKILL): no goodbye to its followers.
    pub fn kill(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.signal(libc::SIGKILL);
            let _ = d.wait_exit(Duration::from_secs(10));
        }
    }
}

/// The verdict on `target` in a status, if voted on.
pub fn verdict<'a>(status: &'a serde_json::Value, target: &str) -> Option<&'a serde_json::Value> {
    status["vantage"]["verdicts"]
        .as_array()?
        .iter()
        .find(|v| v["target"] == target)
}

/// `vantage`'s vote on `target` in a status.
pub fn vote(status: &serde_json::Value, target: &str, vantage: &str) -> Option<String> {
    verdict(status, target)?["votes"]
        .as_array()?
        .iter()
        .find(|v| v["vantage"] == vantage)
        .and_then(|v| v["vote"].as_str().map(String::from))
}

/// The firing alerts named `name` in a status.
pub fn alerts<'a>(status: &'a serde_json::Value, name: &str) -> Vec<&'a serde_json::Value> {
    status["alerts"]
        .as_array()
        .map(|a| a.iter().filter(|a| a["name"] == name).collect())
        .unwrap_or_default()
}

/// Runs `gwanje replay` on a journal folder.
pub fn replay(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .arg("replay")
        .arg("--journal")
        .arg(dir)
        .args(args)
        .output()
        .expect("replay runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
