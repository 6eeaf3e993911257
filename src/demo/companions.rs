//! `--with-prometheus`: Debian's Prometheus and Alertmanager on the host's
//! loopback, scraping the demo with the shipped rules. Both listen on a port
//! the kernel picks (so they never collide with a real Prometheus here),
//! and die with the demo.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::DemoError;

const RULES: &str = include_str!("../../deploy/prometheus/rules/gwanje.yml");

/// A companion process, ended by its PID when dropped.
pub struct Companion {
    child: Child,
    /// Where its web UI and API listen.
    pub addr: SocketAddr,
}

impl Drop for Companion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write(path: PathBuf, text: &str) -> Result<PathBuf, DemoError> {
    std::fs::write(&path, text).map_err(io(&path))?;
    Ok(path)
}

/// Starts `binary` with `args`, listening on port 0 of loopback, and reads
/// the address it bound from its log.
fn spawn(binary: &str, args: &[String], log: PathBuf) -> Result<Companion, DemoError> {
    let err = std::fs::File::create(&log).map_err(io(&log))?;
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .arg("--web.listen-address=127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    crate::testbed::gwanje::tie_to_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        DemoError::Story(format!(
            "--with-prometheus needs `{binary}` (apt-get install prometheus prometheus-alertmanager): {e}"
        ))
    })?;
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let bound = text.split("address=").skip(1).find_map(|rest| {
            let word = rest.split_whitespace().next()?;
            let addr = word.trim_matches('"').parse::<SocketAddr>().ok()?;
            (addr.port() != 0).then_some(addr)
        });
        if let Some(addr) = bound {
            return Ok(Companion { child, addr });
        }
        if child.try_wait().ok().flatten().is_some() || start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DemoError::Story(format!(
                "{binary} did not start; its log: {}",
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts Alertmanager, then Prometheus scraping `gwanje` (the demo's
/// forwarded API) every 5 s with the shipped rules; files go under `dir`.
pub fn start(dir: &Path, gwanje: SocketAddr) -> Result<(Companion, Companion), DemoError> {
    let am_config = write(
        dir.join("alertmanager.yml"),
        "route: {receiver: demo, group_wait: 5s}\nreceivers: [{name: demo}]\n",
    )?;
    let alertmanager = spawn(
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", dir.join("alertmanager").display()),
            "--cluster.listen-address=".into(),
        ],
        dir.join("alertmanager.log"),
    )?;
    let rules = write(dir.join("gwanje-rules.yml"), RULES)?;
    let config = write(
        dir.join("prometheus.yml"),
        &format!(
            "global: {{scrape_interval: 5s, evaluation_interval: 5s}}\nrule_files: ['{}']\nalerting: {{alertmanagers: [{{static_configs: [{{targets: ['{}']}}]}}]}}\nscrape_configs:\n  - {{job_name: gwanje, static_configs: [{{targets: ['{gwanje}']}}]}}\n",
            rules.display(),
            alertmanager.addr
        ),
    )?;
    let prometheus = spawn(
        "prometheus",
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("prometheus").display()),
            "--storage.tsdb.retention.time=1d".into(),
        ],
        dir.join("prometheus.log"),
    )?;
    Ok((prometheus, alertmanager))
}
