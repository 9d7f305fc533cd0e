//! The runtime's benchmark; prints a Markdown table.
//!
//! (a) 100k updates of one type through a chain of three transform controllers:
//!     end-to-end updates per second, and p50/p99 latency from a write to the first
//!     final output that reflects it (coalesced writes count as delivered when a
//!     later value of the same resource arrives).
//! (b) One kind watched by 10k watchers: latency from a write to each watcher.
//! (c) Heap bytes per stored resource beyond its spec, from a counting allocator.
//! (d) Writes per second to a persistent type through the file log.
//! (e) A slow disk: every persistent write waits 50 ms in its backend (an SD card's
//!     fsync), issued from a task on the runtime like a controller's write; meanwhile
//!     readers of another kind, the watchdog's feed (an ephemeral write every 10 ms)
//!     and, for contrast, a reader of the kind being written run on the same 2 worker
//!     threads. Latency is from when each task was due (its timer tick) to when its
//!     read or write returned.
//!
//! Run: `cargo bench -p skerry-runtime` (the bench profile is optimised).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use skerry_runtime::{
    Backend, BackendError, Durability, FileLog, PersistedResource, Persistence, Resource,
    ResourceKey, ResourceSpec, Runtime, RuntimeOptions, Selector, State, StateOptions, Transform,
    WatchEvent,
};

/// Counts live heap bytes (requested sizes) so (c) can measure what the state holds.
struct CountingAllocator;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

#[allow(
    unsafe_code,
    reason = "a GlobalAlloc impl is unsafe by definition; it only forwards to System and counts"
)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

macro_rules! stage {
    ($name:ident, $type:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        struct $name {
            seq: u64,
        }
        impl ResourceSpec for $name {
            const TYPE: &'static str = $type;
        }
    };
}
stage!(Raw, "Raw.bench.skerry.dev");
stage!(Parsed, "Parsed.bench.skerry.dev");
stage!(Validated, "Validated.bench.skerry.dev");
stage!(Rendered, "Rendered.bench.skerry.dev");

/// A spec for fan-out: when it was written, in nanoseconds since `epoch()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Beacon {
    sent_nanos: u64,
}
impl ResourceSpec for Beacon {
    const TYPE: &'static str = "Beacons.bench.skerry.dev";
}

/// A small spec for the memory measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Small {
    value: u64,
}
impl ResourceSpec for Small {
    const TYPE: &'static str = "Smalls.bench.skerry.dev";
}

