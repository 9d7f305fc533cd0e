//! `autoboot.txt`: parsing, what the firmware reads from it, and rewriting our two keys
//! while keeping everything else (comments, unknown keys, other sections, CRLF).
//!
//! The file follows `config.txt` rules: `key=value` lines, `# comments`, and
//! conditional-filter headers such as `[all]` and `[tryboot]`. Lines before any header
//! and under `[all]` always apply; lines under `[tryboot]` apply only on the boot right
//! after a tryboot reboot; lines under `[none]` never apply; for a key set more than
//! once the last applicable line wins. Other filters (`[pi4]`, `[gpio4=1]`) are kept on
//! rewrite, but a `boot_partition` or `tryboot_a_b` under one of them is refused: we
//! could not tell whether the firmware applies it.

use std::fmt;

/// Larger files are refused: a real `autoboot.txt` is a few lines.
pub const MAX_LEN: usize = 64 * 1024;
/// The key that selects the partition to boot.
pub const BOOT_PARTITION: &str = "boot_partition";
/// The key that makes a tryboot reboot select `[tryboot]`'s partition.
pub const TRYBOOT_A_B: &str = "tryboot_a_b";

/// Why a file is not an `autoboot.txt` we can work with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number, 0 for the whole file.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "line {}: {}", self.line, self.reason)
        }
    }
}

/// One line of the file, its text kept exactly (without the line ending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `[name]`.
    Section { filter: Filter, raw: String },
    /// `key=value`.
    Setting {
        key: String,
        value: String,
        raw: String,
    },
    /// A comment or a blank line.
    Other(String),
}

impl Line {
    fn raw(&self) -> &str {
        match self {
            Line::Section { raw, .. } | Line::Setting { raw, .. } | Line::Other(raw) => raw,
        }
    }

    fn setting(key: &str, value: &str) -> Line {
        Line::Setting {
            key: key.to_owned(),
            value: value.to_owned(),
            raw: format!("{key}={value}"),
        }
    }
}

/// Which boots a line applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Before any header, or `[all]`: every boot.
    All,
    /// `[tryboot]`: only the boot after a tryboot reboot.
    Tryboot,
    /// `[none]`: never.
    None,
    /// Any other filter, kept as written.
    Other(String),
}

impl Filter {
    fn parse(name: &str) -> Filter {
        match name.to_ascii_lowercase().as_str() {
            "all" => Filter::All,
            "tryboot" => Filter::Tryboot,
            "none" => Filter::None,
            _ => Filter::Other(name.to_owned()),
        }
    }
}

/// What the firmware takes from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootChoice {
    /// `boot_partition` on a normal boot.
    pub normal: Option<u32>,
    /// `boot_partition` on the boot after a tryboot reboot.
    pub tryboot: Option<u32>,
    /// Whether `tryboot_a_b=1` applies (needed for `[tryboot]` to pick the partition).
    pub tryboot_a_b: bool,
}

/// A parsed `autoboot.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autoboot {
    lines: Vec<Line>,
    crlf: bool,
}

fn parse_line(text: &str, number: usize) -> Result<Line, ParseError> {
    let err = |reason: String| ParseError {
        line: number,
        reason,
    };
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(err(format!("control character {c:?}")));
    }
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(Line::Other(text.to_owned()));
    }
    if let Some(rest) = trimmed.strip_prefix('[') {
        let name = rest
            .strip_suffix(']')
            .ok_or_else(|| err(format!("section header {trimmed:?} has no closing ']'")))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(err("empty section header []".into()));
        }
        return Ok(Line::Section {
            filter: Filter::parse(name),
            raw: text.to_owned(),
        });
    }
    let (key, value) = trimmed.split_once('=').ok_or_else(|| {
        err(format!(
            "{trimmed:?} is not `key=value`, a `[filter]` or a `# comment`"
        ))
    })?;
    let key = key.trim();
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(err(format!("invalid key {key:?}")));
    }
    Ok(Line::Setting {
        key: key.to_owned(),
        value: value.trim().to_owned(),
        raw: text.to_owned(),
    })
}

