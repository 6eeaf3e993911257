//! Narrates what gwanje reports, as it changes: the active path, each
//! path's state, reason and diagnosis, services down, alerts raised and
//! resolved.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::Value;

/// The last state narrated, and every alert seen.
pub struct Watch {
    start: Instant,
    active: Option<String>,
    paths: BTreeMap<String, (String, String)>,
    diagnoses: BTreeMap<String, String>,
    down: BTreeSet<String>,
    alerts: BTreeMap<String, String>,
    /// Every alert name raised during the run.
    pub raised: BTreeSet<String>,
}

impl Watch {
    /// Starts the clock of the narration.
    pub fn new() -> Self {
        Watch {
            start: Instant::now(),
            active: None,
            paths: BTreeMap::new(),
            diagnoses: BTreeMap::new(),
            down: BTreeSet::new(),
            alerts: BTreeMap::new(),
            raised: BTreeSet::new(),
        }
    }

    /// Prints a line stamped with the time since the start.
    pub fn say(&self, text: &str) {
        println!("[{:>6.1}s] {text}", self.start.elapsed().as_secs_f64());
    }

    /// Prints what changed since the last status.
    pub fn update(&mut self, status: &Value) {
        let Some(group) = status["groups"].get(0) else {
            return;
        };
        let active = group["active_path"].as_str().map(str::to_string);
        if active != self.active {
            if let Some(now) = &active {
                match &self.active {
                    Some(was) => self.say(&format!("→ traffic now flows via {now} (was {was})")),
                    None => self.say(&format!("→ traffic flows via {now}")),
                }
            }
            self.active = active;
        }
        for p in group["paths"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let state = p["state"].as_str().unwrap_or_default().to_string();
            let reason = p["reason"].as_str().unwrap_or_default().to_string();
            let seen = (state.clone(), reason.clone());
            if self.paths.get(&name) != Some(&seen) {
                self.say(&format!("  path {name}: {state} ({reason})"));
                self.paths.insert(name.clone(), seen);
            }
            // Which box and what symptom, once the examination has told.
            let d = &p["diagnosis"];
            if let Some(summary) = d["summary"].as_str().filter(|_| d["kind"] != "unknown")
                && self.diagnoses.get(&name).map(String::as_str) != Some(summary)
            {
                self.say(&format!("  diagnosis of path {name}: {summary}"));
                self.diagnoses.insert(name, summary.to_string());
            }
        }
        let down: BTreeSet<String> = group["services_down"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        for c in down.difference(&self.down) {
            self.say(&format!(
                "  {c} fails on every path: the service, not a path"
            ));
        }
        for c in self.down.difference(&down) {
            self.say(&format!("  {c} answers again"));
        }
        self.down = down;
        let mut alerts = BTreeMap::new();
        for a in status["alerts"].as_array().into_iter().flatten() {
            let name = a["name"].as_str().unwrap_or_default().to_string();
            let id = a["id"].as_str().unwrap_or_default().to_string();
            if !self.alerts.contains_key(&id) {
                self.say(&format!(
                    "  ALERT {name} [{}]: {}",
                    a["severity"].as_str().unwrap_or_default(),
                    a["summary"].as_str().unwrap_or_default()
                ));
                self.raised.insert(name.clone());
            }
            alerts.insert(id, name);
        }
        for (id, name) in &self.alerts {
            if !alerts.contains_key(id) {
                self.say(&format!("  resolved: {name}"));
            }
        }
        self.alerts = alerts;
    }
}
