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

#[cfg(test)]
mod tests {
    use super::*;

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
