//! The demo's disk images: a factory image and the releases cut from it. Deterministic,
//! so every run transfers the same bytes.
//!
//! An image's first line says whether it becomes healthy once booted; the rest looks like
//! a filesystem: runs of zeros between blocks of varied data.

use crate::board::HEALTHY_IMAGE;

/// The first bytes of an image that boots but never becomes healthy.
pub const BROKEN_IMAGE: &[u8] = b"SKERRY-IMAGE broken\n";

/// Size of every demo image.
pub const IMAGE_SIZE: usize = 16 << 20;

/// Bytes rewritten by each release, in blocks of [`CHANGE_BLOCK`].
const CHANGES_PER_RELEASE: usize = 4;
const CHANGE_BLOCK: usize = 256 << 10;

/// The factory image in slot A (version 1.0.0).
pub fn factory() -> Vec<u8> {
    let mut rng = Rng(0x5eed_0001);
    let mut image = vec![0u8; IMAGE_SIZE];
    // Three blocks in four carry data, one stays zero, like a partly filled filesystem.
    for (i, block) in image.chunks_mut(4096).enumerate() {
        if i % 4 != 3 {
            rng.fill_text(block);
        }
    }
    stamp(&mut image, HEALTHY_IMAGE, "1.0.0");
    image
}

/// The factory image with a few scattered blocks rewritten and a new first line: how an
/// upgrade of a root filesystem looks to the chunker.
pub fn release(previous: &[u8], version: &str, healthy: bool, seed: u64) -> Vec<u8> {
    let mut image = previous.to_vec();
    let mut rng = Rng(seed);
    for _ in 0..CHANGES_PER_RELEASE {
        let at = (rng.next() as usize % (IMAGE_SIZE / CHANGE_BLOCK - 1) + 1) * CHANGE_BLOCK;
        rng.fill_text(&mut image[at..at + CHANGE_BLOCK]);
    }
    let marker = if healthy { HEALTHY_IMAGE } else { BROKEN_IMAGE };
    stamp(&mut image, marker, version);
    image
}

fn stamp(image: &mut [u8], marker: &[u8], version: &str) {
    let header = [marker, b"version ", version.as_bytes(), b"\n"].concat();
    image[..64].fill(b' ');
    image[..header.len()].copy_from_slice(&header);
}

/// A small xorshift generator (deterministic across runs and machines).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Fills with letters drawn from a small alphabet: compressible, like real files.
    fn fill_text(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next();
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = b"etaoinshrdlu \n.,"[((word >> (i * 4)) & 15) as usize];
            }
        }
    }
}
