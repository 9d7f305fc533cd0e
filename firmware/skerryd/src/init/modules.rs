//! Kernel modules: which files to load, in which order, from `modules.dep` (written by
//! `depmod` when the image is built), and loading them with `finit_module(2)`.
//!
//! Each module's dependencies come first, found by walking `modules.dep` depth-first
//! (not by trusting the order of its list), and no file is loaded twice. A module the
//! kernel has built in (`modules.builtin`) needs no file. Soft dependencies
//! (`modules.softdep`, `softdep ext4 pre: crypto-crc32c`) are loaded before the module
//! too, their aliases resolved through `modules.alias`: the kernel would ask a
//! `modprobe` for them, and a device has none (ext4 cannot mount without crc32c). A
//! soft dependency the image does not ship is skipped, as modprobe does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The most bytes of `modules.dep` or `modules.builtin` read.
pub const MAX_INDEX: u64 = 4 * 1024 * 1024;
/// The most modules one load plan holds.
pub const MAX_PLAN: usize = 256;

/// Why a plan could not be made or a module not loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// An index file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: skerry_medium::MediumError,
    },
    /// The board names a module the kernel neither has as a file nor built in.
    #[error("kernel module {name:?} is neither in {dir}/modules.dep nor built in (modules.builtin); was it left out of the image?")]
    Unknown {
        /// The module.
        name: String,
        /// The modules directory.
        dir: PathBuf,
    },
    /// More than [`MAX_PLAN`] modules, or a dependency loop.
    #[error("loading {name:?} needs more than {MAX_PLAN} modules (or modules.dep has a loop)")]
    TooMany {
        /// The module asked for.
        name: String,
    },
    /// `finit_module` failed.
    #[error("loading kernel module {path} failed")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A module's name as the kernel spells it: the file name without `.ko` (and a
/// compression suffix), `-` as `_`.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// `modules.dep` and `modules.builtin` of one kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleIndex {
    /// Module name → (its file, its dependencies' files), paths relative to the dir.
    deps: BTreeMap<String, (String, Vec<String>)>,
    builtin: BTreeSet<String>,
    /// Module name → the names (or aliases) to load before it.
    soft_pre: BTreeMap<String, Vec<String>>,
    /// Alias → module names.
    aliases: BTreeMap<String, Vec<String>>,
}

impl ModuleIndex {
    /// Adds the text of `modules.softdep` and `modules.alias`.
    pub fn with_soft(mut self, softdep: &str, alias: &str) -> ModuleIndex {
        for line in softdep.lines() {
            let mut words = line.split_ascii_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(module) = words.next() else { continue };
            let mut pre = false;
            for word in words {
                match word {
                    "pre:" => pre = true,
                    "post:" => pre = false,
                    name if pre => self
                        .soft_pre
                        .entry(module_name(module))
                        .or_default()
                        .push(name.to_owned()),
                    _ => {}
                }
            }
        }
        for line in alias.lines() {
            let mut words = line.split_ascii_whitespace();
            if let (Some("alias"), Some(name), Some(module)) =
                (words.next(), words.next(), words.next())
            {
                self.aliases
                    .entry(name.to_owned())
                    .or_default()
                    .push(module_name(module));
            }
        }
        self
    }

    /// Parses the text of `modules.dep` and `modules.builtin`.
    pub fn parse(dep: &str, builtin: &str) -> ModuleIndex {
        let mut index = ModuleIndex::default();
        for line in dep.lines() {
            let Some((module, deps)) = line.split_once(':') else {
                continue;
            };
            let module = module.trim();
            if module.is_empty() {
                continue;
            }
            let deps = deps.split_ascii_whitespace().map(str::to_owned).collect();
            index
                .deps
                .insert(module_name(module), (module.to_owned(), deps));
        }
        for line in builtin.lines().map(str::trim).filter(|l| !l.is_empty()) {
            index.builtin.insert(module_name(line));
        }
        index
    }

