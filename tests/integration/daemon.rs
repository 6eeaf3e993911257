//! The real `gwanje` binary on a loopback fleet: metrics, promtool, reload.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::daemon::Daemon;
use common::expo::{self, Sample};
use common::plan::ConfigDir;
use common::{certs, client, dns, fleet};

const TOKEN: &str = "test-admin-token-4f1c";

fn has(s: &[Sample], name: &str, target: &str) -> bool {
    expo::value(s, name, &[("target", target)]).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reload_and_logs_end_to_end() {
    let c = certs::generate();
    let web = fleet::http(fleet::app()).await;
    let tls = fleet::https(fleet::app(), &c.valid).await;
    let ns = dns::serve().await;

    let icmp = if common::is_root() {
        "  - {name: loopback, icmp: {host: 127.0.0.1}}\n"
    } else {
        ""
    };
    let portal = format!(
        "service: portal\ntargets:\n\
         \x20 - {{name: home, http: {{url: '{}', body_must_match: [Citizen]}}}}\n\
         \x20 - {{name: broken, http: {{url: '{}'}}}}\n\
         \x20 - {{name: leak, http: {{url: '{}'}}}}\n\
         \x20 - {{name: secure, http: {{url: '{}', tls: {{ca_file: {}}}}}}}\n",
        web.url("/"),
        web.url("/status/503"),
        web.url("/pii"),
        tls.https_url("/json"),
        c.ca_file.display()
    );
    let infra = format!(
        "service: infra\ntargets:\n\
         \x20 - {{name: dns-ok, dns: {{server: '{}', name: ok.test.}}}}\n\
         \x20 - {{name: web-port, tcp: {{address: '{}'}}}}\n{icmp}",
        ns.addr, web.addr
    );
    let dir = ConfigDir::new(
        "listen: 127.0.0.1:0\ndefaults: {interval: 500ms, timeout: 400ms, health: {fall: 2, rise: 2}}\nlogging: {format: json, level: debug}\nadmin: {token_file: token}\n",
        &[("portal", &portal), ("infra", &infra)],
    );
    gwanje::config::write_secret_file(&dir.dir.path().join("token"), &format!("{TOKEN}\n"))
        .unwrap();

    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    let addr = d.addr;
    d.wait_ready(Duration::from_secs(20)).await;
    let s = d
        .scrape_until(Duration::from_secs(20), |s| {
            ["home", "broken", "leak", "secure", "dns-ok"]
                .iter()
                .all(|t| has(s, "gwanje_target_up", t))
        })
        .await;

    // Per-target series under blackbox_exporter's names, labelled by service and target.
    let v = |name: &str, target: &str| expo::value(&s, name, &[("target", target)]);
    assert_eq!(
        expo::value(
            &s,
            "probe_success",
            &[("service", "portal"), ("target", "home")]
        ),
        Some(1.0)
    );
    assert_eq!(v("probe_success", "broken"), Some(0.0));
    assert_eq!(v("probe_http_status_code", "broken"), Some(503.0));
    assert_eq!(v("gwanje_target_up", "home"), Some(1.0));
    assert_eq!(v("gwanje_target_up", "broken"), Some(0.0));
    for phase in ["resolve", "connect", "tls", "processing", "transfer"] {
        assert!(
            expo::value(
                &s,
                "probe_http_duration_seconds",
                &[("target", "secure"), ("phase", phase)]
            )
            .is_some(),
            "{phase}"
        );
    }
    assert!(
        expo::value(
            &s,
            "probe_http_duration_seconds",
            &[("target", "secure"), ("phase", "tls")]
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        v("probe_ssl_earliest_cert_expiry", "secure"),
        Some(c.ca_not_after as f64)
    );
    assert_eq!(v("probe_http_ssl", "secure"), Some(1.0));
    assert_eq!(
        expo::value(
            &s,
            "probe_tls_version_info",
            &[("target", "secure"), ("version", "TLS 1.3")]
        ),
        Some(1.0)
    );
    assert_eq!(v("probe_ip_protocol", "home"), Some(4.0));
    assert_eq!(v("probe_dns_query_succeeded", "dns-ok"), Some(1.0));
    assert_eq!(v("probe_http_version", "secure"), Some(2.0));
    assert_eq!(v("probe_http_content_length", "home"), Some(62.0));
    assert_eq!(v("probe_failed_due_to_regex", "home"), Some(0.0));
    assert_eq!(v("gwanje_personal_data_detected", "leak"), Some(1.0));
    assert_eq!(v("probe_success", "leak"), Some(0.0));
    assert_eq!(v("probe_dns_answer_rrs", "dns-ok"), Some(1.0));
    assert!(
        expo::value(
            &s,
            "probe_dns_duration_seconds",
            &[("target", "dns-ok"), ("phase", "request")]
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(v("probe_success", "web-port"), Some(1.0));
    if common::is_root() {
        assert!(
            expo::value(
                &s,
                "probe_icmp_duration_seconds",
                &[("target", "loopback"), ("phase", "rtt")]
            )
            .unwrap()
                > 0.0
        );
        assert_eq!(v("probe_icmp_reply_hop_limit", "loopback"), Some(64.0));
        // blackbox's duration: one echo exchange, not gwanje's spaced echoes.
        let phases = expo::sum(&s, "probe_icmp_duration_seconds", &[("target", "loopback")]);
        let duration = v("probe_duration_seconds", "loopback").unwrap();
        assert!((duration - phases).abs() < 1e-6, "{duration} vs {phases}");
        assert!(v("gwanje_icmp_rtt_max_seconds", "loopback").unwrap() > 0.0);
    }
    assert!(
        expo::value(
            &s,
            "gwanje_probes_total",
            &[
                ("service", "portal"),
                ("kind", "http"),
                ("result", "status")
            ]
        )
        .unwrap()
            >= 2.0
    );
    assert!(
        expo::value(
            &s,
            "gwanje_probes_total",
            &[
                ("service", "portal"),
                ("kind", "http"),
                ("result", "personal_data")
            ]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        expo::value(
            &s,
            "gwanje_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(
        expo::value(&s, "gwanje_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert!(
        expo::value(
            &s,
            "gwanje_config_last_reload_success_timestamp_seconds",
            &[]
        )
        .unwrap()
            > 1.7e9
    );

    promtool_check_metrics(&client::get(addr, "/metrics").await.unwrap().body);
    assert_openmetrics_gzipped(addr).await;

    // A good reload (SIGHUP) adds a target and keeps the others' state.
    dir.write_catalog(
        "extra",
        &format!(
            "service: extra\ntargets:\n  - {{name: added, http: {{url: '{}'}}}}\n",
            web.url("/")
        ),
    );
    d.signal(libc::SIGHUP);
    let s = d
        .scrape_until(Duration::from_secs(10), |s| {
            has(s, "probe_success", "added")
        })
        .await;
    assert_eq!(
        expo::value(&s, "gwanje_config_reloads_total", &[("result", "success")]),
        Some(1.0)
    );
    assert_eq!(
        expo::value(&s, "gwanje_target_up", &[("target", "broken")]),
        Some(0.0),
        "state of unchanged targets is kept"
    );

    // A bad reload needs the token, is refused, and the old plan keeps running.
    dir.write_catalog(
        "extra",
        "service: extra\ntargets:\n  - {name: added, http: {url: 'not a url'}}\n",
    );
    let denied = client::request("POST", addr, "/-/reload", &[])
        .await
        .unwrap();
    assert_eq!(denied.status, 401);
    let wrong = client::request(
        "POST",
        addr,
        "/-/reload",
        &[("authorization", "Bearer nope")],
    )
    .await
    .unwrap();
    assert_eq!(wrong.status, 401);
    let auth = format!("Bearer {TOKEN}");
    let refused = client::request("POST", addr, "/-/reload", &[("authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("extra.yaml:3:") && refused.body.contains("targets[0].http.url"),
        "{}",
        refused.body
    );
    let before = expo::sum(
        &expo::parse(&client::get(addr, "/metrics").await.unwrap().body),
        "gwanje_probes_total",
        &[("service", "extra")],
    );
    let s = d
        .scrape_until(Duration::from_secs(10), |s| {
            expo::sum(s, "gwanje_probes_total", &[("service", "extra")]) >= before + 2.0
        })
        .await;
    assert_eq!(
        expo::value(&s, "gwanje_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert_eq!(
        expo::value(&s, "gwanje_config_reloads_total", &[("result", "failure")]),
        Some(1.0)
    );
    assert_eq!(
        expo::value(&s, "probe_success", &[("target", "added")]),
        Some(1.0),
        "the old plan keeps probing"
    );

    let status = d.stop();
    assert!(status.success(), "clean exit on SIGTERM: {status}");

    // Logs: JSON lines, one line per state change, never the leaked number or the token.
    let log = std::fs::read_to_string(dir.dir.path().join("gwanje.log")).unwrap();
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(
        !log.contains(fleet::VALID_RRN) && !log.contains("900101"),
        "personal data leaked into the log"
    );
    assert!(!log.contains(TOKEN), "the admin token leaked into the log");
    let downs = log
        .lines()
        .filter(|l| l.contains("\"health_changed\"") && l.contains("portal/broken is down"))
        .count();
    assert_eq!(downs, 1, "one log line per state change:\n{log}");
    assert!(log.contains("configuration reload failed"));
}

/// Asks as Prometheus 2.42 does: OpenMetrics preferred, gzip accepted.
async fn assert_openmetrics_gzipped(addr: std::net::SocketAddr) {
    use std::io::Read;
    let resp = client::request_raw(
        "GET",
        addr,
        "/metrics",
        &[
            (
                "accept",
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            ),
            ("accept-encoding", "gzip"),
        ],
        "",
    )
    .await
    .unwrap();
    let header = |name| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(header("content-encoding").as_deref(), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&resp.body()[..])
        .read_to_string(&mut text)
        .expect("a gzip body");
    assert!(text.ends_with("\n# EOF\n"), "no # EOF at the end");
    assert!(text.contains("\n# TYPE gwanje_probes counter\n"), "{text}");
    assert!(!text.contains("# TYPE gwanje_probes_total"));
    assert!(text.contains("\ngwanje_probes_total{"));
    assert!(text.contains("\nprobe_success{"));
    // Without Accept headers: the text format, uncompressed.
    let plain = client::request_raw("GET", addr, "/metrics", &[], "")
        .await
        .unwrap();
    assert_eq!(
        plain.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(!String::from_utf8_lossy(plain.body()).contains("# EOF"));
}

fn promtool_check_metrics(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            !common::required("promtool (Debian package prometheus)"),
            "promtool is required"
        );
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_answers_a_configured_targets_latest_result_like_blackbox_and_nothing_else() {
    let web = fleet::http(fleet::app()).await;
    let home = web.url("/");
    let broken = web.url("/status/503");
    let dir = ConfigDir::new(
        "listen: 127.0.0.1:0\ndefaults: {interval: 200ms, timeout: 150ms}\n",
        &[(
            "portal",
            &format!(
                "service: portal\ntargets:\n  - {{name: home, http: {{url: '{home}'}}}}\n  - {{name: broken, http: {{url: '{broken}'}}}}\n"
            ),
        )],
    );
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let probe = |target: &str| {
        format!(
            "/probe?module=http_2xx&target={}",
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        )
    };
    // A blackbox scrape config lists URLs: the URL finds the target.
    let mut answer = None;
    for _ in 0..50 {
        let r = client::get(d.addr, &probe(&home)).await.unwrap();
        if r.status == 200 {
            answer = Some(r.body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = answer.expect("a result for the home page");
    let samples = expo::parse(&body);
    assert_eq!(
        expo::value(&samples, "probe_success", &[]),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        expo::value(&samples, "probe_http_status_code", &[]),
        Some(200.0),
        "{body}"
    );
    assert!(
        !body.contains("service=") && !body.contains("target="),
        "bare, like blackbox: {body}"
    );
    // By service/target too, and a failing one says so.
    let r = client::get(d.addr, &probe("portal/broken")).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        expo::value(&expo::parse(&r.body), "probe_success", &[]),
        Some(0.0),
        "{}",
        r.body
    );
    // Anything else is refused, never probed: no SSRF through /probe.
    for other in [
        "http://169.254.169.254/latest/meta-data/",
        "127.0.0.1:22",
        "portal/nothing",
    ] {
        let r = client::get(d.addr, &probe(other)).await.unwrap();
        assert_eq!(r.status, 400, "{other}: {}", r.body);
    }
    assert!(d.stop().success());
}

/// CPU seconds (user + system) `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").unwrap().1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf reads a constant of the system.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_for_an_unknown_name_costs_next_to_nothing_at_five_thousand_targets() {
    let web = fleet::http(fleet::app()).await;
    let mut catalog = String::from("service: fleet\ninterval: 24h\ntimeout: 1s\ntargets:\n");
    for i in 0..5000 {
        catalog.push_str(&format!(
            "  - {{name: t{i}, http: {{url: '{}'}}}}\n",
            web.url(&format!("/?n={i}"))
        ));
    }
    let dir = ConfigDir::new("listen: 127.0.0.1:0\n", &[("fleet", &catalog)]);
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(60)).await;
    // The last target is found by its key and by its URL.
    let last = web.url("/?n=4999");
    for name in ["fleet/t4999".to_string(), last] {
        let path = format!(
            "/probe?target={}",
            url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        );
        let r = client::get(d.addr, &path).await.unwrap();
        assert!(r.status == 200 || r.status == 503, "{name}: {}", r.status);
    }
    let before = cpu_seconds(d.pid());
    for i in 0..200 {
        let r = client::get(d.addr, &format!("/probe?target=nope-{i}"))
            .await
            .unwrap();
        assert_eq!(r.status, 400);
    }
    let used = cpu_seconds(d.pid()) - before;
    // Scanning 5,000 targets × their jobs per request cost about 0.26 s
    // each in a release build; an index costs microseconds.
    assert!(used < 2.0, "{used} CPU seconds for 200 unknown names");
}
