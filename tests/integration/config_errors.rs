//! Configuration: the shipped examples load, and each class of mistake gets
//! its documented error at the right file, line and column.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::plan::ConfigDir;

#[test]
fn shipped_examples_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for config in ["config/gwanje.yaml", "config/local.yaml"] {
        let plan =
            gwanje::config::load(&root.join(config)).unwrap_or_else(|e| panic!("{config}:\n{e}"));
        assert!(!plan.targets.is_empty(), "{config} has targets");
    }
    let plan = gwanje::config::load(&root.join("config/gwanje.yaml")).unwrap();
    let services: Vec<&str> = plan.services.iter().map(|s| &*s.name).collect();
    for want in ["portal", "admin-network", "mobile-id", "routers"] {
        assert!(services.contains(&want), "{want} in {services:?}");
    }
    for kind in ["http", "tcp", "dns", "icmp"] {
        assert!(
            plan.targets.iter().any(|t| t.probe.kind() == kind),
            "examples show a {kind} probe"
        );
    }
}

#[test]
fn the_commented_identity_example_loads_when_enabled() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let portal = std::fs::read_to_string(root.join("probes/portal.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("canaries");
    std::fs::create_dir(&secrets).unwrap();
    let here =
        |text: &str| text.replace("/etc/gwanje/canaries/", &format!("{}/", secrets.display()));
    // Uncomment the block between the markers, as the comment says.
    let mut inside = false;
    let mut enabled = String::new();
    for line in portal.lines() {
        if line.contains("END identity example") {
            inside = false;
        }
        let line = if inside {
            line.replacen("  # ", "  ", 1)
        } else {
            line.to_string()
        };
        if line.contains("BEGIN identity example") {
            inside = true;
        }
        enabled.push_str(&line);
        enabled.push('\n');
    }
    assert!(
        enabled.contains("\n  - name: certificate-identity\n"),
        "{enabled}"
    );
    let example =
        std::fs::read_to_string(root.join("config/canaries/portal.example.yaml")).unwrap();
    // The environment is shared by every test thread: the variable becomes a file.
    let example = example.replace(
        "{env: GWANJE_CANARY_02_PASSWORD}",
        "{file: /etc/gwanje/canaries/canary-02.password}",
    );
    std::fs::write(secrets.join("portal.yaml"), here(&example)).unwrap();
    let accounts = gwanje::testbed::identity_portal::synthetic_accounts(2);
    for (i, a) in accounts.iter().enumerate() {
        let id = format!("canary-0{}", i + 1);
        gwanje::config::write_secret_file(&secrets.join(format!("{id}.rrn")), &a.resident_number)
            .unwrap();
        gwanje::config::write_secret_file(&secrets.join(format!("{id}.username")), &a.username)
            .unwrap();
        gwanje::config::write_secret_file(&secrets.join(format!("{id}.password")), &a.password)
            .unwrap();
    }
    let cfg = ConfigDir::new("", &[("portal", &here(&enabled))]);
    let plan = cfg.load();
    let t = plan
        .targets
        .iter()
        .find(|t| &*t.name == "certificate-identity")
        .expect("the identity target");
    let gwanje::plan::ProbeSpec::Identity(spec) = &t.probe else {
        panic!("an identity probe");
    };
    assert_eq!(
        (spec.canaries.len(), spec.steps.len(), spec.concurrency),
        (2, 5, 8)
    );
    // Nothing secret in the plan's debug form.
    let debug = format!("{spec:?}");
    for a in &accounts {
        assert!(!debug.contains(&a.resident_number) && !debug.contains(&a.password));
    }
}

/// One invalid catalog and the error it must produce.
struct Case {
    name: &'static str,
    catalog: &'static str,
    line: usize,
    column: usize,
    key: &'static str,
    says: &'static str,
}

const HEAD: &str = "service: svc\ntargets:\n";

#[test]
fn each_class_of_invalid_catalog_is_reported_where_it_is() {
    let cases = [
        Case {
            name: "unknown key",
            catalog: "  - name: a\n    http: {url: 'http://127.0.0.1/', tiemout: 1}\n",
            line: 4,
            column: 38,
            key: "targets[0].http.tiemout",
            says: "unknown key `tiemout`",
        },
        Case {
            name: "unknown probe kind",
            catalog: "  - name: a\n    grpc: {url: x}\n",
            line: 4,
            column: 5,
            key: "targets[0].grpc",
            says: "valid keys are",
        },
        Case {
            name: "bad duration",
            catalog: "  - name: a\n    interval: soon\n    icmp: {host: 127.0.0.1}\n",
            line: 4,
            column: 15,
            key: "targets[0].interval",
            says: "like 250ms, 5s or 1m",
        },
        Case {
            name: "timeout not below interval",
            catalog: "  - name: a\n    interval: 1s\n    timeout: 1s\n    icmp: {host: 127.0.0.1}\n",
            line: 5,
            column: 14,
            key: "targets[0].timeout",
            says: "not below interval",
        },
        Case {
            name: "duplicate target",
            catalog: "  - name: a\n    icmp: {host: 127.0.0.1}\n  - name: a\n    icmp: {host: 127.0.0.2}\n",
            line: 5,
            column: 11,
            key: "targets[1].name",
            says: "duplicate target name",
        },
        Case {
            name: "bad url",
            catalog: "  - name: a\n    http:\n      url: ftp://x.example/\n",
            line: 5,
            column: 12,
            key: "targets[0].http.url",
            says: "http:// or https://",
        },
        Case {
            name: "bad regex",
            catalog: "  - name: a\n    http:\n      url: http://127.0.0.1/\n      body_must_match: ['ok', '(unclosed']\n",
            line: 6,
            column: 31,
            key: "targets[0].http.body_must_match[1]",
            says: "not a valid regular expression",
        },
        Case {
            name: "two probe kinds",
            catalog: "  - name: a\n    icmp: {host: 127.0.0.1}\n    tcp: {address: '127.0.0.1:22'}\n",
            line: 3,
            column: 5,
            key: "targets[0]",
            says: "exactly one of http, tcp, dns, icmp",
        },
        Case {
            name: "wrong type",
            catalog: "  - name: a\n    icmp: {host: 127.0.0.1, packets: many}\n",
            line: 4,
            column: 38,
            key: "targets[0].icmp.packets",
            says: "invalid type",
        },
        Case {
            name: "bad record type",
            catalog: "  - name: a\n    dns: {server: 127.0.0.1, name: a.test., type: AXFRX}\n",
            line: 4,
            column: 51,
            key: "targets[0].dns.type",
            says: "not a record type",
        },
        Case {
            name: "bad health window",
            catalog: "  - name: a\n    health: {fall: 4, window: 3, rise: 1}\n    icmp: {host: 127.0.0.1}\n",
            line: 4,
            column: 31,
            key: "targets[0].health.window",
            says: "from fall (4)",
        },
        Case {
            name: "bad tcp address",
            catalog: "  - name: a\n    tcp: {address: 'no-port'}\n",
            line: 4,
            column: 20,
            key: "targets[0].tcp.address",
            says: "host:port",
        },
        Case {
            name: "missing key",
            catalog: "  - name: a\n    http: {method: GET}\n",
            line: 4,
            column: 5,
            key: "targets[0].http",
            says: "missing required key `url`",
        },
        Case {
            name: "bad yaml",
            catalog: "  - name: a\n    http: {url: [\n",
            line: 5,
            column: 1,
            key: "",
            says: "not valid YAML",
        },
        Case {
            name: "max_loss out of range",
            catalog: "  - name: a\n    icmp: {host: 127.0.0.1, max_loss: 1.5}\n",
            line: 4,
            column: 39,
            key: "targets[0].icmp.max_loss",
            says: "up to (not including) 1.0",
        },
    ];
    for case in &cases {
        let dir = ConfigDir::new("", &[("svc", &format!("{HEAD}{}", case.catalog))]);
        let errors = gwanje::config::load(&dir.config).expect_err(case.name).0;
        assert_eq!(errors.len(), 1, "{}: {errors:?}", case.name);
        let e = &errors[0];
        assert!(
            e.file.ends_with("probes/svc.yaml"),
            "{}: file {}",
            case.name,
            e.file.display()
        );
        assert_eq!(
            (e.line, e.column),
            (Some(case.line), Some(case.column)),
            "{}: {e}",
            case.name
        );
        assert_eq!(e.key, case.key, "{}: {e}", case.name);
        assert!(e.message.contains(case.says), "{}: {e}", case.name);
    }
}

#[test]
fn daemon_config_errors_name_the_key() {
    let dir = ConfigDir::new(
        "listen: localhost\nlogging: {format: xml}\ndefaults: {interval: 1s, timeout: 2s}\nscheduler: {max_concurrency: 0}\n",
        &[(
            "svc",
            "service: svc\ntargets:\n  - name: a\n    icmp: {host: 127.0.0.1}\n",
        )],
    );
    let errors = gwanje::config::load(&dir.config).unwrap_err().0;
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "listen",
            "logging.format",
            "scheduler.max_concurrency",
            "defaults.timeout"
        ],
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e.file.ends_with("gwanje.yaml") && e.line.is_some())
    );
}

