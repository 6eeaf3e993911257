//! Replicated controllers on a real 3-member etcd (Debian's etcd-server) in
//! the failover testbed: two replicas of the real gwanje binary in the
//! client namespace, each with its co-located actuator steering the same
//! kernel route. Needs root, iproute2, nftables and etcd
//! (GWANJE_REQUIRE_NETNS=1 / GWANJE_REQUIRE_TOOLS=1 turn a missing one into
//! a failure).

#![allow(
    clippy::disallowed_methods,
    reason = "the tests measure takeovers in real time"
)]

use std::time::{Duration, Instant};

use crate::common;
use common::expo;
use common::failover::available;
use gwanje::testbed::Router::A;
use gwanje::testbed::cluster::{self, CLUSTER, Replicas, TTL, role};
use gwanje::testbed::etcd::Etcd;
use gwanje::testbed::gwanje::Gwanje;
use gwanje::testbed::topology::{GW_A, GW_B};
use gwanje::testbed::{Failure, Traffic, longest_gap};

fn tools() -> bool {
    let prometheus = std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if Etcd::installed() && prometheus {
        return true;
    }
    let required = std::env::var("GWANJE_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "GWANJE_REQUIRE_TOOLS=1 but etcd, etcdctl or prometheus is missing"
    );
    eprintln!("skipping: etcd or prometheus is not installed");
    false
}

/// One sample of metric `name` with `labels` (0 when absent or no answer).
fn metric(g: &Gwanje, name: &str, labels: &[(&str, &str)]) -> f64 {
    expo::value(&expo::parse(&g.metrics()), name, labels).unwrap_or(0.0)
}

fn firing(g: &Gwanje, name: &str) -> bool {
    g.status()["alerts"]
        .as_array()
        .is_some_and(|a| a.iter().any(|a| a["name"] == name))
}

/// Waits for `done`, failing the test with the replicas' logs.
fn wait(what: &str, limit: Duration, logs: &[&Gwanje], done: impl Fn() -> bool) -> Duration {
    cluster::wait(what, limit, done).unwrap_or_else(|e| {
        let logs: Vec<String> = logs.iter().map(|g| g.log_text()).collect();
        panic!("{e}\nlogs:\n{}", logs.join("\n----\n"))
    })
}

fn signal(g: &Gwanje, sig: i32) {
    // SAFETY: kill(2) on the PID of a child this test started.
    unsafe {
        libc::kill(g.pid() as i32, sig);
    }
}

