//! Several sites, one vantage each: a whole failover testbed per site (its
//! client, two routers, its data centre with the services), and a
//! management network joining the sites' clients (198.19.0.0/24, on a
//! bridge in a namespace of its own) over which the vantages follow each
//! other's observation streams. Cutting a site's uplink (both router
//! links) leaves its management link: the others then see it isolated.
//!
//! ```text
//!   site a: client ─ routers a, b ─ data centre      198.19.0.1 ┐
//!   site b: client ─ routers a, b ─ data centre      198.19.0.2 ├─ mgmt bridge
//!   site c: client ─ routers a, b ─ data centre      198.19.0.3 ┘
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::TestbedError;
use super::gwanje::Gwanje;
use super::netns::{Netns, sh};
use super::services::Services;
use super::topology::{GW_A, GW_B, SERVICE_PREFIX, Testbed};

/// The API port of every vantage (on every address of its client namespace).
pub const PORT: u16 = 9471;
/// The admin token of every vantage.
pub const TOKEN: &str = "sites-admin-5d1e";
/// The observer token every vantage accepts from its peers.
pub const OBSERVER: &str = "sites-observer-9a07";
/// How often routers and ICMP checks are probed, ms.
pub const INTERVAL_MS: u64 = 100;

/// One site: its testbed, services and vantage.
pub struct Site {
    /// The vantage's name.
    pub name: String,
    /// Its address on the management network.
    pub mgmt: String,
    /// Its gwanje (dropped first).
    pub gwanje: Gwanje,
    /// Its data centre's services.
    pub services: Option<Services>,
    /// Its namespaces.
    pub bed: Testbed,
    /// Its config, log and journal.
    pub dir: PathBuf,
}

/// Every site and the management network.
pub struct Sites {
    /// The sites, in order.
    pub sites: Vec<Site>,
    /// The management bridge's namespace (deleted when dropped, after the sites).
    mgmt: Netns,
}

/// The catalog each site probes: a check through each path every 100 ms
/// (ICMP to the portal) and the portal's HTTP every 500 ms.
const CATALOG: &str = "\
service: portal
targets:
  - {name: icmp, interval: 100ms, timeout: 80ms, health: {fall: 3, rise: 3}, icmp: {host: 198.18.100.1, packets: 3, max_loss: 0.6}}
  - {name: http, interval: 500ms, timeout: 400ms, health: {fall: 2, rise: 2}, http: {url: 'http://198.18.100.1/', body_must_match: [ok]}}
";

