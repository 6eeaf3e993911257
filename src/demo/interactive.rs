//! `gwanje demo --interactive` and the commands that break and mend the
//! running demo's network from another terminal.

use std::net::SocketAddr;
use std::time::Duration;

use super::setup::{GROUP, PORT};
use super::watch::Watch;
use super::{DemoError, companions};
use crate::testbed::topology::{ADMIN_APP, MOBILE_ID, PORTAL, Router};
use crate::testbed::{Failure, Lab, Testbed, interrupted};

/// A part of the demo network that can be broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Thing {
    /// The primary router.
    RouterA,
    /// The standby router.
    RouterB,
    /// The citizen portal's web server (every path).
    Portal,
    /// The administrative network's application (every path).
    AdminApp,
    /// The mobile-ID API (every path).
    MobileId,
}

/// How a router breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum How {
    /// It stops forwarding, still answering pings to itself.
    Forwarding,
    /// Its link towards the data centre is cut.
    FarLink,
    /// Its link towards gwanje goes down.
    NearLink,
    /// It drops packets of 1,400 bytes and more.
    LargePackets,
    /// It drops 10% of packets at random.
    Loss,
    /// It drops 40% of packets at random.
    HeavyLoss,
}

const HOWS: [How; 6] = [
    How::Forwarding,
    How::FarLink,
    How::NearLink,
    How::LargePackets,
    How::Loss,
    How::HeavyLoss,
];

fn failure(thing: Thing, how: How) -> Failure {
    let service = |addr| Failure::ServiceRefuses { addr, port: 80 };
    let router = match thing {
        Thing::RouterA => Router::A,
        Thing::RouterB => Router::B,
        Thing::Portal => return service(PORTAL),
        Thing::AdminApp => return service(ADMIN_APP),
        Thing::MobileId => return service(MOBILE_ID),
    };
    match how {
        How::Forwarding => Failure::NoForwarding(router),
        How::FarLink => Failure::FarSideCut(router),
        How::NearLink => Failure::NearLinkDown(router),
        How::LargePackets => Failure::LargePacketDrop {
            router,
            min_bytes: 1400,
        },
        How::Loss => Failure::RandomLoss {
            router,
            percent: 10,
        },
        How::HeavyLoss => Failure::RandomLoss {
            router,
            percent: 40,
        },
    }
}

/// The network of the running demo with PID `pid`, or of the only one
/// running (a handle that leaves it up).
fn running(pid: Option<i32>) -> Result<Testbed, DemoError> {
    crate::testbed::topology::preflight()?;
    let demos: Vec<i32> = Testbed::owners()?
        .into_iter()
        .filter(|p| pid.is_none_or(|want| want == *p))
        .filter(|p| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            cmdline.split(|b| *b == 0).any(|a| a == b"demo")
        })
        .collect();
    match demos.as_slice() {
        [one] => Testbed::of_process(*one)?
            .ok_or_else(|| DemoError::Story(format!("demo {one} has no network"))),
        [] => Err(DemoError::Story(
            "no demo is running: start one with `gwanje demo --interactive`".into(),
        )),
        many => Err(DemoError::Story(format!(
            "several demos are running ({many:?}): choose one with --pid"
        ))),
    }
}

/// Breaks `thing` of the running demo.
pub fn smash(thing: Thing, how: How, pid: Option<i32>) -> Result<(), DemoError> {
    let bed = running(pid)?;
    let f = failure(thing, how);
    f.apply(&bed)?;
    println!("broken: {f}");
    Ok(())
}

/// Mends every way `thing` of the running demo can be broken.
pub fn mend(thing: Thing, pid: Option<i32>) -> Result<(), DemoError> {
    let bed = running(pid)?;
    for how in HOWS {
        failure(thing, how).repair(&bed)?;
    }
    let name = clap::ValueEnum::to_possible_value(&thing).map(|v| v.get_name().to_string());
    println!("mended: {}", name.unwrap_or_default());
    Ok(())
}

/// Prints what can be broken, and the running demo's state.
pub fn list(pid: Option<i32>) -> Result<(), DemoError> {
    println!(
        "gwanje demo break router-a|router-b [--how forwarding|far-link|near-link|large-packets|loss|heavy-loss]"
    );
    println!(
        "gwanje demo break portal|admin-app|mobile-id      (the service refuses connections on every path)"
    );
    println!(
        "gwanje demo mend THING                             (undoes every way THING was broken)"
    );
    let bed = running(pid)?;
    let (code, body) =
        crate::testbed::gwanje::http(&bed.client, PORT, "GET", "/api/v1/status", "", None);
    if code == 200 {
        let mut watch = Watch::new();
        watch.update(&serde_json::from_str(&body).unwrap_or_default());
    }
    Ok(())
}

/// Keeps `lab` up, serving gwanje's API on `listen` (and Prometheus and
/// Alertmanager beside it when asked), narrating, until Ctrl-C.
pub fn serve(lab: &Lab, listen: SocketAddr, with_prometheus: bool) -> Result<(), DemoError> {
    // The demo's token is no secret; its API must not leave this host.
    if !listen.ip().is_loopback() {
        return Err(DemoError::Story(format!(
            "--listen {listen}: the demo serves its admin API on loopback only (e.g. 127.0.0.1:9470)"
        )));
    }
    let forward = crate::testbed::forward::start(listen, &lab.bed.client, PORT)?;
    let bound = forward.addr;
    println!("gwanje's API on the host: http://{bound}/");
    let _companions = if with_prometheus {
        let (prometheus, alertmanager) = companions::start(&lab.dir, bound)?;
        println!(
            "Prometheus (scraping the demo every 5 s, with deploy/prometheus/rules): http://{}/\nAlertmanager: http://{}/",
            prometheus.addr, alertmanager.addr
        );
        Some((prometheus, alertmanager))
    } else {
        None
    };
    println!(
        "\nThe network stays up until Ctrl-C. From another terminal (as root):\n  curl http://{bound}/metrics\n  curl http://{bound}/api/v1/status\n  gwanje demo break router-a            (also: --how large-packets, far-link, near-link, loss)\n  gwanje demo break portal\n  gwanje demo mend router-a\n  gwanje demo list\n  curl -H \"Authorization: Bearer $(cat {token})\" -d '{{\"path\":\"standby\",\"ttl\":\"1m\",\"by\":\"you\"}}' http://{bound}/api/v1/groups/{GROUP}/pin\n",
        token = lab.dir.join("token").display()
    );
    let mut watch = Watch::new();
    while !interrupted() {
        watch.update(&lab.gwanje.status());
        if let Some(status) = lab.gwanje.exited() {
            return Err(DemoError::GwanjeExited(status.to_string()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
