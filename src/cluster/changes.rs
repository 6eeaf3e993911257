//! Every value under a key prefix: those there now, then each one written
//! after, with no gap between the read and the watch (the watch starts at
//! the revision after the read).

use std::collections::VecDeque;

use etcd_client::{Client, EventType, GetOptions, KeyValue, WatchOptions, WatchStream};

use super::CoordError;
use crate::plan::ClusterSpec;

/// The values under one prefix, in the order etcd wrote them.
pub struct Changes {
    pending: VecDeque<(KeyValue, bool)>,
    stream: WatchStream,
    /// Held while the watch runs: it owns the connection.
    _client: Client,
}

impl Changes {
    /// Reads what is under `prefix` and starts watching after it.
    pub async fn open(spec: &ClusterSpec, prefix: &str) -> Result<Changes, CoordError> {
        let mut client = super::connect(spec).await?;
        let now = tokio::time::timeout(
            super::REQUEST_TIMEOUT,
            client.get(prefix, Some(GetOptions::new().with_prefix())),
        )
        .await
        .map_err(|_| CoordError::Timeout)?
        .map_err(CoordError::Etcd)?;
        let from = now.header().map_or(0, |h| h.revision()) + 1;
        let options = WatchOptions::new().with_prefix().with_start_revision(from);
        let stream = client
            .watch(prefix, Some(options))
            .await
            .map_err(CoordError::Etcd)?;
        let mut kvs = now.kvs().to_vec();
        // In the order they were written, as the watch would have given them.
        kvs.sort_by_key(KeyValue::mod_revision);
        Ok(Changes {
            pending: kvs.into_iter().map(|kv| (kv, true)).collect(),
            stream,
            _client: client,
        })
    }

    /// The values there when the watch opened (before any is taken).
    pub fn stored(&self) -> impl Iterator<Item = &KeyValue> {
        self.pending.iter().filter(|(_, s)| *s).map(|(kv, _)| kv)
    }

    /// The next value, and whether it was there when the watch opened; an
    /// error when the watch ends.
    pub async fn next(&mut self) -> Result<(KeyValue, bool), CoordError> {
        loop {
            if let Some(next) = self.pending.pop_front() {
                return Ok(next);
            }
            let resp = self
                .stream
                .message()
                .await
                .map_err(CoordError::Etcd)?
                .filter(|r| !r.canceled())
                .ok_or(CoordError::WatchEnded)?;
            self.pending.extend(
                resp.events()
                    .iter()
                    .filter(|e| e.event_type() == EventType::Put)
                    .filter_map(|e| e.kv().map(|kv| (kv.clone(), false))),
            );
        }
    }
}
