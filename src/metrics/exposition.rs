//! The two exposition formats Prometheus scrapes (text 0.0.4 and OpenMetrics
//! 1.0.0), chosen by the scraper's `Accept` header, and gzip when accepted.
//!
//! gwanje renders the text format; OpenMetrics differs from it, for what
//! gwanje exposes, only in counter family names (no `_total` in `# HELP` and
//! `# TYPE`), `unknown` for `untyped`, and the closing `# EOF`. Rewriting the
//! rendered lines keeps one renderer and streams chunk by chunk.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

/// Content type of the Prometheus text format.
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics 1.0.0.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header lists it with a non-zero weight
    /// above text's, else the text format (what every scraper understands).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let weight = |wanted: &str| {
            accept
                .split(',')
                .filter_map(|item| {
                    let mut parts = item.split(';').map(str::trim);
                    let media = parts.next()?;
                    if !media.eq_ignore_ascii_case(wanted) {
                        return None;
                    }
                    let q = parts
                        .filter_map(|p| p.strip_prefix("q="))
                        .find_map(|q| q.parse::<f32>().ok())
                        .unwrap_or(1.0);
                    Some(q)
                })
                .fold(0.0_f32, f32::max)
        };
        let open = weight("application/openmetrics-text");
        if open > 0.0 && open >= weight("text/plain") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT,
            Format::OpenMetrics => OPENMETRICS,
        }
    }

    /// One rendered text-format chunk (whole lines) in this format.
    pub fn convert(self, chunk: String) -> String {
        match self {
            Format::Text => chunk,
            Format::OpenMetrics => to_openmetrics(&chunk),
        }
    }

    /// What ends a body in this format.
    pub fn trailer(self) -> &'static str {
        match self {
            Format::Text => "",
            Format::OpenMetrics => "# EOF\n",
        }
    }
}

/// Rewrites text-format metadata lines into OpenMetrics ones.
fn to_openmetrics(chunk: &str) -> String {
    let lines: Vec<&str> = chunk.lines().collect();
    let mut out = String::with_capacity(chunk.len());
    for (i, line) in lines.iter().enumerate() {
        let rewritten = if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            match kind {
                "counter" => format!("# TYPE {} counter", counter_family(name)),
                "untyped" => format!("# TYPE {name} unknown"),
                _ => line.to_string(),
            }
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let is_counter = lines
                .get(i + 1)
                .is_some_and(|next| *next == format!("# TYPE {name} counter"));
            if is_counter {
                format!("# HELP {} {help}", counter_family(name))
            } else {
                line.to_string()
            }
        } else {
            line.to_string()
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    out
}

/// A counter's family name: its samples' name without `_total`.
fn counter_family(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

/// Whether `Accept-Encoding` allows gzip (listed, or `*`, with q > 0).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|header| {
        header.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
    })
}

/// Gzips a stream of chunks as it goes, so a large body is never held whole.
pub struct Gzipped<I> {
    chunks: I,
    encoder: Option<GzEncoder<Vec<u8>>>,
}

impl<I: Iterator<Item = String>> Gzipped<I> {
    /// Compresses `chunks`.
    pub fn new(chunks: I) -> Self {
        Gzipped {
            chunks,
            encoder: Some(GzEncoder::new(Vec::new(), Compression::fast())),
        }
    }
}

impl<I: Iterator<Item = String>> Iterator for Gzipped<I> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let encoder = self.encoder.as_mut()?;
        match self.chunks.next() {
            Some(chunk) => {
                encoder
                    .write_all(chunk.as_bytes())
                    .expect("writing into a Vec cannot fail");
                Some(std::mem::take(encoder.get_mut()))
            }
            None => Some(
                self.encoder
                    .take()?
                    .finish()
                    .expect("finishing into a Vec cannot fail"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMETHEUS_2_42: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    #[test]
    fn negotiates_what_the_scraper_prefers() {
        assert_eq!(
            Format::negotiate(Some(PROMETHEUS_2_42)),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("text/plain;q=1,application/openmetrics-text;q=0.5")),
            Format::Text
        );
    }

    #[test]
    fn counters_lose_total_in_metadata_only() {
        let text = "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n\
                    # HELP b A gauge.\n# TYPE b gauge\nb 1\n# HELP c_total Not a counter.\n# TYPE c_total gauge\nc_total 2\n";
        let open = Format::OpenMetrics.convert(text.to_string());
        assert_eq!(
            open,
            "# HELP a Things.\n# TYPE a counter\na_total{x=\"1\"} 3\n\
             # HELP b A gauge.\n# TYPE b gauge\nb 1\n# HELP c_total Not a counter.\n# TYPE c_total gauge\nc_total 2\n"
        );
        assert_eq!(Format::Text.convert(text.to_string()), text);
    }

    #[test]
    fn gzip_only_when_accepted() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn gzipped_stream_decompresses_to_the_chunks() {
        use std::io::Read;
        let chunks = vec!["a 1\n".to_string(), "b 2\n".repeat(1000), String::new()];
        let compressed: Vec<u8> = Gzipped::new(chunks.clone().into_iter()).flatten().collect();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, chunks.concat());
        assert!(compressed.len() < out.len() / 10);
    }
}
