//! The slot tree staged in a directory before it is packed: files and directories
//! written only beneath its root, every parent a real directory (never through a
//! symlink), and the times of everything set to the build epoch.

use std::path::{Component, Path, PathBuf};

use crate::error::ImageError;

/// A directory tree being staged; paths given to it are relative to its root.
#[derive(Debug)]
pub struct Tree {
    root: PathBuf,
}

/// A relative path inside the tree, with no `..`, no root and no empty name.
pub fn clean(raw: &str) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => return Err(format!("{raw:?} climbs out with '..'")),
            Component::Prefix(_) => return Err(format!("{raw:?} is not a Unix path")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("{raw:?} names no file"));
    }
    Ok(out)
}

impl Tree {
    pub fn new(root: &Path) -> Result<Tree, ImageError> {
        std::fs::create_dir_all(root).map_err(ImageError::io("creating", root))?;
        Ok(Tree {
            root: root.to_owned(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// Makes every parent of `rel` a directory, refusing one that is anything else (a
    /// symlink there could point outside the tree).
    pub fn parents(&self, rel: &Path) -> Result<(), ImageError> {
        let mut at = self.root.clone();
        let parent = rel.parent().unwrap_or(Path::new(""));
        for c in parent.components() {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(ImageError::Input {
                        what: format!("/{}", rel.display()),
                        reason: format!(
                            "its parent /{} is not a directory",
                            at.strip_prefix(&self.root).unwrap_or(&at).display()
                        ),
                    })
                }
                Err(_) => std::fs::create_dir(&at).map_err(ImageError::io("creating", &at))?,
            }
        }
        Ok(())
    }

    /// Makes `rel` (and its parents) a directory.
    pub fn dir(&self, rel: &str) -> Result<(), ImageError> {
        let rel = PathBuf::from(rel.trim_start_matches('/'));
        self.parents(&rel)?;
        let path = self.root.join(&rel);
        if !path.is_dir() {
            std::fs::create_dir(&path).map_err(ImageError::io("creating", &path))?;
        }
        Ok(())
    }

    /// Writes `data` at `rel`, mode 0755 when `executable`, else 0644.
    pub fn file(&self, rel: &str, data: &[u8], executable: bool) -> Result<(), ImageError> {
        let rel = PathBuf::from(rel.trim_start_matches('/'));
        self.parents(&rel)?;
        let path = self.root.join(&rel);
        std::fs::write(&path, data).map_err(ImageError::io("writing", &path))?;
        set_mode(&path, if executable { 0o755 } else { 0o644 })
    }

    /// Copies the host file `src` to `rel`.
    pub fn copy(&self, rel: &str, src: &Path, executable: bool) -> Result<(), ImageError> {
        let rel = PathBuf::from(rel.trim_start_matches('/'));
        self.parents(&rel)?;
        let path = self.root.join(&rel);
        std::fs::copy(src, &path).map_err(ImageError::io("copying", src))?;
        set_mode(&path, if executable { 0o755 } else { 0o644 })
    }

    /// Copies the host directory `src` (files and directories only) to `rel`.
    pub fn copy_dir(&self, rel: &str, src: &Path) -> Result<(), ImageError> {
        self.dir(rel)?;
        for (sub, is_dir) in walk(src)? {
            let target = format!("{}/{}", rel.trim_end_matches('/'), sub.display());
            if is_dir {
                self.dir(&target)?;
            } else {
                self.copy(&target, &src.join(&sub), false)?;
            }
        }
        Ok(())
    }

    /// Sets the access and modification times of everything in the tree (the root
    /// included, symlinks themselves) to `epoch`.
    pub fn set_times(&self, epoch: u64) -> Result<(), ImageError> {
        let mut paths: Vec<PathBuf> = walk(&self.root)?
            .into_iter()
            .map(|(p, _)| self.root.join(p))
            .collect();
        paths.push(self.root.clone());
        let secs = i64::try_from(epoch).unwrap_or(i64::MAX);
        let t = rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        let times = rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        };
        for path in paths {
            rustix::fs::utimensat(
                rustix::fs::CWD,
                &path,
                &times,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| ImageError::Io {
                what: "setting the times of",
                path: path.clone(),
                source: e.into(),
            })?;
        }
        Ok(())
    }

    /// The bytes the tree's files take, each rounded up to 4 KiB blocks.
    pub fn blocks_bytes(&self) -> Result<u64, ImageError> {
        let mut total = 0u64;
        for (p, _) in walk(&self.root)? {
            let path = self.root.join(p);
            let m = std::fs::symlink_metadata(&path).map_err(ImageError::io("reading", &path))?;
            total = total.saturating_add(m.len().div_ceil(4096).saturating_mul(4096).max(4096));
        }
        Ok(total)
    }
}

pub fn set_mode(path: &Path, mode: u32) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(ImageError::io("setting the mode of", path))
}

/// Everything beneath `dir` (not following symlinks), relative, sorted, parents first;
/// `true` for directories.
pub fn walk(dir: &Path) -> Result<Vec<(PathBuf, bool)>, ImageError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let at = dir.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&at)
            .map_err(ImageError::io("reading the directory", &at))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(ImageError::io("reading the directory", &at))?;
        names.sort();
        for name in names {
            let sub = rel.join(&name);
            let is_dir = std::fs::symlink_metadata(dir.join(&sub))
                .map(|m| m.is_dir())
                .unwrap_or(false);
            out.push((sub.clone(), is_dir));
            if is_dir {
                stack.push(sub);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        assert_eq!(clean("/usr/bin/app").unwrap(), PathBuf::from("usr/bin/app"));
        assert_eq!(clean("./etc/x").unwrap(), PathBuf::from("etc/x"));
        assert!(clean("usr/../../etc").is_err());
        assert!(clean("/").is_err());
    }

    #[test]
    fn a_symlinked_parent_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::new(&dir.path().join("t")).unwrap();
        std::os::unix::fs::symlink("/tmp", tree.path(Path::new("etc"))).unwrap();
        let err = tree
            .file("etc/passwd", b"x", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
