//! The daemon's assembly: open the machine root, find the boot state and this start's
//! `/var` area, open the runtime's state, register every subsystem's controllers, serve
//! the API, and stop in order when asked (a power request, SIGTERM, SIGINT).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use skerry_api::VersionInfo;
use skerry_boot_state::{SlotName, StoreSpec};
use skerry_runtime::{Runtime, RuntimeOptions, State};
use skerry_watchdog::clock::TokioClock;
use skerry_watchdog::gate::Vitals;
use skerryd_core::{
    BoardDefinition, BootView, Context, EventLog, Layout, NewEvent, Ops, Power, PowerOps,
    PowerRequest, RootPower, VarArea,
};
use skerryd_fleet::ship::{Outbox, Shipper, Sinks, Whoami};
use tokio::sync::watch;

use crate::api;
use crate::logging::LogFormat;

/// The API's default address in `--root` mode.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50000";
/// The API's default address on a device (`--device`).
pub const DEVICE_LISTEN: &str = "0.0.0.0:50000";

/// `skerryd --version`: the version and the compiled features (the image builder
/// refuses `--fault` with a skerryd whose list lacks `fault-hooks`).
#[cfg(feature = "fault-hooks")]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " features=fault-hooks");
/// `skerryd --version`: the version and the compiled features (none).
#[cfg(not(feature = "fault-hooks"))]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " features=");

/// `skerryd`'s command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "skerryd", version = VERSION, about = "The Skerry device daemon")]
pub struct Options {
    /// The directory that stands in for the machine (board definition, slots, boot
    /// store, /var, rendered files); see firmware/skerryd/README.md.
    #[arg(long)]
    pub root: PathBuf,
    /// Run on a device (PID 1 starts it so): the root must be `/`, the board comes
    /// from /etc/skerry/board.toml, TLS material and rendered files live in /var/skerry
    /// (skerryd_core::layout), and a `SKERRY-READY` line goes to the console once the
    /// API serves.
    #[arg(long)]
    pub device: bool,
    /// Where the machine API listens (default 127.0.0.1:50000, with --device
    /// 0.0.0.0:50000).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Why the daemon stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// A power request (reboot, shutdown) was carried out.
    Power(&'static str),
    /// SIGTERM or SIGINT.
    Signal,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Power(request) => write!(f, "power request: {request}"),
            Stopped::Signal => f.write_str("signal"),
        }
    }
}

