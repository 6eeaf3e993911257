//! `paths` and `failover_groups` of the daemon config.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use super::document::Document;
use super::error::ConfigError;
use super::raw::{RawGroup, RawPath};
use super::values;
use super::values::valid_name;
use crate::core::{
    DampeningPolicy, Failback, FlapGuard, GroupConfig, GroupName, HealthPolicy, PathName, TargetKey,
};
use crate::plan::{Action, GroupSpec, IcmpSpec, PathSpec, ProbeSpec, Source, Target};

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn push<T>(errors: &mut Vec<ConfigError>, r: Result<T, ConfigError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

use values::duration_or;

/// The largest flap-guard switch budget per window.
pub const MAX_SWITCHES: u32 = 1_000;

/// Routing tables the kernel reserves (unspec, default, main, local).
const RESERVED_TABLES: [u32; 4] = [0, 253, 254, 255];

/// Validates `paths`.
pub fn paths(doc: &Document, raw: &[RawPath], errors: &mut Vec<ConfigError>) -> Vec<PathSpec> {
    let mut out = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut marks: HashMap<u32, usize> = HashMap::new();
    let mut tables: HashMap<u32, usize> = HashMap::new();
    for (i, p) in raw.iter().enumerate() {
        let at = |k: &str| format!("paths[{i}].{k}");
        let before = errors.len();
        if !valid_name(&p.name) {
            errors.push(doc.error_at(&at("name"), format!("{:?} is not a valid path name; valid: 1-64 characters of a-z, A-Z, 0-9, '-', '_' or '.'", p.name)));
        } else if let Some(first) = names.insert(&p.name, i) {
            errors.push(doc.error_at(
                &at("name"),
                format!(
                    "duplicate path name {:?} (also paths[{first}]); valid: unique names",
                    p.name
                ),
            ));
        }
        let gateway = p.gateway.parse::<IpAddr>().map_err(|_| {
            doc.error_at(
                &at("gateway"),
                format!(
                    "{:?} is not an IP address; valid: the next hop's address, e.g. 198.18.1.1",
                    p.gateway
                ),
            )
        });
        let gateway = push(errors, gateway);
        let source = p.source.as_ref().and_then(|s| {
            push(
                errors,
                s.parse::<IpAddr>().map_err(|_| {
                    doc.error_at(
                        &at("source"),
                        format!("{s:?} is not an IP address; valid: a local address of this path"),
                    )
                }),
            )
        });
        if let Some(m) = p.fwmark {
            if m == 0 {
                errors.push(doc.error_at(
                    &at("fwmark"),
                    "0 is not valid; valid: a non-zero mark unique to this path",
                ));
            } else if let Some(first) = marks.insert(m, i) {
                errors.push(doc.error_at(
                    &at("fwmark"),
                    format!(
                        "fwmark {m} is already used by paths[{first}]; valid: one mark per path"
                    ),
                ));
            }
        }
        if let Some(t) = p.table {
            if RESERVED_TABLES.contains(&t) {
                errors.push(doc.error_at(
                    &at("table"),
                    format!("table {t} is reserved by the kernel; valid: 1-252 or 256 and above"),
                ));
            } else if let Some(first) = tables.insert(t, i) {
                errors.push(doc.error_at(
                    &at("table"),
                    format!(
                        "table {t} is already used by paths[{first}]; valid: one table per path"
                    ),
                ));
            }
        }
        if p.fwmark.is_some() != p.table.is_some() {
            errors.push(doc.error_at_key(&format!("paths[{i}]"), "fwmark and table go together: the mark selects the table with the path's default route"));
        }
        if p.fwmark.is_none() && p.interface.is_none() && p.source.is_none() {
            errors.push(doc.error_at_key(&format!("paths[{i}]"), "probes cannot be sent through this path; valid: give fwmark and table, or interface, or source"));
        }
        if p.manage_policy_routing && p.fwmark.is_none() {
            errors.push(doc.error_at(
                &at("manage_policy_routing"),
                "needs fwmark and table to install",
            ));
        }
        let rc = p.router_check.as_ref();
        let rc_at = |k: &str| format!("paths[{i}].router_check.{k}");
        let timing_errors = errors.len();
        let interval = duration_or(
            doc,
            &rc_at("interval"),
            rc.and_then(|r| r.interval.as_deref()),
            Duration::from_secs(1),
            values::limits::INTERVAL,
            errors,
        );
        let timeout = duration_or(
            doc,
            &rc_at("timeout"),
            rc.and_then(|r| r.timeout.as_deref()),
            Duration::from_millis(500),
            values::limits::TIMEOUT,
            errors,
        );
        // Compared only when both parsed: a rejected value is not the one in force.
        if errors.len() == timing_errors && timeout >= interval {
            errors.push(doc.error_at(
                &rc_at("timeout"),
                format!(
                    "timeout {} is not below interval {}; valid: a shorter timeout",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
            ));
        }
        let health = match rc.and_then(|r| r.health) {
            Some(h) => push(errors, values::health(doc, &rc_at("health"), h)),
            None => Some(HealthPolicy::consecutive(3, 3)),
        };
        let max_loss = rc.and_then(|r| r.max_loss).unwrap_or(0.5);
        if !(0.0..1.0).contains(&max_loss) {
            errors.push(doc.error_at(
                &rc_at("max_loss"),
                format!("{max_loss} is not valid; valid: 0.0 up to (not including) 1.0"),
            ));
        }
        let packets = push(
            errors,
            values::in_range(
                doc,
                &rc_at("packets"),
                rc.and_then(|r| r.packets).unwrap_or(3),
                1..=super::target::MAX_ICMP_PACKETS,
                "echoes",
            ),
        );
        let payload_size = push(
            errors,
            values::in_range(
                doc,
                &rc_at("payload_size"),
                rc.and_then(|r| r.payload_size).unwrap_or(56),
                0..=super::target::MAX_ICMP_PAYLOAD,
                "bytes",
            ),
        );
        if errors.len() > before {
            continue;
        }
        let (Some(gateway), Some(health), Some(packets), Some(payload_size)) =
            (gateway, health, packets, payload_size)
        else {
            continue;
        };
        let name = PathName::new(&p.name);
        let icmp = IcmpSpec {
            host: gateway.to_string(),
            packets,
            max_loss,
            payload_size,
            dont_fragment: false,
            confirm: 0,
            source: Source::default(),
        };
        let mut spec = PathSpec {
            name: name.clone(),
            gateway,
            interface: p.interface.clone(),
            source,
            fwmark: p.fwmark,
            table: p.table,
            manage_policy_routing: p.manage_policy_routing,
            router: Arc::new(Target {
                key: TargetKey::new("path", &p.name),
                service: "path".into(),
                name: p.name.as_str().into(),
                interval,
                timeout,
                health,
                probe: ProbeSpec::Icmp(icmp),
            }),
            router_health: health,
        };
        // The router check leaves through the path itself.
        let mut router = (*spec.router).clone();
        router.probe.bind_to(&spec);
        spec.router = Arc::new(router);
        out.push(spec);
    }
    out
}

/// Validates `failover_groups` against the paths and the loaded targets.
pub fn groups(
    doc: &Document,
    raw: &[RawGroup],
    declared: &[RawPath],
    paths: &[PathSpec],
    targets: &[Arc<Target>],
    errors: &mut Vec<ConfigError>,
) -> Vec<GroupSpec> {
    let mut out = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut claimed: Vec<(IpNet, usize)> = Vec::new();
    let mut check_owner: HashMap<String, usize> = HashMap::new();
    for (i, g) in raw.iter().enumerate() {
        let at = |k: &str| format!("failover_groups[{i}].{k}");
        let before = errors.len();
        if !valid_name(&g.name) {
            errors.push(doc.error_at(&at("name"), format!("{:?} is not a valid group name; valid: 1-64 characters of a-z, A-Z, 0-9, '-', '_' or '.'", g.name)));
        } else if let Some(first) = names.insert(&g.name, i) {
            errors.push(doc.error_at(
                &at("name"),
                format!(
                    "duplicate group name {:?} (also failover_groups[{first}])",
                    g.name
                ),
            ));
        }
        let mut routes = Vec::new();
        for (j, r) in g.routes.iter().enumerate() {
            let rat = format!("{}[{j}]", at("routes"));
            match r.parse::<IpNet>() {
                Ok(net) if net.trunc() != net => errors.push(doc.error_at(
                    &rat,
                    format!("{r:?} has host bits set; valid: {}", net.trunc()),
                )),
                Ok(net) => {
                    if let Some((other, owner)) = claimed
                        .iter()
                        .find(|(o, _)| o.contains(&net) || net.contains(o))
                    {
                        errors.push(doc.error_at(&rat, format!("{net} overlaps {other}, claimed by failover_groups[{owner}]; valid: each prefix steered by one group")));
                    }
                    claimed.push((net, i));
                    routes.push(net);
                }
                Err(_) => errors.push(doc.error_at(
                    &rat,
                    format!("{r:?} is not a prefix; valid: e.g. 198.18.100.0/24 or 2001:db8::/48"),
                )),
            }
        }
        if routes.is_empty() && g.routes.is_empty() {
            errors.push(doc.error_at(
                &at("routes"),
                "the list is empty; valid: one or more prefixes",
            ));
        }
        let mut group_paths = Vec::new();
        for (j, p) in g.paths.iter().enumerate() {
            // Checked against every declared path, so a path with its own
            // error is not also reported as unknown here.
            if !declared.iter().any(|d| d.name == *p) {
                let known: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
                errors.push(doc.error_at(
                    &format!("{}[{j}]", at("paths")),
                    format!(
                        "unknown path {p:?}; valid: one of {}",
                        if known.is_empty() {
                            "(no paths defined)".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            } else if group_paths.iter().any(|q: &PathName| q.as_str() == p) {
                errors.push(doc.error_at(
                    &format!("{}[{j}]", at("paths")),
                    format!("path {p:?} is listed twice"),
                ));
            } else {
                group_paths.push(PathName::new(p));
            }
        }
        if g.paths.is_empty() {
            errors.push(doc.error_at(
                &at("paths"),
                "the list is empty; valid: paths in order of preference",
            ));
        }
        let mut checks = Vec::new();
        for (j, c) in g.checks.iter().enumerate() {
            let cat = format!("{}[{j}]", at("checks"));
            match targets.iter().find(|t| t.key.as_str() == c) {
                None => errors.push(doc.error_at(&cat, format!("unknown target {c:?}; valid: service/name of a target in the probe catalogs"))),
                Some(t) => {
                    if let Some(owner) = check_owner.insert(c.clone(), i) {
                        errors.push(doc.error_at(&cat, format!("{c:?} is already a check of failover_groups[{owner}]; valid: a check belongs to one group")));
                    }
                    if matches!(t.probe, ProbeSpec::Identity(_)) {
                        errors.push(doc.error_at(&cat, format!("{c:?} is an identity probe: a mix-up of documents is the application's, never a path's, and its flow must not run once per path; valid: an http, tcp, dns or icmp target")));
                    }
                    if matches!(t.probe, ProbeSpec::Dns(_)) && group_paths.iter().any(|p| paths.iter().any(|s| s.name == *p && s.source.is_none())) {
                        errors.push(doc.error_at(&cat, format!("{c:?} is a DNS check, which can only be steered by source address; valid: give every path of the group a `source`")));
                    }
                    checks.push(t.key.clone());
                }
            }
        }
        let detection = g
            .detection
            .and_then(|d| push(errors, values::health(doc, &at("detection"), d)));
        let min_dwell = duration_or(
            doc,
            &at("min_dwell"),
            g.min_dwell.as_deref(),
            Duration::from_secs(30),
            values::limits::PERIOD,
            errors,
        );
        let hold_down = duration_or(
            doc,
            &at("hold_down"),
            g.hold_down.as_deref(),
            Duration::from_secs(10),
            values::limits::PERIOD,
            errors,
        );
        let isolation = duration_or(
            doc,
            &at("isolation_window"),
            g.isolation_window.as_deref(),
            Duration::from_secs(2),
            values::limits::PERIOD,
            errors,
        );
        let failback = match &g.failback {
            None => Failback::Auto { after_ms: 60_000 },
            Some(f) => match f.mode.as_str() {
                "auto" => Failback::Auto {
                    after_ms: ms(duration_or(
                        doc,
                        &at("failback.after"),
                        f.after.as_deref(),
                        Duration::from_secs(60),
                        values::limits::PERIOD,
                        errors,
                    )),
                },
                "manual" => Failback::Manual,
                other => {
                    errors.push(doc.error_at(
                        &at("failback.mode"),
                        format!("{other:?} is not a failback mode; valid: auto, manual"),
                    ));
                    Failback::Manual
                }
            },
        };
        let dampening = g
            .failback
            .as_ref()
            .and_then(|f| f.dampening.as_ref())
            .map_or_else(Default::default, |d| dampening(doc, &at, d, errors));
        let flap_guard = match &g.flap_guard {
            None => FlapGuard {
                max_switches: 4,
                window_ms: 600_000,
            },
            Some(f) => {
                let max_switches = push(
                    errors,
                    values::in_range(
                        doc,
                        &at("flap_guard.max_switches"),
                        f.max_switches,
                        1..=MAX_SWITCHES,
                        "switches",
                    ),
                );
                FlapGuard {
                    max_switches: max_switches.unwrap_or(1),
                    window_ms: ms(duration_or(
                        doc,
                        &at("flap_guard.window"),
                        Some(&f.window),
                        Duration::from_secs(600),
                        values::limits::PERIOD,
                        errors,
                    )),
                }
            }
        };
        let action =
            match g.action.as_deref().unwrap_or("route") {
                "route" => Action::Route,
                "observe" => Action::Observe,
                "exec" => match &g.exec {
                    Some(e) if !e.command.is_empty() => Action::Exec {
                        command: e.command.clone(),
                        timeout: duration_or(
                            doc,
                            &at("exec.timeout"),
                            e.timeout.as_deref(),
                            Duration::from_secs(10),
                            values::limits::TIMEOUT,
                            errors,
                        ),
                    },
                    _ => {
                        errors.push(doc.error_at_key(
                            &at("action"),
                            "action exec needs `exec: {command: [program, args...]}`",
                        ));
                        Action::Observe
                    }
                },
                "webhook" => match &g.webhook {
                    Some(w) => match url::Url::parse(&w.url)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https"))
                    {
                        Some(url) => Action::Webhook {
                            url,
                            timeout: duration_or(
                                doc,
                                &at("webhook.timeout"),
                                w.timeout.as_deref(),
                                Duration::from_secs(10),
                                values::limits::TIMEOUT,
                                errors,
                            ),
                        },
                        None => {
                            errors.push(doc.error_at(
                                &at("webhook.url"),
                                format!("{:?} is not an http(s) URL", w.url),
                            ));
                            Action::Observe
                        }
                    },
                    None => {
                        errors.push(doc.error_at_key(
                            &at("action"),
                            "action webhook needs `webhook: {url: ...}`",
                        ));
                        Action::Observe
                    }
                },
                other => {
                    errors.push(doc.error_at(
                        &at("action"),
                        format!("{other:?} is not an action; valid: route, exec, webhook, observe"),
                    ));
                    Action::Observe
                }
            };
        if errors.len() > before {
            continue;
        }
        let initial_wait_ms = first_verdict_ms(&group_paths, &checks, detection, paths, targets);
        out.push(GroupSpec {
            core: GroupConfig {
                name: GroupName::new(&g.name),
                paths: group_paths,
                checks,
                min_dwell_ms: ms(min_dwell),
                hold_down_ms: ms(hold_down),
                failback,
                flap_guard,
                isolation_window_ms: ms(isolation),
                retry_initial_ms: 200,
                retry_max_ms: 10_000,
                initial_wait_ms,
                dampening,
            },
            routes,
            action,
            detection,
        });
    }
    out
}

/// Bounds of `failback.dampening` (documented in docs/failover.md).
pub const PENALTY: std::ops::RangeInclusive<u32> = 0..=10_000;
/// Bounds of the reuse threshold and the maximum penalty.
pub const PENALTY_LIMIT: std::ops::RangeInclusive<u32> = 1..=100_000;
/// Longest dampening half-life.
pub const HALF_LIFE: Duration = Duration::from_secs(3600);

/// Reads `failback.dampening`; defaults for what is not given.
fn dampening(
    doc: &Document,
    at: &dyn Fn(&str) -> String,
    d: &super::raw::RawDampening,
    errors: &mut Vec<ConfigError>,
) -> DampeningPolicy {
    let def = DampeningPolicy::default();
    let mut num = |key: &str, v: Option<u32>, default: u32, range| {
        v.and_then(|v| push(errors, values::in_range(doc, &at(key), v, range, "points")))
            .unwrap_or(default)
    };
    let penalty = num(
        "failback.dampening.penalty",
        d.penalty,
        def.penalty,
        PENALTY,
    );
    let reuse = num(
        "failback.dampening.reuse",
        d.reuse,
        def.reuse,
        PENALTY_LIMIT,
    );
    let max_penalty = num(
        "failback.dampening.max_penalty",
        d.max_penalty,
        def.max_penalty,
        PENALTY_LIMIT,
    );
    if max_penalty < reuse || max_penalty < penalty {
        errors.push(doc.error_at(
            &at("failback.dampening.max_penalty"),
            format!("{max_penalty} is below reuse ({reuse}) or penalty ({penalty}); valid: at least both"),
        ));
    }
    let half_life = duration_or(
        doc,
        &at("failback.dampening.half_life"),
        d.half_life.as_deref(),
        Duration::from_millis(def.half_life_ms),
        HALF_LIFE,
        errors,
    );
    DampeningPolicy {
        penalty,
        half_life_ms: ms(half_life),
        reuse,
        max_penalty,
    }
}

/// About how long the group's probes need for a first verdict on every
/// path: each subject's interval times the results its health needs, plus
/// one interval of slack; the longest wins.
fn first_verdict_ms(
    group_paths: &[PathName],
    checks: &[TargetKey],
    detection: Option<HealthPolicy>,
    paths: &[PathSpec],
    targets: &[Arc<Target>],
) -> u64 {
    let need = |interval: Duration, h: HealthPolicy| {
        let rounds = u32::from(h.rise.max(h.fall)) + 1;
        ms(interval.saturating_mul(rounds))
    };
    let routers = paths
        .iter()
        .filter(|p| group_paths.contains(&p.name))
        .map(|p| need(p.router.interval, p.router_health));
    let checks = targets
        .iter()
        .filter(|t| checks.contains(&t.key))
        .map(|t| need(t.interval, detection.unwrap_or(t.health)));
    routers.chain(checks).max().unwrap_or(0)
}
