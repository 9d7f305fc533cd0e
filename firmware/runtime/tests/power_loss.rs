//! The file log under the lossy page-cache model of `skerry-medium`: unflushed
//! writes may be lost or land in any order at sector granularity, and a rename is
//! not durable until its directory is synced.
//!
//! A fixed sequence of writes (puts, an update that spans several sectors, a
//! removal, and compactions) is applied one at a time; before each, power is cut
//! after every operation with every allowed subset of the unflushed changes surviving.
//! After each cut the log must open (never as corrupt) and hold the state before the
//! write or after it, and after it once the write returned. Then the same run with
//! each flush skipped, and with each pair of consecutive writes swapped, must be
//! caught: every fsync the log does is needed, and the check looks where it matters.

mod common;

use std::collections::BTreeMap;

use common::Setting;
use skerry_medium::lossy::{every_power_loss, Faults, LossyFs, Mode};
use skerry_runtime::{Durability, FileLog, PersistedResource, Resource, ResourceKey, Sensitivity};

/// Outcomes checked per cut at most.
const OUTCOMES_PER_CUT: usize = 64;
/// Small, so the scenario compacts.
const COMPACT_ABOVE: u64 = 1024;

#[derive(Debug, Clone)]
enum Step {
    Put(&'static str, u64, usize),
    Remove(&'static str),
}

fn scenario() -> Vec<Step> {
    vec![
        Step::Put("a", 1, 10),
        Step::Put("b", 2, 10),
        Step::Put("a", 3, 1200),
        Step::Remove("b"),
        Step::Put("a", 4, 10),
        Step::Put("c", 5, 10),
        Step::Put("a", 6, 10),
        Step::Put("a", 7, 10),
        Step::Put("c", 8, 600),
    ]
}

type Model = BTreeMap<String, (u64, usize)>;

fn apply(model: &mut Model, step: &Step) {
    match step {
        Step::Put(id, value, note) => {
            model.insert((*id).to_owned(), (*value, *note));
        }
        Step::Remove(id) => {
            model.remove(*id);
        }
    }
}

fn record(id: &str, value: u64, note: usize) -> PersistedResource {
    let spec = Setting {
        value,
        note: "n".repeat(note),
    };
    let mut resource = Resource::new(id, spec.clone());
    resource.metadata.version = skerry_runtime::Version(value);
    PersistedResource {
        metadata: resource.metadata,
        sensitivity: Sensitivity::Public,
        spec: serde_json::to_value(spec).expect("json"),
    }
}

fn open(fs: &LossyFs) -> Result<FileLog<LossyFs>, String> {
    FileLog::open_in(fs.clone(), Durability::Fsync, COMPACT_ABOVE).map_err(|e| e.to_string())
}

fn write(fs: &LossyFs, step: &Step) -> Result<(), String> {
    let mut log = open(fs)?;
    match step {
        Step::Put(id, value, note) => log.put_record(&record(id, *value, *note)),
        Step::Remove(id) => log.remove_record(&ResourceKey {
            namespace: "config".into(),
            type_name: "Settings.test.skerry.dev".into(),
            id: (*id).into(),
        }),
    }
    .map_err(|e| e.to_string())
}

fn loaded(fs: &LossyFs) -> Result<Model, String> {
    let mut log = open(fs).map_err(|e| format!("the log does not open: {e}"))?;
    Ok(log
        .loaded()
        .into_iter()
        .map(|r| {
            let spec: Setting = serde_json::from_value(r.spec).expect("a setting");
            (r.metadata.id.to_string(), (spec.value, spec.note.len()))
        })
        .collect())
}

/// Runs the scenario with `faults`; returns the first violation, or the writes and
/// flushes it made.
fn power_loss_check(faults: Faults) -> Result<(u64, u64), String> {
    let fs = LossyFs::new(Mode::Posix);
    open(&fs).map_err(|e| format!("a fresh log: {e}"))?;
    fs.set_faults(faults);
    let start = fs.counts();
    let mut current = fs;
    let mut old = Model::new();
    for step in scenario() {
        let mut new = old.clone();
        apply(&mut new, &step);
        current = every_power_loss(
            &current,
            |fs| {
                // A cut makes the write fail part-way; that is the point.
                let _ = write(fs, &step);
            },
            |cut, after| {
                let found = loaded(after)?;
                if found == new || (found == old && !cut.completed()) {
                    Ok(())
                } else {
                    Err(format!(
                        "{step:?} over {old:?} loaded {found:?}{}",
                        if cut.completed() {
                            " after the write returned"
                        } else {
                            ""
                        }
                    ))
                }
            },
            OUTCOMES_PER_CUT,
        )?;
        old = new;
    }
    let end = current.counts();
    Ok((end.0 - start.0, end.1 - start.1))
}

#[test]
fn every_cut_leaves_the_state_before_or_after_the_write() {
    let (writes, flushes) =
        power_loss_check(Faults::default()).unwrap_or_else(|e| panic!("without faults: {e}"));
    assert!(writes > 0 && flushes > 0);
}

#[test]
fn the_scenario_compacts() {
    let fs = LossyFs::new(Mode::Posix);
    let mut sizes = Vec::new();
    for step in scenario() {
        write(&fs, &step).expect("write");
        sizes.push(open(&fs).expect("opens").len_bytes());
    }
    assert!(
        sizes.windows(2).any(|w| w[1] < w[0]),
        "the log shrank at least once: {sizes:?}"
    );
}

#[test]
fn every_skipped_flush_and_every_swapped_write_is_caught() {
    let (writes, flushes) =
        power_loss_check(Faults::default()).unwrap_or_else(|e| panic!("without faults: {e}"));
    let mut missed = Vec::new();
    for k in 0..flushes {
        let faults = Faults {
            skip_flush: Some(k),
            ..Faults::default()
        };
        if power_loss_check(faults).is_ok() {
            missed.push(format!("skipping flush {k} of {flushes}"));
        }
    }
    for k in 0..writes.saturating_sub(1) {
        let faults = Faults {
            swap_writes: Some(k),
            ..Faults::default()
        };
        if power_loss_check(faults).is_ok() {
            missed.push(format!("swapping writes {k} and {} of {writes}", k + 1));
        }
    }
    assert!(missed.is_empty(), "not caught: {missed:?}");
}
