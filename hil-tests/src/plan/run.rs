//! The runner: executes a [`Scenario`] on a [`Board`], step by step, and reports each
//! step and the whole (passed / failed: reason / not applicable: missing capability),
//! with times. A scenario whose needs the board lacks is not started; a step the board
//! turns out not to support ([`Unsupported`]) makes the scenario not applicable too.
//!
//! The API steps go through the board's [`crate::rig::ApiEndpoint`]; while the runner
//! waits it keeps calling [`Board::poll`], so a simulated board acts by itself.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;

use super::api::{self, UpgradeEnd};
use super::format::{Action, Decider, During, Scenario, UpgradeOutcome};
use crate::daemon_scenario::field;
use crate::rig::{
    Board, BoardEvent, Need, PublishedRelease, ReleaseRequest, RepositoryFault, Unsupported,
};

/// How long a step waits when its file gives no time.
pub const DEFAULT_STEP: Duration = Duration::from_secs(180);

/// How a scenario (or a step) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed(String),
    NotApplicable(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Passed => f.write_str("passed"),
            Verdict::Failed(why) => write!(f, "failed: {why}"),
            Verdict::NotApplicable(why) => write!(f, "not applicable: {why}"),
        }
    }
}

/// One step's outcome.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub line: usize,
    pub action: &'static str,
    pub verdict: Verdict,
    /// What the step saw (a slot, a time, a reason).
    pub detail: String,
    pub elapsed: Duration,
}

/// A scenario's outcome on one board.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub scenario: String,
    pub board: String,
    pub verdict: Verdict,
    pub elapsed: Duration,
    pub steps: Vec<StepReport>,
    /// The board's console (and logs) when the scenario failed.
    pub transcript: Option<String>,
}

/// Why the board cannot run `scenario`, if it cannot.
pub fn missing_needs(scenario: &Scenario, board: &dyn Board) -> Option<String> {
    let caps = board.capabilities();
    let mut missing: Vec<String> = Vec::new();
    let mut note = |alternatives: &[Need]| {
        if !alternatives.iter().any(|n| caps.has(n)) {
            let names: Vec<String> = alternatives.iter().map(ToString::to_string).collect();
            let text = names.join(" or ");
            if !missing.contains(&text) {
                missing.push(text);
            }
        }
    };
    for need in &scenario.needs {
        note(std::slice::from_ref(need));
    }
    for step in &scenario.steps {
        for alternatives in step.action.needs() {
            note(&alternatives);
        }
    }
    (!missing.is_empty()).then(|| format!("needs {}", missing.join(", ")))
}

