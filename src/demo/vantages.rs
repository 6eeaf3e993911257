//! The demo's second part: three sites, one vantage each, deciding
//! together. A regional office's uplink is cut (`VantageIsolated`, nothing
//! else); the portal fails for everyone (`ServiceDown` naming 3 of 3, no
//! route moved); the data centre's primary path breaks (failover there
//! only, the other sites' verdicts unchanged).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::watch::Watch;
use super::{DemoError, Pace};
use crate::testbed::sites::{Site, Sites};
use crate::testbed::topology::{GW_A, GW_B, PORTAL};
use crate::testbed::{Failure, Router, TestbedError, interrupted};

const DC: &str = "seoul-dc";
const OFFICE: &str = "busan-office";
const EDGE: &str = "internet-edge";

fn firing(s: &Value) -> Vec<String> {
    s["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| {
                    let labels = a["labels"]
                        .as_object()
                        .map(|l| {
                            l.iter()
                                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default();
                    format!("{}{{{labels}}}", a["name"].as_str().unwrap_or(""))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn named(s: &Value, name: &str) -> Vec<Value> {
    s["alerts"]
        .as_array()
        .map(|a| a.iter().filter(|a| a["name"] == name).cloned().collect())
        .unwrap_or_default()
}

fn until(
    site: &Site,
    limit: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value, DemoError> {
    site.wait_status(limit, what, done).map_err(|e| match e {
        TestbedError::Exited { what, status } => {
            DemoError::GwanjeExited(format!("{what}: {status}"))
        }
        e => e.into(),
    })
}

fn pause(pace: Pace, d: Duration) -> Result<(), DemoError> {
    let end = Instant::now() + pace.scale(d);
    while Instant::now() < end {
        if interrupted() {
            return Err(TestbedError::Interrupted.into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Plays the three-site story with `exe`, under `dir/vantages`.
pub fn play(exe: &Path, dir: &Path, pace: Pace) -> Result<(), DemoError> {
    let watch = Watch::new();
    println!();
    println!("── 6. Three vantages, one verdict");
    println!(
        "  {DC} (data-centre edge), {OFFICE} (regional office) and {EDGE} each run gwanje\n  on the same catalog, with two paths of their own, and follow each other's\n  observation streams over a management network (198.19.0.0/24). Each decides\n  every target by quorum: down only when at least two, and a majority, see it down."
    );
    watch.say("building three sites and starting three gwanje…");
    let sites = Sites::start(exe, &dir.join("vantages"), &[DC, OFFICE, EDGE])?;
    watch.say("every vantage sees every target up by three votes");
    let dc = sites.site(DC);
    pause(pace, Duration::from_secs(3))?;

    println!();
    println!("── 7. {OFFICE}'s uplink is cut");
    sites.uplink(OFFICE, false)?;
    let cut = Instant::now();
    let s = until(dc, Duration::from_secs(10), "VantageIsolated", |s| {
        !named(s, "VantageIsolated").is_empty()
    })?;
    watch.say(&format!(
        "VantageIsolated after {} ms: {OFFICE}'s controls (its routers) fail, so what it sees failing is its own cut; its votes abstain",
        cut.elapsed().as_millis()
    ));
    pause(pace, Duration::from_secs(3))?;
    for site in &sites.sites {
        let s = site.gwanje.status();
        let alerts = firing(&s);
        watch.say(&format!(
            "  alerts firing at {}: {}",
            site.name,
            alerts.join(", ")
        ));
        if alerts
            .iter()
            .any(|a| a.starts_with("ServiceDown") || a.starts_with("TargetDown"))
        {
            return Err(DemoError::Story(format!(
                "{}: a cut vantage paged a service down: {alerts:?}",
                site.name
            )));
        }
    }
    drop(s);
    sites.uplink(OFFICE, true)?;
    until(dc, Duration::from_secs(15), "the office back", |s| {
        named(s, "VantageIsolated").is_empty()
    })?;
    watch.say(&format!("{OFFICE} reconnected: it votes again"));
    pause(pace, Duration::from_secs(2))?;

    println!();
    println!("── 8. The citizen portal fails for everyone");
    let outage = Failure::ServiceRefuses {
        addr: PORTAL,
        port: 80,
    };
    for site in &sites.sites {
        outage.apply(&site.bed)?;
    }
    let s = until(dc, Duration::from_secs(20), "ServiceDown 3 of 3", |s| {
        named(s, "ServiceDown")
            .iter()
            .any(|a| a["summary"].as_str().is_some_and(|t| t.contains("3 of 3")))
    })?;
    if let Some(a) = named(&s, "ServiceDown").first() {
        watch.say(&format!(
            "ALERT ServiceDown: {}",
            a["summary"].as_str().unwrap_or("")
        ));
    }
    for site in &sites.sites {
        if site.route().as_deref() != Some(GW_A) {
            return Err(DemoError::Story(format!(
                "{}: an outage of the service moved traffic",
                site.name
            )));
        }
    }
    watch.say("every site still routes via its primary: moving traffic would not help");
    for site in &sites.sites {
        outage.repair(&site.bed)?;
    }
    until(dc, Duration::from_secs(20), "the portal back", |s| {
        named(s, "ServiceDown").is_empty()
    })?;
    watch.say("the portal answers again: ServiceDown resolved");
    pause(pace, Duration::from_secs(2))?;

    println!();
    println!("── 9. {DC}'s primary router stops forwarding");
    let broken = Failure::NoForwarding(Router::A);
    broken.apply(&dc.bed)?;
    let start = Instant::now();
    while dc.route().as_deref() != Some(GW_B) {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(DemoError::Story(format!("{DC} did not fail over")));
        }
        if interrupted() {
            return Err(TestbedError::Interrupted.into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    watch.say(&format!(
        "failover at {DC} only: its route moved to router B after {} ms",
        start.elapsed().as_millis()
    ));
    pause(pace, Duration::from_secs(2))?;
    for site in sites.sites.iter().filter(|s| s.name != DC) {
        let s = site.gwanje.status();
        let verdicts: Vec<String> = s["vantage"]["verdicts"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|v| {
                        format!(
                            "{} {}",
                            v["target"].as_str().unwrap_or(""),
                            v["verdict"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        watch.say(&format!(
            "  {}: route via {}, verdicts {}",
            site.name,
            site.route().unwrap_or_default(),
            verdicts.join(", ")
        ));
    }
    broken.repair(&dc.bed)?;
    drop(sites);
    watch.say("three sites stopped; their journals stay beside the demo's");
    Ok(())
}
