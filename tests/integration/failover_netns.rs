//! Failover end to end: the real gwanje binary in a client namespace, two
//! routers, a server, real kernel routes, and a traffic generator measuring
//! the service gap. Needs root, iproute2 and nftables (GWANJE_REQUIRE_NETNS=1
//! turns a missing capability into a failure).

#![allow(
    clippy::disallowed_methods,
    reason = "the test measures real traffic gaps"
)]

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::expo;
use common::failover::{Rig, TOKEN, available};
use gwanje::testbed::Router::{A, B};
use gwanje::testbed::failover_config::PORT;
use gwanje::testbed::gwanje::Gwanje;
use gwanje::testbed::topology::{GW_A, GW_B, SERVICE_PREFIX};
use gwanje::testbed::{Failure, Traffic, longest_gap};

const AUTO: &str = "{mode: auto, after: 2s}";

/// Breaks the primary with `fail`, and checks that the route moves to router
/// B, that traffic flows again, and that the gap stays well under a second
/// and a half (the benchmark measures it properly).
fn fails_over(failure: Failure) -> Rig {
    let rig = Rig::start(AUTO);
    count_examination_packets(&rig);
    let payload = failure.meter_payload();
    let traffic =
        Traffic::start(&rig.bed().client, Duration::from_secs(30), payload).expect("traffic meter");
    std::thread::sleep(Duration::from_millis(500));
    let broken = Instant::now();
    rig.apply(failure);
    let moved = rig.wait_route(GW_B, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let end = Instant::now();
    let replies = traffic.finish().expect("traffic meter");
    let gap = longest_gap(&replies, broken, end);
    eprintln!(
        "route moved after {:?}, service gap {:?}",
        moved - broken,
        gap
    );
    assert!(
        replies.iter().any(|t| *t > moved),
        "traffic flows again after the move"
    );
    // About 300 ms here; the failover benchmark measures it. Ten times that
    // still catches detection gone wrong without tripping on a loaded machine.
    assert!(gap < Duration::from_secs(3), "gap {gap:?}");
    let s = rig.status();
    assert_eq!(s["groups"][0]["active_path"], "standby", "{s:#}");
    assert_eq!(s["groups"][0]["paths"][0]["state"], "down", "{s:#}");
    rig
}

/// Counts, in the client namespace, the echo requests an examination sends:
/// the trace's (TTL 8 or less) and the ladder's sizes no check uses.
fn count_examination_packets(rig: &Rig) {
    let client = &rig.bed().client;
    client
        .nft_rule(
            "gwj_trace",
            "output",
            "icmp type echo-request ip ttl < 9 counter",
        )
        .expect("trace counter");
    client
        .nft_rule(
            "gwj_ladder",
            "output",
            "ip ttl > 8 icmp type echo-request meta length { 92, 540, 1028, 1228, 1328, 1428 } counter",
        )
        .expect("ladder counter");
}

/// Packets the counters of [`count_examination_packets`] saw: (trace, ladder).
fn examination_packets(rig: &Rig) -> (u64, u64) {
    let count = |table: &str| {
        let listed = rig
            .bed()
            .client
            .exec(&["nft", "list", "table", "inet", table])
            .expect("nft list");
        listed
            .split("packets ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter in {listed}"))
    };
    (count("gwj_trace"), count("gwj_ladder"))
}

/// Waits for the primary's diagnosis to be `kind`; returns it.
fn diagnosed(rig: &Rig, kind: &str) -> serde_json::Value {
    let s = rig.wait_status(Duration::from_secs(15), kind, |s| {
        s["groups"][0]["paths"][0]["diagnosis"]["kind"] == kind
    });
    let d = s["groups"][0]["paths"][0]["diagnosis"].clone();
    eprintln!("diagnosis: {d}");
    d
}

/// The description of the primary's PathDown alert, from the status API.
fn path_down_description(rig: &Rig) -> String {
    let s = rig.status();
    s["alerts"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["name"] == "PathDown" && a["labels"]["path"] == "primary")
        })
        .and_then(|a| a["description"].as_str())
        .unwrap_or_else(|| panic!("no PathDown for primary: {s:#}"))
        .to_string()
}