/// The fences of the orders a replica's actuator applied, from its log.
fn applied_fences(g: &Gwanje) -> Vec<u64> {
    g.log_text()
        .lines()
        .filter(|l| l.contains("applied a route order"))
        .filter_map(|l| {
            let at = l.find("fence=")? + "fence=".len();
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The replicas with their folder (dropped after them).
struct Pair {
    r: Replicas,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Pair {
    type Target = Replicas;
    fn deref(&self) -> &Replicas {
        &self.r
    }
}

impl Pair {
    fn start(a_endpoints: &[String]) -> Pair {
        Self::start_with(a_endpoints, true)
    }

    fn start_with(a_endpoints: &[String], actuate: bool) -> Pair {
        let dir = tempfile::tempdir().expect("temp dir");
        let exe = env!("CARGO_BIN_EXE_gwanje");
        let r = Replicas::start_with(exe.as_ref(), dir.path(), a_endpoints, actuate)
            .unwrap_or_else(|e| {
                let logs: Vec<String> = ["gwanje-a.log", "gwanje-b.log", "gwanje.log"]
                    .iter()
                    .filter_map(|l| std::fs::read_to_string(dir.path().join(l)).ok())
                    .collect();
                panic!("replicas: {e}\n{}", logs.join("\n----\n"))
            });
        Pair { r, _dir: dir }
    }

    /// Replica `name`'s journal replayed: (at, effect) of every entry.
    fn replay(&self, name: &str) -> Vec<(u64, serde_json::Value)> {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gwanje"))
            .args(["replay", "--format", "json", "--journal"])
            .arg(self.dir().join(format!("journal-{name}")))
            .output()
            .expect("gwanje replay");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|e| (e["at"].as_u64().unwrap_or(0), e["effect"].clone()))
            .collect()
    }

    /// `gwanje replay --verify` of replica `name`'s journal: its output.
    fn verify(&self, name: &str) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gwanje"))
            .args(["replay", "--verify", "--journal"])
            .arg(self.dir().join(format!("journal-{name}")))
            .output()
            .expect("gwanje replay --verify");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "replay --verify of {name}: {text}");
        text
    }
}

/// The times a journal's replica led: [acquired, lost) in Unix ms.
fn terms(entries: &[(u64, serde_json::Value)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut since = None;
    for (at, e) in entries {
        let event = &e["Event"];
        if event.get("LeadershipAcquired").is_some() {
            since = Some(*at);
        } else if event.get("LeadershipLost").is_some()
            && let Some(s) = since.take()
        {
            out.push((s, *at));
        }
    }
    if let Some(s) = since {
        out.push((s, u64::MAX));
    }
    out
}

#[test]
fn a_killed_leader_is_replaced_within_the_ttl_and_stale_or_garbled_orders_are_refused() {
    if !available() || !tools() {
        return;
    }
    let pair = Pair::start(&Etcd::endpoints());
    let b = &pair.b;
    let prom = cluster::Prometheus::start(&pair).expect("prometheus in the namespace");
    std::thread::sleep(Duration::from_secs(3));
    signal(pair.a(), libc::SIGKILL);
    let took = wait("b takes over", TTL + Duration::from_secs(3), &[b], || {
        role(b, "leader")
    });
    eprintln!("takeover after kill -9: {took:?}");
    assert!(took <= TTL + Duration::from_secs(1), "took {took:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        pair.lab.route().as_deref(),
        Some(GW_A),
        "no route change in the takeover"
    );
    assert_eq!(pair.desired(), None, "no order was written");
    let fence = metric(b, "gwanje_cluster_fence", &[]);
    assert!(fence > 0.0, "b leads with a fence");
    assert_eq!(b.status()["cluster"]["role"], "leader");
    // A router host's actuator beside them: it applies orders, probes nothing.
    let c = pair.start_actuator(true).expect("gwanje actuate");
    wait(
        "the actuator answers",
        Duration::from_secs(10),
        &[&c],
        || c.status()["cluster"]["replica"] == "c",
    );
    assert_eq!(
        metric(&c, "gwanje_probes_total", &[]),
        0.0,
        "an actuator probes nothing"
    );

    // The primary breaks: the new leader orders the standby, under its fence.
    Failure::NoForwarding(A)
        .apply(&pair.lab.bed)
        .expect("break the primary");
    pair.lab
        .wait_route(GW_B, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", b.log_text()));
    let desired = pair.desired().expect("an order");
    assert_eq!(desired["path"], "standby");
    assert_eq!(desired["fence"].as_f64(), Some(fence), "{desired}");
    assert_eq!(metric(b, "gwanje_cluster_fence_applied", &[]), fence);
    wait(
        "the actuator applied it",
        Duration::from_secs(5),
        &[&c],
        || applied_fences(&c).last() == Some(&(fence as u64)),
    );
    let hook = std::fs::read_to_string(pair.hook_out()).unwrap_or_default();
    assert_eq!(
        hook,
        format!("standby {}\n", fence as u64),
        "the hook gets the fence"
    );

    // An older fence written straight into etcd: refused, counted,
    // alerted; the route stays.
    let key = format!("/gwanje/{CLUSTER}/desired/services");
    let stale = format!(
        r#"{{"path":"primary","from":"standby","fence":{},"reason":"failback","by":"a"}}"#,
        fence as u64 - 1
    );
    pair.etcd
        .etcdctl(&["put", &key, &stale])
        .expect("etcdctl put");
    wait(
        "the stale order is refused",
        Duration::from_secs(5),
        &[b],
        || {
            metric(
                b,
                "gwanje_fence_rejections_total",
                &[("reason", "stale_fence")],
            ) == 1.0
        },
    );
    wait("OrderRefused fires", Duration::from_secs(5), &[b], || {
        firing(b, "OrderRefused")
    });
    wait(
        "the actuator refuses it too",
        Duration::from_secs(5),
        &[&c],
        || {
            metric(
                &c,
                "gwanje_fence_rejections_total",
                &[("reason", "stale_fence")],
            ) == 1.0
                && firing(&c, "OrderRefused")
        },
    );
    // Garbage in the key: refused as unreadable.
    pair.etcd
        .etcdctl(&["put", &key, "{not json"])
        .expect("etcdctl put");
    wait(
        "the garbage is refused",
        Duration::from_secs(5),
        &[b],
        || {
            metric(
                b,
                "gwanje_fence_rejections_total",
                &[("reason", "unreadable")],
            ) == 1.0
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        pair.lab.route().as_deref(),
        Some(GW_B),
        "refused orders move nothing"
    );
    assert!(role(b, "leader"), "b still leads");
    dashboard_shows(&prom, b);
}

/// Every panel of the cluster dashboard returns data from the real
/// Prometheus that scraped the replicas through a takeover, an order and
/// refusals; the leader panel names the leader.
fn dashboard_shows(prom: &cluster::Prometheus, leader: &Gwanje) {
    // Scraped after the last refusal.
    std::thread::sleep(Duration::from_secs(2));
    let queries = common::dashboards::panel_queries("cluster.json", "1m");
    for (title, expr) in &queries {
        common::dashboards::assert_has_data(title, expr, &prom.query(expr));
    }
    assert!(
        queries.len() >= 9,
        "checked {} panel queries",
        queries.len()
    );
    let leaders = prom.query("gwanje_cluster_role{job=\"gwanje\", role=\"leader\"} == 1");
    let shown: Vec<&str> = leaders["data"]["result"]
        .as_array()
        .expect("vector")
        .iter()
        .filter_map(|s| s["metric"]["instance"].as_str())
        .collect();
    assert_eq!(
        shown,
        ["127.0.0.1:9471"],
        "the leader panel names b: {leaders}"
    );
    assert!(role(leader, "leader"));
    let refused = prom.query("sum(gwanje_fence_rejections_total{job=\"gwanje\"})");
    assert_eq!(refused["data"]["result"][0]["value"][1], "2", "{refused}");
}

#[test]
fn a_leader_killed_as_the_active_path_fails_has_traffic_moved_within_ttl_plus_two_seconds() {
    if !available() || !tools() {
        return;
    }
    let pair = Pair::start(&Etcd::endpoints());
    let traffic =
        Traffic::start(&pair.lab.bed.client, Duration::from_secs(30), 64).expect("traffic meter");
    std::thread::sleep(Duration::from_millis(500));
    let broken = Instant::now();
    signal(pair.a(), libc::SIGKILL);
    Failure::NoForwarding(A)
        .apply(&pair.lab.bed)
        .expect("break the primary");
    let moved = pair
        .lab
        .wait_route(GW_B, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", pair.b.log_text()));
    std::thread::sleep(Duration::from_millis(500));
    let replies = traffic.finish().expect("traffic meter");
    let gap = longest_gap(&replies, broken, Instant::now());
    eprintln!(
        "leader killed with the active path: route moved after {:?}, traffic gap {gap:?}",
        moved - broken
    );
    assert!(
        replies.iter().any(|t| *t > moved),
        "traffic flows after the move"
    );
    assert!(gap <= TTL + Duration::from_secs(2), "gap {gap:?}");
}

#[test]
fn a_paused_leader_wakes_to_change_nothing_and_every_actuator_saw_rising_fences() {
    if !available() || !tools() {
        return;
    }
    let pair = Pair::start(&Etcd::endpoints());
    let (a, b) = (pair.a(), &pair.b);
    let old = metric(a, "gwanje_cluster_fence", &[]);
    signal(a, libc::SIGSTOP);
    let stopped = Instant::now();
    Failure::NoForwarding(A)
        .apply(&pair.lab.bed)
        .expect("break the primary");
    wait("b takes over", TTL + Duration::from_secs(3), &[b], || {
        role(b, "leader")
    });
    pair.lab
        .wait_route(GW_B, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", b.log_text()));
    let fence = metric(b, "gwanje_cluster_fence", &[]);
    assert!(
        fence > old,
        "the new term has a higher fence ({fence} > {old})"
    );
    std::thread::sleep((2 * TTL).saturating_sub(stopped.elapsed()));
    signal(a, libc::SIGCONT);
    wait("a steps down", Duration::from_secs(5), &[a], || {
        !role(a, "leader")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pair.lab.route().as_deref(),
        Some(GW_B),
        "the old leader moved nothing"
    );
    assert_eq!(
        pair.desired().expect("b's order")["fence"].as_f64(),
        Some(fence),
        "the order in force is the new leader's"
    );
    assert_eq!(
        metric(a, "gwanje_cluster_orders_total", &[("result", "ok")]),
        0.0,
        "no order of the old leader was written"
    );
    // It woke past its deadline and stepped down before acting on
    // anything (its lease gone, or its deadline passed: whichever it
    // noticed first).
    let log = a.log_text();
    let lost = |fault: &str| {
        log.contains(&format!(
            "\"LeadershipLost\":{{\"fence\":{},\"fault\":\"{fault}\"",
            old as u64
        ))
    };
    assert!(
        lost("DeadlinePassed") || lost("LeaseLost"),
        "the old leader stepped down on waking:\n{log}"
    );
    for g in [a, b] {
        let fences = applied_fences(g);
        assert!(
            fences.windows(2).all(|w| w[0] < w[1]) && fences.last() == Some(&(fence as u64)),
            "each actuator applied ever higher fences: {fences:?}"
        );
    }
}

#[test]
fn a_leader_stopped_with_sigterm_hands_over_in_under_a_second() {
    if !available() || !tools() {
        return;
    }
    let pair = Pair::start(&Etcd::endpoints());
    let b = &pair.b;
    signal(pair.a(), libc::SIGTERM);
    let took = wait("b takes over", Duration::from_secs(5), &[b], || {
        role(b, "leader")
    });
    eprintln!("handover after SIGTERM: {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(
        pair.lab.route().as_deref(),
        Some(GW_A),
        "a handover moves nothing"
    );

    // A differently configured group under the same cluster name (another
    // prefix): refused, paged, and it never leads.
    let mut setup = gwanje::testbed::failover_config::replica_setup(
        "d",
        3,
        9473,
        CLUSTER,
        &Etcd::endpoints(),
        true,
    );
    let prefix = gwanje::testbed::topology::SERVICE_PREFIX;
    setup.files[0].1 = setup.files[0].1.replace(prefix, "198.19.250.0/24");
    for (rel, text) in &setup.files {
        gwanje::config::write_secret_file(&pair.dir().join(rel), text).expect("write");
    }
    let d = Gwanje::start(
        env!("CARGO_BIN_EXE_gwanje").as_ref(),
        &pair.lab.bed.client,
        &pair.dir().join(&setup.config),
        setup.port,
        pair.dir().join("gwanje-d.log"),
    )
    .expect("start d");
    wait(
        "d refuses to campaign",
        Duration::from_secs(15),
        &[&d],
        || d.status()["cluster"]["lost"] == "misconfigured" && firing(&d, "CoordinationLost"),
    );
    assert!(
        d.log_text()
            .contains("another configuration uses this cluster name")
    );
    signal(b, libc::SIGKILL);
    std::thread::sleep(TTL + Duration::from_secs(2));
    assert!(!role(&d, "leader"), "a misconfigured replica never leads");
}

#[test]
fn a_leader_cut_off_from_etcd_stops_before_its_successor_starts() {
    if !available() || !tools() {
        return;
    }
    let pair = Pair::start(&Etcd::second_endpoints());
    let (a, b) = (pair.a(), &pair.b);
    pair.etcd.cut_second().expect("cut a off from etcd");
    let cut = Instant::now();
    wait("a steps down", TTL + Duration::from_secs(2), &[a], || {
        !role(a, "leader")
    });
    let stopped = cut.elapsed();
    wait("b takes over", TTL + Duration::from_secs(3), &[b], || {
        role(b, "leader")
    });
    eprintln!(
        "cut off: a stopped after {stopped:?}, b led after {:?}",
        cut.elapsed()
    );
    // The deadline: the send time of the last acknowledged keepalive (at
    // most a third of the TTL before the cut) plus the TTL minus the 1 s
    // margin; half a second for the report to reach the metrics.
    assert!(
        stopped <= TTL - Duration::from_millis(500),
        "a stopped after {stopped:?}"
    );
    wait(
        "CoordinationLost on a",
        Duration::from_secs(3),
        &[a],
        || firing(a, "CoordinationLost"),
    );
    pair.etcd.mend_second().expect("mend");
    wait(
        "a answers etcd again",
        Duration::from_secs(10),
        &[a],
        || role(a, "follower"),
    );
    assert!(!firing(a, "CoordinationLost"), "resolved once etcd answers");
    let (ta, tb) = (terms(&pair.replay("a")), terms(&pair.replay("b")));
    assert!(!ta.is_empty() && !tb.is_empty(), "both led: {ta:?} {tb:?}");
    for (s1, e1) in &ta {
        for (s2, e2) in &tb {
            assert!(e1 <= s2 || e2 <= s1, "terms overlap: a {ta:?}, b {tb:?}");
        }
    }
    pair.verify("a");
    pair.verify("b");
}

#[test]
fn etcd_losing_quorum_moves_no_route_pages_and_leadership_returns() {
    if !available() || !tools() {
        return;
    }
    let mut pair = Pair::start(&Etcd::endpoints());
    pair.r.etcd.stop_member(1);
    pair.r.etcd.stop_member(2);
    let lost = Instant::now();
    Failure::NoForwarding(A)
        .apply(&pair.lab.bed)
        .expect("break the primary");
    let a = &pair.lab.gwanje;
    wait("CoordinationLost", 2 * TTL, &[a], || {
        firing(a, "CoordinationLost")
    });
    eprintln!("quorum lost: CoordinationLost after {:?}", lost.elapsed());
    while lost.elapsed() < Duration::from_secs(30) {
        assert_eq!(
            pair.lab.route().as_deref(),
            Some(GW_A),
            "no route change without quorum"
        );
        assert!(
            !role(a, "leader") && !role(&pair.b, "leader"),
            "nobody leads"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    pair.r.etcd.start_member(1).expect("restart");
    pair.r.etcd.start_member(2).expect("restart");
    let back = Instant::now();
    let (a, b) = (&pair.lab.gwanje, &pair.b);
    wait("a leader again", Duration::from_secs(20), &[a, b], || {
        role(a, "leader") || role(b, "leader")
    });
    pair.lab
        .wait_route(GW_B, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("quorum back: traffic moved after {:?}", back.elapsed());
    wait(
        "CoordinationLost resolves",
        Duration::from_secs(10),
        &[a, b],
        || !firing(a, "CoordinationLost") && !firing(b, "CoordinationLost"),
    );
}

#[test]
fn operator_state_is_the_clusters_an_ack_on_one_replica_and_a_pin_outliving_its_replica() {
    if !available() || !tools() {
        return;
    }
    let pair = Pair::start(&Etcd::endpoints());
    let (a, b) = (pair.a(), &pair.b);
    let token = Some(gwanje::testbed::failover_config::TOKEN);
    // The standby fails: both replicas raise the same PathDown.
    let standby_down = |g: &Gwanje| {
        g.status()["alerts"].as_array().and_then(|al| {
            al.iter()
                .find(|x| x["name"] == "PathDown" && x["labels"]["path"] == "standby")
                .cloned()
        })
    };
    Failure::NoForwarding(gwanje::testbed::Router::B)
        .apply(&pair.lab.bed)
        .expect("break the standby");
    wait("PathDown on both", Duration::from_secs(10), &[a, b], || {
        standby_down(a).is_some() && standby_down(b).is_some()
    });
    let id = standby_down(b).expect("alert")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, body) = b.http(
        "POST",
        &format!("/api/v1/alerts/{id}/ack"),
        r#"{"by": "on-call at b"}"#,
        token,
    );
    assert_eq!(code, 200, "{body}");
    wait(
        "a sees b's acknowledgement",
        Duration::from_secs(5),
        &[a],
        || standby_down(a).is_some_and(|x| x["acknowledged_by"] == "on-call at b"),
    );
    Failure::NoForwarding(gwanje::testbed::Router::B)
        .repair(&pair.lab.bed)
        .expect("mend the standby");
    wait(
        "the standby is up again",
        Duration::from_secs(15),
        &[a, b],
        || {
            [a, b].iter().all(|g| {
                g.status()["groups"][0]["paths"]
                    .as_array()
                    .is_some_and(|p| p.iter().all(|p| p["state"] == "up"))
            })
        },
    );

    // A pin made through the leader, a; then a dies.
    let (code, body) = a.http(
        "POST",
        "/api/v1/groups/services/pin",
        r#"{"path": "standby", "ttl": "10m", "by": "change 42"}"#,
        token,
    );
    assert_eq!(code, 200, "{body}");
    pair.lab
        .wait_route(GW_B, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n{}", a.log_text()));
    wait("b knows the pin", Duration::from_secs(5), &[b], || {
        b.status()["groups"][0]["pinned"]
            .as_str()
            .is_some_and(|p| p.contains("standby") && p.contains("change 42"))
    });
    signal(a, libc::SIGKILL);
    wait("b takes over", TTL + Duration::from_secs(3), &[b], || {
        role(b, "leader")
    });
    // Without the pin, b would fail back to the healthy primary after 2 s.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        pair.lab.route().as_deref(),
        Some(GW_B),
        "b enforces a's pin"
    );
    let (code, body) = b.http("POST", "/api/v1/groups/services/unpin", "", token);
    assert_eq!(code, 200, "{body}");
    pair.lab
        .wait_route(GW_A, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("unpinned, b fails back: {e}\n{}", b.log_text()));
}

#[test]
fn a_leader_whose_lease_etcd_dropped_has_its_guarded_write_refused_and_steps_down() {
    if !available() || !tools() {
        return;
    }
    use gwanje::cluster::{CoordError, Desired, Gate, campaign, order};
    use gwanje::core::{Coordination, CoordinationFault};
    let dir = tempfile::tempdir().expect("temp dir");
    let bed = gwanje::testbed::Testbed::new().expect("testbed");
    let _etcd = Etcd::start(&bed.client, dir.path()).expect("etcd");
    let spec = gwanje::plan::ClusterSpec {
        name: "guard".into(),
        replica: "x".into(),
        endpoints: Etcd::endpoints()
            .iter()
            .map(|e| e.parse().unwrap())
            .collect(),
        ca_file: None,
        identity: None,
        lease_ttl: TTL,
        actuate: false,
        fence_file: dir.path().join("fence"),
        fingerprint: "f".into(),
        campaign: true,
    };
    let outcome = bed
        .client
        .run(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let gate = Gate::default();
                let (tx, mut rx) = tokio::sync::mpsc::channel(16);
                let (_stop, stopping) = tokio::sync::watch::channel(false);
                tokio::spawn(campaign(spec.clone(), gate.clone(), tx, stopping));
                let limit = tokio::time::Instant::now() + Duration::from_secs(10);
                let fence = loop {
                    match tokio::time::timeout_at(limit, rx.recv()).await {
                        Ok(Some(Coordination::Leading { fence })) => break fence,
                        Ok(Some(_)) => {}
                        other => panic!("not elected: {other:?}"),
                    }
                };
                // etcd drops the lease behind the leader's back (as an old
                // etcd leader stuck in fdatasync can, etcd-io/etcd#15247):
                // its own deadline has not passed, so only the guard stands.
                let mut etcd = gwanje::cluster::connect(&spec).await.unwrap();
                for l in etcd.leases().await.unwrap().leases() {
                    etcd.lease_revoke(l.id()).await.unwrap();
                }
                assert!(
                    gate.may_act().is_some(),
                    "the leader still believes it leads"
                );
                let desired = Desired {
                    path: "standby".into(),
                    from: None,
                    fence,
                    reason: "failback".into(),
                    by: "x".into(),
                };
                let written = order(&spec, &gate, "services", &desired).await;
                let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
                let stored = etcd
                    .get("/gwanje/guard/desired/services", None)
                    .await
                    .unwrap()
                    .kvs()
                    .len();
                (written, next, stored, gate.may_act().is_some())
            })
        })
        .expect("in the namespace");
    let (written, next, stored, acts) = outcome;
    assert!(
        matches!(written, Err(CoordError::Superseded)),
        "{written:?}"
    );
    assert_eq!(stored, 0, "nothing was written");
    assert!(!acts, "the gate is shut");
    assert!(
        matches!(
            next,
            Ok(Some(Coordination::Lost {
                fault: CoordinationFault::Superseded | CoordinationFault::LeaseLost
            }))
        ),
        "it stepped down: {next:?}"
    );
}

#[test]
fn replicas_leaving_routes_to_a_router_host_adopt_what_it_applied_across_a_takeover() {
    if !available() || !tools() {
        return;
    }
    let pair = Pair::start_with(&Etcd::endpoints(), false);
    let c = pair.start_actuator(false).expect("gwanje actuate");
    let (a, b) = (pair.a(), &pair.b);
    // The first leader found no route applied anywhere: it installs the
    // preferred path once, through the router host.
    wait(
        "the first order applied",
        Duration::from_secs(15),
        &[a, &c],
        || !applied_fences(&c).is_empty(),
    );
    let first = pair.desired().expect("an order");
    assert_eq!(first["path"], "primary", "{first}");
    assert_eq!(first["reason"], "initial", "{first}");
    signal(a, libc::SIGKILL);
    wait("b takes over", TTL + Duration::from_secs(3), &[b], || {
        role(b, "leader")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pair.desired().expect("an order"),
        first,
        "the new leader adopted the applied route: no order"
    );
    assert_eq!(b.status()["groups"][0]["active_path"], "primary");
    Failure::NoForwarding(A)
        .apply(&pair.lab.bed)
        .expect("break the primary");
    pair.lab
        .wait_route(GW_B, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", b.log_text(), c.log_text()));
    assert!(
        applied_fences(&c).windows(2).all(|w| w[0] < w[1]),
        "the router host applied each term's order once: {:?}",
        applied_fences(&c)
    );
}
