//! The Alertmanager v2 alert object, built from the core's alerts.

use serde::Serialize;

use crate::core::{Alert, Timestamp, render};

/// One alert as `POST /api/v2/alerts` takes it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerAlert {
    /// Identity and routing labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// summary, description, runbook_url, acknowledgement.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339: the lease end while firing, the resolution time after.
    pub ends_at: String,
    /// Where to look: gwanje's status API.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// Converts `alert`, sent at `now` with lease end `lease`.
pub fn to_alertmanager(
    alert: &Alert,
    lease: Timestamp,
    external_url: &str,
    runbooks: &str,
) -> AlertmanagerAlert {
    let mut labels = alert.labels();
    labels.insert("alertname".into(), alert.name().as_str().into());
    labels.insert("severity".into(), alert.severity().as_str().into());
    labels.insert("source".into(), "gwanje".into());
    labels.insert("id".into(), alert.id.clone());
    if alert.escalated {
        labels.insert("escalation".into(), "1".into());
    }
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert("summary".into(), render::summary(&alert.kind));
    annotations.insert("description".into(), render::description(&alert.kind));
    annotations.insert(
        "runbook_url".into(),
        format!("{}{}.md", runbooks, alert.name()),
    );
    if let Some((by, at)) = &alert.acknowledged {
        annotations.insert(
            "acknowledged".into(),
            format!("by {by} at {}", crate::clock::rfc3339(*at)),
        );
    }
    AlertmanagerAlert {
        labels,
        annotations,
        starts_at: crate::clock::rfc3339(alert.starts_at),
        ends_at: crate::clock::rfc3339(alert.resolved_at.unwrap_or(lease)),
        generator_url: format!("{}/api/v1/status", external_url.trim_end_matches('/')),
    }
}
