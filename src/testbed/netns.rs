//! One network namespace, by name, and the commands run in it.

use std::os::fd::AsRawFd;
use std::process::Command;
use std::thread::JoinHandle;

use super::TestbedError;

/// Runs a command (`args[0]` with the rest) and returns its stdout.
pub fn sh(args: &[&str]) -> Result<String, TestbedError> {
    let command = args.join(" ");
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|source| TestbedError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(TestbedError::Command {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A named network namespace (`/var/run/netns/NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Netns(pub String);

impl Netns {
    /// Runs `ip -n NS args...`.
    pub fn ip(&self, args: &[&str]) -> Result<(), TestbedError> {
        let mut full = vec!["ip", "-n", &self.0];
        full.extend_from_slice(args);
        sh(&full).map(drop)
    }

    /// Runs a command inside the namespace and returns its stdout.
    pub fn exec(&self, args: &[&str]) -> Result<String, TestbedError> {
        let mut full = vec!["ip", "netns", "exec", &self.0];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// Sets a sysctl (`key=value`) inside the namespace.
    pub fn sysctl(&self, key_value: &str) -> Result<(), TestbedError> {
        self.exec(&["sysctl", "-q", "-w", key_value]).map(drop)
    }

    /// Runs `f` on a thread inside the namespace and returns its result.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, TestbedError> {
        self.spawn(f)?.join()
    }

    /// Starts `f` on a new thread that has entered the namespace (sockets it
    /// opens live there; the rest of the process is untouched).
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<NsThread<T>, TestbedError> {
        let path = format!("/var/run/netns/{}", self.0);
        let file =
            std::fs::File::open(&path).map_err(|e| TestbedError::io("open", path.clone(), e))?;
        let (entered, wait) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            // SAFETY: setns affects only this thread; the fd is open.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                let _ = entered.send(Err(std::io::Error::last_os_error()));
                return None;
            }
            let _ = entered.send(Ok(()));
            Some(f())
        });
        match wait.recv() {
            Ok(Ok(())) => Ok(NsThread {
                ns: self.0.clone(),
                handle,
            }),
            Ok(Err(e)) => Err(TestbedError::io("setns", self.0.clone(), e)),
            Err(_) => Err(TestbedError::Thread(self.0.clone())),
        }
    }

    /// The gateway of the main table's route to `prefix`, if any.
    pub fn route_via(&self, prefix: &str) -> Option<String> {
        let text = sh(&["ip", "-n", &self.0, "route", "show", prefix]).ok()?;
        let mut words = text.split_whitespace();
        words
            .find(|w| *w == "via")
            .and_then(|_| words.next())
            .map(str::to_string)
    }

    /// Adds an nftables rule in table `table` (created if missing), in a
    /// filter chain `chain` on `hook` (forward, input…).
    pub fn nft_rule(&self, table: &str, hook: &str, rule: &str) -> Result<(), TestbedError> {
        self.exec(&["nft", "add", "table", "inet", table])?;
        self.exec(&[
            "nft",
            &format!(
                "add chain inet {table} {hook}_filter {{ type filter hook {hook} priority 0 ; policy accept ; }}"
            ),
        ])?;
        // One rule per table: applying a failure twice does not stack it.
        let chain = format!("{hook}_filter");
        self.exec(&["nft", "flush", "chain", "inet", table, &chain])?;
        self.exec(&["nft", &format!("add rule inet {table} {chain} {rule}")])
            .map(drop)
    }

    /// Deletes nftables table `table` if it exists.
    pub fn nft_drop_table(&self, table: &str) -> Result<(), TestbedError> {
        let listed = self.exec(&["nft", "list", "tables"])?;
        if listed
            .lines()
            .any(|l| l.trim() == format!("table inet {table}"))
        {
            self.exec(&["nft", "delete", "table", "inet", table])?;
        }
        Ok(())
    }
}

/// A thread running inside a namespace.
pub struct NsThread<T> {
    ns: String,
    handle: JoinHandle<Option<T>>,
}

impl<T> NsThread<T> {
    /// Waits for the thread and returns what it returned.
    pub fn join(self) -> Result<T, TestbedError> {
        match self.handle.join() {
            Ok(Some(v)) => Ok(v),
            _ => Err(TestbedError::Thread(self.ns)),
        }
    }
}
