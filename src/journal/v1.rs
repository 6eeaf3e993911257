//! Reading journals of format version 1 (gwanje up to the release that
//! typed its alerts): the same framing, but alerts and diagnoses carried
//! the English of their time. Inputs and timeouts read as they are; a
//! snapshot's core is upgraded to today's shape; an effect is kept as
//! recorded, and `--verify` compares it with the replayed one by what it
//! decided — the same names, labels, times, states and numbers — never by
//! its words. See `docs/journal.md` ("Versions").

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::record::{Record, RecordedV1, SnapshotReason};
use crate::core::{
    Alert, AlertKind, Core, Diagnosis, Effect, Event, Examination, GroupName, Input, Order,
    PathName, PathReason, SwitchReason, TargetKey, Timestamp, alert_id, diagnose,
};

impl RecordedV1 {
    /// Whether the replay produced what this record decided.
    pub fn decided(&self, got: &Effect) -> bool {
        self.decided == project(got)
    }

    /// The recorded effect, for a divergence report.
    pub fn shown(&self) -> String {
        self.decided.to_string()
    }
}

/// Why a version-1 record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum V1Error {
    /// Not JSON of a known record.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// A record of a kind version 1 did not write.
    #[error("a record of unknown kind {0:?}")]
    Kind(String),
    /// A part of a snapshot that is not the mapping version 1 wrote.
    #[error("a snapshot whose {0} is not a mapping")]
    Shape(&'static str),
}

/// Decodes one version-1 payload.
pub fn decode(payload: &[u8]) -> Result<Record, V1Error> {
    let mut v: Value = serde_json::from_slice(payload)?;
    if !v.is_object() {
        return Err(V1Error::Shape("record"));
    }
    let kind = v["record"].as_str().unwrap_or_default().to_string();
    Ok(match kind.as_str() {
        "snapshot" => Record::Snapshot {
            at: serde_json::from_value(v["at"].take())?,
            reason: serde_json::from_value::<SnapshotReason>(v["reason"].take())?,
            core: Box::new(upgrade_core(v["core"].take())?),
        },
        "input" => Record::Input {
            at: serde_json::from_value(v["at"].take())?,
            input: serde_json::from_value::<Input>(v["input"].take())?,
        },
        "timeout" => Record::Timeout {
            at: serde_json::from_value(v["at"].take())?,
        },
        "effect" => {
            let mut effect = v["effect"].take();
            strip_words(&mut effect);
            let upgraded = upgrade_effect(&effect);
            Record::EffectV1 {
                effect: Box::new(RecordedV1 {
                    decided: effect,
                    upgraded,
                }),
            }
        }
        other => return Err(V1Error::Kind(other.to_string())),
    })
}

/// The variant name and body of an externally tagged enum value.
fn variant(v: &Value) -> Option<(&str, &Value)> {
    let m = v.as_object()?;
    let (k, body) = m.iter().next()?;
    Some((k.as_str(), body))
}

/// Removes the English version 1 stored with its facts.
fn strip_words(effect: &mut Value) {
    let Some(m) = effect.as_object_mut() else {
        return;
    };
    if let Some(alerts) = m
        .get_mut("AlertsDue")
        .and_then(|b| b.get_mut("alerts"))
        .and_then(Value::as_array_mut)
    {
        for a in alerts.iter_mut().filter_map(Value::as_object_mut) {
            a.remove("summary");
            a.remove("description");
        }
    }
    if let Some(d) = m
        .get_mut("PathDiagnosed")
        .and_then(|b| b.get_mut("diagnosis"))
        .and_then(Value::as_object_mut)
    {
        d.remove("summary");
    }
}

/// A version-1 effect that carried no words, in today's shape.
fn upgrade_effect(effect: &Value) -> Option<Effect> {
    let (name, body) = variant(effect)?;
    let wrapped = match name {
        "AlertsDue" | "PathDiagnosed" => return None,
        "RouteChangeRequested" => json!({ "Order": { "ChangeRoute": body } }),
        "ExaminePath" => json!({ "Order": { "ExaminePath": body } }),
        _ => json!({ "Event": { name: body } }),
    };
    serde_json::from_value(wrapped).ok()
}

