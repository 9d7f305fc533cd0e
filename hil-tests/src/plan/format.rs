//! The scenario file format (TOML), decoded strictly: an unknown key, a misspelt action,
//! a wrong type or a value out of bounds is an error naming the file, the key and the
//! line. Sizes are bounded before use ([`MAX_FILE`], [`MAX_STEPS`], [`MAX_TEXT`], and
//! each number's own limit).
//!
//! ```toml
//! name = "happy-upgrade"
//! summary = "v1 → v2 committed after probation"
//! needs = ["skerryd"]
//!
//! [[step]]
//! power_on = {}
//! [[step]]
//! wait_running = { slot = "A", timeout = "120s" }
//! [[step]]
//! publish = { version = "1.1.0", release = "good" }
//! ```
//!
//! Each `[[step]]` holds exactly one action, written as `ACTION = { fields }`; the
//! actions are the variants of [`Action`].

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::rig::{Need, ReleaseProperty};

/// The largest scenario file read.
pub const MAX_FILE: u64 = 64 << 10;
/// The most steps in a scenario.
pub const MAX_STEPS: usize = 200;
/// The longest text value (names, console needles, reasons).
pub const MAX_TEXT: usize = 256;
/// The longest duration a step may give.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The most bytes a fault may wait for.
pub const MAX_AFTER_BYTES: u64 = 1 << 30;
/// The most boots a step may count.
pub const MAX_BOOTS: u32 = 100;

/// A scenario: what it is, what it needs, its steps.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub summary: String,
    /// Needs beyond those its steps imply (see [`Action::needs`]).
    pub needs: Vec<Need>,
    pub steps: Vec<Step>,
}

/// One step and the line it starts on.
#[derive(Debug, Clone)]
pub struct Step {
    pub line: usize,
    pub action: Action,
}

/// Why a scenario file was refused: the file, the line, the key and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: key `{key}`: {message}")]
pub struct FormatError {
    pub file: String,
    /// 1-based; 0 when the problem is the whole file.
    pub line: usize,
    pub key: String,
    pub message: String,
}

/// A duration as files write it (`"90s"`, `"500ms"`, `"2m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub Duration);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Time)
            .map_err(serde::de::Error::custom)
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like \"90s\" or \"500ms\" ({e})"))?;
    if value > MAX_DURATION {
        return Err(format!("{text} is longer than {MAX_DURATION:?}"));
    }
    Ok(value)
}

/// How long a watchdog reset may take: a fixed time, or the board's watchdog timeout
/// plus a margin (`"timeout + 10%"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Within {
    Fixed(Duration),
    TimeoutPlusPercent(u32),
}

impl Within {
    /// The limit for a board whose watchdog timeout is `timeout`.
    pub fn limit(self, timeout: Option<Duration>) -> Option<Duration> {
        match self {
            Within::Fixed(d) => Some(d),
            Within::TimeoutPlusPercent(p) => timeout.map(|t| t + t.mul_f64(f64::from(p) / 100.0)),
        }
    }
}

impl std::fmt::Display for Within {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Within::Fixed(d) => write!(f, "{d:?}"),
            Within::TimeoutPlusPercent(p) => write!(f, "timeout + {p}%"),
        }
    }
}

impl<'de> Deserialize<'de> for Within {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(rest) = compact.strip_prefix("timeout") {
            let percent = rest
                .strip_prefix('+')
                .and_then(|p| p.strip_suffix('%'))
                .and_then(|p| p.parse::<u32>().ok())
                .filter(|p| *p <= 100)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "{text:?}: write \"timeout + N%\" with N from 0 to 100, or a duration"
                    ))
                })?;
            return Ok(Within::TimeoutPlusPercent(percent));
        }
        parse_duration(&text)
            .map(Within::Fixed)
            .map_err(serde::de::Error::custom)
    }
}

