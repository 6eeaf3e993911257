//! For replicas that leave routes to router hosts (`actuate: false`): their
//! own kernel does not carry the cluster's routes, so what the actuators
//! report under `applied/` is the route the core adopts and follows.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Applied, CoordError, MAX_RECORD_BYTES, Report};
use crate::core::{GroupName, PathName};
use crate::plan::ClusterSpec;

/// Reports every route an actuator applied (first those stored, then each
/// new one), and once, the groups no actuator has applied anything for;
/// reconnects with backoff until the engine goes away.
pub async fn mirror(spec: ClusterSpec, groups: Vec<GroupName>, tx: mpsc::Sender<Report>) {
    let mut backoff = Duration::from_millis(250);
    let mut first = true;
    loop {
        match follow(&spec, &groups, &tx, &mut first).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(cluster = %spec.name, "applied routes: {}; reconnecting", e.chain())
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn follow(
    spec: &ClusterSpec,
    groups: &[GroupName],
    tx: &mpsc::Sender<Report>,
    first: &mut bool,
) -> Result<(), CoordError> {
    let prefix = format!("{}applied/", super::prefix(&spec.name));
    let mut records = super::changes::Changes::open(spec, &prefix).await?;
    if std::mem::take(first) {
        let known: BTreeSet<GroupName> = records
            .stored()
            .filter_map(|kv| group_of(kv.key()))
            .collect();
        for g in groups.iter().filter(|g| !known.contains(*g)) {
            if tx
                .send(Report::Unrouted { group: g.clone() })
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
    loop {
        let (kv, _) = records.next().await?;
        let applied = (kv.value().len() <= MAX_RECORD_BYTES)
            .then(|| serde_json::from_slice::<Applied>(kv.value()).ok())
            .flatten();
        let (Some(group), Some(a)) = (group_of(kv.key()), applied) else {
            continue;
        };
        if a.error.is_some() {
            continue;
        }
        let report = Report::Applied {
            group,
            to: PathName::new(&a.path),
            fence: a.fence,
            error: None,
        };
        if tx.send(report).await.is_err() {
            return Ok(());
        }
    }
}

/// The group of an `applied/<replica>/<group>` key.
fn group_of(key: &[u8]) -> Option<GroupName> {
    let key = std::str::from_utf8(key).ok()?;
    let group = key.rsplit('/').next()?;
    crate::config::valid_name(group).then(|| GroupName::new(group))
}
