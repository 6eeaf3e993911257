//! Serves gwanje's API (inside the edge namespace) on the host's loopback,
//! so a browser, curl or Prometheus on the host can watch the demo.

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::DemoError;
use crate::testbed::{Netns, interrupted};

/// Connections forwarded at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// A forwarded connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(30);

/// Binds `listen` and forwards each connection to `127.0.0.1:port` in `ns`
/// on a thread of its own, until the demo is interrupted; returns the
/// address bound.
pub fn start(listen: SocketAddr, ns: &Netns, port: u16) -> Result<SocketAddr, DemoError> {
    let io = |source| DemoError::Io {
        path: format!("listen {listen}").into(),
        source,
    };
    let listener = TcpListener::bind(listen).map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    let bound = listener.local_addr().map_err(io)?;
    let ns = ns.clone();
    let open = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        while !interrupted() {
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
    Ok(bound)
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
