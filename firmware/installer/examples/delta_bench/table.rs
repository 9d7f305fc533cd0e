//! The figures of one upgrade (v1 → v2 in one slot format) and the table they print
//! as: bytes fetched by us (with and without patches), casync and zstd, ratios to
//! `zstd -3 --patch-from` and casync, and whether the targets are met.

/// What the device fetched for v2 holding v1, counted on the wire by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// Response bodies: metadata, index pages, chunks and patches.
    pub bytes: u64,
    pub requests: u64,
    /// What the installer itself reported (`bytes_fetched`), to cross-check.
    pub reported: u64,
    pub chunks_fetched: u64,
    pub chunks_reused: u64,
    pub index_pages: u64,
    /// Chunks that came as patches (beside the `chunks_fetched` whole ones), and
    /// patches that failed a check and gave way to the whole chunk (`None`: an
    /// installer that predates patches does not report them).
    pub chunks_patched: Option<u64>,
    pub patch_fallbacks: Option<u64>,
}

/// The release published with `--delta-from 1.0.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patched {
    pub fetched: Fetched,
    /// Repository bytes over the one published without patches.
    pub extra_storage: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patches {
    Measured(Patched),
    /// This skerryctl has no `--delta-from`: the row is left out, never guessed.
    NotOffered,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub format: String,
    pub image_len: u64,
    pub changed_blocks: u64,
    pub plain: Fetched,
    pub plain_repo: u64,
    pub patches: Patches,
    pub casync: u64,
    pub zstd3: u64,
    pub zstd19: u64,
    pub window_log: u32,
    /// Whether the `<= 1.1x zstd -3` target applies (the ext4 upgrade).
    pub zstd_target: bool,
}

fn mb(b: u64) -> String {
    format!("{:.2} MB", b as f64 / 1e6)
}

fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.2}x", a as f64 / b as f64)
    }
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "NO"
    }
}

impl Upgrade {
    /// The targets of one of our rows: fewer bytes than casync, at most 1.1x `zstd -3`
    /// where that applies, and (with patches) never more than without.
    fn targets(&self, ours: u64, without: Option<u64>) -> String {
        let mut t = vec![format!("<casync {}", yes(ours < self.casync))];
        if self.zstd_target {
            t.push(format!(
                "<=1.1x zstd-3 {}",
                yes(ours as f64 <= 1.1 * self.zstd3 as f64)
            ));
        }
        if let Some(without) = without {
            t.push(format!("<=no patches {}", yes(ours <= without)));
        }
        t.join(", ")
    }

    fn rows(&self) -> Vec<[String; 5]> {
        let ours = |label: String, f: &Fetched, without: Option<u64>| {
            [
                label,
                mb(f.bytes),
                ratio(f.bytes, self.zstd3),
                ratio(f.bytes, self.casync),
                self.targets(f.bytes, without),
            ]
        };
        let peer = |label: String, b: u64| {
            [
                label,
                mb(b),
                ratio(b, self.zstd3),
                ratio(b, self.casync),
                String::new(),
            ]
        };
        let mut rows = vec![[
            format!(
                "{}: {} MiB image, {} of 4 KiB blocks differ",
                self.format,
                self.image_len >> 20,
                mb(self.changed_blocks * 4096)
            ),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]];
        rows.push(ours(
            format!(
                "  ours, whole chunks ({} chunks, {} index pages, {} requests)",
                self.plain.chunks_fetched, self.plain.index_pages, self.plain.requests
            ),
            &self.plain,
            None,
        ));
        if let Patches::Measured(p) = &self.patches {
            rows.push(ours(
                format!(
                    "  ours, with patches (--delta-from 1.0.0; {} chunks as patches, {} whole, {} fell back, {} requests)",
                    p.fetched.chunks_patched.map_or("?".into(), |n| n.to_string()),
                    p.fetched.chunks_fetched,
                    p.fetched.patch_fallbacks.map_or("?".into(), |n| n.to_string()),
                    p.fetched.requests
                ),
                &p.fetched,
                Some(self.plain.bytes),
            ));
            rows.push([
                "  repository's extra storage for the patches".into(),
                format!("{:+.2} MB", p.extra_storage as f64 / 1e6),
                String::new(),
                String::new(),
                format!(
                    "{:+.1}% of the repository",
                    p.extra_storage as f64 * 100.0 / self.plain_repo.max(1) as f64
                ),
            ]);
        }
        rows.push(peer("  casync (new chunks + .caibx)".into(), self.casync));
        for (level, b) in [(3, self.zstd3), (19, self.zstd19)] {
            rows.push(peer(
                format!("  zstd -{level} --long={} --patch-from", self.window_log),
                b,
            ));
        }
        rows
    }