fn config(name: &str, peers: &[(String, String)]) -> String {
    let mut list = String::new();
    for (n, addr) in peers {
        list.push_str(&format!(
            "  - {{name: {n}, url: 'http://{addr}:{PORT}', token_file: observer-token}}\n"
        ));
    }
    let router = "{interval: 100ms, timeout: 80ms, packets: 3, health: {fall: 3, rise: 3}}";
    format!(
        "listen: 0.0.0.0:{PORT}
probe_files: [probes/*.yaml]
logging: {{level: info}}
admin: {{token_file: token, observer_token_file: observer-token}}
vantage: {{name: {name}, site: {name}, controls: [router:primary, router:standby]}}
peers:
{list}paths:
  - {{name: primary, gateway: {GW_A}, interface: ca, fwmark: 101, table: 101, manage_policy_routing: true, router_check: {router}}}
  - {{name: standby, gateway: {GW_B}, interface: cb, fwmark: 102, table: 102, manage_policy_routing: true, router_check: {router}}}
failover_groups:
  - name: services
    routes: [{SERVICE_PREFIX}]
    paths: [primary, standby]
    checks: [portal/icmp, portal/http]
    hold_down: 1s
    min_dwell: 1s
    failback: {{mode: manual}}
    isolation_window: 300ms
journal: {{dir: journal}}
"
    )
}

impl Sites {
    /// Builds one site per name under `dir/<name>`, joins them on the
    /// management network, starts `exe` in each, and waits until every
    /// vantage routes via its primary and sees every target up by the
    /// votes of all.
    pub fn start(exe: &Path, dir: &Path, names: &[&str]) -> Result<Sites, TestbedError> {
        let beds: Vec<Testbed> = names
            .iter()
            .map(|_| Testbed::new())
            .collect::<Result<_, _>>()?;
        // Named after the first site's namespaces, so a leftover is found
        // (and removed) as theirs are.
        let id = beds[0].client.0.strip_suffix("-cl").unwrap_or("gwj0-0");
        let mgmt = Netns(format!("{id}-mg"));
        sh(&["ip", "netns", "add", &mgmt.0])?;
        let mut sites = Sites {
            sites: Vec::new(),
            mgmt,
        };
        let m = &sites.mgmt;
        m.ip(&["link", "set", "lo", "up"])?;
        m.ip(&["link", "add", "name", "mgbr", "type", "bridge"])?;
        m.ip(&["link", "set", "dev", "mgbr", "up"])?;
        let addrs: Vec<String> = (1..=names.len()).map(|i| format!("198.19.0.{i}")).collect();
        for (i, bed) in beds.iter().enumerate() {
            let port = format!("s{i}");
            sh(&[
                "ip",
                "link",
                "add",
                "name",
                "mgmt",
                "netns",
                &bed.client.0,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &m.0,
            ])?;
            bed.client
                .ip(&["addr", "add", &format!("{}/24", addrs[i]), "dev", "mgmt"])?;
            bed.client.ip(&["link", "set", "dev", "mgmt", "up"])?;
            m.ip(&["link", "set", "dev", &port, "master", "mgbr"])?;
            m.ip(&["link", "set", "dev", &port, "up"])?;
        }
        for (i, (bed, name)) in beds.into_iter().zip(names).enumerate() {
            let services = Services::start(&bed.server)?;
            let site_dir = dir.join(name);
            let peers: Vec<(String, String)> = names
                .iter()
                .zip(&addrs)
                .filter(|(n, _)| *n != name)
                .map(|(n, a)| (n.to_string(), a.clone()))
                .collect();
            for (rel, text) in [
                ("gwanje.yaml", config(name, &peers)),
                ("probes/portal.yaml", CATALOG.to_string()),
                ("token", TOKEN.to_string()),
                ("observer-token", OBSERVER.to_string()),
            ] {
                let path = site_dir.join(rel);
                let write = || {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    crate::config::write_secret_file(&path, &text)
                };
                write().map_err(|e| TestbedError::io("write", path.display().to_string(), e))?;
            }
            let gwanje = Gwanje::start(
                exe,
                &bed.client,
                &site_dir.join("gwanje.yaml"),
                PORT,
                site_dir.join("gwanje.log"),
            )?;
            sites.sites.push(Site {
                name: name.to_string(),
                mgmt: addrs[i].clone(),
                gwanje,
                services: Some(services),
                bed,
                dir: site_dir,
            });
        }
        for s in &sites.sites {
            s.wait_status(
                Duration::from_secs(30),
                "every target up by every vantage",
                |st| {
                    let routed = st["groups"].as_array().is_some_and(|gs| {
                        gs.iter().all(|g| g["active_path"] == g["paths"][0]["name"])
                    });
                    let voted = st["vantage"]["verdicts"].as_array().is_some_and(|vs| {
                        !vs.is_empty()
                            && vs.iter().all(|v| {
                                v["verdict"] == "up"
                                    && v["votes"].as_array().is_some_and(|b| {
                                        b.len() == names.len()
                                            && b.iter().all(|b| b["vote"] == "up")
                                    })
                            })
                    });
                    routed && voted
                },
            )?;
        }
        Ok(sites)
    }

    /// The site named `name`.
    pub fn site(&self, name: &str) -> &Site {
        self.sites
            .iter()
            .find(|s| s.name == name)
            .expect("a site of this name")
    }

    /// Cuts (or, with `up`, restores) a site's whole uplink: everything it
    /// sends towards either router is dropped, as when its access line
    /// fails upstream (the links stay up, so the kernel keeps its routes);
    /// its management link stays.
    pub fn uplink(&self, name: &str, up: bool) -> Result<(), TestbedError> {
        let client = &self.site(name).bed.client;
        if up {
            client.nft_drop_table("gwj_uplink")
        } else {
            client.nft_rule("gwj_uplink", "output", "oifname { \"ca\", \"cb\" } drop")
        }
    }
}

impl Site {
    /// Polls this vantage's status every 50 ms (at most `limit`) until `done` holds.
    pub fn wait_status(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, TestbedError> {
        self.gwanje
            .wait_status(limit, &format!("{}: {what}", self.name), done)
    }

    /// The client's gateway for the data centre's prefix.
    pub fn route(&self) -> Option<String> {
        self.bed.client.route_via(SERVICE_PREFIX)
    }
}

impl Drop for Sites {
    fn drop(&mut self) {
        // Each site's gwanje and namespaces go first (the fields' order).
        self.sites.clear();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.mgmt.0])
            .status();
    }
}
