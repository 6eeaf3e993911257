//! What another configuration would have done with the same history, as
//! differences in plain words.

use super::summary::{Summary, clock, seconds};

/// The differences between what gwanje did (`base`) and what `other` would
/// have done, one sentence each.
pub fn differences(base: &Summary, other: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    for (b, o) in base.incidents.iter().zip(&other.incidents) {
        for (what, then, now) in [
            ("path down detected", b.detected, o.detected),
            ("failover", b.switched, o.switched),
        ] {
            let line = match (then, now) {
                (Some(t), Some(n)) if t == n => continue,
                (Some(t), Some(n)) => format!(
                    "{} {what} at {} instead of {} ({} {})",
                    b.path,
                    clock(n),
                    clock(t),
                    seconds(t.abs_diff(n)),
                    if n < t { "sooner" } else { "later" }
                ),
                (None, Some(n)) => format!(
                    "{}'s incident at {}: {what} at {} (gwanje: none)",
                    b.path,
                    clock(b.start),
                    clock(n)
                ),
                (Some(t), None) => format!(
                    "{}'s incident at {}: no {what} (gwanje: at {})",
                    b.path,
                    clock(b.start),
                    clock(t)
                ),
                (None, None) => continue,
            };
            out.push(line);
        }
    }
    let (bs, os) = (base.switches.len(), other.switches.len());
    if bs != os {
        let n = bs.abs_diff(os);
        out.push(format!(
            "{n} {} switch{} ({os} instead of {bs})",
            if os < bs { "fewer" } else { "more" },
            if n == 1 { "" } else { "es" }
        ));
    }
    let (bf, of) = (base.false_switches(), other.false_switches());
    if bf != of {
        out.push(format!("{of} false switches instead of {bf}"));
    }
    let names: std::collections::BTreeSet<&String> =
        base.alerts.keys().chain(other.alerts.keys()).collect();
    for name in names {
        match (base.alerts.get(name), other.alerts.get(name)) {
            (Some(t), Some(n)) if t != n => out.push(format!(
                "{name} {} {}",
                seconds(t.abs_diff(*n)),
                if n < t { "sooner" } else { "later" }
            )),
            (Some(t), None) => out.push(format!("{name} not raised (gwanje: at {})", clock(*t))),
            (None, Some(n)) => out.push(format!("{name} raised at {} (gwanje did not)", clock(*n))),
            _ => {}
        }
    }
    if out.is_empty() {
        out.push("no difference: the same detections, switches and alerts".into());
    }
    out
}

/// What gwanje did and what another configuration would have done.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WhatIf {
    /// The recorded configuration, replayed the same way.
    pub baseline: Summary,
    /// The other configuration.
    pub what_if: Summary,
    /// The differences, one sentence each.
    pub differences: Vec<String>,
    /// How the replay re-derived what depended on gwanje's own actions.
    pub method: String,
}

/// Replays `history` through `base` and `other` and compares them.
pub fn what_if(
    history: &super::History,
    base: &crate::core::CoreConfig,
    other: &crate::core::CoreConfig,
) -> WhatIf {
    let (base_run, other_run) = std::thread::scope(|s| {
        let other = s.spawn(|| super::simulate(history, other));
        let base = super::simulate(history, base);
        (base, other.join().expect("a replay does not panic"))
    });
    let hindsight = super::summary::hindsight(history, &[&base_run, &other_run]);
    let baseline = super::summarise(&hindsight, &base_run);
    let what_if = super::summarise(&hindsight, &other_run);
    WhatIf {
        differences: differences(&baseline, &what_if),
        baseline,
        what_if,
        method: method(history),
    }
}

/// The replay's assumptions, for the reader of its result.
pub fn method(history: &super::History) -> String {
    let kernel: Vec<String> = history
        .kernel
        .iter()
        .map(|(g, (_, p))| format!("{g} via {}", p.as_ref().map_or("none", |p| p.as_str())))
        .collect();
    format!(
        "recorded probe results and operator commands replayed at their times; the kernel's route is the one gwanje first read ({}); each route change completes after {} ms (the recorded median); both runs are replayed the same way, so differences come from the configuration alone{}",
        if kernel.is_empty() {
            "none".into()
        } else {
            kernel.join(", ")
        },
        history.actuator_ms,
        if history.gaps.is_empty() {
            String::new()
        } else {
            format!("; {} gap(s) in the record stay gaps", history.gaps.len())
        }
    )
}

impl std::fmt::Display for WhatIf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = |s: &Summary| {
            format!(
                "{} incident(s), {} switch(es) ({} false), alerts: {}",
                s.incidents.len(),
                s.switches.len(),
                s.false_switches(),
                if s.alerts.is_empty() {
                    "none".to_string()
                } else {
                    s.alerts.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            )
        };
        writeln!(f, "recorded configuration: {}", line(&self.baseline))?;
        writeln!(f, "what-if configuration:  {}", line(&self.what_if))?;
        writeln!(f, "differences:")?;
        for d in &self.differences {
            writeln!(f, "  - {d}")?;
        }
        writeln!(f, "method: {}", self.method)
    }
}
