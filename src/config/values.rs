//! Parsers for the small value types shared by every section.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::document::Document;
use super::error::ConfigError;
use super::positions::join_key;
use super::raw::{RawHealth, RawSource};
use crate::core::HealthPolicy;
use crate::plan::{Pattern, Source};

/// Upper bounds of configured values, by what they measure; every one is
/// documented in the README's configuration tables.
pub mod limits {
    use std::time::Duration;

    /// A probe or router-check interval.
    pub const INTERVAL: Duration = Duration::from_secs(24 * 3600);
    /// A probe, router-check, exec or webhook timeout.
    pub const TIMEOUT: Duration = Duration::from_secs(300);
    /// Controller and alerting periods: dwell, hold-down, failback, flap
    /// window, isolation window, alert re-send and escalation.
    pub const PERIOD: Duration = Duration::from_secs(7 * 86_400);
    /// How long before expiry a certificate warning starts.
    pub const CERTIFICATE_WARNING: Duration = Duration::from_secs(365 * 86_400);
}

/// Checks that `value` lies in `range`; `unit` names what it counts.
pub fn in_range<T>(
    doc: &Document,
    path: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<T, ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if range.contains(&value) {
        return Ok(value);
    }
    Err(doc.error_at(
        path,
        format!(
            "{value} is out of range; valid: {} to {} {unit}",
            range.start(),
            range.end()
        ),
    ))
}

/// Parses a duration such as `250ms`, `5s` or `1m`, from 1ms up to `max`.
pub fn duration(
    doc: &Document,
    path: &str,
    text: &str,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(text.trim()).map_err(|_| {
        doc.error_at(
            path,
            format!(
                "{text:?} is not a duration; valid: a number with a unit, like 250ms, 5s or 1m"
            ),
        )
    })?;
    if d < Duration::from_millis(1) || d > max {
        return Err(doc.error_at(
            path,
            format!("{text:?} is out of range; valid: 1ms to {}", whole(max)),
        ));
    }
    Ok(d)
}

/// A bound in its largest whole unit: `365d`, `24h` is `1d`, `5m`.
fn whole(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Parses the optional duration `text` at `path` (up to `max`), adding an
/// error and falling back to `default` when it is not valid.
pub fn duration_or(
    doc: &Document,
    path: &str,
    text: Option<&str>,
    default: Duration,
    max: Duration,
    errors: &mut Vec<ConfigError>,
) -> Duration {
    match text.map(|t| duration(doc, path, t, max)) {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            errors.push(e);
            default
        }
        None => default,
    }
}

/// Checks fall/rise/window thresholds.
pub fn health(doc: &Document, path: &str, raw: RawHealth) -> Result<HealthPolicy, ConfigError> {
    let window = raw.window.unwrap_or(raw.fall);
    let max = HealthPolicy::MAX_WINDOW;
    if raw.fall == 0 {
        return Err(doc.error_at(&join_key(path, "fall"), "0 is not valid; valid: 1 or more"));
    }
    if raw.rise == 0 || raw.rise > max {
        return Err(doc.error_at(
            &join_key(path, "rise"),
            format!("{} is not valid; valid: 1 to {max}", raw.rise),
        ));
    }
    if window < raw.fall || window > max {
        return Err(doc.error_at(
            &join_key(path, "window"),
            format!(
                "{window} is not valid with fall {}; valid: from fall ({}) to {max}",
                raw.fall, raw.fall
            ),
        ));
    }
    Ok(HealthPolicy {
        fall: raw.fall,
        window,
        rise: raw.rise,
    })
}

/// Compiles a regular expression.
pub fn pattern(doc: &Document, path: &str, text: &str) -> Result<Pattern, ConfigError> {
    regex::bytes::Regex::new(text).map(Pattern).map_err(|e| {
        let why = e.to_string();
        let why = why.lines().last().unwrap_or("invalid").trim();
        doc.error_at(
            path,
            format!("{text:?} is not a valid regular expression ({why}); valid: Rust regex syntax"),
        )
    })
}

/// Checks a source address / interface.
pub fn source(doc: &Document, path: &str, raw: Option<&RawSource>) -> Result<Source, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Source::default());
    };
    let address = match &raw.address {
        Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
            doc.error_at(
                &join_key(path, "address"),
                format!("{a:?} is not an IP address; valid: e.g. 198.18.0.10 or 2001:db8::10"),
            )
        })?),
        None => None,
    };
    if let Some(ifname) = &raw.interface
        && (ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', ' ']))
    {
        return Err(doc.error_at(
            &join_key(path, "interface"),
            format!(
                "{ifname:?} is not an interface name; valid: 1-15 characters, no '/' or spaces"
            ),
        ));
    }
    Ok(Source {
        address,
        interface: raw.interface.clone(),
        mark: None,
    })
}

/// Parses `host:port`, `[v6]:port` or `v4:port`.
pub fn host_port(doc: &Document, path: &str, text: &str) -> Result<(String, u16), ConfigError> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), sa.port()));
    }
    let bad = || {
        doc.error_at(
            path,
            format!("{text:?} is not host:port; valid: e.g. portal.example:443, 198.18.0.10:22 or [2001:db8::1]:53"),
        )
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.contains(':') || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Reads a secret from a file or the environment; never echoes its value.
pub fn secret(
    doc: &Document,
    path: &str,
    raw: &super::raw::RawSecret,
) -> Result<String, ConfigError> {
    use super::raw::RawSecret;
    match raw {
        RawSecret::Inline(s) => Ok(s.clone()),
        RawSecret::File { file } => {
            let p = doc
                .file
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join(file);
            super::files::read_secret_file(&p, super::files::MAX_SECRET_FILE_BYTES)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| {
                    doc.error_at(
                        path,
                        format!("cannot read secret file {}: {e}", p.display()),
                    )
                })
        }
        RawSecret::Env { env } => std::env::var(env).map_err(|_| {
            doc.error_at(
                path,
                format!("environment variable {env} is not set; valid: a set variable"),
            )
        }),
    }
}

/// Whether `name` can serve as a service or target name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
