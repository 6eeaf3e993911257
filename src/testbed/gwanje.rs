//! The real gwanje binary running inside a namespace, and a small HTTP
//! client that reaches its API from inside the same namespace.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::TestbedError;
use super::netns::Netns;

/// A gwanje process in a namespace, ended by its PID when dropped (and by
/// the kernel when the thread that started it dies: no orphan survives a
/// killed parent).
pub struct Gwanje {
    child: Mutex<Child>,
    ns: Netns,
    port: u16,
    /// Its stderr (the log).
    pub log: PathBuf,
}

impl Gwanje {
    /// Starts `exe run --config config` in `ns`; its API must listen on
    /// `127.0.0.1:port` there. `ip netns exec` execs gwanje, so the PID is
    /// gwanje's.
    pub fn start(
        exe: &Path,
        ns: &Netns,
        config: &Path,
        port: u16,
        log: PathBuf,
    ) -> Result<Self, TestbedError> {
        Self::start_as("run", exe, ns, config, port, log)
    }

    /// Like [`Gwanje::start`] with another command (`actuate`).
    pub fn start_as(
        command: &str,
        exe: &Path,
        ns: &Netns,
        config: &Path,
        port: u16,
        log: PathBuf,
    ) -> Result<Self, TestbedError> {
        // Appended: a replica started again keeps its earlier log.
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| TestbedError::io("create log", log.display().to_string(), e))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.0])
            .arg(exe)
            .arg(command)
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        tie_to_parent(&mut cmd);
        let child = cmd.spawn().map_err(|source| TestbedError::Spawn {
            command: format!("ip netns exec {} {} {command}", ns.0, exe.display()),
            source,
        })?;
        Ok(Gwanje {
            child: Mutex::new(child),
            ns: ns.clone(),
            port,
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether it has exited (and how).
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child().try_wait().ok().flatten()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most 10 s) for it to exit.
    pub fn terminate(&self) -> Result<ExitStatus, TestbedError> {
        if let Some(status) = self.exited() {
            return Ok(status);
        }
        // SAFETY: kill(2) on the PID of the child we started, not yet reaped.
        unsafe {
            libc::kill(self.pid() as i32, libc::SIGTERM);
        }
        for _ in 0..200 {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(TestbedError::Timeout {
            what: "gwanje to exit after SIGTERM".into(),
            limit: Duration::from_secs(10),
            last: "still running".into(),
        })
    }

    /// One HTTP/1.0 exchange with its API: (status, body); (0, "") when it
    /// does not answer.
    pub fn http(&self, method: &str, path: &str, body: &str, token: Option<&str>) -> (u16, String) {
        http(&self.ns, self.port, method, path, body, token)
    }

    /// The status API's answer (`Null` when it does not answer).
    pub fn status(&self) -> serde_json::Value {
        match self.http("GET", "/api/v1/status", "", None) {
            (200, body) => serde_json::from_str(&body).unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    }

    /// Polls the status API every 50 ms (at most `limit`) until `done`
    /// holds; returns that status.
    pub fn wait_status(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, TestbedError> {
        let start = std::time::Instant::now();
        loop {
            let s = self.status();
            if done(&s) {
                return Ok(s);
            }
            if super::interrupted() {
                return Err(TestbedError::Interrupted);
            }
            if let Some(status) = self.exited() {
                return Err(TestbedError::Exited {
                    what: what.into(),
                    status: status.to_string(),
                });
            }
            if start.elapsed() >= limit {
                return Err(TestbedError::Timeout {
                    what: what.into(),
                    limit,
                    last: format!("status {s}"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The metrics text (empty when it does not answer).
    pub fn metrics(&self) -> String {
        self.http("GET", "/metrics", "", None).1
    }

    /// The sum of every series of metric `name` in one scrape.
    pub fn metric_sum(&self, name: &str) -> f64 {
        sum_of(&self.metrics(), name)
    }
}

impl Drop for Gwanje {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let mut child = self.child();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Makes `cmd`'s process die with the thread that starts it (SIGTERM), and
/// puts it in its own process group, so a terminal's Ctrl-C reaches only
/// the parent, which then stops it in order.
pub fn tie_to_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl and getppid are async-signal-safe and touch only the child.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
    cmd.process_group(0);
}

/// One HTTP/1.0 exchange with `127.0.0.1:port` inside `ns`: (status, body);
/// (0, "") when nothing answers.
pub fn http(
    ns: &Netns,
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> (u16, String) {
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: gwanje\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default()
    );
    let exchange = move || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            return (0, String::new());
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(request.as_bytes());
        let mut out = Vec::new();
        // Bounded: the API's answers are small.
        let _ = s.take(16 << 20).read_to_end(&mut out);
        let out = String::from_utf8_lossy(&out);
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    };
    ns.run(exchange).unwrap_or((0, String::new()))
}

/// The sum of every sample of metric `name` in exposition text `text`.
pub fn sum_of(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_only_the_named_metric() {
        let text = "# TYPE x counter\nx{a=\"1\"} 2\nx{a=\"2\"} 3\nx_total 9\nx 1\n";
        assert_eq!(super::sum_of(text, "x"), 6.0);
        assert_eq!(super::sum_of(text, "y"), 0.0);
    }
}
