//! The personal-data guard: finds Korean resident registration numbers.
//!
//! A probe whose response carries one fails with `personal_data`: the 2024
//! portal incident showed citizens other people's certificates. Only numbers
//! with a valid birth date, a valid sex/century digit and a valid check digit
//! count, so order numbers, phone numbers and timestamps do not trip it.
//! Nothing found is ever stored or logged: the guard answers yes or no.

use std::sync::LazyLock;

static CANDIDATE: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(r"(?:^|[^0-9])([0-9]{6})[- ]?([0-9]{7})(?:[^0-9]|$)")
        .expect("static pattern compiles")
});

const WEIGHTS: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];

/// Whether `body` contains a valid resident (or foreigner) registration number.
pub fn contains_registration_number(body: &[u8]) -> bool {
    registration_numbers(body).next().is_some()
}

/// The valid registration numbers in `body`, as their 13 digits, in order.
pub fn registration_numbers(body: &[u8]) -> impl Iterator<Item = [u8; 13]> + '_ {
    // Overlapping candidates share the separating byte, so scan from each
    // match's second digit group instead of relying on non-overlapping finds.
    let mut start = 0;
    std::iter::from_fn(move || {
        while let Some(caps) = CANDIDATE.captures_at(body, start) {
            let (a, b) = (caps.get(1).expect("group 1"), caps.get(2).expect("group 2"));
            start = a.start() + 1;
            let mut digits = [0u8; 13];
            for (i, d) in a.as_bytes().iter().chain(b.as_bytes()).enumerate() {
                digits[i] = *d;
            }
            if is_valid(&digits) {
                return Some(digits);
            }
        }
        None
    })
}

/// `text` as the 13 digits of one valid registration number (with or
/// without its hyphen), or `None`.
pub fn parse_registration_number(text: &str) -> Option<[u8; 13]> {
    let t = text.trim();
    let mut found = registration_numbers(t.as_bytes());
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

    #[test]
    fn finds_valid_numbers_in_any_form() {
        let n = with_check("900101123456");
        assert!(contains_registration_number(n.as_bytes()));
        assert!(contains_registration_number(
            format!("{{\"rrn\":\"{}\"}}", n).as_bytes()
        ));
        assert!(contains_registration_number(n.replace('-', "").as_bytes()));
        assert!(contains_registration_number(n.replace('-', " ").as_bytes()));
        let foreigner = with_check("850315512345");
        assert!(contains_registration_number(foreigner.as_bytes()));
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
            assert!(!contains_registration_number(c.as_bytes()), "{c:?}");
        }
    }

    #[test]
    fn lists_and_parses_numbers() {
        let a = with_check("900101123456");
        let b = with_check("020229412345");
        let body = format!("{a} and {}", b.replace('-', ""));
        let found: Vec<[u8; 13]> = registration_numbers(body.as_bytes()).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(Some(found[0]), parse_registration_number(&a));
        assert_eq!(Some(found[1]), parse_registration_number(&b));
        assert_eq!(parse_registration_number(&format!("x{a}")), None);
        assert_eq!(parse_registration_number("901301-1234567"), None);
    }

    #[test]
    fn finds_a_valid_number_after_an_invalid_neighbour() {
        let n = with_check("020229412345");
        let body = format!("901301-1234567 {n}");
        assert!(contains_registration_number(body.as_bytes()));
    }
}
