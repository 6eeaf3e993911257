//! The shipped Prometheus and Alertmanager files pass their own tools:
//! promtool (config, rules, rule unit tests) and amtool.

use crate::common;

use std::path::Path;
use std::process::Command;

fn tool(args: &[&str]) -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = match Command::new(args[0])
        .args(&args[1..])
        .current_dir(root)
        .output()
    {
        Ok(out) => out,
        Err(_) => {
            assert!(!common::required(&format!(
                "{} (Debian packages prometheus, prometheus-alertmanager)",
                args[0]
            )));
            return None;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?}:\n{text}");
    Some(text)
}

#[test]
fn prometheus_config_and_rules_are_valid() {
    if let Some(out) = tool(&[
        "promtool",
        "check",
        "config",
        "deploy/prometheus/prometheus.yml",
    ]) {
        assert!(out.contains("SUCCESS"), "{out}");
    }
    for rules in [
        "deploy/prometheus/rules/gwanje.yml",
        "deploy/prometheus/rules/quorum.yml",
    ] {
        if let Some(out) = tool(&["promtool", "check", "rules", rules]) {
            assert!(out.contains("SUCCESS"), "{out}");
        }
    }
}

#[test]
fn prometheus_rule_unit_tests_pass() {
    for tests in [
        "deploy/prometheus/tests/gwanje_test.yml",
        "deploy/prometheus/tests/quorum_test.yml",
    ] {
        if let Some(out) = tool(&["promtool", "test", "rules", tests]) {
            assert!(out.contains("SUCCESS"), "{out}");
        }
    }
}

/// The rules' job selector is the one place to edit for a scrape job named
/// otherwise: renamed in the rules and their test inputs alike, the tests
/// pass; renamed in the inputs alone, they fail (the selector matters).
#[test]
fn the_rules_follow_a_renamed_scrape_job() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    let (rules, tests) = (read("rules/gwanje.yml"), read("tests/gwanje_test.yml"));
    let rename = |t: &str| t.replace("job=\"gwanje\"", "job=\"netops-gwanje\"");
    let run = |rules: &str, tests: &str| {
        let dir = tempfile::tempdir().unwrap();
        for (f, text) in [
            ("rules/gwanje.yml", rules),
            ("tests/gwanje_test.yml", tests),
        ] {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Command::new("promtool")
            .args(["test", "rules", "tests/gwanje_test.yml"])
            .current_dir(dir.path())
            .output()
            .ok()
            .map(|o| o.status.success())
    };
    // The inputs also name the job in expected labels, in YAML form.
    let inputs = rename(&tests).replace("job: gwanje\n", "job: netops-gwanje\n");
    let Some(renamed) = run(&rename(&rules), &inputs) else {
        assert!(!common::required("promtool (Debian package prometheus)"));
        return;
    };
    assert!(renamed, "rules and inputs renamed together pass");
    assert_eq!(
        run(&rules, &rename(&tests)),
        Some(false),
        "the shipped selector ignores another job"
    );
}

#[test]
fn alertmanager_example_is_valid() {
    if let Some(out) = tool(&[
        "amtool",
        "check-config",
        "deploy/alertmanager/alertmanager.yml",
    ]) {
        // What each rule mutes is checked against a real Alertmanager in
        // alertmanager::every_inhibition_rule_of_the_shipped_config_does_what_it_says.
        assert!(out.contains("3 inhibit rules"), "{out}");
    }
}

#[test]
fn every_alert_has_a_runbook() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // gwanje's own alerts: every name the core's typed alerts can carry.
    let mut names: Vec<String> = gwanje::core::AlertName::ALL
        .iter()
        .map(|n| n.to_string())
        .collect();
    // Prometheus alerts name their runbook in runbook_url.
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/rules/gwanje.yml")).unwrap();
    for line in rules.lines().filter(|l| l.contains("runbook_url")) {
        let page = line
            .rsplit('/')
            .next()
            .unwrap()
            .trim_matches(|c| c == '"' || c == ' ');
        // The same form as gwanje's own alerts: <base><AlertName>.md.
        let page = page
            .strip_suffix(".md")
            .unwrap_or_else(|| panic!("{line}: runbook URLs end in .md"));
        names.push(page.to_string());
    }
    names.sort();
    names.dedup();
    assert!(names.len() >= 12, "{names:?}");
    for n in &names {
        let page = root.join(format!("docs/runbooks/{n}.md"));
        let text = std::fs::read_to_string(&page)
            .unwrap_or_else(|_| panic!("missing runbook {}", page.display()));
        for section in [
            "## What it means",
            "## What gwanje already did",
            "## What to check",
            "## Failing back by hand",
        ] {
            assert!(
                text.contains(section),
                "{}: missing {section}",
                page.display()
            );
        }
    }
}

