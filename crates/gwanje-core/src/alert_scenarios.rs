//! The alert book inside the core: acknowledgements, re-sends on the core's
//! own timer, reload outcomes, probe findings, stale route reads.

use super::sim::{Sim, group_config};
use super::*;

fn plan_with_target() -> (Core, Subject) {
    let subject = Subject::Target(TargetKey::new("portal", "home"));
    let mut core = Core::new();
    core.handle_input(
        Timestamp(0),
        Input::PlanApplied(CoreConfig {
            subjects: vec![SubjectConfig {
                subject: subject.clone(),
                policy: HealthPolicy::consecutive(1, 1),
            }],
            alerting: AlertPolicy {
                resend_ms: 1_000,
                resolved_resend_ms: 3_000,
                escalate_after_ms: 5_000,
                event_ttl_ms: 10_000,
                certificate_warning_ms: 10 * 86_400_000,
            },
            ..CoreConfig::default()
        }),
    );
    (core, subject)
}

fn effects(core: &mut Core) -> Vec<Effect> {
    std::iter::from_fn(|| core.poll_effect()).collect()
}

fn sent(effects: &[Effect]) -> Vec<(String, bool, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Order(Order::DeliverAlerts { alerts, .. }) => Some(alerts),
            _ => None,
        })
        .flatten()
        .map(|a| (a.name().to_string(), a.firing(), a.escalated))
        .collect()
}

fn probe(
    core: &mut Core,
    subject: &Subject,
    at: u64,
    failure: Option<FailureKind>,
    cert: Option<i64>,
) {
    probe_found(core, subject, at, failure, cert, None);
}

/// Like [`probe`], with what an identity round found.
fn probe_found(
    core: &mut Core,
    subject: &Subject,
    at: u64,
    failure: Option<FailureKind>,
    cert: Option<i64>,
    identity: Option<IdentityFindings>,
) {
    core.handle_input(
        Timestamp(at),
        Input::ProbeCompleted(Observation {
            subject: subject.clone(),
            at: Timestamp(at),
            failure,
            cert_not_after: cert,
            packets: None,
            duration_us: None,
            rtt_us: None,
            identity,
        }),
    );
}

#[test]
fn personal_data_pages_is_resent_on_the_core_timer_and_escalates_unless_acknowledged() {
    let (mut core, subject) = plan_with_target();
    probe(
        &mut core,
        &subject,
        100,
        Some(FailureKind::PersonalData),
        None,
    );
    let e = effects(&mut core);
    assert_eq!(sent(&e), [("PersonalDataExposed".into(), true, false)]);
    // The re-send is a timer of the core's, not an outside tick.
    assert_eq!(core.poll_timeout(), Some(Timestamp(1_100)));
    core.handle_timeout(Timestamp(1_100));
    assert_eq!(sent(&effects(&mut core)).len(), 1);
    core.handle_timeout(Timestamp(5_100));
    assert_eq!(
        sent(&effects(&mut core)),
        [("PersonalDataExposed".into(), true, true)],
        "unacknowledged critical alerts escalate"
    );

    let (mut core, subject) = plan_with_target();
    probe(
        &mut core,
        &subject,
        100,
        Some(FailureKind::PersonalData),
        None,
    );
    let id = core.alerts().next().unwrap().id.clone();
    core.handle_input(
        Timestamp(200),
        Input::AlertAcknowledged {
            id: id.clone(),
            by: "kim".into(),
        },
    );
    assert!(
        effects(&mut core).iter().any(
            |e| matches!(e, Effect::Event(Event::AlertAcknowledged { by, .. }) if by == "kim")
        )
    );
    core.handle_timeout(Timestamp(5_100));
    assert!(
        sent(&effects(&mut core))
            .iter()
            .all(|(_, _, escalated)| !escalated)
    );
    // A clean probe resolves it; the resolution is sent.
    probe(&mut core, &subject, 6_000, None, None);
    assert_eq!(
        sent(&effects(&mut core)),
        [("PersonalDataExposed".into(), false, false)]
    );
}

#[test]
fn certificates_warn_from_the_configured_time_before_expiry() {
    let (mut core, subject) = plan_with_target();
    let day = 86_400;
    probe(&mut core, &subject, 1_000, None, Some(1 + 30 * day));
    assert!(sent(&effects(&mut core)).is_empty());
    probe(&mut core, &subject, 2_000, None, Some(1 + 5 * day));
    assert_eq!(
        sent(&effects(&mut core)),
        [("CertificateExpiringSoon".into(), true, false)]
    );
}

#[test]
fn a_rejected_reload_alerts_until_a_plan_loads() {
    let (mut core, _) = plan_with_target();
    core.handle_input(Timestamp(10), Input::ReloadRejected { errors: 2 });
    assert_eq!(
        sent(&effects(&mut core)),
        [("ConfigReloadFailed".into(), true, false)]
    );
    core.handle_input(Timestamp(20), Input::PlanApplied(CoreConfig::default()));
    assert_eq!(
        sent(&effects(&mut core)),
        [("ConfigReloadFailed".into(), false, false)]
    );
}

