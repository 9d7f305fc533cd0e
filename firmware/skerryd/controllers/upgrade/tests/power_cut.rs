//! Power cuts through the upgrade flow's persistent writes, on the lossy page-cache
//! model (`skerry_medium::lossy`): the boot store (a redundant U-Boot environment, and
//! a GRUB environment block), the slot image the installer writes, and the upgrade
//! history, all on one simulated directory. Each phase of the flow (install and begin
//! the trial; the trial's first start; commit; fail the trial; record a trial the
//! bootloader gave up; an operator's rollback) is cut after each of its operations, with
//! many choices of which unflushed writes and renames survive; then the bootloader
//! powers on (the real U-Boot script's and GRUB fragment's rules) and the daemon's
//! start settles the history against the boot store, as many times as it asks to
//! reboot.
//!
//! After every cut: the machine boots a slot that is good or on trial with its image
//! fully written; every good slot holds an intact image and at least one exists; the
//! history reads; a trial rolled back is remembered as such, an untried one is not.

use std::cell::Cell;
use std::ffi::OsStr;

use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::sim::Simulated;
use skerry_boot_state::uboot::{UbootEnvStore, UbootLayout};
use skerry_boot_state::{BootState, BootStore, SlotName, SlotStatus};
use skerry_medium::dir::Directory;
use skerry_medium::lossy::{every_power_loss, CutPoint, LossyFs, Mode};
use skerry_medium::FsMedium;
use skerryd_upgrade::flow::{self, Settled, TrialPlan};
use skerryd_upgrade::history::{Decider, HistoryStore, Step};

/// How a scenario opens its boot store on the simulated directory.
type Open<S> = fn(&LossyFs) -> S;

/// Outcomes checked per cut at most.
const OUTCOMES_PER_CUT: usize = 64;
/// The release installed.
const RELEASE: &str = "1.1.0";
/// Image size: four sectors, so a write can tear inside.
const IMAGE: usize = 2048;

fn slot(name: &str) -> SlotName {
    SlotName::new(name).unwrap()
}

fn image(tag: u8) -> Vec<u8> {
    (0..IMAGE)
        .map(|i| tag.wrapping_add((i / 7) as u8))
        .collect()
}

fn v1() -> Vec<u8> {
    image(1)
}
fn v0() -> Vec<u8> {
    image(100)
}
fn v2() -> Vec<u8> {
    image(200)
}

fn uboot(fs: &LossyFs) -> UbootEnvStore<FsMedium<LossyFs>> {
    UbootEnvStore::new(
        FsMedium::in_dir(fs.clone(), "uboot.env"),
        UbootLayout {
            offset: 0,
            size: 0x800,
            redundant: true,
        },
    )
}

fn grub(fs: &LossyFs) -> GrubEnvStore<FsMedium<LossyFs>> {
    GrubEnvStore::new(FsMedium::in_dir(fs.clone(), "grubenv"))
}

/// The history as a trial writes it: at version 1, the committed release's.
fn history(fs: &LossyFs) -> HistoryStore<LossyFs> {
    HistoryStore::new(fs.clone(), 1)
}

fn image_of(fs: &LossyFs, slot: &SlotName) -> Vec<u8> {
    fs.read(&format!("slot-{slot}.img")).unwrap_or_default()
}

/// Whether `slot`'s image is one a release wrote whole.
fn intact(fs: &LossyFs, slot: &SlotName) -> bool {
    let bytes = image_of(fs, slot);
    match slot.as_str() {
        "A" => bytes == v1(),
        _ => bytes == v0() || bytes == v2(),
    }
}

/// A machine running slot A (1.0.0) with slot B good too (an older release), as after
/// an earlier upgrade: both good, A first.
fn machine<S: BootStore>(store: Open<S>) -> LossyFs {
    let fs = LossyFs::new(Mode::Posix)
        .with_file("slot-A.img", &v1())
        .with_file("slot-B.img", &v0());
    let (a, b) = (slot("A"), slot("B"));
    let mut state = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
    state.begin_trial(&b).unwrap();
    state.mark_good(&b).unwrap();
    state.mark_good(&a).unwrap();
    store(&fs).commit(&state).unwrap();
    fs
}

/// The upgrade's writes: the installer's hook marks B bad, the installer writes and
/// flushes B, then the trial begins. Stops at the first failed operation (the cut).
fn install_and_begin_trial<S: BootStore>(store: Open<S>, fs: &LossyFs) {
    let (a, b) = (slot("A"), slot("B"));
    let mut s = store(fs);
    let Ok(mut state) = s.load() else { return };
    if state.status(&b) != Ok(SlotStatus::Bad)
        && (state.mark_bad(&b).is_err() || s.commit(&state).is_err())
    {
        return;
    }
    let mut dir = fs.clone();
    let name = OsStr::new("slot-B.img");
    if dir.write_at(name, 0, &v2()).is_err() || dir.sync_file(name).is_err() {
        return;
    }
    let _ = flow::begin_trial(
        &mut history(fs),
        &mut s,
        &TrialPlan {
            slot: &b,
            release: RELEASE,
            from: &a,
            forced: false,
        },
    );
}

