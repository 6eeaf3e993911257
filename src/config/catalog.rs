//! Probe catalogs: one file per service, each a list of targets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::document::Document;
use super::error::ConfigError;
use super::raw::{RawCatalog, RawTarget};
use super::settings::{Inherited, Timing, inherit};
use super::target;
use super::values::valid_name;
use crate::core::TargetKey;
use crate::plan::{Service, Target};

/// Services and targets gathered from every catalog.
#[derive(Default)]
pub struct Catalogs {
    /// Services in load order.
    pub services: Vec<Service>,
    /// Targets in load order.
    pub targets: Vec<Arc<Target>>,
    seen_services: HashMap<String, PathBuf>,
}

const NAME_RULE: &str = "valid: 1-64 characters of a-z, A-Z, 0-9, '-', '_' or '.'";

impl Catalogs {
    /// Loads one catalog file, adding its errors to `errors`.
    pub fn load(&mut self, file: &Path, defaults: &Inherited, errors: &mut Vec<ConfigError>) {
        let doc = match Document::read(file) {
            Ok(d) => d,
            Err(e) => return errors.push(e),
        };
        let raw: RawCatalog = match doc.decode() {
            Ok(r) => r,
            Err(e) => return errors.push(e),
        };
        if !valid_name(&raw.service) {
            errors.push(doc.error_at(
                "service",
                format!("{:?} is not a valid service name; {NAME_RULE}", raw.service),
            ));
        }
        if let Some(first) = self.seen_services.get(&raw.service) {
            errors.push(doc.error_at(
                "service",
                format!(
                    "service {:?} is already defined in {}; valid: one catalog file per service",
                    raw.service,
                    first.display()
                ),
            ));
        }
        self.seen_services
            .insert(raw.service.clone(), file.to_path_buf());
        let timing = Timing {
            interval: raw.interval.as_deref(),
            timeout: raw.timeout.as_deref(),
            health: raw.health,
        };
        // On a bad catalog-level value keep checking the targets with the
        // defaults, so one run reports every error.
        let inherited = inherit(&doc, "", &timing, defaults, errors).unwrap_or(*defaults);
        let service: Arc<str> = raw.service.as_str().into();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut count = 0;
        for (i, each) in raw.targets.iter().enumerate() {
            let path = format!("targets[{i}]");
            let rt = match &each.0 {
                Ok(t) => t,
                Err((inner, message)) => {
                    errors.push(doc.locate(&path, inner, message));
                    continue;
                }
            };
            if !valid_name(&rt.name) {
                errors.push(doc.error_at(
                    &format!("{path}.name"),
                    format!("{:?} is not a valid target name; {NAME_RULE}", rt.name),
                ));
                continue;
            }
            if let Some(first) = names.insert(rt.name.clone(), i) {
                errors.push(doc.error_at(
                    &format!("{path}.name"),
                    format!("duplicate target name {:?} (also targets[{first}]); valid: names unique within the service", rt.name),
                ));
                continue;
            }
            if let Some(t) = build_target(&doc, &path, rt, &service, &inherited, errors) {
                self.targets.push(Arc::new(t));
                count += 1;
            }
        }
        if raw.targets.is_empty() {
            errors.push(doc.error_at("targets", "the list is empty; valid: one or more targets"));
        }
        let quorum = raw.quorum.and_then(|k| {
            super::values::in_range(&doc, "quorum", k, 1..=64, "vantages")
                .map_err(|e| errors.push(e))
                .ok()
        });
        self.services.push(Service {
            name: service,
            file: file.to_path_buf(),
            targets: count,
            quorum,
        });
    }
}

fn build_target(
    doc: &Document,
    path: &str,
    rt: &RawTarget,
    service: &Arc<str>,
    inherited: &Inherited,
    errors: &mut Vec<ConfigError>,
) -> Option<Target> {
    let timing = Timing {
        interval: rt.interval.as_deref(),
        timeout: rt.timeout.as_deref(),
        health: rt.health,
    };
    let own = inherit(doc, path, &timing, inherited, errors)?;
    let probe = target::probe(doc, path, rt, own.timeout, errors)?;
    Some(Target {
        key: TargetKey::new(service, &rt.name),
        service: service.clone(),
        name: rt.name.as_str().into(),
        interval: own.interval,
        timeout: own.timeout,
        health: own.health,
        probe,
    })
}