/// A bounded text value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() > MAX_TEXT {
            return Err(serde::de::Error::custom(format!(
                "{} bytes is longer than {MAX_TEXT}",
                text.len()
            )));
        }
        Ok(Text(text))
    }
}

/// A release version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub semver::Version);

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(d)?.0;
        semver::Version::parse(&text)
            .map(Version)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a version ({e})")))
    }
}

/// A slot name (`A`, `B`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot(pub String);

impl<'de> Deserialize<'de> for Slot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(d)?.0;
        if text.is_empty() || text.len() > 16 || !text.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(serde::de::Error::custom(format!(
                "{text:?} is not a slot name (letters and digits, like \"A\")"
            )));
        }
        Ok(Slot(text))
    }
}

/// A byte count bounded by [`MAX_AFTER_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        if n == 0 || n > MAX_AFTER_BYTES {
            return Err(serde::de::Error::custom(format!(
                "{n} bytes: give 1 to {MAX_AFTER_BYTES}"
            )));
        }
        Ok(Bytes(n))
    }
}

/// A boot count bounded by [`MAX_BOOTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boots(pub u32);

impl<'de> Deserialize<'de> for Boots {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if n == 0 || n > MAX_BOOTS {
            return Err(serde::de::Error::custom(format!(
                "{n} boots: give 1 to {MAX_BOOTS}"
            )));
        }
        Ok(Boots(n))
    }
}

/// What a published release is, as files write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseKind {
    Good,
    BadSignature,
    FailingHealthCheck,
    /// With `fault = "WORD"`.
    Fault,
}

/// When a power cut happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum During {
    /// While an upgrade started with `wait = false` downloads and writes, once the
    /// repository has served `after_bytes` of its image pack (held still there).
    Install,
}

/// What an upgrade call must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeOutcome {
    /// The install finished and the trial began (the daemon then reboots by itself).
    #[default]
    TrialReady,
    /// The daemon refused it; nothing was installed.
    Refused,
    /// Either (a call cut short by a power cut).
    Any,
}

/// Who rolled a release back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    /// Probation: a critical health check failed.
    Probation,
    /// The bootloader: the new slot's tries ran out.
    Bootloader,
}

impl Decider {
    /// As the upgrade history's `by` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Decider::Probation => "probation",
            Decider::Bootloader => "bootloader",
        }
    }
}

