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

pub use alert::{description, summary};
pub use diagnosis::diagnosis;
pub use line::{effect, event, input, order};
pub use words::{failure_label, mismatch, permille};

#[cfg(feature = "test-hooks")]
static REWORDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Test hook (feature `test-hooks`, only in test builds): while on, every
/// rendered text is marked `[reworded]`, as a wording change would alter
/// it. Tests use it to show that words are never recorded (a journal
/// replays identically whatever the renderer says).
#[cfg(feature = "test-hooks")]
pub fn reword_for_tests(on: bool) {
    REWORDED.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Applies the test hook to a finished text.
#[cfg(feature = "test-hooks")]
fn done(text: String) -> String {
    if REWORDED.load(std::sync::atomic::Ordering::SeqCst) {
        let mut marked = String::from("[reworded] ");
        marked.push_str(&text);
        marked
    } else {
        text
    }
}

/// A finished text, as it is.
#[cfg(not(feature = "test-hooks"))]
fn done(text: String) -> String {
    text
}
