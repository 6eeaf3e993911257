//! Times on the command line: RFC 3339, to Unix milliseconds.

/// Parses an RFC 3339 time (e.g. 2026-12-03T14:00:00Z) to Unix ms.
pub fn parse_time(s: &str) -> anyhow::Result<u64> {
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| {
        anyhow::anyhow!("{s:?} is not a time ({e}); valid: RFC 3339 such as 2026-12-03T14:00:00Z")
    })?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| anyhow::anyhow!("{s:?} is before 1970"))?
        .as_millis();
    u64::try_from(ms).map_err(|_| anyhow::anyhow!("{s:?} is too far in the future"))
}
