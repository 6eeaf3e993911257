//! The one seam between the world and the core: every input goes in
//! through [`Driver::feed`], every timer through [`Driver::tick`], and every
//! effect comes out through [`Driver::poll_effect`]. This is where the
//! journal records, so what it holds is exactly what the core saw and did;
//! live operation, restore and replay all run through it.

use super::Journal;
use crate::core::{Core, Effect, Input, Timestamp};

/// A core with its journal.
pub struct Driver {
    core: Core,
    journal: Option<Journal>,
}

impl Driver {
    /// Drives `core`, recording into `journal` when there is one.
    pub fn new(core: Core, journal: Option<Journal>) -> Self {
        Driver { core, journal }
    }

    /// Records and feeds one input.
    pub fn feed(&mut self, now: Timestamp, input: Input) {
        if let Some(r) = &mut self.journal {
            r.input(now, &input);
        }
        self.core.handle_input(now, input);
    }

    /// Records and runs the core's timers at `now`.
    pub fn tick(&mut self, now: Timestamp) {
        if let Some(r) = &mut self.journal {
            r.timeout(now);
        }
        self.core.handle_timeout(now);
    }

    /// The next effect, recorded as it leaves.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        let effect = self.core.poll_effect()?;
        if let Some(r) = &mut self.journal {
            r.effect(&effect);
        }
        Some(effect)
    }

    /// The core, given up (the driver is done).
    pub fn into_core(self) -> Core {
        self.core
    }

    /// The core, to read.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The journal's health, when there is a journal.
    pub fn journal_health(&self) -> Option<crate::journal::Health> {
        self.journal.as_ref().map(Journal::health)
    }

    /// Starts the next journal segment when the writer asks for one.
    pub fn snapshot_if_wanted(&mut self) {
        if let Some(j) = &mut self.journal
            && let Some(reason) = j.take_snapshot_request()
        {
            j.snapshot(&self.core, reason);
        }
    }
}
