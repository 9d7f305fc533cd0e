//! An index head is signed by hash, but what it declares is still refused past our own
//! limits, with an error naming the value, before anything is allocated for it.

use skerry_chunks::limits::{MAX_CHUNKS, MAX_CHUNK_LEN, MAX_HEAD_LEN, MAX_PAGE_ENTRIES};
use skerry_chunks::{chunk_hash, paginate, ChunkEntry, ChunkParams, IndexError, IndexHead};

fn sample() -> IndexHead {
    let entries: Vec<ChunkEntry> = (0..300u32)
        .map(|i| ChunkEntry {
            hash: chunk_hash(&i.to_le_bytes()),
            len: 5000,
            comp_len: 100,
        })
        .collect();
    let hashes: Vec<_> = entries.iter().map(|e| e.hash).collect();
    let total = entries.iter().map(|e| u64::from(e.len)).sum();
    IndexHead::build(
        total,
        [1; 32],
        ChunkParams::DEFAULT,
        &entries,
        &paginate(&hashes),
    )
    .0
}

fn too_large(result: Result<IndexHead, IndexError>, what: &str) -> (u64, u64) {
    match result {
        Err(IndexError::TooLarge {
            what: found,
            value,
            limit,
        }) if found == what => (value, limit),
        other => panic!("expected {what} to be refused as too large, got {other:?}"),
    }
}

#[test]
fn a_head_length_of_2_pow_62_is_refused_before_use() {
    let err = IndexHead::check_head_len(1 << 62).unwrap_err();
    assert!(
        matches!(err, IndexError::TooLarge { value, limit, .. } if value == 1 << 62 && limit == MAX_HEAD_LEN),
        "{err}"
    );
    assert!(err.to_string().contains("head length"), "{err}");
    IndexHead::check_head_len(sample().encoded_len() as u64).unwrap();
}

#[test]
fn chunks_larger_than_our_limit_are_refused() {
    let mut head = sample();
    head.params = ChunkParams {
        min: 4 * 1024 * 1024,
        avg: 8 * 1024 * 1024,
        max: 16 * 1024 * 1024,
    };
    let (value, limit) = too_large(IndexHead::decode(&head.encode()), "maximum chunk length");
    assert_eq!((value, limit), (16 << 20, u64::from(MAX_CHUNK_LEN)));
}

#[test]
fn a_page_of_512_mib_is_refused_from_the_head_alone() {
    let mut head = sample();
    let entries = (512u32 << 20) / 24;
    let last = head.pages.len() - 1;
    head.pages[last].entries = entries;
    head.pages[last].body_len = entries * 24;
    head.chunk_count = head.pages.iter().map(|p| u64::from(p.entries)).sum();
    let (value, limit) = too_large(IndexHead::decode(&head.encode()), "page entry count");
    assert_eq!(
        (value, limit),
        (u64::from(entries), u64::from(MAX_PAGE_ENTRIES))
    );
}

#[test]
fn more_chunks_than_our_limit_are_refused() {
    let mut head = sample();
    head.chunk_count = MAX_CHUNKS + 1;
    too_large(IndexHead::decode(&head.encode()), "chunk count");
}

#[test]
fn a_body_of_the_wrong_length_or_a_missing_page_is_an_error() {
    let head = sample();
    assert!(matches!(
        head.decode_page(0, &[0; 10]),
        Err(IndexError::PageHash { page: 0 })
    ));
    assert!(matches!(
        head.decode_page(head.pages.len(), &[]),
        Err(IndexError::Invalid { .. })
    ));
}
