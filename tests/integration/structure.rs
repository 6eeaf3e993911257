//! The code's shape, checked: imports flow one way in both crates (no
//! cycle between files, nor between the daemon's top-level folders), the
//! core writes no sentence outside its renderer, and the engine carries out
//! every order by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every `.rs` file under `root`, with its module path (`a/b.rs` and
/// `a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` are the root).
fn modules(root: &Path) -> Vec<(Module, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(root).unwrap().with_extension("");
            let mut m: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                m.pop();
            }
            (m, f)
        })
        .collect()
}

/// The code of a file without comments and without its inline test module.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap()
        .to_string();
    text.lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules a file names through `crate::` or `super::` paths,
/// resolved to the longest module that exists.
fn imports(me: &Module, code: &str, known: &BTreeSet<Module>) -> BTreeSet<Module> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    for anchor in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(anchor) {
            let start = from + i;
            from = start + anchor.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            let rest = &code[start + anchor.len()..];
            let path: Vec<String> = rest
                .split("::")
                .map(|seg| {
                    seg.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|s| !s.is_empty())
                .collect();
            let mut target: Module = if anchor == "crate::" {
                Vec::new()
            } else {
                // `super` of `a::b` is `a`, whether `b` is a file or a folder.
                me[..me.len().saturating_sub(1)].to_vec()
            };
            target.extend(path);
            while !target.is_empty() && !known.contains(&target) {
                target.pop();
            }
            // A module's own parents are not imports of it.
            if !target.is_empty() && !me.starts_with(&target) {
                out.insert(target);
            }
        }
    }
    out
}

/// Groups of modules that import each other in a circle (Tarjan's SCCs).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct T<'a> {
        g: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Module) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let Some((w, _)) = t.g.get_key_value(w) else {
                continue;
            };
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The import graph of the crate rooted at `root`, with every module cut
/// to its first `depth` names (0: whole paths, one node per file).
fn graph(root: &Path, depth: usize) -> BTreeMap<Module, BTreeSet<Module>> {
    let mods = modules(root);
    let known: BTreeSet<Module> = mods.iter().map(|(m, _)| m.clone()).collect();
    let cut = |m: &Module| -> Module {
        if depth == 0 {
            m.clone()
        } else {
            m.iter().take(depth).cloned().collect()
        }
    };
    let mut g: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, f) in &mods {
        let deps = imports(m, &code(f), &known);
        let me = cut(m);
        let entry = g.entry(me.clone()).or_default();
        for d in deps {
            let d = cut(&d);
            if d != me && !me.starts_with(&d) {
                entry.insert(d);
            }
        }
    }
    g
}

fn show(c: &[Vec<Module>]) -> String {
    c.iter()
        .map(|comp| {
            comp.iter()
                .map(|m| m.join("::"))
                .collect::<Vec<_>>()
                .join(" ↔ ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn imports_flow_one_way_in_both_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (crate_root, depth) in [
        (root.join("crates/gwanje-core/src"), 0),
        (root.join("src"), 0),
        (root.join("src"), 1),
    ] {
        let g = graph(&crate_root, depth);
        assert!(
            g.len() > 5,
            "{}: the walk found the modules",
            crate_root.display()
        );
        let found = cycles(&g);
        assert!(
            found.is_empty(),
            "{} (depth {depth}) has import cycles:\n{}",
            crate_root.display(),
            show(&found)
        );
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let m = |s: &str| vec![s.to_string()];
    let mut g = BTreeMap::new();
    g.insert(m("a"), BTreeSet::from([m("b")]));
    g.insert(m("b"), BTreeSet::from([m("c")]));
    g.insert(m("c"), BTreeSet::from([m("a")]));
    g.insert(m("d"), BTreeSet::from([m("a")]));
    let found = cycles(&g);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 3);
    // And the import reader sees `super::` and `crate::` paths.
    let known = BTreeSet::from([m("x"), vec!["x".into(), "y".into()], m("z")]);
    let deps = imports(
        &vec!["x".into(), "w".into()],
        "use super::y::Thing;\nlet v = crate::z::f();",
        &known,
    );
    assert_eq!(
        deps,
        BTreeSet::from([vec!["x".to_string(), "y".to_string()], m("z")])
    );
}

#[test]
fn the_core_writes_no_sentence_outside_its_renderer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/gwanje-core/src");
    let mut offenders = Vec::new();
    for (m, f) in modules(&root) {
        if m.first().is_some_and(|s| s == "render") {
            continue;
        }
        let text = code(&f);
        for (i, l) in text.lines().enumerate() {
            if l.contains("format!") {
                offenders.push(format!("{}:{}", f.display(), i + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "format! outside render: {offenders:?}"
    );
}

#[test]
fn the_engine_carries_out_every_order_by_name() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine/mod.rs");
    let text = code(&file);
    let start = text
        .find("fn carry_out(")
        .expect("the engine has one place that carries out orders");
    let body = &text[start..];
    let end = body.find("\n    }\n").expect("the function ends");
    let body = &body[..end];
    assert!(
        !body.contains("_ =>"),
        "no catch-all arm: a new order must not compile until it is carried out"
    );
    for order in [
        "Order::ChangeRoute",
        "Order::ExaminePath",
        "Order::DeliverAlerts",
    ] {
        assert!(body.contains(order), "{order} is carried out by name");
    }
}
