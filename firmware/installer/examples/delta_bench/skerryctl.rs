//! The real release tooling and the real installer, driven through the `skerryctl`
//! binary (its command line is the public interface, so the bench measures exactly
//! what an operator publishes and what a device fetches).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

pub const BOARD: &str = "bench";

pub struct Skerryctl {
    exe: PathBuf,
}

/// What the installer reported for one install (`skerryctl install --output json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    pub bytes_fetched: u64,
    pub chunks_fetched: u64,
    pub chunks_reused: u64,
    pub index_pages_fetched: u64,
    /// Chunks that came as patches, and patches that failed a check and gave way to
    /// the full chunk (`None` from an installer that predates patches).
    pub chunks_patched: Option<u64>,
    pub patch_fallbacks: Option<u64>,
}

/// Whether `skerryctl release add --help` offers patched chunks (`--delta-from BASE`).
pub fn offers_delta_from(help: &str) -> bool {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[')
        .any(|word| word == "--delta-from")
}

/// Reads the figures of an install report; a missing field is an error naming it.
pub fn parse_report(json: &[u8]) -> Result<Installed, Error> {
    let v: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| format!("skerryctl install printed no JSON report: {e}"))?;
    let field = |name: &str| -> Result<u64, Error> {
        v.get(name)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| format!("the install report has no number \"{name}\"").into())
    };
    Ok(Installed {
        bytes_fetched: field("bytes_fetched")?,
        chunks_fetched: field("chunks_fetched")?,
        chunks_reused: field("chunks_reused")?,
        index_pages_fetched: field("index_pages_fetched")?,
        chunks_patched: v.get("chunks_patched").and_then(serde_json::Value::as_u64),
        patch_fallbacks: v.get("patch_fallbacks").and_then(serde_json::Value::as_u64),
    })
}

impl Skerryctl {
    /// `$SKERRYCTL`, else the `skerryctl` built beside this example
    /// (`target/<profile>/skerryctl`).
    pub fn locate() -> Result<Self, Error> {
        let exe = match std::env::var_os("SKERRYCTL") {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe()?
                .parent()
                .and_then(Path::parent)
                .ok_or("cannot tell the target directory of this example")?
                .join("skerryctl"),
        };
        if !exe.is_file() {
            return Err(format!(
                "no skerryctl at {}: build it with `cargo build --release -p skerryctl` \
                 (scripts/bench does) or set SKERRYCTL",
                exe.display()
            )
            .into());
        }
        Ok(Self { exe })
    }

    fn run(&self, args: &[&OsStr]) -> Result<Vec<u8>, Error> {
        let out = Command::new(&self.exe).args(args).output()?;
        if !out.status.success() {
            return Err(format!(
                "skerryctl {} failed: {}",
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(out.stdout)
    }

    /// Whether this build of skerryctl can publish patched chunks.
    pub fn has_delta_from(&self) -> Result<bool, Error> {
        let help = self.run(&["release".as_ref(), "add".as_ref(), "--help".as_ref()])?;
        Ok(offers_delta_from(&String::from_utf8_lossy(&help)))
    }

    pub fn keygen(&self, keys: &Path) -> Result<(), Error> {
        self.run(&[
            "release".as_ref(),
            "keygen".as_ref(),
            "--out".as_ref(),
            keys.as_os_str(),
        ])?;
        Ok(())
    }

    pub fn init(&self, keys: &Path, repo: &Path) -> Result<(), Error> {
        self.run(&[
            "release".as_ref(),
            "init".as_ref(),
            "--keys".as_ref(),
            keys.as_os_str(),
            "--repo".as_ref(),
            repo.as_os_str(),
        ])?;
        Ok(())
    }

    /// Publishes `image` as `version`; with `delta_from`, as patches against that base
    /// where they are smaller.
    pub fn add(
        &self,
        keys: &Path,
        repo: &Path,
        version: &str,
        image: &Path,
        delta_from: Option<&str>,
    ) -> Result<(), Error> {
        let mut args: Vec<&OsStr> = vec![
            "release".as_ref(),
            "add".as_ref(),
            "--keys".as_ref(),
            keys.as_os_str(),
            "--repo".as_ref(),
            repo.as_os_str(),
            "--board".as_ref(),
            BOARD.as_ref(),
            "--version".as_ref(),
            version.as_ref(),
            "--image".as_ref(),
            image.as_os_str(),
        ];
        if let Some(base) = delta_from {
            args.extend([OsStr::new("--delta-from"), OsStr::new(base)]);
        }
        self.run(&args)?;
        Ok(())
    }

    /// Installs `version` from `url` into `slot`, reusing `seed`'s chunks.
    pub fn install(
        &self,
        url: &str,
        repo: &Path,
        state: &Path,
        slot: &Path,
        seed: Option<&Path>,
        version: &str,
    ) -> Result<Installed, Error> {
        let root = repo.join("metadata/1.root.json");
        let mut args: Vec<&OsStr> = vec![
            "--output".as_ref(),
            "json".as_ref(),
            "install".as_ref(),
            "--repo".as_ref(),
            url.as_ref(),
            "--trusted-root".as_ref(),
            root.as_os_str(),
            "--board".as_ref(),
            BOARD.as_ref(),
            "--slot".as_ref(),
            slot.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
            "--version".as_ref(),
            version.as_ref(),
        ];
        if let Some(seed) = seed {
            args.extend([OsStr::new("--seed"), seed.as_os_str()]);
        }
        parse_report(&self.run(&args)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_found_only_as_a_flag() {
        let with = "Options:\n      --delta-from <BASE>  Earlier versions to patch against\n";
        assert!(offers_delta_from(with));
        assert!(offers_delta_from(
            "  --level <LEVEL>\n  --delta-from=<BASES>\n"
        ));
        let without = "Options:\n      --level <LEVEL>  zstd level (no --delta-from-like flag)\n";
        assert!(!offers_delta_from(without));
        assert!(!offers_delta_from("see delta-from in the README"));
    }

    #[test]
    fn an_install_report_is_read() {
        let json = br#"{"board":"bench","version":"2.0.0","bytes_fetched":1234,
            "bytes_written":9,"chunks_reused":7,"chunks_fetched":3,
            "index_pages_fetched":2,"index_pages_from_seed":0}"#;
        assert_eq!(
            parse_report(json).unwrap(),
            Installed {
                bytes_fetched: 1234,
                chunks_fetched: 3,
                chunks_reused: 7,
                index_pages_fetched: 2,
                chunks_patched: None,
                patch_fallbacks: None,
            }
        );
        let patched = br#"{"bytes_fetched":5,"chunks_reused":7,"chunks_fetched":3,
            "index_pages_fetched":2,"chunks_patched":2,"patch_fallbacks":0}"#;
        let r = parse_report(patched).unwrap();
        assert_eq!((r.chunks_patched, r.patch_fallbacks), (Some(2), Some(0)));
    }

    #[test]
    fn a_report_without_its_figures_is_an_error_naming_the_field() {
        let err = parse_report(br#"{"bytes_fetched":1}"#).unwrap_err();
        assert!(err.to_string().contains("chunks_fetched"), "{err}");
        assert!(parse_report(b"installed").is_err());
    }
}
