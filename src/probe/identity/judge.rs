//! Whose document is this? Checks one response against every canary's
//! markers. Answers with canary ids and a verdict, never with content.

use crate::plan::identity::{Canary, DocumentRule, Marker};
use crate::probe::body_text::normalise;
use crate::probe::personal_data::{business_numbers, registration_numbers};

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

/// Judges `text` (the response canary `own` received, decoded and in
/// canonical form: see `body_text`) at a step with `rule` (`None` when the
/// step is not a document). Markers are compared in the same form, so a
/// name sent as JSON escapes or character references, or a number with
/// Unicode dashes, fullwidth digits or markup between its groups, is read.
pub fn judge(text: &str, own: usize, canaries: &[Canary], rule: Option<&DocumentRule>) -> Verdict {
    let mut personal = false;
    for digits in registration_numbers(text) {
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
    let businesses: Vec<[u8; 10]> = business_numbers(text).collect();
    let has_business = |b: &str| {
        let d = digits(b);
        contains(text, &normalise(b)) || businesses.iter().any(|f| f[..] == *d.as_bytes())
    };
    for (i, c) in canaries.iter().enumerate() {
        let business = c.business_number.as_deref().is_some_and(has_business);
        if i != own
            && (business
                || contains(text, &normalise(&c.id))
                || contains(text, &normalise(&c.name)))
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
            Marker::Id => contains(text, &normalise(&me.id)),
            Marker::Name => contains(text, &normalise(&me.name)),
            Marker::BusinessNumber => me.business_number.as_deref().is_some_and(has_business),
            Marker::ResidentNumber => me
                .resident_number
                .as_ref()
                .is_some_and(|r| registration_numbers(text).any(|d| r.0.as_bytes() == d)),
        };
        if !present {
            return Verdict::Missing(*m);
        }
    }
    Verdict::Own
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn contains(haystack: &str, needle: &str) -> bool {
    !needle.is_empty() && haystack.contains(needle)
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
            must_match: vec![],
        };
        let mine = format!(
            "Certificate for Test Citizen Alpha, {}",
            hyphen(&c[0].resident_number.as_ref().unwrap().0)
        );
        assert_eq!(judge(&mine, 0, &c, Some(&own)), Verdict::Own);
        assert_eq!(judge(&mine, 1, &c, Some(&own)), Verdict::Mismatch(0));
        let by_number = format!("Certificate, {}", c[1].resident_number.as_ref().unwrap().0);
        assert_eq!(judge(&by_number, 0, &c, Some(&own)), Verdict::Mismatch(1));
        let by_business = "Tax certificate 2208100002";
        assert_eq!(judge(by_business, 0, &c, None), Verdict::Mismatch(1));
        assert_eq!(
            judge("Certificate for nobody", 0, &c, Some(&own)),
            Verdict::Missing(Marker::Name)
        );
    }

    #[test]
    fn own_number_where_it_is_not_allowed_and_strangers_numbers_are_personal_data() {
        let c = canaries();
        let tax = DocumentRule {
            require: vec![Marker::Name],
            allow_own: vec![],
            must_match: vec![],
        };
        let own_rrn = &c[0].resident_number.as_ref().unwrap().0;
        let wrong_field = format!("Test Citizen Alpha, business number {}", hyphen(own_rrn));
        assert_eq!(
            judge(&wrong_field, 0, &c, Some(&tax)),
            Verdict::PersonalData
        );
        let stranger = format!("Test Citizen Alpha {}", rrn("850315100003"));
        let open = DocumentRule {
            require: vec![],
            allow_own: vec![Marker::ResidentNumber],
            must_match: vec![],
        };
        assert_eq!(judge(&stranger, 0, &c, Some(&open)), Verdict::PersonalData);
        // Not a document step: no number may appear at all.
        assert_eq!(judge(&hyphen(own_rrn), 0, &c, None), Verdict::PersonalData);
    }

    #[test]
    fn markers_are_read_after_decoding_in_any_spelling() {
        let c = canaries();
        let own = DocumentRule {
            require: vec![Marker::Name],
            allow_own: vec![Marker::ResidentNumber],
            must_match: vec![],
        };
        let text = |raw: &str| crate::probe::body_text::decode(raw.as_bytes(), None).text;
        // The own name as JSON escapes and as character references.
        let escaped: String = "Test Citizen Alpha"
            .chars()
            .map(|ch| format!("\\u{:04x}", u32::from(ch)))
            .collect();
        assert_eq!(judge(&text(&escaped), 0, &c, Some(&own)), Verdict::Own);
        let refs: String = "Test Citizen Alpha"
            .chars()
            .map(|ch| format!("&#{};", u32::from(ch)))
            .collect();
        assert_eq!(judge(&text(&refs), 0, &c, Some(&own)), Verdict::Own);
        // Another canary's number in fullwidth digits with an en dash.
        let theirs = &c[1].resident_number.as_ref().unwrap().0;
        let fw: String = theirs
            .chars()
            .map(|ch| char::from_u32(u32::from(ch) + 0xFEE0).unwrap())
            .collect();
        let spelled = format!("Test Citizen Alpha {}\u{2013}{}", &fw[..18], &fw[18..]);
        assert_eq!(
            judge(&text(&spelled), 0, &c, Some(&own)),
            Verdict::Mismatch(1)
        );
        // Another canary's business number with no-break spaces.
        let business = "Test Citizen Alpha 220\u{A0}-\u{A0}81\u{A0}-\u{A0}00002";
        assert_eq!(
            judge(&text(business), 0, &c, Some(&own)),
            Verdict::Mismatch(1)
        );
    }
}
