//! The data centre's services, run on threads inside the server namespace:
//! the citizen portal (with certificate issuance), the administrative-network
//! application and its internal DNS, the mobile-ID API, and a UDP echo the
//! traffic meter uses.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;

use super::TestbedError;
use super::dns;
use super::netns::{Netns, NsThread};
use super::topology::{ADMIN_APP, DNS, MOBILE_ID, PORTAL};

/// The running services, stopped when dropped.
pub struct Services {
    stop: Arc<AtomicBool>,
    threads: Vec<NsThread<()>>,
}

fn portal() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/login",
            get(|| async { "<html><title>Citizen portal</title>sign in</html>" }),
        )
        // A synthetic document that names who asked for it, so a check can
        // tell whether each citizen got their own.
        .route(
            "/certificates/{citizen}",
            get(|Path(citizen): Path<String>| async move {
                let citizen: String = citizen
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(32)
                    .collect();
                format!("certificate of residence for {citizen}")
            }),
        )
}

fn admin_app() -> Router {
    Router::new().route("/", get(|| async { "administrative network: ok" }))
}

fn mobile_id() -> Router {
    Router::new().route("/health", get(|| async { "{\"status\":\"ok\"}" }))
}

impl Services {
    /// Starts every service in `server`.
    pub fn start(server: &Netns) -> Result<Self, TestbedError> {
        let stop = Arc::new(AtomicBool::new(false));
        let echo_stop = stop.clone();
        // A socket keeps the namespace it was made in.
        let echo = server
            .run(|| UdpSocket::bind((PORTAL, 7)))?
            .map_err(|e| TestbedError::io("bind UDP echo", server.0.clone(), e))?;
        echo.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| TestbedError::io("UDP echo timeout", server.0.clone(), e))?;
        let echo = server.spawn(move || {
            let mut buf = [0u8; 2048];
            while !echo_stop.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = echo.recv_from(&mut buf) {
                    let _ = echo.send_to(&buf[..n], peer);
                }
            }
        })?;
        let (bound, ready) = std::sync::mpsc::channel();
        let app_stop = stop.clone();
        let apps = server.spawn(move || {
            let served = serve_all(app_stop, &bound);
            if let Err(e) = served {
                let _ = bound.send(Err(e));
            }
        })?;
        let services = Services {
            stop,
            threads: vec![echo, apps],
        };
        match ready.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(services),
            Ok(Err(e)) => Err(TestbedError::io("start services", server.0.clone(), e)),
            Err(_) => Err(TestbedError::Thread(server.0.clone())),
        }
    }

    /// Stops every service (their ports then refuse connections).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

type Ready = std::sync::mpsc::Sender<Result<(), std::io::Error>>;

fn serve_all(stop: Arc<AtomicBool>, bound: &Ready) -> Result<(), std::io::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let http = |addr: &'static str| tokio::net::TcpListener::bind((addr, 80));
        let (p, a, m) = (
            http(PORTAL).await?,
            http(ADMIN_APP).await?,
            http(MOBILE_ID).await?,
        );
        let dns = tokio::net::UdpSocket::bind((DNS, 53)).await?;
        let _ = bound.send(Ok(()));
        let stopped = move || {
            let stop = stop.clone();
            async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let serve = |l, app: Router, done| async move {
            let _ = axum::serve(l, app).with_graceful_shutdown(done).await;
        };
        // The servers end on the stop flag; the DNS loop ends with them.
        tokio::select! {
            _ = async {
                tokio::join!(
                    serve(p, portal(), stopped()),
                    serve(a, admin_app(), stopped()),
                    serve(m, mobile_id(), stopped()),
                )
            } => {}
            _ = dns::serve(dns) => {}
        }
        Ok(())
    })
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
