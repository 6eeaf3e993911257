//! HTTP and HTTPS probes against real servers on 127.0.0.1.

use crate::common;

use common::certs;
use common::fleet::{self, app};
use common::plan::probe_once;
use common::raw::{self, Behaviour};
use gwanje::core::FailureKind;
use gwanje::probe::{Details, HttpDetails, ProbeResult};

fn http(r: &ProbeResult) -> &HttpDetails {
    match &r.details {
        Details::Http(h) => h,
        other => panic!("expected HTTP details, got {other:?}"),
    }
}

fn kind(r: &ProbeResult) -> Option<FailureKind> {
    r.failure.as_ref().map(|f| f.kind)
}

async fn probe(url: &str, extra: &str) -> ProbeResult {
    probe_once(&format!("timeout: 2s\nhttp:\n  url: {url}\n{extra}")).await
}

#[tokio::test]
async fn plain_page_succeeds_with_phases_status_and_length() {
    let s = fleet::http(app()).await;
    let r = probe(&s.url("/"), "  body_must_match: ['Citizen Portal']").await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    let h = http(&r);
    assert_eq!(h.status, 200);
    assert_eq!(h.version, 1.1);
    assert_eq!((h.content_length, h.body_length), (62, 62));
    assert!(!h.ssl && h.tls.is_none());
    let lookup = h.lookup.unwrap();
    assert_eq!(lookup.ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(lookup.protocol(), 4.0);
    assert!(
        h.phases.connect > 0.0 && h.phases.processing > 0.0,
        "{:?}",
        h.phases
    );
    assert_eq!(h.phases.tls, 0.0);
}

#[tokio::test]
async fn status_codes_are_checked() {
    let s = fleet::http(app()).await;
    let r = probe(&s.url("/status/503"), "").await;
    assert_eq!(kind(&r), Some(FailureKind::Status));
    assert_eq!(http(&r).status, 503);
    let r = probe(&s.url("/status/404"), "  valid_status: [404]").await;
    assert_eq!(kind(&r), None);
}

#[tokio::test]
async fn redirects_are_followed_or_not() {
    let s = fleet::http(app()).await;
    let r = probe(&s.url("/redirect"), "").await;
    assert_eq!(kind(&r), None);
    assert_eq!((http(&r).status, http(&r).redirects), (200, 1));

    let r = probe(&s.url("/redirect"), "  follow_redirects: false").await;
    assert_eq!(kind(&r), Some(FailureKind::Status));
    assert_eq!(http(&r).status, 302);

    let r = probe(&s.url("/redirect-loop"), "  max_redirects: 3").await;
    assert_eq!(kind(&r), Some(FailureKind::Protocol));
    assert_eq!(http(&r).redirects, 3);
}

#[tokio::test]
async fn body_regexes() {
    let s = fleet::http(app()).await;
    let r = probe(&s.url("/"), "  body_must_match: ['nothing like this']").await;
    assert_eq!(kind(&r), Some(FailureKind::Assertion));
    assert!(http(&r).failed_due_to_regex);

    let r = probe(
        &s.url("/maintenance"),
        "  body_must_not_match: ['(?i)maintenance']",
    )
    .await;
    assert_eq!(kind(&r), Some(FailureKind::Assertion));
    assert!(http(&r).failed_due_to_regex);

    let r = probe(&s.url("/"), "  body_must_not_match: ['(?i)maintenance']").await;
    assert_eq!(kind(&r), None);
    assert!(!http(&r).failed_due_to_regex);
}

#[tokio::test]
async fn json_assertions() {
    let s = fleet::http(app()).await;
    let ok = "  json:\n    - {pointer: /status, equals: ok}\n    - {pointer: /queue/depth, exists: true}\n    - {pointer: /queue/depth, equals: 3}";
    assert_eq!(kind(&probe(&s.url("/json"), ok).await), None);
    let r = probe(&s.url("/json-degraded"), ok).await;
    assert_eq!(kind(&r), Some(FailureKind::Assertion));
    assert!(r.failure.unwrap().detail.contains("/status"));
    let r = probe(
        &s.url("/json"),
        "  json:\n    - {pointer: /missing, exists: true}",
    )
    .await;
    assert_eq!(kind(&r), Some(FailureKind::Assertion));
    let r = probe(
        &s.url("/"),
        "  json:\n    - {pointer: /status, exists: true}",
    )
    .await;
    assert_eq!(
        kind(&r),
        Some(FailureKind::Assertion),
        "an HTML body is not JSON"
    );
}

#[tokio::test]
async fn personal_data_guard_trips_on_real_numbers_only() {
    let s = fleet::http(app()).await;
    let r = probe(&s.url("/pii"), "").await;
    assert_eq!(kind(&r), Some(FailureKind::PersonalData));
    assert!(http(&r).personal_data);
    let detail = r.failure.unwrap().detail;
    assert!(
        !detail.contains(fleet::VALID_RRN),
        "the number must never be reported: {detail}"
    );

    // However the number is written or encoded.
    for path in ["/pii-spelled", "/pii-euckr"] {
        let r = probe(&s.url(path), "").await;
        assert_eq!(kind(&r), Some(FailureKind::PersonalData), "{path}");
    }

    let r = probe(&s.url("/pii-lookalike"), "").await;
    assert_eq!(kind(&r), None, "look-alike numbers must not trip the guard");
    assert!(!http(&r).personal_data);

    let r = probe(&s.url("/pii"), "  personal_data_guard: false").await;
    assert_eq!(kind(&r), None);
}

#[tokio::test]
async fn http2_by_prior_knowledge_and_http1_only() {
    let s = fleet::http_auto(app()).await;
    let r = probe(&s.url("/version"), "  http_version: \"2\"").await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    assert_eq!(http(&r).version, 2.0);
    let r = probe(&s.url("/version"), "  http_version: \"1.1\"").await;
    assert_eq!(http(&r).version, 1.1);
}

#[tokio::test]
async fn misbehaving_servers_are_classified() {
    let hang = raw::serve(Behaviour::Hang).await;
    let r = probe_once(&format!(
        "timeout: 300ms\ninterval: 1s\nhttp:\n  url: {}",
        hang.url("/")
    ))
    .await;
    assert_eq!(kind(&r), Some(FailureKind::Timeout));
    assert!(
        r.duration.as_millis() < 1500,
        "the timeout bounds the probe: {:?}",
        r.duration
    );
    assert!(
        http(&r).phases.connect > 0.0,
        "finished phases are still reported"
    );

    let reset = raw::serve(Behaviour::Reset).await;
    assert_eq!(
        kind(&probe(&reset.url("/"), "").await),
        Some(FailureKind::Reset)
    );

    let garbage = raw::serve(Behaviour::Garbage).await;
    assert_eq!(
        kind(&probe(&garbage.url("/"), "").await),
        Some(FailureKind::Protocol)
    );

    // Nothing listens on a port we just closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = probe(&format!("http://{closed}/"), "").await;
    assert_eq!(kind(&r), Some(FailureKind::Refused));
}

#[tokio::test]
async fn endless_body_is_capped() {
    let s = raw::serve(Behaviour::EndlessBody).await;
    let r = probe(&s.url("/"), "  max_body_bytes: 200000").await;
    assert_eq!(kind(&r), Some(FailureKind::BodyTooLarge));
    let read = http(&r).body_length;
    assert!(
        read > 200_000 && read <= 200_000 + 65_536 + 16,
        "read {read} bytes"
    );
    let s = fleet::http(app()).await;
    assert_eq!(
        kind(&probe(&s.url("/big"), "  max_body_bytes: 4095").await),
        Some(FailureKind::BodyTooLarge)
    );
    assert_eq!(
        kind(&probe(&s.url("/big"), "  max_body_bytes: 4096").await),
        None
    );
}

#[tokio::test]
async fn https_with_configured_ca_reports_expiry_and_h2() {
    let c = certs::generate();
    let s = fleet::https(app(), &c.valid).await;
    let ca = c.ca_file.display();
    let r = probe(&s.https_url("/"), &format!("  tls: {{ca_file: {ca}}}")).await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    let h = http(&r);
    let tls = h.tls.as_ref().unwrap();
    // The server sends the CA too, whose notAfter comes first.
    assert_eq!(tls.earliest_expiry, Some(c.ca_not_after));
    assert_eq!(tls.chain_expiry, Some(c.ca_not_after));
    assert_eq!(tls.version, Some("TLS 1.3"));
    let leaf = tls.leaf.as_ref().unwrap();
    assert_eq!(leaf.subject, "CN=localhost");
    assert_eq!(leaf.issuer, "CN=gwanje test CA");
    assert_eq!(leaf.subject_alternative, "localhost", "DNS names only");
    assert_eq!(leaf.fingerprint_sha256.len(), 64);
    assert!(h.ssl && h.phases.tls > 0.0);
    assert_eq!(h.version, 2.0, "ALPN negotiates HTTP/2 when offered");

    let r = probe(
        &s.https_url("/"),
        &format!("  tls: {{ca_file: {ca}}}\n  http_version: \"1.1\""),
    )
    .await;
    assert_eq!(http(&r).version, 1.1);

    // Sent alone, the leaf is the earliest presented; the verified chain
    // ends at the trusted CA, which expires first.
    let s = fleet::https(app(), &c.valid_leaf_only).await;
    let r = probe(&s.https_url("/"), &format!("  tls: {{ca_file: {ca}}}")).await;
    let tls = http(&r).tls.clone().unwrap();
    assert_eq!(tls.earliest_expiry, Some(c.valid_not_after));
    assert_eq!(tls.chain_expiry, Some(c.ca_not_after));
}

#[tokio::test]
async fn https_self_signed_is_rejected_unless_trusted() {
    let c = certs::generate();
    let s = fleet::https(app(), &c.self_signed).await;
    let r = probe(&s.https_url("/"), "").await;
    assert_eq!(kind(&r), Some(FailureKind::Tls));
    let tls = http(&r).tls.clone().unwrap();
    assert!(
        tls.earliest_expiry.is_some(),
        "expiry is reported even when verification fails"
    );
    assert_eq!((tls.version, tls.chain_expiry), (None, None));
    assert!(!http(&r).ssl);

    let r = probe(&s.https_url("/"), "  tls: {insecure_skip_verify: true}").await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
}

#[tokio::test]
async fn https_expired_certificate_fails_with_its_expiry() {
    let c = certs::generate();
    let s = fleet::https(app(), &c.expired).await;
    let r = probe(
        &s.https_url("/"),
        &format!("  tls: {{ca_file: {}}}", c.ca_file.display()),
    )
    .await;
    assert_eq!(kind(&r), Some(FailureKind::Tls));
    assert!(
        r.failure
            .as_ref()
            .unwrap()
            .detail
            .to_lowercase()
            .contains("expired"),
        "{:?}",
        r.failure
    );
    // 2020-01-01T00:00:00Z
    assert_eq!(
        http(&r).tls.as_ref().unwrap().earliest_expiry,
        Some(1_577_836_800)
    );
}

#[tokio::test]
async fn server_name_override_and_ip_urls() {
    let c = certs::generate();
    let s = fleet::https(app(), &c.valid).await;
    let url = format!("https://127.0.0.1:{}/", s.addr.port());
    let ca = c.ca_file.display();
    let r = probe(
        &url,
        &format!("  tls: {{ca_file: {ca}, server_name: localhost}}"),
    )
    .await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    let r = probe(
        &url,
        &format!("  tls: {{ca_file: {ca}, server_name: portal.example}}"),
    )
    .await;
    assert_eq!(
        kind(&r),
        Some(FailureKind::Tls),
        "the certificate does not name portal.example"
    );
}

#[tokio::test]
async fn all_addresses_probes_every_backend() {
    // The resolver answers `localhost` with 127.0.0.1 and ::1 (RFC 6761).
    let v4 = fleet::http(app()).await;
    let port = v4.addr.port();
    let url = format!("http://localhost:{port}/");
    let Ok(v6) = fleet::http_on(format!("[::1]:{port}").parse().unwrap(), app()).await else {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    };
    let r = probe(&url, "  all_addresses: true").await;
    assert_eq!(kind(&r), None, "both backends answer: {:?}", r.failure);
    assert!(http(&r).phases.resolve > 0.0);

    // One bad backend behind the name must not hide behind the good one.
    drop(v6);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let r = probe(&url, "  all_addresses: true").await;
    assert_eq!(kind(&r), Some(FailureKind::Refused), "{:?}", r.failure);
    assert!(r.failure.as_ref().unwrap().detail.contains("::1"));
}

#[tokio::test]
async fn source_address_binding() {
    let s = fleet::http(app()).await;
    let r = probe(&s.url("/"), "  source: {address: 127.0.0.1}").await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    // An address this host does not have cannot be bound.
    let r = probe(&s.url("/"), "  source: {address: 198.18.200.200}").await;
    assert_eq!(kind(&r), Some(FailureKind::Unreachable), "{:?}", r.failure);
}
