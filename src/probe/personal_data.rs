//! The personal-data guard: finds Korean resident registration numbers.
//!
//! A probe whose response carries one fails with `personal_data`: the 2024
//! portal incident showed citizens other people's certificates. Only numbers
//! with a valid birth date, a valid sex/century digit and a valid check digit
//! count, so order numbers, phone numbers and timestamps do not trip it.
//! Numbers are read after decoding, in any spelling: Unicode dashes and
//! minus signs, fullwidth digits, no-break and zero-width spaces, character
//! references and markup between the two groups (see `body_text`).
//! Nothing found is ever stored or logged: the guard answers yes or no.

use std::sync::LazyLock;

use super::body_text;

/// Between two digit groups: spaces and markup (tags, comments), and at
/// most one hyphen, in text as [`body_text::normalise`] leaves it.
const SEP: &str = r"(?: |<[^<>]{0,200}>){0,8}(?:-(?: |<[^<>]{0,200}>){0,8})?";

static RESIDENT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(&format!(
        r"(?:^|[^0-9])([0-9]{{6}}){SEP}([0-9]{{7}})(?:[^0-9]|$)"
    ))
    .expect("static pattern compiles")
});

static BUSINESS: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(&format!(
        r"(?:^|[^0-9])([0-9]{{3}}){SEP}([0-9]{{2}}){SEP}([0-9]{{5}})(?:[^0-9]|$)"
    ))
    .expect("static pattern compiles")
});

const WEIGHTS: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];

/// Whether `body` (decoded with `content_type`'s charset, lossily if it
/// must: a guard never fails on an odd charset) contains a valid resident
/// (or foreigner) registration number, however it is written.
pub fn contains_registration_number(body: &[u8], content_type: Option<&str>) -> bool {
    registration_numbers(&body_text::decode(body, content_type).text)
        .next()
        .is_some()
}

/// The digit groups of each match of `re` in `text`, joined; overlapping
/// candidates are all tried (each scan restarts after a match's first digit).
fn groups<'t, const N: usize>(
    re: &'static regex::Regex,
    text: &'t str,
) -> impl Iterator<Item = [u8; N]> + 't {
    let mut start = 0;
    std::iter::from_fn(move || {
        let caps = re.captures_at(text, start)?;
        let first = caps.get(1).expect("group 1");
        start = first.start() + 1;
        let mut out = [0u8; N];
        let digits = caps
            .iter()
            .skip(1)
            .flatten()
            .flat_map(|m| m.as_str().bytes());
        for (o, d) in out.iter_mut().zip(digits) {
            *o = d;
        }
        Some(out)
    })
}

/// The valid registration numbers in canonical `text` (see
/// [`body_text::normalise`]), as their 13 digits, in order.
pub fn registration_numbers(text: &str) -> impl Iterator<Item = [u8; 13]> + '_ {
    groups::<13>(&RESIDENT, text).filter(is_valid)
}

/// The business registration numbers (NNN-NN-NNNNN, however spaced or
/// hyphenated) in canonical `text`, as their 10 digits.
pub fn business_numbers(text: &str) -> impl Iterator<Item = [u8; 10]> + '_ {
    groups::<10>(&BUSINESS, text)
}

/// `text` as the 13 digits of one valid registration number (with or
/// without its hyphen, in any spelling), or `None`.
pub fn parse_registration_number(text: &str) -> Option<[u8; 13]> {
    let t = body_text::normalise(text.trim());
    let mut found = registration_numbers(&t);
    let first = found.next()?;
    let digits = t.bytes().filter(u8::is_ascii_digit).count();
    (digits == 13 && t.len() <= 14).then_some(first)
}

fn is_valid(ascii: &[u8; 13]) -> bool {
    let d = ascii.map(|c| u32::from(c - b'0'));
    let month = d[2] * 10 + d[3];
    let day = d[4] * 10 + d[5];
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(month) {
        return false;
    }
    let sum: u32 = WEIGHTS.iter().zip(&d).map(|(w, x)| w * x).sum();
    match d[6] {
        // Citizens, born 1800s (9, 0), 1900s (1, 2), 2000s (3, 4).
        0..=4 | 9 => (11 - sum % 11) % 10 == d[12],
        // Foreign residents use a shifted check digit.
        _ => (13 - sum % 11) % 10 == d[12],
    }
}

