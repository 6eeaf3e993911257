//! Settings every HTTP-speaking probe shares: TLS, and the body cap.

use super::document::Document;
use super::error::ConfigError;
use super::raw::RawTls;
use crate::plan::TlsSpec;

/// Default cap on HTTP bodies read by a probe.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;

/// Checks TLS settings; a CA file is found beside the catalog.
pub fn tls(doc: &Document, path: &str, raw: Option<&RawTls>) -> Result<TlsSpec, ConfigError> {
    let Some(raw) = raw else {
        return Ok(TlsSpec::default());
    };
    let ca_file = match &raw.ca_file {
        Some(f) => {
            let full = doc
                .file
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join(f);
            if let Err(e) = std::fs::metadata(&full) {
                return Err(doc.error_at(
                    &format!("{path}.ca_file"),
                    format!(
                        "cannot read {}: {e}; valid: a readable PEM file of CA certificates",
                        full.display()
                    ),
                ));
            }
            Some(full)
        }
        None => None,
    };
    Ok(TlsSpec {
        ca_file,
        server_name: raw.server_name.clone(),
        insecure_skip_verify: raw.insecure_skip_verify,
    })
}
