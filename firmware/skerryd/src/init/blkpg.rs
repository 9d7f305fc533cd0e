//! Telling the kernel a partition changed size (`BLKPG_RESIZE_PARTITION`): the disk's
//! other partitions are in use (the slot is `/`), so `BLKRRPART` would be refused with
//! EBUSY; BLKPG changes one partition's entry while the rest stay mounted.
#![allow(
    unsafe_code,
    reason = "the BLKPG ioctl: no maintained crate offers it as a safe function"
)]

use std::ffi::{c_int, c_longlong, c_void};
use std::fs::File;
use std::os::fd::AsFd;

use rustix::ioctl::{ioctl, Opcode, Updater};

/// `BLKPG`: `_IO(0x12, 105)`.
const BLKPG: Opcode = 0x1269;
/// `BLKPG_RESIZE_PARTITION`.
const BLKPG_RESIZE_PARTITION: c_int = 3;

/// `struct blkpg_partition` (linux/blkpg.h).
#[repr(C)]
struct BlkpgPartition {
    start: c_longlong,
    length: c_longlong,
    pno: c_int,
    devname: [u8; 64],
    volname: [u8; 64],
}

/// `struct blkpg_ioctl_arg`.
#[repr(C)]
struct BlkpgIoctlArg {
    op: c_int,
    flags: c_int,
    datalen: c_int,
    data: *mut c_void,
}

/// Tells the kernel that partition `number` of the whole-disk device `disk` now spans
/// `start..start + length` bytes.
pub fn resize_partition(disk: &File, number: u32, start: u64, length: u64) -> std::io::Result<()> {
    let range = |v: u64| {
        c_longlong::try_from(v).map_err(|_| std::io::Error::other("partition range too large"))
    };
    let mut partition = BlkpgPartition {
        start: range(start)?,
        length: range(length)?,
        pno: c_int::try_from(number)
            .map_err(|_| std::io::Error::other("partition number too large"))?,
        devname: [0; 64],
        volname: [0; 64],
    };
    let mut arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as c_int,
        data: (&mut partition as *mut BlkpgPartition).cast(),
    };
    // SAFETY: BLKPG reads one `blkpg_ioctl_arg` through the pointer `Updater` passes,
    // and through its `data` one `blkpg_partition` of `datalen` bytes; both are live,
    // correctly laid out (`repr(C)`, the kernel header's field types) locals for the
    // whole call, and the kernel writes into neither.
    unsafe { ioctl(disk.as_fd(), Updater::<BLKPG, BlkpgIoctlArg>::new(&mut arg)) }?;
    Ok(())
}
