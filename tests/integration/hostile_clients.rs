//! The admin/metrics listener under abuse, and a dead engine: the real
//! gwanje binary on loopback, probing a loopback fleet meanwhile.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::daemon::Daemon;
use crate::common::plan::ConfigDir;
use crate::common::{client, expo, fleet};

const TOKEN: &str = "hostile-test-token";

/// A config probing `targets` copies of `url` every 300 ms, with a token.
fn config(url: &str, targets: usize) -> ConfigDir {
    let mut catalog = String::from("service: fleet\ninterval: 300ms\ntimeout: 250ms\ntargets:\n");
    for i in 0..targets {
        catalog.push_str(&format!("  - {{name: t{i}, http: {{url: '{url}'}}}}\n"));
    }
    let dir = ConfigDir::new(
        "listen: 127.0.0.1:0\nadmin: {token_file: token}\nlogging: {format: text}\n",
        &[("fleet", &catalog)],
    );
    gwanje::config::write_secret_file(&dir.dir.path().join("token"), TOKEN).unwrap();
    dir
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn failures(d: &Daemon) -> (f64, f64) {
    let s = expo::parse(&client::get(d.addr, "/metrics").await.unwrap().body);
    let all = expo::sum(&s, "gwanje_probes_total", &[]);
    let ok = expo::sum(&s, "gwanje_probes_total", &[("result", "success")]);
    (all - ok, all)
}

async fn gauge(d: &Daemon, name: &str) -> f64 {
    let s = expo::parse(&client::get(d.addr, "/metrics").await.unwrap().body);
    expo::value(&s, name, &[]).unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_causes_no_false_outage_and_is_released() {
    // Our side holds 2,000 sockets; the daemon runs with only 1,024.
    gwanje::daemon::raise_open_file_limit();
    let web = fleet::http(fleet::app()).await;
    let dir = config(&web.url("/"), 50);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gwanje"));
    // SAFETY: setrlimit in the child between fork and exec touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut d = Daemon::start_with(cmd, &dir.config, dir.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = rss_kb(d.pid());
    let (failed_before, _) = failures(&d).await;

    let addr = d.addr;
    let flood: Vec<TcpStream> = tokio::task::spawn_blocking(move || {
        (0..2000)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok())
            .collect()
    })
    .await
    .unwrap();
    assert!(flood.len() > 1000, "connected {}", flood.len());
    // Probes keep running while the flood holds; connections over the cap
    // are closed at once, so their descriptors stay with the probes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = flood.iter().filter(|s| still_open(s)).count();
    let peak = rss_kb(d.pid());
    eprintln!(
        "{held} connections held: {peak} kB resident, {baseline} kB before ({} kB each)",
        peak.saturating_sub(baseline) / held.max(1) as u64
    );
    assert!(
        held <= 240,
        "at most a quarter of 1,024 descriptors: {held}"
    );

    // Idle connections are closed by the server within the head deadline,
    // though we still hold our ends open.
    let deadline = Instant::now() + Duration::from_secs(20);
    while flood.iter().any(still_open) {
        assert!(Instant::now() < deadline, "idle connections not released");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Over the cap, a newcomer either closes the stalest idle connection or
    // is closed itself.
    let turned_away = gauge(&d, "gwanje_api_connections_rejected_total").await
        + gauge(&d, "gwanje_api_connections_evicted_total").await;
    assert!(turned_away > 1000.0, "{turned_away}");
    let (failed_during, all) = failures(&d).await;
    assert_eq!(
        failed_during,
        failed_before,
        "no probe failed during the flood ({all} probes)\n{}",
        d.log_text()
    );
    drop(flood);
    let after = rss_kb(d.pid());
    assert!(
        after < baseline + 8 * 1024,
        "memory back near baseline: {baseline} kB before, {after} kB after"
    );
    let (failed_after, _) = failures(&d).await;
    assert_eq!(failed_after, failed_before);
}

/// Whether the server still holds this connection open.
fn still_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let open = matches!((&*s).read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    open
}

/// Sends raw bytes and returns everything the server answers until it closes.
fn raw_exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_bearer_case_and_log_injection() {
    let web = fleet::http(fleet::app()).await;
    let dir = config(&web.url("/"), 1);
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let addr = d.addr;

    // Both framings in one request: refused, and the connection closed, so
    // the smuggled second request is never read.
    let smuggle = format!(
        "POST /-/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let answer = tokio::task::spawn_blocking(move || raw_exchange(addr, &smuggle))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
    let s = expo::parse(&client::get(addr, "/metrics").await.unwrap().body);
    // Both series exist from the start, at 0: the refused reload did not run.
    for result in ["success", "failure"] {
        assert_eq!(
            expo::value(&s, "gwanje_config_reloads_total", &[("result", result)]),
            Some(0.0),
            "{result}"
        );
    }

    // Every call that changes anything needs the token; what is read-only
    // takes no writes. This is what a listener on a node's network exposes.
    for path in [
        "/-/reload",
        "/api/v1/groups/g/pin",
        "/api/v1/groups/g/unpin",
        "/api/v1/groups/g/unfreeze",
        "/api/v1/alerts/a/ack",
    ] {
        let r = client::request("POST", addr, path, &[]).await.unwrap();
        assert_eq!(r.status, 401, "{path} without the token: {}", r.body);
        // Whatever the body: nothing about it (size, type, schema) is
        // answered before the token is checked.
        let big = "x".repeat(70 * 1024);
        for (content_type, body) in [
            ("text/plain", "x"),
            ("application/json", r#"{"bogus": 1}"#),
            ("application/json", "not json"),
            ("application/json", big.as_str()),
        ] {
            let r = client::request_with_body(
                "POST",
                addr,
                path,
                &[("content-type", content_type)],
                body,
            )
            .await
            .unwrap();
            assert_eq!(
                r.status,
                401,
                "{path} with {content_type} {}: {}",
                body.len(),
                r.body
            );
        }
    }
    let r = client::request_with_body(
        "POST",
        addr,
        "/api/v1/targets/s/t/verify",
        &[("content-type", "text/plain")],
        &"x".repeat(70 * 1024),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401, "verify: {}", r.body);
    for path in ["/metrics", "/api/v1/status", "/-/healthy"] {
        let r = client::request("POST", addr, path, &[]).await.unwrap();
        assert_eq!(r.status, 405, "{path} is read-only");
    }

    // Schemes are case-insensitive.
    for auth in [format!("bearer {TOKEN}"), format!("BEARER {TOKEN}")] {
        let r = client::request("POST", addr, "/-/reload", &[("authorization", &auth)])
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{auth}: {}", r.body);
    }
    let wrong = client::request("POST", addr, "/-/reload", &[("authorization", "Bearer x")])
        .await
        .unwrap();
    assert_eq!(wrong.status, 401);

    // `by` is bounded and may not carry control characters.
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    for by in [
        "ops\n2026-12-03T00:00:00Z INFO gwanje: FORGED line".to_string(),
        "ops\u{1b}[2Jclear".to_string(),
        "x".repeat(65),
    ] {
        let body = serde_json::json!({ "by": by }).to_string();
        let r =
            client::request_with_body("POST", addr, "/api/v1/alerts/anything/ack", &headers, &body)
                .await
                .unwrap();
        assert_eq!(r.status, 400, "{by:?}: {}", r.body);
    }
    let r = client::request_with_body(
        "POST",
        addr,
        "/api/v1/alerts/no%0AFORGED/ack",
        &headers,
        r#"{"by": "ops"}"#,
    )
    .await
    .unwrap();
    assert_ne!(r.status, 200);
    let log = d.log_text();
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-12-03T00:00:00Z") || l.starts_with("FORGED")),
        "no forged log line:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "no colour codes in a file log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_engine_ends_the_process() {
    let web = fleet::http(fleet::app()).await;
    let dir = config(&web.url("/"), 1);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gwanje"));
    cmd.env("GWANJE_TEST_ENGINE_PANIC", "1");
    let d = Daemon::start_with(cmd, &dir.config, dir.dir.path().join("gwanje.log"));
    let log = d.log.clone();
    let status = d.wait_exit(Duration::from_secs(20));
    let log = std::fs::read_to_string(log).unwrap();
    // Exit 1 after the cleanup, not a panic (101) on the finished engine.
    assert_eq!(status.code(), Some(1), "{status}: {log}");
    assert!(log.contains("engine stopped unexpectedly"), "{log}");
    assert!(
        log.contains("gwanje stopped") && !log.contains("polled after completion"),
        "the exit path ran to its end: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_an_alias_bomb_leaves_the_daemon_on_its_plan() {
    let web = fleet::http(fleet::app()).await;
    let dir = config(&web.url("/"), 3);
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let pid = d.pid();
    let before = rss_kb(pid);
    // 30 KB that would expand to billions of nodes.
    let mut bomb = String::from("service: fleet\na: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 1..9 {
        bomb.push_str(&format!(
            "{}: &{} [{}]\n",
            (b'a' + i) as char,
            (b'a' + i) as char,
            vec![format!("*{}", (b'a' + i - 1) as char); 10].join(",")
        ));
    }
    bomb.push_str(&format!(
        "z: [{}]\ntargets: []\n",
        vec!["*i"; 3000].join(",")
    ));
    dir.write_catalog("fleet", &bomb);
    let auth = format!("Bearer {TOKEN}");
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        client::request("POST", d.addr, "/-/reload", &[("authorization", &auth)]),
    )
    .await
    .expect("answered at once")
    .unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("aliases expand"), "{}", r.body);
    let healthy = client::get(d.addr, "/-/healthy").await.unwrap();
    assert_eq!(healthy.status, 200);
    let s = expo::parse(&client::get(d.addr, "/metrics").await.unwrap().body);
    assert_eq!(
        expo::sum(&s, "gwanje_targets", &[("service", "fleet")]),
        3.0,
        "the old plan runs on"
    );
    assert!(rss_kb(pid) < before + 64 * 1024, "{} kB", rss_kb(pid));
}

/// Clients that pipeline requests and never read the answers: `n`
/// connections with a 4 KiB receive window, reopened when the server closes
/// them, until `end`. Returns how often one was reopened.
fn slow_readers(addr: std::net::SocketAddr, n: usize, end: Instant) -> usize {
    use socket2::{Domain, Socket, Type};
    let request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(64);
    let open = || -> Option<Socket> {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
        s.set_recv_buffer_size(4096).ok()?;
        s.connect(&addr.into()).ok()?;
        s.set_nonblocking(true).ok()?;
        let _ = (&s).write_all(request.as_bytes());
        Some(s)
    };
    let mut conns: Vec<Option<Socket>> = (0..n).map(|_| open()).collect();
    let mut reopened = 0;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        for c in &mut conns {
            // One more request; a closed connection fails the write.
            let alive = c.as_ref().is_some_and(|s| {
                // A partial write is as good: the server must not read it anyway.
                match (&*s).write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") {
                    Ok(()) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                }
            });
            if !alive {
                *c = open();
                reopened += 1;
            }
        }
    }
    reopened
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_never_keep_health_checks_and_scrapes_out() {
    gwanje::daemon::raise_open_file_limit();
    let web = fleet::http(fleet::app()).await;
    let dir = config(&web.url("/"), 50);
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let (failed_before, _) = failures(&d).await;
    let addr = d.addr;
    let end = Instant::now() + Duration::from_secs(20);
    let attackers = std::thread::spawn(move || slow_readers(addr, 400, end));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut worst = Duration::ZERO;
    while Instant::now() + Duration::from_secs(2) < end {
        for path in ["/-/healthy", "/metrics"] {
            let asked = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(1), client::get(addr, path)).await;
            assert!(
                matches!(&r, Ok(Ok(x)) if x.status == 200),
                "{path} after {:?}: {:?}\n{}",
                asked.elapsed(),
                r.map(|r| r.map(|x| x.status)),
                d.log_text()
            );
            worst = worst.max(asked.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let reopened = attackers.join().unwrap();
    eprintln!("slowest answer {worst:?}; attackers reopened {reopened} connections");
    let s = expo::parse(&client::get(addr, "/metrics").await.unwrap().body);
    assert!(
        expo::value(&s, "gwanje_api_connections_evicted_total", &[]).is_some_and(|v| v > 0.0),
        "slow readers were closed to make room"
    );
    // The load may cost a probe its 250 ms now and then; never a target.
    let (failed_after, all) = failures(&d).await;
    eprintln!(
        "probe failures meanwhile: {} of {all}",
        failed_after - failed_before
    );
    let alerts = client::get(addr, "/api/v1/alerts").await.unwrap().body;
    assert!(!alerts.contains("TargetDown"), "{alerts}");
    let s = expo::parse(&client::get(addr, "/metrics").await.unwrap().body);
    assert_eq!(
        expo::sum(&s, "gwanje_target_up", &[]),
        50.0,
        "every target up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_says_what_waits_for_a_restart_and_refuses_new_policy_routing() {
    let web = fleet::http(fleet::app()).await;
    let dir = config(&web.url("/"), 2);
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let auth = format!("Bearer {TOKEN}");
    let headers = [("authorization", auth.as_str())];
    let reload = || client::request("POST", d.addr, "/-/reload", &headers);
    let settings = std::fs::read_to_string(&dir.config).unwrap();
    std::fs::write(
        &dir.config,
        settings.replace(
            "admin: {token_file: token}",
            "admin: {token_file: token, max_connections: 100}",
        ) + "journal: {dir: journal}\n",
    )
    .unwrap();
    let r = reload().await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("admin.max_connections") && r.body.contains("journal"),
        "{}",
        r.body
    );
    // Policy routing is installed at start only: a reload that adds a
    // managed path is refused, and the running plan stays.
    std::fs::write(
        &dir.config,
        settings.clone()
            + "paths:\n  - {name: p, gateway: 127.0.0.1, interface: lo, fwmark: 7, table: 107, manage_policy_routing: true}\n",
    )
    .unwrap();
    let r = reload().await.unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("policy routing") && r.body.contains("restart"),
        "{}",
        r.body
    );
    let status = client::get(d.addr, "/api/v1/status").await.unwrap().body;
    assert!(!status.contains("\"p\""), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_floods_its_output_costs_no_memory_and_its_stderr_is_logged() {
    let web = fleet::http(fleet::app()).await;
    let dir = config(&web.url("/"), 1);
    let settings = std::fs::read_to_string(&dir.config).unwrap();
    // 300 MB on stdout, then a word on stderr and a failure.
    std::fs::write(
        &dir.config,
        settings
            + "paths:\n  - {name: a, gateway: 127.0.0.1, interface: lo}\n  - {name: b, gateway: 127.0.0.2, interface: lo}\n\
               failover_groups:\n  - name: local\n    routes: [198.18.201.0/24]\n    paths: [a, b]\n    checks: [fleet/t0]\n    action: exec\n\
               \x20   exec: {command: [sh, -c, 'head -c 300000000 /dev/zero; echo hook-says-no >&2; exit 3'], timeout: 20s}\n",
    )
    .unwrap();
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let baseline = rss_kb(d.pid());
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut peak = baseline;
    while !d.log_text().contains("hook-says-no") {
        assert!(
            Instant::now() < deadline,
            "the hook's stderr never logged:\n{}",
            d.log_text()
        );
        peak = peak.max(rss_kb(d.pid()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak = peak.max(rss_kb(d.pid()));
    assert!(
        peak < baseline + 64 * 1024,
        "{baseline} kB before, {peak} kB at most"
    );
}
