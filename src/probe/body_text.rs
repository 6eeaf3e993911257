//! A response body as the text a person reads, in one canonical form, so
//! markers and numbers are matched however the page wrote them: the
//! declared charset decoded (and the legacy Korean ones), JSON string
//! escapes and HTML character references resolved, and every dash, space
//! and fullwidth character folded. Nothing here is stored or logged.

use std::borrow::Cow;
use std::sync::LazyLock;

use encoding_rs::Encoding;

/// Why a body could not be read as text (never quotes content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undecodable {
    /// A charset gwanje does not read.
    #[error("the body declares a charset gwanje does not read ({0})")]
    UnknownCharset(String),
    /// Bytes that are not valid in the charset.
    #[error("the body is not valid {0}")]
    Malformed(&'static str),
}

/// A body as canonical text; `error` when it could only be read lossily
/// (the lossy text is still judged: a leak in a broken page is a leak).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// The canonical text.
    pub text: String,
    /// Why it was read lossily, if it was.
    pub error: Option<Undecodable>,
}

/// `text` in the one form markers are matched in: fullwidth ASCII as ASCII,
/// every dash and minus as `-`, every run of spaces (no-break, narrow,
/// ideographic, tabs, newlines) as one space, invisible characters gone.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        let c = match c {
            // Fullwidth '!'..'~' (digits U+FF10..19 and hyphen U+FF0D among them).
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' => '-',
            // Soft hyphen, Mongolian vowel separator, zero-width spaces and
            // joiners, word joiner, byte-order mark.
            '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => continue,
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        out.push(c);
    }
    out
}

/// `body` as canonical text: its charset from a byte-order mark, else the
/// Content-Type's `charset`, else a `<meta>` in its first KiB; undeclared,
/// UTF-8 or else EUC-KR/CP949. Then JSON string escapes, HTML character
/// references and [`normalise`].
pub fn decode(body: &[u8], content_type: Option<&str>) -> Text {
    let (declared, bom) = match Encoding::for_bom(body) {
        Some((e, n)) => (Ok(Some(e)), n),
        None => (declared(content_type, &body[..body.len().min(1024)]), 0),
    };
    let bytes = &body[bom..];
    let strict =
        |e: &'static Encoding| e.decode_without_bom_handling_and_without_replacement(bytes);
    let (raw, error): (Cow<'_, str>, _) = match declared {
        Ok(Some(e)) => match strict(e) {
            Some(s) => (s, None),
            None => (
                e.decode_without_bom_handling(bytes).0,
                Some(Undecodable::Malformed(e.name())),
            ),
        },
        Ok(None) => match strict(encoding_rs::UTF_8).or_else(|| strict(encoding_rs::EUC_KR)) {
            Some(s) => (s, None),
            None => (
                String::from_utf8_lossy(bytes),
                Some(Undecodable::Malformed("UTF-8")),
            ),
        },
        Err(label) => (
            String::from_utf8_lossy(bytes),
            Some(Undecodable::UnknownCharset(label)),
        ),
    };
    Text {
        text: normalise(&references(&json_escapes(&raw))),
        error,
    }
}

/// The encoding `content_type` or a `<meta>` in `head` declares; `Err`
/// with the label (printable, at most 40 characters) when gwanje cannot
/// read it.
fn declared(content_type: Option<&str>, head: &[u8]) -> Result<Option<&'static Encoding>, String> {
    static META: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
        regex::bytes::Regex::new(
            r#"(?i)<meta\b[^>]{0,512}?\bcharset\s*=\s*["']?\s*([a-z0-9_.:-]{1,40})"#,
        )
        .expect("static pattern compiles")
    });
    let from_header = content_type.and_then(|ct| {
        ct.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| v.trim().trim_matches(['"', '\'']).to_string())
        })
    });
    let label = from_header.or_else(|| {
        META.captures(head)
            .map(|c| String::from_utf8_lossy(&c[1]).into_owned())
    });
    let Some(label) = label else {
        return Ok(None);
    };
    let e = match label.to_ascii_lowercase().as_str() {
        // Code page 949 names the WHATWG label list lacks.
        "cp949" | "ms949" | "uhc" | "x-windows-949" | "euckr" => Some(encoding_rs::EUC_KR),
        l => Encoding::for_label(l.as_bytes()),
    };
    // ISO-2022-KR and the like map to WHATWG's "replacement": not readable.
    e.filter(|e| *e != encoding_rs::REPLACEMENT)
        .map(Some)
        .ok_or_else(|| {
            label
                .chars()
                .filter(char::is_ascii_graphic)
                .take(40)
                .collect()
        })
}

