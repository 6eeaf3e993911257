//! gwanje: network health monitor and failover controller.
//!
//! The [`core`] decides; everything else is an adapter around it: [`config`]
//! turns YAML into a validated [`plan::Plan`], [`probe`] measures, [`engine`]
//! schedules probes and drives the core, [`metrics`] and [`api`] expose it.

/// The decision core (the `gwanje-core` crate).
pub use gwanje_core as core;

pub mod actuate;
pub mod alert;
pub mod analysis;
pub mod api;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod examine;
pub mod journal;
pub mod logging;
pub mod metrics;
pub mod plan;
pub mod probe;
pub mod replay;
pub mod testbed;
pub mod vantage;
pub mod verify;
