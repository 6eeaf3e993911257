//! The daemon config: listen address, logging, scheduler, defaults, probe files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::document::Document;
use super::error::ConfigError;
use super::raw::{RawConfig, RawDefaults};
use super::values;
use crate::core::HealthPolicy;
use crate::plan::{LogFormat, Settings};

/// Listen address when none is configured: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9469";
/// Probe interval when none is configured.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Probe timeout when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Probes running at once when not configured.
pub const DEFAULT_MAX_CONCURRENCY: usize = 1000;

/// Timing and thresholds inherited by catalogs and targets.
#[derive(Debug, Clone, Copy)]
pub struct Inherited {
    /// Time between probes.
    pub interval: Duration,
    /// Time a probe may take.
    pub timeout: Duration,
    /// Health thresholds.
    pub health: HealthPolicy,
}

fn push<T>(errors: &mut Vec<ConfigError>, r: Result<T, ConfigError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

/// Validates the daemon-wide settings.
pub fn settings(
    doc: &Document,
    raw: &RawConfig,
    dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Settings {
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        errors.push(doc.error_at(
            "listen",
            format!("{listen_text:?} is not an address:port; valid: e.g. {DEFAULT_LISTEN}"),
        ));
        DEFAULT_LISTEN
            .parse()
            .expect("default listen address parses")
    });
    let log_format = match raw.logging.format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            errors.push(doc.error_at(
                "logging.format",
                format!("{other:?} is not a log format; valid: text, json"),
            ));
            LogFormat::Text
        }
    };
    let log_level = raw.logging.level.clone().unwrap_or_else(|| "info".into());
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        errors.push(doc.error_at(
            "logging.level",
            format!("{log_level:?} is not a log filter; valid: error, warn, info, debug, trace or e.g. gwanje=debug"),
        ));
    }
    let max_concurrency = raw
        .scheduler
        .max_concurrency
        .unwrap_or(DEFAULT_MAX_CONCURRENCY);
    if max_concurrency == 0 {
        errors.push(doc.error_at(
            "scheduler.max_concurrency",
            "0 is not valid; valid: 1 or more",
        ));
    }
    let admin_token_file = raw.admin.token_file.as_ref().map(|f| dir.join(f));
    if let Some(f) = &admin_token_file
        && let Err(e) = std::fs::metadata(f)
    {
        errors.push(doc.error_at(
            "admin.token_file",
            format!(
                "cannot read {}: {e}; valid: a readable file holding the token",
                f.display()
            ),
        ));
    }
    Settings {
        listen,
        log_format,
        log_level,
        max_concurrency: max_concurrency.max(1),
        admin_token_file,
    }
}

/// Validates `defaults`, falling back to built-in values.
pub fn defaults(doc: &Document, raw: &RawDefaults, errors: &mut Vec<ConfigError>) -> Inherited {
    let base = Inherited {
        interval: DEFAULT_INTERVAL,
        timeout: DEFAULT_TIMEOUT,
        health: HealthPolicy::default(),
    };
    let timing = Timing {
        interval: raw.interval.as_deref(),
        timeout: raw.timeout.as_deref(),
        health: raw.health,
    };
    inherit(doc, "defaults", &timing, &base, errors).unwrap_or(base)
}

/// The timing keys as written at one level (defaults, catalog or target).
pub struct Timing<'a> {
    /// `interval`, if written.
    pub interval: Option<&'a str>,
    /// `timeout`, if written.
    pub timeout: Option<&'a str>,
    /// `health`, if written.
    pub health: Option<super::raw::RawHealth>,
}

/// Applies one level's timing on top of `parent`, checking timeout < interval
/// wherever either is written so the error points at that level.
pub fn inherit(
    doc: &Document,
    path: &str,
    t: &Timing<'_>,
    parent: &Inherited,
    errors: &mut Vec<ConfigError>,
) -> Option<Inherited> {
    let key = |k: &str| super::positions::join_key(path, k);
    let interval = match t.interval {
        Some(s) => push(errors, values::duration(doc, &key("interval"), s))?,
        None => parent.interval,
    };
    let timeout = match t.timeout {
        Some(s) => push(errors, values::duration(doc, &key("timeout"), s))?,
        None => parent.timeout,
    };
    let health = match t.health {
        Some(h) => push(errors, values::health(doc, &key("health"), h))?,
        None => parent.health,
    };
    if (t.interval.is_some() || t.timeout.is_some()) && timeout >= interval {
        let at = if t.timeout.is_some() {
            "timeout"
        } else {
            "interval"
        };
        errors.push(doc.error_at(
            &key(at),
            format!(
                "timeout {} is not below interval {}; valid: a timeout shorter than the interval, so a probe never overlaps itself",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        ));
        return None;
    }
    Some(Inherited {
        interval,
        timeout,
        health,
    })
}

/// Expands `probe_files` globs (relative to the config file's folder).
pub fn probe_files(
    doc: &Document,
    globs: &[String],
    dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Vec<PathBuf> {
    if globs.is_empty() {
        errors.push(doc.error_at(
            "probe_files",
            "the list is empty; valid: one or more globs such as ../probes/*.yaml",
        ));
    }
    let mut files = Vec::new();
    for (i, g) in globs.iter().enumerate() {
        let path = format!("probe_files[{i}]");
        let full = dir.join(g);
        let Ok(paths) = glob::glob(&full.to_string_lossy()) else {
            errors.push(doc.error_at(
                &path,
                format!("{g:?} is not a valid glob; valid: e.g. ../probes/*.yaml"),
            ));
            continue;
        };
        let before = files.len();
        for p in paths.flatten() {
            if !files.contains(&p) {
                files.push(p);
            }
        }
        if files.len() == before {
            errors.push(doc.error_at(
                &path,
                format!(
                    "{g:?} matches no file (looked for {}); valid: a glob matching probe catalogs",
                    full.display()
                ),
            ));
        }
    }
    files
}
