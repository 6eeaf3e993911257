//! What the documentation says about the code is true: every path it names
//! exists, the README's map links every document, and the configuration
//! reference lists exactly the keys the loader accepts (asked of the loader
//! itself, which names the valid keys of every mapping it refuses a key in).

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every Markdown document: the README and `docs/`.
fn documents() -> Vec<std::path::PathBuf> {
    let mut docs = vec![root().join("README.md")];
    let mut walk = vec![root().join("docs")];
    while let Some(dir) = walk.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                docs.push(p);
            }
        }
    }
    docs.sort();
    docs
}

/// One step into a YAML document: a key of a mapping, or an item of a list.
#[derive(Clone)]
enum Step {
    Key(String),
    Item,
}

/// A document with `{__probe__: 1}` at `at` (inside `base`'s mapping).
fn probe_at(base: &str, at: &[Step]) -> String {
    let mut inner = "{__probe__: 1}".to_string();
    for s in at.iter().rev() {
        inner = match s {
            Step::Key(k) => format!("{{{k}: {inner}}}"),
            Step::Item => format!("[{inner}]"),
        };
    }
    // The outermost mapping joins the base document's keys.
    format!("{{{base}, {}", inner.trim_start_matches('{'))
}

fn key_path(at: &[Step]) -> String {
    let mut s = String::new();
    for step in at {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Step::Item => s.push_str("[]"),
        }
    }
    s
}

/// The keys the loader lists as valid where `__probe__` was put, if it
/// refused it as an unknown key there.
fn valid_keys(load: &dyn Fn(&str) -> Vec<String>, doc: &str) -> Option<Vec<String>> {
    load(doc).into_iter().find_map(|m| {
        // "valid keys are `a`, `b`", "valid: `a` or `b`", "valid: `a`".
        let rest = m.split("unknown key `__probe__`; valid").nth(1)?;
        Some(
            rest.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect(),
        )
    })
}

/// Every key path below `at` the loader accepts.
fn discover(
    load: &dyn Fn(&str) -> Vec<String>,
    base: &str,
    at: Vec<Step>,
    out: &mut BTreeSet<String>,
) {
    assert!(at.len() < 12, "no configuration nests this deep");
    let mut here = at.clone();
    let mut keys = valid_keys(load, &probe_at(base, &here));
    if keys.is_none() && !at.is_empty() {
        here.push(Step::Item);
        keys = valid_keys(load, &probe_at(base, &here));
    }
    match keys {
        None => {
            out.insert(key_path(&at));
        }
        Some(keys) => {
            if here.len() > at.len() {
                // A list of mappings: the list's own key, then its items' keys.
                out.insert(key_path(&at));
            }
            for k in keys {
                let mut next = here.clone();
                next.push(Step::Key(k));
                discover(load, base, next, out);
            }
        }
    }
}

/// The messages of loading `gwanje.yaml` = `doc` (and `catalog`, if any).
fn loader(catalog_at: Option<&'static str>) -> impl Fn(&str) -> Vec<String> {
    move |doc: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("probes")).unwrap();
        let (settings, catalog) = match catalog_at {
            None => (doc.to_string(), None),
            Some(settings) => (settings.to_string(), Some(doc.to_string())),
        };
        std::fs::write(dir.path().join("gwanje.yaml"), settings).unwrap();
        if let Some(c) = catalog {
            std::fs::write(dir.path().join("probes/svc.yaml"), c).unwrap();
        }
        match gwanje::config::load(&dir.path().join("gwanje.yaml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| e.message).collect(),
        }
    }
}

/// The keys of the daemon configuration and of a probe catalog, from the loader.
fn accepted() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut settings = BTreeSet::new();
    discover(&loader(None), "probe_files: []", Vec::new(), &mut settings);
    let mut catalog = BTreeSet::new();
    discover(
        &loader(Some("probe_files: [probes/*.yaml]\n")),
        "service: svc",
        Vec::new(),
        &mut catalog,
    );
    (settings, catalog)
}

/// The first-column keys of the reference table under `heading`.
fn documented(text: &str, heading: &str) -> BTreeSet<String> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("docs/configuration.md has {heading:?}"));
    text[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cell = l.split('|').nth(1)?.trim();
            let key = cell.strip_prefix('`')?.split('`').next()?;
            Some(key.to_string())
        })
        .collect()
}

