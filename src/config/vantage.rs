//! The `vantage` and `peers` sections: who this instance is, what tells it
//! that it is cut off, and whose observations it follows.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::document::Document;
use super::error::ConfigError;
use super::raw::{RawPeer, RawVantage};
use super::values::{self, valid_name};
use crate::core::{PathName, Subject, VantageName};
use crate::plan::{
    DEFAULT_MAX_SKEW, DEFAULT_MIN_VANTAGES, GroupSpec, MAX_PEERS, MAX_SKEW, MIN_VANTAGES, PathSpec,
    PeerSpec, Service, Target, VantageSpec,
};

const NAME_RULE: &str = "valid: 1-64 characters of a-z, A-Z, 0-9, '-', '_' or '.'";

/// Validates `vantage` and `peers`; controls must name a directly probed
/// target or a path's router.
#[allow(clippy::too_many_arguments)]
pub fn vantage(
    doc: &Document,
    raw: &RawVantage,
    peers: &[RawPeer],
    dir: &Path,
    targets: &[Arc<Target>],
    paths: &[PathSpec],
    groups: &[GroupSpec],
    services: &[Service],
    errors: &mut Vec<ConfigError>,
) -> VantageSpec {
    let name = match &raw.name {
        Some(n) if valid_name(n) => VantageName::new(n),
        Some(n) => {
            errors.push(doc.error_at(
                "vantage.name",
                format!("{n:?} is not a valid vantage name; {NAME_RULE}"),
            ));
            VantageName::new("invalid")
        }
        None => VantageName::new(&host_name()),
    };
    if let Some(site) = &raw.site
        && !valid_name(site)
    {
        errors.push(doc.error_at(
            "vantage.site",
            format!("{site:?} is not a valid site name; {NAME_RULE}"),
        ));
    }
    for (k, v) in &raw.labels {
        let key_ok = !k.is_empty()
            && k.len() <= 64
            && k.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            errors.push(doc.error_at(
                &format!("vantage.labels.{k}"),
                format!("{k:?} is not a valid label name; valid: a-z, 0-9 and '_', not starting with a digit, at most 64"),
            ));
        } else if v.len() > 128 || v.chars().any(char::is_control) {
            errors.push(doc.error_at(
                &format!("vantage.labels.{k}"),
                "the value is too long or holds control characters; valid: at most 128 printable characters",
            ));
        }
    }
    let controls = raw
        .controls
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            control(
                doc,
                &format!("vantage.controls[{i}]"),
                c,
                targets,
                paths,
                groups,
                errors,
            )
        })
        .collect::<Vec<_>>();
    let unique: BTreeSet<&Subject> = controls.iter().collect();
    if unique.len() != controls.len() {
        errors.push(doc.error_at(
            "vantage.controls",
            "a control is listed twice; valid: each control once",
        ));
    }
    let min_vantages = raw.min_vantages.map_or(DEFAULT_MIN_VANTAGES, |n| {
        values::in_range(doc, "vantage.min_vantages", n, MIN_VANTAGES, "vantages")
            .map_err(|e| errors.push(e))
            .unwrap_or(DEFAULT_MIN_VANTAGES)
    });
    let max_skew = raw.max_skew.as_deref().map_or(DEFAULT_MAX_SKEW, |t| {
        match values::duration(doc, "vantage.max_skew", t, *MAX_SKEW.end()) {
            Ok(d) if d >= *MAX_SKEW.start() => d,
            Ok(_) => {
                errors.push(doc.error_at(
                    "vantage.max_skew",
                    format!("{t:?} is out of range; valid: 1s to 60s"),
                ));
                DEFAULT_MAX_SKEW
            }
            Err(e) => {
                errors.push(e);
                DEFAULT_MAX_SKEW
            }
        }
    });
    let isolation_share_permille = raw.isolation_share.and_then(|s| {
        if (0.5..=1.0).contains(&s) {
            Some((s * 1000.0).round() as u16)
        } else {
            errors.push(doc.error_at(
                "vantage.isolation_share",
                format!("{s} is out of range; valid: a fraction from 0.5 to 1.0"),
            ));
            None
        }
    });
    let peers = self::peers(doc, peers, dir, &name, errors);
    if !peers.is_empty() {
        if raw.controls.len() < 2 {
            errors.push(doc.error_at(
                "vantage.controls",
                format!(
                    "{} controls; valid: at least 2 when peers are set (e.g. each path's router as router:<path>, and a resolver), so a cut-off vantage can tell itself from an outage",
                    raw.controls.len()
                ),
            ));
        }
        let vantages = u32::try_from(peers.len() + 1).unwrap_or(u32::MAX);
        for s in services
            .iter()
            .filter(|s| s.quorum.is_some_and(|k| k > vantages))
        {
            errors.push(ConfigError {
                file: s.file.clone(),
                line: None,
                column: None,
                key: "quorum".into(),
                message: format!(
                    "{} down votes are more than the {vantages} vantages configured (this one and its peers): no target of {} could ever be down; valid: 1 to {vantages}",
                    s.quorum.unwrap_or(0),
                    s.name
                ),
            });
        }
        if min_vantages > vantages {
            errors.push(doc.error_at(
                "vantage.min_vantages",
                format!("{min_vantages} is more than the {vantages} vantages configured (this one and its peers): no verdict could ever be reached; valid: 1 to {vantages}"),
            ));
        }
    }
    VantageSpec {
        name,
        site: raw.site.clone(),
        labels: raw.labels.clone(),
        controls,
        min_vantages,
        max_skew,
        isolation_share_permille,
        peers,
    }
}

