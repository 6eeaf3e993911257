//! Alerts a single probe result raises or clears by itself: personal data
//! in a response, a canary given another canary's document, and a
//! certificate close to expiry. The observation carries
//! the facts (the failure class, the certificate's `notAfter`); the
//! arithmetic and the decision happen here, so replay reproduces them.

use super::alerts::{AlertBook, Severity};
use super::types::{FailureKind, Observation, Subject, Timestamp};

/// The labels an alert about `subject` carries: service, target, path.
fn labels(subject: &Subject) -> Option<[(&'static str, String); 3]> {
    let (key, path) = match subject {
        Subject::Target(k) => (k, ""),
        Subject::Check(k, p) => (k, p.as_str()),
        Subject::Router(_) => return None,
    };
    let (service, target) = key.as_str().split_once('/').unwrap_or((key.as_str(), ""));
    Some([
        ("service", service.to_string()),
        ("target", target.to_string()),
        ("path", path.to_string()),
    ])
}

/// Fires or resolves the probe-level alerts for `obs` at `now`;
/// `warning_ms` is how long before expiry a certificate warning starts.
pub fn observe(book: &mut AlertBook, now: Timestamp, obs: &Observation, warning_ms: u64) {
    let Some(owned) = labels(&obs.subject) else {
        return;
    };
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let key = match &obs.subject {
        Subject::Target(k) | Subject::Check(k, _) => k.as_str(),
        Subject::Router(_) => return,
    };
    match obs.failure {
        Some(FailureKind::PersonalData) => {
            book.fire(
                now,
                "PersonalDataExposed",
                Severity::Critical,
                &pairs,
                format!("{key}: a response carried a resident registration number"),
                format!(
                    "The probe of {key} received a response with a valid resident registration number (not logged). Treat it as a personal-data incident; the law asks for a report within 72 hours."
                ),
            );
        }
        Some(FailureKind::IdentityMismatch) => fire_mismatch(book, now, key, &pairs, obs),
        None => {
            book.resolve(now, "PersonalDataExposed", &pairs);
            // A race shows up in some rounds and not others: a clean round
            // proves little, so the alert waits for a person to have seen it.
            if book.acknowledged("IdentityMismatch", &pairs) {
                book.resolve(now, "IdentityMismatch", &pairs);
            }
        }
        Some(_) => {}
    }
    let Some(not_after) = obs.cert_not_after else {
        return;
    };
    let left_ms = not_after.saturating_mul(1000).saturating_sub(now.0 as i64);
    if left_ms < warning_ms as i64 {
        let days = left_ms as f64 / 86_400_000.0;
        book.fire(
            now,
            "CertificateExpiringSoon",
            Severity::Warning,
            &pairs,
            format!("{key}: TLS certificate expires in {days:.1} days"),
            format!(
                "The earliest certificate presented by {key} expires in {days:.1} days. Renew it before probes (and citizens) start failing."
            ),
        );
    } else {
        book.resolve(now, "CertificateExpiringSoon", &pairs);
    }
}

fn fire_mismatch(
    book: &mut AlertBook,
    now: Timestamp,
    key: &str,
    pairs: &[(&str, &str)],
    obs: &Observation,
) {
    let found = obs.identity.clone().unwrap_or_default();
    let who = found.first.first().map_or_else(
        || "a canary received a document not its own".to_string(),
        super::types::Mismatch::describe,
    );
    // Say what was seen: another canary's markers, or none of the canary's own.
    let known = found.mismatches.saturating_sub(found.unknown_owner);
    let (seen, meaning) = match (known, found.unknown_owner) {
        (0, u) if u > 0 => (
            format!(
                "{u} of {} responses in the round were documents of the step with none of the requesting canary's markers and no other canary's; gwanje cannot tell whose",
                found.requests
            ),
            "The service handed a canary a document that is not its own, possibly a real citizen's",
        ),
        (k, 0) => (
            format!(
                "{k} of {} responses in the round carried another canary's markers",
                found.requests
            ),
            "Real citizens are likely receiving each other's documents",
        ),
        (k, u) => (
            format!(
                "of {} responses in the round, {k} carried another canary's markers and {u} were documents with none of the requesting canary's markers",
                found.requests
            ),
            "Real citizens are likely receiving each other's documents",
        ),
    };
    // A new mix-up after an acknowledgement is news: page again.
    book.renotify("IdentityMismatch", pairs);
    book.fire(
        now,
        "IdentityMismatch",
        Severity::Critical,
        pairs,
        format!("{key}: {who}"),
        format!(
            "{who} ({seen}). {meaning}: stop issuance or take the release back, and treat it as a personal-data incident (the 72-hour report clock may have started). Resolves on a clean round after it is acknowledged."
        ),
    );
}
