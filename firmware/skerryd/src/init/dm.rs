//! Device-mapper through its ioctls on `/dev/mapper/control` (linux/dm-ioctl.h,
//! interface 4): create a device, load a one-target table read-only, resume it. No
//! `dmsetup` or `veritysetup` in the guest: there is no shell or tool there.
//!
//! Each call passes one buffer: a `struct dm_ioctl` header (312 bytes), then for a
//! table load a `struct dm_target_spec` (40 bytes) and the target's NUL-terminated
//! parameters, padded to 8 bytes. The header says how big the buffer is
//! (`data_size`) and where the payload starts (`data_start`).
#![allow(
    unsafe_code,
    reason = "the device-mapper ioctls: rustix offers no safe device-mapper call"
)]

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::ioctl::{ioctl, Ioctl, IoctlOutput, Opcode};

/// The control device devtmpfs makes once `dm-mod` is loaded.
pub const CONTROL: &str = "/dev/mapper/control";
/// `sizeof(struct dm_ioctl)`.
pub const HEADER: usize = 312;
/// `sizeof(struct dm_target_spec)`.
pub const SPEC: usize = 40;
/// The longest target parameters sent.
pub const MAX_PARAMS: usize = 4096;
/// `DM_NAME_LEN`: the name, NUL included.
const NAME_LEN: usize = 128;
/// `DM_MAX_TYPE_NAME`.
const TYPE_LEN: usize = 16;
/// `DM_READONLY_FLAG`.
pub const READONLY: u32 = 1 << 0;

/// A command number of `DM_IOCTL` (0xfd); every one is `_IOWR` of `struct dm_ioctl`.
pub const fn opcode(command: u32) -> Opcode {
    ((3 << 30) | ((HEADER as u32) << 16) | (0xfd << 8) | command) as Opcode
}
/// `DM_DEV_CREATE`.
pub const DEV_CREATE: Opcode = opcode(3);
/// `DM_DEV_SUSPEND` (resumes when the suspend flag is clear).
pub const DEV_SUSPEND: Opcode = opcode(6);
/// `DM_TABLE_LOAD`.
pub const TABLE_LOAD: Opcode = opcode(9);

