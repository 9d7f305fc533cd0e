//! goosebit (a hawkBit-DDI server from PyPI, `scripts/deps/bench/goosebit.sh` installs
//! it in /opt/skerry/goosebit-venv) on a port of its own: its database made by its own
//! migrations (aerich), uvicorn serving it on 127.0.0.1 with one worker, devices
//! registering on their first poll (its device auth off, as it ships).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/deps/bench/goosebit.sh` puts it.
pub const VENV: &str = "/opt/skerry/goosebit-venv";

pub struct Goosebit {
    pub addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

fn tool(name: &str) -> Result<PathBuf, String> {
    let path = Path::new(VENV).join("bin").join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: install goosebit with scripts/install-deps bench",
            path.display()
        ))
    }
}

impl Goosebit {
    pub fn start(dir: &Path) -> Result<Self, String> {
        let python = tool("python3")?;
        std::fs::create_dir_all(dir.join("artifacts"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        // Its migrations ship inside the package; aerich reads where from pyproject.toml.
        let out = Command::new(&python)
            .args([
                "-c",
                "import os, goosebit.db; print(os.path.dirname(goosebit.db.__file__))",
            ])
            .output()
            .map_err(|e| format!("running {}: {e}", python.display()))?;
        let db_pkg = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || db_pkg.is_empty() {
            return Err(format!(
                "goosebit's package not found: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::fs::write(
            dir.join("pyproject.toml"),
            format!("[tool.aerich]\ntortoise_orm = \"goosebit.db.config.TORTOISE_CONF\"\nlocation = \"{db_pkg}/migrations\"\nsrc_folder = \"./.\"\n"),
        )
        .map_err(|e| format!("{}: {e}", dir.display()))?;
        let db = format!("sqlite:///{}", dir.join("db.sqlite3").display());
        let env = [
            ("GOOSEBIT_DB_URI", db.clone()),
            (
                "GOOSEBIT_ARTIFACTS_DIR",
                dir.join("artifacts").display().to_string(),
            ),
            ("GOOSEBIT_TRACK_DEVICE_IP", "false".into()),
        ];
        let migrated = Command::new(tool("aerich")?)
            .arg("upgrade")
            .current_dir(dir)
            .envs(env.clone())
            .output()
            .map_err(|e| format!("running aerich: {e}"))?;
        if !migrated.status.success() {
            return Err(format!(
                "goosebit's migrations failed: {}",
                String::from_utf8_lossy(&migrated.stderr)
            ));
        }
        let port = crate::nginx::free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .expect("literal address");
        let log = dir.join("goosebit.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(tool("uvicorn")?)
            .args([
                "goosebit:app",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(["--log-level", "warning", "--no-access-log"])
            .current_dir(dir)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting goosebit: {e}"))?;
        let mut g = Goosebit {
            addr,
            child: Some(child),
            log,
        };
        let until = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > until {
                g.stop();
                return Err(format!(
                    "goosebit did not listen on {addr} within 60 s; its log:\n{}",
                    std::fs::read_to_string(&g.log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(g)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Goosebit {
    fn drop(&mut self) {
        self.stop();
    }
}
