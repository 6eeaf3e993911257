//! The pre-release gate: run an identity target's flow on demand at rising
//! concurrency and say whether any canary got another's document. Used by
//! `gwanje verify` (a deployment pipeline) and by the daemon's
//! `POST /api/v1/targets/{service}/{target}/verify`.

use std::fmt;
use std::sync::Arc;

use crate::config::identity_limits::{MAX_CONCURRENCY, MAX_ROUNDS};
use crate::core::{FailureKind, Mismatch};
use crate::plan::{Plan, ProbeSpec, Target};
use crate::probe::identity::Load;
use crate::probe::{ProbeContext, Prober};

/// The most concurrency levels one verification runs.
pub const MAX_LEVELS: usize = 8;

/// Why a verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The target is not in the plan.
    #[error("no target {0:?} in the configuration; valid: SERVICE/TARGET of an identity target")]
    UnknownTarget(String),
    /// The target exists but probes something else.
    #[error("target {0:?} is a {1} probe; valid: an identity target")]
    NotIdentity(String, &'static str),
    /// More than the caller can wait for.
    #[error(
        "the verification needs at least {needs} s at the target's request rate; the API answers within {limit} s: use fewer rounds or levels, or gwanje verify"
    )]
    TooLong {
        /// Seconds it needs at least.
        needs: u64,
        /// Seconds the caller waits.
        limit: u64,
    },
    /// A bad number of rounds or concurrency level.
    #[error(
        "{0}; valid: rounds 1 to {MAX_ROUNDS}, 1 to {MAX_LEVELS} concurrency levels of 1 to {MAX_CONCURRENCY}"
    )]
    Bounds(String),
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Rounds at each level.
    #[serde(default = "default_rounds")]
    pub rounds: u32,
    /// Flows at once, one level after another.
    #[serde(default = "default_levels")]
    pub concurrency: Vec<usize>,
}

fn default_rounds() -> u32 {
    10
}

fn default_levels() -> Vec<usize> {
    vec![1, 4, 16, 64]
}

impl Default for Request {
    fn default() -> Self {
        Request {
            rounds: default_rounds(),
            concurrency: default_levels(),
        }
    }
}

impl Request {
    /// Refuses rounds, levels or concurrency out of their bounds.
    pub fn check(&self) -> Result<(), VerifyError> {
        let bad = |m: String| Err(VerifyError::Bounds(m));
        if !(1..=MAX_ROUNDS).contains(&self.rounds) {
            return bad(format!("{} rounds", self.rounds));
        }
        if self.concurrency.is_empty() || self.concurrency.len() > MAX_LEVELS {
            return bad(format!("{} concurrency levels", self.concurrency.len()));
        }
        if let Some(c) = self
            .concurrency
            .iter()
            .find(|c| !(1..=MAX_CONCURRENCY).contains(*c))
        {
            return bad(format!("concurrency {c}"));
        }
        Ok(())
    }
}

/// One concurrency level's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Level {
    /// Flows at once.
    pub concurrency: usize,
    /// The most requests that were in flight at one moment.
    pub peak_in_flight: u32,
    /// Rounds run.
    pub rounds: u32,
    /// Requests sent.
    pub requests: u32,
    /// Responses that were a document not the canary's own.
    pub mismatches: u32,
    /// Responses with a registration number they may not carry.
    pub personal_data: u32,
    /// The first mismatches (canary ids and steps only).
    pub first_mismatches: Vec<Mismatch>,
    /// The failure class of the level, if any (`identity_mismatch` first).
    pub failure: Option<&'static str>,
    /// What failed, in words (no content).
    pub detail: Option<String>,
    /// Median request latency, seconds.
    pub latency_p50: Option<f64>,
    /// 95th-percentile request latency, seconds.
    pub latency_p95: Option<f64>,
    /// Slowest request, seconds.
    pub latency_max: Option<f64>,
}

/// The whole verification.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// `SERVICE/TARGET`.
    pub target: String,
    /// One entry per level, in the order run.
    pub levels: Vec<Level>,
}

/// The verdict, for exit codes and HTTP answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every canary got only its own documents.
    Clean,
    /// A canary got another's document, or a number it may not see.
    Exposed,
    /// The flow failed otherwise: nothing was proven either way.
    Inconclusive,
}

