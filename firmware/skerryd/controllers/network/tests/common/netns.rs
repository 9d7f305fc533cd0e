//! Network namespaces the tests create (`ip netns add skerry-nt-PID-TAG`) and delete
//! when dropped, on failure too; code runs inside one on a thread of its own.

use std::os::fd::AsFd as _;
use std::process::Command;

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
}

fn ip(args: &[&str]) -> Result<String, String> {
    let output = Command::new("ip").args(args).output().map_err(|e| {
        format!("running ip {args:?}: {e} (install iproute2: scripts/install-deps)")
    })?;
    if !output.status.success() {
        return Err(format!(
            "ip {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl Netns {
    /// Creates `skerry-nt-PID-TAG` with its loopback up (needs root: `CAP_SYS_ADMIN`).
    pub fn new(tag: &str) -> Netns {
        let name = format!("skerry-nt-{}-{tag}", std::process::id());
        let _ = ip(&["netns", "delete", &name]);
        ip(&["netns", "add", &name]).unwrap_or_else(|e| {
            panic!("{e}: the netlink and DHCP tests create network namespaces and need root")
        });
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS...`, failing the test with ip's message.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `f` on a new thread that has entered the namespace.
    pub fn run_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        let thread = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap_or_else(|e| panic!("entering {path}: {e}"));
            f()
        });
        match thread.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "delete", &self.name]);
    }
}
