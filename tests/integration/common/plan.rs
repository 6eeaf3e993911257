//! Writes configurations into a temporary folder and loads them, so tests
//! exercise the same loader as the daemon.

use std::path::PathBuf;
use std::sync::Arc;

use gwanje::plan::{Plan, Target};
use gwanje::probe::{ProbeContext, ProbeResult, Prober};

/// A config folder: `gwanje.yaml` plus catalogs under `probes/`.
pub struct ConfigDir {
    /// The folder (deleted when dropped).
    pub dir: tempfile::TempDir,
    /// Path of `gwanje.yaml`.
    pub config: PathBuf,
}

impl ConfigDir {
    /// Writes `settings` (YAML lines besides `probe_files`) and the catalogs.
    pub fn new(settings: &str, catalogs: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("probes")).expect("probes dir");
        let config = dir.path().join("gwanje.yaml");
        std::fs::write(
            &config,
            format!("probe_files: [\"probes/*.yaml\"]\n{settings}"),
        )
        .expect("write config");
        let me = ConfigDir { dir, config };
        for (name, text) in catalogs {
            me.write_catalog(name, text);
        }
        me
    }

    /// (Re)writes catalog `probes/{name}.yaml`.
    pub fn write_catalog(&self, name: &str, text: &str) {
        std::fs::write(
            self.dir.path().join("probes").join(format!("{name}.yaml")),
            text,
        )
        .expect("write catalog");
    }

    /// Loads the plan, panicking with the errors if invalid.
    pub fn load(&self) -> Plan {
        gwanje::config::load(&self.config).unwrap_or_else(|e| panic!("config should load:\n{e}"))
    }
}

/// A one-target catalog of service `svc` from the target's YAML body
/// (indented as a list item's keys).
pub fn one_target(target_yaml: &str) -> String {
    format!(
        "service: svc\ntargets:\n  - name: t\n{}",
        indent(target_yaml, 4)
    )
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// Loads a single target described by `target_yaml`.
pub fn target(target_yaml: &str) -> (ConfigDir, Arc<Target>) {
    let dir = ConfigDir::new("", &[("svc", &one_target(target_yaml))]);
    let plan = dir.load();
    let t = plan.targets[0].clone();
    (dir, t)
}

/// Runs one probe of the target described by `target_yaml`.
pub async fn probe_once(target_yaml: &str) -> ProbeResult {
    let (_dir, t) = target(target_yaml);
    let ctx = ProbeContext::new().expect("probe context");
    Prober::new(t).run(&ctx).await
}
