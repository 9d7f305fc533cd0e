//! Replays the committed corpus of the `tuf_metadata` fuzz target
//! (`release/fuzz/corpus/tuf_metadata`) through the entry point the fuzzer calls. Each
//! file's name says its expected outcome: `accept-*` must be accepted, `reject-*` refused
//! with an error; nothing may panic. The seeds the entry module defines must all be in
//! the corpus (write them with `SKERRY_FUZZ_WRITE_SEEDS=1`).

#[path = "../../fuzz/entries/tuf.rs"]
mod entries;

#[path = "../../fuzz/entries/replay.rs"]
mod replay;

#[test]
fn tuf_metadata_corpus() {
    replay::seeds_are_in_corpus("tuf_metadata", entries::seeds());
    replay::replay("tuf_metadata", |data| entries::metadata(data).map(|_| ()));
}
