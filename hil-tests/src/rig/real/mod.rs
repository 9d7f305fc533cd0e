//! A real board as a [`Board`]: its serial console (through the `serialport` crate, or
//! any byte stream) and its power on a relay ([`relay::PowerRelay`] over an
//! `embedded-hal` output pin; `rppal` on a Raspberry Pi with the `rpi` feature).
//!
//! The board runs a Skerry image, so the console lines are the image's
//! (docs/os-image.md): `SKERRY-BOOT slot=A` from the bootloader, `SKERRY-READY slot=A …`
//! once skerryd serves its API. Its API, when given, is reached over the network with
//! the operator's certificates. A real board builds no releases here, so scenarios that
//! publish one are not applicable until a release directory is wired in.
//!
//! # Layout
//! - [`console`]: partial-line matching and prompt answering;
//! - [`relay`]: the power relay.

pub mod console;
pub mod relay;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use embedded_hal::digital::OutputPin;

use crate::rig::{ApiEndpoint, Board, BoardEvent, Capabilities, TimedEvent};
pub use console::Console;
pub use relay::{Polarity, PowerRelay};

/// A real board.
pub struct RealBoard<P: OutputPin> {
    name: String,
    console: Console,
    relay: PowerRelay<P>,
    api: Option<ApiEndpoint>,
    watchdog_timeout: Option<Duration>,
    /// Where the next boot line is looked for.
    boot_cursor: usize,
    powered: bool,
    /// Boots seen since power on (a second one without a cut is a reset).
    boots: u32,
    events: Vec<TimedEvent>,
}

impl<P: OutputPin> std::fmt::Debug for RealBoard<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealBoard")
            .field("name", &self.name)
            .field("console", &self.console)
            .field("powered", &self.powered)
            .finish_non_exhaustive()
    }
}

impl<P: OutputPin> RealBoard<P> {
    /// A board named `name` on `console`, powered through `relay`; `api` when it runs
    /// skerryd reachable from here; `watchdog_timeout` when its watchdog is known.
    pub fn new(
        name: &str,
        console: Console,
        relay: PowerRelay<P>,
        api: Option<ApiEndpoint>,
        watchdog_timeout: Option<Duration>,
    ) -> Self {
        RealBoard {
            name: name.into(),
            console,
            relay,
            api,
            watchdog_timeout,
            boot_cursor: 0,
            powered: false,
            boots: 0,
            events: Vec::new(),
        }
    }

    /// The console (to answer prompts, send lines).
    pub fn console(&mut self) -> &mut Console {
        &mut self.console
    }

    /// The relay (to inspect or take back its pin).
    pub fn relay(&self) -> &PowerRelay<P> {
        &self.relay
    }

    /// Reads what arrived and notes boots: a second boot without a power cut is a reset.
    fn scan(&mut self) -> anyhow::Result<()> {
        self.console.pump(Duration::from_millis(20))?;
        while let Some(at) = self.console.transcript()[self.boot_cursor..].find("SKERRY-BOOT slot=")
        {
            self.boot_cursor += at + 1;
            self.boots += 1;
            if self.boots > 1 {
                self.events.push(TimedEvent {
                    at: Instant::now(),
                    event: BoardEvent::Reset,
                });
            }
        }
        Ok(())
    }
}

impl<P: OutputPin> Board for RealBoard<P> {
    fn name(&self) -> String {
        format!("real:{}", self.name)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            runs_skerryd: self.api.is_some(),
            watchdog_resets: false,
            real_kernel: true,
            power_cut: true,
            host_side_install: false,
            hang_daemon: false,
            faults: &[],
            failing_health_check: false,
        }
    }

    fn power_on(&mut self) -> anyhow::Result<()> {
        if self.powered {
            bail!("{} is already powered", self.name);
        }
        self.relay.power_on()?;
        self.powered = true;
        self.boots = 0;
        Ok(())
    }

    fn power_cut(&mut self) -> anyhow::Result<()> {
        self.relay.power_off()?;
        if self.powered {
            self.events.push(TimedEvent {
                at: Instant::now(),
                event: BoardEvent::PowerCut,
            });
        }
        self.powered = false;
        // Let the board drain before anything powers it again.
        std::thread::sleep(self.relay.off_time);
        let _ = self.console.pump(Duration::ZERO);
        self.boot_cursor = self.console.transcript().len();
        Ok(())
    }

    fn expect_console(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        self.console.expect(needle, timeout)
    }

    fn wait_running(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let line = self.console.expect_line("SKERRY-READY slot=", timeout)?;
        let slot: String = line["SKERRY-READY slot=".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if slot.is_empty() {
            bail!("a READY line without a slot: {line:?}");
        }
        self.scan()?;
        Ok(slot)
    }

    fn api(&self) -> Option<ApiEndpoint> {
        self.api.clone()
    }

    fn take_events(&mut self) -> Vec<BoardEvent> {
        self.take_timed_events()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    fn take_timed_events(&mut self) -> Vec<TimedEvent> {
        std::mem::take(&mut self.events)
    }

    fn transcript(&self) -> String {
        self.console.transcript().to_owned()
    }

    fn poll(&mut self) -> anyhow::Result<()> {
        self.scan()
    }

    fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog_timeout
    }
}

