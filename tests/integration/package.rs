//! The Debian package as a platform engineer meets it: installed with
//! `dpkg -i`, its unit verified, its configuration checked, the installed
//! binary run as the unit runs it (the `gwanje` user, CAP_NET_RAW only) and
//! scraped, an operator's edit kept across a reinstall, then purged with
//! nothing left but the system user Debian policy keeps.
//!
//! `scripts/test.sh` builds the package (`scripts/package.sh`, a release
//! build) before the tests run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::daemon::Daemon;
use crate::common::{self, client, expo};

/// The newest package `scripts/package.sh` built.
fn package() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    debs.pop()
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn mode(p: &str) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

/// Purges the package when dropped, whatever the test got to.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "gwanje"]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debian_package_installs_runs_keeps_edits_and_purges_clean() {
    let deb = package();
    if !common::is_root() || deb.is_none() {
        assert!(!common::required(
            "root and target/debian/*.deb (scripts/package.sh)"
        ));
        return;
    }
    let deb = deb.unwrap();
    let deb = deb.to_str().unwrap();
    let _ = run(&["dpkg", "--purge", "gwanje"]);
    let installed = Installed;
    let (ok, out) = run(&["dpkg", "-i", deb]);
    assert!(ok, "{out}");

    // What it installed, and with which owners and modes.
    let (_, id) = run(&["id", "-u", "gwanje"]);
    let uid: u32 = id.trim().parse().expect("a gwanje system user");
    let (_, gid) = run(&["id", "-g", "gwanje"]);
    let gid: u32 = gid.trim().parse().unwrap();
    assert_eq!(mode("/etc/gwanje/admin-token"), (0o640, 0, gid));
    assert_eq!(mode("/var/lib/gwanje"), (0o750, uid, gid));
    let (_, sections) = run(&["readelf", "-S", "/usr/bin/gwanje"]);
    assert!(
        !sections.contains(".debug_info") && sections.contains(".gnu_debuglink"),
        "a stripped binary that names its symbols file"
    );
    assert!(
        std::fs::symlink_metadata("/etc/systemd/system/multi-user.target.wants/gwanje.service")
            .is_ok(),
        "enabled on a first installation"
    );
    let (ok, out) = run(&[
        "systemd-analyze",
        "verify",
        "/usr/lib/systemd/system/gwanje.service",
    ]);
    assert!(ok && !out.contains("gwanje.service:"), "{out}");
    for config in [
        "/etc/gwanje/gwanje.yaml",
        "/etc/gwanje/production/gwanje.yaml",
    ] {
        let (ok, out) = run(&["/usr/bin/gwanje", "check-config", config]);
        assert!(ok, "{config}: {out}");
    }
    let enabled = std::fs::read_to_string("/etc/gwanje/gwanje.yaml").unwrap();
    assert!(
        !enabled.contains("failover_groups") && enabled.contains("probes/local/"),
        "the enabled configuration probes this host only and moves nothing"
    );

    // The installed binary, as the unit runs it: user gwanje, CAP_NET_RAW
    // ambient, the installed catalogs and token; on a port it binds itself.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    std::os::unix::fs::chown(&journal, Some(uid), Some(gid)).unwrap();
    let config = dir.path().join("gwanje.yaml");
    std::fs::write(
        &config,
        enabled
            .replace("listen: 127.0.0.1:9469", "listen: 127.0.0.1:0")
            .replace("probes/local/", "/etc/gwanje/probes/local/")
            .replace(
                "token_file: admin-token",
                "token_file: /etc/gwanje/admin-token",
            )
            .replace("/var/lib/gwanje/journal", journal.to_str().unwrap()),
    )
    .unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=gwanje",
        "--regid=gwanje",
        "--init-groups",
        "--inh-caps=-all,+net_raw",
        "--ambient-caps=-all,+net_raw",
        "--bounding-set=-all,+net_raw",
        "/usr/bin/gwanje",
    ]);
    let mut d = Daemon::start_with(cmd, &config, dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let loopback = [("service", "self"), ("target", "loopback"), ("path", "")];
    let scrape = d
        .scrape_until(Duration::from_secs(20), |s| {
            expo::value(s, "probe_success", &loopback) == Some(1.0)
        })
        .await;
    assert!(scrape.iter().any(|s| s.name == "gwanje_build_info"));
    // The token the package wrote, read by the gwanje user.
    let token = std::fs::read_to_string("/etc/gwanje/admin-token").unwrap();
    let auth = format!("Bearer {}", token.trim());
    let r = client::request_with_body("POST", d.addr, "/-/reload", &[("authorization", &auth)], "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(d.stop().success());

    // An operator's edit of a configuration file survives a reinstall.
    let edited = format!("{enabled}# edited by the operator\n");
    std::fs::write("/etc/gwanje/gwanje.yaml", &edited).unwrap();
    let (ok, out) = run(&["dpkg", "-i", deb]);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string("/etc/gwanje/gwanje.yaml").unwrap(),
        edited
    );

    // Removed: the configuration stays; purged: nothing but the user.
    let (ok, out) = run(&["dpkg", "--remove", "gwanje"]);
    assert!(ok, "{out}");
    assert!(!Path::new("/usr/bin/gwanje").exists());
    assert!(
        Path::new("/etc/gwanje/gwanje.yaml").exists(),
        "conffiles stay until purge"
    );
    let (ok, out) = run(&["dpkg", "--purge", "gwanje"]);
    assert!(ok, "{out}");
    drop(installed);
    for gone in [
        "/etc/gwanje",
        "/var/lib/gwanje",
        "/usr/bin/gwanje",
        "/usr/lib/systemd/system/gwanje.service",
        "/usr/share/doc/gwanje",
        "/etc/systemd/system/gwanje.service",
        "/etc/systemd/system/multi-user.target.wants/gwanje.service",
    ] {
        // A link left behind counts, even one that points nowhere.
        assert!(
            std::fs::symlink_metadata(gone).is_err(),
            "{gone} is left after purge"
        );
    }
    let (known, _) = run(&["dpkg", "-s", "gwanje"]);
    assert!(!known, "dpkg forgot the package");
}
