//! The Grafana dashboards against a real Prometheus (Debian package) that
//! scrapes a running gwanje on a loopback fleet where some targets fail:
//! every panel's query must parse and return data, the JSON must be
//! well-formed with unique panel ids, and no data source uid is hard-coded.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::companions::{self, Recorder};
use common::daemon::Daemon;
use common::plan::ConfigDir;
use common::{certs, client, dns, fleet};

async fn query(prom: std::net::SocketAddr, expr: &str) -> serde_json::Value {
    let mut url = url::Url::parse("http://x/api/v1/query").unwrap();
    url.query_pairs_mut().append_pair("query", expr);
    let path = format!("{}?{}", url.path(), url.query().unwrap());
    let body = client::get(prom, &path).await.unwrap().body;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{expr}: {e}: {body}"))
}

/// Grafana variables replaced the way a user's selection would.
fn expand(expr: &str) -> String {
    common::dashboards::expand(expr, "15s")
}

/// The series of an instant query's result.
fn series(r: &serde_json::Value) -> Vec<serde_json::Map<String, serde_json::Value>> {
    r["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("not a vector: {r}"))
        .iter()
        .map(|s| s["metric"].as_object().cloned().unwrap_or_default())
        .collect()
}

/// The PromQL of the community dashboards people import (Grafana.com 7587
/// and 13659, in tests/fixtures/community): their target variable lists
/// every gwanje target; each panel for one target shows that target alone
/// (their rows repeat per target); for all targets at once, one row each.
async fn community_dashboards(prom: std::net::SocketAddr, targets: &[String]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let label_values = regex::Regex::new(r"^label_values\((.*), (\w+)\)$").unwrap();
    for id in [7587, 13659] {
        let file = root.join(format!("tests/fixtures/community/{id}.yml"));
        let spec: yaml_serde::Value =
            yaml_serde::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let per = spec["per_target"].as_str().unwrap();
        let fill = |e: &str| e.replace("$job", "gwanje").replace("$__range", "1m");
        for (name, q) in spec["variables"].as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            let c = label_values
                .captures(q.as_str().unwrap())
                .unwrap_or_else(|| panic!("{id}: variable {name}: {q:?}"));
            let mut url =
                url::Url::parse(&format!("http://x/api/v1/label/{}/values", &c[2])).unwrap();
            url.query_pairs_mut().append_pair("match[]", &fill(&c[1]));
            let path = format!("{}?{}", url.path(), url.query().unwrap());
            let body = client::get(prom, &path).await.unwrap().body;
            let values: serde_json::Value = serde_json::from_str(&body).unwrap();
            let mut got: Vec<String> = values["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            got.sort();
            if name == per {
                assert_eq!(got, targets, "{id}: ${name} lists every gwanje target");
            } else {
                assert!(
                    got.contains(&"gwanje".to_string()),
                    "{id}: ${name}: {got:?}"
                );
            }
        }
        let var = format!("${per}");
        for q in spec["queries"].as_sequence().unwrap() {
            let panel = q["panel"].as_str().unwrap();
            let expr = fill(q["expr"].as_str().unwrap());
            let all = query(prom, &expr.replace(&var, ".+")).await;
            assert_eq!(all["status"], "success", "{id} / {panel}: {expr}: {all}");
            // A row is what is left once gwanje's identity labels are set aside.
            let rows: Vec<_> = series(&all)
                .into_iter()
                .map(|mut m| {
                    for l in ["__name__", "service", "target", "path", "gwanje", "job"] {
                        m.remove(l);
                    }
                    m
                })
                .collect();
            assert!(!rows.is_empty(), "{id} / {panel}: {expr} returned nothing");
            for (i, r) in rows.iter().enumerate() {
                assert!(
                    !rows[..i].contains(r),
                    "{id} / {panel}: two series would show as one row {r:?}"
                );
            }
            let mut shown = Vec::new();
            for t in targets {
                let one = expr.replace(&var, &regex::escape(t).replace('\\', "\\\\"));
                let r = query(prom, &one).await;
                let s = series(&r);
                for m in &s {
                    match m.get("instance") {
                        Some(i) => assert_eq!(i, t, "{id} / {panel} for {t}: {r}"),
                        None => assert_eq!(s.len(), 1, "{id} / {panel} for {t}: {r}"),
                    }
                }
                if !s.is_empty() {
                    shown.push(t.clone());
                }
            }
            let mut in_all: Vec<String> = rows
                .iter()
                .filter_map(|m| {
                    m.get("instance")
                        .and_then(|i| i.as_str())
                        .map(str::to_string)
                })
                .collect();
            in_all.sort();
            in_all.dedup();
            if !in_all.is_empty() {
                assert_eq!(
                    in_all, shown,
                    "{id} / {panel}: the targets shown one by one and all at once"
                );
            }
            assert!(!shown.is_empty(), "{id} / {panel}: no target shows data");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_data_from_a_real_prometheus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = certs::generate();
    let web = fleet::http(fleet::app()).await;
    let tls = fleet::https(fleet::app(), &c.valid).await;
    let ns = dns::serve().await;
    let rec = Recorder::start().await;
    let icmp = common::is_root();
    let portal = format!(
        "service: portal\ntargets:\n\
         \x20 - {{name: home, http: {{url: '{}'}}}}\n\
         \x20 - {{name: broken, http: {{url: '{}'}}}}\n\
         \x20 - {{name: leak, http: {{url: '{}'}}}}\n\
         \x20 - {{name: secure, http: {{url: '{}', tls: {{ca_file: {}}}}}}}\n\
         \x20 - {{name: dns, dns: {{server: '{}', name: ok.test.}}}}\n{}",
        web.url("/"),
        web.url("/status/503"),
        web.url("/pii"),
        tls.https_url("/"),
        c.ca_file.display(),
        ns.addr,
        if icmp {
            "  - {name: ping, icmp: {host: 127.0.0.1}}\n"
        } else {
            ""
        }
    );
    let paths = if icmp {
        "paths:\n  - {name: a, gateway: 127.0.0.1, source: 127.0.0.1, router_check: {interval: 500ms, timeout: 300ms}}\n  \
         - {name: b, gateway: 127.0.0.2, source: 127.0.0.1, router_check: {interval: 500ms, timeout: 300ms}}\n\
         failover_groups:\n  - {name: local, routes: [198.18.200.0/24], paths: [a, b], checks: [portal/home], action: observe}\n"
    } else {
        ""
    };
    let dir = ConfigDir::new(
        &format!(
            "listen: 127.0.0.1:0\ndefaults: {{interval: 500ms, timeout: 400ms}}\nalerting: {{webhooks: [{{url: '{}'}}], resend_interval: 1s}}\n{paths}",
            rec.server.url("/hook")
        ),
        &[("portal", &portal)],
    );
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    let addr = d.addr;
    d.wait_ready(Duration::from_secs(20)).await;

    let prom_dir = tempfile::tempdir().unwrap();
    let rules = root.join("deploy/prometheus/rules/gwanje.yml");
    // The shipped scrape job (its relabeling included), pointed at this gwanje.
    let shipped: yaml_serde::Value = yaml_serde::from_str(
        &std::fs::read_to_string(root.join("deploy/prometheus/prometheus.yml")).unwrap(),
    )
    .unwrap();
    let mut job = shipped["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|j| j["job_name"].as_str() == Some("gwanje"))
        .cloned()
        .unwrap();
    job["scrape_interval"] = "1s".into();
    job["static_configs"] = yaml_serde::from_str(&format!("[{{targets: ['{addr}']}}]")).unwrap();
    let prom_config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: ['{}']\nscrape_configs:\n{}",
        rules.display(),
        yaml_serde::to_string(&vec![job]).unwrap()
    );
    let Some(mut prom) = companions::prometheus(prom_dir.path(), &prom_config) else {
        return;
    };
    prom.wait_ready(Duration::from_secs(30)).await;
    // Enough samples for rates and recording rules.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = query(prom.addr, "count(count_over_time(gwanje_build_info[1m]) >= 6) and count(service:probe_success:ratio)").await;
        if r["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus gathered no data:\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every probed target is an instance of its own; gwanje's own series
    // keep the scrape's.
    let r = query(prom.addr, "count by (instance, gwanje) (probe_success)").await;
    let instances: Vec<String> = r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["instance"].as_str().unwrap_or("").to_string())
        .collect();
    for want in ["portal/broken", "portal/dns", "portal/secure"] {
        assert!(
            instances.contains(&want.to_string()),
            "{want} in {instances:?}"
        );
    }
    // portal/home is the group's check when there are paths: one per path.
    let home: &[&str] = if icmp {
        &["portal/home@a", "portal/home@b"]
    } else {
        &["portal/home"]
    };
    for want in home {
        assert!(
            instances.contains(&want.to_string()),
            "{want} in {instances:?}"
        );
    }
    let mut unique = instances.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        instances.len(),
        "one series per instance: {instances:?}"
    );
    assert!(
        r["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["metric"]["gwanje"] == addr.to_string()),
        "the gwanje that measured it: {r}"
    );
    community_dashboards(prom.addr, &unique).await;
    let own = query(prom.addr, "gwanje_build_info").await;
    assert_eq!(
        own["data"]["result"][0]["metric"]["instance"],
        addr.to_string(),
        "{own}"
    );

    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let dash: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let panels = dash["panels"].as_array().expect("panels");
        let mut ids: Vec<u64> = panels
            .iter()
            .map(|p| p["id"].as_u64().expect("panel id"))
            .collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(
            ids.len(),
            before,
            "{}: panel ids are unique",
            path.display()
        );
        assert!(
            dash["templating"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "datasource" && v["type"] == "datasource"),
            "{}: has a datasource variable",
            path.display()
        );
        for uid in text
            .match_indices("\"uid\": \"")
            .map(|(i, _)| &text[i + 8..text[i + 8..].find('"').unwrap() + i + 8])
        {
            assert!(
                uid == "${datasource}"
                    || uid == "-- Grafana --"
                    || uid == dash["uid"].as_str().unwrap(),
                "{}: hard-coded data source uid {uid}",
                path.display()
            );
        }
        // The vantages' dashboard needs several vantages
        // (tests/integration/vantages.rs), the cluster's a cluster
        // (tests/integration/cluster_netns.rs).
        if path
            .file_name()
            .is_some_and(|n| n == "vantages.json" || n == "cluster.json")
        {
            continue;
        }
        for p in panels {
            for t in p["targets"].as_array().unwrap() {
                let expr = expand(t["expr"].as_str().unwrap());
                if !icmp
                    && (expr.contains("icmp")
                        || expr.contains("router")
                        || expr.contains("path")
                        || expr.contains("group"))
                {
                    continue;
                }
                let r = query(prom.addr, &expr).await;
                assert_eq!(
                    r["status"],
                    "success",
                    "{} / {}: {expr}: {r}",
                    path.display(),
                    p["title"]
                );
                let n = r["data"]["result"].as_array().map_or(0, Vec::len);
                assert!(
                    n > 0,
                    "{} / {}: {expr} returned no data",
                    path.display(),
                    p["title"]
                );
                checked += 1;
            }
        }
        for a in dash["annotations"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["expr"].is_string())
        {
            let r = query(prom.addr, &expand(a["expr"].as_str().unwrap())).await;
            assert_eq!(r["status"], "success", "annotation {}", a["name"]);
        }
    }
    assert!(
        checked >= if icmp { 24 } else { 15 },
        "checked {checked} panel queries"
    );
    let _ = d.stop();
}