/// JSON string escapes resolved wherever they stand (a JSON body, a script
/// in a page); control escapes become a space.
fn json_escapes(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let hex4 = |h: &str| {
        h.get(..4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let (mut out, mut rest) = (String::with_capacity(s.len()), s);
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (c, used) = match after.as_bytes().first() {
            Some(b'u') => match hex4(&after[1..]) {
                Some(hi @ 0xD800..=0xDBFF) => {
                    match after
                        .get(5..)
                        .and_then(|r| r.strip_prefix("\\u"))
                        .and_then(hex4)
                    {
                        Some(lo @ 0xDC00..=0xDFFF) => (
                            char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)),
                            11,
                        ),
                        _ => (Some('\u{FFFD}'), 5),
                    }
                }
                Some(u) => (Some(char::from_u32(u).unwrap_or('\u{FFFD}')), 5),
                None => (None, 0),
            },
            Some(b'n' | b'r' | b't' | b'b' | b'f') => (Some(' '), 1),
            Some(&b @ (b'"' | b'\\' | b'/')) => (Some(char::from(b)), 1),
            _ => (None, 0),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// HTML character references: every numeric one, and the named ones for
/// markup, spaces and dashes. One pass, as a browser shows it.
fn references(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let (mut out, mut rest) = (String::with_capacity(s.len()), s);
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match reference(after) {
            Some((c, n)) => {
                out.push(c);
                rest = &after[n..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character the reference at the start of `s` (after `&`) stands
/// for, and how many bytes of `s` it used.
fn reference(s: &str) -> Option<(char, usize)> {
    if let Some(num) = s.strip_prefix('#') {
        let (hex, digits) = match num.strip_prefix(['x', 'X']) {
            Some(h) => (true, h),
            None => (false, num),
        };
        let len = digits
            .bytes()
            .take_while(|b| {
                if hex {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count();
        if len == 0 || len > 8 {
            return None;
        }
        let v = u32::from_str_radix(&digits[..len], if hex { 16 } else { 10 }).ok()?;
        let c = char::from_u32(v)
            .filter(|c| *c != '\0')
            .unwrap_or('\u{FFFD}');
        let used = 1 + usize::from(hex) + len + usize::from(digits[len..].starts_with(';'));
        return Some((c, used));
    }
    let len = s.bytes().take_while(u8::is_ascii_alphanumeric).count();
    s[len..].starts_with(';').then_some(())?;
    NAMED
        .iter()
        .find(|(n, _)| *n == &s[..len])
        .map(|(_, c)| (*c, len + 1))
}

const NAMED: &[(&str, char)] = &[
    ("amp", '&'),
    ("AMP", '&'),
    ("lt", '<'),
    ("LT", '<'),
    ("gt", '>'),
    ("GT", '>'),
    ("quot", '"'),
    ("QUOT", '"'),
    ("apos", '\''),
    ("nbsp", '\u{A0}'),
    ("NonBreakingSpace", '\u{A0}'),
    ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'),
    ("emsp13", '\u{2004}'),
    ("emsp14", '\u{2005}'),
    ("numsp", '\u{2007}'),
    ("puncsp", '\u{2008}'),
    ("thinsp", '\u{2009}'),
    ("ThinSpace", '\u{2009}'),
    ("hairsp", '\u{200A}'),
    ("VeryThinSpace", '\u{200A}'),
    ("MediumSpace", '\u{205F}'),
    ("ZeroWidthSpace", '\u{200B}'),
    ("zwnj", '\u{200C}'),
    ("zwj", '\u{200D}'),
    ("NoBreak", '\u{2060}'),
    ("shy", '\u{AD}'),
    ("hyphen", '\u{2010}'),
    ("dash", '\u{2010}'),
    ("ndash", '\u{2013}'),
    ("mdash", '\u{2014}'),
    ("horbar", '\u{2015}'),
    ("minus", '\u{2212}'),
    ("period", '.'),
    ("comma", ','),
    ("colon", ':'),
    ("sol", '/'),
    ("lpar", '('),
    ("rpar", ')'),
    ("num", '#'),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_spaces_dashes_and_fullwidth() {
        assert_eq!(normalise("A\u{A0}\u{A0}B"), "A B");
        assert_eq!(normalise("ＡＢＣ１"), "ABC1");
        assert_eq!(normalise("9\u{200B}0\u{2060}1"), "901");
        for dash in [
            '\u{2010}', '\u{2013}', '\u{2014}', '\u{2212}', '\u{FF0D}', '\u{FE63}',
        ] {
            assert_eq!(normalise(&format!("1{dash}2")), "1-2");
        }
    }

    #[test]
    fn reads_korean_charsets_however_they_are_declared() {
        let (bytes, _, _) = encoding_rs::EUC_KR.encode("홍길동 900101-1234568");
        for ct in [
            Some("text/html; charset=euc-kr"),
            Some("text/html; charset=ks_c_5601-1987"),
            Some("text/html; charset=\"CP949\""),
            None,
        ] {
            let t = decode(&bytes, ct);
            assert_eq!(t.text, "홍길동 900101-1234568", "{ct:?}");
            assert_eq!(t.error, None);
        }
        let mut page = b"<html><head><meta charset=\"euc-kr\"></head>".to_vec();
        page.extend_from_slice(&bytes);
        assert!(decode(&page, Some("text/html")).text.contains("홍길동"));
        // A header charset wins over <meta>, and a BOM over the header.
        let utf8 = "<meta charset=euc-kr>홍길동".as_bytes();
        assert!(
            decode(utf8, Some("text/html; charset=utf-8"))
                .text
                .contains("홍길동")
        );
        let bom = [&[0xEF, 0xBB, 0xBF][..], "홍".as_bytes()].concat();
        assert_eq!(decode(&bom, Some("text/html; charset=euc-kr")).text, "홍");
    }

    #[test]
    fn what_cannot_be_read_says_so_and_keeps_its_digits() {
        let broken = [b"900101-1234568 ".as_slice(), &[0xFF, 0xFE, 0xFD]].concat();
        let t = decode(&broken, Some("text/plain; charset=utf-8"));
        assert_eq!(t.error, Some(Undecodable::Malformed("UTF-8")));
        assert!(t.text.contains("900101-1234568"));
        for ct in [
            "text/html; charset=x-nonsense",
            "text/html; charset=iso-2022-kr",
        ] {
            assert!(
                matches!(
                    decode(b"x", Some(ct)).error,
                    Some(Undecodable::UnknownCharset(_))
                ),
                "{ct}"
            );
        }
    }

    #[test]
    fn json_escapes_and_html_references_are_resolved() {
        assert_eq!(decode(br#""\ud64d\uae38\ub3d9""#, None).text, "\"홍길동\"");
        assert_eq!(decode(br#"\ud83d\ude00"#, None).text, "😀");
        assert_eq!(decode(br#"\ud83d x"#, None).text, "\u{FFFD} x");
        assert_eq!(decode(br"\\u0041", None).text, "\\u0041");
        assert_eq!(
            decode(b"&#54861;&#xAE38;&#xd3d9;", None).text,
            "홍길\u{d3d9}"
        );
        assert_eq!(decode(b"&amp;lt;", None).text, "&lt;");
        assert_eq!(
            decode(b"&foo; &#0; &#1114112;", None).text,
            "&foo; \u{FFFD} \u{FFFD}"
        );
        assert_eq!(decode(b"900101&ndash;1234568", None).text, "900101-1234568");
        assert_eq!(decode(b"a&nbsp;&nbsp;b", None).text, "a b");
    }
}