/// Runs `scenario` on `board` (powered off, fresh) and powers it off at the end.
pub fn run(scenario: &Scenario, board: &mut dyn Board) -> ScenarioReport {
    let started = Instant::now();
    let mut report = ScenarioReport {
        scenario: scenario.name.clone(),
        board: board.name(),
        verdict: Verdict::Passed,
        elapsed: Duration::ZERO,
        steps: Vec::new(),
        transcript: None,
    };
    if let Some(why) = missing_needs(scenario, board) {
        report.verdict = Verdict::NotApplicable(why);
        return report;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report.verdict = Verdict::Failed(format!("starting the async runtime: {e}"));
            return report;
        }
    };
    let mut runner = Runner {
        board,
        runtime,
        pending: None,
        published: BTreeMap::new(),
        remembered: None,
        hang_at: None,
        last_slot: None,
        boots_at_start: BTreeMap::new(),
        arms_at_power_on: 0,
    };
    runner.boots_at_start = boot_counts(&runner.board.transcript());
    for step in &scenario.steps {
        let at = Instant::now();
        let outcome = runner.step(&step.action);
        let elapsed = at.elapsed();
        let (verdict, detail) = match outcome {
            Ok(detail) => (Verdict::Passed, detail),
            Err(e) => match e.downcast_ref::<Unsupported>() {
                Some(unsupported) => (
                    Verdict::NotApplicable(unsupported.to_string()),
                    String::new(),
                ),
                None => (Verdict::Failed(format!("{e:#}")), String::new()),
            },
        };
        report.steps.push(StepReport {
            line: step.line,
            action: step.action.name(),
            verdict: verdict.clone(),
            detail,
            elapsed,
        });
        match verdict {
            Verdict::Passed => {}
            Verdict::Failed(why) => {
                report.verdict = Verdict::Failed(format!(
                    "step {} ({}, line {}): {why}",
                    report.steps.len(),
                    step.action.name(),
                    step.line
                ));
                break;
            }
            Verdict::NotApplicable(why) => {
                report.verdict = Verdict::NotApplicable(why);
                break;
            }
        }
    }
    if let Some(pending) = runner.pending.take() {
        pending.abort();
    }
    if matches!(report.verdict, Verdict::Failed(_)) {
        report.transcript = Some(runner.board.transcript());
    }
    if let Err(e) = runner.board.shut_down() {
        if report.verdict == Verdict::Passed {
            report.verdict = Verdict::Failed(format!("shutting the board down: {e:#}"));
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// How many `SKERRY-BOOT slot=X` lines the console holds, per slot.
fn boot_counts(transcript: &str) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for line in transcript.lines() {
        if let Some(at) = line.find("SKERRY-BOOT slot=") {
            let slot: String = line[at + "SKERRY-BOOT slot=".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            *counts.entry(slot).or_insert(0) += 1;
        }
    }
    counts
}

/// How many times the console says the watchdog was armed.
fn watchdog_arms(transcript: &str) -> usize {
    transcript.matches(crate::rig::WATCHDOG_ARMED).count()
}

/// What `remember_state` keeps.
#[derive(Debug, Clone, PartialEq)]
struct Remembered {
    slot: String,
    release: String,
    history: Vec<Value>,
}

struct Runner<'b> {
    board: &'b mut dyn Board,
    runtime: tokio::runtime::Runtime,
    pending: Option<tokio::task::JoinHandle<anyhow::Result<UpgradeEnd>>>,
    published: BTreeMap<semver::Version, PublishedRelease>,
    remembered: Option<Remembered>,
    hang_at: Option<Instant>,
    last_slot: Option<String>,
    boots_at_start: BTreeMap<String, u32>,
    /// How many watchdog-armed lines the console held when the board was last powered on.
    arms_at_power_on: usize,
}

impl Runner<'_> {
    fn step(&mut self, action: &Action) -> anyhow::Result<String> {
        let t = |time: &Option<super::format::Time>| time.map_or(DEFAULT_STEP, |t| t.0);
        match action {
            Action::PowerOn {} => {
                self.arms_at_power_on = watchdog_arms(&self.board.transcript());
                self.board.power_on()?;
                Ok(String::new())
            }
            Action::PowerCut {
                during: None,
                timeout: _,
                ..
            } => {
                self.board.power_cut()?;
                Ok(String::new())
            }
            Action::PowerCut {
                during: Some(During::Install),
                version,
                after_bytes,
                timeout,
            } => {
                let (Some(version), Some(after)) = (version, after_bytes) else {
                    bail!("during = \"install\" needs version and after_bytes");
                };
                self.power_cut_during_install(&version.0, after.0, t(timeout))
            }
            Action::WaitRunning { slot, timeout } => {
                let running = self.board.wait_running(t(timeout))?;
                self.last_slot = Some(running.clone());
                match slot {
                    Some(want) if want.0 != running => {
                        bail!("the machine runs slot {running}, not {}", want.0)
                    }
                    _ => Ok(format!("slot {running}")),
                }
            }
            Action::ExpectSlot { slot } => {
                let running = self.running_slot()?;
                if running != slot.0 {
                    bail!("the machine runs slot {running}, not {}", slot.0);
                }
                Ok(format!("slot {running}"))
            }
            Action::ExpectVersion { version } => {
                let answer =
                    self.api_retry(DEFAULT_STEP, |ep| async move { api::version(&ep).await })?;
                if answer.release_version != version.0.to_string() {
                    bail!(
                        "the machine runs release {:?} on slot {}, not {}",
                        answer.release_version,
                        answer.booted_slot,
                        version.0
                    );
                }
                Ok(format!(
                    "{} on {}",
                    answer.release_version, answer.booted_slot
                ))
            }
            Action::Publish {
                version,
                release,
                fault,
            } => {
                let request = ReleaseRequest {
                    version: version.0.clone(),
                    property: Action::release_property(*release, fault.as_ref()),
                };
                let name = self.board.name();
                let factory = self.board.releases().ok_or_else(|| Unsupported {
                    board: name,
                    what: "publish releases (it has no release factory)".into(),
                })?;
                let published = factory.publish(&request)?;
                let detail = format!(
                    "{} ({}), pack {} bytes",
                    published.version, published.property, published.pack_bytes
                );
                self.published.insert(published.version.clone(), published);
                Ok(detail)
            }
            Action::Install { version, timeout } => self.install(&version.0, t(timeout)),
            Action::Upgrade {
                version,
                expect,
                reason_contains,
                wait,
                timeout,
            } => {
                self.start_upgrade(&version.0)?;
                if *wait == Some(false) {
                    return Ok("started".into());
                }
                self.finish_upgrade(
                    *expect,
                    reason_contains.as_ref().map(|r| r.0.as_str()),
                    t(timeout),
                )
            }
            Action::UpgradeFinishes { expect, timeout } => {
                self.finish_upgrade(*expect, None, t(timeout))
            }
            Action::ExpectCommitted { version, within } => {
                self.expect_committed(&version.0, t(within))
            }
            Action::ExpectRolledBack {
                version,
                by,
                within,
            } => self.expect_rolled_back(&version.0, *by, t(within)),
            Action::ExpectHealthy { within } => {
                self.wait_api(t(within), "every critical check passing", |ep| async move {
                    Ok(api::healthy(&ep).await?.then_some("healthy".to_owned()))
                })
            }
            Action::RememberState {} => {
                let state = self.state()?;
                let detail = format!(
                    "slot {}, release {:?}, {} history entries",
                    state.slot,
                    state.release,
                    state.history.len()
                );
                self.remembered = Some(state);
                Ok(detail)
            }
            Action::ExpectUnchanged {} => {
                let before = self
                    .remembered
                    .clone()
                    .context("expect_unchanged needs a remember_state step before it")?;
                let now = self.state()?;
                if now != before {
                    bail!("the machine changed: was {before:?}, is now {now:?}");
                }
                Ok(format!("slot {}, release {:?}", now.slot, now.release))
            }
            Action::ExpectBoots { slot, at_least } => {
                let now = boot_counts(&self.board.transcript());
                let boots = now.get(&slot.0).copied().unwrap_or(0)
                    - self.boots_at_start.get(&slot.0).copied().unwrap_or(0);
                if boots < at_least.0 {
                    bail!(
                        "the console shows {boots} boots of slot {}, fewer than {}",
                        slot.0,
                        at_least.0
                    );
                }
                Ok(format!("{boots} boots of slot {}", slot.0))
            }
            Action::ExpectConsole { text, timeout } => {
                self.board.expect_console(&text.0, t(timeout))?;
                Ok(String::new())
            }
            Action::ExpectWatchdogArmed { within } => {
                let limit = t(within);
                let deadline = Instant::now() + limit;
                loop {
                    self.board.poll()?;
                    if watchdog_arms(&self.board.transcript()) > self.arms_at_power_on {
                        let timeout = self.board.watchdog_timeout();
                        return Ok(timeout.map_or(String::new(), |t| format!("timeout {t:?}")));
                    }
                    if Instant::now() > deadline {
                        bail!("the watchdog was not armed within {limit:?} of power-on");
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Action::HangDaemon {} => {
                // Events before the hang are not its consequences.
                let _ = self.board.take_timed_events();
                self.board.hang_daemon()?;
                self.hang_at = Some(Instant::now());
                Ok(String::new())
            }
            Action::ExpectWatchdogReset { within } => {
                let timeout = self.board.watchdog_timeout();
                let limit = within.limit(timeout).with_context(|| {
                    format!(
                        "{} gives no watchdog timeout for \"{within}\"",
                        self.board.name()
                    )
                })?;
                let from = self.hang_at.unwrap_or_else(Instant::now);
                let deadline = from + limit * 3 + Duration::from_secs(10);
                loop {
                    self.board.poll()?;
                    let events = self.board.take_timed_events();
                    if let Some(reset) =
                        events.iter().find(|e| e.event == BoardEvent::WatchdogReset)
                    {
                        let after = reset.at.saturating_duration_since(from);
                        if after > limit {
                            bail!(
                                "the watchdog reset the machine {after:.2?} after the hang, later than {within} = {limit:.2?}"
                            );
                        }
                        return Ok(format!(
                            "reset {after:.2?} after the hang (limit {limit:.2?})"
                        ));
                    }
                    if let Some(other) = events.first() {
                        bail!("the board saw {:?} before any watchdog reset", other.event);
                    }
                    if Instant::now() > deadline {
                        bail!("no watchdog reset within {:?}", deadline - from);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Action::RepositoryDown { after_bytes } => {
                let repository = self.repository()?;
                repository.set_fault(match after_bytes {
                    Some(n) => RepositoryFault::CutAfter(n.0),
                    None => RepositoryFault::Down,
                });
                Ok(String::new())
            }
            Action::RepositoryUp { after, timeout } => {
                self.repository_up(after.map_or(Duration::ZERO, |a| a.0), t(timeout))
            }
            Action::ExpectDownloadResumed {} => {
                let record = self.repository()?.cut_record();
                if !record.resumed() {
                    bail!(
                        "the download did not resume after its cut: first pack request from byte {:?}, cut at {:?}, next request from {:?}",
                        record.first_start, record.cut_at, record.next_start
                    );
                }
                Ok(format!(
                    "first request from byte {}, cut at {}, resumed from {}",
                    record.first_start.unwrap_or(0),
                    record.cut_at.unwrap_or(0),
                    record.next_start.unwrap_or(0)
                ))
            }
        }
    }

    fn repository(&self) -> anyhow::Result<&crate::rig::RepositoryServer> {
        let name = self.board.name();
        self.board.repository().ok_or_else(|| {
            Unsupported {
                board: name,
                what: "control its release repository".into(),
            }
            .into()
        })
    }

    /// Calls `call` on the API until it answers, polling the board, for at most `limit`.
    fn api_retry<T, F, Fut>(&mut self, limit: Duration, call: F) -> anyhow::Result<T>
    where
        F: Fn(crate::rig::ApiEndpoint) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let deadline = Instant::now() + limit;
        let mut last = anyhow!("the board showed no API");
        loop {
            self.board.poll()?;
            if let Some(endpoint) = self.board.api() {
                match self.runtime.block_on(call(endpoint)) {
                    Ok(value) => return Ok(value),
                    Err(e) => last = e,
                }
            }
            if Instant::now() > deadline {
                return Err(last.context(format!("the API did not answer within {limit:?}")));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls `check` on the API until it gives a value, for at most `limit`.
    fn wait_api<F, Fut>(&mut self, limit: Duration, what: &str, check: F) -> anyhow::Result<String>
    where
        F: Fn(crate::rig::ApiEndpoint) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<String>>>,
    {
        let deadline = Instant::now() + limit;
        let mut last = String::from("the API never answered");
        loop {
            self.board.poll()?;
            if let Some(endpoint) = self.board.api() {
                match self.runtime.block_on(check(endpoint)) {
                    Ok(Some(found)) => return Ok(found),
                    Ok(None) => last = "not yet".into(),
                    Err(e) => last = format!("{e:#}"),
                }
            }
            if Instant::now() > deadline {
                bail!("no {what} within {limit:?} (last: {last})");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn running_slot(&mut self) -> anyhow::Result<String> {
        if self.board.capabilities().runs_skerryd {
            let answer =
                self.api_retry(DEFAULT_STEP, |ep| async move { api::version(&ep).await })?;
            return Ok(answer.booted_slot);
        }
        self.last_slot
            .clone()
            .context("no slot known to run: wait_running first")
    }

    fn state(&mut self) -> anyhow::Result<Remembered> {
        let (version, history) = self.api_retry(DEFAULT_STEP, |ep| async move {
            Ok((api::version(&ep).await?, api::upgrade_history(&ep).await?))
        })?;
        Ok(Remembered {
            slot: version.booted_slot,
            release: version.release_version,
            history,
        })
    }

    fn start_upgrade(&mut self, version: &semver::Version) -> anyhow::Result<()> {
        if self.pending.is_some() {
            bail!("an upgrade is already in progress");
        }
        let endpoint = self
            .board
            .api()
            .context("the board shows no API: wait_running first")?;
        let task = self
            .runtime
            .spawn(api::upgrade(endpoint, version.to_string()));
        self.pending = Some(task);
        Ok(())
    }

    fn finish_upgrade(
        &mut self,
        expect: UpgradeOutcome,
        reason_contains: Option<&str>,
        limit: Duration,
    ) -> anyhow::Result<String> {
        let task = self
            .pending
            .take()
            .context("no upgrade in progress (upgrade with wait = false first)")?;
        let deadline = Instant::now() + limit;
        while !task.is_finished() {
            self.board.poll()?;
            if Instant::now() > deadline {
                task.abort();
                bail!("the upgrade did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let end = self
            .runtime
            .block_on(task)
            .map_err(|e| anyhow!("the upgrade task failed: {e}"))??;
        let described = end.describe();
        match (expect, &end) {
            (UpgradeOutcome::TrialReady, _) if end.trial_ready() => {}
            (UpgradeOutcome::TrialReady, _) => bail!("the upgrade {described}"),
            (UpgradeOutcome::Refused, UpgradeEnd::Refused(_)) => {}
            (UpgradeOutcome::Refused, _) => bail!("the upgrade was not refused: it {described}"),
            (UpgradeOutcome::Any, _) => {}
        }
        if let Some(text) = reason_contains {
            if !described.contains(text) {
                bail!("the upgrade {described}; expected its reason to contain {text:?}");
            }
        }
        Ok(described)
    }

    fn install(&mut self, version: &semver::Version, limit: Duration) -> anyhow::Result<String> {
        if self.board.capabilities().runs_skerryd {
            self.start_upgrade(version)?;
            return self.finish_upgrade(UpgradeOutcome::TrialReady, None, limit);
        }
        let release = self
            .published
            .get(version)
            .cloned()
            .with_context(|| format!("{version} was not published in this scenario"))?;
        self.board.power_cut()?;
        self.board.install_host_side(&release)?;
        self.board.power_on()?;
        Ok(format!("{version} installed host-side"))
    }

    fn power_cut_during_install(
        &mut self,
        version: &semver::Version,
        after: u64,
        limit: Duration,
    ) -> anyhow::Result<String> {
        self.repository()?
            .set_fault(RepositoryFault::HoldAfter(after));
        self.start_upgrade(version)?;
        let deadline = Instant::now() + limit;
        loop {
            self.board.poll()?;
            if self.repository()?.holding() {
                break;
            }
            if self.pending.as_ref().is_some_and(|t| t.is_finished()) {
                let task = self.pending.take().context("the upgrade task vanished")?;
                let end = self.runtime.block_on(task).map_err(|e| anyhow!("{e}"))??;
                self.repository()?.set_fault(RepositoryFault::None);
                bail!(
                    "the upgrade {} before {after} pack bytes were served",
                    end.describe()
                );
            }
            if Instant::now() > deadline {
                self.repository()?.set_fault(RepositoryFault::None);
                bail!("the repository served fewer than {after} pack bytes within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let served = self.repository()?.pack_bytes_served();
        // The device says so too: its upgrade is still under way (not ready, not failed).
        let phase = match self.board.api() {
            Some(endpoint) => {
                let status = self.runtime.block_on(api::upgrade_status(&endpoint))?;
                let phase = field(&status, "phase");
                if !matches!(phase, "downloading" | "writing" | "verifying") {
                    self.repository()?.set_fault(RepositoryFault::None);
                    bail!("the download is held, yet the device's upgrade is {phase:?}, not under way");
                }
                format!(", device upgrade phase {phase:?}")
            }
            None => String::new(),
        };
        self.board.power_cut()?;
        self.repository()?.set_fault(RepositoryFault::None);
        if let Some(task) = self.pending.take() {
            // The call dies with the machine; its end tells nothing.
            task.abort();
        }
        Ok(format!("power cut with {served} pack bytes served{phase}"))
    }

    fn repository_up(&mut self, after: Duration, limit: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + limit;
        let armed = matches!(
            self.repository()?.fault(),
            RepositoryFault::CutAfter(_) | RepositoryFault::Down
        ) && !self.repository()?.was_cut();
        let waiting_for_cut =
            armed && matches!(self.repository()?.fault(), RepositoryFault::CutAfter(_));
        if waiting_for_cut {
            while !self.repository()?.was_cut() {
                self.board.poll()?;
                if Instant::now() > deadline {
                    bail!("the download was never cut within {limit:?}");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let down_at = Instant::now();
        while down_at.elapsed() < after {
            self.board.poll()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        let served = self.repository()?.pack_bytes_served();
        self.repository()?.set_fault(RepositoryFault::None);
        Ok(format!(
            "up again after {after:?} down; {served} pack bytes served so far"
        ))
    }

    fn expect_committed(
        &mut self,
        version: &semver::Version,
        limit: Duration,
    ) -> anyhow::Result<String> {
        let want = version.to_string();
        self.wait_api(limit, &format!("commit of {want}"), move |ep| {
            let want = want.clone();
            async move {
                let status = api::upgrade_status(&ep).await?;
                let phase = field(&status, "phase");
                let release = field(&status, "release");
                if phase == "committed" && release == want {
                    return Ok(Some(format!(
                        "{release} committed on slot {}",
                        field(&status, "target_slot")
                    )));
                }
                if phase == "rolling_back" || phase == "failed" {
                    anyhow::bail!("the upgrade is {phase}: {}", field(&status, "message"));
                }
                Ok(None)
            }
        })
    }

    fn expect_rolled_back(
        &mut self,
        version: &semver::Version,
        by: Option<Decider>,
        limit: Duration,
    ) -> anyhow::Result<String> {
        if !self.board.capabilities().runs_skerryd {
            return self.expect_rolled_back_host_side(version, by, limit);
        }
        let want = version.to_string();
        self.wait_api(limit, &format!("rollback of {want}"), move |ep| {
            let want = want.clone();
            async move {
                let history = api::upgrade_history(&ep).await?;
                let Some(entry) = history
                    .iter()
                    .rev()
                    .find(|e| field(e, "step") == "rolled_back" && field(e, "release") == want)
                else {
                    return Ok(None);
                };
                let decided = field(entry, "by");
                if let Some(by) = by {
                    if decided != by.as_str() {
                        anyhow::bail!(
                            "{want} was rolled back by {decided:?}, not by {}: {}",
                            by.as_str(),
                            field(entry, "reason")
                        );
                    }
                }
                let running = api::version(&ep).await?;
                let from = field(entry, "slot");
                if running.booted_slot == from {
                    return Ok(None);
                }
                Ok(Some(format!(
                    "{want} on slot {from} rolled back by {decided}; back on {}: {}",
                    running.booted_slot,
                    field(entry, "reason")
                )))
            }
        })
    }
}

impl Runner<'_> {
    /// `expect_rolled_back` on a board without skerryd: the bootloader's own state, read
    /// host-side, gave the slot `version` was installed in up (bad), and the guest now
    /// running names another slot, a good one, and another release on its console.
    fn expect_rolled_back_host_side(
        &mut self,
        version: &semver::Version,
        by: Option<Decider>,
        limit: Duration,
    ) -> anyhow::Result<String> {
        if by == Some(Decider::Probation) {
            return Err(Unsupported {
                board: self.board.name(),
                what: "roll back in probation (no skerryd runs there)".into(),
            }
            .into());
        }
        let deadline = Instant::now() + limit;
        loop {
            self.board.poll()?;
            let name = self.board.name();
            let view = self.board.boot_view().ok_or_else(|| Unsupported {
                board: name,
                what: "show its bootloader's state host-side".into(),
            })??;
            if let Some(found) = host_side_rollback(&view, version)? {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!(
                    "no rollback of {version} within {limit:?}: boot state {:?}, running {:?}",
                    view.state.slots(),
                    view.running
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Whether `view` shows `version` rolled back by the bootloader: `Ok(None)` not yet (on
/// trial, or no guest running), an error when it cannot come (committed, never installed).
fn host_side_rollback(
    view: &crate::rig::BootView,
    version: &semver::Version,
) -> anyhow::Result<Option<String>> {
    use skerry_boot_state::{SlotName, SlotStatus};
    let Some((from, _)) = view.installed.iter().find(|(_, v)| *v == version) else {
        bail!("{version} was never installed host-side on this board");
    };
    let status = |slot: &str| -> anyhow::Result<SlotStatus> {
        Ok(view.state.status(&SlotName::new(slot)?)?)
    };
    match status(from)? {
        SlotStatus::Trial { .. } => return Ok(None),
        SlotStatus::Good => bail!("{version} on slot {from} is good in the bootloader's state: it was kept, not rolled back"),
        SlotStatus::Bad => {}
    }
    let Some(running) = &view.running else {
        return Ok(None);
    };
    if running.slot == *from || running.version == version.to_string() {
        bail!(
            "slot {from} is given up, yet the guest runs slot {} with release {}",
            running.slot,
            running.version
        );
    }
    if status(&running.slot)? != SlotStatus::Good {
        bail!(
            "the guest runs slot {}, which the bootloader's state does not hold good",
            running.slot
        );
    }
    Ok(Some(format!(
        "{version} on slot {from} given up by the bootloader; back on slot {} running {}",
        running.slot, running.version
    )))
}

/// The table scenario × board → result and time.
pub fn table(reports: &[ScenarioReport]) -> String {
    let mut boards: Vec<String> = Vec::new();
    let mut scenarios: Vec<String> = Vec::new();
    for r in reports {
        if !boards.contains(&r.board) {
            boards.push(r.board.clone());
        }
        if !scenarios.contains(&r.scenario) {
            scenarios.push(r.scenario.clone());
        }
    }
    let cell = |scenario: &str, board: &str| -> String {
        reports
            .iter()
            .find(|r| r.scenario == scenario && r.board == board)
            .map_or_else(
                || "-".to_owned(),
                |r| match &r.verdict {
                    Verdict::Passed => format!("passed ({:.1} s)", r.elapsed.as_secs_f64()),
                    other => {
                        let mut text = format!("{other} ({:.1} s)", r.elapsed.as_secs_f64());
                        if text.len() > 120 {
                            let mut cut = 117;
                            while !text.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            text.truncate(cut);
                            text.push_str("...");
                        }
                        text
                    }
                },
            )
    };
    let first = scenarios
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("scenario".len());
    let widths: Vec<usize> = boards
        .iter()
        .map(|b| {
            scenarios
                .iter()
                .map(|s| cell(s, b).chars().count())
                .max()
                .unwrap_or(0)
                .max(b.len())
        })
        .collect();
    let mut out = format!("| {:<first$} |", "scenario");
    for (b, w) in boards.iter().zip(&widths) {
        out.push_str(&format!(" {b:<w$} |"));
    }
    out.push_str(&format!("\n|{}|", "-".repeat(first + 2)));
    for w in &widths {
        out.push_str(&format!("{}|", "-".repeat(w + 2)));
    }
    out.push('\n');
    for s in &scenarios {
        out.push_str(&format!("| {s:<first$} |"));
        for (b, w) in boards.iter().zip(&widths) {
            let text = cell(s, b);
            let pad = w.saturating_sub(text.chars().count());
            out.push_str(&format!(" {text}{} |", " ".repeat(pad)));
        }
        out.push('\n');
    }
    out
}

/// Every step of one report, for a failing scenario's message.
pub fn steps_text(report: &ScenarioReport) -> String {
    let mut out = format!(
        "{} on {}: {}\n",
        report.scenario, report.board, report.verdict
    );
    for (i, s) in report.steps.iter().enumerate() {
        out.push_str(&format!(
            "  {:>2}. line {:>3} {:<24} {:>7.2} s  {}{}\n",
            i + 1,
            s.line,
            s.action,
            s.elapsed.as_secs_f64(),
            s.verdict,
            if s.detail.is_empty() {
                String::new()
            } else {
                format!(" — {}", s.detail)
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rig::{ApiEndpoint, Capabilities};

    /// A board that only answers what the needs check and the table ask.
    struct Paper(Capabilities);

    impl Board for Paper {
        fn name(&self) -> String {
            "paper".into()
        }
        fn capabilities(&self) -> Capabilities {
            self.0
        }
        fn power_on(&mut self) -> anyhow::Result<()> {
            bail!("a paper board has no power")
        }
        fn power_cut(&mut self) -> anyhow::Result<()> {
            Ok(())
        }
        fn expect_console(&mut self, needle: &str, _: Duration) -> anyhow::Result<String> {
            bail!("no console to find {needle:?} on")
        }
        fn wait_running(&mut self, _: Duration) -> anyhow::Result<String> {
            bail!("never runs")
        }
        fn api(&self) -> Option<ApiEndpoint> {
            None
        }
        fn take_events(&mut self) -> Vec<BoardEvent> {
            Vec::new()
        }
        fn transcript(&self) -> String {
            String::new()
        }
    }

    const FALLBACK: &str = r#"
name = "fallback"
summary = "s"
needs = ["watchdog"]
[[step]]
publish = { version = "1.1.0", release = "fault", fault = "hang-initramfs" }
[[step]]
install = { version = "1.1.0" }
[[step]]
expect_committed = { version = "1.1.0" }
"#;

    #[test]
    fn needs_name_every_missing_capability_and_alternatives_count() {
        let scenario = super::super::parse("f.toml", FALLBACK).unwrap();
        let busybox = Paper(Capabilities {
            host_side_install: true,
            watchdog_resets: true,
            faults: &["hang-initramfs"],
            ..Capabilities::default()
        });
        // install is satisfied host-side; the commit check needs the API.
        assert_eq!(
            missing_needs(&scenario, &busybox).as_deref(),
            Some("needs skerryd")
        );
        let bare = Paper(Capabilities::default());
        assert_eq!(
            missing_needs(&scenario, &bare).as_deref(),
            Some("needs watchdog, fault:hang-initramfs, skerryd or host_side_install, skerryd")
        );
        let full = Paper(Capabilities {
            runs_skerryd: true,
            watchdog_resets: true,
            faults: &["hang-initramfs"],
            ..Capabilities::default()
        });
        assert_eq!(missing_needs(&scenario, &full), None);
    }

    #[test]
    fn a_not_applicable_scenario_touches_no_board_and_a_failing_step_stops_it() {
        let scenario = super::super::parse("f.toml", FALLBACK).unwrap();
        let report = run(&scenario, &mut Paper(Capabilities::default()));
        assert!(matches!(report.verdict, Verdict::NotApplicable(_)));
        assert!(report.steps.is_empty());

        let power = super::super::parse(
            "p.toml",
            "name = \"p\"\nsummary = \"s\"\n[[step]]\npower_on = {}\n[[step]]\npower_cut = {}\n",
        )
        .unwrap();
        let cuttable = Capabilities {
            power_cut: true,
            ..Capabilities::default()
        };
        let report = run(&power, &mut Paper(cuttable));
        assert_eq!(
            report.verdict,
            Verdict::Failed("step 1 (power_on, line 4): a paper board has no power".into())
        );
        assert_eq!(report.steps.len(), 1);
    }

    #[test]
    fn a_host_side_rollback_needs_the_slot_given_up_and_a_good_slot_running() {
        use crate::rig::{BootView, RunningGuest};
        use skerry_boot_state::{BootState, SlotName};
        let (a, b) = (SlotName::new("A").unwrap(), SlotName::new("B").unwrap());
        let v11 = semver::Version::new(1, 1, 0);
        let mut trial = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
        trial.begin_trial(&b).unwrap();
        let mut given_up = trial.clone();
        for _ in 0..4 {
            given_up.power_on().unwrap();
        }
        let mut kept = trial.clone();
        kept.mark_good(&b).unwrap();
        let running = |slot: &str, version: &str| {
            Some(RunningGuest {
                slot: slot.into(),
                version: version.into(),
            })
        };
        let view = |state: &BootState, running: Option<RunningGuest>| BootView {
            state: state.clone(),
            installed: [
                ("A".to_owned(), semver::Version::new(1, 0, 0)),
                ("B".to_owned(), v11.clone()),
            ]
            .into_iter()
            .collect(),
            running,
        };
        // Still on trial, or nothing running yet: not yet.
        assert_eq!(
            host_side_rollback(&view(&trial, running("B", "1.1.0")), &v11).unwrap(),
            None
        );
        assert_eq!(
            host_side_rollback(&view(&given_up, None), &v11).unwrap(),
            None
        );
        let found = host_side_rollback(&view(&given_up, running("A", "1.0.0")), &v11)
            .unwrap()
            .unwrap();
        assert!(
            found.contains("slot B given up") && found.contains("back on slot A"),
            "{found}"
        );
        // Kept, or the given-up slot still running, or never installed: it cannot come.
        assert!(host_side_rollback(&view(&kept, running("B", "1.1.0")), &v11).is_err());
        assert!(host_side_rollback(&view(&given_up, running("B", "1.1.0")), &v11).is_err());
        assert!(host_side_rollback(
            &view(&given_up, running("A", "1.0.0")),
            &semver::Version::new(2, 0, 0)
        )
        .is_err());
    }

    #[test]
    fn the_table_has_a_row_per_scenario_and_a_column_per_board() {
        let report = |scenario: &str, board: &str, verdict: Verdict| ScenarioReport {
            scenario: scenario.into(),
            board: board.into(),
            verdict,
            elapsed: Duration::from_millis(1500),
            steps: Vec::new(),
            transcript: None,
        };
        let text = table(&[
            report("happy", "sim", Verdict::Passed),
            report("happy", "qemu", Verdict::Failed("step 2: no".into())),
            report(
                "hang",
                "sim",
                Verdict::NotApplicable("needs real_kernel".into()),
            ),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].contains("scenario") && lines[0].contains("sim") && lines[0].contains("qemu")
        );
        assert!(lines[2].contains("passed (1.5 s)") && lines[2].contains("failed: step 2: no"));
        assert!(
            lines[3].contains("not applicable: needs real_kernel")
                && lines[3].trim_end_matches('|').trim_end().ends_with('-'),
            "{text}"
        );
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "aligned: {text}");
    }
}
