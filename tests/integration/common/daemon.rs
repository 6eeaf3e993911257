//! Runs the real `gwanje` binary as a child process for end-to-end tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::client;

/// A running gwanje process, ended by its PID when dropped.
pub struct Daemon {
    child: Child,
    /// Where its API listens.
    pub addr: SocketAddr,
    /// Its stderr (the log).
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `gwanje run --config config` whose config listens on
    /// `127.0.0.1:0`; stderr goes to `log`. The address it bound
    /// is read from the log.
    pub fn start(config: &Path, log: PathBuf) -> Self {
        Self::start_with(Command::new(env!("CARGO_BIN_EXE_gwanje")), config, log)
    }

    /// Like [`Daemon::start`], with `cmd` (environment, limits) as the base.
    pub fn start_with(cmd: Command, config: &Path, log: PathBuf) -> Self {
        let mut d = Self::spawn(cmd, config, "127.0.0.1:0".parse().expect("addr"), log);
        d.addr = super::bound_address(&mut d.child, &d.log);
        d
    }

    fn spawn(mut cmd: Command, config: &Path, addr: SocketAddr, log: PathBuf) -> Self {
        let child = cmd
            .arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start gwanje");
        Daemon { child, addr, log }
    }

    /// Waits (at most `limit`) until `/-/ready` answers 200.
    pub async fn wait_ready(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!("gwanje exited with {status}:\n{}", self.log_text());
            }
            if client::get(self.addr, "/-/ready")
                .await
                .is_ok_and(|r| r.status == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gwanje not ready within {limit:?}:\n{}", self.log_text());
    }

    /// Polls `/metrics` (at most `limit`) until `done` holds; returns the last scrape.
    pub async fn scrape_until(
        &self,
        limit: Duration,
        done: impl Fn(&[super::expo::Sample]) -> bool,
    ) -> Vec<super::expo::Sample> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let text = client::get(self.addr, "/metrics")
                .await
                .expect("scrape")
                .body;
            let samples = super::expo::parse(&text);
            if done(&samples) {
                return samples;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not met within {limit:?}; last scrape:\n{text}\nlog:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the PID of the child we started.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `limit`) for the process to exit on its own.
    pub fn wait_exit(mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gwanje still running after {limit:?}:\n{}", self.log_text());
    }

    /// Sends SIGTERM and waits (at most 10 s) for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    /// Like [`Daemon::stop`], keeping the handle (for its log).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gwanje did not stop within 10 s after SIGTERM");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
