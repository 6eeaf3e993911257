//! The failover rig: the namespace testbed, its services, and the real
//! gwanje binary in the client namespace steering 198.18.100.0/24.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::daemon::Daemon;
use super::netns::{GW_A, GW_B, Ns, SERVICE_PREFIX, Services, Testbed};

/// The admin token the rig configures.
pub const TOKEN: &str = "rig-token-71c2";
const PORT: u16 = 9470;

/// Probe catalog: fast ICMP checks (small, and full-size with don't-fragment)
/// judged by loss ratio, and a slower HTTP check whose timeout covers a TCP
/// retransmission and whose window needs 4 failures of 5, so random loss on
/// a path does not flip it.
const CATALOG: &str = "\
service: svc
targets:
  - {name: icmp, interval: 100ms, timeout: 80ms, health: {fall: 3, rise: 3}, icmp: {host: 198.18.100.1, packets: 5, max_loss: 0.6}}
  - {name: icmp-large, interval: 100ms, timeout: 80ms, health: {fall: 3, rise: 3}, icmp: {host: 198.18.100.1, packets: 5, max_loss: 0.6, payload_size: 1472, dont_fragment: true}}
  - {name: http, interval: 2s, timeout: 1500ms, health: {fall: 4, window: 5, rise: 1}, http: {url: 'http://198.18.100.1/', body_must_match: [ok]}}
";

fn config_yaml(failback: &str, flap_guard: &str) -> String {
    format!(
        "listen: 127.0.0.1:{PORT}
probe_files: [probes/*.yaml]
logging: {{level: info}}
admin: {{token_file: token}}
paths:
  - name: primary
    gateway: {GW_A}
    interface: ca
    fwmark: 101
    table: 101
    manage_policy_routing: true
    router_check: {{interval: 100ms, timeout: 80ms, packets: 3, health: {{fall: 3, rise: 3}}}}
  - name: standby
    gateway: {GW_B}
    interface: cb
    fwmark: 102
    table: 102
    manage_policy_routing: true
    router_check: {{interval: 100ms, timeout: 80ms, packets: 3, health: {{fall: 3, rise: 3}}}}
failover_groups:
  - name: services
    routes: [{SERVICE_PREFIX}]
    paths: [primary, standby]
    checks: [svc/icmp, svc/icmp-large, svc/http]
    hold_down: 1s
    min_dwell: 1s
    failback: {failback}
    flap_guard: {flap_guard}
    isolation_window: 300ms
journal: {{dir: journal}}
"
    )
}

/// Everything one scenario needs.
pub struct Rig {
    /// Processes first: dropped (killed) before the namespaces go.
    pub gwanje: Daemon,
    /// The services (stoppable).
    pub services: Option<Services>,
    /// The namespaces.
    pub bed: Testbed,
    /// Config and log folder.
    pub dir: tempfile::TempDir,
}

/// A raw HTTP/1.0 exchange with gwanje inside `ns`: (status, body).
pub fn http(ns: &Ns, method: &str, path: &str, body: &str, token: Option<&str>) -> (u16, String) {
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: gwanje\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default()
    );
    ns.run(move || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", PORT)) else {
            return (0, String::new());
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(request.as_bytes());
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    })
}

impl Rig {
    /// Stops gwanje and runs `gwanje replay` on its journal with `args`:
    /// (exit code, stdout, stderr).
    pub fn replay(&mut self, args: &[&str]) -> (i32, String, String) {
        self.gwanje.terminate();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gwanje"))
            .arg("replay")
            .arg("--journal")
            .arg(self.dir.path().join("journal"))
            .args(args)
            .output()
            .expect("run gwanje replay");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Builds the testbed, starts the services and gwanje, and waits until
    /// gwanje has adopted the route and sees both paths up.
    pub fn start(failback: &str) -> Rig {
        Self::start_with(failback, |_| {})
    }

    /// Like [`Rig::start`] with the group's `flap_guard` given.
    pub fn start_guarded(failback: &str, flap_guard: &str) -> Rig {
        Self::start_full(failback, flap_guard, |_| {})
    }

    /// Like [`Rig::start`], changing the testbed with `prepare` before
    /// gwanje starts (e.g. removing the kernel's route for a cold start).
    pub fn start_with(failback: &str, prepare: impl FnOnce(&Testbed)) -> Rig {
        Self::start_full(failback, "{max_switches: 6, window: 1m}", prepare)
    }

    fn start_full(failback: &str, flap_guard: &str, prepare: impl FnOnce(&Testbed)) -> Rig {
        let bed = Testbed::new();
        prepare(&bed);
        let services = Services::start(&bed.server);
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("probes")).expect("probes dir");
        std::fs::write(dir.path().join("probes/svc.yaml"), CATALOG).expect("catalog");
        std::fs::write(dir.path().join("token"), TOKEN).expect("token");
        let config = dir.path().join("gwanje.yaml");
        std::fs::write(&config, config_yaml(failback, flap_guard)).expect("config");
        let gwanje = Daemon::start_in(
            &bed.client.0,
            &config,
            format!("127.0.0.1:{PORT}").parse().expect("addr"),
            dir.path().join("gwanje.log"),
        );
        let rig = Rig {
            gwanje,
            services: Some(services),
            bed,
            dir,
        };
        rig.wait_status(Duration::from_secs(20), "both paths up", |s| {
            let g = &s["groups"][0];
            g["active_path"] == "primary"
                && g["paths"]
                    .as_array()
                    .is_some_and(|p| p.iter().all(|p| p["state"] == "up"))
        });
        rig
    }

    /// The status API's answer.
    pub fn status(&self) -> serde_json::Value {
        let (code, body) = http(&self.bed.client, "GET", "/api/v1/status", "", None);
        if code != 200 {
            return serde_json::Value::Null;
        }
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
    }

    /// Gwanje's metrics text.
    pub fn metrics(&self) -> String {
        http(&self.bed.client, "GET", "/metrics", "", None).1
    }

    /// Polls the status (at most `limit`) until `done` holds.
    pub fn wait_status(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.status();
            if done(&s) {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}; status {s:#}\nlog:\n{}",
                self.gwanje.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The kernel's gateway for the service prefix in the client namespace.
    pub fn route(&self) -> Option<String> {
        self.bed.client.route_via(SERVICE_PREFIX)
    }

    /// Polls the kernel route (at most `limit`) until it goes via `gateway`.
    pub fn wait_route(&self, gateway: &str, limit: Duration) -> Instant {
        let start = Instant::now();
        while self.route().as_deref() != Some(gateway) {
            assert!(
                start.elapsed() < limit,
                "route not via {gateway} within {limit:?} (now {:?})\nlog:\n{}",
                self.route(),
                self.gwanje.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Instant::now()
    }
}