#[test]
fn a_far_side_link_cut_while_the_router_still_answers() {
    if !available() {
        return;
    }
    let rig = fails_over(Failure::FarSideCut(A));
    let s = rig.status();
    let reason = s["groups"][0]["paths"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("checks failing only through this path"),
        "router A still answers: {reason}"
    );
    let d = diagnosed(&rig, "beyond_router");
    assert_eq!(d["last_hop"], serde_json::json!([1, GW_A]), "{d}");
    let described = path_down_description(&rig);
    assert!(
        described.contains("beyond path primary's router (its far side or upstream)")
            && described.contains(&format!("the last hop to answer is {GW_A} (TTL 1)")),
        "{described}"
    );
    let m = expo::parse(&rig.metrics());
    assert_eq!(
        expo::value(
            &m,
            "gwanje_path_diagnosis",
            &[("path", "primary"), ("kind", "beyond_router")]
        ),
        Some(1.0)
    );
    assert_eq!(
        expo::value(
            &m,
            "gwanje_path_last_answering_hop_info",
            &[("path", "primary"), ("hop", GW_A)]
        ),
        Some(1.0)
    );
    let failovers = [
        ("group", "services"),
        ("from", "primary"),
        ("to", "standby"),
        ("reason", "path_failed"),
    ];
    assert_eq!(
        expo::value(&m, "gwanje_failovers_total", &failovers),
        Some(1.0)
    );
    assert_eq!(
        expo::value(
            &m,
            "gwanje_group_active_path",
            &[("group", "services"), ("path", "standby")]
        ),
        Some(1.0)
    );
    assert_eq!(
        expo::value(
            &m,
            "gwanje_group_active_path",
            &[("group", "services"), ("path", "primary")]
        ),
        Some(0.0)
    );
    assert_eq!(
        expo::value(&m, "gwanje_path_up", &[("path", "primary")]),
        Some(0.0)
    );
    assert!(
        expo::value(
            &m,
            "probe_success",
            &[("target", "icmp"), ("path", "standby")]
        ) == Some(1.0)
    );
}

#[test]
fn b_router_stops_forwarding() {
    if !available() {
        return;
    }
    let rig = fails_over(Failure::NoForwarding(A));
    // The golden record: replaying the journal reproduces every effect, and
    // the timeline tells the switch with its reason.
    let (code, out, err) = rig.replay(&["--verify"]);
    assert_eq!(code, 0, "{out}{err}");
    let n: usize = out
        .trim()
        .strip_prefix("identical: ")
        .and_then(|r| r.strip_suffix(" effects"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}{err}"));
    assert!(n > 10, "a failover run decides more than {n} things");
    let (code, timeline, err) = rig.replay(&[]);
    assert_eq!(code, 0, "{err}");
    eprintln!("{timeline}");
    assert!(
        timeline.lines().any(|l| l.contains(
            "services: traffic now flows via standby (was primary); reason: path failed"
        )),
        "{timeline}"
    );
    assert!(timeline.contains("path primary is down"), "{timeline}");

    // The incident report of the same record, as a person sees it.
    let out = common::report(&rig.journal());
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("## Impact per service") && md.contains("| svc |"),
        "{md}"
    );
    let html = out.path().join("report.html");
    let page = std::fs::read_to_string(&html).unwrap();
    for outside in ["<script", "src=", "href=", "@import", "url("] {
        assert!(
            !page.contains(outside),
            "self-contained, yet {outside} is in it"
        );
    }
    let png = out.path().join("report.png");
    let Some(dom) = common::browser::render(&html, &png) else {
        return;
    };
    assert!(
        std::fs::metadata(&png).unwrap().len() > 20_000,
        "a screenshot with content"
    );
    // GWANJE_KEEP_REPORT=DIR keeps the page and its screenshot (the README's picture).
    if let Ok(keep) = std::env::var("GWANJE_KEEP_REPORT") {
        for f in ["report.html", "report.md", "report.png"] {
            std::fs::copy(out.path().join(f), Path::new(&keep).join(f)).unwrap();
        }
    }
    let rows = dom.matches("<tr><td>").count();
    assert!(rows >= 8, "timeline and impact rows: {rows}");
    assert!(
        dom.contains("traffic now flows via standby (was primary)"),
        "the switch is in the timeline"
    );
    assert!(
        dom.split("<tr>")
            .any(|row| row.contains("first failing probe") && row.contains("svc/")),
        "what the probes saw first"
    );
    // Probe results are drawn as bands since the plots keep extremes per
    // bucket; router loss as points: together, one mark per probe at this
    // record's length (a few seconds: every probe has a bucket of its own).
    let points = dom.matches("class=\"point\"").count();
    let bands = dom.matches("class=\"band\"").count();
    assert!(points > 0, "router loss points: {points}");
    assert!(
        points + bands > 50,
        "SVG plots with data marks: {points} points, {bands} bands"
    );
    assert!(
        dom.contains("class=\"band\"") && dom.contains("path primary"),
        "path state bands"
    );
    assert!(
        dom.contains("id=\"disclosure\"") && dom.contains("no personal data in a response"),
        "the disclosure section"
    );
}

