//! HTTP and HTTPS servers on loopback with the routes the probe tests use.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::Server;
use super::certs::Identity;

/// A resident registration number with a valid check digit (test data).
pub const VALID_RRN: &str = "900101-1234568";

/// The `Last-Modified` header of `/modified` (1445412480 s since the epoch).
pub const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

/// The routes every test server serves.
pub fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { "<html><title>Citizen Portal</title><body>welcome</body></html>" }),
        )
        .route(
            "/status/{code}",
            get(
                |axum::extract::Path(code): axum::extract::Path<u16>| async move {
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                },
            ),
        )
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/")]) }),
        )
        .route(
            "/redirect-loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/redirect-loop")]) }),
        )
        .route(
            "/json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"status":"ok","queue":{"depth":3},"version":"1.2"}"#,
                )
            }),
        )
        .route(
            "/json-degraded",
            get(|| async { r#"{"status":"degraded"}"# }),
        )
        .route(
            "/pii",
            get(|| async { format!("<p>Applicant: Hong Gildong, {VALID_RRN}</p>") }),
        )
        .route(
            "/pii-spelled",
            get(|| async {
                // Fullwidth digits, an en dash between no-break spaces, markup.
                let (a, b) = VALID_RRN.split_once('-').unwrap();
                let fw: String = a
                    .chars()
                    .map(|c| char::from_u32(u32::from(c) + 0xFEE0).unwrap())
                    .collect();
                format!("<p>Applicant: {fw}&nbsp;&ndash;&nbsp;<span>{b}</span></p>")
            }),
        )
        .route(
            "/pii-euckr",
            get(|| async {
                let page = format!("<p>신청인 홍길동, {VALID_RRN}</p>");
                let bytes = encoding_rs::EUC_KR.encode(&page).0.into_owned();
                ([(header::CONTENT_TYPE, "text/html; charset=euc-kr")], bytes)
            }),
        )
        .route(
            "/pii-lookalike",
            get(|| async { "order 900101-1234567, tel 010-1234-5678, ts 1764000000000" }),
        )
        .route(
            "/maintenance",
            get(|| async { "<h1>Service unavailable: under maintenance</h1>" }),
        )
        .route(
            "/modified",
            get(|| async { ([(header::LAST_MODIFIED, LAST_MODIFIED)], "unchanged") }),
        )
        .route("/big", get(|| async { "x".repeat(4096) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late"
            }),
        )
        .route(
            "/version",
            get(|req: axum::extract::Request| async move {
                format!("{:?}", req.version()).into_response()
            }),
        )
}

/// Serves `router` over plain HTTP/1.1 on 127.0.0.1.
pub async fn http(router: Router) -> Server {
    http_on("127.0.0.1:0".parse().expect("addr"), router)
        .await
        .expect("bind")
}

/// Serves `router` over plain HTTP/1.1 on `addr` (a loopback address).
pub async fn http_on(addr: std::net::SocketAddr, router: Router) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Server::new(addr, task))
}

/// Serves `router` over HTTP/1.1 and HTTP/2 (cleartext, by prior knowledge) on 127.0.0.1.
pub async fn http_auto(router: Router) -> Server {
    serve_auto(router, None).await
}

/// Serves `router` over TLS (ALPN h2 and http/1.1) with `identity`.
pub async fn https(router: Router, identity: &Identity) -> Server {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("tls versions")
    .with_no_client_auth()
    .with_single_cert(identity.chain.clone(), identity.key.clone_key())
    .expect("server cert");
    let mut config = config;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    serve_auto(
        router,
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
    )
    .await
}

async fn serve_auto(router: Router, tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(router.clone());
            let tls = tls.clone();
            tokio::spawn(async move {
                let builder = auto::Builder::new(TokioExecutor::new());
                match tls {
                    Some(acceptor) => {
                        // A failed handshake is what several tests expect.
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    }
                }
            });
        }
    });
    Server::new(addr, task)
}
