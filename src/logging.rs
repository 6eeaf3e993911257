//! Log setup: text or JSON lines, filter from the config or `RUST_LOG`;
//! colour only on a terminal; and [`escape`] for strings users supply.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::plan::LogFormat;

/// Installs the global subscriber; `RUST_LOG`, when set, wins over `level`.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // journald, files and pipes get plain text; NO_COLOR is honoured too.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Displays `s` with every control character (newlines, escape sequences)
/// written as `\u{..}`, so a user-supplied string can neither forge a log
/// line nor reach a terminal as a command.
pub fn escape(s: &str) -> Escaped<'_> {
    Escaped(s)
}

/// Whether `c` could rewrite or hide text around it: control characters,
/// and the invisible format characters (bidirectional overrides and
/// isolates, zero-width spaces and joiners, the byte-order mark).
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// See [`escape`].
pub struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            if is_invisible(c) {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_cannot_forge_lines_or_reach_terminals() {
        let s = super::escape("ops\n2026-01-01 INFO forged\u{1b}[2J").to_string();
        assert_eq!(s, "ops\\u{a}2026-01-01 INFO forged\\u{1b}[2J");
        assert!(!s.contains('\n') && !s.contains('\u{1b}'));
        assert_eq!(super::escape("정상 name").to_string(), "정상 name");
        assert_eq!(super::escape("a\u{202E}b").to_string(), "a\\u{202e}b");
    }
}
