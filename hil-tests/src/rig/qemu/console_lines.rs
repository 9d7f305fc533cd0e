//! The `SKERRY-…` console lines the QEMU board reads (docs/os-image.md is the contract):
//! `SKERRY-READY slot=A version=1.0.0 api=0.0.0.0:50000` and
//! `SKERRY-WATCHDOG armed device=/dev/watchdog0 timeout=30`. Pure, tested without QEMU.

use std::time::Duration;

/// The largest watchdog timeout believed (the i6300esb counts to about 2046 s).
const MAX_WATCHDOG_SECS: u64 = 4096;

/// What a `SKERRY-READY` line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub slot: String,
    pub version: String,
    pub api: String,
}

/// The value of `key=` among the space-separated words of `line`.
fn value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// Parses the words after `SKERRY-READY` (the rest of that line).
pub fn ready(rest: &str) -> Result<Ready, String> {
    let line = rest.lines().next().unwrap_or("").trim();
    let get = |key| {
        value(line, key)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("the SKERRY-READY line {line:?} has no {key}="))
    };
    let slot = get("slot")?;
    if slot.len() > 16 || !slot.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "the SKERRY-READY line {line:?} names a slot {slot:?} that is not a slot name"
        ));
    }
    Ok(Ready {
        slot,
        version: get("version")?,
        api: get("api")?,
    })
}

/// The timeout of the last `SKERRY-WATCHDOG armed … timeout=N` line in `transcript`.
pub fn watchdog_timeout(transcript: &str) -> Option<Duration> {
    transcript
        .lines()
        .rev()
        .filter_map(|line| {
            line.split_once("SKERRY-WATCHDOG armed")
                .map(|(_, rest)| rest)
        })
        .find_map(|rest| value(rest, "timeout")?.trim().parse::<u64>().ok())
        .filter(|&secs| secs > 0 && secs <= MAX_WATCHDOG_SECS)
        .map(Duration::from_secs)
}

/// How many boots the console shows (`SKERRY-BOOT` lines, one per boot).
pub fn boots(transcript: &str) -> usize {
    transcript.matches("SKERRY-BOOT slot=").count()
}

/// The `SKERRY-READY` line of the boot the console is in now: the whole line after the
/// last `SKERRY-BOOT` (the bootloader's line, printed at every boot), if skerryd has
/// printed it yet. A line still being written is not there yet.
pub fn ready_in_current_boot(transcript: &str) -> Option<Result<Ready, String>> {
    let boot = transcript.rfind("SKERRY-BOOT slot=").unwrap_or(0);
    let after = &transcript[boot..];
    let at = after.find("SKERRY-READY")?;
    let rest = &after[at + "SKERRY-READY".len()..];
    rest.contains('\n').then(|| ready(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_counts_only_in_the_boot_the_console_is_in() {
        assert_eq!(boots("SKERRY-BOOT slot=A\nSKERRY-BOOT slot=B\n"), 2);
        let first = "SKERRY-BOOT slot=B\r\nSKERRY-READY slot=B version=1.1.0 api=x\r\n";
        assert_eq!(ready_in_current_boot(first).unwrap().unwrap().slot, "B");
        // B rebooted: its READY line belongs to the boot before.
        let rebooted = format!("{first}reboot\r\nSKERRY-BOOT slot=A\r\nLinux version");
        assert_eq!(ready_in_current_boot(&rebooted), None);
        let half = format!("{rebooted}\r\nSKERRY-READY slot=A vers");
        assert_eq!(ready_in_current_boot(&half), None);
        let whole = format!("{half}ion=1.0.0 api=x\r\n");
        assert_eq!(ready_in_current_boot(&whole).unwrap().unwrap().slot, "A");
        assert!(ready_in_current_boot("SKERRY-READY version=1 api=x\n")
            .unwrap()
            .is_err());
    }

    #[test]
    fn a_ready_line_names_slot_version_and_api() {
        let got = ready(" slot=B version=1.1.0 api=0.0.0.0:50000\r\nmore").unwrap();
        assert_eq!(
            got,
            Ready {
                slot: "B".into(),
                version: "1.1.0".into(),
                api: "0.0.0.0:50000".into()
            }
        );
    }

    #[test]
    fn a_ready_line_without_a_slot_or_with_garbage_is_an_error_quoting_it() {
        let err = ready(" version=1.0.0 api=x").unwrap_err();
        assert!(err.contains("no slot="), "{err}");
        let err = ready(" slot=../x version=1 api=x").unwrap_err();
        assert!(err.contains("not a slot name"), "{err}");
    }

    #[test]
    fn the_last_watchdog_line_gives_the_timeout() {
        let t = "SKERRY-WATCHDOG armed device=/dev/watchdog0 timeout=30\r\n\
                 reboot\r\nSKERRY-WATCHDOG armed device=/dev/watchdog0 timeout=12\r\n";
        assert_eq!(watchdog_timeout(t), Some(Duration::from_secs(12)));
        assert_eq!(watchdog_timeout("SKERRY-WATCHDOG armed timeout=0"), None);
        assert_eq!(
            watchdog_timeout("SKERRY-WATCHDOG armed timeout=99999999"),
            None
        );
        assert_eq!(watchdog_timeout("nothing"), None);
    }
}