/// A persistent spec for the file-log row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    value: u64,
    name: String,
}
impl ResourceSpec for Stored {
    const TYPE: &'static str = "Stored.bench.skerry.dev";
    const PERSISTENCE: Persistence = Persistence::Persistent;
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

struct ChainResult {
    updates: usize,
    /// How fast the writer itself wrote.
    write_rate: f64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    reconciles: u64,
}

/// (a): `updates` writes spread over `ids` resources through Raw → Parsed →
/// Validated → Rendered; as fast as possible (yielding every 100 writes), or paced at
/// `pace` writes per millisecond.
async fn chain(updates: usize, ids: usize, pace: Option<usize>) -> ChainResult {
    let state = State::in_memory();
    let mut runtime = Runtime::new(state.clone(), RuntimeOptions::default());
    let registered = runtime
        .register(Transform::new("parse", |r: &Resource<Raw>| {
            Some(Parsed { seq: r.spec.seq })
        }))
        .and_then(|()| {
            runtime.register(Transform::new("validate", |r: &Resource<Parsed>| {
                Some(Validated { seq: r.spec.seq })
            }))
        })
        .and_then(|()| {
            runtime.register(Transform::new("render", |r: &Resource<Validated>| {
                Some(Rendered { seq: r.spec.seq })
            }))
        });
    if let Err(e) = registered {
        panic!("bench controllers conflict: {e}");
    }
    let handle = runtime.start();
    let names: Vec<String> = (0..ids).map(|i| format!("res-{i:05}")).collect();
    let index: HashMap<String, usize> = names
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, n)| (n, i))
        .collect();

    // The observer records, per id, when each final output arrived.
    let mut watcher = state
        .watch_kind::<Rendered>(Some(state.bookmark()))
        .unwrap_or_else(|e| panic!("watch: {e}"));
    let last_seq_per_id: Vec<u64> = (0..ids)
        .map(|i| ((updates - 1 - i) / ids * ids + i) as u64)
        .collect();
    let observer = tokio::spawn(async move {
        let mut arrivals: Vec<Vec<(u64, Instant)>> = vec![Vec::new(); ids];
        let mut finished = 0;
        while finished < ids {
            let event = match watcher.next().await {
                Ok(event) => event,
                Err(e) => panic!("watch failed: {e}"),
            };
            let now = Instant::now();
            if let WatchEvent::Created { resource, .. } | WatchEvent::Updated { resource, .. } =
                event
            {
                let seq = resource
                    .spec::<Rendered>()
                    .map(|r| r.seq)
                    .unwrap_or_else(|e| panic!("{e}"));
                let slot = index[&*resource.metadata.id];
                arrivals[slot].push((seq, now));
                if seq == last_seq_per_id[slot] {
                    finished += 1;
                }
            }
        }
        arrivals
    });

    let start = Instant::now();
    let writer_state = state.clone();
    let writer = tokio::spawn(async move {
        let mut written: Vec<Instant> = Vec::with_capacity(updates);
        // Batches of `per_ms` writes, one batch per millisecond; a writer behind
        // schedule still yields between batches, as a request handler would.
        let chunk = pace.unwrap_or(100);
        let schedule = tokio::time::Instant::now();
        for seq in 0..updates {
            if seq % chunk == 0 {
                let due = schedule + Duration::from_millis((seq / chunk) as u64);
                if pace.is_some() && tokio::time::Instant::now() < due {
                    tokio::time::sleep_until(due).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
            written.push(Instant::now());
            if let Err(e) =
                writer_state.apply_owned(&names[seq % ids], None, Raw { seq: seq as u64 })
            {
                panic!("write failed: {e}");
            }
        }
        written
    });
    let written = writer.await.unwrap_or_else(|e| panic!("writer: {e}"));
    let write_rate = updates as f64 / (start.elapsed().as_secs_f64());
    let arrivals = observer.await.unwrap_or_else(|e| panic!("observer: {e}"));
    let elapsed = arrivals
        .iter()
        .filter_map(|a| a.last().map(|(_, t)| *t))
        .max()
        .unwrap_or(start)
        - start;

    let mut latencies = Vec::with_capacity(updates);
    for (slot, arrived) in arrivals.iter().enumerate() {
        let mut next = 0;
        for seq in (slot..updates).step_by(ids) {
            while next < arrived.len() && arrived[next].0 < seq as u64 {
                next += 1;
            }
            if let Some((_, at)) = arrived.get(next) {
                latencies.push(at.saturating_duration_since(written[seq]));
            }
        }
    }
    latencies.sort();
    let reconciles = handle.statuses().iter().map(|s| s.reconciles).sum();
    handle.shutdown().await;
    ChainResult {
        updates,
        write_rate,
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        reconciles,
    }
}

struct FanOutResult {
    watchers: usize,
    rounds: usize,
    p50: Duration,
    p99: Duration,
    last_p50: Duration,
}

/// (b): `watchers` tasks watch one kind; each of `rounds` writes is timed to every one.
async fn fan_out(watchers: usize, rounds: usize) -> FanOutResult {
    let state = State::in_memory_with(StateOptions {
        history_per_kind: 64,
        channel_capacity: 64,
    });
    let received = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let mut watcher = state
            .watch_kind::<Beacon>(Some(state.bookmark()))
            .unwrap_or_else(|e| panic!("watch: {e}"));
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(rounds);
            while latencies.len() < rounds {
                match watcher.next().await {
                    Ok(
                        WatchEvent::Created { resource, .. } | WatchEvent::Updated { resource, .. },
                    ) => {
                        let sent = resource
                            .spec::<Beacon>()
                            .map(|b| b.sent_nanos)
                            .unwrap_or_default();
                        let now = epoch().elapsed().as_nanos() as u64;
                        latencies.push(Duration::from_nanos(now.saturating_sub(sent)));
                        received.fetch_add(1, Ordering::Release);
                    }
                    Ok(_) => {}
                    Err(e) => panic!("watch failed: {e}"),
                }
            }
            latencies
        }));
    }
    let mut last_arrivals = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let target = watchers * (round + 1);
        let sent = epoch().elapsed();
        let spec = Beacon {
            sent_nanos: sent.as_nanos() as u64,
        };
        if let Err(e) = state.apply_owned("beacon", None, spec) {
            panic!("write failed: {e}");
        }
        while received.load(Ordering::Acquire) < target {
            tokio::task::yield_now().await;
        }
        last_arrivals.push(epoch().elapsed() - sent);
    }
    let mut latencies = Vec::with_capacity(watchers * rounds);
    for task in tasks {
        latencies.extend(task.await.unwrap_or_else(|e| panic!("watcher: {e}")));
    }
    latencies.sort();
    last_arrivals.sort();
    FanOutResult {
        watchers,
        rounds,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        last_p50: percentile(&last_arrivals, 0.5),
    }
}

