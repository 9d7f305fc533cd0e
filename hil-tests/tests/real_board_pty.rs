//! The real-board backend against a pseudo-terminal pair opened here: the harness
//! opens the pty's slave as its serial console through `serialport`, the test plays
//! the board on the master side. The power relay is a recording `OutputPin` fake.

use std::convert::Infallible;
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorKind, ErrorType, OutputPin};
use skerry_hil::rig::real::{open_serial, Polarity, PowerRelay, RealBoard};
use skerry_hil::rig::{Board, BoardEvent};

/// The board's side of the console: writes go to the harness, what the harness sends
/// arrives on a channel.
struct BoardSide {
    master: File,
    from_harness: mpsc::Receiver<Vec<u8>>,
    slave: PathBuf,
}

fn openpty() -> BoardSide {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let fd = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&fd).expect("grantpt");
    unlockpt(&fd).expect("unlockpt");
    let name = ptsname(&fd, Vec::new()).expect("ptsname");
    let slave = PathBuf::from(name.to_str().expect("a UTF-8 pty name"));
    let master = File::from(fd);
    let mut reader = master.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    BoardSide {
        master,
        from_harness: rx,
        slave,
    }
}

impl BoardSide {
    fn say(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Everything the harness sent within `wait`.
    fn heard(&self, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        let mut all = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.from_harness.recv_timeout(left) {
                Ok(bytes) => all.extend(bytes),
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }
}

#[test]
fn a_partial_line_matches_and_each_prompt_gets_one_line() {
    let mut board = openpty();
    let mut console = open_serial(&board.slave, 115_200).unwrap();
    console.answer("Hit any key to stop autoboot:", "").unwrap();
    console.answer("=> ", "run skerry_boot").unwrap();

    // U-Boot's countdown has no newline, and arrives in pieces.
    board.say("U-Boot 2023.01\r\nHit any k");
    std::thread::sleep(Duration::from_millis(150));
    board.say("ey to stop autoboot:  3");
    let seen = console
        .expect("Hit any key to stop autoboot:", Duration::from_secs(10))
        .unwrap();
    assert!(seen.starts_with("U-Boot 2023.01"), "{seen:?}");
    assert_eq!(
        board.heard(Duration::from_millis(500)),
        "\n",
        "one line for the countdown"
    );

    // The prompt (no newline either) gets its line, once.
    board.say("\r\n=> ");
    console.expect("=> ", Duration::from_secs(10)).unwrap();
    assert_eq!(board.heard(Duration::from_millis(500)), "run skerry_boot\n");
    console.pump(Duration::from_millis(200)).unwrap();
    assert_eq!(
        board.heard(Duration::from_millis(300)),
        "",
        "never twice for one prompt"
    );

    // A second prompt, a second line.
    board.say("## Executing script\r\n=> ");
    console
        .expect("## Executing", Duration::from_secs(10))
        .unwrap();
    console.expect("=> ", Duration::from_secs(10)).unwrap();
    assert_eq!(board.heard(Duration::from_millis(500)), "run skerry_boot\n");
    assert_eq!(console.sent(), ["", "run skerry_boot", "run skerry_boot"]);

    // What never comes times out with the needle named.
    let err = console
        .expect("SKERRY-READY", Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(err.contains("SKERRY-READY"), "{err}");
    assert!(console.answer("x", "two\nlines").is_err());
}

/// An `OutputPin` that records every level it was set to.
#[derive(Clone, Default)]
struct RecordingPin {
    levels: Arc<Mutex<Vec<&'static str>>>,
}

impl RecordingPin {
    fn levels(&self) -> Vec<&'static str> {
        self.levels.lock().unwrap().clone()
    }
}

impl ErrorType for RecordingPin {
    type Error = Infallible;
}

impl OutputPin for RecordingPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.levels.lock().unwrap().push("low");
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.levels.lock().unwrap().push("high");
        Ok(())
    }
}

#[test]
fn the_relay_switches_in_order_and_the_console_tells_the_slot_and_resets() {
    let mut side = openpty();
    let pin = RecordingPin::default();
    let relay = PowerRelay::new(pin.clone(), Polarity::ActiveLow, Duration::from_millis(20));
    let console = open_serial(&side.slave, 115_200).unwrap();
    let mut board = RealBoard::new("pty", console, relay, None, None);
    assert_eq!(board.name(), "real:pty");
    assert!(board.capabilities().power_cut);
    assert!(!board.capabilities().runs_skerryd);

    board.power_on().unwrap();
    assert_eq!(pin.levels(), ["low"], "active low: low closes the relay");
    assert!(board.power_on().is_err(), "already on");
    side.say("SKERRY-BOOT slot=B\r\nSKERRY-INIT stage=initramfs slot=B\r\n");
    side.say("SKERRY-READY slot=B version=1.1.0 api=0.0.0.0:50000\r\n");
    assert_eq!(board.wait_running(Duration::from_secs(10)).unwrap(), "B");
    assert!(board.take_events().is_empty());

    // The machine resets by itself: a second boot without a power cut.
    side.say("SKERRY-POWER reboot reason=upgrade\r\nSKERRY-BOOT slot=A\r\n");
    board
        .expect_console("SKERRY-BOOT slot=A", Duration::from_secs(10))
        .unwrap();
    board.poll().unwrap();
    assert_eq!(board.take_events(), [BoardEvent::Reset]);

    board.power_cut().unwrap();
    board.power_on().unwrap();
    assert_eq!(pin.levels(), ["low", "high", "low"]);
    assert_eq!(board.take_events(), [BoardEvent::PowerCut]);
    assert!(board.transcript().contains("SKERRY-POWER reboot"));
}

/// A pin whose driver fails.
struct BrokenPin;

#[derive(Debug)]
struct PinFault;

impl embedded_hal::digital::Error for PinFault {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl ErrorType for BrokenPin {
    type Error = PinFault;
}

impl OutputPin for BrokenPin {
    fn set_low(&mut self) -> Result<(), PinFault> {
        Err(PinFault)
    }

    fn set_high(&mut self) -> Result<(), PinFault> {
        Err(PinFault)
    }
}

#[test]
fn a_failing_relay_pin_is_an_error_naming_the_level() {
    let mut relay = PowerRelay::new(BrokenPin, Polarity::ActiveHigh, Duration::ZERO);
    let err = relay.power_on().unwrap_err().to_string();
    assert!(err.contains("high") && err.contains("Other"), "{err}");
    assert_eq!(relay.is_on(), None);
}
