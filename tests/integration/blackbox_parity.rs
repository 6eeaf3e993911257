//! gwanje beside Debian's blackbox_exporter 0.23 on the same loopback
//! targets, which keeps the metric table of docs/metrics.md true: for every prober, each
//! family blackbox exports must have a row; each row marked *same* must be
//! exported by gwanje exactly when blackbox exports it, with the same label
//! sets, and with the same value unless it measures time.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::companions;
use common::daemon::Daemon;
use common::expo::{self, Sample};
use common::plan::ConfigDir;
use common::raw::{self, Behaviour};
use common::{certs, client, dns, fleet};

/// One row of docs/metrics.md's table: the families it names and what it says.
#[derive(Debug)]
struct Row {
    names: Vec<String>,
    probers: Vec<String>,
    same: bool,
}

impl Row {
    fn names(&self, family: &str) -> bool {
        self.names.iter().any(|n| match n.strip_suffix('*') {
            Some(prefix) => family.starts_with(prefix),
            None => n == family,
        })
    }

    fn covers(&self, prober: &str) -> bool {
        self.probers.iter().any(|p| p == prober || p == "all")
    }
}

/// The rows of the blackbox table in docs/metrics.md.
fn table() -> Vec<Row> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
            .expect("docs/metrics.md");
    let start = readme
        .find("| blackbox_exporter 0.23 | prober | gwanje |")
        .expect("docs/metrics.md has the blackbox metric table");
    let rows: Vec<Row> = readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            assert_eq!(cells.len(), 3, "metrics table row: {line}");
            let names = cells[0]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|n| n.split('{').next().unwrap_or(n).to_string())
                .collect();
            Row {
                names,
                probers: cells[1].split(", ").map(str::to_string).collect(),
                same: cells[2].trim().starts_with("same"),
            }
        })
        .collect();
    assert!(
        rows.len() >= 15,
        "the metrics table has {} rows",
        rows.len()
    );
    rows
}

/// Whether a family measures time, so two probers' values may differ.
fn timing(family: &str) -> bool {
    family.ends_with("duration_seconds") || family == "probe_dns_lookup_time_seconds"
}

/// Series of one family: labels → value.
type Family = BTreeMap<BTreeMap<String, String>, f64>;

fn families(samples: Vec<Sample>) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for s in samples {
        out.entry(s.name).or_default().insert(s.labels, s.value);
    }
    out
}

/// `/probe` of `addr`; `None` while it has no result yet (503).
async fn probe(addr: SocketAddr, target: &str, module: &str) -> Option<BTreeMap<String, Family>> {
    let mut url = url::Url::parse("http://x/probe").expect("url");
    url.query_pairs_mut()
        .append_pair("target", target)
        .append_pair("module", module);
    let path = format!("/probe?{}", url.query().expect("query"));
    let reply = client::get(addr, &path).await.expect("probe");
    if reply.status == 503 {
        return None;
    }
    assert_eq!(reply.status, 200, "{addr}{path}: {}", reply.body);
    Some(families(expo::parse(&reply.body)))
}

/// One target both probe: gwanje's name for it, the prober, blackbox's
/// module and target parameter.
struct Case {
    name: &'static str,
    prober: &'static str,
    module: &'static str,
    target: String,
    /// Whether the probe should succeed (so a broken module shows).
    succeeds: bool,
}

