use std::ffi::OsStr;

use super::*;
use crate::atomic::replace_file;
use crate::medium::{FsMedium, Medium};

fn name(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn outcomes(fs: &LossyFs, file: &str) -> BTreeSet<Option<Vec<u8>>> {
    fs.survivor_choices(1 << 12)
        .iter()
        .map(|s| fs.power_loss(s).read(file))
        .collect()
}

#[test]
fn an_unflushed_write_may_be_lost_a_flushed_one_stays() {
    let mut fs = LossyFs::new(Mode::Posix).with_file("f", &[0; 4]);
    fs.write_at(name("f"), 0, &[1; 4]).unwrap();
    let seen = outcomes(&fs, "f");
    assert!(seen.contains(&Some(vec![0; 4])) && seen.contains(&Some(vec![1; 4])));
    fs.sync_file(name("f")).unwrap();
    assert_eq!(outcomes(&fs, "f"), BTreeSet::from([Some(vec![1; 4])]));
}

#[test]
fn writes_tear_at_sector_granularity_in_any_order() {
    let mut fs = LossyFs::new(Mode::Posix).with_file("f", &[0; 2 * SECTOR]);
    fs.write_at(name("f"), 0, &[1; 2 * SECTOR]).unwrap();
    let seen = outcomes(&fs, "f");
    let mut second_only = vec![0; SECTOR];
    second_only.extend([1; SECTOR]);
    assert!(
        seen.contains(&Some(second_only)),
        "the later sector can land alone"
    );
    assert_eq!(seen.len(), 4);
}

#[test]
fn a_new_file_needs_its_directory_synced() {
    let mut fs = LossyFs::new(Mode::Posix);
    fs.write_at(name("f"), 0, b"data").unwrap();
    fs.sync_file(name("f")).unwrap();
    assert!(outcomes(&fs, "f").contains(&None));
    fs.sync_dir().unwrap();
    assert_eq!(outcomes(&fs, "f"), BTreeSet::from([Some(b"data".to_vec())]));
}

fn replace_check(mode: Mode, faults: Faults) -> Result<LossyFs, String> {
    let before = LossyFs::new(mode).with_file("f", b"old contents");
    before.set_faults(faults);
    every_power_loss(
        &before,
        |fs| {
            let _ = replace_file(&mut fs.clone(), name("f"), b"new contents, longer");
        },
        |cut, fs| match fs.read("f") {
            Some(b) if b == b"new contents, longer" => Ok(()),
            Some(b) if b == b"old contents" && !cut.completed() => Ok(()),
            other => Err(format!("found {other:?}")),
        },
        1 << 10,
    )
}

#[test]
fn the_atomic_write_is_old_or_new_at_every_cut() {
    replace_check(Mode::Posix, Faults::default()).unwrap();
}

#[test]
fn every_flush_of_the_atomic_write_is_needed() {
    // Flush 0 syncs the temp file, flush 1 the directory: skipping either loses data.
    for k in 0..2 {
        let faults = Faults {
            skip_flush: Some(k),
            ..Faults::default()
        };
        assert!(
            replace_check(Mode::Posix, faults).is_err(),
            "skipping flush {k}"
        );
    }
}

#[test]
fn fat_has_no_atomic_rename() {
    let err = replace_check(Mode::Fat, Faults::default()).unwrap_err();
    assert!(err.contains("found"), "{err}");
}

#[test]
fn swapped_writes_cross_the_flush_between_them() {
    let check = |faults: Faults| {
        let before = LossyFs::new(Mode::Posix).with_file("f", &[0; 2 * SECTOR]);
        before.set_faults(faults);
        every_power_loss(
            &before,
            |fs| {
                let mut fs = fs.clone();
                let _ = fs
                    .write_at(name("f"), 0, &[1; SECTOR])
                    .and_then(|()| fs.sync_file(name("f")))
                    .and_then(|()| fs.write_at(name("f"), SECTOR as u64, &[2; SECTOR]));
            },
            |_, fs| match fs.read("f") {
                Some(b) if b[SECTOR] == 2 && b[0] != 1 => Err("the second landed first".into()),
                _ => Ok(()),
            },
            64,
        )
    };
    check(Faults::default()).unwrap();
    let swapped = Faults {
        swap_writes: Some(0),
        ..Faults::default()
    };
    assert!(check(swapped).is_err());
}

#[test]
fn a_medium_flush_makes_writes_and_a_new_file_durable() {
    let fs = LossyFs::new(Mode::Posix);
    let mut medium = FsMedium::in_dir(fs.clone(), "env");
    medium.write_at(0, b"abc").unwrap();
    medium.flush().unwrap();
    assert_eq!(
        outcomes(&fs, "env"),
        BTreeSet::from([Some(b"abc".to_vec())])
    );
    medium.write_at(1, b"X").unwrap();
    medium.flush().unwrap();
    assert_eq!(
        outcomes(&fs, "env"),
        BTreeSet::from([Some(b"aXc".to_vec())])
    );
}

#[test]
fn the_power_stays_off_after_a_cut() {
    let mut fs = LossyFs::new(Mode::Posix).with_file("f", b"x");
    fs.cut_after(1);
    fs.write_at(name("f"), 0, b"y").unwrap();
    assert!(fs.sync_file(name("f")).is_err());
    assert!(fs.read_at(name("f"), 0, 1).is_err());
    assert_eq!(
        fs.power_loss(&Survivors::new()).read("f"),
        Some(b"x".to_vec())
    );
}

#[test]
fn the_sample_keeps_the_extremes_when_there_are_many_changes() {
    let pending: Vec<u64> = (1..=40).collect();
    let sample = drive::choices(&pending, 200);
    assert!(sample.len() >= 200);
    assert!(sample.contains(&Survivors::new()));
    assert!(sample.contains(&pending.iter().copied().collect()));
    assert!(sample.contains(&Survivors::from([40])));
}

#[test]
fn an_append_log_keeps_its_synced_records_and_at_most_a_torn_tail() {
    // The shape of the runtime's file log: records appended, each synced.
    let record = |i: u8| vec![i; 300];
    let before = LossyFs::new(Mode::Posix).with_file("state.log", b"HDR\n");
    let appended = |upto: u8| -> Vec<u8> {
        let mut all = b"HDR\n".to_vec();
        (0..upto).for_each(|i| all.extend(record(i)));
        all
    };
    every_power_loss(
        &before,
        |fs| {
            let mut fs = fs.clone();
            for i in 0..3 {
                let len = match fs.len(name("state.log")) {
                    Ok(len) => len,
                    Err(_) => return,
                };
                if fs.write_at(name("state.log"), len, &record(i)).is_err()
                    || fs.sync_file(name("state.log")).is_err()
                {
                    return;
                }
            }
        },
        |cut, fs| {
            let log = fs.read("state.log").ok_or("the log is gone")?;
            // Each record takes a write and a sync: the synced ones must all be there.
            let synced = (cut.after_ops / 2) as u8;
            let whole = (synced..=3).find(|&n| log.starts_with(&appended(n)));
            match whole {
                Some(_) if log.len() <= appended(3).len() => Ok(()),
                _ => Err(format!("{} bytes, {synced} records synced", log.len())),
            }
        },
        256,
    )
    .unwrap();
}
