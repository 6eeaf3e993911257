//! The highest fence an actuator has applied, kept on disk so a restart
//! never lowers it: an order older than one already applied stays refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::CoordError;

/// The actuator's fence file.
#[derive(Debug)]
pub struct FenceFile {
    path: PathBuf,
    highest: u64,
}

impl FenceFile {
    /// Opens `path`, reading the highest fence applied (0 when absent).
    pub fn open(path: &Path) -> Result<Self, CoordError> {
        let err = |source| CoordError::Fence {
            path: path.to_path_buf(),
            source,
        };
        let highest = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|_| {
                err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a fence number; refusing to guess (remove it only if no older leader can act)",
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(err(e)),
        };
        Ok(FenceFile {
            path: path.to_path_buf(),
            highest,
        })
    }

    /// The highest fence applied.
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Raises the highest fence to `fence`, on disk (written, synced,
    /// renamed) before it counts: a crash never leaves it lower.
    pub fn raise(&mut self, fence: u64) -> Result<(), CoordError> {
        if fence <= self.highest {
            return Ok(());
        }
        let err = |source| CoordError::Fence {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(format!("{fence}\n").as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        self.highest = fence;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_fence_survives_a_reopen_and_never_falls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fence");
        let mut f = FenceFile::open(&path).unwrap();
        assert_eq!(f.highest(), 0);
        f.raise(12).unwrap();
        f.raise(7).unwrap();
        assert_eq!(f.highest(), 12);
        assert_eq!(FenceFile::open(&path).unwrap().highest(), 12);
        std::fs::write(&path, "garbage").unwrap();
        assert!(
            FenceFile::open(&path).is_err(),
            "a corrupt fence is not guessed"
        );
    }
}
