//! Canary identities against the portal simulator on loopback: the race
//! that hands one citizen another's certificate is caught under
//! concurrency and names both canaries; the correct portal passes 10,000
//! requests; the wrong-field portal fails with personal_data; `gwanje
//! verify` and the API gate a release; bad canary files give located
//! errors; and no resident number or credential leaves in any output.

use crate::common;

use std::time::Duration;

use common::companions::Recorder;
use common::daemon::Daemon;
use common::plan::ConfigDir;
use gwanje::probe::identity::Load;
use gwanje::probe::{Details, ProbeContext, Prober};
use gwanje::testbed::identity_portal::{
    Account, Format, IdentityPortal, Mode, flow_yaml, hangul_accounts, synthetic_accounts,
    write_canary_file,
};

const TOKEN: &str = "identity-test-token-7c2a";
/// Beside the catalogs, not among them (`probes/*.yaml` would read it as one).
const CANARIES: &str = "../canaries/canaries.yaml";

/// A portal in `mode` and a config folder whose `portal/certificates`
/// target runs `kind` certificates through it.
struct Setup {
    portal: IdentityPortal,
    accounts: Vec<Account>,
    dir: ConfigDir,
}

impl Setup {
    async fn new(mode: Mode, canaries: usize, kind: &str, settings: &str, target: &str) -> Self {
        Self::with(synthetic_accounts(canaries), mode, kind, settings, target).await
    }

    async fn with(
        accounts: Vec<Account>,
        mode: Mode,
        kind: &str,
        settings: &str,
        target: &str,
    ) -> Self {
        Self::paced(accounts, mode, kind, settings, target, (1000, 8)).await
    }

    /// Like [`Setup::with`], the target limited to `rate` requests a second
    /// and `concurrency` flows at once.
    async fn paced(
        accounts: Vec<Account>,
        mode: Mode,
        kind: &str,
        settings: &str,
        target: &str,
        (rate, concurrency): (u32, u32),
    ) -> Self {
        let portal = IdentityPortal::start(accounts.clone(), mode).await.unwrap();
        let catalog = format!(
            "service: portal\ntargets:\n  - name: certificates\n{target}    identity:\n{}      max_requests_per_second: {rate}\n      concurrency: {concurrency}\n",
            flow_yaml(&portal.base_url(), CANARIES, kind)
        );
        let dir = ConfigDir::new(settings, &[("portal", &catalog)]);
        let canaries = dir.dir.path().join("canaries");
        std::fs::create_dir(&canaries).unwrap();
        write_canary_file(&canaries, &accounts).unwrap();
        Setup {
            portal,
            accounts,
            dir,
        }
    }

    fn prober(&self) -> Prober {
        Prober::new(self.dir.load().targets[0].clone())
    }

    /// Every resident number and credential, in each form it could be written.
    fn secrets(&self) -> Vec<String> {
        self.accounts
            .iter()
            .flat_map(|a| {
                let r = &a.resident_number;
                [
                    r.clone(),
                    format!("{}-{}", &r[..6], &r[6..]),
                    a.password.clone(),
                    a.username.clone(),
                ]
            })
            .collect()
    }