/// A version-1 diagnosis's facts (its words removed).
fn diagnosis_v1(d: &Diagnosis) -> Value {
    json!({
        "kind": d.kind,
        "max_passing_payload": d.evidence.max_passing_payload,
        "mtu": d.evidence.mtu,
        "last_hop": d.evidence.last_hop,
    })
}

/// A version-1 alert's facts (its words removed).
fn alert_v1(a: &Alert) -> Value {
    json!({
        "id": a.id,
        "name": a.name(),
        "severity": a.severity(),
        "labels": a.labels(),
        "starts_at": a.starts_at,
        "resolved_at": a.resolved_at,
        "acknowledged": a.acknowledged,
        "escalated": a.escalated,
        "auto_resolve_at": a.auto_resolve_at,
        "last_sent": a.last_sent,
    })
}

/// What a replayed effect decided, in version 1's shape.
fn project(got: &Effect) -> Value {
    match got {
        Effect::Order(Order::ChangeRoute { .. }) | Effect::Order(Order::ExaminePath { .. }) => {
            let v = serde_json::to_value(got).expect("effects serialize");
            let (_, order) = variant(&v).expect("an order");
            let (name, body) = variant(order).expect("a variant");
            let name = if name == "ChangeRoute" {
                "RouteChangeRequested"
            } else {
                name
            };
            json!({ name: body })
        }
        Effect::Order(Order::DeliverAlerts {
            alerts,
            lease_until,
        }) => json!({ "AlertsDue": {
            "alerts": alerts.iter().map(alert_v1).collect::<Vec<_>>(),
            "lease_until": lease_until,
        }}),
        Effect::Event(Event::PathDiagnosed { path, diagnosis }) => {
            json!({ "PathDiagnosed": { "path": path, "diagnosis": diagnosis_v1(diagnosis) }})
        }
        Effect::Event(e) => serde_json::to_value(e).expect("events serialize"),
    }
}

/// A version-1 core snapshot in today's shape. Alerts are rebuilt from
/// their names and labels (the facts their identity rests on); numbers
/// that only version 1's words held (a target's failure count, a frozen
/// group's switches, a certificate's expiry) are taken from the state
/// where it has them, or left at zero until the next observation of the
/// same alert refreshes them. Diagnoses are made again from each path's
/// reason and latest examination, as the core would.
pub fn upgrade_core(mut core: Value) -> Result<Core, V1Error> {
    let obj = core.as_object_mut().ok_or(V1Error::Shape("core"))?;
    let groups = obj.get("groups").cloned().unwrap_or(Value::Null);
    if let Some(ps) = obj.get_mut("paths") {
        let ps = ps.as_object_mut().ok_or(V1Error::Shape("paths"))?;
        for status in ps.values_mut() {
            upgrade_path(status)?;
        }
    }
    let paths = obj.get("paths").cloned().unwrap_or(Value::Null);
    if let Some(book) = obj.get_mut("alerts") {
        let book = book.as_object_mut().ok_or(V1Error::Shape("alert book"))?;
        if let Some(alerts) = book.get_mut("alerts") {
            let alerts = alerts.as_object_mut().ok_or(V1Error::Shape("alerts"))?;
            let mut kept = Map::new();
            for (id, a) in std::mem::take(alerts) {
                if let Some(a) = upgrade_alert(&id, a, &paths, &groups)? {
                    kept.insert(id, a);
                }
            }
            *alerts = kept;
        }
    }
    // Effects waiting in the queue at the snapshot are re-made by the replay.
    obj.insert("effects".into(), json!([]));
    Ok(serde_json::from_value(core)?)
}

fn upgrade_path(status: &mut Value) -> Result<(), V1Error> {
    let status = status.as_object_mut().ok_or(V1Error::Shape("path"))?;
    if status.get("diagnosis").is_none_or(Value::is_null) {
        return Ok(());
    }
    let reason: PathReason =
        serde_json::from_value(status.get("reason").cloned().unwrap_or(Value::Null))?;
    let exam: Option<Examination> =
        serde_json::from_value(status.get("examination").cloned().unwrap_or(Value::Null))?;
    status.insert(
        "diagnosis".into(),
        serde_json::to_value(diagnose(&reason, exam.as_ref()))?,
    );
    Ok(())
}

