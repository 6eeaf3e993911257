//! Alerts a single probe result raises or clears by itself: personal data
//! in a response, a canary given another canary's document, and a
//! certificate close to expiry. The observation carries the facts (the
//! failure class, the certificate's `notAfter`); the arithmetic and the
//! decision happen here, so replay reproduces them.

use super::alert::{AlertKind, AlertName, Scope};
use super::alert_book::AlertBook;
use super::types::{FailureKind, Observation, Subject, Timestamp};

/// Fires or resolves the probe-level alerts for `obs` at `now`;
/// `warning_ms` is how long before expiry a certificate warning starts.
pub fn observe(book: &mut AlertBook, now: Timestamp, obs: &Observation, warning_ms: u64) {
    let (target, path) = match &obs.subject {
        Subject::Target(k) => (k.clone(), None),
        Subject::Check(k, p) => (k.clone(), Some(p.clone())),
        Subject::Router(_) => return,
    };
    let scope = Scope::Probe(target.clone(), path.clone());
    match obs.failure {
        Some(FailureKind::PersonalData) => {
            book.fire(
                now,
                AlertKind::PersonalDataExposed {
                    target: target.clone(),
                    path: path.clone(),
                },
            );
        }
        Some(FailureKind::IdentityMismatch) => {
            // A new mix-up after an acknowledgement is news: page again.
            book.renotify(AlertName::IdentityMismatch, &scope);
            book.fire(
                now,
                AlertKind::IdentityMismatch {
                    target: target.clone(),
                    path: path.clone(),
                    findings: obs.identity.clone().unwrap_or_default(),
                },
            );
        }
        None => {
            book.resolve(now, AlertName::PersonalDataExposed, &scope);
            // A race shows up in some rounds and not others: a clean round
            // proves little, so the alert waits for a person to have seen it.
            if book.acknowledged(AlertName::IdentityMismatch, &scope) {
                book.resolve(now, AlertName::IdentityMismatch, &scope);
            }
        }
        Some(_) => {}
    }
    let Some(not_after) = obs.cert_not_after else {
        return;
    };
    let left_ms = not_after.saturating_mul(1000).saturating_sub(now.0 as i64);
    if left_ms < warning_ms as i64 {
        book.fire(
            now,
            AlertKind::CertificateExpiringSoon {
                target,
                path,
                not_after,
                seen_at: now,
            },
        );
    } else {
        book.resolve(now, AlertName::CertificateExpiringSoon, &scope);
    }
}
