//! The gwanje setup the failover tests and benchmark run on the testbed:
//! 100 ms checks with a fall of 3, the tuning the README's figures are for.

use super::lab::Setup;
use super::topology::{GW_A, GW_B, SERVICE_PREFIX};

/// The admin token the setup configures.
pub const TOKEN: &str = "rig-token-71c2";
/// The API port on the client namespace's loopback.
pub const PORT: u16 = 9470;

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

/// Fast liveness: one full-size don't-fragment echo every 50 ms through
/// each path, confirmed by a burst of 4 when it is lost, down after 2
/// failed probes in a row; routers are checked once a second. At most 20
/// echoes plus 30 confirmations a second per path (docs/failover.md has
/// the false-switch arithmetic).
const FAST_CATALOG: &str = "\
service: svc
targets:
  - {name: live, interval: 50ms, timeout: 30ms, health: {fall: 2, rise: 5}, icmp: {host: 198.18.100.1, packets: 1, confirm: 4, max_loss: 0.5, payload_size: 1472, dont_fragment: true}}
  - {name: http, interval: 2s, timeout: 1500ms, health: {fall: 4, window: 5, rise: 1}, http: {url: 'http://198.18.100.1/', body_must_match: [ok]}}
";

/// How the paths are watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 5-echo ICMP checks (small and full-size) every 100 ms, fall 3.
    Default,
    /// The fast liveness stream (see `FAST_CATALOG`).
    Fast,
}

/// The default-mode setup with the group's `failback` and `flap_guard`
/// given (YAML flow maps).
pub fn failover_setup(failback: &str, flap_guard: &str) -> Setup {
    failover_setup_in(Mode::Default, failback, flap_guard)
}

/// The setup in `mode`.
pub fn failover_setup_in(mode: Mode, failback: &str, flap_guard: &str) -> Setup {
    let (router_check, catalog, checks) = match mode {
        Mode::Default => (
            "{interval: 100ms, timeout: 80ms, packets: 3, health: {fall: 3, rise: 3}}",
            CATALOG,
            "[svc/icmp, svc/icmp-large, svc/http]",
        ),
        Mode::Fast => (
            "{interval: 1s, timeout: 500ms, packets: 3, health: {fall: 2, rise: 2}}",
            FAST_CATALOG,
            "[svc/live, svc/http]",
        ),
    };
    let config = format!(
        "listen: 127.0.0.1:{PORT}
probe_files: [probes/*.yaml]
logging: {{level: info}}
admin: {{token_file: token}}
paths:
  - {{name: primary, gateway: {GW_A}, interface: ca, fwmark: 101, table: 101, manage_policy_routing: true, router_check: {router_check}}}
  - {{name: standby, gateway: {GW_B}, interface: cb, fwmark: 102, table: 102, manage_policy_routing: true, router_check: {router_check}}}
failover_groups:
  - name: services
    routes: [{SERVICE_PREFIX}]
    paths: [primary, standby]
    checks: {checks}
    hold_down: 1s
    min_dwell: 1s
    failback: {failback}
    flap_guard: {flap_guard}
    isolation_window: 300ms
journal: {{dir: journal}}
"
    );
    Setup {
        files: vec![
            ("gwanje.yaml".into(), config),
            ("probes/svc.yaml".into(), catalog.into()),
            ("token".into(), TOKEN.into()),
        ],
        config: "gwanje.yaml".into(),
        port: PORT,
    }
}

/// Replica `name` of cluster `cluster` on etcd `endpoints`, its API on
/// `port`: the default-mode setup with auto failback, its own config,
/// journal and fence file, its actuator co-located when `actuate`. `index`
/// gives it its own policy-routing marks and tables, so replicas sharing
/// one namespace never remove each other's.
pub fn replica_setup(
    name: &str,
    index: u32,
    port: u16,
    cluster: &str,
    endpoints: &[String],
    actuate: bool,
) -> Setup {
    let mut setup = failover_setup("{mode: auto, after: 2s}", "{max_switches: 6, window: 1m}");
    let (a, b) = (101 + 100 * index, 102 + 100 * index);
    let config = setup.files[0]
        .1
        .replace(
            &format!("listen: 127.0.0.1:{PORT}"),
            &format!("listen: 127.0.0.1:{port}"),
        )
        .replace(
            "journal: {dir: journal}",
            &format!("journal: {{dir: journal-{name}}}"),
        )
        .replace(
            "fwmark: 101, table: 101",
            &format!("fwmark: {a}, table: {a}"),
        )
        .replace(
            "fwmark: 102, table: 102",
            &format!("fwmark: {b}, table: {b}"),
        );
    let config = format!(
        "{config}cluster:\n  name: {cluster}\n  replica: {name}\n  lease_ttl: 3s\n  actuate: {actuate}\n  fence_file: fence-{name}\n  etcd: {{endpoints: [{}]}}\n",
        endpoints.join(", ")
    );
    setup.files[0] = (format!("gwanje-{name}.yaml"), config);
    setup.config = format!("gwanje-{name}.yaml");
    setup.port = port;
    setup
}
