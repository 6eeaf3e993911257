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
/// The largest `scheduler.max_concurrency`.
pub const MAX_CONCURRENCY: usize = 65_536;
/// Default cap on open connections to the admin/metrics listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// The largest `admin.max_connections`.
pub const MAX_CONNECTIONS: usize = 4_096;

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
    let max_concurrency = push(
        errors,
        values::in_range(
            doc,
            "scheduler.max_concurrency",
            raw.scheduler
                .max_concurrency
                .unwrap_or(DEFAULT_MAX_CONCURRENCY),
            1..=MAX_CONCURRENCY,
            "probes at once",
        ),
    )
    .unwrap_or(DEFAULT_MAX_CONCURRENCY);
    let max_connections = push(
        errors,
        values::in_range(
            doc,
            "admin.max_connections",
            raw.admin.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            1..=MAX_CONNECTIONS,
            "connections",
        ),
    )
    .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    let admin_token_file = raw.admin.token_file.as_ref().map(|f| dir.join(f));
    if let Some(f) = &admin_token_file
        && let Err(e) = super::files::check_secret_mode(f)
    {
        errors.push(doc.error_at(
            "admin.token_file",
            format!(
                "cannot read {}: {e}; valid: a readable file holding the token",
                f.display()
            ),
        ));
    }
    let observer_token_file = raw.admin.observer_token_file.as_ref().map(|f| dir.join(f));
    if let Some(f) = &observer_token_file
        && let Err(e) = super::files::check_secret_mode(f)
    {
        errors.push(doc.error_at(
            "admin.observer_token_file",
            format!(
                "cannot read {}: {e}; valid: a readable file holding the token",
                f.display()
            ),
        ));
    }
    let alerting = alerting(doc, &raw.alerting, dir, errors);
    Settings {
        listen,
        log_format,
        log_level,
        max_concurrency,
        max_connections,
        admin_token_file,
        alerting,
        journal: raw
            .journal
            .as_ref()
            .and_then(|j| journal(doc, j, dir, errors)),
        path_quality: raw
            .path_quality
            .as_ref()
            .map_or_else(Default::default, |q| path_quality(doc, q, errors)),
        observer_token_file,
        // Validated once the catalogs and paths its controls name are known.
        vantage: Default::default(),
        // Validated once the vantage's name (its default replica name) is known.
        cluster: None,
    }
}

/// Reads `path_quality`: loss shares as fractions, kept as per mille.
fn path_quality(
    doc: &Document,
    raw: &super::raw::RawQuality,
    errors: &mut Vec<ConfigError>,
) -> crate::core::QualityPolicy {
    let d = crate::core::QualityPolicy::default();
    let window = values::duration_or(
        doc,
        "path_quality.window",
        raw.window.as_deref(),
        Duration::from_millis(d.window_ms),
        Duration::from_secs(600),
        errors,
    )
    .as_millis() as u64;
    let share =
        |key: &str, v: Option<f64>, default: u16, max: f64, errors: &mut Vec<ConfigError>| {
            let Some(v) = v else { return default };
            if (0.0..=max).contains(&v) {
                (v * 1000.0).round() as u16
            } else {
                errors.push(doc.error_at(
                    &format!("path_quality.{key}"),
                    format!("{v} is out of range; valid: a fraction from 0.0 to {max}"),
                ));
                default
            }
        };
    let tolerated = share(
        "tolerated_loss",
        raw.tolerated_loss,
        d.tolerated_permille,
        0.5,
        errors,
    );
    let degraded = share(
        "degraded_loss",
        raw.degraded_loss,
        d.degraded_permille,
        1.0,
        errors,
    );
    if degraded <= tolerated {
        errors.push(doc.error_at(
            "path_quality.degraded_loss",
            format!(
                "{} is not above tolerated_loss ({}); valid: a larger share than the tolerated one",
                f64::from(degraded) / 1000.0,
                f64::from(tolerated) / 1000.0
            ),
        ));
    }
    let margin = share("margin", raw.margin, d.margin_permille, 1.0, errors);
    crate::core::QualityPolicy {
        window_ms: window,
        tolerated_permille: tolerated,
        degraded_permille: degraded,
        margin_permille: margin,
        ..d
    }
}

/// Bounds of the journal's settings (documented in the README).
const SEGMENT_BYTES: std::ops::RangeInclusive<u64> = (1 << 20)..=(1 << 30);
const RETAIN_BYTES: std::ops::RangeInclusive<u64> = (16 << 20)..=(1 << 40);
const QUEUE: std::ops::RangeInclusive<usize> = 1024..=(1 << 20);