#[test]
fn c_client_link_to_router_a_goes_down() {
    if !available() {
        return;
    }
    let rig = fails_over(Failure::NearLinkDown(A));
    let s = rig.status();
    assert_eq!(
        s["groups"][0]["paths"][0]["reason"], "router unreachable",
        "{s:#}"
    );
    let d = diagnosed(&rig, "router_or_link");
    assert!(
        d["summary"]
            .as_str()
            .is_some_and(|t| t.contains("path primary's router or the link to it")),
        "{d}"
    );
    // The examination's answer arrives after the first diagnosis.
    rig.wait_status(Duration::from_secs(15), "no hop answers", |s| {
        s["groups"][0]["paths"][0]["diagnosis"]["summary"]
            .as_str()
            .is_some_and(|t| t.contains("no hop answers"))
    });
    assert!(path_down_description(&rig).contains("Diagnosis (router_or_link)"));
}

#[test]
fn h_large_packets_dropped_while_small_pings_pass() {
    if !available() {
        return;
    }
    // The November 2023 signature: full-size packets die, pings stay green.
    let rig = fails_over(Failure::LargePacketDrop {
        router: A,
        min_bytes: 1400,
    });
    let s = rig.status();
    let reason = s["groups"][0]["paths"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("svc/icmp-large") && !reason.contains("svc/icmp,"),
        "{reason}"
    );
    // Packets of 1,400 bytes and more die: payloads up to 1,371 bytes pass.
    // The ladder's boundary is within one of its steps of that.
    let d = diagnosed(&rig, "large_packet_loss");
    let max = d["max_passing_payload"].as_u64().expect("a boundary");
    let ladder = gwanje::examine::LADDER;
    let step_above = ladder.iter().find(|p| u64::from(**p) > max).copied();
    assert!(
        max <= 1371 && step_above.is_some_and(|s| u64::from(s) > 1371),
        "boundary {max}: {d}"
    );
    assert_eq!(d["last_hop"][1], GW_A, "{d}");
    let described = path_down_description(&rig);
    assert!(
        described.contains("Diagnosis (large_packet_loss)")
            && described.contains(&format!("large packets die after {GW_A} (TTL 1)")),
        "{described}"
    );
    let m = expo::parse(&rig.metrics());
    assert_eq!(
        expo::value(
            &m,
            "gwanje_path_max_passing_payload_bytes",
            &[("path", "primary")]
        ),
        Some(max as f64)
    );
    // Bounded: one examination in the first minute, and no more packets
    // than it may send, counted on the wire.
    assert_eq!(
        expo::value(&m, "gwanje_path_examinations_total", &[("path", "primary")]),
        Some(1.0)
    );
    let (trace, ladder_packets) = examination_packets(&rig);
    eprintln!("examination packets on the wire: trace {trace}, ladder {ladder_packets}");
    let sent = expo::value(
        &m,
        "gwanje_path_examination_packets_total",
        &[("path", "primary")],
    )
    .unwrap();
    assert!(
        trace + ladder_packets <= sent as u64,
        "counted {trace}+{ladder_packets}, reported {sent}"
    );
    assert!(sent as u32 <= gwanje::examine::MAX_PACKETS, "{sent}");
    assert_eq!(
        ladder_packets, 12,
        "six sizes no check uses, two echoes each"
    );
    assert!(
        (2..=2 * u64::from(gwanje::examine::MAX_TTL)).contains(&trace),
        "{trace}"
    );
}

#[test]
fn o_an_mtu_limit_is_told_from_a_silent_drop() {
    if !available() {
        return;
    }
    // Router A's far side takes 1,400-byte packets at most, and says so.
    let rig = fails_over(Failure::MtuLimit {
        router: A,
        mtu: 1400,
    });
    let d = diagnosed(&rig, "mtu_limit");
    assert_eq!(d["mtu"], 1400, "{d}");
    assert_eq!(d["max_passing_payload"], 1300, "{d}");
    let described = path_down_description(&rig);
    assert!(
        described.contains("Diagnosis (mtu_limit)")
            && described.contains(&format!(
                "refused by {GW_A} with \"fragmentation needed\" and MTU 1400"
            )),
        "{described}"
    );
}

