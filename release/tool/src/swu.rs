//! A release as an SWUpdate `.swu`, for devices that cannot verify TUF (hawkBit DDI
//! targets running Debian's `swupdate`): a newc cpio whose first member is
//! `sw-description` (libconfig, the image's sha256 in it), then `sw-description.sig`, a
//! CMS detached DER signature over it made by the release's swu signing key
//! (`openssl cms -sign -binary -nosmimecap -outform DER`, run through the openssl CLI),
//! then the image. SWUpdate checks the signature against its `-k` certificate and the
//! image against the sha256.

use std::io::{Read, Write};
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

/// A newc cpio written in order, counting its bytes for the 4-byte alignment.
struct Cpio<W: Write> {
    out: W,
    at: u64,
}

impl<W: Write> Cpio<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }

    fn align(&mut self) -> std::io::Result<()> {
        let pad = (4 - self.at % 4) % 4;
        self.put(&[0; 3][..pad as usize])
    }

    /// A member's header and name; its `size` bytes of data follow.
    fn header(&mut self, name: &str, size: u32, ino: u32) -> std::io::Result<()> {
        let namesize = name.len() + 1;
        let header = format!(
            "070701{ino:08x}{mode:08x}{z:08x}{z:08x}{one:08x}{z:08x}{size:08x}{z:08x}{z:08x}{z:08x}{z:08x}{namesize:08x}{z:08x}",
            mode = if name == "TRAILER!!!" { 0 } else { 0o100644 },
            z = 0,
            one = 1,
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.align()
    }

    fn member(&mut self, name: &str, data: &[u8], ino: u32) -> std::io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| too_large_io())?;
        self.header(name, size, ino)?;
        self.put(data)?;
        self.align()
    }

    /// A member whose data is copied from `from`, which must hold exactly `size` bytes.
    fn member_from(
        &mut self,
        name: &str,
        from: &mut impl Read,
        size: u32,
        ino: u32,
    ) -> std::io::Result<()> {
        self.header(name, size, ino)?;
        let copied = std::io::copy(&mut from.take(u64::from(size) + 1), &mut self.out)?;
        if copied != u64::from(size) {
            return Err(std::io::Error::other(format!(
                "the image changed while it was written ({copied} bytes, not {size})"
            )));
        }
        self.at += copied;
        self.align()
    }
}

fn too_large_io() -> std::io::Error {
    std::io::Error::other(format!("a member over {MAX_SWU_IMAGE_BYTES} bytes"))
}

/// The image's sha256, read in pieces.
fn image_sha256(file: &mut std::fs::File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
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

/// Writes `OUT_DIR/<version>.swu` and returns its path. The image is read twice in
/// pieces (its sha256 goes into `sw-description`, which comes first), never whole; the
/// `.swu` appears only complete (written beside it, synced, renamed).
pub fn write_swu(spec: &SwuSpec<'_>, out_dir: &Path) -> Result<PathBuf, SwuError> {
    plain("version", spec.version)?;
    plain("board", spec.board)?;
    plain("device", spec.device)?;
    let read_err = |p: &Path| {
        let path = p.to_path_buf();
        move |source| SwuError::Read { path, source }
    };
    let mut image = std::fs::File::open(spec.image).map_err(read_err(spec.image))?;
    let length = image.metadata().map_err(read_err(spec.image))?.len();
    let length = u32::try_from(length).map_err(|_| SwuError::TooLarge)?;
    let sha256 = image_sha256(&mut image).map_err(read_err(spec.image))?;
    let image_name = format!("{}-{}.img", spec.board, spec.version);
    let desc = description(spec, &image_name, &sha256);
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SwuError::Write { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(write_err(out_dir))?;
    let desc_path = out_dir.join(format!(".{}.sw-description", spec.version));
    let sig_path = out_dir.join(format!(".{}.sw-description.sig", spec.version));
    std::fs::write(&desc_path, &desc).map_err(write_err(&desc_path))?;
    let signed = sign(&desc_path, spec.key_pem, spec.cert_pem, &sig_path);
    let sig = signed.and_then(|()| std::fs::read(&sig_path).map_err(read_err(&sig_path)));
    let _ = std::fs::remove_file(&desc_path);
    let _ = std::fs::remove_file(&sig_path);
    let sig = sig?;
    std::io::Seek::rewind(&mut image).map_err(read_err(spec.image))?;
    let path = out_dir.join(format!("{}.swu", spec.version));
    let tmp = out_dir.join(format!(".{}.swu.tmp", spec.version));
    let written = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut cpio = Cpio {
            out: std::io::BufWriter::with_capacity(1 << 20, file),
            at: 0,
        };
        cpio.member("sw-description", desc.as_bytes(), 1)?;
        cpio.member("sw-description.sig", &sig, 2)?;
        cpio.member_from(&image_name, &mut image, length, 3)?;
        cpio.member("TRAILER!!!", &[], 0)?;
        let file = cpio.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(SwuError::Write { path: tmp, source });
    }
    std::fs::rename(&tmp, &path).map_err(write_err(&path))?;
    Ok(path)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