#[test]
fn duplicate_services_and_empty_globs() {
    let dir = ConfigDir::new(
        "",
        &[
            (
                "a",
                "service: same\ntargets:\n  - name: x\n    icmp: {host: 127.0.0.1}\n",
            ),
            (
                "b",
                "service: same\ntargets:\n  - name: y\n    icmp: {host: 127.0.0.1}\n",
            ),
        ],
    );
    let errors = gwanje::config::load(&dir.config).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("already defined in"),
        "{}",
        errors[0]
    );

    let dir = ConfigDir::new("", &[]);
    std::fs::write(&dir.config, "probe_files: ['nothing/*.yaml']\n").unwrap();
    let errors = gwanje::config::load(&dir.config).unwrap_err().0;
    assert!(
        errors[0].message.contains("matches no file"),
        "{}",
        errors[0]
    );
    assert_eq!((errors[0].line, errors[0].column), (Some(1), Some(15)));
}

#[test]
fn secrets_in_headers_come_from_files_and_are_never_echoed() {
    let dir = ConfigDir::new("", &[]);
    gwanje::config::write_secret_file(&dir.dir.path().join("probes/token"), "Bearer very-secret\n")
        .unwrap();
    dir.write_catalog("svc", "service: svc\ntargets:\n  - name: a\n    http:\n      url: http://127.0.0.1/\n      headers:\n        Authorization: {file: token}\n");
    let plan = dir.load();
    let gwanje::plan::ProbeSpec::Http(h) = &plan.targets[0].probe else {
        panic!("http")
    };
    let auth = &h.headers[0];
    assert_eq!(
        (auth.name.as_str(), auth.value.as_str(), auth.sensitive),
        ("Authorization", "Bearer very-secret", true)
    );
    assert!(!format!("{auth:?}").contains("very-secret"));

    dir.write_catalog("svc", "service: svc\ntargets:\n  - name: a\n    http:\n      url: http://127.0.0.1/\n      headers:\n        Authorization: {env: GWANJE_TEST_UNSET_VARIABLE}\n");
    let errors = gwanje::config::load(&dir.config).unwrap_err();
    assert!(
        errors
            .to_string()
            .contains("GWANJE_TEST_UNSET_VARIABLE is not set"),
        "{errors}"
    );
}