    /// Reads `DIR/modules.dep` and (if present) `DIR/modules.builtin`.
    pub fn load(dir: &Path) -> Result<ModuleIndex, ModuleError> {
        let read = |name: &str, optional: bool| -> Result<String, ModuleError> {
            let path = dir.join(name);
            match skerryd_core::layout::read_bounded(&path, MAX_INDEX) {
                Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) if optional && e.is_not_found() => Ok(String::new()),
                Err(source) => Err(ModuleError::Read { path, source }),
            }
        };
        Ok(ModuleIndex::parse(
            &read("modules.dep", false)?,
            &read("modules.builtin", true)?,
        )
        .with_soft(
            &read("modules.softdep", true)?,
            &read("modules.alias", true)?,
        ))
    }

    /// The files to load for `names`, in order: every dependency before the module that
    /// needs it, each file once. `dir` only names the directory in errors.
    pub fn plan(&self, names: &[String], dir: &Path) -> Result<Vec<String>, ModuleError> {
        let mut plan = Vec::new();
        let mut done = BTreeSet::new();
        for name in names {
            let name = module_name(name);
            if !self.deps.contains_key(&name) {
                if self.builtin.contains(&name) {
                    continue;
                }
                return Err(ModuleError::Unknown {
                    name,
                    dir: dir.to_owned(),
                });
            }
            self.visit(&name, &name, &mut done, &mut plan, 0)?;
        }
        Ok(plan)
    }

    fn visit(
        &self,
        asked: &str,
        name: &str,
        done: &mut BTreeSet<String>,
        plan: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), ModuleError> {
        if done.contains(name) {
            return Ok(());
        }
        if depth > MAX_PLAN || plan.len() >= MAX_PLAN {
            return Err(ModuleError::TooMany { name: asked.into() });
        }
        let Some((file, deps)) = self.deps.get(name) else {
            // A dependency depmod listed but did not index: load the file as named.
            return Ok(());
        };
        // Soft dependencies first: names or aliases of modules the image ships.
        for soft in self.soft_pre.get(name).into_iter().flatten() {
            let direct = module_name(soft);
            let targets: Vec<String> = if self.deps.contains_key(&direct) {
                vec![direct]
            } else {
                self.aliases.get(soft.as_str()).cloned().unwrap_or_default()
            };
            for target in targets.iter().filter(|t| self.deps.contains_key(*t)) {
                self.visit(asked, target, done, plan, depth + 1)?;
            }
        }
        // depmod lists the deepest dependencies last.
        for dep in deps.iter().rev() {
            let dep_name = module_name(dep);
            if self.deps.contains_key(&dep_name) {
                self.visit(asked, &dep_name, done, plan, depth + 1)?;
            } else if done.insert(dep_name) {
                plan.push(dep.clone());
            }
        }
        done.insert(name.to_owned());
        plan.push(file.clone());
        Ok(())
    }
}

/// What loading one file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// Loaded now, or the kernel had it already.
    Yes,
    /// The module is not for this machine (`ENODEV`: a CPU-specific variant such as
    /// `crc32c-intel` on a CPU without SSE 4.2); the generic one does the work.
    NotForThisMachine,
}

/// Loads the module file at `path`; one the kernel already has is not an error.
pub fn load_file(path: &Path) -> Result<Loaded, ModuleError> {
    let fail = |source: std::io::Error| ModuleError::Load {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(fail)?;
    match rustix::system::finit_module(&file, c"", 0) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(Loaded::Yes),
        Err(rustix::io::Errno::NODEV) => Ok(Loaded::NotForThisMachine),
        Err(e) => Err(fail(e.into())),
    }
}

