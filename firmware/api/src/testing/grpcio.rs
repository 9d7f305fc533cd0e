//! The driver of the grpcio client tests: a Python script that imports the shared
//! `skerry_grpcio` module (stubs generated from the `.proto` files by `grpcio-tools`,
//! mutual-TLS channels) runs against a served machine and prints JSON on one line.

use std::path::{Path, PathBuf};

use super::Pem;

/// The Python of the venv `scripts/deps/grpc.sh` installs grpcio and grpcio-tools in.
pub const VENV_PYTHON: &str = "/opt/skerry/grpc-venv/bin/python3";

/// The shared Python module, written next to the stubs for the script to import.
const HELPER: &str = include_str!("skerry_grpcio.py");

/// The most identities a script is handed.
pub const MAX_IDENTITIES: usize = 8;

/// Runs `script` against the machine at `endpoint` (`https://host:port`), trusting
/// `ca_pem`, with each named identity's certificate; `dir` is a scratch directory for
/// the files and the generated stubs. Returns what the script printed, or an error
/// that says what to install or how the script failed.
pub async fn run_script(
    script: &Path,
    dir: &Path,
    endpoint: &str,
    ca_pem: &str,
    identities: &[(&str, &Pem)],
) -> Result<String, String> {
    if identities.len() > MAX_IDENTITIES {
        return Err(format!(
            "at most {MAX_IDENTITIES} identities, not {}",
            identities.len()
        ));
    }
    check_python()?;
    let write = |name: &str, text: &str| -> Result<PathBuf, String> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    };
    write("skerry_grpcio.py", HELPER)?;
    let stubs = dir.join("stubs");
    std::fs::create_dir_all(&stubs).map_err(|e| format!("creating {}: {e}", stubs.display()))?;
    let target = endpoint.trim_start_matches("https://");
    let mut command = tokio::process::Command::new(VENV_PYTHON);
    command
        .env("PYTHONPATH", dir)
        .arg(script)
        .arg(skerry_proto::PROTO_DIR)
        .arg(&stubs)
        .arg(target)
        .arg(write("ca.crt", ca_pem)?);
    for (name, pem) in identities {
        command
            .arg(name)
            .arg(write(&format!("{name}.crt"), &pem.cert)?)
            .arg(write(&format!("{name}.key"), &pem.key)?);
    }
    let output = command
        .output()
        .await
        .map_err(|e| format!("running {VENV_PYTHON}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "python client {} failed: {}\n{stdout}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(stdout)
}

/// Checks that the venv has grpcio and grpcio-tools.
fn check_python() -> Result<(), String> {
    let ok = std::process::Command::new(VENV_PYTHON)
        .args(["-c", "import grpc, grpc_tools.protoc"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "grpcio and grpcio-tools are not installed in {VENV_PYTHON}: run scripts/deps/grpc.sh"
        ))
    }
}
