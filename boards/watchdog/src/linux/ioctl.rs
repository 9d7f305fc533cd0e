//! The kernel's watchdog ioctls (`linux/watchdog.h`), the only unsafe code in the crate.
//!
//! `rustix` encodes the request numbers safely but, as with every ioctl wrapper, calling
//! one is `unsafe`: the compiler cannot know what the kernel reads or writes through the
//! argument. Each call below passes exactly the argument type the kernel's header gives
//! for that request, which is the whole of the safety argument.
#![allow(
    unsafe_code,
    reason = "ioctl calls: no maintained crate offers the watchdog ioctls as safe functions"
)]

use std::io;
use std::os::fd::BorrowedFd;

use rustix::ioctl::{ioctl, opcode, Getter, Opcode, Updater};

/// `WATCHDOG_IOCTL_BASE`.
const BASE: u8 = b'W';
/// `WDIOC_KEEPALIVE`: `_IOR('W', 5, int)`.
pub(crate) const KEEPALIVE: Opcode = opcode::read::<libc_int>(BASE, 5);
/// `WDIOC_SETTIMEOUT`: `_IOWR('W', 6, int)`, seconds in, the timeout set out.
pub(crate) const SETTIMEOUT: Opcode = opcode::read_write::<libc_int>(BASE, 6);
/// `WDIOC_GETTIMEOUT`: `_IOR('W', 7, int)`, seconds out.
pub(crate) const GETTIMEOUT: Opcode = opcode::read::<libc_int>(BASE, 7);

#[allow(non_camel_case_types, reason = "the kernel header's `int`")]
type libc_int = std::ffi::c_int;

/// Restarts the countdown.
pub(crate) fn keepalive(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: WDIOC_KEEPALIVE is declared with an `int` read argument (the kernel ignores
    // it); `Getter` passes a pointer to space for one `c_int`.
    unsafe { ioctl(fd, Getter::<KEEPALIVE, libc_int>::new()) }?;
    Ok(())
}

/// Asks for `seconds`; returns the timeout the driver actually set.
pub(crate) fn set_timeout(fd: BorrowedFd<'_>, seconds: libc_int) -> io::Result<libc_int> {
    let mut value = seconds;
    // SAFETY: WDIOC_SETTIMEOUT reads and writes one `int` through the pointer, and
    // `value` is a live `c_int` for the whole call.
    unsafe { ioctl(fd, Updater::<SETTIMEOUT, libc_int>::new(&mut value)) }?;
    Ok(value)
}

/// The timeout the driver counts, in seconds.
pub(crate) fn get_timeout(fd: BorrowedFd<'_>) -> io::Result<libc_int> {
    // SAFETY: WDIOC_GETTIMEOUT writes one `int`; `Getter` provides space for one `c_int`.
    Ok(unsafe { ioctl(fd, Getter::<GETTIMEOUT, libc_int>::new()) }?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers `linux/watchdog.h` expands to on the generic ioctl layout (x86, arm,
    /// arm64, riscv): direction bits, size 4, type 'W' (0x57), number.
    #[test]
    #[cfg(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ))]
    fn request_numbers_match_the_kernel_header() {
        assert_eq!(KEEPALIVE as u64, 0x8004_5705);
        assert_eq!(SETTIMEOUT as u64, 0xC004_5706);
        assert_eq!(GETTIMEOUT as u64, 0x8004_5707);
    }
}
