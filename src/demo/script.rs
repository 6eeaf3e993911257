//! The scripted story: steady state, router A stops forwarding, failover,
//! router A comes back dropping only large packets, the portal itself
//! breaks (an alert, no switch), recovery and failback.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::watch::Watch;
use super::{DemoError, Pace};
use crate::testbed::Router::A;
use crate::testbed::topology::{GW_A, GW_B, PORTAL};
use crate::testbed::{Failure, Lab, TestbedError, Traffic, interrupted, longest_gap};

const LARGE: Failure = Failure::LargePacketDrop {
    router: A,
    min_bytes: 1400,
};
const PORTAL_DOWN: Failure = Failure::ServiceRefuses {
    addr: PORTAL,
    port: 80,
};

/// The demo run: the lab and its narrator.
pub struct Story<'a> {
    /// The lab the story plays on.
    pub lab: &'a Lab,
    /// The narrator.
    pub watch: Watch,
    /// How long to linger between acts.
    pub pace: Pace,
}

impl Story<'_> {
    fn act(&self, n: u32, title: &str) {
        println!();
        println!("── {n}. {title}");
    }

    /// One status, narrated; fails when gwanje died or the user interrupted.
    fn poll(&mut self) -> Result<Value, DemoError> {
        let s = self.lab.gwanje.status();
        self.watch.update(&s);
        if interrupted() {
            return Err(TestbedError::Interrupted.into());
        }
        if let Some(status) = self.lab.gwanje.exited() {
            return Err(DemoError::GwanjeExited(status.to_string()));
        }
        Ok(s)
    }

    /// Lets the audience watch for `d` (scaled by the pace), narrating.
    fn linger(&mut self, d: Duration) -> Result<Value, DemoError> {
        let end = Instant::now() + self.pace.scale(d);
        loop {
            let s = self.poll()?;
            if Instant::now() >= end {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls every 50 ms, narrating, until `done` holds (at most `limit`).
    fn until(
        &mut self,
        limit: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, DemoError> {
        let start = Instant::now();
        loop {
            let s = self.poll()?;
            if done(&s) {
                return Ok(s);
            }
            if start.elapsed() >= limit {
                return Err(TestbedError::Timeout {
                    what: what.into(),
                    limit,
                    last: s.to_string(),
                }
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn failovers(&self) -> f64 {
        self.lab.gwanje.metric_sum("gwanje_failovers_total")
    }

    /// Plays the whole story.
    pub fn play(&mut self) -> Result<(), DemoError> {
        let group = |s: &Value| s["groups"][0].clone();
        let active = move |s: &Value, p: &str| group(s)["active_path"] == p;

        self.act(
            1,
            "Steady state: traffic to the data centre flows via router A",
        );
        self.watch.say(
            "gwanje probes router A and router B, and the portal through each of them, every 100 ms",
        );
        self.linger(Duration::from_secs(3))?;
        let moves_before = self.failovers();

        self.act(
            2,
            "Router A stops forwarding (it still answers pings to itself)",
        );
        let traffic = Traffic::start(&self.lab.bed.client, Duration::from_secs(60), 64)?;
        std::thread::sleep(Duration::from_millis(300));
        let broken = Instant::now();
        Failure::NoForwarding(A).apply(&self.lab.bed)?;
        self.until(Duration::from_secs(10), "failover to standby", |s| {
            active(s, "standby")
        })?;
        let moved = self.lab.wait_route(GW_B, Duration::from_secs(5))?;
        self.linger(Duration::from_secs(1))?;
        let gap = longest_gap(&traffic.finish()?, broken, Instant::now());
        self.watch.say(&format!(
            "failover: the kernel route moved to router B {} ms after the failure; users saw {} ms without replies",
            (moved - broken).as_millis(),
            gap.as_millis()
        ));
        self.linger(Duration::from_secs(2))?;

        self.act(
            3,
            "Router A comes back, but its damaged ports drop packets of 1,400 bytes and more",
        );
        self.watch
            .say("small pings to router A are green again; full-size packets die");
        LARGE.apply(&self.lab.bed)?;
        Failure::NoForwarding(A).repair(&self.lab.bed)?;
        let s = self.until(Duration::from_secs(10), "large-packet blame", |s| {
            // Blamed for the large-packet check alone: small pings pass.
            group(s)["paths"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.ends_with(": routers/portal-reachable-large"))
        })?;
        self.watch.say(&format!(
            "large-packet loss detected on primary: {}",
            s["groups"][0]["paths"][0]["reason"]
                .as_str()
                .unwrap_or_default()
        ));
        // Longer than failback.after (5 s): gwanje must not fail back.
        let s = self.linger(Duration::from_secs(7))?;
        if !active(&s, "standby") {
            return Err(DemoError::Story(
                "gwanje failed back to a router that drops large packets".into(),
            ));
        }
        self.watch
            .say("no failback: traffic stays on router B while router A drops large packets");

        self.act(
            4,
            "The portal itself breaks: it refuses connections on every path",
        );
        let moves = self.failovers();
        PORTAL_DOWN.apply(&self.lab.bed)?;
        let s = self.until(Duration::from_secs(15), "service-down alert", |s| {
            s["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["name"] == "ServiceDown"))
        })?;
        self.linger(Duration::from_secs(2))?;
        if self.failovers() != moves || !active(&s, "standby") {
            return Err(DemoError::Story(
                "gwanje switched paths for a service failure".into(),
            ));
        }
        self.watch
            .say("service failure: ServiceDown raised, no switch (moving traffic would not help)");

        self.act(5, "Recovery: the portal and router A are mended");
        let traffic = Traffic::start(&self.lab.bed.client, Duration::from_secs(60), 1400)?;
        PORTAL_DOWN.repair(&self.lab.bed)?;
        LARGE.repair(&self.lab.bed)?;
        let mended = Instant::now();
        self.watch.say(
            "gwanje fails back once router A has stayed clean for failback.after (5 s) since it recovered",
        );
        self.until(Duration::from_secs(30), "failback to primary", |s| {
            active(s, "primary")
        })?;
        let back = self.lab.wait_route(GW_A, Duration::from_secs(5))?;
        self.linger(Duration::from_secs(1))?;
        let gap = longest_gap(&traffic.finish()?, back, Instant::now());
        self.watch.say(&format!(
            "failback: the route moved back to router A {:.1} s after the repair; users saw {} ms without replies",
            (back - mended).as_secs_f64(),
            gap.as_millis()
        ));
        self.linger(Duration::from_secs(2))?;
        let switches = self.failovers() - moves_before;
        self.watch.say(&format!(
            "{switches} switches in all (one failover, one failback); alerts raised: {}",
            self.watch
                .raised
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(())
    }
}
