//! Fuzz entry points for patched chunks, shared by the fuzz targets and the corpus
//! replay test (`release/chunks/tests/fuzz_corpus.rs`).
//!
//! The patch index and the patches come from the network (signed, but a signature says
//! who wrote them, not that they are sane): any bytes give a result or an error, never a
//! panic or an allocation past our limits.

use skerry_chunks::patch::{apply_patch, make_patch};
use skerry_chunks::{chunk_hash, PatchError, PatchIndex};

/// Decodes `data` as a patch index.
pub fn index(data: &[u8]) -> Result<usize, PatchError> {
    PatchIndex::decode(data).map(|i| i.entries.len())
}

/// `data` = chunk name [16] ‖ chunk length u32 ‖ patch: the patch is applied to a fixed
/// 64 KiB base region. Accepted when it gives exactly the named chunk.
pub fn apply(data: &[u8]) -> Result<usize, PatchError> {
    if data.len() < 20 {
        return Err(PatchError::Truncated {
            needed: 20,
            found: data.len(),
        });
    }
    let mut chunk = [0u8; 16];
    chunk.copy_from_slice(&data[..16]);
    let chunk_len = u32::from_le_bytes([data[16], data[17], data[18], data[19]]);
    let patch = &data[20..];
    apply_patch(patch, &base(), &chunk, chunk_len).map(|d| d.len())
}

/// The fixed base region: text-like bytes.
fn base() -> Vec<u8> {
    let mut s = 0x5eedu64;
    (0..65_536)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            b"abcdefgh ijklmno\n"[(s % 17) as usize]
        })
        .collect()
}

fn framed(chunk: &[u8], patch: &[u8]) -> Vec<u8> {
    let mut out = chunk_hash(chunk).to_vec();
    out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
    out.extend_from_slice(patch);
    out
}

/// Seed inputs for [`apply`], named by the outcome the replay expects.
pub fn apply_seeds() -> Vec<(String, Vec<u8>)> {
    let base = base();
    let mut chunk = base[10_000..30_000].to_vec();
    chunk[5000..5008].copy_from_slice(b"CHANGED!");
    let patch = make_patch(&chunk, &base, 19).unwrap().unwrap();
    let good = framed(&chunk, &patch);
    let mut flipped = good.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 0x21;
    let mut other_name = good.clone();
    other_name[0] ^= 1;
    let mut longer = good.clone();
    longer[16..20].copy_from_slice(&(chunk.len() as u32 + 1).to_le_bytes());
    let mut huge = good.clone();
    huge[16..20].copy_from_slice(&(64u32 << 20).to_le_bytes());
    let mut two_frames = good.clone();
    two_frames.extend_from_slice(&patch);
    // A frame declaring a 128 MiB window (not single-segment, window descriptor 17 << 3)
    // and a 20,000-byte content: refused from its header.
    let mut big_window = framed(&chunk, &[0x28, 0xb5, 0x2f, 0xfd, 0x80, 17 << 3]);
    big_window.extend_from_slice(&20_000u32.to_le_bytes());
    big_window.extend_from_slice(&patch[patch.len().min(9)..]);
    vec![
        ("accept-small-edit".into(), good.clone()),
        ("reject-flipped".into(), flipped),
        ("reject-other-chunk-name".into(), other_name),
        ("reject-length-disagrees".into(), longer),
        ("reject-64-mib-output".into(), huge),
        ("reject-two-frames".into(), two_frames),
        ("reject-128-mib-window".into(), big_window),
        ("reject-truncated".into(), good[..good.len() / 2].to_vec()),
        ("reject-empty".into(), Vec::new()),
    ]
}

/// Seed inputs for [`index`].
pub fn index_seeds() -> Vec<(String, Vec<u8>)> {
    let mut good = PatchIndex {
        chunk_count: 100,
        base_chunk_count: 90,
        ..PatchIndex::default()
    };
    for i in 0..5u32 {
        good.push(i * 7 + 1, 100 + i, i * 10, 2);
    }
    let bytes = good.encode();
    let mut many = bytes.clone();
    many[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut sum = bytes.clone();
    sum[24] ^= 1;
    let mut wide = good.clone();
    wide.entries[0].base_count = 1000;
    let mut past_base = good.clone();
    past_base.entries[4].base_first = 89;
    let mut unordered = good.clone();
    unordered.entries[2].chunk = 1;
    let mut past_chunks = good.clone();
    past_chunks.chunk_count = 20;
    vec![
        ("accept-5-entries".into(), bytes.clone()),
        ("reject-4-billion-entries".into(), many),
        ("reject-patches-disagree-with-pack".into(), sum),
        ("reject-1000-base-chunks".into(), wide.encode()),
        ("reject-base-past-its-chunks".into(), past_base.encode()),
        ("reject-chunks-out-of-order".into(), unordered.encode()),
        ("reject-chunk-past-the-release".into(), past_chunks.encode()),
        ("reject-truncated".into(), bytes[..bytes.len() - 3].to_vec()),
        ("reject-empty".into(), Vec::new()),
    ]
}
