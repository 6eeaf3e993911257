//! A failover testbed in network namespaces this process creates (root):
//! a client where gwanje runs, two routers, and a data centre with the
//! citizen portal, the administrative network's app and DNS, and the
//! mobile-ID API; every failure kind with its repair; a traffic-gap meter;
//! and the real gwanje binary in it. The integration tests, the failover
//! benchmark and `gwanje demo` all build on this one module. Beside it, a
//! certificate-issuing portal on loopback with its faulty modes
//! ([`identity_portal`]) for the identity probe.
//!
//! Traffic stays inside the namespaces, on 198.18.0.0/15.
#![allow(
    clippy::disallowed_methods,
    reason = "the testbed measures real traffic gaps in real time"
)]

pub mod cluster;
mod dns;
mod error;
pub mod etcd;
pub mod failover_config;
pub mod failure;
pub mod forward;
pub mod gwanje;
pub mod identity_portal;
pub mod lab;
pub mod netns;
pub mod services;
pub mod sites;
pub mod topology;
pub mod traffic;

use std::sync::atomic::{AtomicBool, Ordering};

pub use error::TestbedError;
pub use failure::Failure;
pub use lab::{Lab, Setup};
pub use netns::Netns;
pub use topology::{Router, Testbed};
pub use traffic::{Traffic, longest_gap};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes every wait of the testbed return [`TestbedError::Interrupted`]
/// (called on Ctrl-C or SIGTERM, so cleanup runs promptly).
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}
