//! The header and the table of contents: encoding (for the release tool) and decoding
//! with every count, length and name checked (for the device).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::error::BundleError;
use crate::limits::{MAX_EXTENTS, MAX_FILES, MAX_FILE_LEN, MAX_TOC_LEN};
use crate::name::check_name;

/// The first bytes of every bundle (format version 1).
pub const MAGIC: &[u8; 8] = b"SKRYBDL1";
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 64;
const EXTENT_LEN: u64 = 16;

/// The fixed header: how large the table of contents and the data are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub file_count: u32,
    pub extent_count: u32,
    pub toc_len: u64,
    pub data_len: u64,
    pub toc_sha256: [u8; 32],
}

impl Header {
    /// Decodes and bounds the header (the first [`HEADER_LEN`] bytes of `bytes`).
    pub fn decode(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() < HEADER_LEN {
            // Say "not a bundle" rather than "short" when even the magic is wrong.
            if !MAGIC.starts_with(&bytes[..bytes.len().min(8)]) {
                return Err(BundleError::BadMagic);
            }
            return Err(BundleError::Truncated {
                part: "header",
                needed: HEADER_LEN as u64,
                found: bytes.len() as u64,
            });
        }
        if &bytes[..8] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let mut toc_sha256 = [0u8; 32];
        toc_sha256.copy_from_slice(&bytes[32..64]);
        let header = Self {
            file_count: u32_at(8),
            extent_count: u32_at(12),
            toc_len: u64_at(16),
            data_len: u64_at(24),
            toc_sha256,
        };
        over("files", u64::from(header.file_count), u64::from(MAX_FILES))?;
        over(
            "extents",
            u64::from(header.extent_count),
            u64::from(MAX_EXTENTS),
        )?;
        over("bytes of table of contents", header.toc_len, MAX_TOC_LEN)?;
        over("bytes of data", header.data_len, MAX_FILE_LEN)?;
        Ok(header)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.file_count.to_le_bytes());
        out.extend_from_slice(&self.extent_count.to_le_bytes());
        out.extend_from_slice(&self.toc_len.to_le_bytes());
        out.extend_from_slice(&self.data_len.to_le_bytes());
        out.extend_from_slice(&self.toc_sha256);
        out
    }

    /// The exact length of the bundle this header describes.
    pub fn bundle_len(&self) -> u64 {
        // Bounded above by the limits checked in `decode`: no overflow.
        HEADER_LEN as u64 + self.toc_len + self.data_len
    }
}

fn over(what: &'static str, value: u64, limit: u64) -> Result<(), BundleError> {
    if value > limit {
        return Err(BundleError::OverLimit { what, value, limit });
    }
    Ok(())
}

/// One range of a file that the bundle holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Where the range starts in the repository file.
    pub file_offset: u64,
    pub len: u64,
    /// Where its bytes start in the bundle.
    pub bundle_offset: u64,
}

/// One repository file in the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    /// The whole file's length in the repository (the bundle may hold only parts of it).
    pub len: u64,
    pub extents: Vec<Extent>,
}

impl FileEntry {
    /// Whether every byte of the file is in the bundle.
    pub fn is_whole(&self) -> bool {
        matches!(self.extents.as_slice(), [e] if e.file_offset == 0 && e.len == self.len)
    }

    /// Where bytes `start..end` of the file are in the bundle, if it holds them all.
    pub fn locate(&self, start: u64, end: u64) -> Option<u64> {
        // Extents are sorted and never touch: a range held at all lies in one of them.
        let i = self
            .extents
            .partition_point(|e| e.file_offset + e.len <= start);
        let e = self.extents.get(i)?;
        (e.file_offset <= start && end <= e.file_offset + e.len && start <= end)
            .then(|| e.bundle_offset + (start - e.file_offset))
    }
}

/// A validated table of contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toc {
    pub header: Header,
    files: BTreeMap<String, FileEntry>,
}

/// A file to put in a bundle: its name, whole length, and the `(offset, len)` ranges held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub name: String,
    pub len: u64,
    pub ranges: Vec<(u64, u64)>,
}