#[test]
fn d_service_down_everywhere_does_not_switch() {
    if !available() {
        return;
    }
    let mut rig = Rig::start(AUTO);
    rig.lab.services.take().expect("services").stop();
    rig.wait_status(Duration::from_secs(20), "service down reported", |s| {
        s["groups"][0]["services_down"]
            .as_array()
            .is_some_and(|d| d.iter().any(|c| c == "svc/http"))
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        rig.route().as_deref(),
        Some(GW_A),
        "no switch for a service failure"
    );
    let s = rig.status();
    assert_eq!(s["groups"][0]["active_path"], "primary");
    assert!(
        s["groups"][0]["paths"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "up" && p["diagnosis"].is_null()),
        "a service failure is no path's diagnosis: {s:#}"
    );
}

/// Breaks the standby with `failure` until it is down, then the primary the
/// same way until failover is impossible; returns that status.
fn standby_then_primary(
    rig: &Rig,
    failure: fn(gwanje::testbed::Router) -> Failure,
) -> serde_json::Value {
    rig.apply(failure(B));
    rig.wait_status(Duration::from_secs(10), "standby down", |s| {
        s["groups"][0]["paths"][1]["state"] == "down"
    });
    rig.apply(failure(A));
    rig.wait_status(Duration::from_secs(10), "failover impossible", |s| {
        s["groups"][0]["failover_impossible"] == true
    })
}

#[test]
fn e_dead_standby_then_dead_primary_never_switches_to_the_dead_path() {
    if !available() {
        return;
    }
    let rig = Rig::start(AUTO);
    standby_then_primary(&rig, Failure::NearLinkDown);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        rig.route().as_deref(),
        Some(GW_A),
        "never to the dead standby"
    );
    assert!(rig.log().contains("failover_impossible"), "{}", rig.log());
}

#[test]
fn k_standby_then_primary_far_sides_cut_keeps_blame_and_says_what_is_unknown() {
    if !available() {
        return;
    }
    let rig = Rig::start(AUTO);
    // The far sides: the standby's checks fail while the primary's pass, then
    // every check fails everywhere.
    let s = standby_then_primary(&rig, Failure::FarSideCut);
    assert_eq!(
        rig.route().as_deref(),
        Some(GW_A),
        "never to the dead standby"
    );
    assert_eq!(
        s["groups"][0]["paths"][1]["state"], "down",
        "the standby stays blamed: {s:#}"
    );
    let alerts = s["alerts"].as_array().cloned().unwrap_or_default();
    let firing = |name: &str| alerts.iter().any(|a| a["name"] == name);
    assert!(firing("PathDown"), "{alerts:#?}");
    assert!(
        !firing("ServiceDown"),
        "the evidence does not point at the service: {alerts:#?}"
    );
    let impossible = alerts
        .iter()
        .find(|a| a["name"] == "FailoverImpossible")
        .unwrap_or_else(|| panic!("{alerts:#?}"));
    assert!(
        impossible["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("every other path is down"),
        "{impossible:#}"
    );
}

#[test]
fn l_cold_start_without_a_route_installs_the_preferred_path_and_is_not_a_failover() {
    if !available() {
        return;
    }
    for run in 0..5 {
        let rig = Rig::start_with(AUTO, |bed| bed.client.ip(&["route", "del", SERVICE_PREFIX]));
        // The status may name the path a moment before the kernel has it.
        rig.wait_route(GW_A, Duration::from_secs(5));
        let m = expo::parse(&rig.metrics());
        let moves = expo::sum(&m, "gwanje_failovers_total", &[]);
        let initial = expo::sum(&m, "gwanje_failovers_total", &[("reason", "initial")]);
        assert_eq!(
            moves, initial,
            "run {run}: the first installation is the only move"
        );
        let alerts = rig.status()["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !alerts.iter().any(|a| a["name"] == "FailoverExecuted"),
            "run {run}: installing the first route is not an alert: {alerts:#?}"
        );
    }
}

#[test]
fn m_a_freeze_never_holds_traffic_on_a_dead_path() {
    if !available() {
        return;
    }
    let rig = Rig::start_guarded(AUTO, "{max_switches: 2, window: 10m}");
    let cut = || rig.apply(Failure::FarSideCut(A));
    let repair = || rig.repair(Failure::FarSideCut(A));
    // A failover and its failback spend the flap guard's two switches.
    cut();
    rig.wait_route(GW_B, Duration::from_secs(10));
    repair();
    rig.wait_route(GW_A, Duration::from_secs(20));
    // The primary dies again: the guard freezes, and traffic moves anyway.
    cut();
    rig.wait_route(GW_B, Duration::from_secs(10));
    let s = rig.status();
    assert!(s["groups"][0]["frozen_until_ms"].is_u64(), "{s:#}");
    assert!(rig.log().contains("moved_despite_freeze"), "{}", rig.log());
    // Frozen: the recovered primary is not failed back to.
    repair();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        rig.route().as_deref(),
        Some(GW_B),
        "no failback while frozen"
    );
}

