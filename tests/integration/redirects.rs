//! Redirects never carry secrets away: a loopback server records what each
//! request carried, and probes are redirected within the origin, to another
//! host, from https to http, across methods, to other schemes, and to
//! gwanje's own listener.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gwanje::core::FailureKind;
use gwanje::probe::{ProbeContext, ProbeResult, Prober};

use crate::common::{Server, certs, fleet, plan};

/// One request as the recorder saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HeaderMap,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

#[derive(serde::Deserialize)]
struct To {
    loc: String,
    code: u16,
}

/// `/to?loc=URL&code=N` answers a redirect; every other path answers 200.
/// Every request is recorded.
async fn record(State(log): State<Log>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 16)
        .await
        .unwrap_or_default();
    log.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts.headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if parts.uri.path() == "/to" {
        let Query(to) = Query::<To>::try_from_uri(&parts.uri).expect("to query");
        let code = StatusCode::from_u16(to.code).expect("code");
        return (code, [(header::LOCATION, to.loc)]).into_response();
    }
    "ok".into_response()
}

async fn recorder(addr: &str) -> (Server, Log) {
    let log = Log::default();
    let app = Router::new().fallback(record).with_state(log.clone());
    let s = fleet::http_on(addr.parse().unwrap(), app).await.unwrap();
    (s, log)
}

fn seen(log: &Log) -> Vec<Seen> {
    log.lock().unwrap().clone()
}

fn encode(url: &str) -> String {
    url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

/// A probe of `url` carrying a file secret, an env secret, a cookie and a
/// plain header, plus `extra` lines under `http:`.
async fn probe(url: &str, extra: &str, ctx: &ProbeContext) -> ProbeResult {
    // SAFETY: tests in this binary read this variable only; the value never changes.
    unsafe { std::env::set_var("GWANJE_TEST_API_KEY", "env-secret-value") };
    let target = format!(
        "timeout: 2s\nhttp:\n  url: {url}\n  headers:\n    Authorization: {{file: bearer.txt}}\n    X-Api-Key: {{env: GWANJE_TEST_API_KEY}}\n    Cookie: session=inline-cookie\n    X-Plain: visible\n{extra}"
    );
    let dir = plan::ConfigDir::new("", &[("svc", &plan::one_target(&target))]);
    gwanje::config::write_secret_file(
        &dir.dir.path().join("probes/bearer.txt"),
        "Bearer file-secret-token\n",
    )
    .unwrap();
    let t = dir.load().targets[0].clone();
    Prober::new(t).run(ctx).await
}

fn kind(r: &ProbeResult) -> Option<FailureKind> {
    r.failure.as_ref().map(|f| f.kind)
}

fn secrets_in(s: &Seen) -> Vec<&'static str> {
    ["authorization", "x-api-key", "cookie"]
        .into_iter()
        .filter(|h| s.headers.contains_key(*h))
        .collect()
}

fn ctx() -> Arc<ProbeContext> {
    ProbeContext::new().unwrap()
}

#[tokio::test]
async fn a_redirect_within_the_origin_keeps_the_credentials() {
    let (a, log) = recorder("127.0.0.1:0").await;
    let r = probe(&a.url("/to?loc=/final&code=302"), "", &ctx()).await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    let seen = seen(&log);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].path, "/final");
    assert_eq!(
        secrets_in(&seen[1]),
        ["authorization", "x-api-key", "cookie"]
    );
    assert_eq!(seen[1].headers["authorization"], "Bearer file-secret-token");
}

#[tokio::test]
async fn a_redirect_to_another_host_strips_every_secret_header() {
    let (a, log_a) = recorder("127.0.0.1:0").await;
    let (b, log_b) = recorder("127.0.0.2:0").await;
    let loc = encode(&b.url("/landing"));
    let r = probe(&a.url(&format!("/to?loc={loc}&code=302")), "", &ctx()).await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    assert_eq!(
        secrets_in(&seen(&log_a)[0]).len(),
        3,
        "the origin gets them"
    );
    let at_b = seen(&log_b);
    assert_eq!(at_b.len(), 1);
    assert_eq!(secrets_in(&at_b[0]), Vec::<&str>::new(), "{:?}", at_b[0]);
    assert_eq!(at_b[0].headers["x-plain"], "visible");
}

#[tokio::test]
async fn an_https_to_http_downgrade_is_refused_unless_allowed() {
    let c = certs::generate();
    let (plain, log) = recorder("127.0.0.1:0").await;
    let log_tls = Log::default();
    let app = Router::new().fallback(record).with_state(log_tls.clone());
    let tls = fleet::https(app, &c.valid).await;
    let loc = encode(&plain.url("/cleartext"));
    let url = tls.https_url(&format!("/to?loc={loc}&code=302"));
    let ca = format!("  tls: {{ca_file: {}}}", c.ca_file.display());

    let r = probe(&url, &ca, &ctx()).await;
    assert_eq!(kind(&r), Some(FailureKind::Protocol), "{:?}", r.failure);
    assert!(r.failure.unwrap().detail.contains("https to plain http"));
    assert!(seen(&log).is_empty(), "nothing went out in cleartext");

    let r = probe(
        &url,
        &format!("{ca}\n  allow_https_downgrade: true"),
        &ctx(),
    )
    .await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    let at_plain = seen(&log);
    assert_eq!(at_plain.len(), 1);
    assert_eq!(secrets_in(&at_plain[0]), Vec::<&str>::new());
}