/// One action the runner knows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Power on (the bootloader picks a slot).
    PowerOn {},
    /// Cut power now; or `during = "install"`: start the upgrade to `version`, hold
    /// its download still once the repository served `after_bytes` of the image pack,
    /// and cut power there (the download held, the slot half written).
    PowerCut {
        during: Option<During>,
        version: Option<Version>,
        after_bytes: Option<Bytes>,
        timeout: Option<Time>,
    },
    /// Wait until the machine runs a slot (`slot`: it must be that one).
    WaitRunning {
        slot: Option<Slot>,
        timeout: Option<Time>,
    },
    /// Check the slot the machine runs now.
    ExpectSlot { slot: Slot },
    /// Check the release the machine runs now.
    ExpectVersion { version: Version },
    /// Build and publish a release into the board's repository.
    Publish {
        version: Version,
        release: ReleaseKind,
        fault: Option<Text>,
    },
    /// Install a release into the inactive slot and start its trial: through the API on
    /// a board running skerryd, else host-side while powered off (then powered on).
    Install {
        version: Version,
        timeout: Option<Time>,
    },
    /// Ask skerryd for an upgrade through its API; `wait = false` leaves it running
    /// (a later `upgrade_finishes`, `power_cut` or `repository_up` deals with it).
    Upgrade {
        version: Version,
        #[serde(default)]
        expect: UpgradeOutcome,
        reason_contains: Option<Text>,
        wait: Option<bool>,
        timeout: Option<Time>,
    },
    /// Wait for an upgrade started with `wait = false`.
    UpgradeFinishes {
        #[serde(default)]
        expect: UpgradeOutcome,
        timeout: Option<Time>,
    },
    /// The upgrade of `version` was committed (probation passed).
    ExpectCommitted {
        version: Version,
        within: Option<Time>,
    },
    /// `version` was rolled back (by `by`, when given) and the machine is back on its
    /// previous slot.
    ExpectRolledBack {
        version: Version,
        by: Option<Decider>,
        within: Option<Time>,
    },
    /// Every critical check passes.
    ExpectHealthy { within: Option<Time> },
    /// Remember the machine's state (slot, version, upgrade history) for
    /// `expect_unchanged`.
    RememberState {},
    /// The state is as remembered.
    ExpectUnchanged {},
    /// The console showed at least `at_least` boots of `slot` since the scenario began.
    ExpectBoots { slot: Slot, at_least: Boots },
    /// Wait for text on the console.
    ExpectConsole { text: Text, timeout: Option<Time> },
    /// The watchdog was armed (a `SKERRY-WATCHDOG armed` line) since the last
    /// `power_on`, whenever in the boot it was printed: an initramfs arms it before
    /// skerryd says it is ready, a daemon on a simulated board after.
    ExpectWatchdogArmed { within: Option<Time> },
    /// Make skerryd hang where it stands.
    HangDaemon {},
    /// The watchdog reset the machine, within `within` of the hang (or of this step).
    ExpectWatchdogReset { within: Within },
    /// The repository goes down now, or after serving `after_bytes` more pack bytes.
    RepositoryDown { after_bytes: Option<Bytes> },
    /// The repository comes back, `after` once it went down (default: now).
    RepositoryUp {
        after: Option<Time>,
        timeout: Option<Time>,
    },
    /// A download resumed after its cut: the first pack request after the cut started
    /// further into the pack than the download first did (it went on, not over).
    ExpectDownloadResumed {},
}

