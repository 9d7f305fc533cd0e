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

/// The most base chunks one patch may be made against.
pub const MAX_PATCH_BASE_CHUNKS: u32 = 8;

/// The most bytes of one patch's base region (the zstd dictionary the device builds
/// from its seed): four chunks of the largest size allowed.
pub const MAX_PATCH_BASE_BYTES: u64 = 4 * MAX_CHUNK_LEN as u64;

/// The largest zstd window (as a power of two) a patch frame may declare: 2 MiB covers
/// the largest base region and the largest chunk.
pub const MAX_PATCH_WINDOW_LOG: u32 = 21;

/// The most bytes of a patch index (the device holds it whole): about 100,000 patched
/// chunks, over 1.5 GB of changed data at the default chunk sizes.
pub const MAX_PATCH_INDEX_LEN: u64 = 8 * 1024 * 1024;
