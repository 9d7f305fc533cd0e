//! The content-defined chunker.
//!
//! FastCDC's idea: skip `min` bytes, then roll a gear hash (`h = (h << 1) + GEAR[b]`)
//! and cut where its top bits are zero, with a stricter mask before `avg` and a looser
//! one after, which narrows the spread of chunk sizes. Bit 63 of the hash depends on
//! the last 64 bytes only, so cuts depend on local content.

use std::io::{self, Read};

/// A chunk's name: the first 16 bytes of the BLAKE3 hash of its bytes. 128 bits keep
/// second preimages out of reach while halving the index; BLAKE3 hashes several times
/// faster than SHA-256 here, and every chunk is hashed on the way in (and the seed cut
/// whole), so it sets the installer's speed. The whole image's SHA-256 is signed as well.
pub type ChunkHash = [u8; 16];

/// Hashes a chunk.
pub fn chunk_hash(data: &[u8]) -> ChunkHash {
    let full = blake3::hash(data);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full.as_bytes()[..16]);
    out
}

/// Chunk size bounds. `avg` must be a power of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl ChunkParams {
    /// Our release default: 4 KiB / 16 KiB / 64 KiB.
    pub const DEFAULT: ChunkParams = ChunkParams {
        min: 4 * 1024,
        avg: 16 * 1024,
        max: 64 * 1024,
    };

    /// Checks the bounds are usable (they come from outside in an index): `max` is at
    /// most [`MAX_CHUNK_LEN`](crate::limits::MAX_CHUNK_LEN).
    pub fn is_valid(&self) -> bool {
        self.avg.is_power_of_two()
            && self.min >= 64
            && self.min < self.avg
            && self.avg < self.max
            && self.max <= crate::limits::MAX_CHUNK_LEN
    }

    fn masks(&self) -> (u64, u64) {
        let bits = self.avg.trailing_zeros();
        let top = |n: u32| -> u64 {
            if n == 0 {
                0
            } else {
                !0u64 << (64 - n.min(63))
            }
        };
        (top(bits + 2), top(bits.saturating_sub(2)))
    }

    /// The length of the first chunk of `data` (all of `data` if it is shorter than
    /// `min`, at most `max`). `data` must hold `max` bytes unless it is the end.
    pub fn cut(&self, data: &[u8]) -> usize {
        let len = data.len();
        if len <= self.min as usize {
            return len;
        }
        let end = len.min(self.max as usize);
        let normal = end.min(self.avg as usize);
        let (strict, loose) = self.masks();
        let mut h: u64 = 0;
        let mut i = self.min as usize;
        while i < normal {
            h = (h << 1).wrapping_add(GEAR[data[i] as usize]);
            if h & strict == 0 {
                return i + 1;
            }
            i += 1;
        }
        while i < end {
            h = (h << 1).wrapping_add(GEAR[data[i] as usize]);
            if h & loose == 0 {
                return i + 1;
            }
            i += 1;
        }
        end
    }
}

/// Reads a stream and yields its chunks, holding at most `2 × max` bytes.
#[derive(Debug)]
pub struct ChunkReader<R> {
    inner: R,
    params: ChunkParams,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(inner: R, params: ChunkParams) -> Self {
        Self {
            inner,
            params,
            buf: vec![0; 2 * params.max as usize],
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        let max = self.params.max as usize;
        if self.end - self.start < max && !self.eof {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            while self.end < self.buf.len() {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => self.end += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if self.start == self.end {
            return Ok(None);
        }
        let n = self.params.cut(&self.buf[self.start..self.end]);
        let chunk = &self.buf[self.start..self.start + n];
        self.start += n;
        Ok(Some(chunk))
    }
}

const fn gear_table() -> [u64; 256] {
    // splitmix64 from a fixed seed: any fixed table works, it only has to be the same
    // on the release machine and on every device.
    let mut table = [0u64; 256];
    let mut state: u64 = 0x0053_6b65_7272_7900; // "Skerry"
    let mut i = 0;
    while i < 256 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        table[i] = z ^ (z >> 31);
        i += 1;
    }
    table
}

static GEAR: [u64; 256] = gear_table();

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect()
    }

    fn chunks(data: &[u8]) -> Vec<Vec<u8>> {
        let mut r = ChunkReader::new(data, ChunkParams::DEFAULT);
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            out.push(c.to_vec());
        }
        out
    }

    #[test]
    fn chunks_cover_input_within_bounds() {
        let data = noise(3 << 20, 1);
        let cs = chunks(&data);
        assert_eq!(cs.concat(), data);
        let p = ChunkParams::DEFAULT;
        for c in &cs[..cs.len() - 1] {
            assert!(c.len() >= p.min as usize && c.len() <= p.max as usize);
        }
        let avg = data.len() / cs.len();
        assert!((10_000..30_000).contains(&avg), "average chunk {avg}");
    }

    #[test]
    fn an_edit_changes_only_nearby_chunks() {
        let a = noise(2 << 20, 2);
        let mut b = a.clone();
        b[1_000_000..1_000_100].copy_from_slice(&noise(100, 3));
        let ca: std::collections::HashSet<_> = chunks(&a).into_iter().collect();
        let cb = chunks(&b);
        let new = cb.iter().filter(|c| !ca.contains(*c)).count();
        assert!(new <= 3, "{new} chunks changed");
    }

    #[test]
    fn default_params_are_valid() {
        assert!(ChunkParams::DEFAULT.is_valid());
        assert!(!ChunkParams {
            min: 1,
            avg: 3,
            max: 2
        }
        .is_valid());
    }
}
