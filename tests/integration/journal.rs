//! The flight recorder end to end: the real binary records, `gwanje replay`
//! reproduces, damage is reported and skipped, a `kill -9` forgets nothing
//! an operator did, and a full disk never stops monitoring.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gwanje::journal::{self, Record};

use crate::common::daemon::Daemon;
use crate::common::plan::ConfigDir;
use crate::common::{self, client, expo, fleet};

const TOKEN: &str = "journal-test-token";

/// A config probing a healthy page, a broken one and one that leaks a
/// resident number every 200 ms, with an observe-only group over two
/// loopback paths, journaling into `journal` (or the given folder).
fn config(web: &common::Server, journal: &str) -> ConfigDir {
    let catalog = format!(
        "service: portal\ninterval: 200ms\ntimeout: 150ms\ntargets:\n  - {{name: home, http: {{url: '{}'}}}}\n  - {{name: broken, http: {{url: '{}'}}}}\n  - {{name: leak, http: {{url: '{}'}}}}\n",
        web.url("/"),
        web.url("/status/503"),
        web.url("/pii"),
    );
    let dir = ConfigDir::new(
        &format!(
            "listen: 127.0.0.1:0\nadmin: {{token_file: token}}\nlogging: {{format: json}}\njournal: {{dir: '{journal}', fsync: always}}\n\
             paths:\n  - {{name: a, gateway: 127.0.0.1, interface: lo}}\n  - {{name: b, gateway: 127.0.0.2, interface: lo}}\n\
             failover_groups:\n  - {{name: local, routes: [198.18.200.0/24], paths: [a, b], checks: [portal/home], action: observe}}\n"
        ),
        &[("portal", &catalog)],
    );
    gwanje::config::write_secret_file(&dir.dir.path().join("token"), TOKEN).unwrap();
    dir
}

