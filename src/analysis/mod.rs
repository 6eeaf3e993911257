//! Postmortem analysis from the record: what-if replays through another
//! configuration, parameter sweeps, the incident report, and the history
//! as OpenMetrics for Prometheus. Everything here runs the recorded world
//! through the same core gwanje decides with.

pub mod buckets;
pub mod export;
pub mod history;
pub mod incidents;
pub mod prometheus;
pub mod report;
mod seen;
pub mod simulate;
pub mod summary;
mod svg;
pub mod sweep;
pub mod whatif;

pub use history::{Gap, History};
pub use simulate::{Run, simulate};
pub use summary::{Summary, summarise};
