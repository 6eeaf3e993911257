//! What can go wrong talking to etcd.

use std::path::PathBuf;

/// A failure of coordination.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// etcd refused or failed the request.
    #[error("etcd: {0}")]
    Etcd(#[source] etcd_client::Error),
    /// etcd did not answer in time.
    #[error("etcd did not answer within {} s", super::REQUEST_TIMEOUT.as_secs())]
    Timeout,
    /// A TLS file could not be read.
    #[error("reading {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// etcd ended a watch (a compaction, a member going away).
    #[error("etcd ended the watch")]
    WatchEnded,
    /// This replica does not lead (or its lease's safety deadline passed).
    #[error("this replica does not lead")]
    NotLeader,
    /// The guarded write failed: the election key is not the one this
    /// replica won with, so another replica leads.
    #[error("the guarded write was refused: another replica leads")]
    Superseded,
    /// The fence file could not be read or written.
    #[error("the fence file {}: {source}", path.display())]
    Fence {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl CoordError {
    /// The error with every cause it carries, for the log: a TLS failure
    /// says which certificate check failed, not only "transport error".
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let more = c.to_string();
            if !text.contains(&more) {
                text = format!("{text}: {more}");
            }
            cause = c.source();
        }
        text
    }
}
