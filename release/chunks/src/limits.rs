//! Our own ceilings on what a chunk index may declare.
//!
//! The head and pages are signed (by hash), but a signature says who wrote them, not that
//! they are sane: a stolen or buggy release key can sign any number. Every length or
//! count a device allocates for is checked against these before it is used.

/// The largest chunk an index may declare: four times the release default's maximum
/// (64 KiB). The installer holds a bounded number of chunks in memory at once, so this
/// bounds its memory; an index cut with a larger `max` is refused.
pub const MAX_CHUNK_LEN: u32 = 256 * 1024;

/// The most entries in one page: what [`paginate`](crate::paginate) ever produces.
pub const MAX_PAGE_ENTRIES: u32 = 256;

/// The most bytes of one page body ([`MAX_PAGE_ENTRIES`] entries).
pub const MAX_PAGE_BODY: u32 = MAX_PAGE_ENTRIES * crate::index::ENTRY_LEN as u32;

/// The most bytes of an index head (header and page table): about 87,000 pages, enough
/// for images of well over 64 GiB at the default chunk sizes.
pub const MAX_HEAD_LEN: u64 = 8 * 1024 * 1024;

/// The most chunks in one image: 64 GiB at the default 16 KiB average.
pub const MAX_CHUNKS: u64 = 4 * 1024 * 1024;