#[test]
fn the_configuration_reference_lists_exactly_the_keys_the_loader_accepts() {
    let (settings, catalog) = accepted();
    assert!(settings.len() > 40 && catalog.len() > 40, "{settings:?}");
    assert!(settings.contains("journal.fsync") && catalog.contains("targets[].http.url"));
    let text = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    for (name, code, heading) in [
        ("gwanje.yaml", &settings, "## Every key of gwanje.yaml"),
        (
            "a probe catalog",
            &catalog,
            "## Every key of a probe catalog",
        ),
    ] {
        let doc = documented(&text, heading);
        let missing: Vec<_> = code.difference(&doc).collect();
        let stale: Vec<_> = doc.difference(code).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "{name}: keys the loader accepts but the reference does not list: {missing:?}; keys the reference lists but the loader refuses: {stale:?}"
        );
    }
}

/// Repository paths a document names: link targets and `code` spans that
/// start with a top-level folder of the repository.
fn named_paths(doc: &Path, text: &str) -> Vec<String> {
    const TOP: [&str; 12] = [
        "src/",
        "crates/",
        "tests/",
        "docs/",
        "deploy/",
        "config/",
        "scripts/",
        "benches/",
        "dashboards/",
        "probes/",
        ".ci/",
        "packaging/",
    ];
    let base = doc.parent().unwrap().strip_prefix(root()).unwrap();
    let mut out = Vec::new();
    // Links: ](target)
    for part in text.split("](").skip(1) {
        let target = part.split(')').next().unwrap_or_default();
        let target = target.split('#').next().unwrap_or_default();
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        out.push(base.join(target).to_string_lossy().into_owned());
    }
    // Code spans that name a path of the repository.
    for (i, span) in text.split('`').enumerate() {
        if i % 2 == 0 || span.contains(' ') || span.contains('\n') {
            continue;
        }
        let span = span.split(':').next().unwrap_or_default();
        if TOP.iter().any(|t| span.starts_with(t)) {
            out.push(span.to_string());
        }
    }
    out
}

/// Whether `path` (relative to the repository, `..` and globs allowed)
/// names something that exists.
fn exists(path: &str) -> bool {
    let full = root().join(path);
    if path.contains('*') || path.contains('{') || path.contains('<') {
        // A pattern: its fixed leading folder must exist.
        let fixed: String = path
            .split(['*', '{', '<'])
            .next()
            .unwrap_or_default()
            .rsplit_once('/')
            .map_or(String::new(), |(d, _)| d.to_string());
        return root().join(fixed).exists();
    }
    full.exists()
}

#[test]
fn every_path_a_document_names_exists() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for p in named_paths(&doc, &text) {
            checked += 1;
            if !exists(&p) {
                missing.push(format!("{}: {p}", doc.display()));
            }
        }
    }
    assert!(checked > 50, "the scan found the paths ({checked})");
    assert!(
        missing.is_empty(),
        "named but missing:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_readme_is_a_front_door_whose_map_links_every_document() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.lines().count() <= 220,
        "README.md has {} lines",
        readme.lines().count()
    );
    for doc in documents().iter().skip(1) {
        let rel = doc
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel.starts_with("docs/runbooks/") {
            continue;
        }
        assert!(
            readme.contains(&format!("]({rel})")),
            "the README's map links {rel}"
        );
        let text = std::fs::read_to_string(doc).unwrap();
        assert!(
            text.lines().take(6).any(|l| l.starts_with("For ")),
            "{rel} says who it is for near its top"
        );
    }
    assert!(
        readme.contains("](docs/runbooks/)"),
        "the runbooks are linked"
    );
}

#[test]
fn the_path_scanner_sees_links_and_code_spans() {
    let doc = root().join("docs/x.md");
    let found = named_paths(
        &doc,
        "see [a](failover.md#x), `src/cli/mod.rs:12` and `not a/path`",
    );
    assert_eq!(found, ["docs/failover.md", "src/cli/mod.rs"]);
    assert!(!exists("src/nothing-here.rs"));
}
