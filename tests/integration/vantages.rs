//! Several vantages deciding together, on loopback: three real gwanje
//! processes follow each other's observation streams; sites are cut off,
//! the portal fails for everyone, vantages die, and hostile peers lie.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::common::vantages::{self, INTERVAL_MS, OBSERVER, Vantage, World, alerts, verdict, vote};
use crate::common::{self, client, expo};

const WEB: &str = "portal/web";

fn t(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Three vantages a, b, c following each other.
async fn three(
    extra: &str,
) -> (
    Arc<AtomicU16>,
    Vec<World>,
    Vec<common::Server>,
    Vec<Vantage>,
) {
    let portal = Arc::new(AtomicU16::new(200));
    let mut worlds = Vec::new();
    let mut sites = Vec::new();
    let mut vs = Vec::new();
    for name in ["a", "b", "c"] {
        let w = World {
            portal: portal.clone(),
            cut: Arc::new(AtomicBool::new(false)),
        };
        let site = vantages::site(w.clone()).await;
        vs.push(Vantage::start(name, &site, extra).await);
        worlds.push(w);
        sites.push(site);
    }
    let addrs: Vec<(String, std::net::SocketAddr)> =
        vs.iter().map(|v| (v.name.clone(), v.addr())).collect();
    for v in &vs {
        let peers: Vec<(&str, std::net::SocketAddr)> = addrs
            .iter()
            .filter(|(n, _)| *n != v.name)
            .map(|(n, a)| (n.as_str(), *a))
            .collect();
        v.follow(&peers, extra).await;
    }
    for v in &vs {
        v.wait_status(Duration::from_secs(20), "portal up by three votes", |s| {
            verdict(s, WEB).is_some_and(|x| x["verdict"] == "up")
                && ["a", "b", "c"]
                    .iter()
                    .all(|n| vote(s, WEB, n).as_deref() == Some("up"))
        })
        .await;
    }
    (portal, worlds, sites, vs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_vantages_decide_together_and_replay_reproduces_it() {
    let (portal, worlds, _sites, mut vs) = three("").await;

    // c's site is cut off: its own results all fail (its stream still
    // reaches the others, as over a management network).
    let cut = Instant::now();
    worlds[2].cut.store(true, Ordering::SeqCst);
    let s = vs[0]
        .wait_status(t(5_000), "c isolated at a", |s| {
            alerts(s, "VantageIsolated")
                .iter()
                .any(|a| a["labels"]["vantage"] == "c")
        })
        .await;
    let took = cut.elapsed();
    assert!(
        took < t(2 * INTERVAL_MS + 1_500),
        "isolated after {took:?} (controls fail twice: two intervals, plus a probe's timeout and delivery)"
    );
    drop(s);
    // The votes in the status are refreshed once a second.
    let s = vs[0]
        .wait_status(t(2_000), "c's vote abstaining", |s| {
            vote(s, WEB, "c").as_deref() == Some("isolated")
        })
        .await;
    assert_eq!(verdict(&s, WEB).expect("web")["verdict"], "up");
    // c itself reports its own isolation, and nothing it cannot know.
    let c = vs[2]
        .wait_status(t(5_000), "c isolated at c", |s| {
            !alerts(s, "VantageIsolated").is_empty()
        })
        .await;
    // Hold the cut for a while: nobody pages a target down.
    tokio::time::sleep(t(8 * INTERVAL_MS)).await;
    for v in &vs {
        let s = v.status().await;
        for name in ["TargetDown", "ServiceDown"] {
            assert!(
                alerts(&s, name).is_empty(),
                "{}: {name} during c's cut: {s:#}",
                v.name
            );
        }
        assert_eq!(
            alerts(&s, "VantageIsolated").len(),
            1,
            "{}: one VantageIsolated names c: {s:#}",
            v.name
        );
    }
    assert!(alerts(&c, "TargetDown").is_empty());
    worlds[2].cut.store(false, Ordering::SeqCst);
    vs[0]
        .wait_status(t(5_000), "c back", |s| {
            alerts(&s.clone(), "VantageIsolated").is_empty()
                && vote(s, WEB, "c").as_deref() == Some("up")
        })
        .await;

    // The portal fails for every vantage: down by all three votes.
    let failed = Instant::now();
    portal.store(500, Ordering::SeqCst);
    for v in &vs {
        let s = v
            .wait_status(t(5_000), "TargetDown naming 3 of 3", |s| {
                alerts(s, "TargetDown")
                    .iter()
                    .any(|a| a["summary"].as_str().is_some_and(|x| x.contains("3 of 3")))
                    && verdict(s, WEB).is_some_and(|x| x["verdict"] == "down")
            })
            .await;
        assert_eq!(alerts(&s, "TargetDown").len(), 1);
    }
    eprintln!(
        "portal down for everyone: 3 of 3 after {:?}",
        failed.elapsed()
    );
    portal.store(200, Ordering::SeqCst);
    vs[0]
        .wait_status(t(5_000), "portal up again", |s| {
            verdict(s, WEB).is_some_and(|x| x["verdict"] == "up")
                && alerts(s, "TargetDown").is_empty()
        })
        .await;

    // c dies: its votes expire after two intervals; a and b still decide.
    let killed = Instant::now();
    vs[2].kill();
    let s = vs[0]
        .wait_status(t(5_000), "c stale", |s| {
            vote(s, WEB, "c").as_deref() == Some("stale")
        })
        .await;
    eprintln!("c's vote expired {:?} after the kill", killed.elapsed());
    assert_eq!(verdict(&s, WEB).expect("web")["verdict"], "up");
    assert!(
        alerts(&s, "MonitoringDegraded").is_empty(),
        "two of three still decide"
    );
    let m = client::get(vs[0].addr(), "/metrics")
        .await
        .expect("scrape")
        .body;
    let samples = expo::parse(&m);
    assert_eq!(
        expo::value(&samples, "gwanje_vantage_up", &[("vantage", "c")]),
        Some(0.0)
    );
    assert_eq!(
        expo::value(&samples, "gwanje_vantage_up", &[("vantage", "b")]),
        Some(1.0)
    );
    assert_eq!(
        expo::value(
            &samples,
            "gwanje_target_votes",
            &[("target", "web"), ("verdict", "up")]
        ),
        Some(2.0)
    );

    // b dies too: a alone is below min_vantages; the portal then fails,
    // and a says unknown, never down.
    vs[1].kill();
    let s = vs[0]
        .wait_status(t(5_000), "insufficient", |s| {
            verdict(s, WEB).is_some_and(|x| x["verdict"] == "insufficient")
                && !alerts(s, "MonitoringDegraded").is_empty()
        })
        .await;
    assert!(alerts(&s, "TargetDown").is_empty());
    portal.store(500, Ordering::SeqCst);
    tokio::time::sleep(t(8 * INTERVAL_MS)).await;
    let s = vs[0].status().await;
    assert_eq!(verdict(&s, WEB).expect("web")["verdict"], "insufficient");
    assert!(alerts(&s, "TargetDown").is_empty(), "{s:#}");

    // a's journal replays through the same core: every verdict and alert.
    vs[0].stop();
    let (code, out) = vantages::replay(&vs[0].journal(), &["--verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("identical: "), "{out}");
    let text = common::journal_text(&vs[0].journal());
    for fact in [
        "VantageObserved",
        "VerdictChanged",
        "VantageIsolated",
        "MonitoringDegraded",
    ] {
        assert!(text.contains(fact), "the journal records {fact}");
    }
}

/// A fake peer at `/{case}/api/v1/observations` for each hostile case.
mod hostile {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use bytes::Bytes;

    fn line(vantage: &str, seq: u64, at: u64, ok: bool) -> String {
        let failure = if ok { "" } else { r#","failure":"status""# };
        format!(
            "{{\"seq\":{seq},\"vantage\":\"{vantage}\",\"at\":{at},\"target\":\"portal/web\",\"ok\":{ok}{failure}}}\n"
        )
    }

    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64
    }

    /// Lines from `first`, then silence (the connection stays open).
    fn then_hang(first: Vec<String>) -> Response {
        let s = futures_util::stream::iter(
            first
                .into_iter()
                .map(|l| Ok::<_, std::io::Error>(Bytes::from(l))),
        )
        .chain(futures_util::stream::pending());
        Body::from_stream(s).into_response()
    }

    use futures_util::StreamExt;

    async fn serve(Path(case): Path<String>, headers: HeaderMap) -> Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let now = now_ms();
        match case.as_str() {
            // Expects another token than the one configured for it.
            "token" if auth != "Bearer the-right-one" => StatusCode::UNAUTHORIZED.into_response(),
            "garbage" => then_hang(vec!["this is not json\n".into()]),
            "oversized" => then_hang(vec!["x".repeat(64 * 1024)]),
            // One good line, then nothing: not even a heartbeat.
            "stall" => then_hang(vec![line("stall", 1, now, true)]),
            "restart" => then_hang(vec![
                line("restart", 5, now, false),
                line("restart", 6, now, false),
                line("restart", 2, now, false),
            ]),
            // Claims to be the instance it talks to.
            "name" => then_hang(vec![line("a", 1, now, false)]),
            // An hour ahead, saying the portal is down, every 200 ms.
            "clock" => {
                let s = futures_util::stream::unfold(1u64, |seq| async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let l = line("clock", seq, now_ms() + 3_600_000, false);
                    Some((Ok::<_, std::io::Error>(Bytes::from(l)), seq + 1))
                });
                Body::from_stream(s).into_response()
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }

    pub fn app() -> Router {
        Router::new().route("/{case}/api/v1/observations", get(serve))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_refused_counted_and_never_vote() {
    let world = World {
        portal: Arc::new(AtomicU16::new(200)),
        cut: Arc::new(AtomicBool::new(false)),
    };
    let site = vantages::site(world).await;
    let fake = common::fleet::http(hostile::app()).await;
    let certs = common::certs::generate();
    let tls = common::fleet::https(hostile::app(), &certs.self_signed).await;
    let a = Vantage::start("a", &site, "").await;
    let cases = [
        "token",
        "garbage",
        "oversized",
        "stall",
        "restart",
        "name",
        "clock",
    ];
    let mut peers = String::from("peers:\n");
    for c in cases {
        peers.push_str(&format!(
            "  - {{name: {c}, url: '{}', token_file: peer.token}}\n",
            fake.url(&format!("/{c}"))
        ));
    }
    // A TLS peer whose certificate the configured CA did not sign.
    std::fs::copy(&certs.ca_file, a.dir.dir.path().join("ca.pem")).expect("ca");
    peers.push_str(&format!(
        "  - {{name: tls, url: '{}', token_file: peer.token, ca_file: ca.pem}}\n",
        tls.https_url("/token")
    ));
    gwanje::config::write_secret_file(&a.dir.dir.path().join("peer.token"), OBSERVER)
        .expect("token");
    a.rewrite(&peers, "").await;

    let fault = |samples: &[expo::Sample], peer: &str, reason: &str| {
        expo::value(
            samples,
            "gwanje_peer_stream_faults_total",
            &[("peer", peer), ("reason", reason)],
        )
        .unwrap_or(0.0)
    };
    let expected = [
        ("token", "unauthorized"),
        ("garbage", "garbage"),
        ("oversized", "oversized"),
        ("stall", "stalled"),
        ("restart", "sequence"),
        ("name", "wrong_vantage"),
        ("tls", "tls"),
    ];
    let samples = a
        .daemon
        .as_ref()
        .expect("running")
        .scrape_until(Duration::from_secs(30), |s| {
            expected.iter().all(|(p, r)| fault(s, p, r) >= 1.0)
                && expo::value(s, "gwanje_vantage_lag_seconds", &[("vantage", "clock")])
                    .is_some_and(|l| l < -3_000.0)
        })
        .await;
    for (p, r) in expected {
        assert!(fault(&samples, p, r) >= 1.0, "{p}: {r}");
    }
    // Nothing any of them said voted: a alone is below min_vantages (2),
    // so the verdict is insufficient, never down, however loud they were.
    let s = a.status().await;
    assert_eq!(
        verdict(&s, WEB).expect("web")["verdict"],
        "insufficient",
        "{s:#}"
    );
    for p in cases.iter().chain(&["tls"]) {
        let v = vote(&s, WEB, p).unwrap_or_default();
        assert!(
            matches!(v.as_str(), "stale" | "skewed"),
            "{p} voted {v}: {s:#}"
        );
    }
    assert_eq!(vote(&s, WEB, "clock").as_deref(), Some("skewed"));
    assert!(alerts(&s, "TargetDown").is_empty());
    let log = a.log_tail();
    let full = std::fs::read_to_string(a.dir.dir.path().join("gwanje.log")).unwrap_or_default();
    for needle in [
        "refused the token",
        "TLS",
        "claims to be vantage",
        "went back",
        "silent for",
    ] {
        assert!(full.contains(needle), "the log says {needle:?}:\n{log}");
    }
    // The engine is still alive and well.
    let healthy = client::get(a.addr(), "/-/healthy").await.expect("healthy");
    assert_eq!(healthy.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_needs_a_token_and_carries_no_body() {
    let world = World {
        portal: Arc::new(AtomicU16::new(200)),
        cut: Arc::new(AtomicBool::new(false)),
    };
    let site = vantages::site(world).await;
    let a = Vantage::start("a", &site, "").await;
    let no = client::get(a.addr(), "/api/v1/observations")
        .await
        .expect("get");
    assert_eq!(no.status, 401);
    let wrong = client::request(
        "GET",
        a.addr(),
        "/api/v1/observations?after=0",
        &[("authorization", "Bearer nope")],
    )
    .await
    .expect("get");
    assert_eq!(wrong.status, 401);
    // The observer token reads the stream (plain here): lines with a
    // sequence, the vantage, the target, ok; nothing a response carried.
    let tcp = tokio::net::TcpStream::connect(a.addr())
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tcp;
    tcp.write_all(
        format!(
            "GET /api/v1/observations?after=0 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {OBSERVER}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains("portal/web") {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
            .await
            .expect("lines within 10 s")
            .expect("read");
        assert!(n > 0, "the stream ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("portal/web"))
        .expect("a line");
    let v: serde_json::Value = serde_json::from_str(line).expect("json line");
    assert_eq!(v["vantage"], "a");
    assert!(v["seq"].as_u64().is_some_and(|s| s > 0));
    assert_eq!(v["ok"], true);
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for k in &keys {
        assert!(
            [
                "seq", "vantage", "at", "target", "path", "router", "ok", "failure", "sent",
                "lost", "control"
            ]
            .contains(k),
            "unexpected field {k}: {line}"
        );
    }
}

/// An instant query to Prometheus at `prom`.
async fn query(prom: std::net::SocketAddr, expr: &str) -> serde_json::Value {
    let mut url = url::Url::parse("http://x/api/v1/query").expect("url");
    url.query_pairs_mut().append_pair("query", expr);
    let path = format!("{}?{}", url.path(), url.query().expect("query"));
    let body = client::get(prom, &path).await.expect("query").body;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{expr}: {e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vantages_dashboard_shows_every_vantage_from_a_real_prometheus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (_portal, _worlds, _sites, vs) = three("").await;
    // The shipped scrape job and both rule files, pointed at the three.
    let shipped: yaml_serde::Value = yaml_serde::from_str(
        &std::fs::read_to_string(root.join("deploy/prometheus/prometheus.yml")).expect("config"),
    )
    .expect("yaml");
    let mut job = shipped["scrape_configs"]
        .as_sequence()
        .expect("jobs")
        .iter()
        .find(|j| j["job_name"].as_str() == Some("gwanje"))
        .cloned()
        .expect("gwanje job");
    job["scrape_interval"] = "1s".into();
    let targets: Vec<String> = vs.iter().map(|v| format!("'{}'", v.addr())).collect();
    job["static_configs"] =
        yaml_serde::from_str(&format!("[{{targets: [{}]}}]", targets.join(", "))).expect("targets");
    let rules = ["gwanje.yml", "quorum.yml"].map(|f| {
        format!(
            "'{}'",
            root.join("deploy/prometheus/rules").join(f).display()
        )
    });
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{}]\nscrape_configs:\n{}",
        rules.join(", "),
        yaml_serde::to_string(&vec![job]).expect("yaml")
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut prom) = common::companions::prometheus(dir.path(), &config) else {
        return;
    };
    prom.wait_ready(Duration::from_secs(30)).await;
    // Enough samples for the panels' rates and the quorum rules.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let r = query(
            prom.addr,
            "count(count_over_time(gwanje_vantage_vote[1m]) >= 5) >= 27 and on() count(target:probe_quorum:down) >= 3",
        )
        .await;
        if r["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus gathered no vantage data: {r}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The matrix: every instance counts every vantage's vote on every target.
    let m = query(prom.addr, "gwanje_vantage_vote{target=\"web\"}").await;
    let cells: Vec<(String, String, f64)> = m["data"]["result"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|s| {
            (
                s["metric"]["instance"].as_str().unwrap_or("").to_string(),
                s["metric"]["vantage"].as_str().unwrap_or("").to_string(),
                s["value"][1]
                    .as_str()
                    .unwrap_or("nan")
                    .parse()
                    .unwrap_or(f64::NAN),
            )
        })
        .collect();
    assert_eq!(cells.len(), 9, "3 instances × 3 vantages: {cells:?}");
    assert!(cells.iter().all(|c| c.2 == 1.0), "all up: {cells:?}");
    // The central PromQL quorum sees every target, each probed by three vantages.
    let votes = query(prom.addr, "target:probe_votes:voting{service=\"portal\"}").await;
    assert_eq!(votes["data"]["result"][0]["value"][1], "3", "{votes}");

    let queries = common::dashboards::panel_queries("vantages.json", "15s");
    for (title, expr) in &queries {
        common::dashboards::assert_has_data(title, expr, &query(prom.addr, expr).await);
    }
    assert!(
        queries.len() >= 11,
        "checked {} panel queries",
        queries.len()
    );
}

/// Reads the plain observation stream after `after` until it holds `want`
/// lines (at most 10 s); returns their sequence numbers.
async fn stream_seqs(addr: std::net::SocketAddr, after: u64, want: usize) -> Vec<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(
        format!(
            "GET /api/v1/observations?after={after} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {OBSERVER}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        let seqs: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with('{') && !l.contains("heartbeat"))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["seq"].as_u64())
            .collect();
        if seqs.len() >= want {
            return seqs;
        }
        let mut buf = [0u8; 8192];
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{want} lines within 10 s: {text}"))
            .expect("read");
        assert!(n > 0, "the stream ended: {text}");
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_resumes_from_the_journal_after_a_restart() {
    let world = World {
        portal: Arc::new(AtomicU16::new(200)),
        cut: Arc::new(AtomicBool::new(false)),
    };
    let site = vantages::site(world).await;
    let mut a = Vantage::start("a", &site, "").await;
    // About 24 results (three targets every 250 ms), then a restart: the
    // new process holds none of them in memory.
    tokio::time::sleep(t(2_000)).await;
    a.stop();
    a.restart().await;
    let s = a
        .wait_status(t(5_000), "the restored count published", |s| {
            s["vantage"]["seq"].as_u64().is_some_and(|n| n >= 20)
        })
        .await;
    let counted = s["vantage"]["seq"].as_u64().expect("seq");
    // Resuming after 3: from the journal up to what the restart found,
    // then live, every number once and in order.
    let want = usize::try_from(counted).expect("small") + 3;
    let seqs = stream_seqs(a.addr(), 3, want - 3).await;
    let expected: Vec<u64> = (4..4 + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "contiguous from 4 (counted {counted})");
    assert!(
        *seqs.last().expect("lines") > counted,
        "and on into the live results"
    );
}