/// Loads `names` and their dependencies from `dir` (`/lib/modules/KVER`); `skipped` is
/// told each module that is not for this machine.
pub fn load_all(
    dir: &Path,
    names: &[String],
    skipped: &mut dyn FnMut(&str),
) -> Result<usize, ModuleError> {
    let index = ModuleIndex::load(dir)?;
    let plan = index.plan(names, dir)?;
    for file in &plan {
        if load_file(&dir.join(file))? == Loaded::NotForThisMachine {
            skipped(file);
        }
    }
    Ok(plan.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko
kernel/fs/fat/fat.ko:
kernel/drivers/watchdog/i6300esb.ko: kernel/drivers/watchdog/watchdog.ko
kernel/drivers/watchdog/watchdog.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/net-failover.ko:
";

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependencies_first_each_once_in_board_order() {
        let index = ModuleIndex::parse(DEP, "kernel/drivers/char/mem.ko\n");
        let plan = index
            .plan(
                &names(&[
                    "i6300esb",
                    "virtio_pci",
                    "virtio_blk",
                    "ext4",
                    "vfat",
                    "mem",
                ]),
                Path::new("/m"),
            )
            .unwrap();
        assert_eq!(
            plan,
            names(&[
                "kernel/drivers/watchdog/watchdog.ko",
                "kernel/drivers/watchdog/i6300esb.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
                "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
                "kernel/drivers/virtio/virtio_pci.ko",
                "kernel/drivers/block/virtio_blk.ko",
                "kernel/fs/jbd2/jbd2.ko",
                "kernel/fs/mbcache.ko",
                "kernel/lib/crc16.ko",
                "kernel/fs/ext4/ext4.ko",
                "kernel/fs/fat/fat.ko",
                "kernel/fs/fat/vfat.ko",
            ])
        );
        // Every dependency comes before its module.
        for (i, file) in plan.iter().enumerate() {
            let (_, deps) = &index.deps[&module_name(file)];
            for dep in deps {
                let at = plan.iter().position(|f| f == dep).unwrap();
                assert!(at < i, "{dep} after {file}");
            }
        }
    }

    #[test]
    fn soft_dependencies_come_first_through_their_aliases() {
        let dep = format!(
            "{DEP}kernel/crypto/crc32c_generic.ko:\nkernel/arch/x86/crypto/crc32c-intel.ko:\n"
        );
        let index = ModuleIndex::parse(&dep, "").with_soft(
            "# comment\nsoftdep ext4 pre: crypto-crc32c post: nosuch\nsoftdep jbd2 pre: crypto-crc32c\nsoftdep vfat pre: not-shipped\n",
            "alias crypto-crc32c crc32c_generic\nalias crypto-crc32c crc32c_intel\nalias crc32c crc32c_generic\n",
        );
        let plan = index
            .plan(&names(&["ext4", "vfat"]), Path::new("/m"))
            .unwrap();
        let at = |file: &str| plan.iter().position(|f| f == file).unwrap();
        assert!(
            at("kernel/crypto/crc32c_generic.ko") < at("kernel/fs/jbd2/jbd2.ko"),
            "{plan:?}"
        );
        assert!(
            at("kernel/arch/x86/crypto/crc32c-intel.ko") < at("kernel/fs/ext4/ext4.ko"),
            "{plan:?}"
        );
        assert_eq!(
            plan.iter().filter(|f| f.contains("crc32c_generic")).count(),
            1
        );
        assert_eq!(plan.len(), 8, "{plan:?}");
    }

    #[test]
    fn names_are_normalised_and_unknown_modules_named() {
        assert_eq!(
            module_name("kernel/drivers/net/net-failover.ko.xz"),
            "net_failover"
        );
        let index = ModuleIndex::parse(DEP, "");
        assert_eq!(
            index
                .plan(&names(&["net-failover"]), Path::new("/m"))
                .unwrap(),
            names(&["kernel/drivers/net/net-failover.ko"])
        );
        let error = index
            .plan(&names(&["i6300esb", "nosuch"]), Path::new("/m"))
            .unwrap_err();
        assert!(error.to_string().contains("\"nosuch\""), "{error}");
    }

    #[test]
    fn a_dependency_loop_is_bounded() {
        let index = ModuleIndex::parse("a.ko: b.ko\nb.ko: a.ko\n", "");
        // a -> b -> (a already being visited is not done yet) ... must end.
        let result = index.plan(&names(&["a"]), Path::new("/m"));
        assert!(
            matches!(result, Err(ModuleError::TooMany { .. })),
            "{result:?}"
        );
    }
}