#[test]
fn secret_files_matched_by_a_catalog_glob_are_never_quoted() {
    let dir = ConfigDir::new(
        "admin: {token_file: probes/token.yaml}\n",
        &[("svc", FLEET)],
    );
    let probes = dir.dir.path().join("probes");
    gwanje::config::write_secret_file(&probes.join("token.yaml"), "tok-8d1f-SECRET\n").unwrap();
    std::fs::write(probes.join("rrn.yaml"), "900101-1234567\n").unwrap();
    std::fs::write(probes.join("num.yaml"), "9001011234567\n").unwrap();
    std::fs::write(probes.join("list.yaml"), "[hunter2, x]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .arg("check-config")
        .arg(&dir.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    for secret in [
        "tok-8d1f-SECRET",
        "900101-1234567",
        "9001011234567",
        "hunter2",
    ] {
        assert!(!err.contains(secret), "{secret} echoed:\n{err}");
    }
    assert!(
        err.contains("token.yaml matches probe_files but is the secret file of admin.token_file"),
        "{err}"
    );
    // The others are still named, with what is wrong but not the value.
    assert!(err.contains("rrn.yaml: invalid type: string;"), "{err}");
}

#[test]
fn secret_files_others_may_read_are_refused_with_their_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = ConfigDir::new("admin: {token_file: token}\n", &[("svc", FLEET)]);
    let token = dir.dir.path().join("token");
    std::fs::write(&token, "t0ken-3c1a\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = gwanje::config::load(&dir.config).unwrap_err().to_string();
    assert!(
        e.contains("admin.token_file") && e.contains("mode 0644"),
        "{e}"
    );
    assert!(!e.contains("t0ken-3c1a"), "{e}");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir.load();
    // A header secret that anyone may rewrite.
    let secret = dir.dir.path().join("probes/bearer");
    std::fs::write(&secret, "Bearer x\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o666)).unwrap();
    dir.write_catalog("svc", "service: svc\ntargets:\n  - name: a\n    http:\n      url: http://127.0.0.1/\n      headers:\n        Authorization: {file: bearer}\n");
    let e = gwanje::config::load(&dir.config).unwrap_err().to_string();
    assert!(
        e.contains("Authorization") && e.contains("mode 0666"),
        "{e}"
    );
}

#[test]
fn check_config_lists_every_error_and_exits_64() {
    let dir = ConfigDir::new(
        "defaults: {interval: 2x}\n",
        &[(
            "svc",
            "service: svc\ntargets:\n  - name: a\n    http: {url: 'nope'}\n  - name: b\n    icmp: {host: 127.0.0.1, packets: 0}\n",
        )],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .arg("check-config")
        .arg(&dir.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let located: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(".yaml:") && l.matches(':').count() >= 3)
        .collect();
    assert_eq!(located.len(), 3, "{stderr}");
    assert!(
        stderr.contains("gwanje.yaml:2:22: defaults.interval"),
        "{stderr}"
    );
    assert!(
        stderr.contains("svc.yaml:4:17: targets[0].http.url"),
        "{stderr}"
    );
    assert!(
        stderr.contains("svc.yaml:6:38: targets[1].icmp.packets"),
        "{stderr}"
    );
    assert!(stderr.contains("3 error(s)"), "{stderr}");

    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gwanje.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("4 services") && stdout.contains("mobile-id"),
        "{stdout}"
    );
}

const FLEET: &str = "service: app\ntargets:\n  - name: web\n    http: {url: 'http://198.18.100.10/'}\n  - name: ping\n    icmp: {host: 198.18.100.10}\n";

/// Line and 1-based column where `token` first appears in `text`.
fn position_of(text: &str, token: &str) -> (usize, usize) {
    let at = text
        .find(token)
        .unwrap_or_else(|| panic!("{token:?} not in the config"));
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line + 1, column) // ConfigDir puts `probe_files` on the first line
}

/// Position of the first character after `prefix` in `text`.
fn position_after(text: &str, prefix: &str) -> (usize, usize) {
    let (line, column) = position_of(text, prefix);
    (line, column + prefix.len())
}

#[test]
fn paths_and_groups_are_validated_with_locations() {
    let paths = "paths:\n  - {name: primary, gateway: 198.18.1.1, fwmark: 101, table: 101}\n  - {name: standby, gateway: 198.18.2.1, fwmark: 101, table: 102}\n  - {name: third, gateway: 198.18.3.1, fwmark: 103, table: 102}\n";
    let groups = "failover_groups:\n  - name: services\n    routes: [198.18.100.0/24]\n    paths: [primary, standbye]\n    checks: [app/web, app/nope]\n  - name: other\n    routes: [198.18.100.128/25]\n    paths: [primary]\n";
    let settings = format!("{paths}{groups}");
    let dir = ConfigDir::new(&settings, &[("app", FLEET)]);
    let errors = gwanje::config::load(&dir.config).unwrap_err().0;
    let expect: Vec<(&str, (usize, usize), &str)> = vec![
        (
            "paths[1].fwmark",
            position_of(&settings, "101, table: 102"),
            "fwmark 101 is already used by paths[0]",
        ),
        (
            "paths[2].table",
            position_after(&settings, "fwmark: 103, table: "),
            "table 102 is already used by paths[1]",
        ),
        (
            "failover_groups[0].paths[1]",
            position_of(&settings, "standbye"),
            "unknown path \"standbye\"; valid: one of primary, standby, third",
        ),
        (
            "failover_groups[0].checks[1]",
            position_of(&settings, "app/nope"),
            "unknown target \"app/nope\"",
        ),
        (
            "failover_groups[1].routes[0]",
            position_of(&settings, "198.18.100.128/25"),
            "overlaps 198.18.100.0/24, claimed by failover_groups[0]",
        ),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for (e, (key, (line, column), says)) in errors.iter().zip(&expect) {
        assert_eq!(&e.key, key, "{e}");
        assert_eq!((e.line, e.column), (Some(*line), Some(*column)), "{e}");
        assert!(e.message.contains(says), "{e}");
        assert!(e.file.ends_with("gwanje.yaml"), "{e}");
    }
}

#[test]
fn valid_groups_expand_into_jobs_per_path() {
    let settings = "paths:\n  - {name: primary, gateway: 198.18.1.1, fwmark: 101, table: 101, interface: lo}\n  - {name: standby, gateway: 198.18.2.1, fwmark: 102, table: 102}\nfailover_groups:\n  - {name: services, routes: [198.18.100.0/24], paths: [primary, standby], checks: [app/web], detection: {fall: 3, window: 4, rise: 2}}\n";
    let dir = ConfigDir::new(settings, &[("app", FLEET)]);
    let plan = dir.load();
    let subjects: Vec<String> = plan.jobs.iter().map(|j| j.subject.to_string()).collect();
    assert_eq!(
        subjects,
        [
            "app/web via primary",
            "app/web via standby",
            "app/ping",
            "router of primary",
            "router of standby"
        ],
        "a check is probed through every path of its group (not directly), plus each router"
    );
    let sources: Vec<(Option<u32>, Option<&str>)> = plan
        .jobs
        .iter()
        .map(|j| match &j.target.probe {
            gwanje::plan::ProbeSpec::Http(h) => (h.source.mark, h.source.interface.as_deref()),
            gwanje::plan::ProbeSpec::Icmp(i) => (i.source.mark, i.source.interface.as_deref()),
            _ => (None, None),
        })
        .collect();
    // A path's interface is honoured beside its mark, never silently dropped.
    assert_eq!(
        sources,
        [
            (Some(101), Some("lo")),
            (Some(102), None),
            (None, None),
            (Some(101), Some("lo")),
            (Some(102), None)
        ]
    );
    assert_eq!(
        plan.jobs[0].health,
        gwanje::core::HealthPolicy {
            fall: 3,
            window: 4,
            rise: 2
        },
        "detection applies to checks"
    );
}

/// Loads a config of `settings` plus one catalog target `target`, and
/// returns the single error it must produce.
fn only_error(settings: &str, target: &str) -> gwanje::config::ConfigError {
    let dir = ConfigDir::new(settings, &[("svc", &common::plan::one_target(target))]);
    let mut errors = gwanje::config::load(&dir.config)
        .expect_err("should be refused")
        .0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

#[test]
fn every_number_has_a_bound_that_the_error_names() {
    let icmp = "icmp: {host: 127.0.0.1}";
    // (settings, target, key, what the message must say)
    let cases = [
        (
            "",
            "http: {url: 'http://127.0.0.1/', max_body_bytes: 18446744073709551615}",
            "targets[0].http.max_body_bytes",
            "1 to 67108864 bytes",
        ),
        (
            "",
            "http: {url: 'http://127.0.0.1/', max_redirects: 50}",
            "targets[0].http.max_redirects",
            "0 to 20 redirects",
        ),
        (
            "",
            "interval: 500000000y\nicmp: {host: 127.0.0.1}",
            "targets[0].interval",
            "1ms to 1d",
        ),
        (
            "",
            "timeout: 1h\ninterval: 2h\nicmp: {host: 127.0.0.1}",
            "targets[0].timeout",
            "1ms to 5m",
        ),
        (
            "",
            "icmp: {host: 127.0.0.1, packets: 1000}",
            "targets[0].icmp.packets",
            "1 to 100 echoes",
        ),
        (
            "",
            "icmp: {host: 127.0.0.1, payload_size: 70000}",
            "targets[0].icmp.payload_size",
            "0 to 65000 bytes",
        ),
        (
            "",
            "dns: {server: 127.0.0.1, name: a., min_answers: 5000}",
            "targets[0].dns.min_answers",
            "0 to 1000 answers",
        ),
        (
            "scheduler: {max_concurrency: 18446744073709551615}\n",
            icmp,
            "scheduler.max_concurrency",
            "1 to 65536",
        ),
        (
            "admin: {max_connections: 100000}\n",
            icmp,
            "admin.max_connections",
            "1 to 4096",
        ),
        (
            "alerting: {resend_interval: 30d}\n",
            icmp,
            "alerting.resend_interval",
            "1ms to 7d",
        ),
        (
            "alerting: {certificate_warning: 2y}\n",
            icmp,
            "alerting.certificate_warning",
            "1ms to 365d",
        ),
        (
            "paths: [{name: a, gateway: 198.18.0.1, interface: lo, router_check: {packets: 500}}]\n",
            icmp,
            "paths[0].router_check.packets",
            "1 to 100 echoes",
        ),
        (
            "paths: [{name: a, gateway: 198.18.0.1, interface: lo, router_check: {interval: 2d, timeout: 1s}}]\n",
            icmp,
            "paths[0].router_check.interval",
            "1ms to 1d",
        ),
    ];
    for (settings, target, key, says) in cases {
        let e = only_error(settings, target);
        assert_eq!(e.key, key, "{e}");
        assert!(e.line.is_some(), "located: {e}");
        assert!(e.message.contains(says), "{key}: {e}");
    }
}

#[test]
fn an_error_is_said_once_in_yaml_words_and_one_bad_section_hides_no_other() {
    let dir = ConfigDir::new(
        "defaults:\n  intreval: 5s\nscheduler:\n  max_concurrency: lots\nlogging: [text]\nadmin: {max_connections: -1}\n",
        &[],
    );
    let errors = gwanje::config::load(&dir.config).unwrap_err().0;
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "defaults.intreval",
            "scheduler.max_concurrency",
            "logging",
            "admin.max_connections"
        ],
        "{errors:#?}"
    );
    for e in &errors {
        let text = e.to_string();
        assert_eq!(text.matches(&e.key).count(), 1, "key once: {text}");
        assert!(!text.contains(" at line "), "position once: {text}");
        for rust in ["u8", "u16", "u64", "usize", "struct", "Raw"] {
            assert!(
                !text
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| w == rust || w.starts_with("Raw")),
                "no Rust type name ({rust}) in: {text}"
            );
        }
    }
    assert_eq!(
        errors[0].to_string(),
        format!(
            "{}:3:3: defaults.intreval: unknown key `intreval`; valid keys are `interval`, `timeout`, `health`",
            dir.config.display()
        )
    );
}

#[test]
fn oversized_and_deeply_nested_files_are_refused_quickly() {
    let dir = ConfigDir::new("", &[]);
    let n = 60_000;
    dir.write_catalog(
        "deep",
        &format!("service: {}{}\n", "[".repeat(n), "]".repeat(n)),
    );
    let e = gwanje::config::load(&dir.config).unwrap_err().to_string();
    assert!(e.contains("nested deeper than 64 levels"), "{e}");
    dir.write_catalog("deep", &format!("service: s\n#{}\n", "x".repeat(5 << 20)));
    let e = gwanje::config::load(&dir.config).unwrap_err().to_string();
    assert!(e.contains("larger than 4194304 bytes"), "{e}");
}

/// Runs `gwanje check-config` and reaps it with wait4, for its own peak
/// memory (kB) beside its exit code and stderr.
/// Runs `gwanje check-config` under GNU time, which forks it from its own
/// small process: a child of this test process would inherit this
/// process's peak RSS (Linux carries it across fork and exec), and tests
/// running beside this one make that large. Returns (exit code, stderr
/// without time's line, the check's peak RSS in kB).
fn check_config_with_peak(config: &std::path::Path) -> (Option<i32>, String, i64) {
    let time = std::path::Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "GNU time (Debian package `time`) measures the peak; scripts/test.sh installs it"
    );
    let out = Command::new(time)
        .args(["-f", "gwanje-peak-kb %M"])
        .arg(env!("CARGO_BIN_EXE_gwanje"))
        .arg("check-config")
        .arg(config)
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let peak = stderr
        .lines()
        .find_map(|l| l.strip_prefix("gwanje-peak-kb "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak from time: {stderr}"));
    let err: String = stderr
        .lines()
        .filter(|l| !l.starts_with("gwanje-peak-kb ") && !l.starts_with("Command exited"))
        .map(|l| format!("{l}\n"))
        .collect();
    (out.status.code(), err, peak)
}

#[test]
fn an_alias_bomb_is_refused_with_its_location_before_it_expands() {
    // 1 MB of catalog whose aliases would expand to about 50 million nodes.
    let row = format!("[{}]", vec!["*a"; 500].join(","));
    let mut bomb = format!(
        "service: s\nx: &a [{}]\ny:\n",
        vec!["'xxxxxxxx'"; 100].join(",")
    );
    while bomb.len() < 1 << 20 {
        bomb.push_str(&format!("  - {row}\n"));
    }
    bomb.push_str("targets: []\n");
    let dir = ConfigDir::new("", &[("svc", &bomb)]);
    let started = std::time::Instant::now();
    let (code, err, peak_kb) = check_config_with_peak(&dir.config);
    let took = started.elapsed();
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("aliases expand"), "{err}");
    assert!(
        err.contains("svc.yaml:7:"),
        "located at the alias that crosses the bound: {err}"
    );
    assert!(peak_kb < 50 * 1024, "peak {peak_kb} kB");
    // Release builds refuse it in milliseconds (README); debug is slower.
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    // The same in the daemon config.
    let dir = ConfigDir::new(
        &format!(
            "x: &a [{}]\nlisten: [{}]\n",
            vec!["1"; 1000].join(","),
            vec!["*a"; 1000].join(",")
        ),
        &[],
    );
    let (code, err, _) = check_config_with_peak(&dir.config);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("aliases expand") && err.contains("gwanje.yaml:3:"),
        "{err}"
    );
}

