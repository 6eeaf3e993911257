//! Serves the API with limits no client can get past: a cap on open
//! connections, a deadline for each request head that also ends idle
//! keep-alive connections, a deadline for each whole request, a deadline
//! for every write (a client that stops reading is cut off), a lifetime and
//! a request count per connection, small header buffers and bodies, and no
//! chunked request bodies at all, so a request whose framing two parsers
//! could read differently never gets in.
//!
//! When every connection slot is taken, the connection that has made no
//! progress (read or written a byte) for longest, and is not inside a
//! handler, is closed to make room: a flood of clients that never read
//! cannot keep health checks and scrapes out. A new connection gets
//! [`EVICT_GRACE`] before it can be chosen.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

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
    /// Longest a write may wait for the client to read.
    pub write_stall: Duration,
    /// Longest a connection stays open (then it is closed gracefully).
    pub connection_lifetime: Duration,
    /// Requests on one connection; the last is answered with `Connection: close`.
    pub max_requests: u32,
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
            write_stall: Duration::from_secs(5),
            connection_lifetime: Duration::from_secs(70),
            max_requests: 100,
        }
    }
}

/// The largest request body any API call takes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Read buffer per connection, which bounds a request head's size.
const MAX_BUFFER_BYTES: usize = 16 * 1024;
/// A connection younger than this, or that made progress more recently,
/// is never closed to make room.
pub const EVICT_GRACE: Duration = Duration::from_secs(1);
/// A connection whose writes have waited this long for its client to read
/// may be closed to make room, however young it is.
pub const STALL_EVICTABLE: Duration = Duration::from_millis(100);
/// The kernel's send buffer per connection (Linux doubles it).
const SEND_BUFFER_BYTES: usize = 16 * 1024;
/// How long a connection closed for its lifetime may finish what it does.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// One open connection, as the eviction sees it.
struct Conn {
    /// When it last read or wrote a byte, ms since the listener started.
    progress: AtomicU64,
    /// Requests inside a handler now.
    in_handler: AtomicU32,
    /// Wakes its task to close it.
    evict: Notify,
    /// Since when a write has waited for the client to read (ms since the
    /// listener started, 0 when none waits).
    stalled_since: AtomicU64,
    /// Already asked to close, or closing: never chosen again.
    closing: std::sync::atomic::AtomicBool,
    /// Its connection slot, handed to the newcomer when it is evicted.
    slot: Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

/// Every open connection.
struct Registry {
    start: tokio::time::Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn open(&self, id: u64, slot: Option<tokio::sync::OwnedSemaphorePermit>) -> Arc<Conn> {
        let c = Arc::new(Conn {
            progress: AtomicU64::new(self.ms()),
            in_handler: AtomicU32::new(0),
            evict: Notify::new(),
            stalled_since: AtomicU64::new(0),
            closing: std::sync::atomic::AtomicBool::new(false),
            slot: Mutex::new(slot),
        });
        self.lock().insert(id, c.clone());
        c
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks a connection to close and takes its slot for the newcomer at
    /// once (the victim's task ends a moment later): one whose writes have
    /// waited for its client to read for [`STALL_EVICTABLE`], whatever its
    /// age (a client that never reads), else the one that made no progress
    /// for longest, past [`EVICT_GRACE`]. Never one inside a handler.
    fn evict_one(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let now = self.ms();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let conns = self.lock();
        let open = || {
            conns
                .values()
                .filter(|c| c.in_handler.load(Ordering::Relaxed) == 0)
                .filter(|c| !c.closing.load(Ordering::Relaxed))
        };
        let stalled = open()
            .map(|c| (c.stalled_since.load(Ordering::Relaxed), c))
            .filter(|(t, _)| *t > 0 && now.saturating_sub(*t) >= ms(STALL_EVICTABLE))
            .min_by_key(|(t, _)| *t);
        let idle = || {
            open()
                .map(|c| (c.progress.load(Ordering::Relaxed), c))
                .filter(|(p, _)| now.saturating_sub(*p) >= ms(EVICT_GRACE))
                .min_by_key(|(p, _)| *p)
        };
        let victim = stalled.or_else(idle).map(|(_, c)| c.clone());
        drop(conns);
        let c = victim?;
        c.closing.store(true, Ordering::Relaxed);
        c.evict.notify_one();
        c.slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A stream that records progress and fails a write the client does not
/// read within `stall`.
struct Watched<S> {
    inner: S,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    stall: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Watched<S> {
    fn progressed(&mut self) {
        self.deadline = None;
        self.conn.stalled_since.store(0, Ordering::Relaxed);
        self.conn
            .progress
            .store(self.registry.ms(), Ordering::Relaxed);
    }

    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if self.deadline.is_none() {
            // Never 0, which means "not stalled".
            let at = self.registry.ms().max(1);
            self.conn.stalled_since.store(at, Ordering::Relaxed);
        }
        let stall = self.stall;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let at = self.registry.ms();
            self.conn.progress.store(at, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.stalled(cx),
            done => {
                this.progressed();
                done
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.stalled(cx),
            done => {
                this.progressed();
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.stalled(cx),
            done => done,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a request inside a handler while it lives.
struct InHandler(Arc<Conn>);

impl InHandler {
    fn enter(conn: &Arc<Conn>) -> Self {
        conn.in_handler.fetch_add(1, Ordering::Relaxed);
        InHandler(conn.clone())
    }
}

impl Drop for InHandler {
    fn drop(&mut self) {
        self.0.in_handler.fetch_sub(1, Ordering::Relaxed);
    }
}

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
    let registry = Arc::new(Registry {
        start: tokio::time::Instant::now(),
        conns: Mutex::new(HashMap::new()),
    });
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next_id = 0u64;
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
        // Full: the stalest connection's slot goes to the newcomer at once.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => match registry.evict_one() {
                Some(p) => {
                    metrics.api_connections_evicted.inc();
                    p
                }
                None => {
                    metrics.api_connections_rejected.inc();
                    drop(stream);
                    continue;
                }
            },
        };
        // A small send buffer: a client that does not read stalls after
        // one answer or two, instead of having the kernel queue megabytes
        // (and gwanje render them).
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER_BYTES);
        next_id += 1;
        let id = next_id;
        let conn = registry.open(id, Some(permit));
        let tower = TowerToHyperService::new(app.clone());
        let max_requests = limits.max_requests;
        let served = Arc::new(AtomicU32::new(0));
        let in_conn = conn.clone();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            use hyper::service::Service as _;
            let n = served.fetch_add(1, Ordering::Relaxed) + 1;
            let busy = InHandler::enter(&in_conn);
            let answer = tower.call(req);
            async move {
                let mut response = answer.await?;
                drop(busy);
                if n >= max_requests {
                    response.headers_mut().insert(
                        header::CONNECTION,
                        header::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let metrics = metrics.clone();
        let mut stopped = stopped.clone();
        let registry = registry.clone();
        let header_timeout = limits.header_timeout;
        let lifetime = limits.connection_lifetime;
        let io = Watched {
            inner: stream,
            conn: conn.clone(),
            registry: registry.clone(),
            stall: limits.write_stall,
            deadline: None,
        };
        tokio::spawn(async move {
            metrics.api_connections.inc();
            let mut conn_fut = std::pin::pin!(
                hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .max_buf_size(MAX_BUFFER_BYTES)
                    .serve_connection(TokioIo::new(io), service)
            );
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            // Closing gracefully: a request inside a handler may finish
            // within its own deadline, anything else within CLOSE_GRACE.
            let grace = |conn: &Conn| {
                conn.closing.store(true, Ordering::Relaxed);
                if conn.in_handler.load(Ordering::Relaxed) > 0 {
                    request_timeout + CLOSE_GRACE
                } else {
                    CLOSE_GRACE
                }
            };
            tokio::select! {
                _ = conn_fut.as_mut() => {}
                () = conn.evict.notified() => {}
                () = tokio::time::sleep(lifetime) => {
                    conn_fut.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(grace(&conn), conn_fut.as_mut()).await;
                }
                () = stop => {
                    conn_fut.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(grace(&conn), conn_fut.as_mut()).await;
                }
            }
            registry.lock().remove(&id);
            metrics.api_connections.dec();
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
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_never_reads_fails_after_the_stall_deadline() {
        let (near, _far) = tokio::io::duplex(1024);
        let registry = Arc::new(Registry {
            start: tokio::time::Instant::now(),
            conns: Mutex::new(HashMap::new()),
        });
        let slots = Arc::new(Semaphore::new(1));
        let conn = registry.open(1, Some(slots.clone().try_acquire_owned().unwrap()));
        let mut w = Watched {
            inner: near,
            conn,
            registry: registry.clone(),
            stall: Duration::from_secs(5),
            deadline: None,
        };
        let started = tokio::time::Instant::now();
        let e = w.write_all(&[0u8; 1 << 20]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        // Stalled past the grace and outside any handler: evictable.
        tokio::time::advance(EVICT_GRACE).await;
        // Its slot goes straight to the newcomer.
        let handed = registry.evict_one();
        assert!(handed.is_some());
        assert!(registry.evict_one().is_none(), "never chosen twice");
        assert_eq!(slots.available_permits(), 0, "the slot is the newcomer's");
        drop(handed);
        assert_eq!(slots.available_permits(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_inside_a_handler_or_fresh_is_never_evicted() {
        let registry = Registry {
            start: tokio::time::Instant::now(),
            conns: Mutex::new(HashMap::new()),
        };
        let busy = registry.open(1, None);
        let _inside = InHandler::enter(&busy);
        tokio::time::advance(Duration::from_secs(30)).await;
        let _fresh = registry.open(2, None);
        assert!(registry.evict_one().is_none());
    }

    #[test]
    fn api_clients_never_get_more_than_a_quarter_of_the_descriptors() {
        assert_eq!(Limits::new(256, 1 << 20).max_connections, 256);
        assert_eq!(Limits::new(256, 1024).max_connections, 240);
        assert_eq!(Limits::new(256, 100).max_connections, 16);
    }
}