/// The start number, one more than last time (persisted in `var/skerry/starts`).
fn next_start(layout: &Layout) -> anyhow::Result<u32> {
    let path = layout.var().join("starts");
    let last = match skerryd_core::layout::read_small(&path) {
        // A garbage counter is refused, not reset: event ids of earlier starts would
        // be handed out again.
        Ok(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .with_context(|| {
                format!(
                    "{} does not hold a start count (a decimal number); restore it or remove it to count from 1",
                    path.display()
                )
            })?,
        Err(_) if !path.exists() => 0,
        Err(e) => return Err(e).context("reading the start counter"),
    };
    let next = last.saturating_add(1);
    skerry_medium::write_atomic(&path, format!("{next}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(next)
}

/// The boot store with its paths resolved under the root.
fn boot_spec(layout: &Layout, board: &BoardDefinition) -> anyhow::Result<StoreSpec> {
    let spec: StoreSpec = board
        .boot_store
        .parse()
        .with_context(|| format!("the board's boot store {:?}", board.boot_store))?;
    Ok(match spec {
        StoreSpec::Uboot {
            path,
            offset,
            size,
            redundant,
        } => StoreSpec::Uboot {
            path: layout.resolve(&path),
            offset,
            size,
            redundant,
        },
        StoreSpec::Grub { path } => StoreSpec::Grub {
            path: layout.resolve(&path),
        },
        StoreSpec::Gpt { disk, slots } => StoreSpec::Gpt {
            disk: layout.resolve(&disk),
            slots,
        },
        StoreSpec::Tryboot { dir, slots } => StoreSpec::Tryboot {
            dir: layout.resolve(&dir),
            slots,
        },
    })
}

/// Opens the machine root: board, boot state, `/var` area, runtime state.
pub fn open(
    layout: &Layout,
    stop: watch::Sender<bool>,
    stopping: watch::Receiver<bool>,
) -> anyhow::Result<Context> {
    layout
        .create_dirs()
        .with_context(|| format!("creating the directories under {}", layout.root().display()))?;
    let board = BoardDefinition::load(layout)?;
    let start = next_start(layout)?;
    let spec = boot_spec(layout, &board)?;
    let at_start = spec
        .open()
        .and_then(|store| store.load())
        .with_context(|| format!("reading the boot state from {}", board.boot_store))?;
    let booted = skerryd_core::layout::booted_slot(layout)?
        .map(|s| s.parse::<SlotName>())
        .transpose()
        .context("the booted slot on the command line")?;
    if let Some(slot) = &booted {
        board.check_booted(layout, slot.as_str())?;
    }
    let boot = BootView {
        spec,
        booted,
        at_start,
    };
    let area = VarArea::select(
        &layout.var(),
        boot.booted.as_ref().map(SlotName::as_str),
        boot.booted_on_trial(),
    )?;
    let state = State::open_persistent(&area.state)
        .with_context(|| format!("opening the runtime's state in {}", area.state.display()))?;
    let power: Arc<dyn Power> = Arc::new(RootPower::new(layout.power_request(), stop));
    let _ = std::fs::remove_file(layout.power_request());
    let events = EventLog::new(start);
    events.push(
        NewEvent::new(
            "daemon.started",
            format!("skerryd {} started", env!("CARGO_PKG_VERSION")),
        )
        .with("start", start)
        .with(
            "booted_slot",
            boot.booted.as_ref().map_or("unknown", SlotName::as_str),
        )
        .with("trial", boot.booted_on_trial()),
    );
    Ok(Context {
        layout: layout.clone(),
        board,
        boot,
        area,
        state,
        events,
        vitals: Vitals::new(TokioClock),
        power,
        stopping,
        stop_hooks: skerryd_core::StopHooks::default(),
        daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// Registers every subsystem's controllers and returns what the API hands requests to.
/// The config subsystem comes first: it publishes the config in effect that the others
/// reconcile from.
pub fn register(runtime: &mut Runtime, context: &Context) -> anyhow::Result<Ops> {
    let config = skerryd_config::register(runtime, context).context("the config subsystem")?;
    skerryd_network::register(runtime, context).context("the network and time subsystem")?;
    let services =
        skerryd_services::register(runtime, context).context("the services subsystem")?;
    skerryd_watchdog::register(runtime, context).context("the watchdog subsystem")?;
    let upgrade = skerryd_upgrade::register(runtime, context).context("the upgrade subsystem")?;
    skerryd_fleet::register(runtime, context, upgrade.clone()).context("the fleet client")?;
    Ok(Ops {
        config,
        upgrade,
        services,
        power: Arc::new(PowerSwitch {
            power: context.power.clone(),
            events: context.events.clone(),
        }),
    })
}

/// Reboot and Shutdown from the API: the request is recorded, the daemon stops in order
/// (calls in flight, this one included, finish first) and then it happens.
struct PowerSwitch {
    power: Arc<dyn Power>,
    events: EventLog,
}

#[tonic::async_trait]
impl PowerOps for PowerSwitch {
    async fn reboot(&self) -> Result<(), tonic::Status> {
        self.events.push(NewEvent::new(
            "machine.reboot",
            "reboot requested through the API",
        ));
        self.power.request(PowerRequest::Reboot { tryboot: false });
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), tonic::Status> {
        self.events.push(NewEvent::new(
            "machine.shutdown",
            "shutdown requested through the API",
        ));
        self.power.request(PowerRequest::Shutdown);
        Ok(())
    }
}

/// What Version reports: the release the installer recorded for the booted slot.
fn version_info(context: &Context) -> VersionInfo {
    let booted = context.boot.booted.as_ref().map(|s| s.as_str().to_owned());
    let release_version = booted
        .as_deref()
        .and_then(|slot| {
            skerry_installer::state::load_slots(&context.layout.installer())
                .ok()?
                .remove(slot)
        })
        .map(|release| release.version)
        .unwrap_or_default();
    VersionInfo {
        daemon_version: context.daemon_version.clone(),
        release_version,
        board: context.board.name.clone(),
        booted_slot: booted.unwrap_or_default(),
    }
}

async fn signalled() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Takes the machine root for this process: one daemon per root. The lock is the
/// kernel's (`flock`), so it goes with the process however it ends.
pub fn lock_root(layout: &Layout) -> anyhow::Result<std::fs::File> {
    let var = layout.var();
    std::fs::create_dir_all(&var).with_context(|| format!("creating {}", var.display()))?;
    let path = var.join("skerryd.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(anyhow::anyhow!(
            "another skerryd already runs on the machine root {} (it holds {}); stop it first",
            layout.root().display(),
            path.display()
        )),
        Err(e) => Err(anyhow::Error::new(e).context(format!("locking {}", path.display()))),
    }
}

/// The layout `options` name: `--root DIR`, or a device's with `--device --root /`.
pub fn layout_for(options: &Options) -> anyhow::Result<Layout> {
    if !options.device {
        return Ok(Layout::new(&options.root));
    }
    if options.root != std::path::Path::new("/") {
        anyhow::bail!(
            "--device runs on the machine itself: its root is /, not {} (use --root {} without --device for a directory)",
            options.root.display(),
            options.root.display()
        );
    }
    Ok(Layout::device())
}

/// What `SKERRY-READY` reports as the version: the release the installer recorded for
/// the booted slot, else the image's (`/etc/skerry/image.json`), else the daemon's.
fn ready_version(layout: &Layout, info: &VersionInfo) -> String {
    if !info.release_version.is_empty() {
        return info.release_version.clone();
    }
    skerryd_core::layout::read_small(&layout.root().join("etc/skerry/image.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|image| image.get("version")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| info.daemon_version.clone())
}

/// The console line a board waits for (docs/os-image.md).
pub fn ready_line(slot: &str, version: &str, api: SocketAddr) -> String {
    format!("SKERRY-READY slot={slot} version={version} api={api}")
}

/// Runs the daemon until a power request or a signal stops it.
pub async fn run(options: Options, console: Outbox) -> anyhow::Result<Stopped> {
    let layout = layout_for(&options)?;
    let _lock = lock_root(&layout)?;
    let shipper = start_shipping(&layout, console);
    let result = run_locked(&options, &layout, &shipper).await;
    // What the daemon said last reaches the log server before it goes (bounded: a
    // server that is down does not hold up a reboot for long).
    let limit = match &result {
        Ok(_) => Duration::from_secs(5),
        Err(e) => {
            let message = error_chain(e);
            tracing::error!("skerryd: {message}");
            shipper.note("daemon.failed", &format!("skerryd stopped: {message}"));
            Duration::from_secs(10)
        }
    };
    if !shipper.flush(limit).await {
        let why = shipper.last_error();
        eprintln!("skerryd: the log server did not take everything within {limit:?}: {why}");
    }
    result
}

/// The whole error, causes included, on one line.
pub fn error_chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// Ships the console log and the events to the sinks the kernel command line names
/// (`skerry.logs=`, `skerry.events=`), from before the machine is even opened, so a
/// daemon that never serves still tells the server why.
fn start_shipping(layout: &Layout, console: Outbox) -> Shipper {
    let nodename = rustix::system::uname();
    let who = Whoami {
        fleet_dir: layout.var().join("fleet"),
        fallback_id: nodename.nodename().to_string_lossy().into_owned(),
    };
    Shipper::start(Sinks::from_file(&layout.cmdline()), console, who)
}

async fn run_locked(
    options: &Options,
    layout: &Layout,
    shipper: &Shipper,
) -> anyhow::Result<Stopped> {
    let layout = layout.clone();
    let listen: SocketAddr = match options.listen {
        Some(listen) => listen,
        None if options.device => DEVICE_LISTEN.parse().context("the device API address")?,
        None => DEFAULT_LISTEN.parse().context("the API address")?,
    };
    let (stop, stopping) = watch::channel(false);
    let context = open(&layout, stop.clone(), stopping.clone())?;
    shipper.follow(&context.events);
    let tls = api::load_server_tls(&layout.pki())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the machine API to {listen}"))?;
    let address = listener
        .local_addr()
        .context("the API listener's address")?;
    let mut runtime = Runtime::new(context.state.clone(), RuntimeOptions::default());
    let ops = register(&mut runtime, &context)?;
    let graph = runtime.graph();
    let handle = runtime.start();
    let info = version_info(&context);
    let ready = ready_line(
        if info.booted_slot.is_empty() {
            "unknown"
        } else {
            &info.booted_slot
        },
        &ready_version(&layout, &info),
        address,
    );
    let machine = api::Machine::new(
        ops,
        context.state.clone(),
        context.events.clone(),
        graph,
        info,
    );
    let mut api_stopping = stopping.clone();
    let server = tokio::spawn(async move {
        api::serve(listener, &tls, machine, async move {
            let _ = api_stopping.wait_for(|s| *s).await;
        })
        .await
    });
    // Written once the listener is bound and serving: what a harness waits for.
    let address_file = layout.run().join("api-address");
    skerry_medium::write_atomic(&address_file, format!("{address}\n").as_bytes())
        .with_context(|| format!("writing {}", address_file.display()))?;
    tracing::info!(root = %layout.root().display(), api = %address, "skerryd ready");
    if options.device {
        // One write, so the line reaches the console whole.
        eprintln!("{ready}");
        if crate::fault::configured(layout.root(), None) == Some(crate::fault::Fault::HangDaemon) {
            crate::fault::hang_daemon_later(2);
        }
        if crate::fault::ENABLED {
            // The on-demand hang (fault-hooks builds only; see fault.rs).
            if let Err(e) = crate::fault::listen_for_trigger(2).await {
                tracing::error!(error = %e, "fault hooks: the on-demand trigger cannot listen");
            }
        }
    }
    let asked = context.power.clone();
    let mut watching = stopping.clone();
    let stopped = tokio::select! {
        biased;
        _ = watching.wait_for(|s| *s) => Stopped::Power(context.power.requested().map_or("stop", |r| r.as_str())),
        _ = signalled() => Stopped::Signal,
        served = server => match served {
            // The server stops when a power request was made; the branch above may
            // simply not have been polled yet.
            Ok(Ok(())) if asked.requested().is_some() => {
                Stopped::Power(asked.requested().map_or("stop", |r| r.as_str()))
            }
            Ok(Ok(())) => return Err(anyhow::anyhow!("the machine API stopped by itself")),
            Ok(Err(e)) => return Err(anyhow::Error::new(e).context("serving the machine API")),
            Err(e) => return Err(anyhow::Error::new(e).context("the machine API's task")),
        },
    };
    let _ = stop.send(true);
    let controllers = tokio::time::timeout(Duration::from_secs(10), handle.shutdown()).await;
    // The services and the watchdog are stopped in order even when a controller hung.
    context.stop_hooks.run(Duration::from_secs(10)).await;
    controllers.context("the controllers did not stop within 10 s")?;
    Ok(stopped)
}