fn journal(
    doc: &Document,
    raw: &super::raw::RawJournal,
    dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<crate::plan::JournalSpec> {
    use crate::plan::Fsync;
    let before = errors.len();
    if raw.dir.trim().is_empty() {
        errors.push(doc.error_at(
            "journal.dir",
            "the folder is empty; valid: a folder path, relative to this file or absolute",
        ));
    }
    let dur = |key: &str,
               text: &Option<String>,
               default: Duration,
               max: Duration,
               errors: &mut Vec<ConfigError>| {
        values::duration_or(
            doc,
            &format!("journal.{key}"),
            text.as_deref(),
            default,
            max,
            errors,
        )
    };
    let segment_age = dur(
        "segment_age",
        &raw.segment_age,
        Duration::from_secs(3600),
        Duration::from_secs(86_400),
        errors,
    );
    let retain_age = dur(
        "retain_age",
        &raw.retain_age,
        Duration::from_secs(7 * 86_400),
        Duration::from_secs(365 * 86_400),
        errors,
    );
    let fsync = match raw.fsync.as_deref() {
        None => Fsync::Every(Duration::from_secs(1)),
        Some("always") => Fsync::Always,
        Some("never") => Fsync::Never,
        Some(t) => match humantime::parse_duration(t.trim()) {
            Ok(d) if d >= Duration::from_millis(10) && d <= Duration::from_secs(60) => {
                Fsync::Every(d)
            }
            _ => {
                errors.push(doc.error_at(
                    "journal.fsync",
                    format!("{t:?} is not an fsync policy; valid: always, never, or a duration from 10ms to 1m"),
                ));
                Fsync::Never
            }
        },
    };
    let segment_bytes = push(
        errors,
        values::in_range(
            doc,
            "journal.segment_bytes",
            raw.segment_bytes.unwrap_or(64 << 20),
            SEGMENT_BYTES,
            "bytes",
        ),
    );
    let retain_bytes = push(
        errors,
        values::in_range(
            doc,
            "journal.retain_bytes",
            raw.retain_bytes.unwrap_or(1 << 30),
            RETAIN_BYTES,
            "bytes",
        ),
    );
    let queue = push(
        errors,
        values::in_range(
            doc,
            "journal.queue",
            raw.queue.unwrap_or(1 << 14),
            QUEUE,
            "records",
        ),
    );
    if errors.len() > before {
        return None;
    }
    Some(crate::plan::JournalSpec {
        dir: dir.join(&raw.dir),
        segment_bytes: segment_bytes?,
        segment_age,
        retain_bytes: retain_bytes?,
        retain_age,
        fsync,
        queue: queue?,
    })
}

fn alerting(
    doc: &Document,
    raw: &super::raw::RawAlerting,
    dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> crate::plan::Alerting {
    use crate::plan::Receiver;
    let mut receivers = Vec::new();
    let url_at = |path: &str, text: &str, errors: &mut Vec<ConfigError>| {
        url::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|mut u| {
                // Relative joins need the trailing slash.
                if !u.path().ends_with('/') {
                    let p = format!("{}/", u.path());
                    u.set_path(&p);
                }
                u
            })
            .or_else(|| {
                errors.push(doc.error_at(
                    path,
                    format!("{text:?} is not an http(s) URL; valid: e.g. http://127.0.0.1:9093"),
                ));
                None
            })
    };
    for (i, a) in raw.alertmanagers.iter().enumerate() {
        if let Some(u) = url_at(&format!("alerting.alertmanagers[{i}]"), a, errors) {
            receivers.push(Receiver::Alertmanager(u));
        }
    }
    for (i, w) in raw.webhooks.iter().enumerate() {
        let Some(url) = url::Url::parse(&w.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
        else {
            errors.push(doc.error_at(
                &format!("alerting.webhooks[{i}].url"),
                format!("{:?} is not an http(s) URL", w.url),
            ));
            continue;
        };
        let secret = w.hmac_secret_file.as_ref().map(|f| dir.join(f));
        if let Some(f) = &secret
            && let Err(e) = super::files::check_secret_mode(f)
        {
            errors.push(doc.error_at(
                &format!("alerting.webhooks[{i}].hmac_secret_file"),
                format!(
                    "cannot read {}: {e}; valid: a readable file holding the secret",
                    f.display()
                ),
            ));
        }
        receivers.push(Receiver::Webhook {
            url,
            hmac_secret_file: secret,
        });
    }
    let dur = |key: &str,
               text: &Option<String>,
               default: Duration,
               max: Duration,
               errors: &mut Vec<ConfigError>| {
        values::duration_or(
            doc,
            &format!("alerting.{key}"),
            text.as_deref(),
            default,
            max,
            errors,
        )
    };
    let ms = |d: Duration| d.as_millis() as u64;
    let certificate_warning = dur(
        "certificate_warning",
        &raw.certificate_warning,
        Duration::from_secs(14 * 86_400),
        values::limits::CERTIFICATE_WARNING,
        errors,
    );
    let policy = crate::core::AlertPolicy {
        resend_ms: ms(dur(
            "resend_interval",
            &raw.resend_interval,
            Duration::from_secs(60),
            values::limits::PERIOD,
            errors,
        )),
        resolved_resend_ms: ms(dur(
            "resolved_resend_for",
            &raw.resolved_resend_for,
            Duration::from_secs(900),
            values::limits::PERIOD,
            errors,
        )),
        escalate_after_ms: ms(dur(
            "escalate_after",
            &raw.escalate_after,
            Duration::from_secs(600),
            values::limits::PERIOD,
            errors,
        )),
        certificate_warning_ms: ms(certificate_warning),
        ..Default::default()
    };
    crate::plan::Alerting {
        receivers,
        policy,
        external_url: raw.external_url.clone(),
        runbook_url: raw
            .runbook_url
            .clone()
            .unwrap_or_else(|| "https://gwanje.example/runbooks/".into()),
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
        Some(s) => push(
            errors,
            values::duration(doc, &key("interval"), s, values::limits::INTERVAL),
        )?,
        None => parent.interval,
    };
    let timeout = match t.timeout {
        Some(s) => push(
            errors,
            values::duration(doc, &key("timeout"), s, values::limits::TIMEOUT),
        )?,
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
