//! `--sweep KEY=V1,V2,…`: the same history through each value of one
//! setting, applied to the core's configuration.

use crate::core::{CoreConfig, Failback};

/// Why a sweep cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Not `KEY=V1,V2`.
    #[error("{0:?} is not KEY=V1,V2,…; e.g. detection.fall=2,3,4")]
    Syntax(String),
    /// A key gwanje does not sweep.
    #[error("{0:?} cannot be swept; valid: {KEYS}")]
    Key(String),
    /// A value that does not fit the key.
    #[error("{value:?} is not valid for {key}: {why}")]
    Value {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What would be valid.
        why: &'static str,
    },
}

const KEYS: &str = "detection.fall, detection.rise, failback.after, hold_down, min_dwell, flap_guard.max_switches, flap_guard.window, isolation_window, path_quality.window, path_quality.degraded_loss, path_quality.tolerated_loss";

/// Splits `KEY=V1,V2` into the key and its values.
pub fn parse(spec: &str) -> Result<(String, Vec<String>), SweepError> {
    let (key, values) = spec
        .split_once('=')
        .ok_or_else(|| SweepError::Syntax(spec.into()))?;
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
    if key.is_empty() || values.iter().any(String::is_empty) || values.len() > 32 {
        return Err(SweepError::Syntax(spec.into()));
    }
    Ok((key.trim().to_string(), values))
}

/// `cfg` with `key` set to `value` (for every group and check it concerns).
pub fn apply(cfg: &CoreConfig, key: &str, value: &str) -> Result<CoreConfig, SweepError> {
    let bad = |why| SweepError::Value {
        key: key.into(),
        value: value.into(),
        why,
    };
    // The configuration's own bounds (README, Configuration).
    let ms = || -> Result<u64, SweepError> {
        humantime::parse_duration(value)
            .ok()
            .map(|d| d.as_millis() as u64)
            .filter(|ms| (1..=7 * 86_400_000).contains(ms))
            .ok_or_else(|| bad("a duration from 1ms to 7d, such as 500ms or 30s"))
    };
    let count = |max: u8, why: &'static str| -> Result<u8, SweepError> {
        value
            .parse::<u8>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| bad(why))
    };
    let ratio = || -> Result<u16, SweepError> {
        value
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .map(|r| (r * 1000.0).round() as u16)
            .ok_or_else(|| bad("a fraction from 0 to 1"))
    };
    let mut c = cfg.clone();
    // Detection thresholds are the checks' (through a group's paths).
    let checks: Vec<_> = c.groups.iter().flat_map(|g| g.checks.clone()).collect();
    let is_check = |s: &crate::core::Subject| matches!(s, crate::core::Subject::Check(t, _) if checks.contains(t));
    match key {
        "detection.fall" => {
            let n = count(64, "a whole number from 1 to 64")?;
            for s in c.subjects.iter_mut().filter(|s| is_check(&s.subject)) {
                s.policy.fall = n;
                s.policy.window = s.policy.window.max(n);
            }
        }
        "detection.rise" => {
            let n = count(64, "a whole number from 1 to 64")?;
            for s in c.subjects.iter_mut().filter(|s| is_check(&s.subject)) {
                s.policy.rise = n;
            }
        }
        "failback.after" => {
            let v = ms()?;
            for g in &mut c.groups {
                g.failback = Failback::Auto { after_ms: v };
            }
        }
        "hold_down" => {
            let v = ms()?;
            c.groups.iter_mut().for_each(|g| g.hold_down_ms = v);
        }
        "min_dwell" => {
            let v = ms()?;
            c.groups.iter_mut().for_each(|g| g.min_dwell_ms = v);
        }
        "isolation_window" => {
            let v = ms()?;
            c.groups.iter_mut().for_each(|g| g.isolation_window_ms = v);
        }
        "flap_guard.window" => {
            let v = ms()?;
            c.groups.iter_mut().for_each(|g| g.flap_guard.window_ms = v);
        }
        "flap_guard.max_switches" => {
            let n = u32::from(count(255, "a whole number from 1 to 255")?);
            c.groups
                .iter_mut()
                .for_each(|g| g.flap_guard.max_switches = n);
        }
        "path_quality.window" => c.quality.window_ms = ms()?.min(600_000),
        "path_quality.degraded_loss" => c.quality.degraded_permille = ratio()?,
        "path_quality.tolerated_loss" => c.quality.tolerated_permille = ratio()?,
        _ => return Err(SweepError::Key(key.into())),
    }
    if c.quality.tolerated_permille >= c.quality.degraded_permille {
        return Err(bad("a value that keeps tolerated_loss below degraded_loss"));
    }
    Ok(c)
}