/// One control: `router:<path>` or `service/target` of a directly probed target.
fn control(
    doc: &Document,
    at: &str,
    text: &str,
    targets: &[Arc<Target>],
    paths: &[PathSpec],
    groups: &[GroupSpec],
    errors: &mut Vec<ConfigError>,
) -> Option<Subject> {
    if let Some(path) = text.strip_prefix("router:") {
        if paths.iter().any(|p| p.name.as_str() == path) {
            return Some(Subject::Router(PathName::new(path)));
        }
        let names: Vec<&str> = paths.iter().map(|p| p.name.as_str()).collect();
        errors.push(doc.error_at(
            at,
            format!(
                "no path named {path:?}; valid: router:<path> of a configured path ({})",
                if names.is_empty() {
                    "none configured".into()
                } else {
                    names.join(", ")
                }
            ),
        ));
        return None;
    }
    let Some(t) = targets.iter().find(|t| t.key.as_str() == text) else {
        errors.push(doc.error_at(
            at,
            format!("{text:?} names no target; valid: service/target of a catalog target, or router:<path>"),
        ));
        return None;
    };
    if let Some(g) = groups.iter().find(|g| g.core.checks.contains(&t.key)) {
        errors.push(doc.error_at(
            at,
            format!(
                "{text:?} is a check of group {}, probed through each of its paths; valid: a directly probed target, or router:<path>",
                g.name()
            ),
        ));
        return None;
    }
    Some(Subject::Target(t.key.clone()))
}

fn peers(
    doc: &Document,
    raw: &[RawPeer],
    dir: &Path,
    own: &VantageName,
    errors: &mut Vec<ConfigError>,
) -> Vec<PeerSpec> {
    if raw.len() > MAX_PEERS {
        errors.push(doc.error_at(
            "peers",
            format!("{} peers; valid: at most {MAX_PEERS}", raw.len()),
        ));
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let at = |key: &str| format!("peers[{i}].{key}");
        let before = errors.len();
        if !valid_name(&p.name) {
            errors.push(doc.error_at(
                &at("name"),
                format!("{:?} is not a valid vantage name; {NAME_RULE}", p.name),
            ));
        } else if p.name == own.as_str() {
            errors.push(doc.error_at(
                &at("name"),
                format!(
                    "{:?} is this instance's own vantage name; valid: another vantage's name",
                    p.name
                ),
            ));
        } else if !names.insert(p.name.clone()) {
            errors.push(doc.error_at(
                &at("name"),
                format!("peer {:?} is listed twice; valid: each peer once", p.name),
            ));
        }
        let url = match url::Url::parse(&p.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            _ => {
                errors.push(doc.error_at(
                    &at("url"),
                    format!("{:?} is not an http(s) URL; valid: the peer's API, e.g. https://198.18.2.1:9469", p.url),
                ));
                None
            }
        };
        let token_file = dir.join(&p.token_file);
        if let Err(e) = super::files::check_secret_mode(&token_file) {
            errors.push(doc.error_at(
                &at("token_file"),
                format!(
                    "cannot read {}: {e}; valid: a readable file holding the peer's observer token",
                    token_file.display()
                ),
            ));
        }
        let ca_file = p.ca_file.as_ref().map(|f| dir.join(f));
        if let Some(f) = &ca_file
            && let Err(e) = std::fs::metadata(f)
        {
            errors.push(doc.error_at(
                &at("ca_file"),
                format!(
                    "cannot read {}: {e}; valid: a PEM file of CA certificates",
                    f.display()
                ),
            ));
        }
        if let (true, Some(url)) = (errors.len() == before, url) {
            out.push(PeerSpec {
                name: VantageName::new(&p.name),
                url,
                token_file,
                ca_file,
            });
        }
    }
    out
}

/// The host's name as a vantage name (characters a name may not hold
/// become `-`).
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "gwanje".into()
    } else {
        name
    }
}
