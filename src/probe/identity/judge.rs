//! Whose document is this? Checks one response against every canary's
//! markers. Answers with canary ids and a verdict, never with content.

use crate::plan::identity::{Canary, DocumentRule, Marker};
use crate::probe::personal_data::registration_numbers;

/// What one response showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Only the canary's own markers, and all the document needs.
    Own,
    /// Another canary's marker: the index of that canary.
    Mismatch(usize),
    /// A registration number the step may not carry (someone else's, or
    /// the canary's own where it is not allowed).
    PersonalData,
    /// A document without the canary's required marker.
    Missing(Marker),
}

/// Judges `body`, the response canary `own` received at a step with
/// `rule` (`None` when the step is not a document).
pub fn judge(body: &[u8], own: usize, canaries: &[Canary], rule: Option<&DocumentRule>) -> Verdict {
    let mut personal = false;
    for digits in registration_numbers(body) {
        let owner = canaries.iter().position(|c| {
            c.resident_number
                .as_ref()
                .is_some_and(|r| r.0.as_bytes() == digits)
        });
        match owner {
            Some(o) if o != own => return Verdict::Mismatch(o),
            Some(_) if rule.is_some_and(|r| r.allow_own.contains(&Marker::ResidentNumber)) => {}
            _ => personal = true,
        }
    }
    for (i, c) in canaries.iter().enumerate() {
        let business = c
            .business_number
            .as_ref()
            .is_some_and(|b| contains(body, b.as_bytes()) || contains_number(body, &digits(b)));
        if i != own
            && (business || contains(body, c.id.as_bytes()) || contains(body, c.name.as_bytes()))
        {
            return Verdict::Mismatch(i);
        }
    }
    if personal {
        return Verdict::PersonalData;
    }
    let me = &canaries[own];
    for m in rule.map_or(&[][..], |r| &r.require) {
        let present = match m {
            Marker::Id => contains(body, me.id.as_bytes()),
            Marker::Name => contains(body, me.name.as_bytes()),
            Marker::BusinessNumber => me.business_number.as_ref().is_some_and(|b| {
                contains(body, b.as_bytes()) || contains(body, digits(b).as_bytes())
            }),
            Marker::ResidentNumber => me
                .resident_number
                .as_ref()
                .is_some_and(|r| registration_numbers(body).any(|d| r.0.as_bytes() == d)),
        };
        if !present {
            return Verdict::Missing(*m);
        }
    }
    Verdict::Own
}

/// Whether `number` (digits) stands alone in `haystack`: not inside a
/// longer run of digits, so a date or an order number never matches.
fn contains_number(haystack: &[u8], number: &str) -> bool {
    let n = number.as_bytes();
    !n.is_empty()
        && haystack.windows(n.len()).enumerate().any(|(i, w)| {
            w == n
                && (i == 0 || !haystack[i - 1].is_ascii_digit())
                && haystack
                    .get(i + n.len())
                    .is_none_or(|c| !c.is_ascii_digit())
        })
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::identity::Secret;

    use crate::testbed::identity_portal::with_check_digit as rrn;

    fn canaries() -> Vec<Canary> {
        let mk = |id: &str, name: &str, r: &str, b: &str| Canary {
            id: id.into(),
            name: name.into(),
            resident_number: Some(Secret(rrn(r))),
            business_number: Some(b.into()),
            credentials: Default::default(),
        };
        vec![
            mk(
                "canary-01",
                "Test Citizen Alpha",
                "900101100001",
                "220-81-00001",
            ),
            mk(
                "canary-02",
                "Test Citizen Bravo",
                "900202200002",
                "220-81-00002",
            ),
        ]
    }

    fn hyphen(r: &str) -> String {
        format!("{}-{}", &r[..6], &r[6..])
    }

    #[test]
    fn own_document_passes_and_another_canarys_is_named() {
        let c = canaries();
        let own = DocumentRule {
            require: vec![Marker::Name],
            allow_own: vec![Marker::ResidentNumber],
        };
        let mine = format!(
            "Certificate for Test Citizen Alpha, {}",
            hyphen(&c[0].resident_number.as_ref().unwrap().0)
        );
        assert_eq!(judge(mine.as_bytes(), 0, &c, Some(&own)), Verdict::Own);
        assert_eq!(
            judge(mine.as_bytes(), 1, &c, Some(&own)),
            Verdict::Mismatch(0)
        );
        let by_number = format!("Certificate, {}", c[1].resident_number.as_ref().unwrap().0);
        assert_eq!(
            judge(by_number.as_bytes(), 0, &c, Some(&own)),
            Verdict::Mismatch(1)
        );
        let by_business = "Tax certificate 2208100002";
        assert_eq!(
            judge(by_business.as_bytes(), 0, &c, None),
            Verdict::Mismatch(1)
        );
        assert_eq!(
            judge(b"Certificate for nobody", 0, &c, Some(&own)),
            Verdict::Missing(Marker::Name)
        );
    }

    #[test]
    fn own_number_where_it_is_not_allowed_and_strangers_numbers_are_personal_data() {
        let c = canaries();
        let tax = DocumentRule {
            require: vec![Marker::Name],
            allow_own: vec![],
        };
        let own_rrn = &c[0].resident_number.as_ref().unwrap().0;
        let wrong_field = format!("Test Citizen Alpha, business number {}", hyphen(own_rrn));
        assert_eq!(
            judge(wrong_field.as_bytes(), 0, &c, Some(&tax)),
            Verdict::PersonalData
        );
        let stranger = format!("Test Citizen Alpha {}", rrn("850315100003"));
        let open = DocumentRule {
            require: vec![],
            allow_own: vec![Marker::ResidentNumber],
        };
        assert_eq!(
            judge(stranger.as_bytes(), 0, &c, Some(&open)),
            Verdict::PersonalData
        );
        // Not a document step: no number may appear at all.
        assert_eq!(
            judge(hyphen(own_rrn).as_bytes(), 0, &c, None),
            Verdict::PersonalData
        );
    }
}
