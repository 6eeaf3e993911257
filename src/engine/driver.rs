//! The one seam between the world and the core: every input goes in
//! through [`Driver::feed`], every timer through [`Driver::tick`], and every
//! effect comes out through [`Driver::poll_effect`]. This is where the
//! journal records, so what it holds is exactly what the core saw and did;
//! live operation, restore and replay all run through it.

use crate::core::{Core, Effect, Input, Timestamp};

/// Where the driver records what passes through it (the journal).
pub trait Recorder: Send {
    /// `input` is about to be fed at `now`.
    fn input(&mut self, now: Timestamp, input: &Input);
    /// The core's timers are about to run at `now`.
    fn timeout(&mut self, now: Timestamp);
    /// The core produced `effect`.
    fn effect(&mut self, effect: &Effect);
}

/// A core with its recorder.
pub struct Driver {
    core: Core,
    recorder: Option<Box<dyn Recorder>>,
}

impl Driver {
    /// Drives `core`, recording into `recorder` when there is one.
    pub fn new(core: Core, recorder: Option<Box<dyn Recorder>>) -> Self {
        Driver { core, recorder }
    }

    /// Records and feeds one input.
    pub fn feed(&mut self, now: Timestamp, input: Input) {
        if let Some(r) = &mut self.recorder {
            r.input(now, &input);
        }
        self.core.handle_input(now, input);
    }

    /// Records and runs the core's timers at `now`.
    pub fn tick(&mut self, now: Timestamp) {
        if let Some(r) = &mut self.recorder {
            r.timeout(now);
        }
        self.core.handle_timeout(now);
    }

    /// The next effect, recorded as it leaves.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        let effect = self.core.poll_effect()?;
        if let Some(r) = &mut self.recorder {
            r.effect(&effect);
        }
        Some(effect)
    }

    /// The core, to read.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The recorder, to query (e.g. whether the journal needs a snapshot).
    pub fn recorder_mut(&mut self) -> Option<&mut (dyn Recorder + 'static)> {
        self.recorder.as_deref_mut()
    }
}
