//! A release as an SWUpdate `.swu`, for devices that cannot verify TUF (hawkBit DDI
//! targets running Debian's `swupdate`): a newc cpio whose first member is
//! `sw-description` (libconfig, the image's sha256 in it), then `sw-description.sig`, a
//! CMS detached DER signature over it made by the release's swu signing key
//! (`openssl cms -sign -binary -nosmimecap -outform DER`, run through the openssl CLI),
//! then the image. SWUpdate checks the signature against its `-k` certificate and the
//! image against the sha256.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Longest image accepted (the cpio newc size field is 32 bits).
pub const MAX_SWU_IMAGE_BYTES: u64 = u32::MAX as u64;

/// What a `.swu` is made of.
#[derive(Debug, Clone)]
pub struct SwuSpec<'a> {
    pub version: &'a str,
    pub board: &'a str,
    pub image: &'a Path,
    /// Where the device's raw handler writes the image.
    pub device: &'a str,
    pub key_pem: &'a Path,
    pub cert_pem: &'a Path,
}

#[derive(Debug, thiserror::Error)]
pub enum SwuError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {value:?} may hold only [A-Za-z0-9._/+-]")]
    Field { what: &'static str, value: String },
    #[error("the image is over {MAX_SWU_IMAGE_BYTES} bytes")]
    TooLarge,
    #[error("openssl cms -sign failed (install Debian's openssl): {0}")]
    Sign(String),
}

fn plain(what: &'static str, value: &str) -> Result<(), SwuError> {
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/+-".contains(&b))
    {
        return Err(SwuError::Field {
            what,
            value: value.into(),
        });
    }
    Ok(())
}

/// The `sw-description` for one raw image.
pub fn description(spec: &SwuSpec<'_>, image_name: &str, sha256: &str) -> String {
    format!(
        "software =\n{{\n\tversion = \"{v}\";\n\tdescription = \"skerry {b} {v}\";\n\thardware-compatibility: [ \"1.0\" ];\n\timages: (\n\t\t{{\n\t\t\tfilename = \"{image_name}\";\n\t\t\ttype = \"raw\";\n\t\t\tdevice = \"{d}\";\n\t\t\tsha256 = \"{sha256}\";\n\t\t}}\n\t);\n}}\n",
        v = spec.version,
        b = spec.board,
        d = spec.device,
    )
}

fn cpio_member(out: &mut Vec<u8>, name: &str, data: &[u8], ino: u32) {
    let namesize = name.len() + 1;
    let header = format!(
        "070701{ino:08x}{mode:08x}{z:08x}{z:08x}{one:08x}{z:08x}{size:08x}{z:08x}{z:08x}{z:08x}{z:08x}{namesize:08x}{z:08x}",
        mode = if name == "TRAILER!!!" { 0 } else { 0o100644 },
        z = 0,
        one = 1,
        size = data.len(),
    );
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(data);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// Signs `description` with the key and certificate: CMS, detached, DER.
pub fn sign(description: &Path, key: &Path, cert: &Path, sig: &Path) -> Result<(), SwuError> {
    let out = Command::new("openssl")
        .args([
            "cms",
            "-sign",
            "-binary",
            "-nosmimecap",
            "-outform",
            "DER",
            "-in",
        ])
        .arg(description)
        .arg("-signer")
        .arg(cert)
        .arg("-inkey")
        .arg(key)
        .arg("-out")
        .arg(sig)
        .output()
        .map_err(|e| SwuError::Sign(e.to_string()))?;
    if !out.status.success() {
        return Err(SwuError::Sign(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// Writes `OUT_DIR/<version>.swu` and returns its path.
pub fn write_swu(spec: &SwuSpec<'_>, out_dir: &Path) -> Result<PathBuf, SwuError> {
    plain("version", spec.version)?;
    plain("board", spec.board)?;
    plain("device", spec.device)?;
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| SwuError::Read {
            path: p.into(),
            source,
        })
    };
    // Bounded before it is read whole.
    let length = std::fs::metadata(spec.image)
        .map_err(|source| SwuError::Read {
            path: spec.image.into(),
            source,
        })?
        .len();
    if length > MAX_SWU_IMAGE_BYTES {
        return Err(SwuError::TooLarge);
    }
    let image = read(spec.image)?;
    if image.len() as u64 > MAX_SWU_IMAGE_BYTES {
        return Err(SwuError::TooLarge);
    }
    let image_name = format!("{}-{}.img", spec.board, spec.version);
    let desc = description(spec, &image_name, &hex(&Sha256::digest(&image)));
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SwuError::Write { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(write_err(out_dir))?;
    let desc_path = out_dir.join(format!(".{}.sw-description", spec.version));
    let sig_path = out_dir.join(format!(".{}.sw-description.sig", spec.version));
    std::fs::write(&desc_path, &desc).map_err(write_err(&desc_path))?;
    let signed = sign(&desc_path, spec.key_pem, spec.cert_pem, &sig_path);
    let sig = signed.and_then(|()| read(&sig_path));
    let _ = std::fs::remove_file(&desc_path);
    let _ = std::fs::remove_file(&sig_path);
    let sig = sig?;
    let mut cpio = Vec::with_capacity(image.len() + desc.len() + sig.len() + 1024);
    cpio_member(&mut cpio, "sw-description", desc.as_bytes(), 1);
    cpio_member(&mut cpio, "sw-description.sig", &sig, 2);
    cpio_member(&mut cpio, &image_name, &image, 3);
    cpio_member(&mut cpio, "TRAILER!!!", &[], 0);
    let path = out_dir.join(format!("{}.swu", spec.version));
    let tmp = out_dir.join(format!(".{}.swu.tmp", spec.version));
    let mut f = std::fs::File::create(&tmp).map_err(write_err(&tmp))?;
    f.write_all(&cpio)
        .and_then(|()| f.sync_all())
        .map_err(write_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(write_err(&path))?;
    Ok(path)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
