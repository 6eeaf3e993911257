//! Loading and validating configuration into a [`Plan`].
//!
//! Two stages, as in ripgrep: serde reads the YAML strictly into `raw`
//! structs (unknown keys are errors), then `validate` checks meaning and
//! builds typed values. Every error names file, line, column, key and value
//! and says what would be valid; all errors of a load are reported together.

mod catalog;
mod cluster;
mod document;
mod error;
mod failover;
mod files;
mod identity;
mod positions;
mod raw;
mod settings;
mod target;
mod tls;
mod values;
mod vantage;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrors};
pub use files::{
    MAX_CONFIG_FILE_BYTES, MAX_SECRET_FILE_BYTES, read_secret_file, read_small_file,
    write_secret_file,
};
pub use values::valid_name;

/// Bounds of the identity probe's settings.
pub mod identity_limits {
    pub use super::identity::{
        MAX_CANARIES, MAX_CONCURRENCY, MAX_EXTRACT, MAX_REQUESTS_PER_SECOND, MAX_ROUNDS, MAX_STEPS,
    };
}

use crate::plan::Plan;
use document::Document;

/// Loads the daemon config at `path` and every probe catalog it names.
pub fn load(path: &Path) -> Result<Plan, ConfigErrors> {
    let doc = Document::read(path).map_err(|e| ConfigErrors(vec![e]))?;
    let top: raw::RawTop = doc.decode().map_err(|e| ConfigErrors(vec![e]))?;
    let mut errors = Vec::new();
    if top.probe_files.is_none() {
        errors.push(doc.error_at_key(
            "",
            "missing required key `probe_files`; valid: a list of catalog globs such as [\"probes/*.yaml\"]",
        ));
    }
    let raw = raw::RawConfig {
        listen: doc.section("listen", top.listen, &mut errors),
        probe_files: doc.section("probe_files", top.probe_files, &mut errors),
        defaults: doc.section("defaults", top.defaults, &mut errors),
        scheduler: doc.section("scheduler", top.scheduler, &mut errors),
        logging: doc.section("logging", top.logging, &mut errors),
        admin: doc.section("admin", top.admin, &mut errors),
        paths: doc.section("paths", top.paths, &mut errors),
        failover_groups: doc.section("failover_groups", top.failover_groups, &mut errors),
        alerting: doc.section("alerting", top.alerting, &mut errors),
        journal: doc.section("journal", top.journal, &mut errors),
        path_quality: doc.section("path_quality", top.path_quality, &mut errors),
        vantage: doc.section("vantage", top.vantage, &mut errors),
        peers: doc.section("peers", top.peers, &mut errors),
        cluster: doc.section("cluster", top.cluster, &mut errors),
    };
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let settings = settings::settings(&doc, &raw, dir, &mut errors);
    let defaults = settings::defaults(&doc, &raw.defaults, &mut errors);
    let mut files = settings::probe_files(&doc, &raw.probe_files, dir, &mut errors);
    refuse_secret_catalogs(&doc, &settings, &mut files, &mut errors);

    let mut catalogs = catalog::Catalogs::default();
    for file in files {
        catalogs.load(&file, &defaults, &mut errors);
    }
    let paths = failover::paths(&doc, &raw.paths, &mut errors);
    let groups = failover::groups(
        &doc,
        &raw.failover_groups,
        &raw.paths,
        &paths,
        &catalogs.targets,
        &mut errors,
    );
    let mut settings = settings;
    settings.vantage = vantage::vantage(
        &doc,
        &raw.vantage,
        &raw.peers,
        dir,
        &catalogs.targets,
        &paths,
        &groups,
        &catalogs.services,
        &mut errors,
    );
    settings.cluster = raw.cluster.as_ref().map(|c| crate::plan::ClusterSpec {
        fingerprint: crate::plan::fingerprint(&paths, &groups),
        ..cluster::cluster(&doc, c, dir, settings.vantage.name.as_str(), &mut errors)
    });
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    // A group's `detection` replaces its checks' own thresholds.
    let targets: Vec<_> = catalogs
        .targets
        .into_iter()
        .map(|t| {
            let group = groups.iter().find(|g| g.core.checks.contains(&t.key));
            match group.and_then(|g| g.detection) {
                Some(health) => std::sync::Arc::new(crate::plan::Target {
                    health,
                    ..(*t).clone()
                }),
                None => t,
            }
        })
        .collect();
    let jobs = Plan::build_jobs(&targets, &paths, &groups);
    Ok(Plan {
        source: path.to_path_buf(),
        settings,
        services: catalogs.services,
        targets,
        paths,
        groups,
        jobs,
    })
}

/// Takes the daemon's own secret files (the admin token, webhook secrets)
/// out of the catalogs a glob matched: read as a catalog, a secret would
/// only reach an error message. The error names the file, never its text.
fn refuse_secret_catalogs(
    doc: &Document,
    settings: &crate::plan::Settings,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<ConfigError>,
) {
    let webhooks = settings.alerting.receivers.iter().enumerate();
    let secrets: Vec<(String, &Path)> = settings
        .admin_token_file
        .as_deref()
        .map(|f| ("admin.token_file".to_string(), f))
        .into_iter()
        .chain(webhooks.filter_map(|(i, r)| match r {
            crate::plan::Receiver::Webhook {
                hmac_secret_file: Some(f),
                ..
            } => Some((
                format!("alerting.webhooks[{i}].hmac_secret_file"),
                f.as_path(),
            )),
            _ => None,
        }))
        .collect();
    let same = |a: &Path, b: &Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    files.retain(|f| {
        let Some((key, _)) = secrets.iter().find(|(_, s)| same(s, f)) else {
            return true;
        };
        errors.push(doc.error_at(
            "probe_files",
            format!(
                "{} matches probe_files but is the secret file of {key}: it is not read as a catalog; valid: keep secret files outside the catalog globs",
                f.display()
            ),
        ));
        false
    });
}