fn days_in_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a number with a correct check digit from its first 12 digits.
    fn with_check(first12: &str) -> String {
        let d: Vec<u32> = first12.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum: u32 = WEIGHTS.iter().zip(&d).map(|(w, x)| w * x).sum();
        let check = if d[6] >= 5 && d[6] <= 8 {
            (13 - sum % 11) % 10
        } else {
            (11 - sum % 11) % 10
        };
        format!("{}-{}{check}", &first12[..6], &first12[6..])
    }

    fn found(body: &str) -> bool {
        contains_registration_number(body.as_bytes(), None)
    }

    /// Fullwidth digits.
    fn fw(s: &str) -> String {
        s.chars()
            .map(|c| char::from_u32(u32::from(c) + 0xFEE0).unwrap_or(c))
            .collect()
    }

    #[test]
    fn finds_valid_numbers_in_any_form() {
        let n = with_check("900101123456");
        assert!(found(&n));
        assert!(found(&format!("{{\"rrn\":\"{}\"}}", n)));
        assert!(found(&n.replace('-', "")));
        assert!(found(&n.replace('-', " ")));
        let foreigner = with_check("850315512345");
        assert!(found(&foreigner));
    }

    #[test]
    fn every_spelling_of_a_number_is_read() {
        let n = with_check("900101123456");
        let (a, b) = (&n[..6], &n[7..]);
        let want: [u8; 13] = format!("{a}{b}").into_bytes().try_into().unwrap();
        let spellings = [
            format!("{a} - {b}"),
            format!("{a}  -  {b}"),
            format!("{a}\u{2010}{b}"),
            format!("{a}\u{2011}{b}"),
            format!("{a}\u{2012}{b}"),
            format!("{a}\u{2013}{b}"),
            format!("{a}\u{2014}{b}"),
            format!("{a}\u{2212}{b}"),
            format!("{a}\u{FE63}{b}"),
            format!("{a}\u{FF0D}{b}"),
            format!("{}\u{FF0D}{}", fw(a), fw(b)),
            format!("{a}\u{A0}-\u{A0}{b}"),
            format!("{a}\u{202F}{b}"),
            format!("{}\u{200B}{}{b}", &a[..3], &a[3..]),
            format!("{a}&#45;{b}"),
            format!("{a}&#x2D;{b}"),
            format!("{a}&ndash;{b}"),
            format!("{a}&nbsp;&minus;&nbsp;{b}"),
            format!("<span>{a}</span>-<span>{b}</span>"),
            format!("{a}<b>-</b>{b}"),
            format!("<td>{a}</td><td>{b}</td>"),
            format!("\"{a}\\u2013{b}\""),
        ];
        for s in &spellings {
            let text = body_text::decode(s.as_bytes(), None).text;
            assert_eq!(
                registration_numbers(&text).collect::<Vec<_>>(),
                vec![want],
                "{s:?}"
            );
        }
        // Lookalikes stay what they are.
        let last = n.as_bytes()[13] - b'0';
        let wrong = format!("{a}\u{2013}{}{}", &b[..6], (last + 1) % 10);
        for s in [
            wrong,
            format!("{a}--{b}"),
            format!("{a}-{b}8"),
            format!("1{a}-{b}"),
            format!("{a}.{b}"),
            "010\u{2013}1234\u{2013}5678".to_string(),
            "2024\u{2013}01\u{2013}15".to_string(),
            "1234-5678-9012-3".to_string(),
            format!("{a}-1******"),
        ] {
            assert!(!found(&s), "{s:?}");
        }
    }

    #[test]
    fn business_numbers_are_read_in_any_spelling() {
        let want = *b"2208100002";
        for s in [
            "220-81-00002",
            "220 \u{2013} 81 \u{2013} 00002",
            "２２０－８１－００００２",
            "2208100002",
            "220&#8209;81&#8209;00002",
            "<td>220</td>-<td>81</td>-<td>00002</td>",
        ] {
            let text = body_text::decode(s.as_bytes(), None).text;
            assert_eq!(
                business_numbers(&text).collect::<Vec<_>>(),
                vec![want],
                "{s}"
            );
        }
        for s in ["1220-81-00002", "220-81-000021", "22081000021"] {
            let text = body_text::decode(s.as_bytes(), None).text;
            assert_eq!(business_numbers(&text).count(), 0, "{s}");
        }
    }

    #[test]
    fn ignores_ordinary_numbers() {
        let valid = with_check("900101123456");
        let last = valid.as_bytes()[13] - b'0';
        let wrong_check = format!("{}{}", &valid[..13], (last + 1) % 10);
        let cases = [
            wrong_check.as_str(),
            "901301-1234567",       // month 13
            "900132-1234567",       // day 32
            "1764000000000",        // a millisecond timestamp
            "order 12345678901234", // 14 digits
            "tel 010-1234-5678",
            "",
        ];
        for c in cases {
            assert!(!found(c), "{c:?}");
        }
    }

    #[test]
    fn lists_and_parses_numbers() {
        let a = with_check("900101123456");
        let b = with_check("020229412345");
        let body = format!("{a} and {}", b.replace('-', ""));
        let numbers: Vec<[u8; 13]> = registration_numbers(&body).collect();
        assert_eq!(numbers.len(), 2);
        assert_eq!(Some(numbers[0]), parse_registration_number(&a));
        assert_eq!(Some(numbers[1]), parse_registration_number(&b));
        assert_eq!(parse_registration_number(&format!("x{a}")), None);
        assert_eq!(parse_registration_number("901301-1234567"), None);
    }

    #[test]
    fn finds_a_valid_number_after_an_invalid_neighbour() {
        let n = with_check("020229412345");
        let body = format!("901301-1234567 {n}");
        assert!(found(&body));
    }
}
