//! Bearer-token check for admin calls, compared in constant time.

use std::path::Path;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// The admin token, if one is configured. Its value is never printed.
#[derive(Clone, Default)]
pub struct AdminToken(Option<Vec<u8>>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AdminToken(set)"
        } else {
            "AdminToken(none)"
        })
    }
}

impl AdminToken {
    /// Reads the token from `file` (trailing newline ignored); `None` means no token.
    pub fn load(file: Option<&Path>) -> std::io::Result<Self> {
        let Some(file) = file else {
            return Ok(AdminToken(None));
        };
        let text = std::fs::read_to_string(file)?;
        let token = text.trim();
        if token.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is empty", file.display()),
            ));
        }
        Ok(AdminToken(Some(token.as_bytes().to_vec())))
    }

    /// Whether a token is configured.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// A token from its value (tests, embedding).
    pub fn from_value(value: &str) -> Self {
        AdminToken(Some(value.as_bytes().to_vec()))
    }

    /// Passes when no token is configured or the request carries it.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the HTTP response itself"
    )]
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Response> {
        let Some(want) = &self.0 else { return Ok(()) };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::as_bytes)
            .unwrap_or_default();
        if bool::from(given.ct_eq(want)) {
            Ok(())
        } else {
            Err((
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a valid admin bearer token is required\n",
            )
                .into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().expect("header value"));
        h
    }

    #[test]
    fn checks_the_bearer_token() {
        let t = AdminToken::from_value("s3cret");
        assert!(t.check(&with_auth("Bearer s3cret")).is_ok());
        assert!(t.check(&with_auth("Bearer s3cre")).is_err());
        assert!(t.check(&with_auth("s3cret")).is_err());
        assert!(t.check(&HeaderMap::new()).is_err());
        assert!(AdminToken::default().check(&HeaderMap::new()).is_ok());
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
