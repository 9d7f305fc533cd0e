//! Extensions: a user's application laid into the slot tree at build time, from a
//! directory or an OCI image layer (a tar whose `.wh.NAME` entries delete NAME from what
//! is below and `.wh..wh..opq` empties a directory). What an extension may not touch:
//! `/sbin/skerryd`, `/boot`, `/etc/skerry`, `/lib/modules`, or any of their parents as
//! anything but a directory. Paths never leave the tree, entry counts and sizes are
//! bounded, and only directories, regular files, symlinks and hard links are taken.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::ImageError;
use crate::tree::{clean, set_mode, walk, Tree};

/// What the image itself owns; an extension may not replace it.
pub const RESERVED: [&str; 4] = ["sbin/skerryd", "boot", "etc/skerry", "lib/modules"];
/// The most entries all extensions together may have.
pub const MAX_ENTRIES: usize = 100_000;
/// The most file bytes all extensions together may have.
pub const MAX_BYTES: u64 = 1 << 30;
/// The longest path or symlink target.
pub const MAX_PATH: usize = 4096;

/// One declared extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    Dir(PathBuf),
    /// An OCI image layer (uncompressed tar).
    Layer(PathBuf),
}

impl Extension {
    pub fn source(&self) -> &Path {
        match self {
            Extension::Dir(p) | Extension::Layer(p) => p,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Extension::Dir(_) => "directory",
            Extension::Layer(_) => "oci-layer",
        }
    }
}

/// Counts what extensions laid so far, against the bounds.
#[derive(Debug, Default)]
pub struct Budget {
    pub entries: usize,
    pub bytes: u64,
}

/// What one kind of entry is.
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    HardLink(PathBuf),
}

struct Layer<'a> {
    tree: &'a Tree,
    source: &'a Path,
    budget: &'a mut Budget,
}

/// Lays `ext` into `tree`; returns how many entries it had.
pub fn apply(tree: &Tree, ext: &Extension, budget: &mut Budget) -> Result<usize, ImageError> {
    let before = budget.entries;
    let mut layer = Layer {
        tree,
        source: ext.source(),
        budget,
    };
    match ext {
        Extension::Dir(dir) => layer.apply_dir(dir)?,
        Extension::Layer(tar) => layer.apply_tar(tar)?,
    }
    Ok(layer.budget.entries - before)
}

