//! DNS, TCP and ICMP probes against real servers and sockets on loopback.

use crate::common;

use common::dns;
use common::plan::probe_once;
use common::raw::{self, Behaviour};
use gwanje::core::FailureKind;
use gwanje::probe::{Details, ProbeResult};

fn kind(r: &ProbeResult) -> Option<FailureKind> {
    r.failure.as_ref().map(|f| f.kind)
}

async fn dns_probe(server: std::net::SocketAddr, name: &str, extra: &str) -> ProbeResult {
    probe_once(&format!(
        "timeout: 1s\ndns:\n  server: {server}\n  name: {name}\n{extra}"
    ))
    .await
}

fn answers(r: &ProbeResult) -> u32 {
    match &r.details {
        Details::Dns(d) => {
            assert!(d.query_succeeded && d.phases.request > 0.0, "{d:?}");
            d.answers
        }
        other => panic!("expected DNS details, got {other:?}"),
    }
}

#[tokio::test]
async fn dns_right_wrong_servfail_empty_and_silent() {
    let s = dns::serve().await;
    let expect = format!("  answers_include: [\"{}\"]", dns::OK_ADDR);

    let r = dns_probe(s.addr, "ok.test.", &expect).await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    assert_eq!(answers(&r), 1);

    let r = dns_probe(s.addr, "wrong.test.", &expect).await;
    assert_eq!(kind(&r), Some(FailureKind::Assertion), "{:?}", r.failure);

    let r = dns_probe(
        s.addr,
        "wrong.test.",
        "  answers_match: ['^198\\.18\\.0\\.']",
    )
    .await;
    assert_eq!(kind(&r), Some(FailureKind::Assertion));

    let r = dns_probe(s.addr, "servfail.test.", "").await;
    assert_eq!(kind(&r), Some(FailureKind::Rcode), "{:?}", r.failure);

    let r = dns_probe(s.addr, "empty.test.", "").await;
    assert_eq!(
        kind(&r),
        Some(FailureKind::Assertion),
        "an empty NOERROR answer fails by default"
    );
    assert_eq!(answers(&r), 0);

    let r = dns_probe(s.addr, "nx.test.", "").await;
    assert_eq!(kind(&r), Some(FailureKind::Rcode));
    let r = dns_probe(s.addr, "nx.test.", "  valid_rcodes: [NXDOMAIN]").await;
    assert_eq!(
        kind(&r),
        None,
        "NXDOMAIN can be the expected answer: {:?}",
        r.failure
    );

    let r = dns_probe(s.addr, "silent.test.", "").await;
    assert_eq!(kind(&r), Some(FailureKind::Timeout), "{:?}", r.failure);
}

#[tokio::test]
async fn dns_over_tcp() {
    let s = dns::serve().await;
    let r = dns_probe(s.addr, "ok.test.", "  protocol: tcp").await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    assert_eq!(answers(&r), 1);
}

#[tokio::test]
async fn tcp_connect_send_expect() {
    let s = raw::serve(Behaviour::Pong).await;
    let ok = format!(
        "tcp:\n  address: {}\n  exchange:\n    - send: \"PING\\r\\n\"\n    - expect: '^\\+PONG'",
        s.addr
    );
    assert_eq!(kind(&probe_once(&ok).await), None);

    let bad = format!(
        "timeout: 500ms\ntcp:\n  address: {}\n  exchange:\n    - send: \"HELLO\\r\\n\"\n    - expect: 'WELCOME'",
        s.addr
    );
    let r = probe_once(&bad).await;
    assert_eq!(kind(&r), Some(FailureKind::Timeout), "{:?}", r.failure);

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = probe_once(&format!("tcp:\n  address: {closed}")).await;
    assert_eq!(kind(&r), Some(FailureKind::Refused));
}

#[tokio::test]
async fn tcp_with_tls_reports_certificate_expiry() {
    let c = common::certs::generate();
    let s = common::fleet::https(common::fleet::app(), &c.valid).await;
    let yaml = format!(
        "tcp:\n  address: localhost:{}\n  tls: {{ca_file: {}}}",
        s.addr.port(),
        c.ca_file.display()
    );
    let r = probe_once(&yaml).await;
    assert_eq!(kind(&r), None, "{:?}", r.failure);
    let Details::Tcp(t) = &r.details else {
        panic!("tcp details")
    };
    let tls = t.tls.as_ref().unwrap();
    assert_eq!(tls.earliest_expiry, Some(c.ca_not_after));
    assert_eq!(tls.version, Some("TLS 1.3"));
    assert!(!t.failed_due_to_regex);
}

fn icmp_allowed() -> bool {
    common::is_root() || common::required("root for raw ICMP sockets")
}

#[tokio::test]
async fn icmp_to_loopback_small_and_large_with_df() {
    if !icmp_allowed() {
        return;
    }
    for extra in [
        "packets: 3",
        "packets: 4\n  payload_size: 1472\n  dont_fragment: true",
    ] {
        let r = probe_once(&format!("timeout: 1s\nicmp:\n  host: 127.0.0.1\n  {extra}")).await;
        assert_eq!(kind(&r), None, "{extra}: {:?}", r.failure);
        let Details::Icmp(d) = &r.details else {
            panic!("icmp details")
        };
        assert_eq!(d.received, d.sent);
        assert!(d.rtt_seconds.unwrap() > 0.0);
        assert_eq!(d.loss_ratio(), 0.0);
        let rtt = d.rtt.unwrap();
        assert!(rtt.min <= rtt.avg && rtt.avg <= rtt.max && rtt.stddev >= 0.0);
        assert!(d.first_rtt.is_some());
        assert_eq!(d.reply_hop_limit, Some(64), "loopback replies carry TTL 64");
    }
}
