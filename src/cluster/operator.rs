//! Operator state shared by the replicas: pins, unpins, unfreezes and
//! acknowledgements made through any replica's API are written to etcd
//! under `operator/`, and every replica (the one that took the command
//! too) feeds them to its core as its watch delivers them. So a pin made
//! through one replica is enforced by whichever leads, and an
//! acknowledgement made on one is seen on all.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{CoordError, MAX_RECORD_BYTES};
use crate::plan::ClusterSpec;

/// One operator command, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum OperatorCommand {
    /// Pin `group` to `path` until `until` (Unix ms).
    Pin {
        /// The group.
        group: String,
        /// The path.
        path: String,
        /// Expiry, Unix ms.
        until: u64,
        /// Who.
        by: String,
    },
    /// Remove `group`'s pin.
    Unpin {
        /// The group.
        group: String,
        /// Who.
        by: String,
    },
    /// Lift `group`'s flap-guard freeze.
    Unfreeze {
        /// The group.
        group: String,
        /// Who.
        by: String,
    },
    /// Acknowledge alert `id`, the incident that had started by `at`.
    Ack {
        /// The alert's id.
        id: String,
        /// Who.
        by: String,
        /// When it was acknowledged (Unix ms): a later incident of the
        /// same alert (same id) is not acknowledged by it.
        at: u64,
    },
}

impl OperatorCommand {
    /// Its key: one per group's pin, per group's unfreeze, per alert.
    fn key(&self, spec: &ClusterSpec) -> String {
        let p = super::prefix(&spec.name);
        match self {
            OperatorCommand::Pin { group, .. } | OperatorCommand::Unpin { group, .. } => {
                format!("{p}operator/pin/{group}")
            }
            OperatorCommand::Unfreeze { group, .. } => format!("{p}operator/unfreeze/{group}"),
            OperatorCommand::Ack { id, .. } => format!("{p}operator/ack/{id}"),
        }
    }

    /// Whether it still means something when read back later (at a
    /// start or a reconnect): pins and acknowledgements do, an unfreeze
    /// was a moment's act.
    fn lasting(&self) -> bool {
        !matches!(self, OperatorCommand::Unfreeze { .. })
    }
}

/// Writes `cmd` for every replica to apply.
pub async fn write(spec: &ClusterSpec, cmd: &OperatorCommand) -> Result<(), CoordError> {
    let mut client = super::connect(spec).await?;
    let value = serde_json::to_vec(cmd).expect("a command serialises");
    tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        client.put(cmd.key(spec), value, None),
    )
    .await
    .map_err(|_| CoordError::Timeout)?
    .map_err(CoordError::Etcd)?;
    Ok(())
}

/// Delivers every lasting command stored, then every new one, until the
/// engine goes away; reconnects with backoff (and then also delivers what
/// was written while it was away). Unreadable values are logged and skipped.
pub async fn watch(spec: ClusterSpec, tx: mpsc::Sender<OperatorCommand>) {
    let mut backoff = Duration::from_millis(250);
    let mut seen = 0;
    loop {
        match follow(&spec, &tx, &mut seen).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(cluster = %spec.name, "operator state: {}; reconnecting", e.chain())
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// `seen`: the newest revision delivered so far, across reconnects.
async fn follow(
    spec: &ClusterSpec,
    tx: &mpsc::Sender<OperatorCommand>,
    seen: &mut i64,
) -> Result<(), CoordError> {
    let prefix = format!("{}operator/", super::prefix(&spec.name));
    let mut commands = super::changes::Changes::open(spec, &prefix).await?;
    loop {
        let (kv, stored) = commands.next().await?;
        let new = kv.mod_revision() > *seen;
        *seen = (*seen).max(kv.mod_revision());
        if let Some(cmd) = read(kv.value()).filter(|c| new || !stored || c.lasting())
            && tx.send(cmd).await.is_err()
        {
            return Ok(());
        }
    }
}

fn read(value: &[u8]) -> Option<OperatorCommand> {
    let cmd = (value.len() <= MAX_RECORD_BYTES)
        .then(|| serde_json::from_slice(value).ok())
        .flatten();
    if cmd.is_none() {
        tracing::warn!("an unreadable operator record in etcd was skipped");
    }
    cmd
}

/// The shared form of an operator input made at `now`, when it is one.
pub fn shared(input: &crate::core::Input, now: crate::core::Timestamp) -> Option<OperatorCommand> {
    use crate::core::Input;
    Some(match input {
        Input::Pin {
            group,
            path,
            until,
            by,
        } => OperatorCommand::Pin {
            group: group.to_string(),
            path: path.to_string(),
            until: until.0,
            by: by.clone(),
        },
        Input::Unpin { group, by } => OperatorCommand::Unpin {
            group: group.to_string(),
            by: by.clone(),
        },
        Input::Unfreeze { group, by } => OperatorCommand::Unfreeze {
            group: group.to_string(),
            by: by.clone(),
        },
        Input::AlertAcknowledged { id, by } => OperatorCommand::Ack {
            id: id.clone(),
            by: by.clone(),
            at: now.0,
        },
        _ => return None,
    })
}
