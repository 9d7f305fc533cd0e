//! Apply modes and the rule deciding which a change needs.
//!
//! The daemon applies; this module only decides. Most of the config takes effect live (the
//! rendered files, the supervisor, SNTP, the update source); what is read once at boot
//! (the machine identity, the watchdog device) needs a reboot, and `try` cannot cover such a
//! change because it reverts without one.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::document::{Config, Kind};
use crate::kinds::HumanDuration;

/// How an operator asks a config to be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ApplyMode {
    /// Apply now, without rebooting; refused if the change needs a reboot.
    NoReboot,
    /// Apply, then reboot.
    Reboot,
    /// Store it; it takes effect at the next boot.
    Staged,
    /// Apply now; reverted automatically after `timeout` unless confirmed.
    Try { timeout: HumanDuration },
}

impl fmt::Display for ApplyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyMode::NoReboot => f.write_str("no-reboot"),
            ApplyMode::Reboot => f.write_str("reboot"),
            ApplyMode::Staged => f.write_str("staged"),
            ApplyMode::Try { timeout } => write!(f, "try({timeout})"),
        }
    }
}

/// What a change needs to take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// Takes effect without a reboot.
    Live,
    /// Takes effect only after a reboot.
    Reboot,
}

/// One changed part of the config and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    /// The changed key path, or the document's name for named kinds.
    pub what: String,
    pub effect: Effect,
    pub reason: &'static str,
}

/// The changes between two configs and the strongest effect among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeDecision {
    pub changes: Vec<Change>,
}

impl ModeDecision {
    /// `Reboot` if any change needs one, else `Live` (also for no change).
    pub fn effect(&self) -> Effect {
        self.changes
            .iter()
            .map(|c| c.effect)
            .max()
            .unwrap_or(Effect::Live)
    }

    /// The changes that need a reboot.
    pub fn reboot_reasons(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.effect == Effect::Reboot)
    }

    /// Checks that `mode` can carry this change.
    pub fn check(&self, mode: ApplyMode) -> Result<(), ModeError> {
        if self.effect() == Effect::Reboot
            && matches!(mode, ApplyMode::NoReboot | ApplyMode::Try { .. })
        {
            let reasons = self
                .reboot_reasons()
                .map(|c| format!("{} `{}`: {}", c.kind, c.what, c.reason))
                .collect();
            return Err(ModeError::NeedsReboot { mode, reasons });
        }
        Ok(())
    }
}

/// A mode that cannot carry the change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    #[error("mode {mode} cannot apply this change, which needs a reboot ({}); use `reboot` or `staged`", reasons.join("; "))]
    NeedsReboot {
        mode: ApplyMode,
        reasons: Vec<String>,
    },
}

fn push(
    out: &mut Vec<Change>,
    kind: Kind,
    what: impl Into<String>,
    effect: Effect,
    reason: &'static str,
) {
    out.push(Change {
        kind,
        what: what.into(),
        effect,
        reason,
    });
}

/// Decides what the change from `current` to `proposed` needs, with a reason per change.
pub fn required_mode(current: &Config, proposed: &Config) -> ModeDecision {
    let mut c = Vec::new();
    let live = Effect::Live;
    let (cm, pm) = (current.machine.as_ref(), proposed.machine.as_ref());
    if cm.map(|m| &m.hostname) != pm.map(|m| &m.hostname) {
        push(
            &mut c,
            Kind::Machine,
            "hostname",
            live,
            "the hostname and hosts files are re-rendered and the kernel hostname set live",
        );
    }
    if cm.map(|m| &m.identity) != pm.map(|m| &m.identity) {
        push(
            &mut c,
            Kind::Machine,
            "identity",
            Effect::Reboot,
            "the identity is read at boot into certificates and the update check-in",
        );
    }
    if current.network != proposed.network {
        push(
            &mut c,
            Kind::Network,
            "",
            live,
            "links, routes and resolv.conf are reconciled live",
        );
    }
    if current.time != proposed.time {
        push(
            &mut c,
            Kind::Time,
            "",
            live,
            "the SNTP client and time floor controller pick the change up",
        );
    }
    let mut names: Vec<&str> = current
        .services
        .iter()
        .chain(&proposed.services)
        .map(|s| s.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let a = current.services.iter().find(|s| s.name == name);
        let b = proposed.services.iter().find(|s| s.name == name);
        if a != b {
            push(
                &mut c,
                Kind::Service,
                name,
                live,
                "the supervisor restarts only the changed service",
            );
        }
    }
    let (cw, pw) = (current.watchdog.as_ref(), proposed.watchdog.as_ref());
    if cw.map(|w| &w.device) != pw.map(|w| &w.device) {
        push(&mut c, Kind::Watchdog, "device", Effect::Reboot, "an armed watchdog device cannot be released safely while running; it is opened at boot");
    }
    if cw.map(|w| w.timeout) != pw.map(|w| w.timeout) && cw.is_some() && pw.is_some() {
        push(
            &mut c,
            Kind::Watchdog,
            "timeout",
            live,
            "the timeout is set on the open device",
        );
    }
    if cw.map(|w| &w.gate) != pw.map(|w| &w.gate) && cw.is_some() && pw.is_some() {
        push(
            &mut c,
            Kind::Watchdog,
            "gate",
            live,
            "the feeding gate reads the checks it names on each tick",
        );
    }
    if current.update != proposed.update {
        push(
            &mut c,
            Kind::Update,
            "",
            live,
            "the next update check uses the new source",
        );
    }
    if current.fleet != proposed.fleet {
        push(
            &mut c,
            Kind::Fleet,
            "",
            live,
            "the next check-in uses the new fleet settings",
        );
    }
    ModeDecision { changes: c }
}
