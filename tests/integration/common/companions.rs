//! Real companions users run beside gwanje: Prometheus, Alertmanager and
//! blackbox_exporter from Debian's packages, on loopback, each ended by its PID when dropped; and a
//! webhook receiver that records what it is sent.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;

use super::Server;

/// A child process ended by its PID when dropped.
pub struct Proc {
    child: Child,
    /// Where it listens, when it does.
    pub addr: SocketAddr,
}

impl Proc {
    /// Starts `cmd`, which listens on port 0 of loopback and logs the
    /// address it bound, with stderr to `log`.
    pub fn spawn(cmd: &mut Command, log: &Path) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let addr = super::bound_address(&mut child, log);
        Proc { child, addr }
    }

    /// The process id.
    #[allow(dead_code, reason = "the fleet benchmark measures it")]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most `limit`) until `GET /-/ready` answers 200.
    pub async fn wait_ready(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            assert!(
                self.child.try_wait().expect("status").is_none(),
                "{:?} exited early",
                self.addr
            );
            if super::client::get(self.addr, "/-/ready")
                .await
                .is_ok_and(|r| r.status == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("companion on {} not ready within {limit:?}", self.addr);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed(binary: &str) -> bool {
    let found = Command::new(binary)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !super::required(&format!("{binary} (Debian package)")),
            "{binary} is required"
        );
    }
    found
}

/// Starts `binary` with its config file `config` written into `dir`, on a
/// free loopback port; `None` when the Debian package is not installed.
fn start(
    binary: &str,
    dir: &Path,
    config: &str,
    flags: impl FnOnce(&Path) -> Vec<String>,
) -> Option<Proc> {
    if !installed(binary) {
        return None;
    }
    let file = dir.join(format!("{binary}.yml"));
    std::fs::write(&file, config).expect("config");
    let mut cmd = Command::new(binary);
    cmd.arg(format!("--config.file={}", file.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .args(flags(dir));
    Some(Proc::spawn(&mut cmd, &dir.join(format!("{binary}.log"))))
}

/// Starts Alertmanager (clustering off) with `config` in `dir`.
pub fn alertmanager(dir: &Path, config: &str) -> Option<Proc> {
    start("prometheus-alertmanager", dir, config, |dir| {
        vec![
            format!("--storage.path={}", dir.join("am-data").display()),
            "--cluster.listen-address=".into(),
        ]
    })
}

/// Starts blackbox_exporter with `config` (its modules) in `dir`.
pub fn blackbox(dir: &Path, config: &str) -> Option<Proc> {
    start("prometheus-blackbox-exporter", dir, config, |_| Vec::new())
}

/// Starts Prometheus with `config` in `dir`.
pub fn prometheus(dir: &Path, config: &str) -> Option<Proc> {
    start("prometheus", dir, config, |dir| {
        vec![
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            "--storage.tsdb.retention.time=1h".into(),
        ]
    })
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request path.
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// An HTTP server on 127.0.0.1 recording every POST.
pub struct Recorder {
    /// The server.
    pub server: Server,
    /// What it got, in order.
    pub got: Arc<Mutex<Vec<Received>>>,
}

impl Recorder {
    /// Starts the recorder.
    pub async fn start() -> Recorder {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = got.clone();
        let app = axum::Router::new().fallback(axum::routing::post(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let sink = sink.clone();
                async move {
                    sink.lock().expect("recorder lock").push(Received {
                        path: uri.path().to_string(),
                        headers,
                        body,
                    });
                    "ok"
                }
            },
        ));
        Recorder {
            server: super::fleet::http(app).await,
            got,
        }
    }

    /// JSON bodies received on `path`.
    pub fn json_on(&self, path: &str) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .expect("recorder lock")
            .iter()
            .filter(|r| r.path == path)
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect()
    }

    /// Polls (at most `limit`) until `find` returns something.
    pub async fn wait_for<T>(
        &self,
        limit: Duration,
        what: &str,
        find: impl Fn(&Recorder) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(t) = find(self) {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {limit:?}; got {:#?}",
                self.json_on_all()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn json_on_all(&self) -> Vec<(String, serde_json::Value)> {
        self.got
            .lock()
            .expect("recorder lock")
            .iter()
            .map(|r| {
                (
                    r.path.clone(),
                    serde_json::from_slice(&r.body).unwrap_or_default(),
                )
            })
            .collect()
    }
}