#[test]
fn f_random_loss_on_the_primary_does_not_flap() {
    if !available() {
        return;
    }
    let rig = Rig::start(AUTO);
    rig.apply(Failure::RandomLoss {
        router: A,
        percent: 10,
    });
    std::thread::sleep(Duration::from_secs(20));
    assert_eq!(rig.route().as_deref(), Some(GW_A), "log:\n{}", rig.log());
    let m = expo::parse(&rig.metrics());
    assert_eq!(
        expo::sum(&m, "gwanje_failovers_total", &[]),
        0.0,
        "no switch under 10% loss; log:\n{}",
        rig.log()
    );
}

#[test]
fn i_heavy_random_loss_on_the_primary_moves_once_and_stays() {
    if !available() {
        return;
    }
    let rig = Rig::start(AUTO);
    // 35% of forwarded packets lost: single probes still pass most of the
    // time, so only the path's loss over its window tells.
    rig.apply(Failure::RandomLoss {
        router: A,
        percent: 35,
    });
    rig.wait_route(GW_B, Duration::from_secs(20));
    // Degraded all along: no failback (failback.after is 2 s), no flapping, no freeze.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(rig.route().as_deref(), Some(GW_B), "{}", rig.log());
    let text = rig.metrics();
    let m = expo::parse(&text);
    assert_eq!(
        expo::sum(&m, "gwanje_failovers_total", &[]),
        1.0,
        "{}\n{}",
        text.lines()
            .filter(|l| l.starts_with("gwanje_failovers_total"))
            .collect::<Vec<_>>()
            .join("\n"),
        rig.log()
    );
    assert_eq!(
        expo::value(&m, "gwanje_group_frozen", &[("group", "services")]),
        Some(0.0)
    );
    let s = rig.status();
    let reason = s["groups"][0]["paths"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    // Degraded while single probes pass; when the loss also fails a check
    // only through this path, that more specific cause is the reason.
    assert!(
        reason.starts_with("degraded") || reason.starts_with("checks failing only through"),
        "{s:#}"
    );
}

#[test]
fn g_recovery_fails_back_after_the_stable_period() {
    if !available() {
        return;
    }
    let rig = fails_over(Failure::FarSideCut(A));
    let repaired = Instant::now();
    rig.repair(Failure::FarSideCut(A));
    let back = rig.wait_route(GW_A, Duration::from_secs(15));
    assert!(
        back - repaired >= Duration::from_secs(2),
        "not before the 2 s stable period: {:?}",
        back - repaired
    );
    let m = expo::parse(&rig.metrics());
    assert_eq!(
        expo::sum(&m, "gwanje_failovers_total", &[("reason", "failback")]),
        1.0
    );
}

#[test]
fn q_one_outage_fails_back_after_failback_after_from_the_recovery() {
    if !available() {
        return;
    }
    let rig = Rig::start("{mode: auto, after: 5s}");
    rig.apply(Failure::FarSideCut(A));
    rig.wait_route(GW_B, Duration::from_secs(10));
    // Long enough for the outage's lost echoes to fill the loss window.
    std::thread::sleep(Duration::from_secs(3));
    let repaired = Instant::now();
    rig.repair(Failure::FarSideCut(A));
    let back = rig.wait_route(GW_A, Duration::from_secs(20));
    // Up after its rise (3 probes of 100 ms), failback 5 s later: not held
    // until the 10 s window has drained (13 s before).
    let took = back - repaired;
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_millis(6_500),
        "failback {took:?} after the repair; log:\n{}",
        rig.log()
    );
    let s = rig.status();
    let d = &s["groups"][0]["dampening"][0];
    assert_eq!(d["path"], "primary", "{s:#}");
    assert!(
        d["penalty"].as_u64().is_some_and(|p| p > 0 && p <= 1000),
        "{s:#}"
    );
}

