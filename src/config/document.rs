//! One YAML file: its text parsed to a value, with positions for error messages.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::error::ConfigError;
use super::positions::{Positions, join_key};

/// A parsed YAML file.
pub struct Document {
    /// The file's path as given.
    pub file: PathBuf,
    /// The parsed document.
    pub value: yaml_serde::Value,
    positions: Positions,
}

impl Document {
    /// Reads and parses `file`.
    pub fn read(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(file, &text)
    }

    /// Parses `text` as the contents of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let value: yaml_serde::Value = yaml_serde::from_str(text).map_err(|e| {
            let loc = e.location();
            ConfigError {
                file: file.to_path_buf(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                key: String::new(),
                message: format!("not valid YAML: {e}"),
            }
        })?;
        Ok(Document {
            file: file.to_path_buf(),
            value,
            positions: Positions::index(text),
        })
    }

    /// An error at the value under `path`.
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let pos = self.positions.value(path);
        self.error(path, pos, message.into())
    }

    /// An error at the key `path` (for unknown or misplaced keys).
    pub fn error_at_key(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let pos = self.positions.key(path);
        self.error(path, pos, message.into())
    }

    fn error(
        &self,
        path: &str,
        pos: Option<super::positions::Pos>,
        message: String,
    ) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            key: path.to_string(),
            message,
        }
    }

    /// Deserializes the sub-value `value` found at `base` into `T`,
    /// turning serde's message into one that points at the bad key.
    pub fn decode<T: DeserializeOwned>(
        &self,
        base: &str,
        value: &yaml_serde::Value,
    ) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let inner = e.path().to_string();
            let path = match inner.as_str() {
                "." => base.to_string(),
                p if p.starts_with('[') => format!("{base}{p}"),
                p => join_key(base, p),
            };
            let message = e.inner().to_string();
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
                return self.error_at_key(&key, friendly(&message));
            }
            if message.starts_with("missing field") {
                return self.error_at_key(&path, friendly(&message));
            }
            self.error_at(&path, friendly(&message))
        })
    }
}

/// Rewords serde's messages for people editing YAML.
fn friendly(message: &str) -> String {
    message
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing required key")
        .replace(", expected one of", "; valid keys are")
        .replace(", expected", "; valid:")
}
