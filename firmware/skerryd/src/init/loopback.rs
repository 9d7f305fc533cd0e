//! The loopback interface, up before the daemon starts: the kernel creates `lo` down,
//! and nothing else on the device brings it up, yet services, health checks and the
//! daemon itself talk to 127.0.0.1. (`SIOCGIFFLAGS`/`SIOCSIFFLAGS` on a datagram socket;
//! the kernel adds 127.0.0.1/8 and ::1 when `lo` goes up.)
#![allow(
    unsafe_code,
    reason = "the SIOC[GS]IFFLAGS ioctls: rustix offers no safe interface-flags call"
)]

use std::ffi::c_short;
use std::os::fd::AsFd;

use rustix::ioctl::{ioctl, Opcode, Updater};
use rustix::net::{socket, AddressFamily, SocketType};

/// `SIOCGIFFLAGS` (linux/sockios.h).
const SIOCGIFFLAGS: Opcode = 0x8913;
/// `SIOCSIFFLAGS`.
const SIOCSIFFLAGS: Opcode = 0x8914;
/// `IFF_UP` (linux/if.h).
const IFF_UP: c_short = 0x1;

/// `struct ifreq` as these two calls use it: the name, then the flags in the union
/// (padded to the union's 24 bytes).
#[repr(C)]
struct IfreqFlags {
    name: [u8; 16],
    flags: c_short,
    _pad: [u8; 22],
}

// The union holds pointers (`ifr_data`) and `struct ifmap`, 24 bytes on 64-bit Linux.
const _: () = assert!(std::mem::size_of::<IfreqFlags>() == 40);

/// Sets `lo` up; returns whether it was down.
pub fn bring_up() -> std::io::Result<bool> {
    let fd = socket(AddressFamily::INET, SocketType::DGRAM, None)?;
    let mut request = IfreqFlags {
        name: *b"lo\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        flags: 0,
        _pad: [0; 22],
    };
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into one `ifreq`
    // through the pointer `Updater` passes; `IfreqFlags` is a live `repr(C)` local of
    // the kernel struct's size with the name NUL-terminated.
    unsafe {
        ioctl(
            fd.as_fd(),
            Updater::<SIOCGIFFLAGS, IfreqFlags>::new(&mut request),
        )
    }?;
    if request.flags & IFF_UP != 0 {
        return Ok(false);
    }
    request.flags |= IFF_UP;
    // SAFETY: as above; SIOCSIFFLAGS reads the same struct.
    unsafe {
        ioctl(
            fd.as_fd(),
            Updater::<SIOCSIFFLAGS, IfreqFlags>::new(&mut request),
        )
    }?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::bring_up;

    /// In a fresh network namespace (per thread on Linux) `lo` starts down: the first
    /// call brings it up and a TCP connection to 127.0.0.1 then works; the second call
    /// finds it up already.
    #[test]
    fn lo_comes_up_in_a_fresh_network_namespace() {
        std::thread::spawn(|| {
            // SAFETY: only this thread changes namespace, and it touches nothing shared
            // that depends on the old one.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
                .expect("unshare(CLONE_NEWNET) needs root (CAP_SYS_ADMIN)");
            let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let before = std::net::TcpStream::connect(down.local_addr().unwrap());
            assert!(before.is_err(), "127.0.0.1 answered with lo down");
            assert!(bring_up().unwrap(), "lo was reported up already");
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            assert!(!bring_up().unwrap(), "a second call brought it up again");
        })
        .join()
        .unwrap();
    }
}
