//! Bearer-token check for admin calls. Only the token's SHA-256 is kept,
//! and a presented token is hashed before a constant-time comparison, so
//! neither its content nor its length leaks through timing.

use std::path::Path;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The largest token file read.
const MAX_TOKEN_BYTES: u64 = 4096;

/// The admin token's digest, if one is configured. The token is never printed.
#[derive(Clone, Default)]
pub struct AdminToken(Option<[u8; 32]>);

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

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
        let text = crate::config::read_secret_file(file, MAX_TOKEN_BYTES)?;
        let token = text.trim();
        if token.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is empty", file.display()),
            ));
        }
        Ok(AdminToken(Some(digest(token.as_bytes()))))
    }

    /// Whether a token is configured.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// A token from its value (tests, embedding).
    pub fn from_value(value: &str) -> Self {
        AdminToken(Some(digest(value.as_bytes())))
    }

    /// Passes when no token is configured or the request carries it.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the HTTP response itself"
    )]
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Response> {
        let Some(want) = &self.0 else { return Ok(()) };
        // The scheme is case-insensitive (RFC 9110 11.1).
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if given.is_some_and(|t| bool::from(digest(t.as_bytes()).ct_eq(want))) {
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
        assert!(t.check(&with_auth("bearer s3cret")).is_ok());
        assert!(t.check(&with_auth("BEARER  s3cret ")).is_ok());
        assert!(t.check(&with_auth("Basic s3cret")).is_err());
        assert!(t.check(&with_auth("Bearer s3cret-and-more")).is_err());
        assert!(t.check(&with_auth("Bearer s3cre")).is_err());
        assert!(t.check(&with_auth("s3cret")).is_err());
        assert!(t.check(&HeaderMap::new()).is_err());
        assert!(AdminToken::default().check(&HeaderMap::new()).is_ok());
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