/// Power-on and the daemon's start, repeated while the start asks for a reboot (a
/// rollback it finished). Returns the slot finally running and what its start found.
fn power_on_and_start<S: BootStore + Simulated>(
    store: Open<S>,
    fs: &LossyFs,
) -> Result<(SlotName, Settled), String> {
    for _ in 0..4 {
        let mut s = store(fs);
        let booted = s
            .simulate_boot()
            .map_err(|e| format!("the bootloader found no slot: {e}"))?;
        let settled = flow::settle(&mut history(fs), &mut s, Some(&booted))
            .map_err(|e| format!("the start on slot {booted} failed: {e}"))?;
        if !matches!(settled, Settled::FailedBeforeCut(_)) {
            return Ok((booted, settled));
        }
    }
    Err("the machine kept rebooting".into())
}

/// What must hold whatever was cut.
fn check_machine<S: BootStore>(
    store: Open<S>,
    fs: &LossyFs,
    booted: &SlotName,
    settled: &Settled,
) -> Result<(), String> {
    let state = store(fs)
        .load()
        .map_err(|e| format!("the boot store does not load: {e}"))?;
    match state.status(booted).map_err(|e| e.to_string())? {
        SlotStatus::Good => {}
        SlotStatus::Trial { .. } if image_of(fs, booted) == v2() => {}
        other => {
            return Err(format!(
                "booted slot {booted} is {other:?} with image intact: {}",
                intact(fs, booted)
            ))
        }
    }
    let mut good = 0;
    for s in state.slots() {
        if s.status == SlotStatus::Good {
            if !intact(fs, &s.name) {
                return Err(format!("slot {} is good but its image is torn", s.name));
            }
            good += 1;
        }
    }
    if good == 0 {
        return Err(format!("no good slot left: {state:?}"));
    }
    let h = history(fs)
        .load()
        .map_err(|e| format!("the history does not read: {e}"))?;
    if let Settled::Probation(pending) = settled {
        if pending.slot != booted.as_str() || image_of(fs, booted) != v2() {
            return Err(format!("probation of {pending:?} on slot {booted}"));
        }
    }
    if h.pending
        .as_ref()
        .is_some_and(|p| p.slot != booted.as_str())
    {
        return Err(format!(
            "a trial of another slot stays pending: {:?}",
            h.pending
        ));
    }
    Ok(())
}

