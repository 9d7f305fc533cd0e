//! Processes for the swupdate test: the `skerry-server` binary and Debian's `swupdate`
//! (suricatta), each in its own process group, stopped by that group's id, their output
//! collected; waits bounded by a deadline.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any one step may take before the test fails (swupdate polls every second).
pub const STEP_DEADLINE: Duration = Duration::from_secs(90);

// The openssl and swupdate helpers the release tooling's `.swu` test uses.
#[allow(dead_code)]
#[path = "../../../../release/tool/tests/swu_tools/mod.rs"]
mod swu_tools;
pub use swu_tools::{cert, need};

pub fn server_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_skerry-server"))
}

/// Runs an operator command of the binary on the data directory; its stdout.
pub fn operator(data: &Path, args: &[&str]) -> String {
    let out = server_bin()
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skerry-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A process in its own process group (swupdate forks its installer and suricatta),
/// stopped by that group's id; its output collected.
pub struct Running {
    child: Mutex<Child>,
    log: Arc<Mutex<String>>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Self {
            child: Mutex::new(child),
            log,
        }
    }

    pub fn exited(&self) -> bool {
        self.child.lock().unwrap().try_wait().unwrap().is_some()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn stop(&mut self) {
        let child = self.child.get_mut().unwrap();
        if child.try_wait().unwrap().is_some() {
            return;
        }
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever of the group is left (swupdate's children) goes too.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        let _ = child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `ready` holds; fails naming `what` with the logs otherwise.
pub fn wait_for(what: &str, logs: &[&Running], mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + STEP_DEADLINE;
    while !ready() {
        if Instant::now() > until || logs.iter().any(|r| r.exited()) {
            let all: Vec<String> = logs.iter().map(|r| r.log()).collect();
            panic!(
                "timed out waiting for {what}; logs:\n{}",
                all.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn start_server(data: &Path) -> (Running, SocketAddr) {
    let mut cmd = server_bin();
    cmd.arg("--data")
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--poll-interval", "1s"]);
    let server = Running::spawn(cmd);
    let mut addr = None;
    wait_for("the server's address", &[&server], || {
        addr = server
            .log()
            .split("url=http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok());
        addr.is_some()
    });
    (server, addr.unwrap())
}

/// How swupdate proves who it is: `-k` (target token) or `-g` (gateway token).
pub enum Auth<'a> {
    Target(&'a str),
    Gateway(&'a str),
}

/// swupdate in suricatta mode for target `dev1`, its temporary files in `tmp`.
pub fn swupdate(dir: &Path, addr: SocketAddr, auth: Auth<'_>, confirm: Option<&str>) -> Running {
    let tmp = dir.join("swupdate-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let auth = match auth {
        Auth::Target(t) => format!("-k {t}"),
        Auth::Gateway(t) => format!("-g {t}"),
    };
    let mut suricatta = format!("-t DEFAULT -u http://{addr} -i dev1 {auth} -p 1 -r 1 -w 1");
    if let Some(c) = confirm {
        suricatta.push_str(&format!(" -c {c}"));
    }
    // Its `identify` section is what suricatta sends as configData.
    let cfg = dir.join("swupdate.cfg");
    std::fs::write(
        &cfg,
        "globals : {\n\tloglevel = 6;\n};\nidentify : (\n\t{ name = \"hw\"; value = \"rev2\"; }\n);\n",
    )
    .unwrap();
    let mut cmd = Command::new("swupdate");
    cmd.current_dir(dir)
        .env("TMPDIR", &tmp)
        .arg("-f")
        .arg(&cfg)
        .args(["-v", "-H", "pi:1.0", "-k"])
        .arg(dir.join("release.pem"))
        .arg("-p")
        .arg(format!("touch {}", dir.join("rebooted").display()))
        .arg("-u")
        .arg(suricatta);
    Running::spawn(cmd)
}
