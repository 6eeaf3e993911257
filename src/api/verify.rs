//! `POST /api/v1/targets/{service}/{target}/verify`: the pre-release gate
//! from the running daemon. It sends load to a production service, so it
//! needs the admin token, and one runs at a time.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ApiState;
use crate::verify::{self, Request, Verdict, VerifyError};

/// The longest verification the API runs: its requests must finish within
/// the listener's 60 s, with room for latency.
const API_LIMIT_SECONDS: u64 = 30;

/// Runs the identity flow of `service/target` and answers with the report.
pub async fn verify(
    State(s): State<ApiState>,
    Path((service, target)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(denied) = super::groups::authorize(&s, &headers) {
        return denied;
    }
    // Read only once the caller is known.
    let example = "{\"rounds\": 3, \"concurrency\": [1, 4]} (both optional)";
    let request: Request = match super::groups::read_json(body, example).await {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => return e,
    };
    // Bounded before any arithmetic on the request.
    if let Err(e) = request.check() {
        return (StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n")).into_response();
    }
    let Ok(_one) = s.verifying.clone().try_acquire_owned() else {
        return (
            StatusCode::CONFLICT,
            "a verification is already running; try again when it ends\n",
        )
            .into_response();
    };
    let key = format!("{service}/{target}");
    let found = verify::find(&s.reloader.plan(), &key).and_then(|t| {
        // Refused up front rather than cut off by the request limit with
        // its findings lost.
        let needs = verify::least_time(&t, &request).as_secs();
        if needs > API_LIMIT_SECONDS {
            return Err(VerifyError::TooLong {
                needs,
                limit: API_LIMIT_SECONDS,
            });
        }
        Ok(t)
    });
    let report = match found {
        Ok(t) => verify::run(&s.probes, t, &request).await,
        Err(e) => Err(e),
    };
    match report {
        Ok(report) => {
            let verdict = match report.verdict() {
                Verdict::Clean => "clean",
                Verdict::Exposed => "exposed",
                Verdict::Inconclusive => "inconclusive",
            };
            if verdict == "exposed" {
                tracing::error!(identity_target = %crate::logging::escape(&key), "identity verification failed: documents reached the wrong canary");
            }
            Json(serde_json::json!({ "verdict": verdict, "report": report })).into_response()
        }
        Err(e @ VerifyError::UnknownTarget(_)) => {
            (StatusCode::NOT_FOUND, format!("{e}\n")).into_response()
        }
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n")).into_response(),
    }
}