#[test]
fn the_systemd_unit_is_hardened_with_and_without_route_management() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("deploy/systemd/gwanje.service")).unwrap();
    let dropin =
        std::fs::read_to_string(root.join("deploy/systemd/gwanje.service.d/routing.conf")).unwrap();
    // The unit as systemd sees it with the drop-in: its [Service] lines
    // added to the unit's.
    let extra: String = dropin
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let routing = unit.replacen("[Service]\n", &format!("[Service]\n{extra}"), 1);
    assert!(routing.contains("CAP_NET_ADMIN") && !unit.contains("=CAP_NET_ADMIN"));
    let dir = tempfile::tempdir().unwrap();
    let routing_unit = dir.path().join("gwanje.service");
    std::fs::write(&routing_unit, routing).unwrap();
    // Exposure at most 2.0 of 10 ("OK"); the unit scored 3.6 before.
    let actuate = root.join("deploy/systemd/gwanje-actuate.service");
    let actuate_text = std::fs::read_to_string(&actuate).unwrap();
    assert!(
        actuate_text.contains("ExecStart=/usr/local/bin/gwanje actuate --config")
            && actuate_text.contains("CapabilityBoundingSet=CAP_NET_ADMIN\n")
    );
    for unit in [
        root.join("deploy/systemd/gwanje.service"),
        routing_unit.clone(),
        actuate,
    ] {
        let unit = unit.to_string_lossy().into_owned();
        if let Some(out) = tool(&[
            "systemd-analyze",
            "security",
            "--offline=yes",
            "--threshold=20",
            &unit,
        ]) {
            assert!(out.contains("Overall exposure level"), "{out}");
        }
    }
}

/// Every file under `dir` (relative to the repository) ending in `.rs`.
fn rust_files(root: &Path, dir: &str, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(root, &p.strip_prefix(root).unwrap().to_string_lossy(), out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_dockerfile_copies_everything_the_build_needs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docker = std::fs::read_to_string(root.join("deploy/container/Dockerfile")).unwrap();
    // The build stage: up to the second FROM.
    let build = docker.split("\nFROM ").nth(1).expect("a build stage");
    let copied: Vec<String> = build
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            parts[..parts.len() - 1]
                .iter()
                .map(|s| s.trim_end_matches('/').to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let covered = |path: &str| {
        copied
            .iter()
            .any(|c| path == c || path.starts_with(&format!("{c}/")))
    };
    let mut needed = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
    // Workspace members and path dependencies.
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for line in manifest.lines() {
        for quoted in line.split('"').skip(1).step_by(2) {
            if quoted.starts_with("crates/") {
                needed.push(quoted.to_string());
            }
        }
    }
    needed.push("benches".into());
    // What the sources include at compile time, resolved from each file.
    let mut files = Vec::new();
    rust_files(root, "src", &mut files);
    rust_files(root, "crates", &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for part in text
            .split("include_str!(\"")
            .skip(1)
            .chain(text.split("include_bytes!(\"").skip(1))
        {
            let rel = part.split('"').next().unwrap();
            let full = f.parent().unwrap().join(rel);
            let full = full.canonicalize().unwrap_or(full);
            let path = full.strip_prefix(root.canonicalize().unwrap()).unwrap();
            needed.push(path.to_string_lossy().into_owned());
        }
    }
    let missing: Vec<&String> = needed.iter().filter(|p| !covered(p)).collect();
    assert!(
        missing.is_empty(),
        "the Dockerfile's build stage lacks {missing:?} (copies {copied:?})"
    );
}

/// The Kubernetes manifest's documents.
fn manifests() -> Vec<yaml_serde::Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/kubernetes/gwanje.yaml")).unwrap();
    text.split("\n---\n")
        .map(|d| yaml_serde::from_str(d).unwrap())
        .collect()
}

fn find<'a>(docs: &'a [yaml_serde::Value], kind: &str, name: &str) -> &'a yaml_serde::Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("the manifest has a {kind} {name}"))
}

/// How a run departs from the manifest.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// As the manifest and the image say.
    AsShipped,
    /// A binary without the file capability (what `capabilities.add` alone gives).
    NoFileCap,
}