/// (c): heap bytes per resource beyond the spec's own size.
fn memory_per_resource(count: usize) -> (f64, usize) {
    let state = State::in_memory();
    // Create the kind first so its fixed cost (channel, maps) is not counted.
    if let Err(e) = state.create(Resource::new("warm-up", Small { value: 0 })) {
        panic!("create: {e}");
    }
    let ids: Vec<String> = (0..count).map(|i| format!("res-{i:06}")).collect();
    let before = LIVE_BYTES.load(Ordering::SeqCst);
    for (i, id) in ids.iter().enumerate() {
        if let Err(e) = state.create(Resource::new(id, Small { value: i as u64 })) {
            panic!("create: {e}");
        }
    }
    let after = LIVE_BYTES.load(Ordering::SeqCst);
    let per = (after - before) as f64 / count as f64;
    let spec = std::mem::size_of::<Small>();
    drop(state);
    (per - spec as f64, ids[0].len())
}

/// (d): updates per second of one persistent resource.
fn persistent_writes(durability: Durability, updates: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let log =
        FileLog::open_with(dir.path(), durability, 1 << 20).unwrap_or_else(|e| panic!("log: {e}"));
    let state = State::with_backend(Box::new(log), StateOptions::default())
        .unwrap_or_else(|e| panic!("state: {e}"));
    let start = Instant::now();
    for value in 0..updates as u64 {
        let spec = Stored {
            value,
            name: "hostname".to_owned(),
        };
        if let Err(e) = state.apply_owned("config", None, spec) {
            panic!("write: {e}");
        }
    }
    updates as f64 / start.elapsed().as_secs_f64()
}

/// A file log on a slow card: each durable write takes `delay` longer.
#[derive(Debug)]
struct SlowDisk {
    log: FileLog,
    delay: Duration,
}

impl Backend for SlowDisk {
    fn load(&mut self) -> Result<Vec<PersistedResource>, BackendError> {
        self.log.load()
    }

    fn put(&mut self, record: &PersistedResource) -> Result<(), BackendError> {
        std::thread::sleep(self.delay);
        self.log.put(record)
    }

    fn remove(&mut self, key: &ResourceKey) -> Result<(), BackendError> {
        std::thread::sleep(self.delay);
        self.log.remove(key)
    }
}

/// The watchdog controller's ephemeral heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct WatchdogFeed {
    seq: u64,
}
impl ResourceSpec for WatchdogFeed {
    const TYPE: &'static str = "WatchdogFeeds.bench.skerry.dev";
}

struct SlowDiskResult {
    writes: u64,
    other_kind: Vec<Duration>,
    feed: Vec<Duration>,
    same_kind: Vec<Duration>,
}

