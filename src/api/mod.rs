//! The HTTP API: `/metrics`, `/-/healthy`, `/-/ready` and `POST /-/reload`.
//!
//! Calls that change what gwanje does need the admin bearer token when one
//! is configured; the API listens on loopback unless configured otherwise.

mod auth;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use auth::AdminToken;

use crate::daemon::Reloader;
use crate::metrics::Metrics;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// Reloads the configuration.
    pub reloader: Arc<Reloader>,
    /// True once the first plan is being probed.
    pub ready: Arc<AtomicBool>,
}

/// Builds the router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "gwanje is healthy\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .with_state(state)
}

async fn metrics(State(s): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn ready(State(s): State<ApiState>) -> Response {
    if s.ready.load(Ordering::SeqCst) {
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
        Ok(()) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("configuration not reloaded; the running configuration stays in place:\n{e}\n"),
        )
            .into_response(),
    }
}