/// Runs the test's own copy of gwanje the way the manifest runs the image
/// (its uid, groups, capabilities and file layout) and returns whether an
/// ICMP probe of 127.0.0.1 succeeded and whether its token could be used.
async fn run_as_the_pod(variant: Variant) -> (bool, bool) {
    use std::os::unix::fs::PermissionsExt;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = manifests();
    let pod = &find(&docs, "Deployment", "gwanje")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let sc = &container["securityContext"];
    let num = |v: &yaml_serde::Value| v.as_u64().map(|n| n as u32);
    let uid = num(&sc["runAsUser"])
        .or(num(&pod["securityContext"]["runAsUser"]))
        .unwrap();
    let gid = num(&pod["securityContext"]["runAsGroup"]).unwrap();
    let fs_group = num(&pod["securityContext"]["fsGroup"]).unwrap();
    let caps: Vec<String> = sc["capabilities"]["add"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"));
    let mount = |name: &str| -> String {
        container["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["name"].as_str() == Some(name))
            .and_then(|m| m["mountPath"].as_str())
            .unwrap_or_else(|| panic!("a mount for {name}"))
            .trim_start_matches('/')
            .to_string()
    };
    // YAML 1.2 reads 0440 as decimal; Kubernetes reads it as octal: the text says.
    let text = std::fs::read_to_string(root.join("deploy/kubernetes/gwanje.yaml")).unwrap();
    let secret_mode = text
        .split("defaultMode: ")
        .nth(1)
        .and_then(|s| u32::from_str_radix(s.split(|c: char| !c.is_ascii_digit()).next()?, 8).ok())
        .expect("the secret's defaultMode");
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::set_permissions(r, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config_dir = r.join(mount("config"));
    let probes_dir = r.join(mount("probes"));
    let secrets_dir = r.join(mount("admin"));
    let journal_dir = r.join(mount("journal"));
    for d in [&config_dir, &probes_dir, &secrets_dir, &journal_dir] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // emptyDir with an fsGroup: group-owned, setgid, group-writable.
    std::os::unix::fs::chown(&journal_dir, Some(0), Some(fs_group)).unwrap();
    std::fs::set_permissions(&journal_dir, std::fs::Permissions::from_mode(0o2775)).unwrap();
    // The ConfigMap's configuration, on a port of its own, alerting to no one
    // (tests reach only loopback), and the journal where the pod mounts it.
    let config = find(&docs, "ConfigMap", "gwanje-config")["data"]["gwanje.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let config: String = config
        .split("\nalerting:")
        .next()
        .unwrap()
        .replace("listen: 0.0.0.0:9469", "listen: 127.0.0.1:0")
        .replace(
            "/var/lib/gwanje",
            journal_dir.to_str().unwrap().trim_end_matches('/'),
        );
    assert!(
        !config.contains("failover_groups"),
        "the example moves nothing"
    );
    std::fs::write(config_dir.join("gwanje.yaml"), config).unwrap();
    std::fs::write(
        probes_dir.join("local.yaml"),
        "service: k8s\ntargets:\n  - {name: loopback, icmp: {host: 127.0.0.1}}\n",
    )
    .unwrap();
    let token = "manifest-test-token";
    let secret = secrets_dir.join("admin-token");
    std::fs::write(&secret, token).unwrap();
    std::os::unix::fs::chown(&secret, Some(0), Some(fs_group)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(secret_mode)).unwrap();
    // The binary, with the file capability the Dockerfile gives it.
    let docker = std::fs::read_to_string(root.join("deploy/container/Dockerfile")).unwrap();
    assert!(docker.contains("setcap cap_net_raw+ep /usr/local/bin/gwanje"));
    assert!(docker.contains(&format!("USER {uid}:{gid}")));
    let bin = r.join("usr/local/bin/gwanje");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_gwanje"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    if variant != Variant::NoFileCap {
        let set = Command::new("setcap")
            .args(["cap_net_raw+ep", bin.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(set.success());
    }
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg(format!("--groups={fs_group}"))
        .arg("--inh-caps=-all")
        .arg(format!(
            "--bounding-set=-all{}",
            caps.iter().map(|c| format!(",+{c}")).collect::<String>()
        ));
    // allowPrivilegeEscalation: false is no_new_privs.
    if sc["allowPrivilegeEscalation"].as_bool() == Some(false) {
        cmd.arg("--no-new-privs");
    }
    cmd.arg(&bin);
    let mut d =
        common::daemon::Daemon::start_with(cmd, &config_dir.join("gwanje.yaml"), r.join("log"));
    d.wait_ready(std::time::Duration::from_secs(20)).await;
    let want = [("service", "k8s"), ("target", "loopback"), ("path", "")];
    let samples = d
        .scrape_until(std::time::Duration::from_secs(20), |s| {
            common::expo::value(s, "probe_success", &want).is_some()
        })
        .await;
    let icmp = common::expo::value(&samples, "probe_success", &want) == Some(1.0);
    let auth = format!("Bearer {token}");
    let reload = common::client::request_with_body(
        "POST",
        d.addr,
        "/-/reload",
        &[("authorization", auth.as_str())],
        "",
    )
    .await
    .unwrap();
    assert!(d.stop().success());
    (icmp, reload.status == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifests_run_non_root_with_only_their_capabilities() {
    if !common::is_root() || Command::new("setcap").arg("-v").output().is_err() {
        assert!(!common::required("root, setpriv and setcap (libcap2-bin)"));
        return;
    }
    let (icmp, token) = run_as_the_pod(Variant::AsShipped).await;
    assert!(icmp, "raw ICMP as uid 65532 with the binary's NET_RAW");
    assert!(token, "the token secret is readable by the pod's group");
    // Why the image sets a file capability: the capability the manifest
    // adds is not ambient for a non-root process, so without the file
    // capability there is no raw ICMP. (Where ping_group_range lets the
    // pod's group open unprivileged ICMP sockets, gwanje falls back to them
    // and this proves nothing: skipped there.)
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let mut r = range.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    let (lo, hi) = (r.next().unwrap(), r.next().unwrap());
    if (lo..=hi).contains(&65532) {
        eprintln!(
            "skipping the negative half: ping_group_range {lo}-{hi} allows unprivileged ICMP"
        );
        return;
    }
    let (bare, _) = run_as_the_pod(Variant::NoFileCap).await;
    assert!(
        !bare,
        "capabilities.add alone gives a non-root process no raw ICMP"
    );
}

#[test]
fn the_cluster_manifest_runs_replicas_and_actuators_with_only_their_capabilities() {
    use std::os::unix::fs::PermissionsExt;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/kubernetes/cluster.yaml")).unwrap();
    let docs: Vec<yaml_serde::Value> = text
        .split("\n---\n")
        .map(|d| yaml_serde::from_str(d).unwrap())
        .collect();
    for (name, command, caps) in [
        ("gwanje-replica", "run", vec!["NET_ADMIN", "NET_RAW"]),
        ("gwanje-actuate", "actuate", vec!["NET_ADMIN"]),
    ] {
        let pod = &find(&docs, "DaemonSet", name)["spec"]["template"]["spec"];
        assert_eq!(
            pod["hostNetwork"].as_bool(),
            Some(true),
            "{name}: the node's routes"
        );
        let c = &pod["containers"][0];
        assert_eq!(c["args"][0].as_str(), Some(command), "{name}");
        let sc = &c["securityContext"];
        assert_eq!(
            sc["capabilities"]["drop"][0].as_str(),
            Some("ALL"),
            "{name}"
        );
        let added: Vec<&str> = sc["capabilities"]["add"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(added, caps, "{name}: only what it needs");
        assert_eq!(
            sc["allowPrivilegeEscalation"].as_bool(),
            Some(false),
            "{name}"
        );
        assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{name}");
        // The fence outlives the pod: on the node's disk.
        let state = pod["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"].as_str() == Some("state"))
            .expect("a state volume");
        assert_eq!(
            state["hostPath"]["path"].as_str(),
            Some("/var/lib/gwanje"),
            "{name}"
        );
    }
    // The configuration loads where the pods mount it, as a replica and as
    // an actuator host.
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let config = find(&docs, "ConfigMap", "gwanje-cluster-config")["data"]["gwanje.yaml"]
        .as_str()
        .unwrap()
        .replace("/var/lib/gwanje", r.join("state").to_str().unwrap());
    let probes = find(&docs, "ConfigMap", "gwanje-cluster-probes")["data"]["portal.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    for (rel, body) in [
        ("config/gwanje.yaml", config.as_str()),
        ("probes/portal.yaml", probes.as_str()),
        ("secrets/admin-token", "k8s-cluster-token"),
        ("etcd/ca.pem", "pem"),
        ("etcd/client.pem", "pem"),
        ("etcd/client.key", "pem"),
    ] {
        let path = r.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, body).unwrap();
        // As the Secrets are mounted: 0400.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    }
    let plan = gwanje::config::load(&r.join("config/gwanje.yaml"))
        .expect("the manifest's configuration loads");
    let cluster = plan.settings.cluster.clone().expect("a cluster section");
    assert!(cluster.actuate && cluster.fence_file.starts_with(r.join("state")));
    assert_eq!(cluster.endpoints.len(), 3, "three etcd members");
    let actuator = plan.actuator_only().expect("an actuator host's plan");
    assert!(actuator.jobs.is_empty(), "an actuator host probes nothing");
}