#[test]
fn a_bad_command_line_exits_64_and_help_exits_0() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gwanje"))
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(run(&["--no-such-flag"]), Some(64));
    assert_eq!(run(&["frobnicate"]), Some(64));
    assert_eq!(run(&["--help"]), Some(0));
    // No default config: the production example is never picked up by accident.
    assert_eq!(run(&["run"]), Some(64));
    assert_eq!(run(&["--version"]), Some(0));
}

#[test]
fn vantage_and_peer_errors_name_the_key_and_what_is_valid() {
    let paths = "paths:\n  - {name: primary, gateway: 198.18.1.1, interface: lo}\n";
    let groups = "failover_groups:\n  - {name: g, routes: [198.18.100.0/24], paths: [primary], checks: [app/web], action: observe}\n";
    let vantage = "vantage: {name: 'a b', controls: [router:nope, app/web, app/gone], min_vantages: 99, max_skew: 50ms, isolation_share: 0.2, labels: {Bad-Key: x}}\n";
    let peers = "peers:\n  - {name: a2, url: 'ftp://198.18.2.1', token_file: missing.token}\n  - {name: a2, url: 'http://198.18.3.1:9469', token_file: missing.token}\n";
    let settings = format!("{paths}{groups}{vantage}{peers}");
    let dir = ConfigDir::new(&settings, &[("app", FLEET)]);
    let errors = gwanje::config::load(&dir.config).unwrap_err().0;
    let expect: Vec<(&str, &str)> = vec![
        ("vantage.name", "not a valid vantage name"),
        ("vantage.labels.Bad-Key", "not a valid label name"),
        (
            "vantage.controls[0]",
            "no path named \"nope\"; valid: router:<path> of a configured path (primary)",
        ),
        ("vantage.controls[1]", "is a check of group g"),
        ("vantage.controls[2]", "names no target"),
        ("vantage.min_vantages", "valid: 1 to 64"),
        ("vantage.max_skew", "valid: 1s to 60s"),
        (
            "vantage.isolation_share",
            "valid: a fraction from 0.5 to 1.0",
        ),
        ("peers[0].url", "is not an http(s) URL"),
        ("peers[0].token_file", "cannot read"),
        ("peers[1].name", "listed twice"),
        ("peers[1].token_file", "cannot read"),
    ];
    assert_errors_at(&errors, &expect);
    // With peers, fewer than two controls, or more vantages required than
    // there are, can never decide: refused.
    let tok = "peers:\n  - {name: b, url: 'http://198.18.2.1:9469', token_file: peer.token}\n";
    let dir = ConfigDir::new(
        &format!("vantage: {{name: a, controls: [app/web], min_vantages: 3}}\n{tok}"),
        &[("app", FLEET)],
    );
    gwanje::config::write_secret_file(&dir.dir.path().join("peer.token"), "t").unwrap();
    let errors = gwanje::config::load(&dir.config).unwrap_err().0;
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["vantage.controls", "vantage.min_vantages"],
        "{errors:#?}"
    );
    assert!(errors[0].message.contains("at least 2 when peers are set"));
    assert!(
        errors[1]
            .message
            .contains("more than the 2 vantages configured")
    );
    // A peer named as this instance is refused too.
    let dir = ConfigDir::new(
        &format!("vantage: {{name: b, controls: [app/web, app/ping]}}\n{tok}"),
        &[("app", FLEET)],
    );
    gwanje::config::write_secret_file(&dir.dir.path().join("peer.token"), "t").unwrap();
    let errors = gwanje::config::load(&dir.config).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].key, "peers[0].name");
    assert!(
        errors[0]
            .message
            .contains("this instance's own vantage name")
    );
}

