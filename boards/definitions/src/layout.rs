//! Where each partition lands on the disk: explicit starts are kept, the others follow
//! the previous partition, and everything is aligned to [`ALIGNMENT`].

use crate::definition::{Disk, Partition};

/// Partition starts and sizes are multiples of this (1MiB, as partitioning tools align).
pub const ALIGNMENT: u64 = 1 << 20;

/// The bytes at the end of a GPT disk that hold the backup header and entries
/// (33 sectors of 512 bytes).
pub const BACKUP_GPT_BYTES: u64 = 33 * 512;

/// A partition with its number and extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed<'a> {
    /// Its GPT number, 1 for the first.
    pub number: u32,
    /// Its first byte.
    pub start: u64,
    /// Its last byte + 1.
    pub end: u64,
    /// Its definition.
    pub partition: &'a Partition,
}

/// Places the partitions in order. Sizes are bounded by [`crate::size::MAX_SIZE`], so
/// the sums cannot overflow for the bounded number of partitions a definition has.
pub fn place(disk: &Disk) -> Vec<Placed<'_>> {
    let mut next = ALIGNMENT;
    let mut placed = Vec::with_capacity(disk.partitions.len());
    for (index, partition) in disk.partitions.iter().enumerate() {
        let start = partition.start.map_or(next, |s| s.bytes());
        let end = start.saturating_add(partition.size.bytes());
        next = end.div_ceil(ALIGNMENT).saturating_mul(ALIGNMENT);
        placed.push(Placed {
            number: u32::try_from(index + 1).unwrap_or(u32::MAX),
            start,
            end,
            partition,
        });
    }
    placed
}

impl Disk {
    /// The partition named `name` and its number.
    pub fn find(&self, name: &str) -> Option<(u32, &Partition)> {
        self.partitions
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == name)
            .map(|(i, p)| (u32::try_from(i + 1).unwrap_or(u32::MAX), p))
    }
}