#[tokio::test]
async fn methods_change_as_browsers_do() {
    let (a, log) = recorder("127.0.0.1:0").await;
    let post = "  method: POST\n  body: '{\"q\":1}'";
    for (code, method, body) in [
        (303, "GET", ""),
        (302, "GET", ""),
        (301, "GET", ""),
        (307, "POST", "{\"q\":1}"),
        (308, "POST", "{\"q\":1}"),
    ] {
        log.lock().unwrap().clear();
        let r = probe(&a.url(&format!("/to?loc=/next&code={code}")), post, &ctx()).await;
        assert_eq!(kind(&r), None, "{code}: {:?}", r.failure);
        let s = seen(&log);
        assert_eq!(
            (
                s[0].method.as_str(),
                s[1].method.as_str(),
                s[1].body.as_str()
            ),
            ("POST", method, body),
            "after {code}"
        );
    }
}

#[tokio::test]
async fn only_http_and_https_locations_are_followed() {
    let (a, log) = recorder("127.0.0.1:0").await;
    for loc in [
        "gopher://127.0.0.1:70/",
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
    ] {
        log.lock().unwrap().clear();
        let r = probe(
            &a.url(&format!("/to?loc={}&code=302", encode(loc))),
            "",
            &ctx(),
        )
        .await;
        assert_eq!(kind(&r), Some(FailureKind::Protocol), "{loc}");
        assert_eq!(seen(&log).len(), 1, "{loc}: nothing followed");
    }
}

#[tokio::test]
async fn a_redirect_never_reaches_gwanjes_own_listener() {
    let (a, _) = recorder("127.0.0.1:0").await;
    let (own, own_log) = recorder("127.0.0.1:0").await;
    let guarded = ProbeContext::guarding(Some(own.addr)).unwrap();
    let port = own.addr.port();
    // However the address is spelled: literally, the wildcard (which
    // reaches this host), or IPv4-mapped IPv6.
    for target in [
        own.url("/-/reload"),
        format!("http://0.0.0.0:{port}/-/reload"),
        format!("http://[::ffff:127.0.0.1]:{port}/-/reload"),
    ] {
        let loc = encode(&target);
        let r = probe(
            &a.url(&format!("/to?loc={loc}&code=307")),
            "  method: POST",
            &guarded,
        )
        .await;
        assert_eq!(
            kind(&r),
            Some(FailureKind::Protocol),
            "{target}: {:?}",
            r.failure
        );
        let detail = r.failure.unwrap().detail;
        assert!(detail.contains("own listener"), "{target}: {detail}");
        assert!(seen(&own_log).is_empty(), "{target}");
    }
    // Probing the listener directly (gwanje watching itself) stays allowed.
    let r = probe(&own.url("/-/healthy"), "", &guarded).await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
}

#[tokio::test]
async fn at_most_twenty_redirects_and_no_url_credentials() {
    let too_many = plan::ConfigDir::new(
        "",
        &[(
            "svc",
            &plan::one_target("http:\n  url: http://127.0.0.1/\n  max_redirects: 21"),
        )],
    );
    let e = gwanje::config::load(&too_many.config)
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_redirects") && e.contains("0 to 20"), "{e}");
    let creds = plan::ConfigDir::new(
        "",
        &[(
            "svc",
            &plan::one_target("http:\n  url: http://user:hunter2@127.0.0.1/"),
        )],
    );
    let e = gwanje::config::load(&creds.config).unwrap_err().to_string();
    assert!(e.contains("credentials") && e.contains("headers"), "{e}");
    assert!(!e.contains("hunter2"), "the password is never echoed: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_webhooks_follow_no_redirect() {
    use crate::common::daemon::Daemon;
    let web = fleet::http(fleet::app()).await;
    let (a, log_a) = recorder("127.0.0.1:0").await;
    let (b, log_b) = recorder("127.0.0.1:0").await;
    // A failing target raises TargetDown; the webhook answers 307 towards b.
    let hook = a.url(&format!("/to?loc={}&code=307", encode(&b.url("/hook"))));
    let dir = plan::ConfigDir::new(
        &format!(
            "listen: 127.0.0.1:0\nalerting:\n  webhooks: [{{url: '{hook}', hmac_secret_file: secret}}]\n  resend_interval: 1s\n"
        ),
        &[(
            "svc",
            &format!(
                "service: svc\ninterval: 200ms\ntimeout: 150ms\ntargets:\n  - {{name: broken, http: {{url: '{}'}}}}\n",
                web.url("/status/503")
            ),
        )],
    );
    gwanje::config::write_secret_file(&dir.dir.path().join("secret"), "hook-secret-77a1").unwrap();
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    d.wait_ready(std::time::Duration::from_secs(20)).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while seen(&log_a).iter().filter(|s| s.path == "/to").count() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery to the webhook:\n{}",
            d.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        seen(&log_b).is_empty(),
        "the batch and its signature went to the redirect's target: {:?}",
        seen(&log_b)
    );
}
