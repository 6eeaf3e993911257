//! What an actuator has applied, kept on disk so a restart never lowers
//! it: the highest fence (an order older than one already applied stays
//! refused) and the etcd revision of each group's last order (an order
//! read back after a restart or a reconnect is not applied again).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::CoordError;

/// The actuator's fence file: the highest fence on its first line, then
/// `<revision> <group>` per group.
#[derive(Debug)]
pub struct FenceFile {
    path: PathBuf,
    highest: u64,
    applied: BTreeMap<String, i64>,
}

impl FenceFile {
    /// Opens `path` (nothing applied when absent).
    pub fn open(path: &Path) -> Result<Self, CoordError> {
        let err = |source| CoordError::Fence {
            path: path.to_path_buf(),
            source,
        };
        let corrupt = || {
            err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a fence file; refusing to guess (remove it only if no older leader can act)",
            ))
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(err(e)),
        };
        let mut lines = text.lines();
        let highest = match lines.next() {
            Some(l) => l.trim().parse::<u64>().map_err(|_| corrupt())?,
            None => 0,
        };
        let mut applied = BTreeMap::new();
        for l in lines {
            let (rev, group) = l.split_once(' ').ok_or_else(corrupt)?;
            applied.insert(group.to_string(), rev.parse().map_err(|_| corrupt())?);
        }
        Ok(FenceFile {
            path: path.to_path_buf(),
            highest,
            applied,
        })
    }

    /// The highest fence applied.
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether `group`'s order at etcd revision `revision` was applied already.
    pub fn applied(&self, group: &str, revision: i64) -> bool {
        self.applied.get(group).is_some_and(|r| *r >= revision)
    }

    /// Records `group`'s order (fence, revision) on disk (written, synced,
    /// renamed) before it is carried out: a crash never leaves the fence
    /// lower.
    pub fn record(&mut self, group: &str, fence: u64, revision: i64) -> Result<(), CoordError> {
        let err = |source| CoordError::Fence {
            path: self.path.clone(),
            source,
        };
        let highest = self.highest.max(fence);
        let mut applied = self.applied.clone();
        applied.insert(group.to_string(), revision);
        let mut text = format!("{highest}\n");
        for (g, r) in &applied {
            text.push_str(&format!("{r} {g}\n"));
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        self.highest = highest;
        self.applied = applied;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_fence_and_each_groups_revision_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fence");
        let mut f = FenceFile::open(&path).unwrap();
        assert_eq!(f.highest(), 0);
        f.record("g1", 12, 40).unwrap();
        f.record("g2", 7, 41).unwrap();
        assert_eq!(f.highest(), 12, "never falls");
        let f = FenceFile::open(&path).unwrap();
        assert_eq!(f.highest(), 12);
        assert!(f.applied("g1", 40) && !f.applied("g1", 44) && !f.applied("g3", 1));
        std::fs::write(&path, "12\n").unwrap();
        assert_eq!(
            FenceFile::open(&path).unwrap().highest(),
            12,
            "the first format"
        );
        std::fs::write(&path, "garbage").unwrap();
        assert!(
            FenceFile::open(&path).is_err(),
            "a corrupt fence is not guessed"
        );
    }
}
