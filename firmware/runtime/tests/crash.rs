//! Crash test of the persistent backend: this binary re-executes itself as a child
//! that writes in a loop (with frequent compactions), the parent kills it by PID at a
//! random moment, reopens the store and checks that it holds exactly the state after
//! some prefix of the child's writes, then keeps writing to the recovered log.
//!
//! It has its own `main` (`harness = false`) so the child mode is not a test.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{setting, Setting};
use skerry_runtime::{Durability, FileLog, Resource, Selector, State, StateOptions, Version};

/// Live items kept by the writer; older ones are destroyed.
const WINDOW: u64 = 5;
const ROUNDS: usize = 8;

fn open(dir: &Path) -> (State, skerry_runtime::backend::Recovery) {
    let log = FileLog::open_with(dir, Durability::ProcessCrash, 16 * 1024).expect("log opens");
    let recovery = log.recovery();
    let state = State::with_backend(Box::new(log), StateOptions::default()).expect("state opens");
    (state, recovery)
}

/// Iteration `i` of the writer: bump the counter, add item `i`, drop item `i - WINDOW`.
fn write_iteration(state: &State, i: u64) {
    if i == 1 {
        state
            .create(Resource::new("counter", setting(1)))
            .expect("counter created");
    } else {
        let mut counter = state.get::<Setting>("counter").expect("counter exists");
        counter.spec = setting(i);
        state.update(counter).expect("counter updated");
    }
    state
        .create(Resource::new(format!("item-{i}"), setting(i)))
        .expect("item created");
    if i > WINDOW {
        state
            .destroy::<Setting>(&format!("item-{}", i - WINDOW), None)
            .expect("old item destroyed");
    }
}

fn child(dir: &Path) -> ! {
    let (state, _) = open(dir);
    for i in 1.. {
        write_iteration(&state, i);
        if i % 50 == 0 {
            println!("{i}");
        }
    }
    unreachable!("the writer loops until it is killed")
}

/// Items that exist after the counter reached `n` and `extra` (0..=2) more writes of
/// iteration `n` happened.
fn expected_items(n: u64, extra: u64) -> BTreeSet<u64> {
    let mut items: BTreeSet<u64> = (1..n).filter(|&i| i + WINDOW > n - 1).collect();
    if extra >= 1 {
        items.insert(n);
    }
    if extra >= 2 && n > WINDOW {
        items.remove(&(n - WINDOW));
    }
    items
}

/// Checks the reopened state is the state after a prefix of the writer's writes;
/// returns the counter.
fn check_consistent(state: &State) -> u64 {
    let counter = state.get::<Setting>("counter").expect("counter survives");
    let n = counter.spec.value;
    assert_eq!(
        counter.metadata.version,
        Version(n),
        "one version per counter write"
    );
    let mut items = BTreeSet::new();
    for item in state.list::<Setting>(&Selector::all()).expect("lists") {
        if &*item.metadata.id == "counter" {
            continue;
        }
        let i: u64 = item.metadata.id["item-".len()..].parse().expect("item id");
        assert_eq!(item.spec, setting(i), "item {i} has its own value");
        assert_eq!(item.metadata.version, Version(1));
        items.insert(i);
    }
    let prefix = (0..=2).find(|&extra| expected_items(n, extra) == items);
    assert!(
        prefix.is_some(),
        "counter {n} with items {items:?} is not the state after any prefix of the writes"
    );
    n
}

fn parent() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    println!("crash test: seed {seed}");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let exe = std::env::current_exe().expect("own path");
    let mut truncated_rounds = 0;
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut writer = Command::new(&exe)
            .arg("child")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("child starts");
        let stdout = writer.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .expect("child reports progress")
            .expect("readable");
        assert!(first.parse::<u64>().is_ok(), "child progress line: {first}");
        std::thread::sleep(Duration::from_micros(next() % 40_000));
        assert!(
            writer.try_wait().expect("child status").is_none(),
            "child still writing"
        );
        writer.kill().expect("kill child");
        writer.wait().expect("reap child");

        let (state, recovery) = open(dir.path());
        let n = check_consistent(&state);
        if recovery.truncated_bytes > 0 {
            truncated_rounds += 1;
        }
        println!(
            "round {round}: killed after counter {n}, {} records, {} torn bytes cut, compaction discarded: {}",
            recovery.records, recovery.truncated_bytes, recovery.discarded_compaction
        );
        // The recovered log takes new writes, and they survive another reopen.
        let resumed = n + 1;
        let missing_item = state.get::<Setting>(&format!("item-{n}")).is_err();
        if missing_item {
            state
                .create(Resource::new(format!("item-{n}"), setting(n)))
                .expect("finish iteration");
        }
        if n > WINDOW
            && state
                .get::<Setting>(&format!("item-{}", n - WINDOW))
                .is_ok()
        {
            state
                .destroy::<Setting>(&format!("item-{}", n - WINDOW), None)
                .expect("finish iteration");
        }
        for i in resumed..resumed + 20 {
            write_iteration(&state, i);
        }
        drop(state);
        let (again, _) = open(dir.path());
        assert_eq!(
            check_consistent(&again),
            resumed + 19,
            "writes after recovery persist"
        );
    }
    println!("crash test: {ROUNDS} rounds consistent ({truncated_rounds} with a torn tail)");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        // Test listers (cargo test -- --list, nextest) expect a listing, not a run.
        println!("crash_recovery: test");
        return;
    }
    match args.get(1).map(String::as_str) {
        Some("child") => match args.get(2) {
            Some(dir) => child(Path::new(dir)),
            None => {
                eprintln!("usage: crash child DIR");
                std::process::exit(2);
            }
        },
        _ => parent(),
    }
}
