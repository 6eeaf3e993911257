//! The HTTP API: `/metrics`, `/-/healthy`, `/-/ready`, `POST /-/reload`,
//! `GET /api/v1/status`, the group commands (pin, unpin, unfreeze), the
//! identity verification of a target and blackbox_exporter's `/probe`.
//!
//! Calls that change what gwanje does need the admin bearer token; those
//! that move traffic refuse to run when no token is configured. The API
//! listens on loopback unless configured otherwise.

mod groups;
mod observations;
mod probe;
mod serve;
mod verify;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::mpsc;

pub use serve::{Limits, serve};

use crate::control::Reloader;
use crate::engine::{Command, Shared};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Metrics, readiness and status, shared with the engine.
    pub shared: Shared,
    /// Reloads the configuration.
    pub reloader: Arc<Reloader>,
    /// Operator commands to the engine.
    pub commands: mpsc::Sender<Command>,
    /// What on-demand probes (identity verification) use.
    pub probes: Arc<crate::probe::ProbeContext>,
    /// One verification at a time: each can send thousands of requests.
    pub verifying: Arc<tokio::sync::Semaphore>,
    /// `/probe`'s name index, rebuilt when the plan changes.
    pub probe_index: Arc<probe::IndexCache>,
    /// One follower at a time reads results back from the journal.
    pub backlogs: Arc<tokio::sync::Semaphore>,
}

/// Builds the router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/probe", get(probe::probe))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/api/v1/status", get(status))
        .route("/api/v1/observations", get(observations::observations))
        .route("/api/v1/groups/{group}/pin", post(groups::pin))
        .route("/api/v1/groups/{group}/unpin", post(groups::unpin))
        .route("/api/v1/groups/{group}/unfreeze", post(groups::unfreeze))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{id}/ack", post(groups::ack))
        .route(
            "/api/v1/targets/{service}/{target}/verify",
            post(verify::verify),
        )
        .with_state(state)
}

/// The metrics in the format the scraper asks for, gzipped when it accepts that.
async fn metrics(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    use crate::metrics::exposition::{Format, Gzipped, accepts_gzip};
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(value(header::ACCEPT));
    let chunks = crate::metrics::Metrics::render_chunks(s.shared.metrics.clone())
        .map(move |chunk| format.convert(chunk))
        .chain(std::iter::once(format.trailer().to_string()));
    if accepts_gzip(value(header::ACCEPT_ENCODING)) {
        let body =
            futures_util::stream::iter(Gzipped::new(chunks).map(Ok::<_, std::convert::Infallible>));
        (
            [
                (header::CONTENT_TYPE, format.content_type()),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            axum::body::Body::from_stream(body),
        )
            .into_response()
    } else {
        let body = futures_util::stream::iter(chunks.map(Ok::<_, std::convert::Infallible>));
        (
            [(header::CONTENT_TYPE, format.content_type())],
            axum::body::Body::from_stream(body),
        )
            .into_response()
    }
}

async fn status(State(s): State<ApiState>) -> Response {
    let snapshot = s.shared.status.read().expect("status lock").clone();
    axum::Json(snapshot).into_response()
}

async fn alerts(State(s): State<ApiState>) -> Response {
    let alerts = s.shared.status.read().expect("status lock").alerts.clone();
    axum::Json(alerts).into_response()
}

/// How long the engine may stay silent before gwanje reports itself unhealthy.
const HEARTBEAT_STALE_SECONDS: f64 = 5.0;

/// Healthy while the engine beats: a listener alone does not make gwanje work.
async fn healthy(State(s): State<ApiState>) -> Response {
    let silent = crate::clock::unix_seconds() - s.shared.metrics.engine_heartbeat.get();
    if silent <= HEARTBEAT_STALE_SECONDS {
        (StatusCode::OK, "gwanje is healthy\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the engine has been silent for {silent:.0} s\n"),
        )
            .into_response()
    }
}

async fn ready(State(s): State<ApiState>) -> Response {
    if s.shared.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "gwanje is ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "gwanje is starting\n").into_response()
    }
}

async fn reload(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(denied) = s.reloader.token().check(&headers) {
        return denied;
    }
    match s.reloader.reload().await {
        Ok(later) if later.is_empty() => {
            (StatusCode::OK, "configuration reloaded\n").into_response()
        }
        Ok(later) => (
            StatusCode::OK,
            format!(
                "configuration reloaded; these changes take effect at the next restart: {}\n",
                later.join(", ")
            ),
        )
            .into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("configuration not reloaded; the running configuration stays in place:\n{e}\n"),
        )
            .into_response(),
    }
}
