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
    #[error("{what} {value:?} names a file: it may hold only [A-Za-z0-9._+-] and not be . or ..")]
    Name { what: &'static str, value: String },
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

/// A value that becomes part of a file name (`VERSION.swu`, `BOARD-VERSION.img`): no
/// `/`, not `.` or `..`, so it cannot lead outside the output directory.
fn file_name_part(what: &'static str, value: &str) -> Result<(), SwuError> {
    plain(what, value)?;
    if value.contains('/') || value == "." || value == ".." {
        return Err(SwuError::Name {
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

    /// A member whose data is copied from `from`, which must hold exactly `size` bytes
    /// whose sha256 is `sha256` (as hashed before): an image rewritten in between is
    /// refused, not signed with a hash its bytes do not have.
    fn member_from(
        &mut self,
        name: &str,
        from: &mut impl Read,
        size: u32,
        sha256: &str,
        ino: u32,
    ) -> std::io::Result<()> {
        self.header(name, size, ino)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut left = u64::from(size);
        let mut from = from.take(left + 1);
        loop {
            let n = from.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.out.write_all(&buf[..n])?;
            hasher.update(&buf[..n]);
            left = left.checked_sub(n as u64).ok_or_else(changed)?;
        }
        if left != 0 || hex(&hasher.finalize()) != sha256 {
            return Err(changed());
        }
        self.at += u64::from(size);
        self.align()
    }
}

fn changed() -> std::io::Error {
    std::io::Error::other("the image changed while the .swu was written (its length or sha256)")
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
    file_name_part("version", spec.version)?;
    file_name_part("board", spec.board)?;
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
    let pid = std::process::id();
    let desc_path = out_dir.join(format!(".{}.{pid}.sw-description", spec.version));
    let sig_path = out_dir.join(format!(".{}.{pid}.sw-description.sig", spec.version));
    std::fs::write(&desc_path, &desc).map_err(write_err(&desc_path))?;
    let signed = sign(&desc_path, spec.key_pem, spec.cert_pem, &sig_path);
    let sig = signed.and_then(|()| std::fs::read(&sig_path).map_err(read_err(&sig_path)));
    let _ = std::fs::remove_file(&desc_path);
    let _ = std::fs::remove_file(&sig_path);
    let sig = sig?;
    std::io::Seek::rewind(&mut image).map_err(read_err(spec.image))?;
    let path = out_dir.join(format!("{}.swu", spec.version));
    // Named by this process, so two runs for one version do not write into each other.
    let tmp = out_dir.join(format!(".{}.swu.{}.tmp", spec.version, std::process::id()));
    let written = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut cpio = Cpio {
            out: std::io::BufWriter::with_capacity(1 << 20, file),
            at: 0,
        };
        cpio.member("sw-description", desc.as_bytes(), 1)?;
        cpio.member("sw-description.sig", &sig, 2)?;
        cpio.member_from(&image_name, &mut image, length, &sha256, 3)?;
        cpio.member("TRAILER!!!", &[], 0)?;
        let file = cpio.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(SwuError::Write { path: tmp, source });
    }
    if let Err(source) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(SwuError::Write { path, source });
    }
    Ok(path)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_that_changed_after_hashing_is_refused() {
        let image = vec![7u8; 3000];
        let sha256 = hex(&Sha256::digest(&image));
        let copy = |bytes: &[u8], size: u32| {
            let mut cpio = Cpio {
                out: Vec::new(),
                at: 0,
            };
            cpio.member_from("i.img", &mut &bytes[..], size, &sha256, 3)
                .map(|()| cpio.out.len())
        };
        assert!(copy(&image, 3000).is_ok());
        let mut same_length = image.clone();
        same_length[1500] = 8;
        for (bytes, size) in [
            (&same_length[..], 3000),
            (&image[..2999], 3000),
            (&image[..], 2999),
        ] {
            let e = copy(bytes, size).unwrap_err();
            assert!(e.to_string().contains("changed"), "{e}");
        }
    }

    #[test]
    fn a_version_or_board_cannot_lead_out_of_the_output_directory() {
        for (what, value) in [("version", "../x"), ("version", ".."), ("board", "a/b")] {
            let e = file_name_part(what, value).unwrap_err().to_string();
            assert!(e.contains(what) && e.contains("names a file"), "{e}");
        }
        file_name_part("version", "1.2.0-rc.1+build.5").unwrap();
    }
}