    fn assert_clean(&self, what: &str, text: &str) {
        for s in self.secrets() {
            assert!(
                !text.contains(&s),
                "{what} holds a resident number or password"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_race_is_caught_under_concurrency_and_names_both_canaries() {
    let s = Setup::new(Mode::Race, 8, "residence", "", "").await;
    let ctx = ProbeContext::new().unwrap();
    let p = s.prober();
    // One flow at a time never overlaps: the race stays hidden.
    let (failure, d) = p
        .verify(
            &ctx,
            Load {
                concurrency: 1,
                rounds: 2,
            },
        )
        .await
        .unwrap();
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(d.findings.requests, 8 * 3 * 2);
    // At 4 flows at once it shows within a few rounds.
    let (round, failure, d) = race_caught(&p, &ctx)
        .await
        .expect("the race was not caught in 20 rounds at concurrency 4");
    eprintln!("caught in round {round}: {}", failure.detail);
    assert_eq!(failure.kind, gwanje::core::FailureKind::IdentityMismatch);
    let m = &d.findings.first[0];
    assert_ne!(m.canary, m.owner);
    let ids: Vec<&str> = s.accounts.iter().map(|a| a.id.as_str()).collect();
    assert!(ids.contains(&m.canary.as_str()) && ids.contains(&m.owner.as_str()));
    assert_eq!(m.step, "download");
    assert!(
        failure.detail.contains(&format!(
            "canary {} received canary {}'s document at step download",
            m.canary, m.owner
        )),
        "{}",
        failure.detail
    );
    s.assert_clean("the failure detail", &failure.detail);
    s.assert_clean("the findings", &format!("{d:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correct_portal_gives_no_mismatch_in_10000_requests() {
    let s = Setup::new(Mode::Correct, 16, "residence", "", "").await;
    let ctx = ProbeContext::new().unwrap();
    let p = s.prober();
    let mut requests = 0;
    for _ in 0..3 {
        let (failure, d) = p
            .verify(
                &ctx,
                Load {
                    concurrency: 16,
                    rounds: 70,
                },
            )
            .await
            .unwrap();
        assert!(failure.is_none(), "{failure:?}");
        assert_eq!(d.findings.mismatches + d.findings.personal_data, 0);
        requests += d.findings.requests;
    }
    assert!(requests >= 10_000, "{requests}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_residents_number_in_the_business_number_field_is_personal_data() {
    let s = Setup::new(Mode::WrongField, 4, "tax", "", "").await;
    let ctx = ProbeContext::new().unwrap();
    let result = s.prober().run(&ctx).await;
    let failure = result.failure.expect("the wrong field must fail");
    assert_eq!(
        failure.kind,
        gwanje::core::FailureKind::PersonalData,
        "{}",
        failure.detail
    );
    assert!(
        failure.detail.contains("at step download"),
        "{}",
        failure.detail
    );
    s.assert_clean("the failure detail", &failure.detail);
    let Details::Identity(d) = &result.details else {
        panic!("identity details expected");
    };
    assert_eq!(d.findings.mismatches, 0);
    assert!(d.findings.personal_data > 0);
    // The same flow against the mended portal passes.
    s.portal.set_mode(Mode::Correct);
    let result = s.prober().run(&ctx).await;
    assert!(result.ok(), "{:?}", result.failure);
}

/// Rounds of 4 flows at once, at most 20, until one shows a mismatch: the
/// round, its failure and its details.
async fn race_caught(
    p: &Prober,
    ctx: &ProbeContext,
) -> Option<(u32, gwanje::probe::Failure, gwanje::probe::IdentityDetails)> {
    for round in 1..=20 {
        let load = Load {
            concurrency: 4,
            rounds: 1,
        };
        let (failure, d) = p.verify(ctx, load).await.unwrap();
        if d.findings.mismatches > 0 {
            return Some((round, failure.expect("a mismatch fails the run"), d));
        }
    }
    None
}

async fn verify_cli(s: &Setup, levels: &str) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .args(["verify", "--config"])
        .arg(&s.dir.config)
        .args([
            "--target",
            "portal/certificates",
            "--rounds",
            "3",
            "--concurrency",
            levels,
        ])
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gwanje_verify_fails_the_faulty_portal_and_passes_the_correct_one() {
    let s = Setup::new(Mode::Race, 8, "residence", "", "").await;
    let (code, out) = verify_cli(&s, "1,8").await;
    eprintln!("{out}");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("at concurrency 8: canary canary-"), "{out}");
    assert!(!out.contains("at concurrency 1: canary"), "{out}");
    s.assert_clean("gwanje verify's output", &out);
    s.portal.set_mode(Mode::Correct);
    let (code, out) = verify_cli(&s, "1,8").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS"), "{out}");
    // Not an identity target, or not a target: a clear error, not a pass.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gwanje"))
        .args(["verify", "--config"])
        .arg(&s.dir.config)
        .args(["--target", "portal/nothing"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no target \"portal/nothing\""));
}

/// Loads a config whose canary file is `canaries` (YAML); returns the errors.
fn canary_errors(canaries: &str, files: &[(&str, &str)]) -> String {
    let catalog = format!(
        "service: portal\ntargets:\n  - name: certificates\n    identity:\n{}",
        flow_yaml("http://127.0.0.1:9", CANARIES, "residence")
    );
    let dir = ConfigDir::new("", &[("portal", &catalog)]);
    let probes = dir.dir.path().join("canaries");
    std::fs::create_dir(&probes).unwrap();
    std::fs::write(probes.join("canaries.yaml"), canaries).unwrap();
    for (name, text) in files {
        gwanje::config::write_secret_file(&probes.join(name), text).unwrap();
    }
    match gwanje::config::load(&dir.config) {
        Ok(_) => panic!("the canary file should be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_canary_files_give_located_errors() {
    let secrets = [("u", "someone"), ("p", "pw")];
    let creds = "    credentials: {username: {file: u}, password: {file: p}}\n";
    // A canary without its display name.
    let e = canary_errors(&format!("canaries:\n  - id: canary-1\n{creds}"), &secrets);
    assert!(
        e.contains("canaries.yaml:2:") && e.contains("missing required key `name`"),
        "{e}"
    );
    // Two canaries with one id.
    let two = format!(
        "canaries:\n  - id: canary-1\n    name: Test Citizen One\n{creds}  - id: canary-1\n    name: Test Citizen Two\n{creds}"
    );
    let e = canary_errors(&two, &secrets);
    assert!(
        e.contains("canaries.yaml:5:") && e.contains("canaries[1].id"),
        "{e}"
    );
    assert!(e.contains("duplicate canary id \"canary-1\""), "{e}");
    // A credential whose file cannot be read.
    let e = canary_errors(
        &format!("canaries:\n  - id: canary-1\n    name: Test Citizen One\n{creds}"),
        &[("u", "someone")],
    );
    assert!(
        e.contains("canaries.yaml:4:") && e.contains("canaries[0].credentials.password"),
        "{e}"
    );
    assert!(e.contains("cannot read secret file"), "{e}");
    // A credential written into the file, and a step's credential a canary lacks.
    let e = canary_errors(
        "canaries:\n  - id: canary-1\n    name: Test Citizen One\n    credentials: {username: {file: u}, password: hunter2}\n",
        &secrets,
    );
    assert!(
        e.contains("canaries[0].credentials.password") && e.contains("{file: PATH}"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "a credential was echoed: {e}");
    let e = canary_errors(
        "canaries:\n  - id: canary-1\n    name: Test Citizen One\n    credentials: {username: {file: u}}\n",
        &secrets,
    );
    assert!(
        e.contains("has no credential \"password\", which step \"login\" uses"),
        "{e}"
    );
    // An invalid resident number is refused without being echoed.
    let e = canary_errors(
        &format!(
            "canaries:\n  - id: canary-1\n    name: Test Citizen One\n    resident_number: '901301-1234567'\n{creds}"
        ),
        &secrets,
    );
    assert!(
        e.contains("canaries[0].resident_number") && !e.contains("901301"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_alerts_counts_and_journals_mismatches_without_leaking_a_number() {
    let rec = Recorder::start().await;
    let settings = format!(
        "listen: 127.0.0.1:0\nadmin: {{token_file: token}}\nlogging: {{format: json, level: debug}}\njournal: {{dir: journal, fsync: always}}\n\
         alerting:\n  webhooks: [{{url: '{}'}}]\n  resend_interval: 1s\n",
        rec.server.url("/hook")
    );
    let s = Setup::new(
        Mode::Race,
        8,
        "residence",
        &settings,
        "    interval: 1s\n    timeout: 900ms\n",
    )
    .await;
    gwanje::config::write_secret_file(&s.dir.dir.path().join("token"), TOKEN).unwrap();
    let mut d = Daemon::start(&s.dir.config, s.dir.dir.path().join("gwanje.log"));
    d.wait_ready(Duration::from_secs(20)).await;

    let alert = rec
        .wait_for(Duration::from_secs(60), "IdentityMismatch", |r| {
            r.json_on("/hook")
                .into_iter()
                .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
                .find(|a| a["labels"]["alertname"] == "IdentityMismatch")
        })
        .await;
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["service"], "portal");
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(summary.contains("received canary canary-"), "{summary}");
    let metrics = d
        .scrape_until(Duration::from_secs(20), |m| {
            common::expo::value(
                m,
                "gwanje_identity_mismatches_total",
                &[("target", "certificates")],
            )
            .is_some_and(|v| v > 0.0)
        })
        .await;
    assert!(
        common::expo::value(
            &metrics,
            "gwanje_identity_requests_total",
            &[("result", "ok")]
        )
        .is_some_and(|v| v > 0.0)
    );

    // The gate from the daemon: token required, then a report.
    let path = "/api/v1/targets/portal/certificates/verify";
    let body = r#"{"rounds": 2, "concurrency": [1, 8]}"#;
    let denied = common::client::request_with_body("POST", d.addr, path, &[], body)
        .await
        .unwrap();
    assert_eq!(denied.status, 401);
    let auth = format!("Bearer {TOKEN}");
    // Out-of-bounds numbers are refused before any arithmetic on them
    // (a sum of their durations used to overflow and panic the handler).
    let huge = format!(
        r#"{{"rounds": 4294967295, "concurrency": [{}]}}"#,
        vec!["18446744073709551615"; 64].join(",")
    );
    let refused = common::client::request_with_body(
        "POST",
        d.addr,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        &huge,
    )
    .await
    .expect("an answer, not a dropped connection");
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("rounds"), "{}", refused.body);
    let ok = common::client::request_with_body(
        "POST",
        d.addr,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await
    .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    let v: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(v["verdict"], "exposed", "{v}");
    assert_eq!(v["report"]["levels"][0]["mismatches"], 0, "{v}");
    assert!(
        v["report"]["levels"][1]["mismatches"].as_u64().unwrap() > 0,
        "{v}"
    );

    // Nothing personal anywhere: log, metrics, status, alerts, journal, API.
    let status = common::client::get(d.addr, "/api/v1/status")
        .await
        .unwrap()
        .body;
    let alerts = common::client::get(d.addr, "/api/v1/alerts")
        .await
        .unwrap()
        .body;
    let scrape = common::client::get(d.addr, "/metrics").await.unwrap().body;
    d.stop();
    let log = std::fs::read_to_string(s.dir.dir.path().join("gwanje.log")).unwrap();
    assert!(
        log.contains("identity_mismatch"),
        "the log should say what failed"
    );
    let hooks = serde_json::to_string(&rec.json_on("/hook")).unwrap();
    for (what, text) in [
        ("the log", &log),
        ("the status API", &status),
        ("the alerts API", &alerts),
        ("the metrics", &scrape),
        ("the webhook payloads", &hooks),
        ("the verify answer", &ok.body),
    ] {
        s.assert_clean(what, text);
    }
    // Decoded: on disk the records are compressed.
    let text = crate::common::journal_text(&s.dir.dir.path().join("journal"));
    s.assert_clean("the journal", &text);
    let journaled = text.matches("\"owner\":\"canary-").count();
    assert!(
        journaled > 0,
        "the journal should record who received whose document"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_one_target_share_its_request_rate() {
    let s = Setup::paced(
        synthetic_accounts(4),
        Mode::Correct,
        "residence",
        "",
        "",
        (40, 4),
    )
    .await;
    let t = s.dir.load().targets[0].clone();
    let ctx = ProbeContext::new().unwrap();
    let (a, b) = (Prober::new(t.clone()), Prober::new(t));
    let load = Load {
        concurrency: 4,
        rounds: 1,
    };
    // Twice 12 requests at 40 a second: the second run waits for the first,
    // as a verification waits for the scheduled probe of the same portal.
    let start = std::time::Instant::now();
    let (ra, rb) = tokio::join!(a.verify(&ctx, load), b.verify(&ctx, load));
    let took = start.elapsed();
    for (failure, d) in [ra.unwrap(), rb.unwrap()] {
        assert!(failure.is_none(), "{failure:?}");
        assert_eq!(d.findings.requests, 12);
    }
    assert!(
        took >= Duration::from_millis(23 * 25),
        "24 requests in {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_never_makes_the_scheduled_probe_late() {
    // 40 a second, and a scheduled run of 12 requests must fit 900 ms.
    let s = Setup::paced(
        synthetic_accounts(4),
        Mode::Correct,
        "residence",
        "",
        "    timeout: 900ms\n",
        (40, 4),
    )
    .await;
    let t = s.dir.load().targets[0].clone();
    let ctx = ProbeContext::new().unwrap();
    let (verifier, scheduled) = (Prober::new(t.clone()), Prober::new(t));
    // A verification of 16 × 5 × 3 = 240 requests (6 s at 40 a second)
    // starts first and would keep its slots reserved ahead.
    let load = Load {
        concurrency: 16,
        rounds: 5,
    };
    let verify = verifier.verify(&ctx, load);
    let run = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let r = scheduled.run(&ctx).await;
        (r, started.elapsed())
    };
    let (verified, (r, took)) = tokio::join!(verify, run);
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert!(took < Duration::from_millis(900), "{took:?}");
    let (failure, d) = verified.unwrap();
    assert!(
        failure.is_none(),
        "the verification may wait, and still ends: {failure:?}"
    );
    assert_eq!(d.findings.requests, 240);
}

fn kind_of(failure: &Option<gwanje::probe::Failure>) -> Option<gwanje::core::FailureKind> {
    failure.as_ref().map(|f| f.kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_page_is_inconclusive_and_raises_nothing() {
    let s = Setup::new(Mode::ErrorPage, 8, "residence", "", "").await;
    let ctx = ProbeContext::new().unwrap();
    let load = Load {
        concurrency: 8,
        rounds: 3,
    };
    let (failure, d) = s.prober().verify(&ctx, load).await.unwrap();
    assert_eq!(
        kind_of(&failure),
        Some(gwanje::core::FailureKind::NotADocument),
        "{failure:?}"
    );
    assert_eq!((d.findings.mismatches, d.findings.personal_data), (0, 0));
    assert!(
        d.results
            .iter()
            .any(|(r, n)| *r == "not_a_document" && *n > 0)
    );
    let (code, out) = verify_cli(&s, "1,8").await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("INCONCLUSIVE") && out.contains("not_a_document"),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    s.assert_clean("gwanje verify's output", &out);
    // Without `must_match` an error page is not an exposure either.
    let catalog = s.dir.dir.path().join("probes/portal.yaml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    let without = text.replace(", must_match: ['Certificate of residence']", "");
    assert_ne!(text, without);
    std::fs::write(&catalog, without).unwrap();
    let (failure, d) = s.prober().verify(&ctx, load).await.unwrap();
    assert_eq!(
        kind_of(&failure),
        Some(gwanje::core::FailureKind::NotADocument),
        "{failure:?}"
    );
    assert_eq!((d.findings.mismatches, d.findings.personal_data), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_document_is_still_a_finding() {
    let ctx = ProbeContext::new().unwrap();
    let load = Load {
        concurrency: 4,
        rounds: 1,
    };
    // A stranger's certificate of residence carries the stranger's number.
    let s = Setup::new(Mode::Stranger, 4, "residence", "", "").await;
    let (failure, _) = s.prober().verify(&ctx, load).await.unwrap();
    assert_eq!(
        kind_of(&failure),
        Some(gwanje::core::FailureKind::PersonalData)
    );
    // A stranger's tax certificate is a document with none of the canary's markers.
    let s = Setup::new(Mode::Stranger, 4, "tax", "", "").await;
    let (failure, d) = s.prober().verify(&ctx, load).await.unwrap();
    assert_eq!(
        kind_of(&failure),
        Some(gwanje::core::FailureKind::IdentityMismatch),
        "{failure:?}"
    );
    assert_eq!(d.findings.unknown_owner, d.findings.mismatches);
    assert_eq!(
        d.findings.first[0].owner,
        gwanje::core::Mismatch::NOT_A_CANARY
    );
    let (code, out) = verify_cli(&s, "4").await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("owner unknown"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_are_read_after_decoding() {
    let ctx = ProbeContext::new().unwrap();
    for (accounts, format) in [
        (synthetic_accounts(4), Format::JsonEscaped),
        (hangul_accounts(4), Format::EucKr),
        (synthetic_accounts(4), Format::Spelled),
    ] {
        let s = Setup::with(accounts, Mode::Correct, "residence", "", "").await;
        s.portal.set_format(format);
        let p = s.prober();
        let (failure, d) = p
            .verify(
                &ctx,
                Load {
                    concurrency: 4,
                    rounds: 2,
                },
            )
            .await
            .unwrap();
        assert!(failure.is_none(), "{format:?}: {failure:?}");
        assert_eq!(d.findings.mismatches, 0, "{format:?}");
        // The race is still caught, naming both canaries.
        s.portal.set_mode(Mode::Race);
        let (_, _, d) = race_caught(&p, &ctx)
            .await
            .unwrap_or_else(|| panic!("{format:?}: the race was not caught"));
        let m = &d.findings.first[0];
        assert!(
            m.owner.starts_with("canary-") && m.owner != m.canary,
            "{format:?}: {m:?}"
        );
    }
    // The own number where it is not allowed, spelled with fullwidth
    // digits, an en dash and markup, is still personal data.
    let s = Setup::new(Mode::WrongField, 4, "tax", "", "").await;
    s.portal.set_format(Format::Spelled);
    let (failure, _) = s
        .prober()
        .verify(
            &ctx,
            Load {
                concurrency: 4,
                rounds: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        kind_of(&failure),
        Some(gwanje::core::FailureKind::PersonalData)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_of_32_puts_32_requests_in_flight_at_once() {
    let s = Setup::new(Mode::Correct, 8, "residence", "", "").await;
    // Each request takes 20 ms at the portal: a burst overlaps there.
    s.portal.set_delay(Duration::from_millis(20));
    let (code, out) = verify_cli(&s, "1,32").await;
    eprintln!("{out}");
    assert_eq!(code, 0, "{out}");
    let peak_of = |level: &str| -> u32 {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(level))
            .unwrap_or_else(|| panic!("no row for {level}: {out}"));
        row.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert!(out.contains("in flight"), "{out}");
    assert_eq!(peak_of("1"), 1, "{out}");
    assert_eq!(peak_of("32"), 32, "{out}");
    assert_eq!(s.portal.peak_in_flight(), 32, "the portal saw 32 at once");
}