/// How `skerry-scenarios --board real` reaches the board.
#[derive(Debug, Clone, clap::Args)]
pub struct RealArgs {
    /// The board's serial console.
    #[arg(long, default_value = "/dev/ttyUSB0")]
    pub serial: PathBuf,
    /// Its speed.
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// The Raspberry Pi GPIO (BCM number) driving the power relay (`rpi` feature).
    #[arg(long)]
    pub relay_gpio: Option<u8>,
    /// The relay closes on a low pin.
    #[arg(long)]
    pub relay_active_low: bool,
    /// The board's name in tables.
    #[arg(long, default_value = "board")]
    pub name: String,
    /// The device API (`HOST:PORT`), when the board runs skerryd.
    #[arg(long)]
    pub api: Option<std::net::SocketAddr>,
    /// PEM files for the API: the machine CA, an admin client certificate and its key.
    #[arg(long, requires = "api")]
    pub api_ca: Option<PathBuf>,
    #[arg(long, requires = "api")]
    pub api_cert: Option<PathBuf>,
    #[arg(long, requires = "api")]
    pub api_key: Option<PathBuf>,
    /// The name the device certificate is issued for.
    #[arg(long, default_value = "skerry")]
    pub api_name: String,
}

/// Opens the serial port as a console.
pub fn open_serial(path: &std::path::Path, baud: u32) -> anyhow::Result<Console> {
    let port = serialport::new(path.to_string_lossy(), baud)
        .timeout(Duration::from_millis(100))
        .open()
        .with_context(|| format!("opening the serial console {}", path.display()))?;
    let reader = port
        .try_clone()
        .with_context(|| format!("cloning the serial port {}", path.display()))?;
    Console::new(Box::new(reader), Box::new(port))
}

fn endpoint(args: &RealArgs) -> anyhow::Result<Option<ApiEndpoint>> {
    let Some(address) = args.api else {
        return Ok(None);
    };
    let read = |what: &str, path: &Option<PathBuf>| -> anyhow::Result<Vec<u8>> {
        let path = path
            .as_ref()
            .with_context(|| format!("--api needs --api-{what}"))?;
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.len() > 64 << 10 {
            bail!(
                "{} is larger than a PEM file may be (64 KiB)",
                path.display()
            );
        }
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    };
    Ok(Some(ApiEndpoint {
        address,
        ca_pem: read("ca", &args.api_ca)?,
        client_cert_pem: read("cert", &args.api_cert)?,
        client_key_pem: read("key", &args.api_key)?,
        server_name: args.api_name.clone(),
    }))
}

/// The real board `args` describe, its relay on a Raspberry Pi GPIO.
#[cfg(feature = "rpi")]
pub fn open(args: &RealArgs) -> anyhow::Result<Box<dyn Board>> {
    let gpio = args
        .relay_gpio
        .context("--board real needs --relay-gpio N (the BCM pin driving the power relay)")?;
    let pin = rppal::gpio::Gpio::new()
        .context("opening the Raspberry Pi's GPIO")?
        .get(gpio)
        .with_context(|| format!("taking GPIO {gpio}"))?
        .into_output();
    let polarity = if args.relay_active_low {
        Polarity::ActiveLow
    } else {
        Polarity::ActiveHigh
    };
    let relay = PowerRelay::new(pin, polarity, Duration::from_secs(2));
    let console = open_serial(&args.serial, args.baud)?;
    Ok(Box::new(RealBoard::new(
        &args.name,
        console,
        relay,
        endpoint(args)?,
        None,
    )))
}

/// The real board `args` describe: this build has no relay driver.
#[cfg(not(feature = "rpi"))]
pub fn open(args: &RealArgs) -> anyhow::Result<Box<dyn Board>> {
    let _ = endpoint(args)?;
    bail!(
        "this build drives no power relay: rebuild with `--features rpi` on the Raspberry Pi that controls the board (serial {})",
        args.serial.display()
    )
}
