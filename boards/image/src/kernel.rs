//! The pinned Debian kernel: find its `.deb` in the kernel cache, check it is the version
//! the board pins, unpack it (`dpkg-deb -x`), and pick the modules the board lists with
//! everything they need, resolved from `modules.dep` (and the `pre:`/`post:` soft
//! dependencies, e.g. ext4's `crypto-crc32c`) after `depmod`, since kernel packages ship
//! no `modules.dep`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use skerry_boards::Kernel;

use crate::error::ImageError;
use crate::tools::{run, DEPMOD, DPKG_DEB};

/// The cache a build looks in when `$SKERRY_KERNEL_CACHE` is not set.
pub const DEFAULT_CACHE: &str = "/var/cache/skerry/kernels";
/// The most modules (listed plus dependencies) an image carries.
pub const MAX_MODULES: usize = 512;
/// The biggest kernel package read.
pub const MAX_DEB_BYTES: u64 = 1 << 30;

/// The kernel cache: `$SKERRY_KERNEL_CACHE`, or [`DEFAULT_CACHE`].
pub fn cache_dir() -> PathBuf {
    std::env::var_os("SKERRY_KERNEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE))
}

/// The kernel package found in the cache and checked.
#[derive(Debug, Clone)]
pub struct KernelDeb {
    pub path: PathBuf,
    pub package: String,
    pub version: String,
    pub sha256: String,
}

/// The file name Debian's tools give the package: `<package>_<version>_amd64.deb`.
pub fn deb_name(kernel: &Kernel, arch: &str) -> String {
    format!(
        "{}_{}_{arch}.deb",
        kernel.package,
        kernel.version.replace(':', "%3a")
    )
}

/// Finds the pinned kernel's `.deb` in `cache` and checks its name and version.
pub fn locate(kernel: &Kernel, arch: &str, cache: &Path) -> Result<KernelDeb, ImageError> {
    let path = cache.join(deb_name(kernel, arch));
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImageError::KernelMissing {
                path,
                dir: cache.to_owned(),
                package: kernel.package.clone(),
                version: kernel.version.clone(),
            })
        }
        Err(e) => return Err(ImageError::io("reading the kernel package", &path)(e)),
    };
    let bad = |reason: String| ImageError::KernelPackage {
        path: path.clone(),
        reason,
    };
    if !meta.is_file() {
        return Err(bad("is not a file (a Debian package belongs here)".into()));
    }
    if meta.len() > MAX_DEB_BYTES {
        return Err(bad(format!(
            "{} bytes, more than {MAX_DEB_BYTES}",
            meta.len()
        )));
    }
    let fields = run(DPKG_DEB
        .command()?
        .arg("-f")
        .arg(&path)
        .args(["Package", "Version"]))
    .map_err(|e| bad(format!("not a Debian package ({e})")))?;
    let fields = String::from_utf8_lossy(&fields);
    let field = |name: &str| {
        fields
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let (package, version) = (field("Package"), field("Version"));
    if package != kernel.package || version != kernel.version {
        return Err(bad(format!(
            "holds {package} {version}, but the board pins {} {}",
            kernel.package, kernel.version
        )));
    }
    let sha256 = sha256_file(&path)?;
    Ok(KernelDeb {
        path,
        package,
        version,
        sha256,
    })
}

