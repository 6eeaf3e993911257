//! One YAML file: decoded straight from its text, with positions for errors.
//!
//! Nothing builds a tree of the whole document: a catalog of thousands of
//! targets is decoded target by target (see [`Each`]), and the key-path →
//! position index is built only when there is an error to place.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::de::{Deserialize, DeserializeOwned, Deserializer};

use super::error::ConfigError;
use super::positions::{Pos, Positions, join_key};

/// A YAML file read from disk.
pub struct Document {
    /// The file's path as given.
    pub file: PathBuf,
    text: String,
    positions: OnceLock<Positions>,
}

/// A list element decoded on its own, so one bad element does not hide the
/// errors of the others: holds the element or its (inner path, message).
#[derive(Debug)]
pub struct Each<T>(pub Result<T, (String, String)>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Each<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = yaml_serde::Value::deserialize(d)?;
        Ok(Each(serde_path_to_error::deserialize(value).map_err(|e| {
            (e.path().to_string(), e.inner().to_string())
        })))
    }
}

impl Document {
    /// Reads `file`.
    pub fn read(file: &Path) -> Result<Self, ConfigError> {
        let text = super::files::read_small_file(file, super::files::MAX_CONFIG_FILE_BYTES)
            .map_err(|e| ConfigError {
                file: file.to_path_buf(),
                line: None,
                column: None,
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            })?;
        if let Some((at, message)) = super::positions::refuse(&text) {
            return Err(ConfigError {
                file: file.to_path_buf(),
                line: Some(at.line),
                column: Some(at.column),
                key: String::new(),
                message,
            });
        }
        Ok(Document {
            file: file.to_path_buf(),
            text,
            positions: OnceLock::new(),
        })
    }

    fn positions(&self) -> &Positions {
        self.positions.get_or_init(|| Positions::index(&self.text))
    }

    /// Decodes the whole document into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        // A first pass finds syntax errors, which yaml_serde locates itself;
        // what fails after it is a key or type error, located by key path.
        if let Err(e) = yaml_serde::from_str::<serde::de::IgnoredAny>(&self.text) {
            let loc = e.location();
            return Err(ConfigError {
                file: self.file.clone(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                key: String::new(),
                message: format!("not valid YAML: {e}"),
            });
        }
        serde_path_to_error::deserialize(yaml_serde::Deserializer::from_str(&self.text)).map_err(
            |e| {
                let path = e.path().to_string();
                // yaml_serde repeats the path and position in its message;
                // the error names both once, in front.
                let message = e.inner().to_string();
                let message = message
                    .strip_prefix(&format!("{path}: "))
                    .unwrap_or(&message);
                let message = message.rsplit_once(" at line ").map_or(message, |(m, _)| m);
                self.locate("", &path, message)
            },
        )
    }

    /// Decodes the top-level section `key` on its own; a section that is
    /// absent is its default, one that does not decode adds its error.
    pub fn section<T: DeserializeOwned + Default>(
        &self,
        key: &str,
        value: Option<yaml_serde::Value>,
        errors: &mut Vec<ConfigError>,
    ) -> T {
        let Some(value) = value else {
            return T::default();
        };
        serde_path_to_error::deserialize(value)
            .map_err(|e| {
                errors.push(self.locate(key, &e.path().to_string(), &e.inner().to_string()))
            })
            .unwrap_or_default()
    }

    /// Turns serde's error at `inner` (below `base`) into one that points at the bad key.
    pub fn locate(&self, base: &str, inner: &str, message: &str) -> ConfigError {
        let path = match inner {
            "." | "" => base.to_string(),
            p if p.starts_with('[') => format!("{base}{p}"),
            p => join_key(base, p),
        };
        // serde names the unknown key only in its message.
        if let Some(field) = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        {
            let key = if path == field || path.ends_with(&format!(".{field}")) {
                path.clone()
            } else {
                join_key(&path, field)
            };
            return self.error_at_key(&key, friendly(message));
        }
        if message.starts_with("missing field") {
            return self.error_at_key(&path, friendly(message));
        }
        self.error_at(&path, friendly(message))
    }

    /// An error at the value under `path`.
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let pos = self.positions().value(path);
        self.error(path, pos, message.into())
    }

    /// An error at the key `path` (for unknown or misplaced keys).
    pub fn error_at_key(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let pos = self.positions().key(path);
        self.error(path, pos, message.into())
    }

    fn error(&self, path: &str, pos: Option<Pos>, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            key: path.to_string(),
            message,
        }
    }
}

/// How serde names the Rust types of raw config, in the words of someone
/// editing YAML.
const TYPE_WORDS: [(&str, &str); 11] = [
    (
        "data did not match any variant of untagged enum RawSecret",
        "not a valid value; valid: a string, {file: PATH} or {env: NAME}",
    ),
    ("expected u8", "expected a whole number from 0 to 255"),
    ("expected u16", "expected a whole number from 0 to 65535"),
    (
        "expected u32",
        "expected a whole number from 0 to 4294967295",
    ),
    ("expected u64", "expected a whole number, 0 or more"),
    ("expected usize", "expected a whole number, 0 or more"),
    ("expected f64", "expected a number"),
    ("expected a sequence", "expected a list"),
    ("expected a map", "expected a mapping of keys"),
    ("invalid type: sequence", "invalid type: a list"),
    ("invalid type: map", "invalid type: a mapping"),
];

/// Rewords serde's messages for people editing YAML, without the value
/// serde quotes: a value may be a secret (a token file matched by a
/// catalog glob), and the error already points at it by line and column.
fn friendly(message: &str) -> String {
    static QUOTED: OnceLock<regex::Regex> = OnceLock::new();
    let quoted = QUOTED.get_or_init(|| {
        regex::Regex::new(
            r#"(invalid (?:type|value|length): [a-z ]*?) ?(?:"(?:[^"\\]|\\.)*"|`[^`]*`)|(unknown variant) `[^`]*`"#,
        )
        .expect("valid regex")
    });
    let mut m = quoted.replace_all(message, "$1$2").into_owned();
    for (rust, words) in TYPE_WORDS {
        m = m.replace(rust, words);
    }
    // A raw struct's name (`struct RawDefaults`) means nothing to a user.
    static STRUCT: OnceLock<regex::Regex> = OnceLock::new();
    let re = STRUCT.get_or_init(|| regex::Regex::new(r"struct Raw\w+").expect("valid regex"));
    re.replace_all(&m, "a mapping of keys")
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing required key")
        .replace(", expected one of", "; valid keys are")
        .replace(", expected", "; valid:")
}