/// Why a device-mapper call failed.
#[derive(Debug, thiserror::Error)]
pub enum DmError {
    /// A name or parameter the kernel would not take.
    #[error("device-mapper: {0}")]
    Input(String),
    /// Opening the control device failed.
    #[error("opening {CONTROL} (is dm-mod loaded?)")]
    Control(#[source] std::io::Error),
    /// An ioctl failed.
    #[error("device-mapper {call} of {name:?} failed (the kernel log says why)")]
    Call {
        /// Which.
        call: &'static str,
        /// The device.
        name: String,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn put_str(buf: &mut [u8], at: usize, max: usize, s: &str, what: &str) -> Result<(), DmError> {
    if s.len() >= max || s.bytes().any(|b| b == 0) {
        return Err(DmError::Input(format!(
            "{what} {s:?} is longer than {} bytes or holds a NUL",
            max - 1
        )));
    }
    buf[at..at + s.len()].copy_from_slice(s.as_bytes());
    Ok(())
}

/// The header of a call on the device `name`, the buffer `size` bytes long.
/// Offsets: version 0, data_size 12, data_start 16, target_count 20, open_count 24,
/// flags 28, event_nr 32, padding 36, dev 40, name 48, uuid 176, data 305.
pub fn header(name: &str, size: usize, flags: u32, targets: u32) -> Result<Vec<u8>, DmError> {
    let mut buf = vec![0u8; size];
    for (i, v) in [4u32, 0, 0].into_iter().enumerate() {
        put_u32(&mut buf, i * 4, v);
    }
    put_u32(&mut buf, 12, size as u32);
    put_u32(&mut buf, 16, HEADER as u32);
    put_u32(&mut buf, 20, targets);
    put_u32(&mut buf, 28, flags);
    put_str(&mut buf, 48, NAME_LEN, name, "the mapping name")?;
    Ok(buf)
}

/// The buffer of `DM_TABLE_LOAD`: one target of `sectors` sectors from 0.
pub fn table_load(
    name: &str,
    sectors: u64,
    target: &str,
    params: &str,
) -> Result<Vec<u8>, DmError> {
    if params.len() > MAX_PARAMS || params.bytes().any(|b| b == 0) {
        return Err(DmError::Input(format!(
            "target parameters of {} bytes (at most {MAX_PARAMS}, no NUL)",
            params.len()
        )));
    }
    let spec_len = SPEC + (params.len() + 1).next_multiple_of(8);
    let mut buf = header(name, HEADER + spec_len, READONLY, 1)?;
    let at = HEADER;
    put_u64(&mut buf, at, 0);
    put_u64(&mut buf, at + 8, sectors);
    put_u32(&mut buf, at + 20, spec_len as u32);
    put_str(&mut buf, at + 24, TYPE_LEN, target, "the target type")?;
    buf[at + SPEC..at + SPEC + params.len()].copy_from_slice(params.as_bytes());
    Ok(buf)
}

/// The device number the kernel wrote into a header (`huge_encode_dev`), as
/// (major, minor).
pub fn dev_of(buf: &[u8]) -> (u32, u32) {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&buf[40..48]);
    let dev = u64::from_ne_bytes(raw) as u32;
    ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

/// One ioctl over a whole buffer the kernel reads and writes back.
struct Call<'a> {
    opcode: Opcode,
    buf: &'a mut [u8],
}

// SAFETY: every device-mapper ioctl reads `data_size` bytes from the pointer and writes
// at most as many back; `data_size` is the buffer's own length (set by `header`).
unsafe impl Ioctl for Call<'_> {
    type Output = ();
    const IS_MUTATING: bool = true;
    fn opcode(&self) -> Opcode {
        self.opcode
    }
    fn as_ptr(&mut self) -> *mut core::ffi::c_void {
        self.buf.as_mut_ptr().cast()
    }
    unsafe fn output_from_ptr(
        _out: IoctlOutput,
        _ptr: *mut core::ffi::c_void,
    ) -> rustix::io::Result<()> {
        Ok(())
    }
}

fn call(
    control: &impl AsFd,
    opcode: Opcode,
    what: &'static str,
    name: &str,
    buf: &mut [u8],
) -> Result<(), DmError> {
    // SAFETY: see `Call`; the buffer outlives the call.
    unsafe { ioctl(control, Call { opcode, buf }) }.map_err(|e| DmError::Call {
        call: what,
        name: name.to_owned(),
        source: e.into(),
    })
}

/// Creates the device `name` with one read-only `target` of `sectors` sectors, and
/// makes it live; returns its node (`/dev/dm-N`, made by devtmpfs).
pub fn create_readonly(
    name: &str,
    sectors: u64,
    target: &str,
    params: &str,
) -> Result<PathBuf, DmError> {
    let mut load = table_load(name, sectors, target, params)?;
    let mut create = header(name, HEADER, 0, 0)?;
    let mut resume = header(name, HEADER, 0, 0)?;
    let control = rustix::fs::open(CONTROL, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| DmError::Control(e.into()))?;
    call(&control, DEV_CREATE, "DM_DEV_CREATE", name, &mut create)?;
    call(&control, TABLE_LOAD, "DM_TABLE_LOAD", name, &mut load)?;
    call(
        &control,
        DEV_SUSPEND,
        "DM_DEV_SUSPEND (resume)",
        name,
        &mut resume,
    )?;
    let (_, minor) = dev_of(&resume);
    Ok(Path::new("/dev").join(format!("dm-{minor}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(buf: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn opcodes_are_the_kernels() {
        // _IOWR(0xfd, n, struct dm_ioctl) as linux/dm-ioctl.h defines them.
        assert_eq!(DEV_CREATE as u64, 0xc138_fd03);
        assert_eq!(DEV_SUSPEND as u64, 0xc138_fd06);
        assert_eq!(TABLE_LOAD as u64, 0xc138_fd09);
    }

    #[test]
    fn a_table_load_holds_the_header_the_spec_and_the_parameters() {
        let params = "1 254:2 254:2 4096 4096 8 8 sha256 aa - 1 restart_on_corruption";
        let buf = table_load("skerry-root", 64, "verity", params).unwrap();
        let spec_len = SPEC + (params.len() + 1).next_multiple_of(8);
        assert_eq!(buf.len(), HEADER + spec_len);
        assert_eq!(buf.len() % 8, 0);
        assert_eq!(
            [u32_at(&buf, 0), u32_at(&buf, 4), u32_at(&buf, 8)],
            [4, 0, 0]
        );
        assert_eq!(u32_at(&buf, 12) as usize, buf.len());
        assert_eq!(u32_at(&buf, 16) as usize, HEADER);
        assert_eq!(u32_at(&buf, 20), 1);
        assert_eq!(u32_at(&buf, 28), READONLY);
        assert_eq!(&buf[48..60], b"skerry-root\0");
        assert_eq!(u64::from_ne_bytes(buf[312..320].try_into().unwrap()), 0);
        assert_eq!(u64::from_ne_bytes(buf[320..328].try_into().unwrap()), 64);
        assert_eq!(u32_at(&buf, 332) as usize, spec_len);
        assert_eq!(&buf[336..343], b"verity\0");
        assert_eq!(&buf[352..352 + params.len()], params.as_bytes());
        assert_eq!(buf[352 + params.len()], 0);
    }

    #[test]
    fn bad_names_and_parameters_are_refused() {
        assert!(header(&"x".repeat(128), HEADER, 0, 0).is_err());
        assert!(header("a\0b", HEADER, 0, 0).is_err());
        assert!(table_load("r", 8, "a-target-type-too-long", "p").is_err());
        assert!(table_load("r", 8, "verity", &"p".repeat(MAX_PARAMS + 1)).is_err());
    }

    #[test]
    fn the_device_number_is_decoded_as_the_kernel_encodes_it() {
        let mut buf = vec![0u8; HEADER];
        // new_encode_dev(MKDEV(254, 0x123)): minor low byte, major, minor high bits.
        let dev: u64 = 0x23 | (254 << 8) | (0x100 << 12);
        buf[40..48].copy_from_slice(&dev.to_ne_bytes());
        assert_eq!(dev_of(&buf), (254, 0x123));
    }
}