    /// Where the installer's own count differs from the wire's (it should not).
    fn mismatches(&self) -> Vec<String> {
        let mut all = vec![("whole chunks", self.plain)];
        if let Patches::Measured(p) = &self.patches {
            all.push(("with patches", p.fetched));
        }
        all.into_iter()
            .filter(|(_, f)| f.reported != f.bytes)
            .map(|(what, f)| {
                format!(
                    "note: {} {what}: the installer reported {} bytes, the server sent {}",
                    self.format, f.reported, f.bytes
                )
            })
            .collect()
    }
}

/// The whole table, Markdown-shaped, with a note when patches could not be measured.
pub fn render(upgrades: &[Upgrade]) -> String {
    let header = [
        "v1 -> v2 upgrade",
        "bytes fetched",
        "vs zstd -3",
        "vs casync",
        "target met",
    ]
    .map(String::from);
    let mut rows = vec![header];
    for u in upgrades {
        rows.extend(u.rows());
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0).max(3))
        .collect();
    let line = |r: &[String; 5]| {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(&rows[0]);
    out += &format!(
        "|{}|\n",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in &rows[1..] {
        out += &line(r);
    }
    if upgrades.iter().any(|u| u.patches == Patches::NotOffered) {
        out += "with patches: not measured (this skerryctl's `release add` has no --delta-from)\n";
    }
    for u in upgrades {
        for m in u.mismatches() {
            out += &m;
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(bytes: u64) -> Fetched {
        Fetched {
            bytes,
            requests: 9,
            reported: bytes,
            chunks_fetched: 40,
            chunks_reused: 900,
            index_pages: 2,
            chunks_patched: Some(30),
            patch_fallbacks: Some(0),
        }
    }

    fn upgrade(plain: u64, patches: Patches) -> Upgrade {
        Upgrade {
            format: "ext4".into(),
            image_len: 192 << 20,
            changed_blocks: 1000,
            plain: fetched(plain),
            plain_repo: 100_000_000,
            patches,
            casync: 30_000_000,
            zstd3: 10_000_000,
            zstd19: 8_000_000,
            window_log: 28,
            zstd_target: true,
        }
    }

    #[test]
    fn targets_are_judged_on_the_wire_bytes() {
        let u = upgrade(15_000_000, Patches::NotOffered);
        assert_eq!(u.targets(15_000_000, None), "<casync yes, <=1.1x zstd-3 NO");
        assert_eq!(
            u.targets(11_000_000, Some(15_000_000)),
            "<casync yes, <=1.1x zstd-3 yes, <=no patches yes"
        );
        assert_eq!(
            u.targets(31_000_000, Some(15_000_000)),
            "<casync NO, <=1.1x zstd-3 NO, <=no patches NO"
        );
        let squashfs = Upgrade {
            zstd_target: false,
            ..u
        };
        assert_eq!(squashfs.targets(15_000_000, None), "<casync yes");
    }

    #[test]
    fn without_the_flag_there_is_no_patch_row_and_a_note_says_why() {
        let t = render(&[upgrade(15_000_000, Patches::NotOffered)]);
        assert!(!t.contains("with patches (--delta-from"), "{t}");
        assert!(t.contains("with patches: not measured"), "{t}");
        assert!(t.contains("| 15.00 MB "), "{t}");
        assert!(t.contains("1.50x"), "{t}");
        assert!(t.contains("zstd -19 --long=28 --patch-from"), "{t}");
    }

    #[test]
    fn with_patches_their_row_and_storage_are_printed() {
        let p = Patched {
            fetched: fetched(10_500_000),
            extra_storage: 2_000_000,
        };
        let t = render(&[upgrade(15_000_000, Patches::Measured(p))]);
        assert!(
            t.contains(
                "with patches (--delta-from 1.0.0; 30 chunks as patches, 40 whole, 0 fell back"
            ),
            "{t}"
        );
        assert!(t.contains("+2.00 MB"), "{t}");
        assert!(t.contains("+2.0% of the repository"), "{t}");
        assert!(t.contains("<=no patches yes"), "{t}");
        assert!(!t.contains("not measured"), "{t}");
        let lines: Vec<usize> = t.lines().map(str::len).collect();
        assert!(lines.windows(2).all(|w| w[0] == w[1]), "ragged table:\n{t}");
    }

    #[test]
    fn a_count_that_disagrees_with_the_installer_is_noted() {
        let mut u = upgrade(15_000_000, Patches::NotOffered);
        u.plain.reported = 14_999_000;
        let t = render(&[u]);
        assert!(
            t.contains("the installer reported 14999000 bytes, the server sent 15000000"),
            "{t}"
        );
    }
}
