//! Replays the committed corpora of the `chunk_index_head` and `chunk_index_page` fuzz
//! targets (`release/fuzz/corpus/…`) through the entry points the fuzzer calls. Each
//! file's name says its expected outcome: `accept-*` must be accepted, `reject-*` refused
//! with an error; nothing may panic. The seeds the entry module defines must all be in
//! the corpus (write them with `SKERRY_FUZZ_WRITE_SEEDS=1`).

#[path = "../../fuzz/entries/chunks.rs"]
mod entries;

#[path = "../../fuzz/entries/replay.rs"]
mod replay;

#[test]
fn chunk_index_head_corpus() {
    replay::seeds_are_in_corpus("chunk_index_head", entries::head_seeds());
    replay::replay("chunk_index_head", |data| entries::head(data).map(|_| ()));
}

#[test]
fn chunk_index_page_corpus() {
    replay::seeds_are_in_corpus("chunk_index_page", entries::page_seeds());
    replay::replay("chunk_index_page", |data| entries::page(data).map(|_| ()));
}
