//! Serves a port of a namespace (gwanje's API inside the edge) on the
//! host's loopback, so a browser, curl or Prometheus on the host can watch
//! it; stopped when dropped (or when the testbed is interrupted).

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::{Netns, TestbedError, interrupted};

/// Connections forwarded at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// A forwarded connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(30);

/// A running forwarder.
pub struct Forward {
    /// Where it listens on the host.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Binds `listen` and forwards each connection to `127.0.0.1:port` in `ns`
/// on a thread of its own, until dropped or interrupted.
pub fn start(listen: SocketAddr, ns: &Netns, port: u16) -> Result<Forward, TestbedError> {
    let io = |source| TestbedError::io(format!("listen {listen}"), "host", source);
    let listener = TcpListener::bind(listen).map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    let bound = listener.local_addr().map_err(io)?;
    let ns = ns.clone();
    let open = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        while !interrupted() && !stopped.load(Ordering::Relaxed) {
            let Ok((client, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                continue;
            }
            let upstream = ns.run(move || TcpStream::connect(("127.0.0.1", port)));
            let Ok(Ok(upstream)) = upstream else { continue };
            open.fetch_add(1, Ordering::Relaxed);
            let open = open.clone();
            std::thread::spawn(move || {
                relay(client, upstream);
                open.fetch_sub(1, Ordering::Relaxed);
            });
        }
    });
    Ok(Forward { addr: bound, stop })
}

fn relay(client: TcpStream, upstream: TcpStream) {
    let pair = client.set_nonblocking(false).and(
        client
            .try_clone()
            .and_then(|c| upstream.try_clone().map(|u| (c, u))),
    );
    let Ok((client2, upstream2)) = pair else {
        return;
    };
    for s in [&client, &upstream] {
        let _ = s.set_read_timeout(Some(IDLE));
    }
    let up = std::thread::spawn(move || copy(client2, upstream2));
    copy(upstream, client);
    let _ = up.join();
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
