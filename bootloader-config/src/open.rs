//! Opening the store a [`StoreSpec`] names.

use crate::gpt::GptStore;
use crate::grub::GrubEnvStore;
use crate::medium::FileMedium;
use crate::spec::StoreSpec;
use crate::store::{BootStore, StoreError};
use crate::tryboot::TrybootStore;
use crate::uboot::{UbootEnvStore, UbootLayout};

impl StoreSpec {
    /// Opens an existing store: its file, device or directory must exist.
    pub fn open(&self) -> Result<Box<dyn BootStore>, StoreError> {
        self.open_with(|path| FileMedium::open(path))
    }

    /// Opens a store for `init`: a U-Boot or GRUB environment file may not exist yet and
    /// is created by the first commit. GPT disks and tryboot directories must exist.
    pub fn open_for_init(&self) -> Result<Box<dyn BootStore>, StoreError> {
        self.open_with(|path| Ok(FileMedium::create(path)))
    }

    fn open_with(
        &self,
        env_medium: impl Fn(&std::path::Path) -> Result<FileMedium, StoreError>,
    ) -> Result<Box<dyn BootStore>, StoreError> {
        Ok(match self {
            StoreSpec::Uboot {
                path,
                offset,
                size,
                redundant,
            } => Box::new(UbootEnvStore::new(
                env_medium(path)?,
                UbootLayout {
                    offset: *offset,
                    size: *size,
                    redundant: *redundant,
                },
            )),
            StoreSpec::Grub { path } => Box::new(GrubEnvStore::new(env_medium(path)?)),
            StoreSpec::Gpt { disk, slots } => {
                Box::new(GptStore::new(FileMedium::open(disk)?, slots.clone()))
            }
            StoreSpec::Tryboot { dir, slots } => {
                Box::new(TrybootStore::open_dir(dir, slots.clone())?)
            }
        })
    }
}