/// One value's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// The value.
    pub value: String,
    /// Time from each incident's first failing probe to the path marked
    /// down, ms (`None`: not detected).
    pub detect_ms: Vec<Option<u64>>,
    /// Route changes.
    pub switches: usize,
    /// Those hindsight calls false.
    pub false_switches: usize,
    /// Alerts raised, by name.
    pub alerts: Vec<String>,
}

/// Runs `history` through `cfg` with each of `values` for `key`, the
/// values in parallel on the available cores (each run is independent and
/// deterministic, so the rows are the same as one after another).
pub fn sweep(
    history: &super::History,
    cfg: &CoreConfig,
    key: &str,
    values: &[String],
) -> Result<Vec<Row>, SweepError> {
    // Every value is checked before any run starts.
    let configs = values
        .iter()
        .map(|v| apply(cfg, key, v))
        .collect::<Result<Vec<_>, _>>()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut runs: Vec<Option<super::Run>> = vec![None; values.len()];
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots = std::sync::Mutex::new(&mut runs);
    std::thread::scope(|s| {
        for _ in 0..cores.min(values.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(c) = configs.get(i) else {
                        return;
                    };
                    let run = super::simulate(history, c);
                    slots.lock().expect("no run panics")[i] = Some(run);
                }
            });
        }
    });
    let runs: Vec<super::Run> = runs
        .into_iter()
        .map(|r| r.expect("every value ran"))
        .collect();
    // One pass of hindsight judges every value's switches.
    let hindsight = super::summary::hindsight(history, &runs.iter().collect::<Vec<_>>());
    Ok(runs
        .iter()
        .zip(values)
        .map(|(r, v)| row(&hindsight, r, v))
        .collect())
}

/// What one value's run decided.
fn row(hindsight: &super::summary::Hindsight, run: &super::Run, value: &str) -> Row {
    let s = super::summarise(hindsight, run);
    Row {
        value: value.to_string(),
        detect_ms: s
            .incidents
            .iter()
            .map(|i| i.detected.map(|d| d.saturating_sub(i.start)))
            .collect(),
        switches: s.switches.len(),
        false_switches: s.false_switches(),
        alerts: s.alerts.keys().cloned().collect(),
    }
}

/// The rows as a table, with `key` as the first column's title.
pub fn table(key: &str, rows: &[Row]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let detect = |r: &Row| {
        if r.detect_ms.is_empty() {
            return "no incident".to_string();
        }
        r.detect_ms
            .iter()
            .map(|d| d.map_or("missed".to_string(), super::summary::seconds))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let width = rows
        .iter()
        .map(|r| detect(r).len())
        .max()
        .unwrap_or(0)
        .max(30);
    let kw = key.len().max(6);
    let _ = writeln!(
        out,
        "{key:<kw$}  {:<width$}  switches  false  alerts",
        "time to detect (each incident)"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<kw$}  {:<width$}  {:>8}  {:>5}  {}",
            r.value,
            detect(r),
            r.switches,
            r.false_switches,
            if r.alerts.is_empty() {
                "none".into()
            } else {
                r.alerts.join(", ")
            }
        );
    }
    out
}