/// The SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, ImageError> {
    let mut file = std::fs::File::open(path).map_err(ImageError::io("reading", path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(ImageError::io("reading", path))?;
    Ok(hex::encode(hasher.finalize()))
}

/// A kernel unpacked into a directory.
#[derive(Debug)]
pub struct Unpacked {
    pub root: PathBuf,
    /// The release (`6.1.0-48-amd64`), the one directory under `lib/modules`.
    pub release: String,
    pub vmlinuz: PathBuf,
}

/// Unpacks `deb` into `dir` and runs `depmod` on it.
pub fn unpack(deb: &KernelDeb, dir: &Path) -> Result<Unpacked, ImageError> {
    run(DPKG_DEB.command()?.arg("-x").arg(&deb.path).arg(dir))?;
    let modules = dir.join("lib/modules");
    let bad = |reason: String| ImageError::KernelPackage {
        path: deb.path.clone(),
        reason,
    };
    let releases: Vec<String> = std::fs::read_dir(&modules)
        .map_err(|_| bad("has no lib/modules".into()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let [release] = releases.as_slice() else {
        return Err(bad(format!(
            "has {} kernel releases under lib/modules, not one",
            releases.len()
        )));
    };
    let vmlinuz = dir.join(format!("boot/vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        return Err(bad(format!("has no boot/vmlinuz-{release}")));
    }
    run(DEPMOD.command()?.arg("-b").arg(dir).arg(release))?;
    Ok(Unpacked {
        root: dir.to_owned(),
        release: release.clone(),
        vmlinuz,
    })
}

/// A module's name as the kernel knows it: the file's stem, `-` read as `_`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// What `modules.dep`, `modules.softdep` and `modules.alias` say.
struct Index {
    /// Module name → (its file, its dependencies' files).
    dep: BTreeMap<String, (String, Vec<String>)>,
    /// Module name → modules to load before or after it.
    soft: BTreeMap<String, Vec<String>>,
    /// Alias → module names.
    alias: BTreeMap<String, Vec<String>>,
    builtin: BTreeSet<String>,
}

fn read_index(dir: &Path) -> Result<Index, ImageError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(ImageError::io("reading", path))
    };
    let mut dep = BTreeMap::new();
    for line in read("modules.dep")?.lines() {
        if let Some((file, deps)) = line.split_once(':') {
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            dep.insert(module_name(file), (file.to_owned(), deps));
        }
    }
    let mut soft: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in read("modules.softdep").unwrap_or_default().lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("softdep") {
            continue;
        }
        let Some(module) = words.next() else { continue };
        let names = words
            .filter(|w| !w.ends_with(':'))
            .map(|w| w.replace('-', "_"));
        soft.entry(module.replace('-', "_"))
            .or_default()
            .extend(names);
    }
    let mut alias: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in read("modules.alias").unwrap_or_default().lines() {
        let mut words = line.split_whitespace();
        if let (Some("alias"), Some(name), Some(module)) =
            (words.next(), words.next(), words.next())
        {
            alias
                .entry(name.replace('-', "_"))
                .or_default()
                .push(module.replace('-', "_"));
        }
    }
    let builtin = read("modules.builtin")
        .unwrap_or_default()
        .lines()
        .map(module_name)
        .collect();
    Ok(Index {
        dep,
        soft,
        alias,
        builtin,
    })
}

/// The module files (relative to `lib/modules/RELEASE`) the board's `modules` need:
/// each listed module, its dependencies and its soft dependencies, sorted. A listed
/// module the kernel has neither as a module nor built in is an error naming it.
pub fn resolve(kernel: &Unpacked, modules: &[String]) -> Result<Vec<String>, ImageError> {
    let dir = kernel.root.join("lib/modules").join(&kernel.release);
    let index = read_index(&dir)?;
    let mut files = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut queue: Vec<(String, bool)> = modules
        .iter()
        .map(|m| (m.replace('-', "_"), true))
        .collect();
    while let Some((name, listed)) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if seen.len() > MAX_MODULES {
            return Err(ImageError::Module {
                module: name,
                reason: format!("the modules and their dependencies are more than {MAX_MODULES}"),
            });
        }
        let Some((file, deps)) = index.dep.get(&name) else {
            if index.builtin.contains(&name) {
                continue;
            }
            if let Some(targets) = index.alias.get(&name).filter(|_| !listed) {
                queue.extend(targets.iter().map(|t| (t.clone(), false)));
                continue;
            }
            if listed {
                return Err(ImageError::Module {
                    module: name,
                    reason: format!(
                        "kernel {} has no such module (not in modules.dep or modules.builtin)",
                        kernel.release
                    ),
                });
            }
            // A soft dependency the kernel lacks is optional, as modprobe treats it.
            continue;
        };
        files.insert(file.clone());
        files.extend(deps.iter().cloned());
        queue.extend(deps.iter().map(|d| (module_name(d), false)));
        if let Some(soft) = index.soft.get(&name) {
            queue.extend(soft.iter().map(|s| (s.clone(), false)));
        }
    }
    Ok(files.into_iter().collect())
}

/// Lays the chosen modules into `out/lib/modules/RELEASE/` with `modules.builtin`
/// and `modules.order`, and runs `depmod` there, so the `modules.dep` the device reads
/// names exactly the modules it has.
pub fn stage_modules(
    kernel: &Unpacked,
    files: &[String],
    out: &Path,
) -> Result<PathBuf, ImageError> {
    let from = kernel.root.join("lib/modules").join(&kernel.release);
    let to = out.join("lib/modules").join(&kernel.release);
    let mut copied = files.to_vec();
    copied.extend(
        [
            "modules.builtin",
            "modules.builtin.modinfo",
            "modules.order",
        ]
        .map(str::to_owned),
    );
    for rel in &copied {
        let (src, dst) = (from.join(rel), to.join(rel));
        if !src.is_file() && rel.starts_with("modules.") {
            continue;
        }
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(ImageError::io("creating", parent))?;
        }
        std::fs::copy(&src, &dst).map_err(ImageError::io("copying a kernel module", &src))?;
    }
    run(DEPMOD.command()?.arg("-b").arg(out).arg(&kernel.release))?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_read_dashes_as_underscores() {
        assert_eq!(
            module_name("kernel/fs/nls/nls_iso8859-1.ko"),
            "nls_iso8859_1"
        );
        assert_eq!(module_name("kernel/fs/ext4/ext4.ko.xz"), "ext4");
    }

    #[test]
    fn a_missing_package_names_the_command_that_fetches_it() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = Kernel {
            package: "linux-image-x".into(),
            version: "1.0-1".into(),
        };
        let err = locate(&kernel, "amd64", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("scripts/install-deps test"), "{err}");
        assert!(
            err.contains("apt-get download linux-image-x=1.0-1"),
            "{err}"
        );
        std::fs::create_dir(dir.path().join("linux-image-x_1.0-1_amd64.deb")).unwrap();
        let err = locate(&kernel, "amd64", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a file"), "{err}");
    }
}
