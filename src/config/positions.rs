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

/// The most nodes aliases may add to one file when expanded, in total.
pub const MAX_ALIAS_NODES: u64 = 200_000;
/// The most scalar bytes aliases may add to one file when expanded.
pub const MAX_ALIAS_BYTES: u64 = 4 << 20;

/// The size of a node once its aliases are expanded.
#[derive(Clone, Copy, Default)]
struct Size {
    nodes: u64,
    bytes: u64,
}

impl Size {
    fn add(&mut self, o: Size) {
        self.nodes = self.nodes.saturating_add(o.nodes);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }
}

/// Why `text` is refused before any parser expands it, and where: nesting
/// deeper than [`MAX_DEPTH`], or aliases that would add more than
/// [`MAX_ALIAS_NODES`] nodes or [`MAX_ALIAS_BYTES`] bytes (an "alias
/// bomb": a few kilobytes that expand to gigabytes). One linear pass over
/// the events: each anchored node's expanded size is kept, and each alias
/// adds it, so nothing is expanded to be measured.
pub fn refuse(text: &str) -> Option<(Pos, String)> {
    let too_deep = || {
        format!(
            "nested deeper than {MAX_DEPTH} levels; valid: at most {MAX_DEPTH} levels of mappings and lists"
        )
    };
    let mut open: Vec<(usize, Size)> = Vec::new();
    let mut anchors: HashMap<usize, Size> = HashMap::new();
    let mut added = Size::default();
    let mut aliased = false;
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(e) => e,
            // The scanner looks ahead through flow nesting and gives up past
            // 255 levels before any event arrives: that is too deep as well.
            Err(e) if e.info() == "recursion limit exceeded" => {
                let at = Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                };
                return Some((at, too_deep()));
            }
            // Past an alias, what could not be measured is not handed on.
            Err(e) if aliased => {
                let at = Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                };
                return Some((at, format!("not valid YAML: {}", e.info())));
            }
            // Other syntax errors are yaml_serde's to report.
            Err(_) => return None,
        };
        let at = Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        let node = match event {
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                if open.len() >= MAX_DEPTH {
                    return Some((at, too_deep()));
                }
                open.push((anchor, Size { nodes: 1, bytes: 0 }));
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => match open.pop() {
                Some((anchor, size)) => {
                    if anchor != 0 {
                        anchors.insert(anchor, size);
                    }
                    size
                }
                None => continue,
            },
            Event::Scalar(value, _, anchor, _) => {
                let size = Size {
                    nodes: 1,
                    bytes: value.len() as u64,
                };
                if anchor != 0 {
                    anchors.insert(anchor, size);
                }
                size
            }
            Event::Alias(id) => {
                aliased = true;
                let Some(&size) = anchors.get(&id) else {
                    return Some((
                        at,
                        "an alias of a node that is not complete yet (a recursive alias); valid: aliases of earlier, complete nodes".into(),
                    ));
                };
                added.add(size);
                if added.nodes > MAX_ALIAS_NODES || added.bytes > MAX_ALIAS_BYTES {
                    return Some((
                        at,
                        format!(
                            "aliases expand this file past {MAX_ALIAS_NODES} nodes or {} MiB; valid: anchors and aliases for small shared blocks",
                            MAX_ALIAS_BYTES >> 20
                        ),
                    ));
                }
                size
            }
            _ => continue,
        };
        if let Some((_, parent)) = open.last_mut() {
            parent.add(node);
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
    fn line(text: &str) -> Option<usize> {
        super::refuse(text).map(|(p, _)| p.line)
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let n = 60_000;
        let flow = format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        assert_eq!(line(&flow), Some(1));
        let mut block = String::from("a:\n");
        for i in 1..=70 {
            block.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
        }
        assert_eq!(line(&block), Some(65));
        assert!(super::refuse(&block).unwrap().1.contains("deeper than 64"));
        assert_eq!(line("a: [[1], {b: [2]}]\n"), None);
    }

    #[test]
    fn aliases_are_measured_without_expanding_them() {
        // 2,000 scalars aliased 4,000 times: 8 million nodes, refused at the
        // alias that crosses the bound (the 101st).
        let bomb = format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["x"; 2000].join(","),
            vec!["*a"; 4000].join(",")
        );
        let (at, message) = super::refuse(&bomb).expect("refused");
        assert_eq!(at.line, 2);
        assert!(message.contains("aliases expand"), "{message}");
        // Nested anchors multiply: each level doubles the one below.
        let mut nested = String::from("l0: &l0 [x, x]\n");
        for i in 1..40 {
            nested.push_str(&format!("l{i}: &l{i} [*l{}, *l{}]\n", i - 1, i - 1));
        }
        assert!(super::refuse(&nested).is_some());
        // Shared defaults merged into many targets stay well within.
        let mut catalog = String::from("defaults: &d {interval: 1s, timeout: 500ms}\ntargets:\n");
        for i in 0..2000 {
            catalog.push_str(&format!("  - {{<<: *d, name: t{i}}}\n"));
        }
        assert_eq!(super::refuse(&catalog), None);
        assert!(super::refuse("a: &a [*a]\n").is_some(), "recursive");
    }
}
