//! Content-defined chunking of slot images and the chunk index that describes an image.
//!
//! An image is cut where a rolling gear hash of its bytes matches a mask, so an edit
//! moves only the cuts near it and every other chunk keeps its bytes, and so its hash.
//! The device cuts its active slot the same way and so knows which chunks it already has.
//!
//! # Layout
//! - [`chunker`]: the FastCDC-style cutter (gear hash, normalized masks) and a streaming
//!   reader that yields chunks with bounded memory.
//! - [`index`]: the chunk index format: a small signed-by-hash head (header + page table)
//!   and pages of chunk entries, each page named by the hash of its chunk list so a device
//!   can skip every page its seed already reproduces.
//! - [`page`]: the content-defined grouping of chunk entries into pages.
//! - [`patch`]: patched chunks (zstd against a base region the device holds) and the
//!   patch index that lists them, with the bounded patch decoder.
//! - [`limits`]: our ceilings on every size and count an index declares.

pub mod chunker;
pub mod error;
pub mod index;
pub mod limits;
pub mod page;
pub mod patch;

pub use chunker::{chunk_hash, ChunkHash, ChunkParams, ChunkReader};
pub use error::IndexError;
pub use index::{ChunkEntry, IndexHead, PageRef, ENTRY_LEN};
pub use page::{page_ids_hash, paginate};
pub use patch::{PatchEntry, PatchError, PatchIndex};