impl Autoboot {
    /// Parses the file. An empty file is a valid, empty `autoboot.txt`.
    pub fn parse(bytes: &[u8]) -> Result<Autoboot, ParseError> {
        let whole = |reason: String| ParseError { line: 0, reason };
        if bytes.len() > MAX_LEN {
            return Err(whole(format!(
                "{} bytes; an autoboot.txt is at most {MAX_LEN}",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| whole(format!("not UTF-8 text (at byte {})", e.valid_up_to())))?;
        if text.starts_with('\u{feff}') {
            return Err(ParseError {
                line: 1,
                reason: "the file starts with a UTF-8 byte-order mark; save it without one \
                         (plain UTF-8 or ASCII)"
                    .into(),
            });
        }
        let crlf = text.contains("\r\n");
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut lines = Vec::new();
        if !text.is_empty() {
            for (i, line) in body.split('\n').enumerate() {
                let line = line.strip_suffix('\r').unwrap_or(line);
                lines.push(parse_line(line, i + 1)?);
            }
        }
        Ok(Autoboot { lines, crlf })
    }

    /// The lines, as parsed or rewritten.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The file's bytes: every line, each ended with `\r\n` if the file used CRLF.
    pub fn to_bytes(&self) -> Vec<u8> {
        let eol = if self.crlf { "\r\n" } else { "\n" };
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(line.raw());
            out.push_str(eol);
        }
        out.into_bytes()
    }

    /// Each line with the filter it sits under and its 1-based number.
    fn scoped(&self) -> impl Iterator<Item = (usize, &Filter, &Line)> {
        let mut filter = &Filter::All;
        self.lines.iter().enumerate().map(move |(i, line)| {
            if let Line::Section { filter: f, .. } = line {
                filter = f;
            }
            (i + 1, filter, line)
        })
    }

    /// What the firmware reads: the partition for a normal boot and for a tryboot boot.
    pub fn boot_choice(&self) -> Result<BootChoice, ParseError> {
        let mut choice = BootChoice {
            normal: None,
            tryboot: None,
            tryboot_a_b: false,
        };
        let mut a_b_normal = false;
        for (number, filter, line) in self.scoped() {
            let Line::Setting { key, value, .. } = line else {
                continue;
            };
            if key != BOOT_PARTITION && key != TRYBOOT_A_B {
                continue;
            }
            let err = |reason: String| ParseError {
                line: number,
                reason,
            };
            let (normal, tryboot) = match filter {
                Filter::All => (true, true),
                Filter::Tryboot => (false, true),
                Filter::None => continue,
                Filter::Other(name) => {
                    return Err(err(format!(
                        "{key} under [{name}]: skerry cannot tell whether the firmware applies it; move it under [all] or [tryboot]"
                    )))
                }
            };
            if key == BOOT_PARTITION {
                let n: u32 = value.parse().map_err(|_| {
                    err(format!(
                        "boot_partition={value:?} is not a partition number"
                    ))
                })?;
                if normal {
                    choice.normal = Some(n);
                }
                if tryboot {
                    choice.tryboot = Some(n);
                }
            } else {
                let on = match value.as_str() {
                    "1" => true,
                    "0" => false,
                    _ => return Err(err(format!("tryboot_a_b={value:?} is not 0 or 1"))),
                };
                if normal {
                    a_b_normal = on;
                }
            }
        }
        choice.tryboot_a_b = a_b_normal;
        Ok(choice)
    }

    /// Comment lines that start with `prefix`.
    pub fn comments_starting(&self, prefix: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Other(raw) if raw.trim_start().starts_with(prefix) => Some(raw.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Replaces every comment line starting with `prefix` by one line `text` at the top.
    pub fn set_top_comment(&mut self, prefix: &str, text: &str) {
        self.lines
            .retain(|l| !matches!(l, Line::Other(raw) if raw.trim_start().starts_with(prefix)));
        self.lines.insert(0, Line::Other(text.to_owned()));
    }

    /// Sets `tryboot_a_b=1` and `boot_partition=normal` under `[all]` and
    /// `boot_partition=tryboot` under a `[tryboot]` that follows it, removing these keys
    /// everywhere else they applied; every other line stays as it was.
    pub fn set_partitions(&mut self, normal: u32, tryboot: u32) -> Result<(), ParseError> {
        // Refuse files whose meaning we cannot tell before touching anything.
        self.boot_choice()?;
        let ours = |filter: &Filter, line: &Line| {
            matches!(filter, Filter::All | Filter::Tryboot)
                && matches!(line, Line::Setting { key, .. } if key == BOOT_PARTITION || key == TRYBOOT_A_B)
        };
        let drop: Vec<bool> = self.scoped().map(|(_, f, l)| ours(f, l)).collect();
        let mut keep = drop.iter().map(|d| !d);
        self.lines.retain(|_| keep.next().unwrap_or(true));

        let all_at = match self.lines.iter().position(|l| {
            matches!(
                l,
                Line::Section {
                    filter: Filter::All,
                    ..
                }
            )
        }) {
            Some(i) => i,
            None => {
                self.lines.insert(
                    0,
                    Line::Section {
                        filter: Filter::All,
                        raw: "[all]".into(),
                    },
                );
                0
            }
        };
        self.lines
            .insert(all_at + 1, Line::setting(TRYBOOT_A_B, "1"));
        self.lines.insert(
            all_at + 2,
            Line::setting(BOOT_PARTITION, &normal.to_string()),
        );
        let tryboot_at = self
            .lines
            .iter()
            .rposition(|l| {
                matches!(
                    l,
                    Line::Section {
                        filter: Filter::Tryboot,
                        ..
                    }
                )
            })
            .filter(|&i| i > all_at + 2);
        let value = tryboot.to_string();
        match tryboot_at {
            Some(i) => self
                .lines
                .insert(i + 1, Line::setting(BOOT_PARTITION, &value)),
            None => {
                self.lines.push(Line::Section {
                    filter: Filter::Tryboot,
                    raw: "[tryboot]".into(),
                });
                self.lines.push(Line::setting(BOOT_PARTITION, &value));
            }
        }
        let check = self.boot_choice()?;
        if check.normal != Some(normal) || check.tryboot != Some(tryboot) || !check.tryboot_a_b {
            return Err(ParseError {
                line: 0,
                reason: format!("rewrite did not take effect: {check:?}"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_a_b_layout() {
        let doc = Autoboot::parse(
            b"[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n",
        )
        .unwrap();
        let c = doc.boot_choice().unwrap();
        assert_eq!(
            (c.normal, c.tryboot, c.tryboot_a_b),
            (Some(2), Some(3), true)
        );
    }

    #[test]
    fn last_applicable_line_wins_and_none_is_ignored() {
        let doc = Autoboot::parse(
            b"boot_partition=5\n[tryboot]\nboot_partition=6\n[none]\nboot_partition=9\n[all]\nboot_partition=2\n",
        )
        .unwrap();
        let c = doc.boot_choice().unwrap();
        assert_eq!(
            (c.normal, c.tryboot, c.tryboot_a_b),
            (Some(2), Some(2), false)
        );
    }

    #[test]
    fn rewrite_keeps_comments_unknown_keys_and_crlf() {
        let text = "# made by hand\r\n[all]\r\nfoo=bar\r\nboot_partition=2\r\n[pi4]\r\narm_boost=1\r\n[tryboot]\r\nbaz = 1\r\n";
        let mut doc = Autoboot::parse(text.as_bytes()).unwrap();
        doc.set_partitions(3, 2).unwrap();
        let out = String::from_utf8(doc.to_bytes()).unwrap();
        assert_eq!(
            out,
            "# made by hand\r\n[all]\r\ntryboot_a_b=1\r\nboot_partition=3\r\nfoo=bar\r\n[pi4]\r\narm_boost=1\r\n[tryboot]\r\nboot_partition=2\r\nbaz = 1\r\n"
        );
    }

    #[test]
    fn tryboot_section_before_all_gets_a_new_one_after() {
        let mut doc =
            Autoboot::parse(b"[tryboot]\nboot_partition=7\n[all]\nboot_partition=2\n").unwrap();
        doc.set_partitions(2, 3).unwrap();
        let c = doc.boot_choice().unwrap();
        assert_eq!((c.normal, c.tryboot), (Some(2), Some(3)));
        assert_eq!(
            String::from_utf8(doc.to_bytes()).unwrap(),
            "[tryboot]\n[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"
        );
    }

    #[test]
    fn hostile_lines_are_errors_with_line_numbers() {
        for (text, line, needle) in [
            ("[all]\nboot_partition=two\n", 2, "not a partition number"),
            ("[all\n", 1, "closing"),
            ("just words\n", 1, "key=value"),
            ("a=1\n\u{0}=2\n", 2, "control"),
            ("[pi4]\nboot_partition=3\n", 2, "[pi4]"),
            ("tryboot_a_b=yes\n", 1, "0 or 1"),
            ("=3\n", 1, "invalid key"),
        ] {
            let err = Autoboot::parse(text.as_bytes())
                .and_then(|d| d.boot_choice().map(|_| ()))
                .unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.to_string().contains(needle), "{text:?}: {err}");
        }
        assert!(Autoboot::parse(&[0xFF, 0xFE])
            .unwrap_err()
            .reason
            .contains("UTF-8"));
        assert!(Autoboot::parse(&vec![b'#'; MAX_LEN + 1]).is_err());
    }
}
