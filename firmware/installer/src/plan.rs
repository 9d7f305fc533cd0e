//! Deciding where each chunk of the new image comes from.
//!
//! The index head is fetched first (its sha256 is signed). Pages whose identity the
//! seed reproduces are rebuilt locally; only the other pages' bodies are fetched, with
//! adjacent bodies merged into one range request. Then every chunk gets a source: the
//! seed, an earlier chunk of the slot being written (repeats), or the pack; then
//! [`patches::attach`](crate::patches::attach) turns pack chunks into patches where the
//! seed holds their base.

use std::collections::HashMap;
use std::io::Read;

use sha2::{Digest, Sha256};
use skerry_chunks::{ChunkHash, IndexHead};

use crate::error::InstallError;
use crate::patches::PlannedPatches;
use crate::seed::SeedIndex;
use crate::select::SelectedRelease;
use crate::transport::{FetchError, Fetcher, RangeStream};

/// A chunk's hash, length and, when its page was fetched, its compressed length.
type KnownChunk = (ChunkHash, u32, Option<u32>);

/// Where one chunk's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Already in the seed at this offset.
    Seed { offset: u64 },
    /// A repeat of a chunk written earlier into the slot at this offset.
    Slot { offset: u64 },
    /// Compressed in the pack.
    Pack { offset: u64, comp_len: u32 },
    /// A patch against a base region the seed holds (`patch` indexes the plan's
    /// patches); the full chunk stays in the pack at `pack_offset` as the fallback.
    Patch {
        pack_offset: u64,
        comp_len: u32,
        patch: usize,
    },
}

/// One chunk of the new image.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    pub hash: ChunkHash,
    pub len: u32,
    pub source: Source,
}

/// The whole image as a list of chunk operations, in image order.
#[derive(Debug)]
pub struct Plan {
    pub head: IndexHead,
    pub ops: Vec<Op>,
    pub pages_fetched: usize,
    pub pages_from_seed: usize,
    /// The patches some chunks come from, when a patch set's base is held.
    pub patches: Option<PlannedPatches>,
}

impl Plan {
    /// Bytes of the pack that must be fetched.
    pub fn pack_bytes(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| match op.source {
                Source::Pack { comp_len, .. } => u64::from(comp_len),
                _ => 0,
            })
            .sum()
    }

    /// Bytes of patches that must be fetched.
    pub fn patch_bytes(&self) -> u64 {
        self.patches.as_ref().map_or(0, |p| {
            p.patches.iter().map(|pp| u64::from(pp.patch_len)).sum()
        })
    }
}

/// Fetches and checks the index head of the selected release.
pub fn fetch_head(fetcher: &Fetcher, sel: &SelectedRelease) -> Result<IndexHead, InstallError> {
    let what = format!("the chunk index head of {}", sel.index_target);
    // The signed length is checked against our limit before it sizes a download.
    IndexHead::check_head_len(sel.release.head_length).map_err(|source| InstallError::Index {
        target: sel.index_target.clone(),
        source,
    })?;
    let bytes = fetcher
        .get_range(&sel.index_path, 0, sel.release.head_length)
        .map_err(|source| InstallError::Fetch {
            what: what.clone(),
            source,
        })?;
    if hex::encode(Sha256::digest(&bytes)) != sel.release.head_sha256 {
        return Err(InstallError::HashMismatch { what });
    }
    let head = IndexHead::decode(&bytes).map_err(|source| InstallError::Index {
        target: sel.index_target.clone(),
        source,
    })?;
    if head.image_len != sel.release.image_length
        || hex::encode(head.image_sha256) != sel.release.image_sha256
        || head.file_len() != sel.index_len
        || head.pack_len != sel.pack_len
    {
        return Err(InstallError::BadRelease {
            target: sel.index_target.clone(),
            reason: "the index head disagrees with the signed image or file lengths".into(),
        });
    }
    Ok(head)
}

