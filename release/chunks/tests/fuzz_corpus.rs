//! Replays the committed corpora of the `chunk_index_head`, `chunk_index_page`,
//! `patch_apply` and `patch_index` fuzz
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

#[path = "../../fuzz/entries/patch.rs"]
mod patch_entries;

#[test]
fn patch_apply_corpus() {
    replay::seeds_are_in_corpus("patch_apply", patch_entries::apply_seeds());
    replay::replay("patch_apply", |data| patch_entries::apply(data).map(|_| ()));
}

#[test]
fn patch_index_corpus() {
    replay::seeds_are_in_corpus("patch_index", patch_entries::index_seeds());
    replay::replay("patch_index", |data| patch_entries::index(data).map(|_| ()));
}
