//! Operator commands on failover groups: pin (with a TTL), unpin, unfreeze.
//! They move traffic, so they need the admin token — always.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::ApiState;
use crate::engine::{Command, CommandKind};

/// Longest pin an operator can set in one call.
const MAX_PIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Body of `POST /api/v1/groups/{group}/pin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// The path to pin.
    pub path: String,
    /// How long, e.g. `30m` (required: a pin never lasts forever).
    pub ttl: String,
    /// Who pins, for the record.
    pub by: Option<String>,
}

/// Body of unpin/unfreeze (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByRequest {
    /// Who, for the record.
    pub by: Option<String>,
}

#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself"
)]
pub(super) fn authorize(s: &ApiState, headers: &HeaderMap) -> Result<(), Response> {
    let token = s.reloader.token();
    if !token.is_set() {
        return Err((
            StatusCode::FORBIDDEN,
            "traffic-moving calls are disabled: set admin.token_file\n",
        )
            .into_response());
    }
    token.check(headers)
}

/// Reads a JSON body once the caller is known: nothing about the body (its
/// size, type or schema) is answered to someone without the token. An
/// empty body is `None`.
#[allow(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself"
)]
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    body: Body,
    example: &str,
) -> Result<Option<T>, Response> {
    let Ok(bytes) = axum::body::to_bytes(body, super::serve::MAX_BODY_BYTES).await else {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} KiB\n",
                super::serve::MAX_BODY_BYTES / 1024
            ),
        )
            .into_response());
    };
    if bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            format!("expected a JSON body like {example}\n"),
        )
            .into_response()
    })
}

/// Longest `by` (who did it) an operator can give.
pub const MAX_BY_CHARS: usize = 64;

async fn send(s: &ApiState, group: String, by: Option<String>, kind: CommandKind) -> Response {
    let (reply, answer) = oneshot::channel();
    let by = by.unwrap_or_else(|| "api".into());
    if by.is_empty()
        || by.chars().count() > MAX_BY_CHARS
        || by.chars().any(crate::logging::is_invisible)
    {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "`by` is not valid; valid: 1 to {MAX_BY_CHARS} characters without control characters, e.g. a name or ticket id\n"
            ),
        )
            .into_response();
    }
    if s.commands
        .send(Command {
            group,
            by,
            kind,
            reply,
        })
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "gwanje is shutting down\n").into_response();
    }
    match answer.await {
        Ok(Ok(())) => (StatusCode::OK, "done\n").into_response(),
        Ok(Err(e)) => {
            let status = match &e {
                crate::engine::CommandError::Alert {
                    why: crate::core::AckError::Resolved,
                    ..
                } => StatusCode::CONFLICT,
                crate::engine::CommandError::Coordination(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::NOT_FOUND,
            };
            (status, format!("{e}\n")).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "gwanje is shutting down\n").into_response(),
    }
}

/// Pins a group to a path for a while.
pub async fn pin(
    State(s): State<ApiState>,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(denied) = authorize(&s, &headers) {
        return denied;
    }
    let example = "{\"path\": \"standby\", \"ttl\": \"30m\"}";
    let req: PinRequest = match read_json(body, example).await {
        Ok(Some(req)) => req,
        Ok(None) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected a JSON body like {example}\n"),
            )
                .into_response();
        }
        Err(e) => return e,
    };
    let ttl = match humantime::parse_duration(&req.ttl) {
        Ok(t) if t > Duration::ZERO && t <= MAX_PIN => t,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "ttl {:?} is not valid; valid: a duration up to 7 days, like 30m\n",
                    req.ttl
                ),
            )
                .into_response();
        }
    };
    send(
        &s,
        group,
        req.by,
        CommandKind::Pin {
            path: req.path,
            ttl,
        },
    )
    .await
}

/// An authorized command whose body only says who asks.
async fn simple(
    s: ApiState,
    headers: HeaderMap,
    group: String,
    body: Body,
    kind: CommandKind,
) -> Response {
    if let Err(denied) = authorize(&s, &headers) {
        return denied;
    }
    match read_json::<ByRequest>(body, "{\"by\": \"kim\"}").await {
        Ok(req) => send(&s, group, req.and_then(|b| b.by), kind).await,
        Err(e) => e,
    }
}

/// Removes a pin.
pub async fn unpin(
    State(s): State<ApiState>,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    simple(s, headers, group, body, CommandKind::Unpin).await
}

/// Lifts a flap-guard freeze.
pub async fn unfreeze(
    State(s): State<ApiState>,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    simple(s, headers, group, body, CommandKind::Unfreeze).await
}

/// Acknowledges an alert: who and when are recorded, and it no longer escalates.
pub async fn ack(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    simple(s, headers, String::new(), body, CommandKind::Ack { id }).await
}