/// Runs `act` from `before`, cut at every operation; counts the outcomes checked.
fn cut_everywhere<S: BootStore + Simulated>(
    store: Open<S>,
    name: &str,
    before: &LossyFs,
    act: impl Fn(&LossyFs),
    extra: impl Fn(&CutPoint, &LossyFs, &SlotName, &Settled) -> Result<(), String>,
    count: &Cell<usize>,
) -> LossyFs {
    every_power_loss(
        before,
        act,
        |cut, after| {
            count.set(count.get() + 1);
            let (booted, settled) = power_on_and_start(store, after)?;
            check_machine(store, after, &booted, &settled)?;
            extra(cut, after, &booted, &settled)
        },
        OUTCOMES_PER_CUT,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// After the install: the machine powered on into B's trial and its start settled.
fn on_trial<S: BootStore + Simulated>(store: Open<S>, installed: &LossyFs) -> LossyFs {
    let fs = installed.fork();
    let (booted, settled) = power_on_and_start(store, &fs).unwrap();
    assert_eq!(booted, slot("B"));
    assert!(matches!(settled, Settled::Probation(_)), "{settled:?}");
    fs
}

/// The whole scenario on one kind of boot store; returns the outcomes checked.
fn scenario<S: BootStore + Simulated>(store: Open<S>) -> usize {
    let count = Cell::new(0);
    let b = slot("B");

    // 1. Install and begin the trial.
    let installed = cut_everywhere(
        store,
        "install and begin the trial",
        &machine(store),
        |fs| install_and_begin_trial(store, fs),
        |cut, fs, booted, settled| {
            if cut.completed() && *booted != slot("B") {
                return Err(format!("a finished install booted {booted}"));
            }
            // Back on A after a cut here means B's trial never started: nothing was
            // tried, so nothing may count as rolled back.
            if *booted == slot("A") && history(fs).load().unwrap().is_rolled_back(RELEASE) {
                return Err(format!(
                    "an untried release is marked rolled back: {settled:?}"
                ));
            }
            Ok(())
        },
        &count,
    );
    let after_install = count.get();

    // 2. The trial's first start: the bootloader uses an attempt, the daemon settles.
    cut_everywhere(
        store,
        "the trial's first start",
        &installed,
        |fs| {
            let mut s = store(fs);
            if let Ok(booted) = s.simulate_boot() {
                let _ = flow::settle(&mut history(fs), &mut s, Some(&booted));
            }
        },
        |_, _, booted, settled| {
            if *booted == slot("B") && !matches!(settled, Settled::Probation(_)) {
                return Err(format!("the trial started without probation: {settled:?}"));
            }
            Ok(())
        },
        &count,
    );

    // 3. Probation passes: commit.
    let trial = on_trial(store, &installed);
    let committed = cut_everywhere(
        store,
        "commit",
        &trial,
        |fs| {
            let _ = flow::commit(&mut history(fs), &mut store(fs), &slot("B"), "healthy");
        },
        |cut, fs, booted, _| {
            let state = store(fs).load().unwrap();
            let h = history(fs).load().unwrap();
            if state.status(&slot("B")) == Ok(SlotStatus::Good) {
                let last = h.entries.last().map(|e| e.step);
                if *booted != slot("B") || last != Some(Step::Committed) || h.pending.is_some() {
                    return Err(format!(
                        "B is good but booted {booted}, last step {last:?}, pending {:?}",
                        h.pending
                    ));
                }
            } else if cut.completed() {
                return Err("the commit returned but B is not good".into());
            }
            Ok(())
        },
        &count,
    );

    // 4. Probation fails: mark bad, back to A, remembered as rolled back.
    cut_everywhere(
        store,
        "fail the trial",
        &trial,
        |fs| {
            let _ = flow::fail_trial(
                &mut history(fs),
                &mut store(fs),
                &slot("B"),
                "critical health check app/ready failed",
                Decider::Probation,
            );
        },
        |cut, fs, booted, settled| {
            let h = history(fs).load().unwrap();
            if *booted == slot("A") {
                let last = h.entries.last().unwrap();
                if last.step != Step::RolledBack
                    || !last.reason.contains("app/ready")
                    || !h.is_rolled_back(RELEASE)
                {
                    return Err(format!("back on A but the history says {last:?}"));
                }
            } else if cut.completed() || !matches!(settled, Settled::Probation(_)) {
                return Err(format!("after a failed trial booted {booted}: {settled:?}"));
            }
            Ok(())
        },
        &count,
    );

    // 5. The bootloader gives the trial up; the start on A records it.
    let given_up = installed.fork();
    let tries = store(&given_up).load().unwrap().tries();
    for _ in 0..tries {
        assert_eq!(store(&given_up).simulate_boot().unwrap(), b);
    }
    assert_eq!(store(&given_up).simulate_boot().unwrap(), slot("A"));
    cut_everywhere(
        store,
        "record the bootloader's rollback",
        &given_up,
        |fs| {
            let _ = flow::settle(&mut history(fs), &mut store(fs), Some(&slot("A")));
        },
        |_, fs, booted, _| {
            let h = history(fs).load().unwrap();
            let last = h.entries.last().unwrap();
            if *booted != slot("A")
                || !last.reason.contains("by the bootloader")
                || !h.is_rolled_back(RELEASE)
            {
                return Err(format!("on {booted} the history says {last:?}"));
            }
            Ok(())
        },
        &count,
    );

    // 6. An operator rolls the committed B back to A.
    let running_b = committed.fork();
    assert_eq!(power_on_and_start(store, &running_b).unwrap().0, b);
    cut_everywhere(
        store,
        "an operator's rollback",
        &running_b,
        |fs| {
            let _ = flow::rollback(
                &mut history(fs),
                &mut store(fs),
                &slot("B"),
                RELEASE,
                "the dashboard is blank",
            );
        },
        |cut, fs, booted, _| {
            if cut.completed() && *booted != slot("A") {
                return Err(format!("the rollback returned but {booted} booted"));
            }
            if *booted == slot("A") && !history(fs).load().unwrap().is_rolled_back(RELEASE) {
                return Err("back on A without the rollback recorded".into());
            }
            Ok(())
        },
        &count,
    );

    let total = count.get();
    eprintln!("{total} power cuts checked ({after_install} during the install)");
    assert!(
        after_install >= 50,
        "only {after_install} cuts during the install"
    );
    total
}

#[test]
fn no_power_cut_in_the_upgrade_flow_leaves_a_uboot_machine_without_a_good_bootable_slot() {
    let total = scenario(uboot);
    assert!(total >= 200, "only {total} power cuts checked");
}

#[test]
fn no_power_cut_in_the_upgrade_flow_leaves_a_grub_machine_without_a_good_bootable_slot() {
    let total = scenario(grub);
    assert!(total >= 200, "only {total} power cuts checked");
}
