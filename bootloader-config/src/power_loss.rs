//! The power-loss check every store passes under the lossy page-cache model
//! (`skerry_medium::lossy`), and the meta-test that shows each of its flushes and
//! write orders is needed.
//!
//! [`power_loss_check`] commits a fixed sequence of states (a trial, a try used,
//! marked good, another trial given up, tried again and marked good) and before each commit cuts power after
//! every operation, with every allowed subset of the unflushed sectors and renames
//! surviving (a deterministic sample when there are too many). After each cut `load`
//! must return the old or the new state, and the new one once the commit returned.
//!
//! [`every_fault_is_caught`] then runs the same check once per flush with that flush
//! skipped, and once per pair of consecutive writes with the two swapped, and requires
//! each run to report a violation: a store whose flush can be skipped unnoticed does a
//! flush it does not need, or the check does not look where it matters.

use skerry_medium::lossy::{every_power_loss, Faults, LossyFs};

use crate::state::{BootState, SlotName};
use crate::store::BootStore;

/// How many outcomes per cut are checked at most.
const OUTCOMES_PER_CUT: usize = 128;

/// How the check reaches a store.
pub struct LossyHarness<S, O>
where
    S: BootStore,
    O: Fn(&LossyFs) -> S,
{
    /// Opens the store on the directory (the same configuration every time).
    pub open: O,
    /// The directory a fresh device starts with.
    pub blank: LossyFs,
    /// The slots, in their initial boot order (at least two).
    pub slots: Vec<SlotName>,
}

impl<S: BootStore, O: Fn(&LossyFs) -> S> std::fmt::Debug for LossyHarness<S, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LossyHarness")
            .field("slots", &self.slots)
            .finish()
    }
}

/// The states committed one after the other, starting from a fresh state.
fn scenario(slots: &[SlotName], tries: u8) -> Result<Vec<BootState>, String> {
    let (a, b) = (&slots[0], &slots[1]);
    let mut state = BootState::new(slots, tries).map_err(|e| e.to_string())?;
    let mut states = vec![state.clone()];
    let mut push = |f: &dyn Fn(&mut BootState) -> Result<(), String>| -> Result<(), String> {
        f(&mut state)?;
        states.push(state.clone());
        Ok(())
    };
    let power_on = |s: &mut BootState| s.power_on().map(|_| ()).map_err(|e| e.to_string());
    push(&|s| s.begin_trial(b).map_err(|e| e.to_string()))?;
    push(&power_on)?;
    push(&|s| s.mark_good(b).map_err(|e| e.to_string()))?;
    push(&|s| s.begin_trial(a).map_err(|e| e.to_string()))?;
    push(&|s| s.mark_bad(a).map_err(|e| e.to_string()))?;
    push(&|s| s.begin_trial(a).map_err(|e| e.to_string()))?;
    push(&power_on)?;
    push(&|s| s.mark_good(a).map_err(|e| e.to_string()))?;
    Ok(states)
}

/// Commits the scenario with `faults` injected (counted from the first commit after the
/// initial one); returns the first violation, or the writes and flushes it made.
pub fn power_loss_check<S, O>(h: &LossyHarness<S, O>, faults: Faults) -> Result<(u64, u64), String>
where
    S: BootStore,
    O: Fn(&LossyFs) -> S,
{
    let fs = h.blank.fork();
    let tries = (h.open)(&fs).max_tries().min(3);
    let states = scenario(&h.slots, tries)?;
    (h.open)(&fs)
        .commit(&states[0])
        .map_err(|e| format!("initial commit: {e}"))?;
    fs.set_faults(faults);
    let start = fs.counts();
    let mut current = fs;
    for pair in states.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        current = every_power_loss(
            &current,
            |fs| {
                // A cut makes the commit fail part-way; that is the point.
                let _ = (h.open)(fs).commit(new);
            },
            |cut, after| {
                let loaded = (h.open)(after)
                    .load()
                    .map_err(|e| format!("no state loads: {e}"))?;
                if loaded == *new || (loaded == *old && !cut.completed()) {
                    Ok(())
                } else {
                    Err(format!(
                        "committing {new:?} over {old:?} loaded {loaded:?}{}",
                        if cut.completed() {
                            " after the commit returned"
                        } else {
                            ""
                        }
                    ))
                }
            },
            OUTCOMES_PER_CUT,
        )?;
    }
    let end = current.counts();
    Ok((end.0 - start.0, end.1 - start.1))
}

/// Runs the check without faults (it must pass), then with each flush skipped and each
/// pair of consecutive writes swapped (each must be caught). Panics naming the first
/// problem.
pub fn every_fault_is_caught<S, O>(h: &LossyHarness<S, O>)
where
    S: BootStore,
    O: Fn(&LossyFs) -> S,
{
    let (writes, flushes) =
        power_loss_check(h, Faults::default()).unwrap_or_else(|e| panic!("without faults: {e}"));
    assert!(flushes > 0, "the scenario made no flush at all");
    let mut missed = Vec::new();
    for k in 0..flushes {
        let faults = Faults {
            skip_flush: Some(k),
            ..Faults::default()
        };
        if power_loss_check(h, faults).is_ok() {
            missed.push(format!("skipping flush {k} of {flushes}"));
        }
    }
    for k in 0..writes.saturating_sub(1) {
        let faults = Faults {
            swap_writes: Some(k),
            ..Faults::default()
        };
        if power_loss_check(h, faults).is_ok() {
            missed.push(format!("swapping writes {k} and {} of {writes}", k + 1));
        }
    }
    assert!(
        missed.is_empty(),
        "faults no check caught (a flush or an ordering the store does not need?): {missed:?}"
    );
}
