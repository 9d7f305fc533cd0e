//! Fuzz entry points for the offline bundle's header and table of contents, shared by the
//! `bundle_toc` fuzz target and the corpus replay test
//! (`release/bundle/tests/fuzz_corpus.rs`).
//!
//! A bundle comes from a USB stick: any bytes give a table of contents or an error, never
//! a panic or an allocation past our limits.

use sha2::{Digest, Sha256};
use skerry_bundle::{BundleError, Toc, HEADER_LEN, MAGIC};

/// The first byte picks a mode:
///
/// - even: `data[1..]` is the start of a bundle, as read from the stick;
/// - odd: `data[1..]` is a header and table of contents whose sha256 is recomputed into
///   the header first, so past the hash gate every structural check runs on arbitrary
///   tables.
///
/// A decoded table is then asked for ranges of each file, as the transport does.
pub fn toc(data: &[u8]) -> Result<usize, BundleError> {
    let Some((&mode, rest)) = data.split_first() else {
        return Err(BundleError::BadMagic);
    };
    let toc = if mode % 2 == 0 {
        Toc::parse_prefix(rest)?
    } else {
        Toc::parse_prefix(&rehash(rest))?
    };
    let mut found = 0;
    for file in toc.files() {
        for (start, end) in [(0, file.len), (file.len / 2, file.len), (1, 2)] {
            found += usize::from(file.locate(start, end).is_some());
        }
    }
    Ok(found)
}

/// `bytes` with the header's toc sha256 set to the sha256 of what follows the header.
fn rehash(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.len() >= HEADER_LEN {
        let mut len = [0u8; 8];
        len.copy_from_slice(&out[16..24]);
        let toc_len = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
        let end = HEADER_LEN.saturating_add(toc_len).min(out.len());
        let digest: [u8; 32] = Sha256::digest(&out[HEADER_LEN..end]).into();
        out[32..64].copy_from_slice(&digest);
    }
    out
}

/// One file of a hand-made table: name, whole length, `(offset, len)` extents.
pub type RawFile<'a> = (&'a str, u64, &'a [(u64, u64)]);

/// Encodes a header and table of contents without any check (a hostile writer), with
/// the data length the extents add up to unless `data_len` overrides it.
pub fn raw_toc(files: &[RawFile<'_>], data_len: Option<u64>) -> Vec<u8> {
    let mut toc = Vec::new();
    let mut extents = Vec::new();
    let (mut count, mut sum) = (0u32, 0u64);
    for (name, len, ranges) in files {
        toc.extend_from_slice(&(name.len() as u16).to_le_bytes());
        toc.extend_from_slice(name.as_bytes());
        toc.extend_from_slice(&len.to_le_bytes());
        toc.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
        for (offset, l) in ranges.iter() {
            extents.extend_from_slice(&offset.to_le_bytes());
            extents.extend_from_slice(&l.to_le_bytes());
            sum = sum.wrapping_add(*l);
            count += 1;
        }
    }
    toc.extend_from_slice(&extents);
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(files.len() as u32).to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(toc.len() as u64).to_le_bytes());
    out.extend_from_slice(&data_len.unwrap_or(sum).to_le_bytes());
    let digest: [u8; 32] = Sha256::digest(&toc).into();
    out.extend_from_slice(&digest);
    out.extend_from_slice(&toc);
    out
}

/// A table like the release tool writes: metadata, an index and a sparse pack.
pub fn good() -> Vec<u8> {
    raw_toc(
        &[
            ("bundle.json", 60, &[(0, 60)]),
            ("metadata/1.root.json", 900, &[(0, 900)]),
            ("metadata/timestamp.json", 400, &[(0, 400)]),
            ("targets/rpi4/1.1.0/ab.image.idx", 5000, &[(0, 5000)]),
            (
                "targets/rpi4/1.1.0/cd.image.pack",
                1 << 20,
                &[(100, 4000), (9000, 300), ((1 << 20) - 10, 10)],
            ),
        ],
        None,
    )
}

/// Seed inputs, named by the outcome the replay expects (`accept-` or `reject-`).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let raw = |mode: u8, bytes: Vec<u8>| [vec![mode], bytes].concat();
    let good = good();
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut many_files = good.clone();
    many_files[8..12].copy_from_slice(&100_000u32.to_le_bytes());
    let mut huge_toc = good.clone();
    huge_toc[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let one = |name: &'static str, len: u64, ranges: &'static [(u64, u64)]| {
        raw_toc(&[(name, len, ranges)], None)
    };
    vec![
        ("accept-release-tool-table".into(), raw(0, good.clone())),
        ("accept-rehashed".into(), raw(1, good.clone())),
        ("reject-empty".into(), Vec::new()),
        (
            "reject-bad-magic".into(),
            raw(0, b"PK\x03\x04 not a bundle".to_vec()),
        ),
        ("reject-short-header".into(), raw(0, good[..40].to_vec())),
        (
            "reject-truncated-toc".into(),
            raw(0, good[..good.len() - 9].to_vec()),
        ),
        ("reject-toc-damaged".into(), raw(0, flipped)),
        ("reject-too-many-files".into(), raw(1, many_files)),
        ("reject-huge-toc".into(), raw(1, huge_toc)),
        (
            "reject-duplicate-name".into(),
            raw(
                0,
                raw_toc(
                    &[
                        ("metadata/timestamp.json", 10, &[(0, 10)]),
                        ("metadata/timestamp.json", 10, &[(0, 10)]),
                    ],
                    None,
                ),
            ),
        ),
        (
            "reject-traversal".into(),
            raw(0, one("targets/../../etc/shadow", 10, &[(0, 10)])),
        ),
        (
            "reject-absolute".into(),
            raw(0, one("/etc/shadow", 10, &[(0, 10)])),
        ),
        (
            "reject-overlapping-extents".into(),
            raw(0, one("p", 100, &[(0, 50), (40, 20)])),
        ),
        (
            "reject-touching-extents".into(),
            raw(0, one("p", 100, &[(0, 50), (50, 20)])),
        ),
        (
            "reject-extent-past-file".into(),
            raw(0, one("p", 100, &[(90, 20)])),
        ),
        (
            "reject-extent-overflow".into(),
            raw(0, one("p", u64::MAX, &[(u64::MAX - 1, 5)])),
        ),
        (
            "reject-empty-extent".into(),
            raw(0, one("p", 100, &[(5, 0)])),
        ),
        ("reject-no-extents".into(), raw(0, one("p", 100, &[]))),
        (
            "reject-outside-data".into(),
            raw(0, raw_toc(&[("p", 100, &[(0, 100)])], Some(50))),
        ),
    ]
}
