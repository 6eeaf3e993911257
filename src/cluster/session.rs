//! The election session: a lease kept alive, a campaign on it, and the
//! gate that says whether this replica may act right now. The gate's
//! deadline is on the monotonic clock: the send time of the last
//! acknowledged keepalive plus the granted TTL minus the safety margin, so
//! a wall-clock jump never extends it, and a paused process finds it
//! passed when it wakes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, LeaderKey, ResignOptions};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::CoordError;
use crate::core::{Coordination, CoordinationFault};
use crate::plan::{ClusterSpec, SAFETY_MARGIN};

/// Whether this replica may act now, shared by the session (which sets
/// it) and the order path (which asks it).
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Mutex<Option<Held>>>,
    /// The election revision of the latest refused guarded write.
    superseded: Arc<watch::Sender<i64>>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            inner: Arc::default(),
            superseded: Arc::new(watch::channel(0).0),
        }
    }
}

struct Held {
    key: Vec<u8>,
    rev: i64,
    deadline: Instant,
}

impl Gate {
    /// The election key and its revision, while this replica leads and its
    /// safety deadline has not passed.
    pub fn may_act(&self) -> Option<(Vec<u8>, i64)> {
        let held = self.inner.lock().expect("gate lock");
        held.as_ref()
            .filter(|h| Instant::now() < h.deadline)
            .map(|h| (h.key.clone(), h.rev))
    }

    /// A write guarded by election revision `rev` was refused: the term
    /// that won at `rev` is over (a later term is not disturbed).
    pub fn superseded(&self, rev: i64) {
        let mut held = self.inner.lock().expect("gate lock");
        if held.as_ref().is_some_and(|h| h.rev == rev) {
            *held = None;
        }
        drop(held);
        self.superseded.send_replace(rev);
    }

    fn lead(&self, key: &LeaderKey, deadline: Instant) {
        *self.inner.lock().expect("gate lock") = Some(Held {
            key: key.key().to_vec(),
            rev: key.rev(),
            deadline,
        });
    }

    fn extend(&self, deadline: Instant) {
        if let Some(h) = self.inner.lock().expect("gate lock").as_mut() {
            h.deadline = h.deadline.max(deadline);
        }
    }

    fn clear(&self) {
        *self.inner.lock().expect("gate lock") = None;
    }
}

