//! Replicated controllers on etcd. Replicas campaign through etcd's
//! election API; only the leader's core orders route changes (see the core's
//! `leadership`). The leader writes each group's desired path to etcd in a
//! transaction that succeeds only while its election key still has the
//! revision it won with; that revision is the fence and travels with the
//! order. Actuators apply an order only if its fence is at least the highest
//! they have applied, so a deposed leader that wakes up changes nothing.
//!
//! Keys, under `/gwanje/<cluster>/`: `leader` (the election), `fingerprint`
//! (what the replicas steer), `desired/<group>` (the leader's orders),
//! `applied/<replica>/<group>` (what each actuator did), `operator/…`
//! (pins, unfreezes and acknowledgements made through any replica).

mod actuator;
mod changes;
mod error;
mod fence;
mod mirror;
pub mod operator;
mod session;

use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, Identity, TlsOptions, Txn, TxnOp,
};
use serde::{Deserialize, Serialize};

pub use actuator::{Report, actuate};
pub use error::CoordError;
pub use fence::FenceFile;
pub use mirror::mirror;
pub use session::{Gate, campaign};

use crate::plan::ClusterSpec;

/// How long one etcd request may take before the store counts as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest desired-state value an actuator reads.
pub const MAX_RECORD_BYTES: usize = 4096;

/// A group's desired path, as the leader ordered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    /// The path to route the group's prefixes through.
    pub path: String,
    /// The path it routes through now, as the leader believes.
    pub from: Option<String>,
    /// The leader's fence.
    pub fence: u64,
    /// Why (a switch reason's label).
    pub reason: String,
    /// The replica that ordered it.
    pub by: String,
}

/// What an actuator did with an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The path it applied.
    pub path: String,
    /// The order's fence.
    pub fence: u64,
    /// The order's etcd revision.
    pub revision: i64,
    /// The actuator's error, if the change failed.
    pub error: Option<String>,
}

/// The key prefix of cluster `name`.
pub fn prefix(name: &str) -> String {
    format!("/gwanje/{name}/")
}

/// The key of group `group`'s desired path.
pub fn desired_key(name: &str, group: &str) -> String {
    format!("{}desired/{group}", prefix(name))
}

/// Connects to the cluster's etcd (no request timeout: a campaign waits).
pub async fn connect(spec: &ClusterSpec) -> Result<Client, CoordError> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(REQUEST_TIMEOUT)
        .with_keep_alive(Duration::from_secs(1), REQUEST_TIMEOUT);
    if spec.endpoints.iter().any(|u| u.scheme() == "https") {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &spec.ca_file {
            let pem = std::fs::read(ca).map_err(|source| CoordError::File {
                path: ca.clone(),
                source,
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some((cert, key)) = &spec.identity {
            let read = |p: &std::path::PathBuf| {
                std::fs::read(p).map_err(|source| CoordError::File {
                    path: p.clone(),
                    source,
                })
            };
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        options = options.with_tls(tls);
    }
    let endpoints: Vec<String> = spec
        .endpoints
        .iter()
        .map(|u| u.as_str().trim_end_matches('/').to_string())
        .collect();
    tokio::time::timeout(REQUEST_TIMEOUT, Client::connect(endpoints, Some(options)))
        .await
        .map_err(|_| CoordError::Timeout)?
        .map_err(CoordError::Etcd)
}

/// Writes `desired` for `group`, guarded by the election key: it succeeds
/// only while this replica still leads with the fence it won.
pub async fn order(
    spec: &ClusterSpec,
    gate: &Gate,
    group: &str,
    desired: &Desired,
) -> Result<(), CoordError> {
    let Some((key, rev)) = gate.may_act() else {
        return Err(CoordError::NotLeader);
    };
    if u64::try_from(rev).ok() != Some(desired.fence) {
        return Err(CoordError::NotLeader);
    }
    let mut client = connect(spec).await?;
    let value = serde_json::to_vec(desired).expect("a desired state serialises");
    let txn = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, rev)])
        .and_then([TxnOp::put(desired_key(&spec.name, group), value, None)]);
    let done = tokio::time::timeout(REQUEST_TIMEOUT, client.txn(txn))
        .await
        .map_err(|_| CoordError::Timeout)?
        .map_err(CoordError::Etcd)?;
    if done.succeeded() {
        Ok(())
    } else {
        gate.superseded(rev);
        Err(CoordError::Superseded)
    }
}