impl Toc {
    /// The file named `name`.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.get(name)
    }

    /// Every file, by name.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.values()
    }

    /// Encodes header and table of contents for `plan` (the data follows in plan order,
    /// range by range), and checks the result as a device would, so the tool never
    /// writes a bundle the device refuses.
    pub fn encode(plan: &[FilePlan]) -> Result<(Vec<u8>, Toc), BundleError> {
        let mut toc = Vec::new();
        let mut extents = Vec::new();
        let (mut extent_count, mut data_len) = (0u64, 0u64);
        for file in plan {
            check_name(&file.name)?;
            let name_len = u16::try_from(file.name.len()).map_err(|_| BundleError::BadName {
                name: file.name.clone(),
                reason: "too long",
            })?;
            toc.extend_from_slice(&name_len.to_le_bytes());
            toc.extend_from_slice(file.name.as_bytes());
            toc.extend_from_slice(&file.len.to_le_bytes());
            let count = u32::try_from(file.ranges.len()).unwrap_or(u32::MAX);
            toc.extend_from_slice(&count.to_le_bytes());
            for &(offset, len) in &file.ranges {
                extents.extend_from_slice(&offset.to_le_bytes());
                extents.extend_from_slice(&len.to_le_bytes());
                data_len = data_len.saturating_add(len);
            }
            extent_count += u64::from(count);
        }
        toc.extend_from_slice(&extents);
        let header = Header {
            file_count: u32::try_from(plan.len()).unwrap_or(u32::MAX),
            extent_count: u32::try_from(extent_count).unwrap_or(u32::MAX),
            toc_len: toc.len() as u64,
            data_len,
            toc_sha256: Sha256::digest(&toc).into(),
        };
        let mut bytes = header.encode();
        bytes.extend_from_slice(&toc);
        let parsed = Toc::parse_prefix(&bytes)?;
        Ok((bytes, parsed))
    }

    /// Decodes header and table of contents from the start of a bundle's bytes (`bytes`
    /// may end anywhere after the table of contents).
    pub fn parse_prefix(bytes: &[u8]) -> Result<Toc, BundleError> {
        let header = Header::decode(bytes)?;
        let toc_end = HEADER_LEN as u64 + header.toc_len;
        if (bytes.len() as u64) < toc_end {
            return Err(BundleError::Truncated {
                part: "table of contents",
                needed: toc_end,
                found: bytes.len() as u64,
            });
        }
        Toc::decode(header, &bytes[HEADER_LEN..toc_end as usize])
    }

    /// Validates `toc` (exactly `header.toc_len` bytes) against the header.
    pub fn decode(header: Header, toc: &[u8]) -> Result<Toc, BundleError> {
        if toc.len() as u64 != header.toc_len {
            return Err(BundleError::Truncated {
                part: "table of contents",
                needed: header.toc_len,
                found: toc.len() as u64,
            });
        }
        let digest: [u8; 32] = Sha256::digest(toc).into();
        if digest != header.toc_sha256 {
            return Err(BundleError::TocDamaged);
        }
        let mut cur = Cursor { bytes: toc, at: 0 };
        let mut listed: Vec<(String, u64, u32)> = Vec::with_capacity(header.file_count as usize);
        let mut extents_listed = 0u64;
        for _ in 0..header.file_count {
            let name_len = cur.u16()? as usize;
            let raw = cur.take(name_len)?;
            let name = std::str::from_utf8(raw).map_err(|_| BundleError::BadName {
                name: String::from_utf8_lossy(raw).into_owned(),
                reason: "not UTF-8",
            })?;
            check_name(name)?;
            let len = cur.u64()?;
            let count = cur.u32()?;
            if len > MAX_FILE_LEN {
                return Err(BundleError::OverLimit {
                    what: "bytes in one file",
                    value: len,
                    limit: MAX_FILE_LEN,
                });
            }
            if count == 0 {
                return Err(bad_extent(name, "a file with no extents".into()));
            }
            extents_listed += u64::from(count);
            listed.push((name.to_string(), len, count));
        }
        if extents_listed != u64::from(header.extent_count) {
            return Err(BundleError::BadToc {
                reason: format!(
                    "its files list {extents_listed} extents, its header {}",
                    header.extent_count
                ),
            });
        }
        let rest = toc.len() - cur.at;
        if rest as u64 != EXTENT_LEN * u64::from(header.extent_count) {
            return Err(BundleError::BadToc {
                reason: format!(
                    "{rest} bytes follow the file list, {} extents need {}",
                    header.extent_count,
                    EXTENT_LEN * u64::from(header.extent_count)
                ),
            });
        }
        let mut files = BTreeMap::new();
        let mut data_at = 0u64;
        for (name, len, count) in listed {
            let mut extents = Vec::with_capacity(count as usize);
            let mut prev_end: Option<u64> = None;
            for _ in 0..count {
                let file_offset = cur.u64()?;
                let ext_len = cur.u64()?;
                let end = file_offset
                    .checked_add(ext_len)
                    .filter(|&end| end <= len)
                    .ok_or_else(|| {
                        bad_extent(
                            &name,
                            format!("{file_offset}+{ext_len} is past its length {len}"),
                        )
                    })?;
                if ext_len == 0 {
                    return Err(bad_extent(
                        &name,
                        format!("an empty extent at {file_offset}"),
                    ));
                }
                if prev_end.is_some_and(|p| file_offset <= p) {
                    return Err(bad_extent(
                        &name,
                        format!("the extent at {file_offset} overlaps, touches or precedes the one before"),
                    ));
                }
                prev_end = Some(end);
                extents.push(Extent {
                    file_offset,
                    len: ext_len,
                    bundle_offset: HEADER_LEN as u64 + header.toc_len + data_at,
                });
                data_at = data_at.saturating_add(ext_len);
            }
            let entry = FileEntry {
                name: name.clone(),
                len,
                extents,
            };
            if files.insert(name.clone(), entry).is_some() {
                return Err(BundleError::Duplicate { name });
            }
        }
        if data_at != header.data_len {
            return Err(BundleError::OutsideData {
                declared: data_at,
                data_len: header.data_len,
            });
        }
        Ok(Toc { header, files })
    }
}

fn bad_extent(name: &str, reason: String) -> BundleError {
    BundleError::BadExtent {
        name: name.into(),
        reason,
    }
}

/// Reads the table of contents; running out of bytes is a malformed table.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BundleError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(BundleError::BadToc {
                reason: format!("it ends inside a file record at byte {}", self.at),
            });
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, BundleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, BundleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, BundleError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
}