impl Action {
    /// The action's name, as files write it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::PowerOn {} => "power_on",
            Action::PowerCut { .. } => "power_cut",
            Action::WaitRunning { .. } => "wait_running",
            Action::ExpectSlot { .. } => "expect_slot",
            Action::ExpectVersion { .. } => "expect_version",
            Action::Publish { .. } => "publish",
            Action::Install { .. } => "install",
            Action::Upgrade { .. } => "upgrade",
            Action::UpgradeFinishes { .. } => "upgrade_finishes",
            Action::ExpectCommitted { .. } => "expect_committed",
            Action::ExpectRolledBack { .. } => "expect_rolled_back",
            Action::ExpectHealthy { .. } => "expect_healthy",
            Action::RememberState {} => "remember_state",
            Action::ExpectUnchanged {} => "expect_unchanged",
            Action::ExpectBoots { .. } => "expect_boots",
            Action::ExpectConsole { .. } => "expect_console",
            Action::ExpectWatchdogArmed { .. } => "expect_watchdog_armed",
            Action::HangDaemon {} => "hang_daemon",
            Action::ExpectWatchdogReset { .. } => "expect_watchdog_reset",
            Action::RepositoryDown { .. } => "repository_down",
            Action::RepositoryUp { .. } => "repository_up",
            Action::ExpectDownloadResumed {} => "expect_download_resumed",
        }
    }

    /// What the step needs from a board: every one of the outer list's entries, each
    /// satisfied by any of its alternatives.
    pub fn needs(&self) -> Vec<Vec<Need>> {
        let api = vec![vec![Need::Skerryd]];
        match self {
            Action::PowerCut { during: None, .. } => vec![vec![Need::PowerCut]],
            Action::PowerCut { .. } => vec![vec![Need::PowerCut], vec![Need::Skerryd]],
            Action::Publish { release, fault, .. } => match (release, fault) {
                (ReleaseKind::FailingHealthCheck, _) => vec![vec![Need::FailingHealthCheck]],
                (ReleaseKind::Fault, Some(word)) => vec![vec![Need::Fault(word.0.clone())]],
                _ => Vec::new(),
            },
            Action::Install { .. } => vec![vec![Need::Skerryd, Need::HostSideInstall]],
            Action::Upgrade { .. }
            | Action::UpgradeFinishes { .. }
            | Action::ExpectCommitted { .. }
            | Action::ExpectHealthy { .. }
            | Action::RememberState {}
            | Action::ExpectUnchanged {}
            | Action::ExpectVersion { .. } => api,
            // A board without skerryd shows its bootloader's state host-side.
            Action::ExpectRolledBack { .. } => vec![vec![Need::Skerryd, Need::HostSideInstall]],
            Action::HangDaemon {} => vec![vec![Need::HangDaemon]],
            Action::ExpectWatchdogReset { .. } | Action::ExpectWatchdogArmed { .. } => {
                vec![vec![Need::Watchdog]]
            }
            Action::RepositoryDown { .. }
            | Action::RepositoryUp { .. }
            | Action::ExpectDownloadResumed {} => api,
            Action::PowerOn {}
            | Action::WaitRunning { .. }
            | Action::ExpectSlot { .. }
            | Action::ExpectBoots { .. }
            | Action::ExpectConsole { .. } => Vec::new(),
        }
    }

    /// The release property a `publish` asks for.
    pub fn release_property(release: ReleaseKind, fault: Option<&Text>) -> ReleaseProperty {
        match release {
            ReleaseKind::Good => ReleaseProperty::Good,
            ReleaseKind::BadSignature => ReleaseProperty::BadSignature,
            ReleaseKind::FailingHealthCheck => ReleaseProperty::FailingHealthCheck,
            ReleaseKind::Fault => {
                ReleaseProperty::Fault(fault.map(|t| t.0.clone()).unwrap_or_default())
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: toml::Spanned<Text>,
    summary: Text,
    #[serde(default)]
    needs: Vec<toml::Spanned<Text>>,
    #[serde(default)]
    step: Vec<toml::Spanned<Action>>,
}

/// Reads and decodes a scenario file.
pub fn load(path: &Path) -> Result<Scenario, FormatError> {
    let file = path.display().to_string();
    let whole = |message: String| FormatError {
        file: file.clone(),
        line: 0,
        key: "(file)".into(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| whole(format!("cannot read it: {e}")))?;
    if meta.len() > MAX_FILE {
        return Err(whole(format!(
            "{} bytes is larger than a scenario file may be ({MAX_FILE})",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| whole(format!("cannot read it: {e}")))?;
    parse(&file, &text)
}

/// Decodes a scenario from `text`; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, FormatError> {
    if text.len() as u64 > MAX_FILE {
        return Err(FormatError {
            file: file.into(),
            line: 0,
            key: "(file)".into(),
            message: format!("{} bytes is larger than {MAX_FILE}", text.len()),
        });
    }
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        FormatError {
            file: file.into(),
            line: line_of(text, span.start),
            key: key_at(text, span.start, span.end),
            message: e.message().trim().to_owned(),
        }
    })?;
    let at = |offset: usize, key: &str, message: String| FormatError {
        file: file.into(),
        line: line_of(text, offset),
        key: key.into(),
        message,
    };
    let name = raw.name.get_ref().0.clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(at(
            raw.name.span().start,
            "name",
            format!("{name:?}: a scenario name is lowercase letters, digits and '-'"),
        ));
    }
    if raw.step.is_empty() {
        return Err(at(0, "step", "a scenario has at least one [[step]]".into()));
    }
    if raw.step.len() > MAX_STEPS {
        return Err(at(
            raw.step[MAX_STEPS].span().start,
            "step",
            format!(
                "{} steps; a scenario has at most {MAX_STEPS}",
                raw.step.len()
            ),
        ));
    }
    let mut needs = Vec::new();
    for need in &raw.needs {
        let word = &need.get_ref().0;
        let parsed = Need::parse(word).ok_or_else(|| {
            at(
                need.span().start,
                "needs",
                format!(
                    "{word:?} is not a capability; use one of {} or fault:WORD",
                    Need::NAMES.join(", ")
                ),
            )
        })?;
        needs.push(parsed);
    }
    let mut steps = Vec::new();
    for spanned in raw.step {
        let line = action_line(text, spanned.span().start);
        let action = spanned.into_inner();
        check_step(&action).map_err(|(key, message)| FormatError {
            file: file.into(),
            line,
            key: format!("{}.{key}", action.name()),
            message,
        })?;
        steps.push(Step { line, action });
    }
    Ok(Scenario {
        name,
        summary: raw.summary.0,
        needs,
        steps,
    })
}

/// Checks across a step's fields that serde cannot express.
fn check_step(action: &Action) -> Result<(), (&'static str, String)> {
    match action {
        Action::Publish { release, fault, .. } => match (release, fault) {
            (ReleaseKind::Fault, None) => Err((
                "fault",
                "release = \"fault\" needs fault = \"WORD\" (panic-initramfs, hang-initramfs, hang-daemon)".into(),
            )),
            (ReleaseKind::Fault, Some(word))
                if word.0.is_empty()
                    || !word.0.chars().all(|c| c.is_ascii_lowercase() || c == '-') =>
            {
                Err(("fault", format!("{:?} is not a fault word", word.0)))
            }
            (ReleaseKind::Fault, Some(_)) => Ok(()),
            (_, Some(_)) => Err(("fault", "fault is given only with release = \"fault\"".into())),
            (_, None) => Ok(()),
        },
        Action::PowerCut {
            during,
            version,
            after_bytes,
            ..
        } => match (during, version, after_bytes) {
            (Some(During::Install), _, None) => Err((
                "after_bytes",
                "during = \"install\" needs after_bytes = N".into(),
            )),
            (Some(During::Install), None, _) => Err((
                "version",
                "during = \"install\" needs the version to install".into(),
            )),
            (None, Some(_), _) => Err(("during", "version needs during = \"install\"".into())),
            (None, _, Some(_)) => Err(("during", "after_bytes needs during = \"install\"".into())),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line of a step's action: the first `key =` line at or after `offset` (a step's
/// span starts at its `[[step]]` header).
fn action_line(text: &str, offset: usize) -> usize {
    let first = line_of(text, offset);
    text.lines()
        .enumerate()
        .skip(first - 1)
        .find(|(_, l)| {
            let l = l.trim_start();
            !l.starts_with('#') && !l.starts_with('[') && l.contains('=')
        })
        .map_or(first, |(i, _)| i + 1)
}

/// The key an error at `start..end` is about: the bare key there, else the nearest
/// `key =` before it on its line.
fn key_at(text: &str, start: usize, end: usize) -> String {
    let start = start.min(text.len());
    let end = end.clamp(start, text.len());
    let bare = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let here = text.get(start..end).unwrap_or("").trim();
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let after = text[end..line_end].trim_start();
    if bare(here) && after.starts_with('=') {
        return here.to_owned();
    }
    let before = &text[line_start..start];
    let found = before
        .rfind('=')
        .map(|eq| before[..eq].trim_end())
        .and_then(|lhs| {
            let key_start = lhs
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
                .map_or(0, |i| i + 1);
            let key = &lhs[key_start..];
            (!key.is_empty()).then(|| key.to_owned())
        });
    match found {
        Some(key) => key,
        None if bare(here) => here.to_owned(),
        None => text[line_start..line_end].trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
summary = "a test"
needs = ["watchdog"]

[[step]]
power_on = {}
[[step]]
wait_running = { slot = "A", timeout = "90s" }
[[step]]
publish = { version = "1.1.0", release = "fault", fault = "panic-initramfs" }
[[step]]
expect_watchdog_reset = { within = "timeout + 10%" }
"#;

    #[test]
    fn a_scenario_decodes_with_its_lines() {
        let s = parse("t.toml", GOOD).unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.needs, vec![Need::Watchdog]);
        assert_eq!(s.steps.len(), 4);
        assert_eq!(s.steps[1].line, 9);
        assert_eq!(
            s.steps[1].action,
            Action::WaitRunning {
                slot: Some(Slot("A".into())),
                timeout: Some(Time(Duration::from_secs(90)))
            }
        );
        assert_eq!(
            s.steps[2].action.needs(),
            vec![vec![Need::Fault("panic-initramfs".into())]]
        );
        let Action::ExpectWatchdogReset { within } = s.steps[3].action else {
            panic!("{:?}", s.steps[3]);
        };
        assert_eq!(
            within.limit(Some(Duration::from_secs(10))),
            Some(Duration::from_secs(11))
        );
    }

    fn error(text: &str) -> FormatError {
        parse("bad.toml", text).unwrap_err()
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_line() {
        let cases: &[(&str, &str, usize, &str)] = &[
            (
                "name = \"t\"\nsummary = \"s\"\n[[step]]\nwait_running = { slot = \"A\", tmeout = \"3s\" }\n",
                "tmeout",
                4,
                "tmeout",
            ),
            (
                "name = \"t\"\nsummary = \"s\"\n[[step]]\npower_on = {}\n[[step]]\nreboot = {}\n",
                "reboot",
                6,
                "unknown variant",
            ),
            (
                "name = \"t\"\nsummary = \"s\"\n[[step]]\npublish = { version = \"one\", release = \"good\" }\n",
                "version",
                4,
                "not a version",
            ),
            (
                "name = \"t\"\nsummary = \"s\"\ncolour = 1\n[[step]]\npower_on = {}\n",
                "colour",
                3,
                "unknown field",
            ),
            (
                "name = \"t\"\nsummary = \"s\"\nneeds = [\"x-ray\"]\n[[step]]\npower_on = {}\n",
                "needs",
                3,
                "not a capability",
            ),
            (
                "name = \"t\"\nsummary = \"s\"\n[[step]]\npower_cut = { during = \"install\", version = \"1.1.0\" }\n",
                "power_cut.after_bytes",
                4,
                "needs after_bytes",
            ),
            (
                "name = \"t\"\nsummary = \"s\"\n[[step]]\nexpect_watchdog_reset = { within = \"timeout + 200%\" }\n",
                "within",
                4,
                "timeout + N%",
            ),
            (
                "name = \"t\"\nsummary = \"s\"\n[[step]]\npower_cut = { during = \"install\", version = \"1.1.0\", after_bytes = 99999999999 }\n",
                "after_bytes",
                4,
                "give 1 to",
            ),
            (
                "name = \"t\"\nsummary = \"s\"\n[[step]]\nwait_running = { timeout = \"9h\" }\n",
                "timeout",
                4,
                "longer than",
            ),
        ];
        for (text, key, line, message) in cases {
            let err = error(text);
            assert_eq!(&err.key, key, "{err}");
            assert_eq!(err.line, *line, "{err}");
            assert!(err.message.contains(message), "{err}");
            assert!(err.to_string().starts_with("bad.toml:"), "{err}");
        }
    }

    #[test]
    fn sizes_are_bounded() {
        let long = format!(
            "name = \"t\"\nsummary = \"{}\"\n[[step]]\npower_on = {{}}\n",
            "x".repeat(MAX_TEXT + 1)
        );
        assert!(error(&long).message.contains("longer than"));
        let mut many = String::from("name = \"t\"\nsummary = \"s\"\n");
        for _ in 0..=MAX_STEPS {
            many.push_str("[[step]]\npower_on = {}\n");
        }
        let err = error(&many);
        assert_eq!(err.key, "step", "{err}");
        assert!(err.message.contains("at most"), "{err}");
        let huge = " ".repeat(MAX_FILE as usize + 1);
        assert!(error(&huge).message.contains("larger"));
    }
}
