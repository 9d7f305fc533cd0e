//! Where a file's data is: the ranges SEEK_DATA/SEEK_HOLE report, the way bmaptool's
//! block map describes an image, without a map file. Holes shorter than [`MIN_HOLE`]
//! are read as data (their zeros are then found by the zero-block scan), which bounds
//! the number of ranges by the file's size however fragmented it is.

use std::fs::File;
use std::io;
use std::ops::Range;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

/// The smallest hole kept as a hole; shorter ones are read as data.
pub const MIN_HOLE: u64 = 1 << 20;

/// The first data offset at or after `from` and before `end`, or `None` when only a
/// hole remains. A filesystem without SEEK_DATA reports everything as data.
pub fn next_data(file: &File, from: u64, end: u64) -> io::Result<Option<u64>> {
    if from >= end {
        return Ok(None);
    }
    match rustix::fs::seek(file, SeekFrom::Data(from)) {
        Ok(at) if at < end => Ok(Some(at.max(from))),
        Ok(_) | Err(Errno::NXIO) => Ok(None),
        Err(Errno::INVAL) | Err(Errno::OPNOTSUPP) => Ok(Some(from)),
        Err(e) => Err(e.into()),
    }
}

/// The first hole offset after the data at `from` (`end` when the data runs to the end).
pub fn next_hole(file: &File, from: u64, end: u64) -> io::Result<u64> {
    match rustix::fs::seek(file, SeekFrom::Hole(from)) {
        // A hole must lie after the data at `from`; anything else is read as data to `end`.
        Ok(at) if at > from => Ok(at.min(end)),
        Ok(_) | Err(Errno::NXIO) | Err(Errno::INVAL) | Err(Errno::OPNOTSUPP) => Ok(end),
        Err(e) => Err(e.into()),
    }
}

/// The data ranges of `file` in `0..len`, in order, with short holes merged into data.
pub fn data_ranges(file: &File, len: u64) -> io::Result<Vec<Range<u64>>> {
    let mut ranges: Vec<Range<u64>> = Vec::new();
    let mut at = 0;
    while let Some(start) = next_data(file, at, len)? {
        let end = next_hole(file, start, len)?;
        match ranges.last_mut() {
            Some(last) if start - last.end < MIN_HOLE => last.end = end,
            _ => ranges.push(start..end),
        }
        at = end;
    }
    Ok(ranges)
}

/// The bytes of `ranges` in total.
pub fn total(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn finds_data_between_holes_and_merges_short_holes() {
        let file = tempfile::tempfile().unwrap();
        let mib = 1 << 20;
        file.set_len(16 * mib).unwrap();
        file.write_all_at(&[1; 4096], 2 * mib).unwrap();
        // 64 KiB later: a short hole, merged.
        file.write_all_at(&[2; 4096], 2 * mib + 69632).unwrap();
        file.write_all_at(&[3; 4096], 16 * mib - 4096).unwrap();
        let ranges = data_ranges(&file, 16 * mib).unwrap();
        assert_eq!(ranges.len(), 2, "{ranges:?}");
        assert!(ranges[0].start <= 2 * mib && ranges[0].end >= 2 * mib + 73728);
        assert!(ranges[1].start <= 16 * mib - 4096 && ranges[1].end == 16 * mib);
        assert!(total(&ranges) < 4 * mib, "{ranges:?}");
    }

    #[test]
    fn an_all_hole_file_has_no_data() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(8 << 20).unwrap();
        assert_eq!(data_ranges(&file, 8 << 20).unwrap(), vec![]);
    }
}