#[test]
fn r_equal_loss_on_every_path_moves_nothing_and_raises_service_degraded() {
    if !available() {
        return;
    }
    let rig = Rig::start(AUTO);
    // Both routers drop 20% of forwarded packets each way: the checks'
    // echoes lose about 36% through either path (20% each way), single
    // probes fail at random through both.
    for router in [A, B] {
        rig.apply(Failure::RandomLoss {
            router,
            percent: 20,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let raised = loop {
        let s = rig.status();
        let degraded = s["groups"][0]["services_degraded"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !degraded.is_empty() {
            break (s, degraded);
        }
        assert!(
            Instant::now() < deadline,
            "no ServiceDegraded: {s:#}\n{}",
            rig.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let (s, degraded) = raised;
    assert!(
        s["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["name"] == "ServiceDegraded")),
        "{s:#}"
    );
    let losses = &degraded[0]["loss_permille"];
    assert!(
        losses["primary"].as_u64().is_some_and(|l| l > 100)
            && losses["standby"].as_u64().is_some_and(|l| l > 100),
        "each path's loss is named: {s:#}"
    );
    // The loss stays for a while: still no move.
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(rig.route().as_deref(), Some(GW_A), "log:\n{}", rig.log());
    let text = rig.metrics();
    let m = expo::parse(&text);
    assert_eq!(
        expo::sum(&m, "gwanje_failovers_total", &[]),
        0.0,
        "log:\n{}",
        rig.log()
    );
    let now_degraded = rig.status()["groups"][0]["services_degraded"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(now_degraded >= degraded.len(), "still degraded");
    assert_eq!(
        expo::sum(&m, "gwanje_service_degraded", &[("group", "services")]),
        now_degraded as f64,
        "one series per degraded check"
    );
}

#[test]
fn manual_pin_with_ttl_through_the_authenticated_api() {
    if !available() {
        return;
    }
    let rig = Rig::start("{mode: manual}");
    let body = r#"{"path": "standby", "ttl": "3s", "by": "oncall-kim"}"#;
    assert_eq!(
        rig.http("POST", "/api/v1/groups/services/pin", body, None)
            .0,
        401
    );
    assert_eq!(
        rig.http("POST", "/api/v1/groups/services/pin", body, Some("wrong"))
            .0,
        401
    );
    assert_eq!(
        rig.http(
            "POST",
            "/api/v1/groups/services/pin",
            r#"{"path": "nowhere", "ttl": "3s"}"#,
            Some(TOKEN)
        )
        .0,
        404
    );
    assert_eq!(
        rig.http("POST", "/api/v1/groups/services/pin", body, Some(TOKEN))
            .0,
        200
    );
    rig.wait_route(GW_B, Duration::from_secs(5));
    // Manual failback: after the pin expires the route stays on the healthy standby.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(rig.route().as_deref(), Some(GW_B));
    assert!(rig.log().contains("oncall-kim"));
}

#[test]
fn external_route_change_is_detected_and_restored() {
    if !available() {
        return;
    }
    let rig = Rig::start(AUTO);
    rig.bed()
        .client
        .ip(&["route", "replace", SERVICE_PREFIX, "via", GW_B])
        .expect("route");
    rig.wait_route(GW_A, Duration::from_secs(5));
    let m = expo::parse(&rig.metrics());
    assert_eq!(
        expo::value(&m, "gwanje_route_drift_total", &[("group", "services")]),
        Some(1.0)
    );
}

#[test]
fn restart_adopts_the_current_route() {
    if !available() {
        return;
    }
    let mut rig = Rig::start("{mode: manual}");
    rig.lab.gwanje.terminate().expect("gwanje stops");
    // While gwanje is down, an operator moved traffic to the standby.
    rig.bed()
        .client
        .ip(&["route", "replace", SERVICE_PREFIX, "via", GW_B])
        .expect("route");
    let config = rig.dir.path().join("gwanje.yaml");
    rig.lab.gwanje = Gwanje::start(
        env!("CARGO_BIN_EXE_gwanje").as_ref(),
        &rig.lab.bed.client,
        &config,
        PORT,
        rig.dir.path().join("again.log"),
    )
    .expect("gwanje starts again");
    rig.wait_status(Duration::from_secs(10), "adopted", |s| {
        s["groups"][0]["active_path"] == "standby"
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        rig.route().as_deref(),
        Some(GW_B),
        "a restart never flips traffic blindly"
    );
}

#[test]
fn n_fast_liveness_ignores_random_loss_and_moves_within_the_packet_spacing() {
    if !available() {
        return;
    }
    let rig = Rig::start_fast(AUTO);
    // 10% of forwarded packets lost each way: lone lost echoes are
    // answered by their confirmation bursts, so nothing moves.
    let loss = Failure::RandomLoss {
        router: A,
        percent: 10,
    };
    rig.apply(loss);
    std::thread::sleep(Duration::from_secs(15));
    let m = expo::parse(&rig.metrics());
    assert_eq!(
        expo::sum(&m, "gwanje_failovers_total", &[]),
        0.0,
        "{}",
        rig.log()
    );
    assert_eq!(rig.route().as_deref(), Some(GW_A));
    rig.repair(loss);
    // A far-side cut: two confirmed losses 50 ms apart move the route.
    let traffic =
        Traffic::start(&rig.bed().client, Duration::from_secs(30), 64).expect("traffic meter");
    std::thread::sleep(Duration::from_millis(500));
    let broken = Instant::now();
    rig.apply(Failure::FarSideCut(A));
    let moved = rig.wait_route(GW_B, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let gap = longest_gap(&traffic.finish().expect("traffic"), broken, Instant::now());
    eprintln!("route moved after {:?}, gap {gap:?}", moved - broken);
    // Median about 110 ms here, with rare outliers near 1.2 s (the
    // benchmark measures both); this bound catches detection gone wrong,
    // the benchmark the speed.
    assert!(gap < Duration::from_secs(3), "gap {gap:?}");
}

#[test]
fn p_a_replay_from_prometheus_finds_the_failover_within_the_scrape_resolution() {
    if !available() {
        return;
    }
    let rig = Rig::start(AUTO);
    let api =
        gwanje::testbed::forward::start("127.0.0.1:0".parse().unwrap(), &rig.bed().client, PORT)
            .expect("forward the API to the host");
    let prom = tempfile::tempdir().unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: gwanje\n    static_configs: [{{targets: ['{}']}}]\n",
        api.addr
    );
    let Some(mut p) = common::companions::prometheus(prom.path(), &config) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(p.wait_ready(Duration::from_secs(30)));
    let unix_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    // Prometheus hands targets to its scrapers after up to 5 s: wait for
    // the first scrape, then a few more.
    let scraped = rt.block_on(async {
        for _ in 0..100 {
            let r =
                common::client::get(p.addr, "/api/v1/query?query=up%7Bjob%3D%22gwanje%22%7D").await;
            if r.is_ok_and(|r| r.body.contains("\"1\"]")) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    });
    assert!(scraped, "Prometheus never scraped gwanje");
    std::thread::sleep(Duration::from_secs(3));
    let from = unix_ms();
    rig.apply(Failure::NoForwarding(A));
    let moved = rig.wait_route(GW_B, Duration::from_secs(10));
    let moved_ms = unix_ms() - moved.elapsed().as_millis() as u64;
    std::thread::sleep(Duration::from_secs(4));
    let to = unix_ms();
    let time = |ms| gwanje::clock::rfc3339(gwanje::core::Timestamp(ms));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .args(["what-if", "--prometheus", &format!("http://{}", p.addr)])
        .arg("--config")
        .arg(rig.config())
        .args([
            "--from",
            &time(from - 2_500),
            "--to",
            &time(to),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    eprintln!("{err}");
    assert!(
        err.contains("from Prometheus at a 1 s step"),
        "the limits are said: {err}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let switches = v["baseline"]["switches"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let failover = switches
        .iter()
        .find(|s| s["from"] == "primary" && s["to"] == "standby")
        .unwrap_or_else(|| panic!("no failover found: {v:#}"));
    let at = failover["at"].as_u64().unwrap();
    eprintln!("gwanje moved at {moved_ms}, the replay from Prometheus at {at}");
    // One scrape interval (1 s) either way, plus the evaluation's own spacing.
    assert!(
        at.abs_diff(moved_ms) <= 2_000,
        "replayed at {at}, moved at {moved_ms}"
    );
}
