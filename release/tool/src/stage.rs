//! Publishing is all or nothing: every file and directory a publish step creates is
//! recorded here, and removed again unless the step commits, so a refused or failed
//! `release add` leaves the repository exactly as it found it.
//!
//! Each step checks everything it can (names, versions, keys, the image) before its first
//! write; this covers what can only fail later (an unreadable or empty image, a full
//! disk). `timestamp.json` is always the last write, so until it lands no client sees
//! any of the new files.

use std::path::{Path, PathBuf};

use crate::error::ReleaseError;

/// What one publish step has created so far.
#[derive(Debug, Default)]
pub struct Staging {
    /// Files and directories in creation order.
    created: Vec<Created>,
    committed: bool,
}

#[derive(Debug)]
enum Created {
    File(PathBuf),
    Dir(PathBuf),
}

impl Staging {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates `dir` and any missing parents, recording each one it creates.
    pub fn create_dirs(&mut self, dir: &Path) -> Result<(), ReleaseError> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(d) = at {
            if d.as_os_str().is_empty() || d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            at = d.parent();
        }
        for d in missing.into_iter().rev() {
            std::fs::create_dir(&d).map_err(ReleaseError::io(&d))?;
            self.created.push(Created::Dir(d));
        }
        Ok(())
    }

    /// Records that `path` is about to be written, unless it exists already (then it
    /// is not ours to remove).
    pub fn file(&mut self, path: &Path) {
        if !path.exists() {
            self.created.push(Created::File(path.to_path_buf()));
        }
    }

    /// Records `path` and the temporary file an atomic write of it goes through.
    pub fn atomic_file(&mut self, path: &Path) {
        self.file(&crate::repo::tmp_name(path));
        self.file(path);
    }

    /// Keeps everything created: the step succeeded.
    pub fn commit(mut self) {
        self.keep();
    }

    /// Keeps everything created so far even if the step later fails.
    pub fn keep(&mut self) {
        self.committed = true;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Best effort: the step already failed with its own error, and every file left
        // here is unreferenced by the published metadata.
        for created in self.created.iter().rev() {
            let _ = match created {
                Created::File(p) => std::fs::remove_file(p),
                Created::Dir(p) => std::fs::remove_dir(p),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncommitted_step_removes_what_it_created_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let keep = tmp.path().join("a/keep");
        std::fs::create_dir_all(tmp.path().join("a")).unwrap();
        std::fs::write(&keep, b"x").unwrap();
        {
            let mut s = Staging::new();
            s.create_dirs(&tmp.path().join("a/b/c")).unwrap();
            let f = tmp.path().join("a/b/c/file");
            s.file(&f);
            std::fs::write(&f, b"y").unwrap();
        }
        assert!(keep.exists());
        assert!(!tmp.path().join("a/b").exists());
        let mut s = Staging::new();
        s.create_dirs(&tmp.path().join("a/d")).unwrap();
        s.commit();
        assert!(tmp.path().join("a/d").exists());
    }
}
