//! Where each key and value of a YAML document stands, by key path.
//!
//! yaml_serde gives a location only for the first syntax or type error; the
//! checks that run after parsing (timeout < interval, regexes, duplicates…)
//! still need to point at the line. This index maps key paths such as
//! `targets[2].http.url` to positions, from saphyr-parser's event stream.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    key: Option<Pos>,
    value: Option<Pos>,
}

enum Frame {
    Map {
        path: String,
        key: Option<(String, Pos)>,
    },
    Seq {
        path: String,
        index: usize,
    },
}

/// Key path → position index of one document.
#[derive(Debug, Default)]
pub struct Positions {
    entries: HashMap<String, Entry>,
}

/// Joins a parent path and a mapping key the way serde_path_to_error prints paths.
pub fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The deepest nesting of mappings and lists a file may have.
pub const MAX_DEPTH: usize = 64;

/// Where `text` first nests deeper than [`MAX_DEPTH`], if it does. One
/// linear pass that stops there, before any parser that is slow on deep
/// nesting sees the text.
pub fn too_deep(text: &str) -> Option<Pos> {
    let mut depth = 0usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(e) => e,
            // The scanner looks ahead through flow nesting and gives up past
            // 255 levels before any event arrives: that is too deep as well.
            Err(e) if e.info() == "recursion limit exceeded" => {
                return Some(Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                });
            }
            // Other syntax errors are yaml_serde's to report.
            Err(_) => return None,
        };
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(Pos {
                        line: span.start.line(),
                        column: span.start.col() + 1,
                    });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

impl Positions {
    /// Indexes `text`; a document that does not parse yields an empty index
    /// (yaml_serde reports the syntax error with its own location).
    pub fn index(text: &str) -> Self {
        let mut out = Positions::default();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let pos = Pos {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Map {
                        key: key @ None, ..
                    }) = stack.last_mut()
                    {
                        *key = Some((value.into_owned(), pos));
                    } else if let Some(path) = out.value_path(&mut stack, pos) {
                        out.entries.entry(path).or_default().value = Some(pos);
                    }
                }
                Event::Alias(_) => {
                    out.value_path(&mut stack, pos);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let path = out.value_path(&mut stack, pos).unwrap_or_default();
                    out.entries.entry(path.clone()).or_default().value = Some(pos);
                    stack.push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Map { path, key: None }
                    } else {
                        Frame::Seq { path, index: 0 }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        out
    }

    /// The path of the value that starts now, advancing the parent frame.
    fn value_path(&mut self, stack: &mut [Frame], _pos: Pos) -> Option<String> {
        match stack.last_mut()? {
            Frame::Map { path, key } => {
                let (name, key_pos) = key.take()?;
                let full = join_key(path, &name);
                self.entries.entry(full.clone()).or_default().key = Some(key_pos);
                Some(full)
            }
            Frame::Seq { path, index } => {
                let full = format!("{path}[{index}]");
                *index += 1;
                Some(full)
            }
        }
    }

    /// Position of the value at `path`, else of its nearest indexed parent.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.lookup(path, |e| e.value.or(e.key))
    }

    /// Position of the key at `path`, else of its nearest indexed parent.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.lookup(path, |e| e.key.or(e.value))
    }

    fn lookup(&self, path: &str, pick: impl Fn(&Entry) -> Option<Pos>) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.entries.get(p).and_then(&pick) {
                return Some(pos);
            }
            if p.is_empty() {
                return None;
            }
            p = match p.rfind(['.', '[']) {
                Some(i) => &p[..i],
                None => "",
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
service: portal
targets:
  - name: home
    http:
      url: https://portal.example/
  - name: dns
    dns: {server: 198.18.0.53, name: a.example}
";

    #[test]
    fn finds_nested_values_and_keys() {
        let p = Positions::index(DOC);
        assert_eq!(
            p.value("service"),
            Some(Pos {
                line: 1,
                column: 10
            })
        );
        assert_eq!(
            p.value("targets[0].http.url"),
            Some(Pos {
                line: 5,
                column: 12
            })
        );
        assert_eq!(
            p.key("targets[0].http.url"),
            Some(Pos { line: 5, column: 7 })
        );
        assert_eq!(
            p.value("targets[1].dns.name"),
            Some(Pos {
                line: 7,
                column: 38
            })
        );
    }

    #[test]
    fn falls_back_to_the_parent() {
        let p = Positions::index(DOC);
        assert_eq!(
            p.key("targets[0].http.missing"),
            Some(Pos { line: 4, column: 5 })
        );
    }
}

#[cfg(test)]
mod depth_tests {
    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let n = 60_000;
        let flow = format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        assert_eq!(super::too_deep(&flow).map(|p| p.line), Some(1));
        let mut block = String::from("a:\n");
        for i in 1..=70 {
            block.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
        }
        assert_eq!(super::too_deep(&block).map(|p| p.line), Some(65));
        assert_eq!(super::too_deep("a: [[1], {b: [2]}]\n"), None);
    }
}
