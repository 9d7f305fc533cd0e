//! Replays the committed corpus of the `bundle_toc` fuzz target
//! (`release/fuzz/corpus/bundle_toc`) through the entry point the fuzzer calls. Each
//! file's name says its expected outcome: `accept-*` must be accepted, `reject-*` refused
//! with an error; nothing may panic. The seeds the entry module defines must all be in
//! the corpus (write them with `SKERRY_FUZZ_WRITE_SEEDS=1`).

#[path = "../../fuzz/entries/bundle.rs"]
mod entries;

#[path = "../../fuzz/entries/replay.rs"]
mod replay;

#[test]
fn bundle_toc_corpus() {
    replay::seeds_are_in_corpus("bundle_toc", entries::seeds());
    replay::replay("bundle_toc", |data| entries::toc(data).map(|_| ()));
}