fn replay(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .arg("replay")
        .arg("--journal")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs gwanje on `cfg` until the leak alert fires, then stops it.
async fn record(cfg: &ConfigDir) {
    let mut d = Daemon::start(&cfg.config, cfg.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    d.scrape_until(Duration::from_secs(20), |s| {
        expo::value(
            s,
            "gwanje_alerts_firing",
            &[
                ("alertname", "PersonalDataExposed"),
                ("severity", "critical"),
                ("acknowledged", "false"),
            ],
        ) == Some(1.0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(d.stop().success());
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    journal::segments(dir)
        .unwrap()
        .into_iter()
        .map(|s| s.path)
        .collect()
}

/// Rewrites `file` with the records `keep` accepts.
fn rewrite(file: &Path, keep: impl Fn(usize, &Record) -> bool) {
    let (records, _) = journal::read_segment(file).unwrap();
    let kept: Vec<Record> = records
        .into_iter()
        .enumerate()
        .filter(|(i, r)| keep(*i, r))
        .map(|(_, r)| r)
        .collect();
    std::fs::write(file, journal::encode_segment(&kept).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_run_replays_identically_and_a_removed_effect_is_caught() {
    let web = fleet::http(fleet::app()).await;
    let cfg = config(&web, "journal");
    record(&cfg).await;
    let dir = cfg.dir.path().join("journal");
    let (code, out, err) = replay(&dir, &["--verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("identical: "), "{out}");

    let (code, timeline, _) = replay(&dir, &[]);
    assert_eq!(code, 0);
    assert!(timeline.contains("portal/broken is down"), "{timeline}");
    assert!(
        timeline.contains("alerts sent: PersonalDataExposed firing"),
        "{timeline}"
    );
    let (_, json, _) = replay(&dir, &["--format", "json"]);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert!(first["at"].is_u64() && first["text"].is_string(), "{first}");
    // Nothing personal went into the journal: the finding, never the
    // number (searched in the decoded records: on disk they are compressed).
    let text = common::journal_text(&dir);
    assert!(text.contains("\"PersonalData\""), "the finding is recorded");
    assert!(
        !text.contains(fleet::VALID_RRN),
        "the journal holds the resident number"
    );

    // Remove one recorded effect: verify names the first difference.
    let last = segments(&dir).pop().unwrap();
    let first_effect = journal::read_segment(&last)
        .unwrap()
        .0
        .iter()
        .position(|r| matches!(r, Record::Effect { .. }))
        .expect("an effect");
    rewrite(&last, |i, _| i != first_effect);
    let (code, out, _) = replay(&dir, &["--verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("diverged") && out.contains("expected"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_and_corrupt_records_are_skipped_with_a_warning_naming_the_file() {
    let web = fleet::http(fleet::app()).await;
    let cfg = config(&web, "journal");
    record(&cfg).await;
    let dir = cfg.dir.path().join("journal");
    let last = segments(&dir).pop().unwrap();

    // A crash mid-write leaves half a record.
    let mut bytes = std::fs::read(&last).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']);
    std::fs::write(&last, &bytes).unwrap();
    let (code, out, err) = replay(&dir, &["--verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(&last.display().to_string()) && err.contains(&format!("offset {whole}")),
        "{err}"
    );

    // A flipped byte in the middle: the rest of that segment is skipped, not
    // fatal.
    bytes[whole / 2] ^= 0x55;
    std::fs::write(&last, &bytes).unwrap();
    // (Compressed, the damaged block is lost whole, and with it what it
    // held: the records of the blocks before it are kept.)
    let (code, out, err) = replay(&dir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(&last.display().to_string()) && err.contains("offset"),
        "{err}"
    );

    // The daemon reopens such a journal and goes on in a new segment.
    let before = segments(&dir).len();
    let mut d = Daemon::start(&cfg.config, cfg.dir.path().join("again.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    assert!(d.stop().success());
    assert_eq!(segments(&dir).len(), before + 1);
}

/// Where each block of a version-3 segment starts, read from its trailers
/// backwards as docs/journal.md specifies them (36 bytes: magic, frame
/// length, raw length, records, first and last time, CRC).
fn block_starts(segment: &[u8]) -> Vec<usize> {
    const TRAILER: usize = 36;
    let mut starts = Vec::new();
    let mut end = segment.len();
    while end > 8 {
        let t = &segment[end - TRAILER..end];
        assert_eq!(&t[..4], b"GWT\0", "a trailer ends every block");
        let comp = u32::from_le_bytes(t[4..8].try_into().unwrap()) as usize;
        end -= TRAILER + comp;
        starts.push(end);
    }
    assert_eq!(end, 8, "the blocks reach the header");
    starts.reverse();
    starts
}

/// Twenty minutes of a 200-target fleet: one segment of several blocks.
fn a_short_record(dir: &Path) -> (PathBuf, Vec<u8>, Vec<usize>) {
    let day = common::record::write(
        dir,
        common::record::Shape {
            targets: 200,
            span_ms: 20 * 60_000,
            interval_ms: 10_000,
        },
    );
    let segment = segments(&day.journal).pop().unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    let starts = block_starts(&bytes);
    assert!(starts.len() >= 4, "{} blocks", starts.len());
    (day.journal, bytes, starts)
}

#[test]
fn a_torn_compressed_block_keeps_what_came_before_and_names_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, bytes, starts) = a_short_record(dir.path());
    let segment = segments(&journal).pop().unwrap();
    let whole = gwanje::journal::read_segment(&segment).unwrap().0.len();
    // A crash in the middle of writing the last block.
    let last = *starts.last().unwrap();
    std::fs::write(&segment, &bytes[..last + (bytes.len() - last) / 2]).unwrap();
    let (kept, warning) = gwanje::journal::read_segment(&segment).unwrap();
    let warning = warning.expect("a warning");
    assert!(
        warning.contains(&segment.display().to_string())
            && warning.contains(&format!("offset {last}")),
        "{warning}"
    );
    // Every record of the blocks before it is kept, and some of the torn
    // one (those flushed before the tear).
    assert!(
        kept.len() < whole && kept.len() > whole / 2,
        "{} of {whole}",
        kept.len()
    );
    let (code, out, err) = replay(&journal, &["--verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains(&format!("offset {last}")), "{err}");
}

#[test]
fn a_corrupt_compressed_block_is_skipped_with_its_file_and_offset_named() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, mut bytes, starts) = a_short_record(dir.path());
    let segment = segments(&journal).pop().unwrap();
    // A flipped byte in the frame of the second block.
    let second = starts[1];
    bytes[second + 100] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let (kept, warning) = gwanje::journal::read_segment(&segment).unwrap();
    let warning = warning.expect("a warning");
    assert!(
        warning.contains(&segment.display().to_string())
            && warning.contains(&format!("offset {second}"))
            && warning.contains("the rest of this segment is skipped"),
        "{warning}"
    );
    // The first block's records are kept: the snapshot and what followed.
    assert!(matches!(kept.first(), Some(Record::Snapshot { .. })));
    // Replay goes on and names the damage; the report is still made.
    let (code, out, err) = replay(&journal, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains(&format!("offset {second}")), "{err}");
    let report = gwanje::analysis::report::build(&journal, &Default::default());
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn another_format_version_and_a_missing_folder_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let seg = journal::segment_path(dir.path(), 1);
    let mut bytes = journal::MAGIC.to_vec();
    bytes.extend_from_slice(&99u32.to_le_bytes());
    std::fs::write(&seg, bytes).unwrap();
    let (code, _, err) = replay(dir.path(), &["--verify"]);
    assert_eq!(code, 66, "{err}");
    assert!(
        err.contains(&seg.display().to_string())
            && err.contains("offset 4")
            && err.contains("version 99"),
        "{err}"
    );
    std::fs::write(&seg, b"not a journal").unwrap();
    let (code, _, err) = replay(dir.path(), &[]);
    assert_eq!(code, 66);
    assert!(err.contains("not a gwanje journal"), "{err}");
    let (code, _, err) = replay(&dir.path().join("absent"), &[]);
    assert_eq!(code, 66);
    assert!(err.contains("absent"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_acknowledgements_and_pins() {
    let web = fleet::http(fleet::app()).await;
    let cfg = config(&web, "journal");
    let mut d = Daemon::start(&cfg.config, cfg.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let addr = d.addr;
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let leak = async || {
        let alerts: serde_json::Value =
            serde_json::from_str(&client::get(addr, "/api/v1/alerts").await.unwrap().body).unwrap();
        alerts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "PersonalDataExposed")
            .cloned()
    };
    let mut alert = None;
    for _ in 0..100 {
        alert = leak().await;
        if alert.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = alert.expect("the leak alert fires")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = client::request_with_body(
        "POST",
        addr,
        &format!("/api/v1/alerts/{id}/ack"),
        &headers,
        r#"{"by": "kim"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = client::request_with_body(
        "POST",
        addr,
        "/api/v1/groups/local/pin",
        &headers,
        r#"{"path": "b", "ttl": "1h", "by": "lee"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // Heavy writing goes on (every probe is a record); kill it mid-stream.
    tokio::time::sleep(Duration::from_millis(700)).await;
    d.signal(libc::SIGKILL);
    drop(d);

    let mut d = Daemon::start(&cfg.config, cfg.dir.path().join("restarted.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let addr = d.addr;
    let alerts: serde_json::Value =
        serde_json::from_str(&client::get(addr, "/api/v1/alerts").await.unwrap().body).unwrap();
    let leak = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "PersonalDataExposed")
        .cloned()
        .unwrap_or_else(|| panic!("{alerts:#}"));
    assert_eq!(leak["acknowledged_by"], "kim", "{leak:#}");
    assert_eq!(leak["escalated"], false);
    let status: serde_json::Value =
        serde_json::from_str(&client::get(addr, "/api/v1/status").await.unwrap().body).unwrap();
    let pinned = status["groups"][0]["pinned"].as_str().unwrap_or_default();
    assert!(
        pinned.starts_with("b until") && pinned.ends_with("by lee"),
        "{status:#}"
    );
    // The journal across the crash still replays: the torn step is reported, not a failure.
    let (code, out, err) = replay(&cfg.dir.path().join("journal"), &["--verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_drops_records_alerts_and_never_stops_monitoring() {
    if !common::is_root() && !common::required("root to mount a tmpfs") {
        return;
    }
    let web = fleet::http(fleet::app()).await;
    let mount = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=64k",
            "gwanje-test",
            &mount.path().display().to_string(),
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount a tmpfs");
    let _tmpfs = Tmpfs(mount.path().to_path_buf());
    let cfg = config(&web, &mount.path().display().to_string());
    let mut d = Daemon::start(&cfg.config, cfg.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    // The disk fills up (the journal alone, compressed, would take long).
    let filler = mount.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = [0u8; 4096];
        for _ in 0..64 {
            if f.write_all(&chunk).and_then(|()| f.sync_all()).is_err() {
                break;
            }
        }
    }
    let s = d
        .scrape_until(Duration::from_secs(30), |s| {
            expo::value(s, "gwanje_journal_dropped_records_total", &[]).unwrap_or(0.0) > 0.0
                && expo::sum(
                    s,
                    "gwanje_alerts_firing",
                    &[("alertname", "JournalWriteFailing")],
                ) == 1.0
        })
        .await;
    let probes = expo::sum(&s, "gwanje_probes_total", &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = expo::parse(&client::get(d.addr, "/metrics").await.unwrap().body);
    assert!(
        expo::sum(&later, "gwanje_probes_total", &[]) > probes + 5.0,
        "probing goes on with the disk full"
    );
    assert_eq!(
        expo::value(&later, "gwanje_journal_failing", &[]),
        Some(1.0)
    );
    // Space comes back: the journal resumes in a new segment and the alert resolves.
    std::fs::remove_file(&filler).unwrap();
    for seg in segments(mount.path()) {
        std::fs::remove_file(seg).unwrap();
    }
    d.scrape_until(Duration::from_secs(40), |s| {
        expo::value(s, "gwanje_journal_failing", &[]) == Some(0.0)
            && expo::sum(
                s,
                "gwanje_alerts_firing",
                &[("alertname", "JournalWriteFailing")],
            ) == 0.0
    })
    .await;
    assert!(
        !segments(mount.path()).is_empty(),
        "a resync segment was written"
    );
    assert!(d.stop().success(), "{}", "stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_history_backfills_a_real_prometheus() {
    let web = fleet::http(fleet::app()).await;
    let cfg = config(&web, "journal");
    record(&cfg).await;
    let dir = cfg.dir.path().join("journal");
    let file = cfg.dir.path().join("history.om");
    let out = Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .args(["journal", "export", "--format", "openmetrics", "--journal"])
        .arg(&dir)
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    // The last recorded result of the broken target, with its time.
    let sample = text
        .lines()
        .rfind(|l| l.starts_with("probe_success{service=\"portal\",target=\"broken\"}"))
        .expect("the broken target's results");
    let at: f64 = sample.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(sample.contains("} 0 "), "{sample}");
    for family in ["probe_duration_seconds", "gwanje_target_up"] {
        assert!(
            text.contains(&format!("# TYPE {family} gauge")),
            "{family} exported"
        );
    }
    // promtool turns it into blocks; a real Prometheus serves them.
    let prom = tempfile::tempdir().unwrap();
    let created = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(prom.path().join("tsdb"))
        .output();
    let Ok(created) = created else {
        assert!(!common::required("promtool (Debian package prometheus)"));
        return;
    };
    assert!(
        created.status.success(),
        "{}{}",
        String::from_utf8_lossy(&created.stdout),
        String::from_utf8_lossy(&created.stderr)
    );
    let Some(mut p) =
        common::companions::prometheus(prom.path(), "global: {scrape_interval: 1h}\n")
    else {
        return;
    };
    p.wait_ready(Duration::from_secs(30)).await;
    let query = |q: &str, t: f64| {
        format!(
            "/api/v1/query?query={}&time={t:.3}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        )
    };
    let mut found = None;
    for _ in 0..50 {
        let r = client::get(p.addr, &query("probe_success{target=\"broken\"}", at))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        if let Some(s) = v["data"]["result"]
            .as_array()
            .and_then(|a| a.first())
            .cloned()
        {
            found = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = found.expect("the backfilled series");
    assert_eq!(s["value"][1], "0", "{s}");
    let r = client::get(p.addr, &query("probe_success{target=\"home\"}", at))
        .await
        .unwrap();
    assert!(r.body.contains("\"1\""), "{}", r.body);
}

/// Appends `records` to the last segment of `dir`.
fn append(dir: &Path, records: &[Record]) {
    let last = segments(dir).pop().unwrap();
    let (mut kept, _) = journal::read_segment(&last).unwrap();
    kept.extend(records.iter().cloned());
    std::fs::write(&last, journal::encode_segment(&kept).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_from_the_future_neither_moves_the_clock_nor_crashes_anything() {
    let web = fleet::http(fleet::app()).await;
    let cfg = config(&web, "journal");
    record(&cfg).await;
    let dir = cfg.dir.path().join("journal");
    // 2040-01-01: restored as such, it would move gwanje's clock there.
    append(
        &dir,
        &[Record::Timeout {
            at: gwanje::core::Timestamp(2_208_988_800_000),
        }],
    );
    let mut d = Daemon::start(&cfg.config, cfg.dir.path().join("gwanje2.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let s = d
        .scrape_until(Duration::from_secs(10), |s| {
            expo::value(s, "gwanje_engine_heartbeat_timestamp_seconds", &[])
                .is_some_and(|v| v > 0.0)
        })
        .await;
    let beat = expo::value(&s, "gwanje_engine_heartbeat_timestamp_seconds", &[]).unwrap();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((beat - wall).abs() < 3600.0, "clock moved to {beat}");
    let alerts = client::get(d.addr, "/api/v1/alerts").await.unwrap().body;
    assert!(alerts.contains("JournalClockAhead"), "{alerts}");
    assert!(d.stop().success());

    // Past the year 9999: the reader skips it; nothing panics.
    append(
        &dir,
        &[Record::Timeout {
            at: gwanje::core::Timestamp(253_402_300_800_001),
        }],
    );
    let mut d = Daemon::start(&cfg.config, cfg.dir.path().join("gwanje3.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    // The broken target fires TargetDown: the first alert is formatted.
    d.scrape_until(Duration::from_secs(20), |s| {
        expo::value(
            s,
            "gwanje_alerts_firing",
            &[
                ("alertname", "TargetDown"),
                ("severity", "warning"),
                ("acknowledged", "false"),
            ],
        ) == Some(1.0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        client::get(d.addr, "/-/healthy").await.unwrap().status,
        200,
        "{}",
        d.log_text()
    );
    assert!(d.stop().success());
    for args in [&[][..], &["--verify"][..]] {
        let (code, out, err) = replay(&dir, args);
        assert_ne!(code, 101, "replay {args:?} panicked: {err}");
        assert!(
            err.contains("past the year 9999") || out.contains("past the year 9999"),
            "{args:?}: the skipped record is named: {out}{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_journal_folder_at_start_never_stops_monitoring() {
    let web = fleet::http(fleet::app()).await;
    let cfg = config(&web, "journal");
    let dir = cfg.dir.path().join("journal");
    // A file where the folder should be.
    std::fs::write(&dir, "not a folder").unwrap();
    let mut d = Daemon::start(&cfg.config, cfg.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    d.scrape_until(Duration::from_secs(30), |s| {
        expo::value(s, "gwanje_journal_failing", &[]) == Some(1.0)
            && expo::value(
                s,
                "gwanje_alerts_firing",
                &[
                    ("alertname", "JournalWriteFailing"),
                    ("severity", "warning"),
                    ("acknowledged", "false"),
                ],
            ) == Some(1.0)
            && expo::sum(s, "gwanje_probes_total", &[]) > 10.0
    })
    .await;
    // Space returns: it recovers by itself.
    std::fs::remove_file(&dir).unwrap();
    d.scrape_until(Duration::from_secs(30), |s| {
        expo::value(s, "gwanje_journal_failing", &[]) == Some(0.0)
    })
    .await;
    assert!(!segments(&dir).is_empty());
    assert!(d.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_text_reaches_no_terminal_or_markdown_raw() {
    let web = fleet::http(fleet::app()).await;
    let cfg = config(&web, "journal");
    let mut d = Daemon::start(&cfg.config, cfg.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;
    let auth = format!("Bearer {TOKEN}");
    let r = client::request_with_body(
        "POST",
        d.addr,
        "/api/v1/groups/local/pin",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        r#"{"path": "b", "ttl": "1m", "by": "<img src=x onerror=alert(1)>"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(d.stop().success());
    let dir = cfg.dir.path().join("journal");
    // A forged record whose `by` carries a terminal sequence and a newline.
    append(
        &dir,
        &[Record::Input {
            at: gwanje::core::Timestamp(gwanje::clock::now().0),
            input: gwanje::core::Input::Unpin {
                group: gwanje::core::GroupName::new("local"),
                by: "x\u{1b}[2J\nFORGED line".into(),
            },
        }],
    );
    let (code, timeline, err) = replay(&dir, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!timeline.contains('\u{1b}'), "{timeline}");
    assert!(
        !timeline.lines().any(|l| l.starts_with("FORGED")),
        "{timeline}"
    );
    let out = common::report(&dir);
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(!md.contains("<img"), "{md}");
    assert!(!md.contains('\u{1b}'), "{md}");
}

/// The golden journals of format version 1, copied so a test may damage them.
fn golden_v1(name: &str) -> tempfile::TempDir {
    golden("journal-v1", name)
}

/// A golden journal under `tests/fixtures/`, copied.
fn golden(version: &str, name: &str) -> tempfile::TempDir {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(version)
        .join(name);
    let to = tempfile::tempdir().unwrap();
    for s in journal::segments(&from).unwrap() {
        std::fs::copy(&s.path, to.path().join(s.path.file_name().unwrap())).unwrap();
    }
    to
}

/// Rewrites a version-1 segment frame by frame: `edit` gets each payload
/// and returns the one to keep (`None` drops the record).
fn rewrite_v1(file: &Path, edit: impl Fn(&str) -> Option<String>) {
    let bytes = std::fs::read(file).unwrap();
    assert_eq!(&bytes[..8], b"GWJ\0\x01\0\0\0", "a version-1 segment");
    let mut out = bytes[..8].to_vec();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let payload = std::str::from_utf8(&bytes[at + 8..at + 8 + len]).unwrap();
        at += 8 + len;
        if let Some(p) = edit(payload) {
            out.extend((p.len() as u32).to_le_bytes());
            out.extend(crc32fast::hash(p.as_bytes()).to_le_bytes());
            out.extend(p.as_bytes());
        }
    }
    std::fs::write(file, out).unwrap();
}

#[test]
fn the_golden_journals_of_every_older_version_replay_report_and_export() {
    for (version, name, effects, moves) in [
        (
            "journal-v1",
            "demo",
            55,
            &[
                "data-centre: traffic now flows via standby (was primary)",
                "data-centre: traffic now flows via primary (was standby); reason: failback",
                "alerts sent: ServiceDown firing {group=data-centre, service=portal, target=home}",
                "path primary diagnosed (large_packet_loss)",
            ][..],
        ),
        (
            "journal-v1",
            "operator",
            18,
            &[
                "alert PersonalDataExposed acknowledged by kim",
                "local: pinned to b by lee",
            ][..],
        ),
        (
            "journal-v2",
            "demo",
            50,
            &[
                "data-centre: traffic now flows via standby (was primary)",
                "data-centre: traffic now flows via primary (was standby); reason: failback",
            ][..],
        ),
    ] {
        let dir = golden(version, name);
        let (code, out, err) = replay(dir.path(), &["--verify"]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert_eq!(
            out.trim(),
            format!("identical: {effects} effects"),
            "{name}"
        );
        let (code, timeline, err) = replay(dir.path(), &[]);
        assert_eq!(code, 0, "{err}");
        for line in moves {
            assert!(timeline.contains(line), "{name}: {line:?} in\n{timeline}");
        }
        let report = common::report(dir.path());
        let md = std::fs::read_to_string(report.path().join("report.md")).unwrap();
        assert!(md.contains("## Timeline") && md.contains(moves[0]), "{md}");
        let out = Command::new(env!("CARGO_BIN_EXE_gwanje"))
            .args(["journal", "export", "--format", "openmetrics", "--journal"])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(
            text.contains("probe_success{") && text.contains("gwanje_group_active_path{"),
            "{name}: the export holds probes and routes"
        );
    }
}

#[test]
fn a_version_1_journal_is_verified_by_what_it_decided_not_by_its_words() {
    // Its words may change: they were never what gwanje decided.
    let dir = golden_v1("demo");
    let seg = segments(dir.path()).pop().unwrap();
    rewrite_v1(&seg, |p| {
        Some(
            p.replace("fails through every path", "is down through every path")
                .replace("\"summary\":\"", "\"summary\":\"(reworded) "),
        )
    });
    let (code, out, _) = replay(dir.path(), &["--verify"]);
    assert_eq!((code, out.trim()), (0, "identical: 55 effects"));
    // A fact it decided may not: another label on an alert sent …
    let dir = golden_v1("demo");
    let seg = segments(dir.path()).pop().unwrap();
    rewrite_v1(&seg, |p| {
        Some(
            if p.contains("\"AlertsDue\"") && p.contains("\"ServiceDown\"") {
                p.replace("\"target\":\"home\"", "\"target\":\"elsewhere\"")
            } else {
                p.to_string()
            },
        )
    });
    let (code, out, _) = replay(dir.path(), &["--verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("elsewhere"),
        "the divergence shows the record: {out}"
    );
    // … or an effect missing.
    let dir = golden_v1("demo");
    let seg = segments(dir.path()).pop().unwrap();
    let dropped = std::cell::Cell::new(false);
    rewrite_v1(&seg, |p| {
        if !dropped.get() && p.contains("\"PathDiagnosed\"") {
            dropped.set(true);
            return None;
        }
        Some(p.to_string())
    });
    assert!(dropped.get());
    let (code, out, _) = replay(dir.path(), &["--verify"]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn a_version_1_snapshot_of_the_wrong_shape_is_a_warning_not_a_crash() {
    let dir = golden_v1("operator");
    let seg = segments(dir.path()).pop().unwrap();
    rewrite_v1(&seg, |p| {
        Some(if p.starts_with("{\"record\":\"snapshot\"") {
            "{\"record\":\"snapshot\",\"at\":1,\"reason\":\"start\",\"core\":{\"alerts\":7}}"
                .to_string()
        } else {
            p.to_string()
        })
    });
    let (code, out, err) = replay(dir.path(), &["--verify"]);
    assert_ne!(code, 101, "no panic: {out}{err}");
    assert!(
        err.contains("alert book is not a mapping") && err.contains("00000000000000000002.gwj"),
        "{err}"
    );
}

/// A day of one target probed every second, failing for two seconds at
/// noon, recorded through the real journal writer and core on virtual time.
/// A day of a 100-target fleet behind two paths with its five injected
/// incidents: the benchmark's record (`benches/record.rs`), smaller.
fn a_fleet_day(dir: &Path) -> common::record::Written {
    common::record::write(
        dir,
        common::record::Shape {
            targets: 100,
            ..common::record::Shape::DAY
        },
    )
}

#[test]
fn a_two_second_outage_in_a_day_is_an_incident_and_visible_in_a_small_report() {
    let dir = tempfile::tempdir().unwrap();
    let day = a_fleet_day(dir.path());
    // Compressed, a probe result costs a few bytes on disk (goal: 25).
    assert!(day.records > day.probes, "{day:?}");
    assert!(day.bytes <= 25 * day.probes, "{day:?}");
    let report = gwanje::analysis::report::build(&day.journal, &Default::default()).unwrap();
    // Every injected failure of a service is listed as an incident of it,
    // from its first failing probe (every 10 s at most).
    for injected in day.incidents.iter().filter(|i| i.service.is_some()) {
        assert!(
            report
                .incidents
                .iter()
                .any(|i| Some(i.service.as_str()) == injected.service
                    && (injected.from..injected.from + 10_000).contains(&i.from)),
            "{injected:?} is not among {:#?}",
            report.incidents
        );
    }
    let two = day
        .incidents
        .iter()
        .find(|i| i.to - i.from == 2_000)
        .expect("the 2-second outage");
    let i = report
        .incidents
        .iter()
        .find(|i| i.service == "mobile-id")
        .expect("the mobile-ID incident");
    // Probed every second: two failures, and the third probe passes.
    assert_eq!(i.failures, 2, "{i:?}");
    assert!((two.from..two.from + 1_000).contains(&i.from), "{i:?}");
    assert_eq!(i.to, Some(i.from + 2_000), "{i:?}");
    assert!(i.alerts.contains(&"TargetDown".to_string()), "{i:?}");
    let html = report.html();
    assert!(html.len() < 1_000_000, "the page is {} bytes", html.len());
    // Its bucket of the mobile-ID plot row is a red band naming the two.
    let width = (report.to - report.from) / gwanje::analysis::buckets::BUCKETS;
    let bucket = report.from + (i.from - report.from) / width * width;
    let when = format!(
        "failed between {}",
        gwanje::analysis::summary::clock(bucket)
    );
    let at = html
        .find(&when)
        .unwrap_or_else(|| panic!("no band says {when:?}"));
    let title = &html[html[..at].rfind("<title>").unwrap()..at];
    assert!(title.starts_with("<title>2 of "), "{title}");
    let md = report.markdown();
    let incidents = md.split("## Incidents").nth(1).unwrap();
    assert!(incidents.contains("| mobile-id |"), "{md}");
    // Steady state and bursts are folded: 100-odd subjects coming up at
    // start are a few lines, 40 targets refusing at once one line.
    let timeline = md.split("## Timeline").nth(1).unwrap();
    assert!(
        timeline.matches("up on their first results").count() <= 4,
        "{timeline}"
    );
    assert!(
        timeline.contains("first failing probes of 40 subjects within 10 s: admin/"),
        "{timeline}"
    );
}

#[test]
fn a_day_s_report_opens_with_its_incidents_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let day = a_fleet_day(dir.path());
    let report = gwanje::analysis::report::build(&day.journal, &Default::default()).unwrap();
    let html = dir.path().join("report.html");
    std::fs::write(&html, report.html()).unwrap();
    let png = dir.path().join("report.png");
    let Some(dom) = common::browser::render(&html, &png) else {
        return;
    };
    // GWANJE_KEEP_REPORT=DIR keeps the screenshot (docs/images/report-day.png).
    if let Ok(keep) = std::env::var("GWANJE_KEEP_REPORT") {
        std::fs::copy(&png, Path::new(&keep).join("report-day.png")).unwrap();
    }
    assert!(
        std::fs::metadata(&png).unwrap().len() > 20_000,
        "a screenshot with content"
    );
    let incidents = dom.find("id=\"incidents\"").expect("the incident list");
    let plots = dom.find("<h2>Plots</h2>").expect("the plots");
    assert!(incidents < plots, "the incidents come first");
    for service in ["portal", "admin", "mobile-id"] {
        assert!(
            dom[incidents..plots].contains(service),
            "{service}'s incident is listed"
        );
    }
    assert!(
        dom.contains("failed between") && dom.contains("class=\"band\""),
        "the outage is a band in the downsampled plot"
    );
    assert!(
        dom.contains("Incident 1: portal") && dom.contains(": mobile-id"),
        "each incident has a section of its own"
    );
}