/// Campaigns until `stop` turns true, reporting every change of role to
/// `tx`; after a fault it campaigns again with a fresh lease.
pub async fn campaign(
    spec: ClusterSpec,
    gate: Gate,
    tx: mpsc::Sender<Coordination>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let fault = match term(&spec, &gate, &tx, &mut stop).await {
            Ok(()) => return,
            Err(f) => f,
        };
        gate.clear();
        tracing::error!(
            cluster = %spec.name,
            reason = fault.label(),
            "coordination lost; ordering nothing until elected again"
        );
        if tx.send(Coordination::Lost { fault }).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One lease's life: granted, kept alive, campaigned on; ends with the
/// fault that ended it, or `Ok` when stopped (after resigning).
async fn term(
    spec: &ClusterSpec,
    gate: &Gate,
    tx: &mpsc::Sender<Coordination>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), CoordinationFault> {
    let unreachable = |e: CoordError| {
        tracing::warn!(cluster = %spec.name, "{}", e.chain());
        CoordinationFault::Unreachable
    };
    let mut client = super::connect(spec).await.map_err(unreachable)?;
    agree(spec, &mut client).await?;
    let ttl = i64::try_from(spec.lease_ttl.as_secs()).unwrap_or(i64::MAX);
    let sent = Instant::now();
    let grant = timed(client.lease_grant(ttl, None))
        .await
        .map_err(unreachable)?;
    let lease = grant.id();
    let granted = Duration::from_secs(u64::try_from(grant.ttl()).unwrap_or(0));
    let mut deadline = sent + granted.saturating_sub(SAFETY_MARGIN);
    let result = lead_or_follow(
        spec,
        gate,
        tx,
        stop,
        &mut client,
        lease,
        granted,
        &mut deadline,
    )
    .await;
    // Without the lease the election key goes at once: a standby need not
    // wait out the TTL. In the background: the step-down is reported now,
    // not after an unreachable store's timeout.
    gate.clear();
    let mut revoker = client.clone();
    let revoke = async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), revoker.lease_revoke(lease)).await;
    };
    match result {
        Ok(()) => revoke.await,
        Err(_) => {
            tokio::spawn(revoke);
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn lead_or_follow(
    spec: &ClusterSpec,
    gate: &Gate,
    tx: &mpsc::Sender<Coordination>,
    stop: &mut watch::Receiver<bool>,
    client: &mut Client,
    lease: i64,
    granted: Duration,
    deadline: &mut Instant,
) -> Result<(), CoordinationFault> {
    let (mut keeper, mut acks) = timed(client.lease_keep_alive(lease))
        .await
        .map_err(|_| CoordinationFault::Unreachable)?;
    if tx.send(Coordination::Following).await.is_err() {
        return Ok(());
    }
    let mut elector = client.clone();
    let name = format!("{}leader", super::prefix(&spec.name));
    let campaign = elector.campaign(name, spec.replica.clone(), lease);
    tokio::pin!(campaign);
    let mut leader: Option<LeaderKey> = None;
    let mut refused = gate.superseded.subscribe();
    let mut tick = tokio::time::interval((granted / 3).max(Duration::from_millis(300)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            won = &mut campaign, if leader.is_none() => {
                let key = won
                    .map_err(|_| CoordinationFault::Unreachable)?
                    .take_leader()
                    .ok_or(CoordinationFault::Unreachable)?;
                if Instant::now() >= *deadline {
                    return Err(CoordinationFault::DeadlinePassed);
                }
                gate.lead(&key, *deadline);
                let fence = u64::try_from(key.rev()).unwrap_or(0);
                tracing::info!(cluster = %spec.name, fence, "elected leader");
                leader = Some(key);
                if tx.send(Coordination::Leading { fence }).await.is_err() {
                    return Ok(());
                }
            }
            _ = tick.tick() => {
                // Woken past the deadline (a pause): that is the cause,
                // whatever a keepalive would now say.
                if Instant::now() >= *deadline {
                    return Err(CoordinationFault::DeadlinePassed);
                }
                let sent = Instant::now();
                keeper.keep_alive().await.map_err(|_| CoordinationFault::LeaseLost)?;
                let wait = (*deadline).max(sent + Duration::from_millis(100));
                match tokio::time::timeout_at(wait, acks.message()).await {
                    Ok(Ok(Some(ack))) if ack.ttl() > 0 => {
                        let ttl = Duration::from_secs(u64::try_from(ack.ttl()).unwrap_or(0));
                        *deadline = sent + ttl.saturating_sub(SAFETY_MARGIN);
                        gate.extend(*deadline);
                    }
                    Ok(_) => return Err(CoordinationFault::LeaseLost),
                    Err(_) => {}
                }
                if Instant::now() >= *deadline {
                    return Err(CoordinationFault::DeadlinePassed);
                }
            }
            _ = tokio::time::sleep_until(*deadline) => {
                return Err(CoordinationFault::DeadlinePassed);
            }
            Ok(()) = refused.changed() => {
                let rev = *refused.borrow_and_update();
                if leader.as_ref().is_some_and(|k| k.rev() == rev) {
                    return Err(CoordinationFault::Superseded);
                }
            }
            _ = stop.changed() => {
                gate.clear();
                if let Some(key) = leader {
                    let resign = client.resign(Some(ResignOptions::new().with_leader(key)));
                    let _ = tokio::time::timeout(Duration::from_secs(1), resign).await;
                    tracing::info!(cluster = %spec.name, "resigned");
                }
                let _ = tx.send(Coordination::Following).await;
                return Ok(());
            }
        }
    }
}

async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, CoordError> {
    tokio::time::timeout(super::REQUEST_TIMEOUT, f)
        .await
        .map_err(|_| CoordError::Timeout)?
        .map_err(CoordError::Etcd)
}

/// Checks that the replicas sharing this cluster's name steer the same
/// groups: the first writes its fingerprint, the others must match it.
async fn agree(spec: &ClusterSpec, client: &mut Client) -> Result<(), CoordinationFault> {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let key = format!("{}fingerprint", super::prefix(&spec.name));
    let txn = Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key.clone(), spec.fingerprint.clone(), None)])
        .or_else([TxnOp::get(key, None)]);
    let done = timed(client.txn(txn))
        .await
        .map_err(|_| CoordinationFault::Unreachable)?;
    if done.succeeded() {
        return Ok(());
    }
    let theirs = done.op_responses().into_iter().find_map(|r| match r {
        etcd_client::TxnOpResponse::Get(g) => g
            .kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
        _ => None,
    });
    match theirs {
        Some(t) if t == spec.fingerprint => Ok(()),
        theirs => {
            tracing::error!(
                cluster = %spec.name,
                ours = %spec.fingerprint,
                theirs = %crate::logging::escape(theirs.as_deref().unwrap_or("")),
                "another configuration uses this cluster name (its groups or paths differ): not campaigning; give it its own cluster.name, or make the groups and paths the same (delete /gwanje/<name>/fingerprint when every replica has the new configuration)"
            );
            Err(CoordinationFault::Misconfigured)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(rev: i64) -> LeaderKey {
        LeaderKey::new().with_key(format!("k{rev}")).with_rev(rev)
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_slept_past_its_deadline_finds_the_gate_shut() {
        let gate = Gate::default();
        gate.lead(&key(7), Instant::now() + Duration::from_secs(2));
        assert_eq!(gate.may_act().map(|(_, r)| r), Some(7));
        // Paused (SIGSTOP, a VM freeze): the monotonic clock moves on.
        tokio::time::advance(Duration::from_millis(2_001)).await;
        assert!(
            gate.may_act().is_none(),
            "no keepalive came: it may not act"
        );
        // A late acknowledgement of an earlier keepalive never reopens it
        // beyond its own deadline.
        gate.extend(Instant::now() - Duration::from_millis(1));
        assert!(gate.may_act().is_none());
    }

    #[tokio::test]
    async fn a_refusal_ends_only_the_term_it_was_for() {
        let gate = Gate::default();
        gate.lead(&key(9), Instant::now() + Duration::from_secs(5));
        gate.superseded(3);
        assert!(gate.may_act().is_some(), "an old term's refusal");
        gate.superseded(9);
        assert!(gate.may_act().is_none());
    }
}
