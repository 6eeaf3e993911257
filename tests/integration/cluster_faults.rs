//! A replica whose etcd cannot be used from the start: one that never
//! answers, and one whose certificate the configured CA did not sign. Each
//! is named in the log, paged as CoordinationLost, and the replica keeps
//! monitoring (fail-static). Loopback only: the "etcd" endpoints are
//! sockets this test bound.

use std::sync::Arc;
use std::time::Duration;

use crate::common;
use common::daemon::Daemon;
use common::plan::ConfigDir;

/// A replica of cluster `c` on `endpoint`, probing the test's own listener.
fn replica(endpoint: &str, extra: &str, probed: std::net::SocketAddr) -> ConfigDir {
    let settings = format!(
        "listen: 127.0.0.1:0\ncluster:\n  name: c\n  actuate: false\n  etcd:\n    endpoints: ['{endpoint}']\n{extra}"
    );
    let catalog = common::plan::one_target(&format!(
        "interval: 500ms\ntimeout: 200ms\ntcp: {{address: '{probed}'}}"
    ));
    ConfigDir::new(&settings, &[("svc", &catalog)])
}

/// Waits until the status says coordination is lost with `reason`, the
/// alert fires, and probes still run.
async fn fails_static(d: &mut Daemon, reason: &str) -> serde_json::Value {
    d.wait_ready(Duration::from_secs(10)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let body = common::client::get(d.addr, "/api/v1/status")
            .await
            .expect("status")
            .body;
        let s: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let paged = s["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["name"] == "CoordinationLost"));
        if s["cluster"]["role"] == "lost" && s["cluster"]["lost"] == reason && paged {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not lost ({reason}) in time: {s:#}\nlog:\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_etcd_that_never_answers_leaves_a_replica_monitoring_and_paging() {
    // Accepts connections (the kernel's backlog) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let probed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = replica(
        &format!("http://{}", silent.local_addr().unwrap()),
        "",
        probed.local_addr().unwrap(),
    );
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    fails_static(&mut d, "unreachable").await;
    d.scrape_until(Duration::from_secs(10), |s| {
        common::expo::sum(s, "gwanje_probes_total", &[]) >= 2.0
    })
    .await;
    let log = d.log_text();
    assert!(log.contains("coordination lost"), "{log}");
    assert!(log.contains("etcd did not answer"), "{log}");
    drop(silent);
}

#[tokio::test]
async fn an_etcd_whose_certificate_the_ca_did_not_sign_is_refused() {
    let certs = common::certs::generate();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        certs.self_signed.chain.clone(),
        certs.self_signed.key.clone_key(),
    )
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = handshakes.clone();
    let server = tokio::spawn(async move {
        // Bounded: the test ends well before.
        for _ in 0..1000 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), acceptor.accept(tcp)).await;
            });
        }
    });
    let probed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = replica(
        &format!("https://localhost:{}", addr.port()),
        &format!("    ca_file: {}\n", certs.ca_file.display()),
        probed.local_addr().unwrap(),
    );
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    fails_static(&mut d, "unreachable").await;
    assert!(
        handshakes.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "gwanje tried the TLS endpoint"
    );
    let log = d.log_text();
    assert!(log.contains("coordination lost"), "{log}");
    assert!(log.contains("certificate"), "the log says why: {log}");
    server.abort();
}
