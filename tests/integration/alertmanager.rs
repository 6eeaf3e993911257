//! gwanje's alerts through the real Alertmanager (Debian package
//! `prometheus-alertmanager`) to a receiver the test starts, and straight to
//! a signed webhook: firing with the right labels, escalation of an
//! unacknowledged critical alert, acknowledgement, and resolution.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::companions::{self, Recorder};
use common::daemon::Daemon;
use common::plan::ConfigDir;
use common::{client, fleet};

const TOKEN: &str = "am-test-token-5d1e";
const SECRET: &str = "webhook-secret-e0b7";

/// Finds, in Alertmanager's notifications, an alert with `status` matching `pred`.
fn notified<'a>(
    status: &'a str,
    pred: impl Fn(&serde_json::Value) -> bool + 'a,
) -> impl Fn(&Recorder) -> Option<serde_json::Value> + 'a {
    move |r| {
        r.json_on("/am")
            .into_iter()
            .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
            .find(|a| a["status"] == status && pred(a))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_escalate_acknowledge_and_resolve_through_alertmanager() {
    let rec = Recorder::start().await;
    let am_dir = tempfile::tempdir().unwrap();
    let am_config = format!(
        "route:\n  receiver: test\n  group_by: [alertname, target, escalation]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: test\n    webhook_configs:\n      - url: '{}'\n        send_resolved: true\n",
        rec.server.url("/am")
    );
    let Some(mut am) = companions::alertmanager(am_dir.path(), &am_config) else {
        return;
    };
    am.wait_ready(Duration::from_secs(20)).await;

    // Two pages that leak a resident registration number until told not to.
    let leaking = Arc::new(AtomicBool::new(true));
    let flag = leaking.clone();
    let app = axum::Router::new().route(
        "/account",
        axum::routing::get(move || {
            let leak = flag.load(Ordering::SeqCst);
            async move {
                if leak {
                    format!("<p>{}</p>", fleet::VALID_RRN)
                } else {
                    "<p>ok</p>".to_string()
                }
            }
        }),
    );
    // A third page fails outright (503) until told to recover.
    let failing = Arc::new(AtomicBool::new(true));
    let broken = failing.clone();
    let app = app.route(
        "/forms",
        axum::routing::get(move || {
            let down = broken.load(Ordering::SeqCst);
            async move {
                if down {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let web = fleet::http(app).await;
    let dir = ConfigDir::new(
        &format!(
            "listen: 127.0.0.1:0\nadmin: {{token_file: token}}\ndefaults: {{interval: 500ms, timeout: 400ms}}\n\
             alerting:\n  alertmanagers: ['http://{}']\n  webhooks: [{{url: '{}', hmac_secret_file: secret}}]\n  \
             resend_interval: 1s\n  resolved_resend_for: 5s\n  escalate_after: 4s\n  runbook_url: 'https://runbooks.example/'\n",
            am.addr,
            rec.server.url("/hook")
        ),
        &[(
            "portal",
            &format!(
                "service: portal\ntargets:\n  - {{name: first, http: {{url: '{0}'}}}}\n  - {{name: second, http: {{url: '{0}'}}}}\n  \
                 - {{name: forms, http: {{url: '{1}'}}, health: {{fall: 2, rise: 2}}}}\n",
                web.url("/account"),
                web.url("/forms")
            ),
        )],
    );
    gwanje::config::write_secret_file(&dir.dir.path().join("token"), TOKEN).unwrap();
    gwanje::config::write_secret_file(&dir.dir.path().join("secret"), SECRET).unwrap();
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    let addr = d.addr;
    d.wait_ready(Duration::from_secs(20)).await;

    // Firing, routed by Alertmanager to the receiver, with labels to act on.
    let is = |target: &'static str| {
        move |a: &serde_json::Value| {
            a["labels"]["alertname"] == "PersonalDataExposed" && a["labels"]["target"] == target
        }
    };
    let first = rec
        .wait_for(
            Duration::from_secs(20),
            "first alert via Alertmanager",
            notified("firing", is("first")),
        )
        .await;
    let labels = &first["labels"];
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["service"], "portal");
    assert_eq!(labels["source"], "gwanje");
    assert!(
        first["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("portal/first")
    );
    assert!(
        !first.to_string().contains(fleet::VALID_RRN),
        "the number never leaves gwanje"
    );
    assert_eq!(
        first["annotations"]["runbook_url"],
        "https://runbooks.example/PersonalDataExposed.md"
    );
    assert_eq!(
        first["generatorURL"],
        format!("http://{addr}/api/v1/status")
    );

    // A directly probed target that is down has an alert of its own.
    let forms = |a: &serde_json::Value| {
        a["labels"]["alertname"] == "TargetDown" && a["labels"]["target"] == "forms"
    };
    let down = rec
        .wait_for(
            Duration::from_secs(20),
            "TargetDown via Alertmanager",
            notified("firing", forms),
        )
        .await;
    assert_eq!(down["labels"]["severity"], "warning");
    assert_eq!(down["labels"]["service"], "portal");
    assert_eq!(
        down["annotations"]["runbook_url"],
        "https://runbooks.example/TargetDown.md"
    );
    assert!(
        rec.json_on("/am")
            .iter()
            .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
            .all(|a| a["labels"]["alertname"] != "TargetDown" || a["labels"]["target"] == "forms"),
        "a leaking page raises PersonalDataExposed, not TargetDown"
    );

    // Acknowledge the first alert through the API (token required).
    let id = labels["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/alerts/{id}/ack");
    assert_eq!(
        client::request("POST", addr, &path, &[])
            .await
            .unwrap()
            .status,
        401
    );
    let auth = format!("Bearer {TOKEN}");
    let ack = client::request("POST", addr, &path, &[("authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(ack.status, 200, "{}", ack.body);
    let listed = client::get(addr, "/api/v1/alerts").await.unwrap().body;
    assert!(listed.contains("\"acknowledged_by\":\"api\""), "{listed}");

    // The second, unacknowledged, escalates; the acknowledged one never does.
    let escalated = rec
        .wait_for(
            Duration::from_secs(20),
            "escalation",
            notified("firing", |a| a["labels"]["escalation"] == "1"),
        )
        .await;
    assert_eq!(escalated["labels"]["target"], "second");
    let m = common::expo::parse(&client::get(addr, "/metrics").await.unwrap().body);
    assert_eq!(
        common::expo::value(&m, "gwanje_alerts_unacknowledged_critical", &[]),
        Some(1.0)
    );
    assert!(
        common::expo::sum(
            &m,
            "gwanje_alert_deliveries_total",
            &[("result", "success")]
        ) >= 2.0
    );

    // The webhook got the same alerts, signed with the shared secret.
    let signed = {
        let got = rec.got.lock().unwrap();
        got.iter()
            .find(|r| r.path == "/hook")
            .cloned()
            .expect("webhook delivery")
    };
    let sig = signed.headers["x-gwanje-signature"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sig,
        format!(
            "sha256={}",
            gwanje::alert::sign(SECRET.as_bytes(), &signed.body)
        )
    );

    // Recovery resolves them all, through Alertmanager.
    leaking.store(false, Ordering::SeqCst);
    failing.store(false, Ordering::SeqCst);
    rec.wait_for(
        Duration::from_secs(20),
        "resolution",
        notified("resolved", is("first")),
    )
    .await;
    rec.wait_for(
        Duration::from_secs(20),
        "TargetDown resolved after rise",
        notified("resolved", forms),
    )
    .await;
    assert!(
        rec.got
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.headers.get("authorization").is_none())
    );
    let _ = d.stop();
}

/// One alert as gwanje (or a Prometheus rule) sends it.
fn alert(name: &str, severity: &str, labels: &[(&str, &str)]) -> serde_json::Value {
    let mut l = serde_json::Map::new();
    l.insert("alertname".into(), name.into());
    l.insert("severity".into(), severity.into());
    l.insert("source".into(), "gwanje".into());
    for (k, v) in labels {
        l.insert((*k).into(), (*v).into());
    }
    serde_json::json!({ "labels": l, "annotations": {"summary": name} })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_inhibition_rule_of_the_shipped_config_does_what_it_says() {
    let rec = Recorder::start().await;
    let am_dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/alertmanager/alertmanager.yml"),
    )
    .unwrap();
    // The shipped routes and rules, delivering to the test's receiver.
    let config = shipped.replace("http://127.0.0.1:9095", &rec.server.url(""));
    let Some(mut am) = companions::alertmanager(am_dir.path(), &config) else {
        return;
    };
    am.wait_ready(Duration::from_secs(20)).await;
    let path = [("path", "primary")];
    let check = [
        ("service", "portal"),
        ("target", "home"),
        ("path", "primary"),
    ];
    let group = [("group", "citizen-services")];
    // A directly probed target: no path, no group.
    let direct = [("service", "mobile-id"), ("target", "health")];
    let service_down = alert(
        "ServiceDown",
        "critical",
        &[
            ("group", "citizen-services"),
            ("service", "portal"),
            ("target", "home"),
        ],
    );
    let degraded = alert(
        "ServiceDegraded",
        "warning",
        &[
            ("group", "citizen-services"),
            ("service", "portal"),
            ("target", "home"),
        ],
    );
    let executed = alert(
        "FailoverExecuted",
        "warning",
        &[
            ("group", "citizen-services"),
            ("from", "primary"),
            ("to", "standby"),
            ("reason", "path_failed"),
        ],
    );
    // With PathDown{primary} firing: only what it explains is muted.
    let round1 = [
        (alert("PathDown", "warning", &path), false),
        (alert("ProbeFailureRatioHigh", "warning", &check), true),
        (alert("CertificateExpiringSoon", "warning", &check), false),
        (alert("PersonalDataExposed", "critical", &check), false),
        (alert("IdentityMismatch", "critical", &check), false),
        (alert("TargetDown", "warning", &direct), false),
        (service_down.clone(), false),
        // Muted by ServiceDown of the same check, not by PathDown.
        (degraded.clone(), true),
        (alert("FailoverImpossible", "critical", &group), false),
        (executed.clone(), false),
    ];
    post_and_check(&am, &round1).await;
    // Then MonitorIsolated: gwanje's own view is suspect; personal data still pages.
    let round2 = [
        (alert("MonitorIsolated", "critical", &group), false),
        (alert("PathDown", "warning", &path), true),
        (alert("PersonalDataExposed", "critical", &check), false),
        (alert("IdentityMismatch", "critical", &check), false),
        (alert("TargetDown", "warning", &direct), true),
        (service_down, true),
        (degraded, true),
        (alert("FailoverImpossible", "critical", &group), true),
        (executed, false),
    ];
    post_and_check(&am, &round2).await;
}

/// Posts the alerts of `cases` and checks which are muted (inhibited).
async fn post_and_check(am: &companions::Proc, cases: &[(serde_json::Value, bool)]) {
    let batch: Vec<serde_json::Value> = cases.iter().map(|(a, _)| a.clone()).collect();
    let r = client::request_with_body(
        "POST",
        am.addr,
        "/api/v2/alerts",
        &[("content-type", "application/json")],
        &serde_json::to_string(&batch).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let want_muted = cases.iter().filter(|(_, m)| *m).count();
    let mut seen = Vec::new();
    for _ in 0..100 {
        let body = client::get(am.addr, "/api/v2/alerts").await.unwrap().body;
        seen = serde_json::from_str::<Vec<serde_json::Value>>(&body).unwrap();
        let muted = cases
            .iter()
            .filter(|(a, _)| {
                seen.iter().any(|x| {
                    x["labels"] == a["labels"]
                        && x["status"]["inhibitedBy"]
                            .as_array()
                            .is_some_and(|v| !v.is_empty())
                })
            })
            .count();
        if muted >= want_muted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (a, muted) in cases {
        let got = seen
            .iter()
            .find(|x| x["labels"] == a["labels"])
            .unwrap_or_else(|| panic!("{a} not in {seen:#?}"));
        let inhibited = got["status"]["inhibitedBy"]
            .as_array()
            .is_some_and(|v| !v.is_empty());
        assert_eq!(inhibited, *muted, "{}: {got:#}", a["labels"]["alertname"]);
    }
}