/// A version-1 alert in today's shape, or `None` for one this release
/// cannot rebuild with the same identity (a name it no longer has, labels
/// that no longer make the same id): it could never resolve.
fn upgrade_alert(
    id: &str,
    mut a: Value,
    paths: &Value,
    groups: &Value,
) -> Result<Option<Value>, V1Error> {
    let Some(m) = a.as_object_mut() else {
        return Err(V1Error::Shape("alert"));
    };
    let labels: BTreeMap<String, String> =
        serde_json::from_value(m.remove("labels").unwrap_or(Value::Null))?;
    let l = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let path = |k: &str| {
        Some(l(k))
            .filter(|p| !p.is_empty() && p != "none")
            .map(|p| PathName::new(&p))
    };
    let target = TargetKey::new(&l("service"), &l("target"));
    let group = GroupName::new(&l("group"));
    let kind = match a["name"].as_str().unwrap_or_default() {
        "PathDown" => {
            let p = l("path");
            AlertKind::PathDown {
                path: PathName::new(&p),
                reason: serde_json::from_value(paths[&p]["reason"].clone())
                    .unwrap_or(PathReason::None),
                diagnosis: serde_json::from_value(paths[&p]["diagnosis"].clone()).unwrap_or(None),
            }
        }
        "TargetDown" => AlertKind::TargetDown {
            target,
            failures: 0,
            cause: None,
            votes: Vec::new(),
        },
        "FailoverExecuted" => AlertKind::FailoverExecuted {
            group,
            from: path("from"),
            to: PathName::new(&l("to")),
            reason: match l("reason").as_str() {
                "failback" => SwitchReason::Failback,
                "initial" => SwitchReason::Initial,
                "pinned" => SwitchReason::Pinned,
                "drift_corrected" => SwitchReason::DriftCorrected,
                _ => SwitchReason::PathFailed {
                    why: PathReason::None,
                },
            },
        },
        "FailoverImpossible" => AlertKind::FailoverImpossible {
            active: serde_json::from_value(groups[group.as_str()]["active"].clone())
                .unwrap_or(None),
            group,
            unsure: Vec::new(),
        },
        "ServiceDown" => AlertKind::ServiceDown {
            group,
            check: target,
            votes: Vec::new(),
        },
        "ServiceDegraded" => AlertKind::ServiceDegraded {
            group,
            check: target,
            losses: Vec::new(),
        },
        "MonitorIsolated" => AlertKind::MonitorIsolated { group },
        "GroupFrozen" => AlertKind::GroupFrozen {
            switches: groups[group.as_str()]["switches"]
                .as_array()
                .map_or(0, |s| s.len() as u32),
            group,
        },
        "RouteDrift" => AlertKind::RouteDrift {
            group,
            expected: None,
            actual: None,
        },
        "CertificateExpiringSoon" => {
            // Version 1 kept the days left only in its summary.
            let seen_at: Timestamp = serde_json::from_value(a["last_sent"].clone())
                .ok()
                .flatten()
                .unwrap_or(serde_json::from_value(a["starts_at"].clone())?);
            let days: f64 = a["summary"]
                .as_str()
                .and_then(|s| s.split("expires in ").nth(1))
                .and_then(|s| s.split(' ').next())
                .and_then(|d| d.parse().ok())
                .unwrap_or(0.0);
            AlertKind::CertificateExpiringSoon {
                target,
                path: path("path"),
                not_after: (seen_at.0 / 1000) as i64 + (days * 86_400.0) as i64,
                seen_at,
            }
        }
        "PersonalDataExposed" => AlertKind::PersonalDataExposed {
            target,
            path: path("path"),
        },
        "IdentityMismatch" => AlertKind::IdentityMismatch {
            target,
            path: path("path"),
            findings: Default::default(),
        },
        "ConfigReloadFailed" => AlertKind::ConfigReloadFailed { errors: 0 },
        "JournalWriteFailing" => AlertKind::JournalWriteFailing { dropped: 0 },
        "JournalClockAhead" => AlertKind::JournalClockAhead { lead_ms: 0 },
        // A name this release no longer has: nothing can fire or resolve it.
        _ => return Ok(None),
    };
    if alert_id(kind.name(), &kind.scope()) != id {
        return Ok(None);
    }
    let m = a.as_object_mut().expect("checked above");
    for gone in ["name", "severity", "summary", "description"] {
        m.remove(gone);
    }
    m.insert("kind".into(), serde_json::to_value(kind)?);
    Ok(Some(a))
}
