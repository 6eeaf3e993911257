//! Reading configuration, catalog, secret and token files with a size cap,
//! so a wrong path (`/dev/zero`, a FIFO, a huge log) cannot exhaust memory
//! or hang a reload.

use std::io::{self, Read};
use std::path::Path;

/// The largest configuration or catalog file gwanje reads.
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 << 20;
/// The largest secret file (header values, HMAC keys) gwanje reads.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 << 10;

/// Reads the regular file `path` as UTF-8 text, refusing anything over `max` bytes.
pub fn read_small_file(path: &Path, max: u64) -> io::Result<String> {
    // Checked before opening: opening a FIFO would wait for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let too_big = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the file is larger than {max} bytes, the limit"),
        )
    };
    if meta.len() > max {
        return Err(too_big());
    }
    let mut text = String::new();
    // A file that grows while read is still cut at the limit.
    file.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(too_big());
    }
    Ok(text)
}

/// Reads the secret file `path` like [`read_small_file`], refusing one that
/// other users may read or write: anyone who can read the admin token can
/// move traffic, and anyone who can write it can lock operators out.
pub fn read_secret_file(path: &Path, max: u64) -> io::Result<String> {
    check_secret_mode(path)?;
    read_small_file(path, max)
}

/// Refuses a secret file readable or writable by others.
pub fn check_secret_mode(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o007 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "it is readable or writable by other users (mode {:04o}); valid: chmod 600, or 640 with gwanje's group",
                mode & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Writes a secret file only its owner may read (mode 0600), as
/// [`read_secret_file`] requires: for the testbed, the demo and tests.
pub fn write_secret_file(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode on open: set it.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_others_may_read_or_write_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        write_secret_file(&f, "s3cret").unwrap();
        assert_eq!(read_secret_file(&f, 64).unwrap(), "s3cret");
        for mode in [0o644, 0o606, 0o602] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = read_secret_file(&f, 64).unwrap_err().to_string();
            assert!(
                e.contains(&format!("mode {mode:04o}")) && !e.contains("s3cret"),
                "{e}"
            );
        }
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(
            read_secret_file(&f, 64).is_ok(),
            "group-readable is allowed"
        );
    }

    #[test]
    fn devices_fifos_and_oversized_files_are_refused() {
        assert!(read_small_file(Path::new("/dev/zero"), 1024).is_err());
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        let e = read_small_file(&big, 1024).unwrap_err();
        assert!(e.to_string().contains("1024"), "{e}");
        assert_eq!(read_small_file(&big, 4096).unwrap().len(), 2048);
    }
}
