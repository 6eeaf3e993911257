//! `GET /api/v1/observations?after=SEQ`: this instance's probe results as
//! they happen, for peers that follow it. Read-only: the observer token
//! (or the admin token) is required, and there is no default without one.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiState;
use crate::control::AdminToken;

/// The query: resume after this sequence number (absent: from now on).
#[derive(Debug, serde::Deserialize)]
pub struct After {
    after: Option<u64>,
}

pub async fn observations(
    State(s): State<ApiState>,
    Query(q): Query<After>,
    headers: HeaderMap,
) -> Response {
    let plan = s.reloader.plan();
    let admin = s.reloader.token();
    let observer = match AdminToken::load(plan.settings.observer_token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("reading admin.observer_token_file: {e}");
            AdminToken::default()
        }
    };
    if !admin.is_set() && !observer.is_set() {
        return (
            StatusCode::FORBIDDEN,
            "the observation stream needs a token: configure admin.observer_token_file\n",
        )
            .into_response();
    }
    let allowed = [&observer, &admin]
        .into_iter()
        .filter(|t| t.is_set())
        .any(|t| t.check(&headers).is_ok());
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a valid observer or admin bearer token is required\n",
        )
            .into_response();
    }
    let hub = s.shared.observations.clone();
    // What the core has counted (a restart restores it before the hub
    // holds anything).
    let counted = s
        .shared
        .status
        .read()
        .expect("status lock")
        .vantage
        .as_ref()
        .map_or(0, |v| v.seq);
    let last = hub.last().max(counted);
    // A follower ahead of us saw an older numbering (we restarted without
    // our journal): it gets what we hold, and sees the numbers go back.
    let after = match q.after {
        Some(a) if a > last => 0,
        Some(a) => a,
        None => last,
    };
    // Older than the hub holds: read back from the journal, if there is one.
    let until = match hub.oldest() {
        Some(oldest) if after + 1 < oldest => Some(oldest),
        None if after < counted => Some(counted + 1),
        _ => None,
    };
    let backlog = match (until, &plan.settings.journal) {
        (None, _) => None,
        (Some(until), Some(journal)) => {
            let Ok(one) = s.backlogs.clone().try_acquire_owned() else {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "5")],
                    "another follower is reading back from the journal; try again shortly\n",
                )
                    .into_response();
            };
            let (dir, v) = (journal.dir.clone(), plan.settings.vantage.clone());
            // The permit goes with the read: a follower that gives up does
            // not let a second read start beside it.
            let read = tokio::task::spawn_blocking(move || {
                let _one = one;
                crate::vantage::backlog::read(&dir, after, until, v.name.as_str(), &v.controls)
            })
            .await;
            match read {
                Ok(Ok(b)) => Some(b),
                Ok(Err(e)) => {
                    tracing::warn!("reading the journal back for a follower: {e}");
                    return gone(after, until);
                }
                Err(e) => {
                    tracing::error!("reading the journal back for a follower: {e}");
                    return gone(after, until);
                }
            }
        }
        (Some(until), None) => return gone(after, until),
    };
    let zstd = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.trim().split(';').next() == Some("zstd"))
        });
    let body = hub.stream(
        plan.settings.vantage.name.to_string(),
        after,
        backlog,
        zstd,
        crate::clock::now,
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response();
    if zstd {
        response.headers_mut().insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("zstd"),
        );
    }
    response
}

/// What a follower gets when what it asks for is held nowhere.
fn gone(after: u64, until: u64) -> Response {
    (
        StatusCode::GONE,
        format!(
            "results after {after} are no longer held (the oldest held is {until}); resume from now (no `after`)\n"
        ),
    )
        .into_response()
}