#[test]
fn a_route_read_begun_before_the_last_change_finished_is_not_drift() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    sim.router_ok.insert("a", false);
    sim.run(3);
    assert_eq!(sim.active(), Some("b"));
    // A read that started before the move completed still shows "a".
    let before = Timestamp(sim.now - 250);
    sim.feed(
        Timestamp(sim.now),
        Input::RoutesObserved {
            group: GroupName::new("svc"),
            path: Some(PathName::new("a")),
            read_at: before,
        },
    );
    sim.drain();
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::RouteDrifted { .. }))),
        0
    );
    assert_eq!(sim.active(), Some("b"));
}

#[test]
fn identity_mismatch_names_both_canaries_and_waits_for_a_person_before_resolving() {
    let (mut core, subject) = plan_with_target();
    let findings = IdentityFindings {
        requests: 48,
        mismatches: 2,
        unknown_owner: 0,
        personal_data: 0,
        first: vec![Mismatch {
            step: "download".into(),
            canary: "canary-03".into(),
            owner: "canary-07".into(),
        }],
    };
    let round = |core: &mut Core, at: u64, found: Option<IdentityFindings>| {
        let failure = found.as_ref().map(|_| FailureKind::IdentityMismatch);
        probe_found(core, &subject, at, failure, None, found);
    };
    round(&mut core, 100, Some(findings.clone()));
    let e = effects(&mut core);
    assert_eq!(sent(&e), [("IdentityMismatch".into(), true, false)]);
    let alert = core
        .alerts()
        .find(|a| a.name().as_str() == "IdentityMismatch")
        .unwrap()
        .clone();
    assert_eq!(alert.severity(), Severity::Critical);
    let summary = crate::render::summary(&alert.kind);
    assert!(
        summary.contains("canary canary-03 received canary canary-07's document at step download"),
        "{summary}"
    );
    let description = crate::render::description(&alert.kind);
    assert!(description.contains("2 of 48"), "{description}");
    // A clean round alone does not resolve it: the race may simply not
    // have shown this time.
    round(&mut core, 200, None);
    assert!(
        core.alerts()
            .any(|a| a.name().as_str() == "IdentityMismatch" && a.firing())
    );
    core.handle_input(
        Timestamp(300),
        Input::AlertAcknowledged {
            id: alert.id.clone(),
            by: "oncall".into(),
        },
    );
    assert!(
        core.alerts()
            .any(|a| a.name().as_str() == "IdentityMismatch" && a.firing())
    );
    round(&mut core, 400, None);
    assert!(
        !core
            .alerts()
            .any(|a| a.name().as_str() == "IdentityMismatch" && a.firing())
    );
}

#[test]
fn a_directly_probed_target_that_goes_down_pages_with_its_own_alert_and_resolves() {
    let (mut core, subject) = plan_with_target();
    probe(&mut core, &subject, 100, Some(FailureKind::Refused), None);
    let e = effects(&mut core);
    assert!(
        sent(&e).contains(&("TargetDown".into(), true, false)),
        "{:?}",
        sent(&e)
    );
    let a = core
        .alerts()
        .find(|a| a.name().as_str() == "TargetDown")
        .unwrap();
    assert_eq!(a.labels()["service"], "portal");
    assert_eq!(a.labels()["target"], "home");
    let summary = crate::render::summary(&a.kind);
    assert!(
        summary.contains("portal/home is down (refused)"),
        "{summary}"
    );
    probe(&mut core, &subject, 200, None, None);
    let e = effects(&mut core);
    assert!(
        sent(&e).contains(&("TargetDown".into(), false, false)),
        "{:?}",
        sent(&e)
    );
}

#[test]
fn an_unknown_owner_is_described_as_what_was_seen_and_not_a_document_is_no_finding() {
    let (mut core, subject) = plan_with_target();
    let findings = IdentityFindings {
        requests: 48,
        mismatches: 3,
        unknown_owner: 3,
        personal_data: 0,
        first: vec![Mismatch {
            step: "download".into(),
            canary: "canary-03".into(),
            owner: Mismatch::NOT_A_CANARY.into(),
        }],
    };
    probe_found(
        &mut core,
        &subject,
        100,
        Some(FailureKind::IdentityMismatch),
        None,
        Some(findings),
    );
    let alert = core
        .alerts()
        .find(|a| a.name().as_str() == "IdentityMismatch")
        .unwrap()
        .clone();
    let (summary, description) = (
        crate::render::summary(&alert.kind),
        crate::render::description(&alert.kind),
    );
    assert!(
        !description.contains("carried another canary's markers"),
        "{description}"
    );
    assert!(
        description.contains("none of the requesting canary's markers")
            && summary.contains("owner unknown"),
        "{summary}\n{description}"
    );
    // An error page is a failed probe of its own class: no identity or
    // personal-data alert, ever.
    let (mut core, subject) = plan_with_target();
    for at in 1..=10 {
        probe_found(
            &mut core,
            &subject,
            at * 100,
            Some(FailureKind::NotADocument),
            None,
            None,
        );
    }
    let _ = effects(&mut core);
    assert!(
        !core.alerts().any(|a| matches!(
            a.name(),
            AlertName::IdentityMismatch | AlertName::PersonalDataExposed
        )),
        "no finding from an error page"
    );
    assert!(core.alerts().any(|a| a.name() == AlertName::TargetDown
        && crate::render::summary(&a.kind).contains("not_a_document")));
}