/// Where (e)'s persistent writer runs.
#[derive(Debug, Clone, Copy)]
enum WriterPlacement {
    /// `spawn_blocking`: the fsync waits on a blocking thread.
    BlockingThread,
    /// A task on a worker, as a controller's reconcile writes.
    Worker,
}

/// Runs `op` every `period` until `until`, recording how late each run finished
/// relative to when it was due.
async fn ticking(period: Duration, until: Instant, mut op: impl FnMut()) -> Vec<Duration> {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut late = Vec::new();
    loop {
        let due = interval.tick().await;
        if Instant::now() >= until {
            return late;
        }
        op();
        late.push(Instant::now().saturating_duration_since(due.into_std()));
    }
}

/// (e): see the module docs.
async fn slow_disk(
    delay: Duration,
    run_for: Duration,
    placement: WriterPlacement,
) -> SlowDiskResult {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let log = FileLog::open_with(dir.path(), Durability::ProcessCrash, 1 << 20)
        .unwrap_or_else(|e| panic!("log: {e}"));
    let backend = SlowDisk { log, delay };
    let state = State::with_backend(Box::new(backend), StateOptions::default())
        .unwrap_or_else(|e| panic!("state: {e}"));
    for id in 0..100 {
        let spec = Raw { seq: id };
        if let Err(e) = state.apply_owned(&format!("r{id}"), None, spec) {
            panic!("seed: {e}");
        }
    }
    let until = Instant::now() + run_for;
    let write_all = {
        let state = state.clone();
        move || {
            let mut writes = 0;
            while Instant::now() < until {
                let spec = Stored {
                    value: writes,
                    name: "hostname".to_owned(),
                };
                if let Err(e) = state.apply_owned("config", None, spec) {
                    panic!("write: {e}");
                }
                writes += 1;
            }
            writes
        }
    };
    let writer = match placement {
        WriterPlacement::BlockingThread => tokio::task::spawn_blocking(write_all),
        // A controller writing from its reconcile: the fsync occupies a worker.
        WriterPlacement::Worker => tokio::spawn(async move { write_all() }),
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(ticking(Duration::from_millis(1), until, move || {
                let listed = state.list::<Raw>(&Selector::all()).map_or(0, |l| l.len());
                let one = state.get::<Raw>("r7").map_or(0, |r| r.spec.seq);
                std::hint::black_box((listed, one));
            }))
        })
        .collect();
    let feed = {
        let state = state.clone();
        let mut seq = 0;
        tokio::spawn(ticking(Duration::from_millis(10), until, move || {
            seq += 1;
            if let Err(e) = state.apply_owned("watchdog", Some("watchdog"), WatchdogFeed { seq }) {
                panic!("feed: {e}");
            }
        }))
    };
    let same = {
        let state = state.clone();
        tokio::spawn(ticking(Duration::from_millis(5), until, move || {
            std::hint::black_box(state.get::<Stored>("config").map_or(0, |s| s.spec.value));
        }))
    };
    let mut other_kind = Vec::new();
    for reader in readers {
        other_kind.extend(reader.await.unwrap_or_else(|e| panic!("reader: {e}")));
    }
    let mut feed = feed.await.unwrap_or_else(|e| panic!("feed: {e}"));
    let mut same_kind = same
        .await
        .unwrap_or_else(|e| panic!("same-kind reader: {e}"));
    let writes = writer.await.unwrap_or_else(|e| panic!("writer: {e}"));
    other_kind.sort_unstable();
    feed.sort_unstable();
    same_kind.sort_unstable();
    SlowDiskResult {
        writes,
        other_kind,
        feed,
        same_kind,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The two ways `skerryd` can host the runtime on this 2-core machine.
fn flavors() -> Vec<(&'static str, tokio::runtime::Runtime)> {
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    vec![("current-thread", current), ("2 worker threads", multi)]
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments select parts by name
    // (chain, fan-out, memory, persistent, slow-disk); none selects all.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted =
        |part: &str| filters.is_empty() || filters.iter().any(|f| part.contains(f.as_str()));
    epoch();
    println!(
        "skerry-runtime benchmark: {} CPUs, load average {} at start\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!("| measurement | setting | result |");
    println!("| --- | --- | --- |");
    for (flavor, tokio) in flavors() {
        if wanted("chain") {
            for pace in [None, Some(50)] {
                // The machine is shared: run three times, report the median run.
                let mut runs: Vec<ChainResult> = (0..3)
                    .map(|_| tokio.block_on(chain(100_000, 1000, pace)))
                    .collect();
                runs.sort_by_key(|r| r.elapsed);
                let spread = format!(
                    "{:.0}–{:.0}",
                    runs[2].updates as f64 / runs[2].elapsed.as_secs_f64(),
                    runs[0].updates as f64 / runs[0].elapsed.as_secs_f64()
                );
                let r = runs.swap_remove(1);
                let rate = pace.map_or("writer unpaced".to_owned(), |p| {
                    format!("writer paced at {p}k/s")
                });
                let setting = format!("{flavor}, {} updates over 1000 ids, {rate}", r.updates);
                println!(
                    "| (a) chain of 3 transforms: updates/s end to end | {setting} | {:.0} (3 runs: {spread}; writes issued at {:.0}/s; {} reconciles) |",
                    r.updates as f64 / r.elapsed.as_secs_f64(),
                    r.write_rate,
                    r.reconciles
                );
                println!(
                    "| (a) chain of 3 transforms: write → last output | {setting} | p50 {}, p99 {}, max {} (median run) |",
                    ms(r.p50),
                    ms(r.p99),
                    ms(r.max)
                );
            }
        }
        if wanted("fan-out") {
            let f = tokio.block_on(fan_out(10_000, 20));
            println!(
                "| (b) fan-out: write → each watcher | {flavor}, {} watchers, {} writes | p50 {}, p99 {} |",
                f.watchers,
                f.rounds,
                ms(f.p50),
                ms(f.p99)
            );
            println!(
                "| (b) fan-out: write → last watcher | {flavor}, {} watchers, {} writes | p50 {} |",
                f.watchers,
                f.rounds,
                ms(f.last_p50)
            );
        }
    }
    if wanted("memory") {
        let (overhead, id_len) = memory_per_resource(100_000);
        println!("| (c) memory beyond the spec | 100000 resources, {id_len}-byte ids, no labels | {overhead:.0} bytes/resource |");
    }
    if wanted("persistent") {
        let fsync = persistent_writes(Durability::Fsync, 2_000);
        let buffered = persistent_writes(Durability::ProcessCrash, 20_000);
        println!("| (d) persistent writes (file log) | fsync per write | {fsync:.0} writes/s |");
        println!("| (d) persistent writes (file log) | no fsync (survives process crash) | {buffered:.0} writes/s |");
    }
    if wanted("slow-disk") {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
        let delay = Duration::from_millis(50);
        for (placement, place) in [
            (
                WriterPlacement::BlockingThread,
                "writer on a blocking thread",
            ),
            (WriterPlacement::Worker, "writer on a worker"),
        ] {
            let r = tokio.block_on(slow_disk(delay, Duration::from_secs(4), placement));
            let setting = format!(
                "2 worker threads, {} ms per persistent write, {place}, {} writes in 4 s",
                delay.as_millis(),
                r.writes
            );
            for (what, samples) in [
                (
                    "reader of another kind (get + list of 100), due every 1 ms",
                    &r.other_kind,
                ),
                ("watchdog feed (ephemeral write), due every 10 ms", &r.feed),
                (
                    "reader of the kind being written, due every 5 ms",
                    &r.same_kind,
                ),
            ] {
                println!(
                    "| (e) slow fsync: {what} | {setting} | p50 {}, p99 {}, max {} ({} runs) |",
                    ms(percentile(samples, 0.5)),
                    ms(percentile(samples, 0.99)),
                    ms(samples.last().copied().unwrap_or_default()),
                    samples.len()
                );
            }
        }
    }
    println!("\nload average {} at end", load_average());
}