#[test]
fn cluster_errors_name_the_key_and_what_is_valid() {
    let cluster = "cluster:\n  name: 'two words'\n  replica: 'x/y'\n  lease_ttl: 1500ms\n  etcd:\n    endpoints: ['https://198.18.0.1:2379', 'http://198.18.0.2:2379', 'etcd-3']\n    cert_file: missing.pem\n";
    let dir = ConfigDir::new(cluster, &[("app", FLEET)]);
    let errors = gwanje::config::load(&dir.config).unwrap_err().0;
    let expect: Vec<(&str, &str)> = vec![
        ("cluster.name", "not a valid cluster name"),
        ("cluster.replica", "not a valid replica name"),
        ("cluster.etcd.endpoints[2]", "is not an etcd client URL"),
        ("cluster.etcd.endpoints", "all of one scheme"),
        ("cluster.etcd.cert_file", "is not a readable file"),
        ("cluster.etcd", "cert_file and key_file go together"),
        ("cluster.lease_ttl", "whole seconds from 2s to 60s"),
        ("cluster", "missing `fence_file`"),
    ];
    assert_errors_at(&errors, &expect);
    // An unknown key is named with the valid ones.
    let dir = ConfigDir::new(
        "cluster: {name: c, fence_file: f, etcd: {endpoints: ['http://127.0.0.1:2379']}, ttl: 3s}\n",
        &[("app", FLEET)],
    );
    let errors = gwanje::config::load(&dir.config).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("lease_ttl"), "{}", errors[0]);
    // A valid section loads, its replica named after the vantage.
    let dir = ConfigDir::new(
        "vantage: {name: edge-1}\ncluster: {name: c, fence_file: f, etcd: {endpoints: ['http://127.0.0.1:2379']}}\n",
        &[("app", FLEET)],
    );
    let plan = gwanje::config::load(&dir.config).expect("valid");
    let c = plan.settings.cluster.expect("a cluster");
    assert_eq!(c.replica, "edge-1");
    assert_eq!(c.lease_ttl, std::time::Duration::from_secs(3));
    assert_eq!(c.fingerprint.len(), 16);
}

/// Checks that `errors` are exactly `expect` (key, words it contains), in
/// order, each with a line in gwanje.yaml.
fn assert_errors_at(errors: &[gwanje::config::ConfigError], expect: &[(&str, &str)]) {
    let got: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.key.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(errors.len(), expect.len(), "{got:#?}");
    for (e, (key, says)) in errors.iter().zip(expect) {
        assert_eq!(&e.key, key, "{e}");
        assert!(e.message.contains(says), "{e}");
        assert!(e.line.is_some() && e.file.ends_with("gwanje.yaml"), "{e}");
    }
}