/// Compares one case; returns what differs, in words.
fn compare(
    rows: &[Row],
    case: &Case,
    gwanje: &BTreeMap<String, Family>,
    blackbox: &BTreeMap<String, Family>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let what = |s: &str| format!("{} ({} {}): {s}", case.name, case.prober, case.module);
    for family in blackbox.keys() {
        if !rows
            .iter()
            .any(|r| r.names(family) && r.covers(case.prober))
        {
            wrong.push(what(&format!(
                "blackbox exports {family}, which has no row for this prober in the table of docs/metrics.md"
            )));
        }
    }
    for family in gwanje.keys().filter(|f| f.starts_with("probe_")) {
        if !rows
            .iter()
            .any(|r| r.same && r.names(family) && r.covers(case.prober))
        {
            wrong.push(what(&format!(
                "gwanje exports {family} under a blackbox name without a *same* row for this prober"
            )));
        }
    }
    for row in rows.iter().filter(|r| r.same && r.covers(case.prober)) {
        for family in &row.names {
            match (gwanje.get(family), blackbox.get(family)) {
                (None, None) => {}
                (Some(_), None) => wrong.push(what(&format!(
                    "{family}: gwanje exports it, blackbox does not"
                ))),
                (None, Some(b)) => wrong.push(what(&format!(
                    "{family}: blackbox exports {b:?}, gwanje nothing"
                ))),
                (Some(g), Some(b)) => {
                    let gl: BTreeSet<_> = g.keys().collect();
                    let bl: BTreeSet<_> = b.keys().collect();
                    if gl != bl {
                        wrong.push(what(&format!(
                            "{family}: label sets differ: gwanje {gl:?}, blackbox {bl:?}"
                        )));
                    } else if !timing(family) && g != b {
                        wrong.push(what(&format!(
                            "{family}: values differ: gwanje {g:?}, blackbox {b:?}"
                        )));
                    } else if g.values().chain(b.values()).any(|v| v.is_nan()) {
                        wrong.push(what(&format!("{family}: NaN: {g:?} / {b:?}")));
                    }
                }
            }
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_same_metric_matches_blackbox_exporter_on_the_same_targets() {
    let rows = table();
    let c = certs::generate();
    let web = fleet::http(fleet::app()).await;
    let tls = fleet::https(fleet::app(), &c.valid).await;
    let ns = dns::serve().await;
    let pong = raw::serve(Behaviour::Pong).await;
    let farewell = raw::serve(Behaviour::Farewell).await;
    let icmp = common::is_root();

    let case = |name, prober, module, target: String, succeeds| Case {
        name,
        prober,
        module,
        target,
        succeeds,
    };
    let mut cases = vec![
        case("home", "http", "http", web.url("/"), true),
        case("unavailable", "http", "http", web.url("/status/503"), false),
        case("moved", "http", "http", web.url("/redirect"), true),
        case("modified", "http", "http", web.url("/modified"), true),
        case("unmatched", "http", "http_regex", web.url("/"), false),
        case("secure", "http", "http_tls", tls.https_url("/"), true),
        case("pong", "tcp", "tcp_pong", pong.addr.to_string(), true),
        case(
            "farewell",
            "tcp",
            "tcp_welcome",
            farewell.addr.to_string(),
            false,
        ),
        case(
            "tcp_tls",
            "tcp",
            "tcp_tls",
            format!("localhost:{}", tls.addr.port()),
            true,
        ),
        case("a", "dns", "dns_a", ns.addr.to_string(), true),
        case("zone", "dns", "dns_soa", ns.addr.to_string(), true),
    ];
    if icmp {
        cases.push(case("ping", "icmp", "icmp", "127.0.0.1".into(), true));
    }

    let ca = c.ca_file.display();
    let catalog = format!(
        "service: parity\ntargets:\n\
         \x20 - {{name: home, http: {{url: '{home}'}}}}\n\
         \x20 - {{name: unavailable, http: {{url: '{unavailable}'}}}}\n\
         \x20 - {{name: moved, http: {{url: '{moved}'}}}}\n\
         \x20 - {{name: modified, http: {{url: '{modified}'}}}}\n\
         \x20 - {{name: unmatched, http: {{url: '{home}', body_must_match: ['no such words']}}}}\n\
         \x20 - {{name: secure, http: {{url: '{secure}', tls: {{ca_file: '{ca}'}}}}}}\n\
         \x20 - {{name: pong, tcp: {{address: '{pong}', exchange: [{{send: \"PING\\n\"}}, {{expect: '^\\+PONG'}}]}}}}\n\
         \x20 - {{name: farewell, tcp: {{address: '{farewell}', exchange: [{{expect: 'WELCOME'}}]}}}}\n\
         \x20 - {{name: tcp_tls, tcp: {{address: 'localhost:{tls_port}', tls: {{ca_file: '{ca}'}}}}}}\n\
         \x20 - {{name: a, dns: {{server: '{ns}', name: ok.test.}}}}\n\
         \x20 - {{name: zone, dns: {{server: '{ns}', name: zone.test., type: SOA}}}}\n{ping}",
        home = web.url("/"),
        unavailable = web.url("/status/503"),
        moved = web.url("/redirect"),
        modified = web.url("/modified"),
        secure = tls.https_url("/"),
        pong = pong.addr,
        farewell = farewell.addr,
        tls_port = tls.addr.port(),
        ns = ns.addr,
        ping = if icmp {
            "  - {name: ping, icmp: {host: 127.0.0.1}}\n"
        } else {
            ""
        },
    );
    let dir = ConfigDir::new(
        "listen: 127.0.0.1:0\ndefaults: {interval: 1s, timeout: 800ms}\n",
        &[("parity", &catalog)],
    );
    let modules = format!(
        "modules:\n\
         \x20 http: {{prober: http, timeout: 2s, http: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false}}}}\n\
         \x20 http_regex: {{prober: http, timeout: 2s, http: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false, fail_if_body_not_matches_regexp: ['no such words']}}}}\n\
         \x20 http_tls: {{prober: http, timeout: 2s, http: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false, tls_config: {{ca_file: '{ca}'}}}}}}\n\
         \x20 tcp_pong: {{prober: tcp, timeout: 2s, tcp: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false, query_response: [{{send: PING}}, {{expect: '^\\+PONG'}}]}}}}\n\
         \x20 tcp_welcome: {{prober: tcp, timeout: 2s, tcp: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false, query_response: [{{expect: WELCOME}}]}}}}\n\
         \x20 tcp_tls: {{prober: tcp, timeout: 2s, tcp: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false, tls: true, tls_config: {{ca_file: '{ca}'}}}}}}\n\
         \x20 dns_a: {{prober: dns, timeout: 2s, dns: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false, query_name: ok.test., query_type: A}}}}\n\
         \x20 dns_soa: {{prober: dns, timeout: 2s, dns: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false, query_name: zone.test., query_type: SOA}}}}\n\
         \x20 icmp: {{prober: icmp, timeout: 2s, icmp: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false}}}}\n"
    );
    let bb_dir = tempfile::tempdir().expect("tempdir");
    let Some(bb) = companions::blackbox(bb_dir.path(), &modules) else {
        return;
    };
    let mut d = Daemon::start(&dir.config, dir.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;

    let mut wrong = Vec::new();
    for case in &cases {
        let key = format!("parity/{}", case.name);
        // gwanje answers its latest result; wait for the first one.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let ours = loop {
            if let Some(r) = probe(d.addr, &key, case.module).await {
                break r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{key}: no result within 20 s:\n{}",
                d.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let theirs = probe(bb.addr, &case.target, case.module)
            .await
            .expect("blackbox_exporter answers every probe");
        let success = |r: &BTreeMap<String, Family>| {
            r.get("probe_success")
                .and_then(|f| f.values().next().copied())
        };
        let want = Some(if case.succeeds { 1.0 } else { 0.0 });
        assert_eq!(
            (success(&ours), success(&theirs)),
            (want, want),
            "{key}: probe_success (gwanje, blackbox)"
        );
        wrong.extend(compare(&rows, case, &ours, &theirs));
    }
    assert!(
        wrong.is_empty(),
        "gwanje differs from blackbox_exporter where docs/metrics.md says *same*:\n{}",
        wrong.join("\n")
    );
    let _ = d.stop();
}
