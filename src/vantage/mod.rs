//! Vantages: this instance's observation stream for its peers, and the
//! followers that read theirs. The quorum itself is the core's.

pub mod backlog;
pub mod follow;
pub mod hub;
pub mod wire;

pub use follow::{FromPeer, follow};
pub use hub::{Gone, Hub};
pub use wire::{Line, LineError, Received};