impl Report {
    /// The verdict over every level.
    pub fn verdict(&self) -> Verdict {
        if self
            .levels
            .iter()
            .any(|l| l.mismatches > 0 || l.personal_data > 0)
        {
            Verdict::Exposed
        } else if self.levels.iter().any(|l| l.failure.is_some()) {
            Verdict::Inconclusive
        } else {
            Verdict::Clean
        }
    }
}

/// The least time `request` takes against `target` (the pacing alone).
pub fn least_time(target: &Target, request: &Request) -> std::time::Duration {
    let ProbeSpec::Identity(spec) = &target.probe else {
        return std::time::Duration::ZERO;
    };
    request
        .concurrency
        .iter()
        .map(|c| spec.least_run_time(request.rounds, *c))
        .fold(
            std::time::Duration::ZERO,
            std::time::Duration::saturating_add,
        )
}

/// Finds `key` (`SERVICE/TARGET`) in `plan` as an identity target.
pub fn find(plan: &Plan, key: &str) -> Result<Arc<Target>, VerifyError> {
    let t = plan
        .targets
        .iter()
        .find(|t| t.key.as_str() == key)
        .ok_or_else(|| VerifyError::UnknownTarget(key.to_string()))?;
    match t.probe {
        ProbeSpec::Identity(_) => Ok(t.clone()),
        ref other => Err(VerifyError::NotIdentity(key.to_string(), other.kind())),
    }
}

/// Runs `request` against `target`, one level after another; each round is
/// bounded by the target's timeout.
pub async fn run(
    ctx: &ProbeContext,
    target: Arc<Target>,
    request: &Request,
) -> Result<Report, VerifyError> {
    request.check()?;
    let key = target.key.as_str().to_string();
    if !matches!(target.probe, ProbeSpec::Identity(_)) {
        return Err(VerifyError::NotIdentity(key, target.probe.kind()));
    }
    let prober = Prober::new(target);
    let mut levels = Vec::new();
    for &concurrency in &request.concurrency {
        let load = Load {
            concurrency,
            rounds: request.rounds,
        };
        let (failure, d) = prober
            .verify(ctx, load)
            .await
            .expect("checked: an identity target");
        levels.push(Level {
            concurrency,
            peak_in_flight: d.peak_in_flight,
            rounds: request.rounds,
            requests: d.findings.requests,
            mismatches: d.findings.mismatches,
            personal_data: d.findings.personal_data,
            first_mismatches: d.findings.first,
            failure: failure.as_ref().map(|f| f.kind.as_str()),
            detail: failure.map(|f| f.detail),
            latency_p50: d.latency_p50,
            latency_p95: d.latency_p95,
            latency_max: d.latency_max,
        });
    }
    Ok(Report {
        target: key,
        levels,
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "identity verification of {}", self.target)?;
        writeln!(
            f,
            "{:>11} {:>9} {:>6} {:>8} {:>10} {:>13} {:>8} {:>8} {:>8}",
            "concurrency",
            "in flight",
            "rounds",
            "requests",
            "mismatches",
            "personal_data",
            "p50 ms",
            "p95 ms",
            "max ms"
        )?;
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{:.1}", s * 1000.0));
        for l in &self.levels {
            writeln!(
                f,
                "{:>11} {:>9} {:>6} {:>8} {:>10} {:>13} {:>8} {:>8} {:>8}",
                l.concurrency,
                l.peak_in_flight,
                l.rounds,
                l.requests,
                l.mismatches,
                l.personal_data,
                ms(l.latency_p50),
                ms(l.latency_p95),
                ms(l.latency_max)
            )?;
        }
        for l in &self.levels {
            for m in &l.first_mismatches {
                writeln!(
                    f,
                    "  at concurrency {}: {}",
                    l.concurrency,
                    crate::core::render::mismatch(m)
                )?;
            }
            if let (Some(kind), Some(detail)) = (l.failure, &l.detail)
                && kind != FailureKind::IdentityMismatch.as_str()
            {
                writeln!(f, "  at concurrency {}: {kind}: {detail}", l.concurrency)?;
            }
        }
        let verdict = match self.verdict() {
            Verdict::Clean => "PASS: every canary received only its own documents",
            Verdict::Exposed => {
                "FAIL: documents reached the wrong canary or carried a registration number they may not; do not release"
            }
            Verdict::Inconclusive => "INCONCLUSIVE: the flow failed before it could be verified",
        };
        writeln!(f, "{verdict}")
    }
}