impl Layer<'_> {
    fn refuse(&self, reason: String) -> ImageError {
        ImageError::Extension {
            source_path: self.source.to_owned(),
            reason,
        }
    }

    fn count(&mut self, size: u64) -> Result<(), ImageError> {
        self.budget.entries += 1;
        self.budget.bytes = self.budget.bytes.saturating_add(size);
        if self.budget.entries > MAX_ENTRIES {
            return Err(self.refuse(format!("more than {MAX_ENTRIES} entries")));
        }
        if self.budget.bytes > MAX_BYTES {
            return Err(self.refuse(format!("more than {MAX_BYTES} bytes of files")));
        }
        Ok(())
    }

    /// `raw` as a path in the tree, refused if it leaves the tree or touches what the
    /// image owns (`is_dir`: a directory may be a reserved path's parent).
    fn target(&self, raw: &str, is_dir: bool) -> Result<PathBuf, ImageError> {
        if raw.len() > MAX_PATH {
            return Err(self.refuse(format!("a path longer than {MAX_PATH} bytes")));
        }
        let rel =
            clean(raw).map_err(|e| self.refuse(format!("{e}: paths must stay inside the root")))?;
        for reserved in RESERVED {
            let reserved = Path::new(reserved);
            if rel.starts_with(reserved) {
                return Err(self.refuse(format!(
                    "/{} would replace /{}, which the image owns",
                    rel.display(),
                    reserved.display()
                )));
            }
            if reserved.starts_with(&rel) && !is_dir {
                return Err(self.refuse(format!(
                    "/{} would replace /{}'s parent with something not a directory",
                    rel.display(),
                    reserved.display()
                )));
            }
        }
        Ok(rel)
    }

    fn lay(
        &mut self,
        raw: &str,
        kind: Kind,
        mode: u32,
        data: &mut dyn Read,
        size: u64,
    ) -> Result<(), ImageError> {
        let rel = self.target(raw, matches!(kind, Kind::Dir))?;
        self.count(size)?;
        self.tree
            .parents(&rel)
            .map_err(|e| self.refuse(e.to_string()))?;
        let path = self.tree.path(&rel);
        let existing = std::fs::symlink_metadata(&path).ok();
        if let Some(m) = &existing {
            if m.is_dir() {
                if matches!(kind, Kind::Dir) {
                    return set_mode(&path, mode & 0o7777);
                }
                return Err(self.refuse(format!(
                    "/{} would replace a directory with a file",
                    rel.display()
                )));
            }
            std::fs::remove_file(&path).map_err(ImageError::io("replacing", &path))?;
        }
        match kind {
            Kind::Dir => {
                std::fs::create_dir(&path).map_err(ImageError::io("creating", &path))?;
                set_mode(&path, mode & 0o7777)?;
            }
            Kind::File => {
                let mut out =
                    std::fs::File::create(&path).map_err(ImageError::io("writing", &path))?;
                let copied = std::io::copy(&mut data.take(size), &mut out)
                    .map_err(ImageError::io("writing", &path))?;
                if copied != size {
                    return Err(self.refuse(format!("/{} is cut short", rel.display())));
                }
                set_mode(&path, mode & 0o7777)?;
            }
            Kind::Symlink(target) => {
                if target.as_os_str().len() > MAX_PATH {
                    return Err(
                        self.refuse(format!("a symlink target longer than {MAX_PATH} bytes"))
                    );
                }
                std::os::unix::fs::symlink(&target, &path)
                    .map_err(ImageError::io("creating the symlink", &path))?;
            }
            Kind::HardLink(target) => {
                let from = self.target(&target.to_string_lossy(), false)?;
                let src = self.tree.path(&from);
                let m = std::fs::symlink_metadata(&src).map_err(|_| {
                    self.refuse(format!(
                        "/{} links to /{}, which is not in the layer",
                        rel.display(),
                        from.display()
                    ))
                })?;
                if !m.is_file() {
                    return Err(self.refuse(format!(
                        "/{} links to /{}, which is not a file",
                        rel.display(),
                        from.display()
                    )));
                }
                std::fs::copy(&src, &path).map_err(ImageError::io("copying", &src))?;
            }
        }
        Ok(())
    }

    fn apply_dir(&mut self, dir: &Path) -> Result<(), ImageError> {
        let m = std::fs::metadata(dir).map_err(|e| self.refuse(format!("cannot be read: {e}")))?;
        if !m.is_dir() {
            return Err(self.refuse("is not a directory".into()));
        }
        for (rel, _) in walk(dir)? {
            let src = dir.join(&rel);
            let meta = std::fs::symlink_metadata(&src).map_err(ImageError::io("reading", &src))?;
            let mode = meta.permissions().mode();
            let raw = rel.to_string_lossy().into_owned();
            if meta.is_dir() {
                self.lay(&raw, Kind::Dir, mode, &mut std::io::empty(), 0)?;
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&src)
                    .map_err(ImageError::io("reading the symlink", &src))?;
                self.lay(&raw, Kind::Symlink(target), mode, &mut std::io::empty(), 0)?;
            } else if meta.is_file() {
                let mut f = std::fs::File::open(&src).map_err(ImageError::io("reading", &src))?;
                self.lay(&raw, Kind::File, mode, &mut f, meta.len())?;
            } else {
                return Err(self.refuse(format!(
                    "/{} is neither a file, a directory nor a symlink",
                    rel.display()
                )));
            }
        }
        Ok(())
    }

    fn open_tar(&self, tar: &Path) -> Result<tar::Archive<std::fs::File>, ImageError> {
        let f =
            std::fs::File::open(tar).map_err(|e| self.refuse(format!("cannot be read: {e}")))?;
        if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
            return Err(self.refuse("is not a file (an OCI layer is a tar file)".into()));
        }
        Ok(tar::Archive::new(f))
    }

    /// Two passes, as the OCI layer format means it: whiteouts remove what lower layers
    /// laid, then the layer's own entries are laid (so a whiteout never removes an entry
    /// of its own layer, whatever their order in the tar).
    fn apply_tar(&mut self, tar: &Path) -> Result<(), ImageError> {
        let bad = |e: std::io::Error| ImageError::Extension {
            source_path: tar.to_owned(),
            reason: format!("not a readable tar: {e}"),
        };
        let mut archive = self.open_tar(tar)?;
        for entry in archive.entries().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let (dir, name) = raw
                .trim_end_matches('/')
                .rsplit_once('/')
                .map_or(("", raw.as_str()), |(d, n)| (d, n));
            if name == ".wh..wh..opq" {
                let is_root = clean(dir).is_err() && !dir.contains("..");
                let rel = if is_root {
                    PathBuf::new()
                } else {
                    self.target(dir, true)?
                };
                self.opaque(&rel)?;
            } else if let Some(hidden) = name.strip_prefix(".wh.") {
                let rel = self.target(&format!("{dir}/{hidden}"), false)?;
                let path = self.tree.path(&rel);
                self.tree
                    .parents(&rel)
                    .map_err(|e| self.refuse(e.to_string()))?;
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {
                        std::fs::remove_dir_all(&path).map_err(ImageError::io("removing", &path))?
                    }
                    Ok(_) => {
                        std::fs::remove_file(&path).map_err(ImageError::io("removing", &path))?
                    }
                    Err(_) => {}
                }
            }
            self.count(0)?;
        }
        let mut archive = self.open_tar(tar)?;
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = raw.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            if name.starts_with(".wh.") {
                continue;
            }
            let header = entry.header();
            let mode = header.mode().unwrap_or(0o644);
            let size = header.size().map_err(bad)?;
            let link = || entry.link_name().ok().flatten().map(|l| l.into_owned());
            let kind = match header.entry_type() {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                tar::EntryType::Symlink => Kind::Symlink(link().ok_or_else(|| self.refuse(format!("{raw}: a symlink without a target")))?),
                tar::EntryType::Link => Kind::HardLink(link().ok_or_else(|| self.refuse(format!("{raw}: a hard link without a target")))?),
                other => return Err(self.refuse(format!("{raw}: a {other:?} entry (only directories, files, symlinks and hard links are taken)"))),
            };
            if clean(&raw).is_err() && matches!(kind, Kind::Dir) && !raw.contains("..") {
                continue; // the layer's root itself ("./")
            }
            let size = if matches!(kind, Kind::File) { size } else { 0 };
            self.lay(&raw, kind, mode, &mut entry, size)?;
        }
        Ok(())
    }

    /// Empties `rel` of what lower layers put there (an opaque whiteout).
    fn opaque(&mut self, rel: &Path) -> Result<(), ImageError> {
        for reserved in RESERVED {
            if Path::new(reserved).starts_with(rel) {
                return Err(self.refuse(format!(
                    "an opaque whiteout of /{} would remove /{reserved}, which the image owns",
                    rel.display()
                )));
            }
        }
        // Every parent a real directory: through a symlink a lower layer laid, the
        // directory emptied could be the build host's.
        self.tree
            .parents(&rel.join("x"))
            .map_err(|e| self.refuse(e.to_string()))?;
        let path = self.tree.path(rel);
        if !std::fs::symlink_metadata(&path)
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            return Ok(());
        }
        for e in std::fs::read_dir(&path).map_err(ImageError::io("reading", &path))? {
            let p = e.map_err(ImageError::io("reading", &path))?.path();
            let is_dir = std::fs::symlink_metadata(&p)
                .map(|m| m.is_dir())
                .unwrap_or(false);
            if is_dir {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            }
            .map_err(ImageError::io("removing", &p))?;
        }
        Ok(())
    }
}