/// Builds the plan, fetching the index pages the seed cannot rebuild. `partial` is the
/// target slot itself when an earlier run of the same install was interrupted: a chunk
/// it holds at or after the chunk's own offset is not yet overwritten when the writer
/// reaches it, so it is copied instead of fetched (resume across runs).
pub fn make_plan(
    fetcher: &Fetcher,
    sel: &SelectedRelease,
    head: IndexHead,
    seed: &SeedIndex,
    partial: &SeedIndex,
) -> Result<Plan, InstallError> {
    let mut pages: Vec<Option<Vec<KnownChunk>>> = vec![None; head.pages.len()];
    let mut missing = Vec::new();
    for (i, page) in head.pages.iter().enumerate() {
        match seed.pages.get(&page.ids_hash) {
            Some(entries) => {
                pages[i] = Some(entries.iter().map(|&(h, l)| (h, l, None)).collect());
            }
            None => missing.push(i),
        }
    }
    let pages_from_seed = head.pages.len() - missing.len();
    // Adjacent pages come in one range request, read one page at a time: a body is
    // never larger than the head allows (at most `MAX_PAGE_BODY` bytes, checked when
    // the head was decoded) and is hashed before it is parsed.
    let mut body = Vec::with_capacity(skerry_chunks::limits::MAX_PAGE_BODY as usize);
    for run in runs(&missing) {
        let first = &head.pages[run[0]];
        let len: u64 = run.iter().map(|&i| u64::from(head.pages[i].body_len)).sum();
        let mut stream = fetcher.stream(&sel.index_path, first.body_offset, len);
        for &i in run {
            body.resize(head.pages[i].body_len as usize, 0);
            read_page(&mut stream, &mut body, fetcher.url(&sel.index_path)).map_err(|source| {
                InstallError::Fetch {
                    what: format!("chunk index page {i} of {}", sel.index_target),
                    source,
                }
            })?;
            let entries = head
                .decode_page(i, &body)
                .map_err(|source| InstallError::Index {
                    target: sel.index_target.clone(),
                    source,
                })?;
            pages[i] = Some(
                entries
                    .into_iter()
                    .map(|e| (e.hash, e.len, Some(e.comp_len)))
                    .collect(),
            );
        }
    }

    let mut ops = Vec::with_capacity(head.chunk_count as usize);
    let mut written: HashMap<ChunkHash, u64> = HashMap::new();
    let mut image_offset = 0u64;
    for (i, page) in pages.into_iter().enumerate() {
        let mut pack_offset = head.pages[i].pack_offset;
        for (hash, len, comp_len) in page.unwrap_or_default() {
            let source =
                if let Some(&(offset, _)) = seed.chunks.get(&hash).filter(|(_, l)| *l == len) {
                    Source::Seed { offset }
                } else if let Some(&(offset, _)) = partial
                    .chunks
                    .get(&hash)
                    .filter(|(at, l)| *l == len && *at >= image_offset)
                {
                    Source::Slot { offset }
                } else if let Some(&offset) = written.get(&hash) {
                    Source::Slot { offset }
                } else {
                    match comp_len {
                        Some(c) if c > 0 => Source::Pack {
                            offset: pack_offset,
                            comp_len: c,
                        },
                        _ => return Err(InstallError::DanglingRepeat { chunk: ops.len() }),
                    }
                };
            pack_offset += u64::from(comp_len.unwrap_or(0));
            written.entry(hash).or_insert(image_offset);
            ops.push(Op { hash, len, source });
            image_offset += u64::from(len);
        }
    }
    Ok(Plan {
        head,
        ops,
        pages_fetched: missing.len(),
        pages_from_seed,
        patches: None,
    })
}

/// Fills `body` from the page stream; its I/O errors carry the fetch error.
fn read_page(stream: &mut RangeStream, body: &mut [u8], url: String) -> Result<(), FetchError> {
    stream.read_exact(body).map_err(|e| {
        let kind = e.kind();
        let source = match e.into_inner() {
            Some(inner) => match inner.downcast::<FetchError>() {
                Ok(fetch) => return *fetch,
                Err(other) => std::io::Error::new(kind, other),
            },
            None => std::io::Error::from(kind),
        };
        FetchError::Io { url, source }
    })
}

/// Splits sorted page numbers into runs of consecutive pages.
fn runs(pages: &[usize]) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=pages.len() {
        if i == pages.len() || pages[i] != pages[i - 1] + 1 {
            if start < i {
                out.push(&pages[start..i]);
            }
            start = i;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_split_at_gaps() {
        let r = super::runs(&[1, 2, 3, 7, 9, 10]);
        assert_eq!(r, vec![&[1, 2, 3][..], &[7][..], &[9, 10][..]]);
        assert!(super::runs(&[]).is_empty());
    }
}
