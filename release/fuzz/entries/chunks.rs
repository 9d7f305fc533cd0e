//! Fuzz entry points for the chunk index, shared by the fuzz targets and the corpus
//! replay test (`release/chunks/tests/fuzz_corpus.rs`).
//!
//! The head and the pages come from the network: any bytes give a head or an error,
//! never a panic or an allocation past our limits.

use skerry_chunks::{chunk_hash, paginate, ChunkEntry, ChunkParams, IndexError, IndexHead};

/// Decodes `data` as an index head, and a decoded head's derived lengths.
pub fn head(data: &[u8]) -> Result<IndexHead, IndexError> {
    let head = IndexHead::decode(data)?;
    let _ = head.file_len();
    for i in 0..head.pages.len() {
        let _ = head.page_image_len(i);
    }
    Ok(head)
}

/// Page bodies: the first byte picks a mode.
///
/// - even: `data[1..]` is a hostile body for a page of a fixed head (the length and
///   hash gate);
/// - odd: `data[1..]` is read as chunk entries (24 bytes each) that the publisher
///   might have written, a head is built from them, and every page body it built is
///   decoded back: past the hash gate, every entry check runs on arbitrary values.
pub fn page(data: &[u8]) -> Result<usize, IndexError> {
    let Some((&mode, rest)) = data.split_first() else {
        return Err(IndexError::Truncated {
            part: "page",
            needed: 1,
            found: 0,
        });
    };
    if mode % 2 == 0 {
        let (head, _) = fixed();
        let i = usize::from(mode / 2) % head.pages.len();
        return head.decode_page(i, rest).map(|e| e.len());
    }
    let entries: Vec<ChunkEntry> = rest
        .chunks_exact(24)
        .take(4096)
        .map(|r| {
            let mut hash = [0u8; 16];
            hash.copy_from_slice(&r[..16]);
            let word = |at: usize| u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
            ChunkEntry {
                hash,
                len: word(16),
                comp_len: word(20),
            }
        })
        .collect();
    let (head, bodies) = build(&entries);
    let head = IndexHead::decode(&head.encode())?;
    let mut decoded = 0;
    let mut at = 0usize;
    for (i, p) in head.pages.iter().enumerate() {
        let end = at + p.body_len as usize;
        decoded += head.decode_page(i, &bodies[at..end])?.len();
        at = end;
    }
    Ok(decoded)
}

fn build(entries: &[ChunkEntry]) -> (IndexHead, Vec<u8>) {
    let hashes: Vec<_> = entries.iter().map(|e| e.hash).collect();
    let total = entries.iter().map(|e| u64::from(e.len)).sum();
    IndexHead::build(
        total,
        [0; 32],
        ChunkParams::DEFAULT,
        entries,
        &paginate(&hashes),
    )
}

/// A well-formed index of 300 chunks.
fn fixed() -> (IndexHead, Vec<u8>) {
    let entries: Vec<ChunkEntry> = (0..300u32)
        .map(|i| ChunkEntry {
            hash: chunk_hash(&i.to_le_bytes()),
            len: 5000 + i,
            comp_len: if i % 5 == 0 { 0 } else { 100 + i },
        })
        .collect();
    build(&entries)
}

/// Seed inputs, named by the outcome the replay expects (`accept-` or `reject-`).
pub fn head_seeds() -> Vec<(String, Vec<u8>)> {
    let (head, _) = fixed();
    let good = head.encode();
    let mut big_chunks = head.clone();
    big_chunks.params = ChunkParams {
        min: 4 << 20,
        avg: 8 << 20,
        max: 16 << 20,
    };
    let mut big_page = head.clone();
    let last = big_page.pages.len() - 1;
    big_page.pages[last].entries = (512 << 20) / 24;
    big_page.pages[last].body_len = big_page.pages[last].entries * 24;
    let mut wrong_count = head.clone();
    wrong_count.chunk_count += 1;
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 1;
    vec![
        ("accept-300-chunks".into(), good.clone()),
        ("reject-truncated".into(), good[..good.len() - 7].to_vec()),
        ("reject-bad-magic".into(), bad_magic),
        ("reject-16-mib-chunks".into(), big_chunks.encode()),
        ("reject-512-mib-page".into(), big_page.encode()),
        ("reject-chunk-count-disagrees".into(), wrong_count.encode()),
        ("reject-empty".into(), Vec::new()),
    ]
}

/// Seed inputs for [`page`].
pub fn page_seeds() -> Vec<(String, Vec<u8>)> {
    let (head, bodies) = fixed();
    let first = &head.pages[0];
    let body = &bodies[..first.body_len as usize];
    let mut flipped = body.to_vec();
    flipped[5] ^= 1;
    let entry = |len: u32, comp: u32, seed: u32| {
        let mut e = chunk_hash(&seed.to_le_bytes()).to_vec();
        e.extend_from_slice(&len.to_le_bytes());
        e.extend_from_slice(&comp.to_le_bytes());
        e
    };
    let built_ok: Vec<u8> = std::iter::once(1u8)
        .chain((0..40).flat_map(|i| entry(4096 + i, 200 + i, i)))
        .collect();
    let built_oversized: Vec<u8> = std::iter::once(1u8).chain(entry(1 << 20, 100, 1)).collect();
    let built_dangling: Vec<u8> = std::iter::once(1u8).chain(entry(4096, 0, 2)).collect();
    vec![
        ("accept-fixed-page-0".into(), [&[0u8][..], body].concat()),
        ("accept-built-40-entries".into(), built_ok),
        ("accept-built-repeat-first".into(), built_dangling),
        (
            "reject-fixed-page-0-flipped".into(),
            [&[0u8][..], &flipped].concat(),
        ),
        ("reject-fixed-page-1-short".into(), vec![2u8; 30]),
        ("reject-built-chunk-over-max".into(), built_oversized),
        ("reject-empty".into(), Vec::new()),
    ]
}
