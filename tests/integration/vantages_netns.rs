//! Three sites in network namespaces, one vantage each, following each
//! other over a management network: a site's uplink is cut, the portal
//! fails for everyone, and one site's primary path breaks. Each must be
//! told apart: the cut site is isolated and nothing else is paged; the
//! outage is the service's, named by all three vantages, and moves no
//! route; the broken path fails over at its own site only.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::failover;
use gwanje::testbed::sites::{INTERVAL_MS, Sites};
use gwanje::testbed::topology::{GW_A, GW_B, PORTAL};
use gwanje::testbed::{Failure, Router, TestbedError};

fn firing<'a>(s: &'a serde_json::Value, name: &str) -> Vec<&'a serde_json::Value> {
    s["alerts"]
        .as_array()
        .map(|a| a.iter().filter(|a| a["name"] == name).collect())
        .unwrap_or_default()
}

fn verdict<'a>(s: &'a serde_json::Value, target: &str) -> &'a serde_json::Value {
    s["vantage"]["verdicts"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["target"] == target))
        .map_or(&serde_json::Value::Null, |v| &v["verdict"])
}

fn ok<T>(r: Result<T, TestbedError>, sites: Option<&Sites>) -> T {
    r.unwrap_or_else(|e| {
        let logs = sites.map_or(String::new(), |s| {
            s.sites
                .iter()
                .map(|x| {
                    let log = x.gwanje.log_text();
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    format!(
                        "--- {}:\n{}",
                        x.name,
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        panic!("{e}\n{logs}")
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

#[test]
fn three_sites_tell_a_cut_site_an_outage_and_a_broken_path_apart() {
    if !failover::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = Path::new(env!("CARGO_BIN_EXE_gwanje"));
    let sites = ok(Sites::start(exe, dir.path(), &["a", "b", "c"]), None);
    let s = |n: &str| sites.site(n);
    let failovers = |n: &str| s(n).gwanje.metric_sum("gwanje_failovers_total");

    // 1. Site c's uplink is cut.
    let cut_at = now_ms();
    ok(sites.uplink("c", false), Some(&sites));
    let a = ok(
        s("a").wait_status(Duration::from_secs(5), "c isolated", |st| {
            firing(st, "VantageIsolated")
                .iter()
                .any(|x| x["labels"]["vantage"] == "c")
        }),
        Some(&sites),
    );
    let started = firing(&a, "VantageIsolated")[0]["starts_at_ms"]
        .as_u64()
        .expect("starts_at_ms");
    let took = started.saturating_sub(cut_at);
    eprintln!("c isolated at a {took} ms after the cut");
    // Controls fail twice in a row (two 100 ms intervals), a probe's
    // timeout, and the stream's 100 ms of coalescing.
    assert!(took <= 2 * INTERVAL_MS + 80 + 100 + 300, "{took} ms");
    let c = ok(
        s("c").wait_status(Duration::from_secs(5), "c isolated at c", |st| {
            !firing(st, "VantageIsolated").is_empty()
        }),
        Some(&sites),
    );
    let own = firing(&c, "VantageIsolated")[0]["starts_at_ms"]
        .as_u64()
        .expect("starts_at_ms")
        .saturating_sub(cut_at);
    eprintln!("c isolated at c itself {own} ms after the cut");
    // Decided by c's own core at its controls' second failure in a row.
    assert!(own <= 2 * INTERVAL_MS + 80 + 150, "{own} ms");
    std::thread::sleep(Duration::from_secs(3));
    for n in ["a", "b", "c"] {
        let st = s(n).gwanje.status();
        for name in [
            "TargetDown",
            "ServiceDown",
            "PathDown",
            "MonitorIsolated",
            "FailoverImpossible",
        ] {
            assert!(
                firing(&st, name).is_empty(),
                "{n}: {name} during c's cut:\n{st:#}"
            );
        }
        assert_eq!(firing(&st, "VantageIsolated").len(), 1, "{n}: {st:#}");
        assert_eq!(failovers(n), 0.0, "{n}: no route change");
        assert_eq!(s(n).route().as_deref(), Some(GW_A), "{n}");
    }
    ok(sites.uplink("c", true), Some(&sites));
    ok(
        s("a").wait_status(Duration::from_secs(10), "c back", |st| {
            firing(st, "VantageIsolated").is_empty() && verdict(st, "portal/http") == "up"
        }),
        Some(&sites),
    );

    // 2. The portal fails for every vantage.
    let outage = Failure::ServiceRefuses {
        addr: PORTAL,
        port: 80,
    };
    let failed = Instant::now();
    for x in &sites.sites {
        ok(outage.apply(&x.bed), Some(&sites));
    }
    for n in ["a", "b", "c"] {
        let st = ok(
            s(n).wait_status(Duration::from_secs(15), "ServiceDown naming 3 of 3", |st| {
                firing(st, "ServiceDown").iter().any(|x| {
                    x["labels"]["target"] == "http"
                        && x["summary"].as_str().is_some_and(|t| t.contains("3 of 3"))
                }) && verdict(st, "portal/http") == "down"
            }),
            Some(&sites),
        );
        assert!(firing(&st, "TargetDown").is_empty(), "{n}");
    }
    eprintln!(
        "ServiceDown 3 of 3 at every site {:?} after the outage",
        failed.elapsed()
    );
    for n in ["a", "b", "c"] {
        assert_eq!(failovers(n), 0.0, "{n}: an outage moves no route");
        assert_eq!(s(n).route().as_deref(), Some(GW_A), "{n}");
    }
    for x in &sites.sites {
        ok(outage.repair(&x.bed), Some(&sites));
    }
    for n in ["a", "b", "c"] {
        ok(
            s(n).wait_status(Duration::from_secs(15), "portal up again", |st| {
                firing(st, "ServiceDown").is_empty() && verdict(st, "portal/http") == "up"
            }),
            Some(&sites),
        );
    }

    // 3. Site a's primary router stops forwarding: a fails over, alone.
    let broken = Failure::NoForwarding(Router::A);
    ok(broken.apply(&s("a").bed), Some(&sites));
    let moved = (0..200).find(|_| {
        std::thread::sleep(Duration::from_millis(50));
        s("a").route().as_deref() == Some(GW_B)
    });
    assert!(moved.is_some(), "a moved to its standby");
    let st = ok(
        s("a").wait_status(Duration::from_secs(5), "PathDown at a", |st| {
            firing(st, "PathDown")
                .iter()
                .any(|x| x["labels"]["path"] == "primary")
        }),
        Some(&sites),
    );
    assert!(
        firing(&st, "ServiceDown").is_empty(),
        "a's path, not the service: {st:#}"
    );
    std::thread::sleep(Duration::from_secs(2));
    for n in ["b", "c"] {
        let st = s(n).gwanje.status();
        assert!(firing(&st, "PathDown").is_empty(), "{n}: {st:#}");
        assert_eq!(failovers(n), 0.0, "{n}");
        assert_eq!(s(n).route().as_deref(), Some(GW_A), "{n}");
        for t in ["portal/icmp", "portal/http"] {
            assert_eq!(verdict(&st, t), "up", "{n}: {t}: {st:#}");
        }
    }
    assert_eq!(failovers("a"), 1.0);
    ok(broken.repair(&s("a").bed), Some(&sites));

    // a's journal replays through the same core: every verdict and alert.
    let journal = s("a").dir.join("journal");
    drop(sites);
    let out = std::process::Command::new(exe)
        .args(["replay", "--verify", "--journal"])
        .arg(&journal)
        .output()
        .expect("replay");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.starts_with("identical: "),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
