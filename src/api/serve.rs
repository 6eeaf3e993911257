//! Serves the API with limits no client can get past: a cap on open
//! connections (the rest are closed at once, so their descriptors return to
//! the probes), a deadline for each request head that also ends idle
//! keep-alive connections, a deadline for each whole request, small header
//! buffers and bodies, and no chunked request bodies at all, so a request
//! whose framing two parsers could read differently never gets in.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::metrics::Metrics;

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// Time to send a request head, and the longest idle keep-alive.
    pub header_timeout: Duration,
    /// Time to read a whole request and answer it.
    pub request_timeout: Duration,
}

impl Limits {
    /// The defaults for `max_connections` connections, lowered so API
    /// clients never hold more than a quarter of the descriptors the
    /// process may open (`open_files`): the rest stay for probes.
    pub fn new(max_connections: usize, open_files: u64) -> Self {
        let share = usize::try_from(open_files.saturating_sub(64) / 4).unwrap_or(usize::MAX);
        Limits {
            max_connections: max_connections.min(share.max(16)),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// The largest request body any API call takes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Read buffer per connection, which bounds a request head's size.
const MAX_BUFFER_BYTES: usize = 16 * 1024;

/// Serves `app` on `listener` until `shutdown` resolves, then lets open
/// requests finish for up to five seconds.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let request_timeout = limits.request_timeout;
    let app = app
        .layer(middleware::from_fn(move |req, next| {
            guard(req, next, request_timeout)
        }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors or memory: wait instead of spinning.
                    tracing::warn!("accepting an API connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.api_connections_rejected.inc();
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let metrics = metrics.clone();
        let mut stopped = stopped.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            metrics.api_connections.inc();
            let mut conn = std::pin::pin!(
                hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .max_buf_size(MAX_BUFFER_BYTES)
                    .serve_connection(TokioIo::new(stream), service)
            );
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            metrics.api_connections.dec();
            drop(permit);
        });
    }
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), permits.acquire_many(all)).await;
    Ok(())
}

/// Refuses chunked request bodies and bounds each request's time.
async fn guard(req: Request, next: Next, timeout: Duration) -> Response {
    if req.headers().contains_key(header::TRANSFER_ENCODING) {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONNECTION, "close")],
            "Transfer-Encoding is not accepted; send a Content-Length\n",
        )
            .into_response();
    }
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            "the request took too long\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_clients_never_get_more_than_a_quarter_of_the_descriptors() {
        assert_eq!(Limits::new(256, 1 << 20).max_connections, 256);
        assert_eq!(Limits::new(256, 1024).max_connections, 240);
        assert_eq!(Limits::new(256, 100).max_connections, 16);
    }
}
