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

use super::ApiState;
use crate::core::Subject;
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

/// The directly probed target `name` stands for, if one does.
pub fn find<'a>(plan: &'a Plan, name: &str) -> Option<&'a Target> {
    let direct = || {
        plan.targets.iter().filter(|t| {
            plan.jobs
                .iter()
                .any(|j| j.subject == Subject::Target(t.key.clone()))
        })
    };
    direct()
        .find(|t| t.key.as_str() == name)
        .map(|t| &**t)
        .or_else(|| {
            direct()
                .find(|t| match &t.probe {
                    ProbeSpec::Http(s) => {
                        s.url.as_str() == name || s.url.as_str().trim_end_matches('/') == name
                    }
                    ProbeSpec::Tcp(s) => format!("{}:{}", s.host, s.port) == name,
                    ProbeSpec::Icmp(s) => s.host == name,
                    ProbeSpec::Dns(s) => {
                        s.server.to_string() == name || s.server.ip().to_string() == name
                    }
                    ProbeSpec::Identity(s) => s.base_url.as_str() == name,
                })
                .map(|t| &**t)
        })
}

/// Answers with the latest result of the configured target `target` names.
pub async fn probe(State(s): State<ApiState>, Query(q): Query<ProbeQuery>) -> Response {
    let plan = s.reloader.plan();
    let Some(t) = find(&plan, &q.target) else {
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
