//! `GET /probe?target=…&module=…`, blackbox_exporter's endpoint, for a shop
//! that keeps its multi-target scrape configs while it moves to gwanje: it
//! answers the *latest result* of the configured target the parameter
//! names (its `service/target`, or the URL, `host:port`, host or DNS server
//! it probes). It never probes what it is given, so it cannot be made to
//! reach anything the catalogs do not name. `module` is accepted and
//! ignored: the catalog's settings are the module.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::ApiState;
use crate::core::{Subject, TargetKey};
use crate::plan::{Plan, ProbeSpec, Target};

/// The query string.
#[derive(Debug, serde::Deserialize)]
pub struct ProbeQuery {
    /// What to answer for.
    pub target: String,
    /// blackbox_exporter's module (ignored).
    #[allow(dead_code, reason = "accepted for blackbox_exporter scrape configs")]
    pub module: Option<String>,
}

/// Every name `/probe` answers for, built once per plan: a lookup costs one
/// hash, whatever the number of targets (an unauthenticated client must not
/// be able to make the listener scan the plan).
#[derive(Debug, Default)]
pub struct ProbeIndex {
    names: HashMap<String, usize>,
}

impl ProbeIndex {
    /// Indexes the directly probed targets of `plan`: by `service/target`
    /// first, then by what each probes (the first target in file order wins).
    pub fn build(plan: &Plan) -> Self {
        let direct: HashSet<&TargetKey> = plan
            .jobs
            .iter()
            .filter_map(|j| match &j.subject {
                Subject::Target(k) => Some(k),
                _ => None,
            })
            .collect();
        let mut names = HashMap::new();
        let targets = || {
            plan.targets
                .iter()
                .enumerate()
                .filter(|(_, t)| direct.contains(&t.key))
        };
        for (i, t) in targets() {
            names.entry(t.key.as_str().to_string()).or_insert(i);
        }
        for (i, t) in targets() {
            for alias in aliases(&t.probe) {
                names.entry(alias).or_insert(i);
            }
        }
        ProbeIndex { names }
    }

    /// The directly probed target `name` stands for, if one does.
    pub fn find<'a>(&self, plan: &'a Plan, name: &str) -> Option<&'a Target> {
        self.names
            .get(name)
            .and_then(|i| plan.targets.get(*i))
            .map(|t| &**t)
    }
}

/// What a target probes, as `/probe` may name it.
fn aliases(p: &ProbeSpec) -> Vec<String> {
    match p {
        ProbeSpec::Http(s) => vec![
            s.url.as_str().to_string(),
            s.url.as_str().trim_end_matches('/').to_string(),
        ],
        ProbeSpec::Tcp(s) => vec![format!("{}:{}", s.host, s.port)],
        ProbeSpec::Icmp(s) => vec![s.host.clone()],
        ProbeSpec::Dns(s) => vec![s.server.to_string(), s.server.ip().to_string()],
        ProbeSpec::Identity(s) => vec![s.base_url.as_str().to_string()],
    }
}

/// The index of `plan`, cached until the plan changes.
#[derive(Default)]
pub struct IndexCache(std::sync::Mutex<Option<(Arc<Plan>, Arc<ProbeIndex>)>>);

impl IndexCache {
    /// The index of `plan`, built when the plan is new.
    pub fn of(&self, plan: &Arc<Plan>) -> Arc<ProbeIndex> {
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((p, index)) if Arc::ptr_eq(p, plan) => index.clone(),
            _ => {
                let index = Arc::new(ProbeIndex::build(plan));
                *cached = Some((plan.clone(), index.clone()));
                index
            }
        }
    }
}

/// Answers with the latest result of the configured target `target` names.
pub async fn probe(State(s): State<ApiState>, Query(q): Query<ProbeQuery>) -> Response {
    let plan = s.reloader.plan();
    let Some(t) = s.probe_index.of(&plan).find(&plan, &q.target) else {
        return (
            StatusCode::BAD_REQUEST,
            "not a configured target; valid: the service/target of a directly probed target, or the URL, host:port, host or DNS server one probes (gwanje never probes what /probe is given)\n",
        )
            .into_response();
    };
    match s
        .shared
        .metrics
        .targets
        .render_probe(&Subject::Target(t.key.clone()))
    {
        Some(body) => (
            [(header::CONTENT_TYPE, crate::metrics::exposition::TEXT)],
            body,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no result for this target yet\n",
        )
            .into_response(),
    }
}
