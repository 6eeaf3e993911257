//! The one place facts become words: an event's line (the same in the log,
//! the replay timeline and the incident report), an order's line, an
//! alert's summary and description, a diagnosis. Nothing here is recorded,
//! so the wording can improve in any release without touching a journal.
//!
//! Every sentence about an event comes from one function ([`event`]); an
//! alert raised by an event opens its description with that same sentence.

mod alert;
mod diagnosis;
mod line;
mod words;

use std::sync::atomic::{AtomicBool, Ordering};

pub use alert::{description, summary};
pub use diagnosis::diagnosis;
pub use line::{effect, event, input, order};
pub use words::{failure_label, mismatch, permille};

static REWORDED: AtomicBool = AtomicBool::new(false);

/// Test hook: while on, every rendered text is marked `[reworded]`, as a
/// wording change would alter it. Tests use it to show that words are never
/// recorded (a journal replays identically whatever the renderer says).
#[doc(hidden)]
pub fn reword_for_tests(on: bool) {
    REWORDED.store(on, Ordering::SeqCst);
}

/// Applies the test hook to a finished text.
fn done(text: String) -> String {
    if REWORDED.load(Ordering::SeqCst) {
        let mut marked = String::from("[reworded] ");
        marked.push_str(&text);
        marked
    } else {
        text
    }
}
