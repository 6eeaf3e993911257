//! A history rebuilt from Prometheus when no journal exists: range queries
//! of `probe_success` (per service, target and path) and `gwanje_router_up`
//! become probe results at each step. What Prometheus cannot give is said
//! with the result (see [`limits`]).

use std::time::Duration;

use super::history::History;
use crate::core::{FailureKind, Input, Observation, PathName, Subject, TargetKey, Timestamp};
use crate::plan::Plan;

/// The most points Prometheus returns per series and query.
const MAX_POINTS: u64 = 11_000;
/// The most probe results filled in between samples, over all series.
const MAX_OBSERVATIONS: usize = 2_000_000;

/// Why the history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The request failed.
    #[error("querying {url}: {source}")]
    Request {
        /// The query URL (without credentials).
        url: String,
        /// What failed.
        source: reqwest::Error,
    },
    /// Prometheus answered something else than a matrix.
    #[error("unexpected answer from Prometheus for {0}")]
    Answer(String),
    /// An empty or reversed range.
    #[error("--from must be before --to")]
    Range,
}

/// The step a range of `span_ms` is read at: Prometheus's resolution, at
/// least one second.
pub fn step_seconds(span_ms: u64) -> u64 {
    (span_ms / 1000 / MAX_POINTS + 1).max(1)
}

/// What a history from Prometheus cannot tell, for the reader.
pub fn limits(step: u64) -> Vec<String> {
    vec![
        format!(
            "from Prometheus at a {step} s step: each sample stands for every probe since the one before (filled in at the probe's interval), so times are known to the step and anything shorter than the scrape interval is not seen"
        ),
        "failure classes are not in Prometheus: failures are replayed as timeouts".into(),
        "packet counts are not in Prometheus: path quality (loss over a window) is not judged"
            .into(),
        "operator commands (pins, acknowledgements) and route reads are not in Prometheus".into(),
    ]
}

/// Reads `probe_success` and `gwanje_router_up` from `url` over `from..to`
/// (Unix ms) into a history for `plan`.
pub fn history(url: &str, plan: &Plan, from: u64, to: u64) -> Result<History, PrometheusError> {
    if from >= to {
        return Err(PrometheusError::Range);
    }
    let step = step_seconds(to - from);
    // Credentials in the URL would show in every error: never echoed.
    let shown = url::Url::parse(url).map_or_else(
        |_| "the Prometheus URL".to_string(),
        |mut u| {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        },
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|_| PrometheusError::Answer("no runtime".into()))?;
    let client = crate::alert::http_client();
    let query = |q: &'static str| {
        let client = client.clone();
        let shown = shown.clone();
        let base = url.trim_end_matches('/').to_string();
        async move {
            let endpoint = format!("{base}/api/v1/query_range");
            let mut u = url::Url::parse(&endpoint)
                .map_err(|_| PrometheusError::Answer(format!("{shown} is not a URL")))?;
            u.query_pairs_mut()
                .append_pair("query", q)
                .append_pair("start", &format!("{:.3}", from as f64 / 1000.0))
                .append_pair("end", &format!("{:.3}", to as f64 / 1000.0))
                .append_pair("step", &format!("{step}s"));
            let r = client
                .get(u)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|source| PrometheusError::Request {
                    url: shown.clone(),
                    source: source.without_url(),
                })?;
            let v: serde_json::Value =
                r.json().await.map_err(|source| PrometheusError::Request {
                    url: shown.clone(),
                    source: source.without_url(),
                })?;
            v["data"]["result"]
                .as_array()
                .cloned()
                .ok_or_else(|| PrometheusError::Answer(q.into()))
        }
    };
    let (probes, routers, active) = rt.block_on(async {
        let p = query("probe_success{service!=\"\"}").await?;
        let r = query("gwanje_router_up").await?;
        let a = query("gwanje_group_active_path").await?;
        Ok::<_, PrometheusError>((p, r, a))
    })?;
    let mut h = History::default();
    h.config = Some(plan.core_config());
    h.span = (from, to);
    h.actuator_ms = 50;
    h.warnings = limits(step);
    let mut world = Vec::new();
    let label = |s: &serde_json::Value, k: &str| s["metric"][k].as_str().unwrap_or("").to_string();
    // A sample is the latest result when it was scraped: it stands for
    // every probe since the sample before, at the subject's own interval.
    let intervals: std::collections::HashMap<Subject, u64> = plan
        .jobs
        .iter()
        .map(|j| {
            (
                j.subject.clone(),
                j.target.interval.as_millis().max(1) as u64,
            )
        })
        .collect();
    let mut budget = MAX_OBSERVATIONS;
    let mut push = |subject: Subject, series: &serde_json::Value| {
        let Some(&every) = intervals.get(&subject) else {
            return;
        };
        let mut previous: Option<u64> = None;
        for v in series["values"].as_array().into_iter().flatten() {
            let (Some(t), Some(x)) = (v[0].as_f64(), v[1].as_str()) else {
                continue;
            };
            let at = (t * 1000.0) as u64;
            let failure = (x != "1").then_some(FailureKind::Timeout);
            let mut times = vec![at];
            if let Some(p) = previous {
                let mut t = at.saturating_sub(every);
                while t > p && budget > 0 {
                    times.push(t);
                    t = t.saturating_sub(every);
                    budget -= 1;
                }
            }
            previous = Some(at);
            for t in times {
                world.push((
                    Timestamp(t),
                    Input::ProbeCompleted(Observation {
                        subject: subject.clone(),
                        at: Timestamp(t),
                        failure,
                        cert_not_after: None,
                        packets: None,
                        duration_us: None,
                        rtt_us: None,
                        identity: None,
                    }),
                ));
            }
        }
    };
    for s in &probes {
        let key = TargetKey::new(&label(s, "service"), &label(s, "target"));
        let path = label(s, "path");
        let subject = if path.is_empty() {
            Subject::Target(key)
        } else {
            Subject::Check(key, PathName::new(&path))
        };
        push(subject, s);
    }
    for s in &routers {
        push(Subject::Router(PathName::new(&label(s, "path"))), s);
    }
    // The route at the start of the range: the first active path per group.
    for s in &active {
        let first = s["values"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v[1].as_str() == Some("1"))
            .and_then(|v| v[0].as_f64());
        if let Some(t) = first {
            let at = Timestamp((t * 1000.0) as u64);
            let group = crate::core::GroupName::new(&label(s, "group"));
            let path = Some(PathName::new(&label(s, "path")));
            let e = h.kernel.entry(group).or_insert((at, path.clone()));
            if at < e.0 {
                *e = (at, path);
            }
        }
    }
    world.sort_by_key(|(at, _)| *at);
    Ok(h.holding(world))
}
