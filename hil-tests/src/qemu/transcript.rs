//! What a serial console has printed so far, and the expect logic over it: find text
//! from where the last match ended, whether or not a newline followed it (U-Boot's
//! "Hit any key to stop autoboot" has none). Pure, so it is tested without QEMU.

/// The most console output kept; older, already matched text is dropped beyond it, so
/// a chatty guest cannot grow the harness without bound.
pub const MAX_TRANSCRIPT: usize = 4 << 20;

/// The console output of one machine, with a cursor after the last match.
#[derive(Debug, Default)]
pub struct Transcript {
    bytes: Vec<u8>,
    /// Offset in `bytes` where the next search starts.
    cursor: usize,
    /// Bytes dropped from the front (matched text, to stay under [`MAX_TRANSCRIPT`]).
    dropped: usize,
}

impl Transcript {
    /// Appends what the console printed. Carriage returns are kept: a caller looking for
    /// text across a line break matches on `\n`, and `\r\n` still contains it.
    pub fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > MAX_TRANSCRIPT {
            // Keep everything not yet searched; drop the oldest matched text first.
            let excess = self.bytes.len() - MAX_TRANSCRIPT;
            let drop = excess.min(self.cursor);
            self.bytes.drain(..drop);
            self.cursor -= drop;
            self.dropped += drop;
        }
    }

    /// Looks for `needle` after the previous match. On a match, returns the text from the
    /// previous match's end up to and including `needle`, and moves the cursor past it,
    /// so the same output never matches twice.
    pub fn take_through(&mut self, needle: &str) -> Option<String> {
        let found = find(&self.bytes[self.cursor..], needle.as_bytes())?;
        let end = self.cursor + found + needle.len();
        let text = String::from_utf8_lossy(&self.bytes[self.cursor..end]).into_owned();
        self.cursor = end;
        Some(text)
    }

    /// The text not yet matched (for an error message when a match never comes).
    pub fn unmatched(&self) -> String {
        String::from_utf8_lossy(&self.bytes[self.cursor..]).into_owned()
    }

    /// Everything kept, matched or not.
    pub fn all(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// How many bytes the console has printed in total.
    pub fn total_len(&self) -> usize {
        self.dropped + self.bytes.len()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_prompt_without_newline() {
        let mut t = Transcript::default();
        t.push(b"U-Boot 2023.01\r\nHit any key to stop autoboot:  0 ");
        let got = t.take_through("Hit any key").unwrap();
        assert!(got.starts_with("U-Boot 2023.01"));
        assert!(got.ends_with("Hit any key"));
        assert_eq!(t.unmatched(), " to stop autoboot:  0 ");
    }

    #[test]
    fn matches_text_split_across_reads() {
        let mut t = Transcript::default();
        t.push(b"skerry: start");
        assert!(t.take_through("starting slot B").is_none());
        t.push(b"ing slot B\r\n");
        assert_eq!(
            t.take_through("starting slot B").unwrap(),
            "skerry: starting slot B"
        );
    }

    #[test]
    fn the_same_output_never_matches_twice() {
        let mut t = Transcript::default();
        t.push(b"SKERRY-BOOT-B\nSKERRY-BOOT-B\n");
        assert!(t.take_through("SKERRY-BOOT-B").is_some());
        assert_eq!(t.take_through("SKERRY-BOOT-B").unwrap(), "\nSKERRY-BOOT-B");
        assert!(t.take_through("SKERRY-BOOT-B").is_none());
    }

    #[test]
    fn a_later_needle_skips_what_comes_before_it() {
        let mut t = Transcript::default();
        t.push(b"one two three");
        assert_eq!(t.take_through("three").unwrap(), "one two three");
        assert!(
            t.take_through("one").is_none(),
            "matched text is behind the cursor"
        );
    }

    #[test]
    fn invalid_utf8_does_not_stop_a_match() {
        let mut t = Transcript::default();
        t.push(b"\xff\xfe\x1b[2Jprompt> ");
        assert!(t.take_through("prompt> ").unwrap().ends_with("prompt> "));
    }

    #[test]
    fn matched_text_is_dropped_beyond_the_limit_but_unmatched_text_is_kept() {
        let mut t = Transcript::default();
        t.push(&vec![b'x'; MAX_TRANSCRIPT]);
        t.push(b"MARK");
        assert!(t.take_through("MARK").is_some());
        t.push(b"tail");
        assert!(t.all().len() <= MAX_TRANSCRIPT);
        assert_eq!(t.unmatched(), "tail");
        assert_eq!(t.total_len(), MAX_TRANSCRIPT + 8);
    }
}
