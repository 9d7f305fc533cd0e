//! A QMP client (QEMU's JSON machine protocol) over a unix socket: the handshake,
//! commands such as `system_reset`, `system_powerdown` and `quit`, and the events QEMU
//! sends on its own (`RESET`, `SHUTDOWN`, `WATCHDOG`, ...), kept in arrival order until a
//! test waits for them.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::qemu::error::QemuError;

/// The longest QMP message we accept (QEMU's replies here are a few hundred bytes).
pub const MAX_MESSAGE: usize = 1 << 20;
/// How long a command may take to answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// An event QEMU reported.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// `RESET`, `SHUTDOWN`, `POWERDOWN`, `WATCHDOG`, `STOP`, ...
    pub name: String,
    /// Its `data` member (`{"guest": true, "reason": "guest-reset"}` for a RESET).
    pub data: Value,
    /// When QEMU says it happened (its `timestamp`, host wall clock), if it said.
    pub timestamp: Option<SystemTime>,
}

/// One message from QEMU.
#[derive(Debug)]
enum Message {
    Greeting,
    Return(Value),
    Error { class: String, desc: String },
    Event(QmpEvent),
}

fn classify(line: &[u8], during: &str) -> Result<Message, QemuError> {
    let garbage = || QemuError::QmpGarbage {
        during: during.to_owned(),
        line: String::from_utf8_lossy(line).into_owned(),
    };
    let value: Value = serde_json::from_slice(line).map_err(|_| garbage())?;
    if value.get("QMP").is_some() {
        return Ok(Message::Greeting);
    }
    if let Some(ret) = value.get("return") {
        return Ok(Message::Return(ret.clone()));
    }
    if let Some(err) = value.get("error") {
        let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        return Ok(Message::Error {
            class: field("class"),
            desc: field("desc"),
        });
    }
    if let Some(name) = value.get("event").and_then(Value::as_str) {
        return Ok(Message::Event(QmpEvent {
            name: name.to_owned(),
            data: value.get("data").cloned().unwrap_or(Value::Null),
            timestamp: timestamp(&value),
        }));
    }
    Err(garbage())
}

/// An event's `{"timestamp": {"seconds": S, "microseconds": U}}`, if well formed.
fn timestamp(value: &Value) -> Option<SystemTime> {
    let stamp = value.get("timestamp")?;
    let seconds = stamp.get("seconds")?.as_u64()?;
    let micros = stamp.get("microseconds")?.as_u64()?;
    if micros >= 1_000_000 {
        return None;
    }
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds) + Duration::from_micros(micros))
}

/// A QMP session, past the capabilities handshake.
#[derive(Debug)]
pub struct Qmp {
    stream: UnixStream,
    /// Bytes received after the last complete message.
    pending: Vec<u8>,
    events: VecDeque<QmpEvent>,
    /// Every event name seen, for error messages.
    seen: Vec<String>,
}

impl Qmp {
    /// Connects to QEMU's QMP socket at `path`, retrying until `timeout` (QEMU creates
    /// it a moment after it starts), and enters command mode.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp, QemuError> {
        let started = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(source) if started.elapsed() >= timeout => {
                    return Err(QemuError::QmpConnect {
                        path: path.to_owned(),
                        waited: timeout,
                        source,
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        Qmp::handshake(stream)
    }

    pub(crate) fn handshake(stream: UnixStream) -> Result<Qmp, QemuError> {
        let mut qmp = Qmp {
            stream,
            pending: Vec::new(),
            events: VecDeque::new(),
            seen: Vec::new(),
        };
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            match qmp.next_message("the greeting", deadline)? {
                Some(Message::Greeting) => break,
                Some(Message::Event(e)) => qmp.keep(e),
                Some(_) | None => {
                    return Err(QemuError::QmpGarbage {
                        during: "the greeting".into(),
                        line: "(no greeting)".into(),
                    })
                }
            }
        }
        qmp.execute("qmp_capabilities", Value::Null)?;
        Ok(qmp)
    }

    /// Runs `command` with `arguments` (`Value::Null` for none) and returns its result.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, QemuError> {
        let mut request = json!({ "execute": command });
        if !arguments.is_null() {
            request["arguments"] = arguments;
        }
        let during = format!("command {command}");
        let mut line = request.to_string();
        line.push('\n');
        self.stream
            .write_all(line.as_bytes())
            .map_err(|source| QemuError::QmpIo {
                during: during.clone(),
                source,
            })?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            match self.next_message(&during, deadline)? {
                Some(Message::Return(v)) => return Ok(v),
                Some(Message::Error { class, desc }) => {
                    return Err(QemuError::QmpCommand {
                        command: command.to_owned(),
                        class,
                        desc,
                    })
                }
                Some(Message::Event(e)) => self.keep(e),
                Some(Message::Greeting) => {}
                None => return Err(QemuError::QmpClosed { during }),
            }
        }
    }

    /// Resets the machine as the reset button does.
    pub fn system_reset(&mut self) -> Result<(), QemuError> {
        self.execute("system_reset", Value::Null).map(drop)
    }

    /// Presses the power button (ACPI; the guest decides what to do).
    pub fn system_powerdown(&mut self) -> Result<(), QemuError> {
        self.execute("system_powerdown", Value::Null).map(drop)
    }

    /// Ends QEMU at once. QEMU may close the socket before it answers; that counts.
    pub fn quit(&mut self) -> Result<(), QemuError> {
        match self.execute("quit", Value::Null) {
            Ok(_) | Err(QemuError::QmpClosed { .. }) => Ok(()),
            Err(QemuError::QmpIo { source, .. })
                if matches!(
                    source.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Waits up to `timeout` for the next event named `name`, dropping the events before
    /// it; returns it.
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Result<QmpEvent, QemuError> {
        let deadline = Instant::now() + timeout;
        let during = format!("waiting for event {name}");
        loop {
            if let Some(at) = self.events.iter().position(|e| e.name == name) {
                self.events.drain(..at);
                if let Some(event) = self.events.pop_front() {
                    return Ok(event);
                }
            }
            match self.next_message(&during, deadline) {
                Ok(Some(Message::Event(e))) => self.keep(e),
                Ok(Some(_)) => {}
                Ok(None) => return Err(QemuError::QmpClosed { during }),
                Err(QemuError::QmpIo { source, .. })
                    if matches!(source.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Err(QemuError::EventTimeout {
                        event: name.to_owned(),
                        waited: timeout,
                        seen: self.seen.clone(),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the events QEMU has sent, waiting at most `wait` for the first one, so
    /// [`Qmp::take_events`] sees events that came while nobody was asking. A closed
    /// socket (QEMU exited) is not an error: there is nothing more to read.
    pub fn pump(&mut self, wait: Duration) -> Result<(), QemuError> {
        let deadline = Instant::now() + wait.max(Duration::from_millis(1));
        loop {
            match self.next_message("reading events", deadline) {
                Ok(Some(Message::Event(e))) => self.keep(e),
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(QemuError::QmpIo { source, .. })
                    if matches!(
                        source.kind(),
                        ErrorKind::WouldBlock
                            | ErrorKind::TimedOut
                            | ErrorKind::ConnectionReset
                            | ErrorKind::BrokenPipe
                    ) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The events received and not yet waited for, oldest first.
    pub fn take_events(&mut self) -> Vec<QmpEvent> {
        self.events.drain(..).collect()
    }

    fn keep(&mut self, event: QmpEvent) {
        self.seen.push(event.name.clone());
        self.events.push_back(event);
    }

    /// The next message, or `None` when QEMU closed the socket.
    fn next_message(
        &mut self,
        during: &str,
        deadline: Instant,
    ) -> Result<Option<Message>, QemuError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return classify(line, during).map(Some);
            }
            if self.pending.len() > MAX_MESSAGE {
                return Err(QemuError::QmpTooLong {
                    during: during.to_owned(),
                    limit: MAX_MESSAGE,
                });
            }
            let io = |source| QemuError::QmpIo {
                during: during.to_owned(),
                source,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io(std::io::Error::from(ErrorKind::TimedOut)));
            }
            self.stream.set_read_timeout(Some(left)).map_err(io)?;
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    /// A QMP peer that greets, accepts capabilities, then plays `script`: for each
    /// expected command, the lines to send back; then it keeps the connection open until
    /// our side closes it.
    fn fake_qemu(
        script: Vec<(&'static str, Vec<&'static str>)>,
    ) -> (Qmp, std::thread::JoinHandle<()>) {
        fake_qemu_then(script, true)
    }

    fn fake_qemu_then(
        script: Vec<(&'static str, Vec<&'static str>)>,
        hold: bool,
    ) -> (Qmp, std::thread::JoinHandle<()>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let peer = std::thread::spawn(move || {
            let mut out = theirs.try_clone().unwrap();
            let mut lines = std::io::BufReader::new(theirs).lines();
            out.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
                .unwrap();
            let caps = lines.next().unwrap().unwrap();
            assert!(caps.contains("qmp_capabilities"), "{caps}");
            out.write_all(b"{\"return\": {}}\r\n").unwrap();
            for (command, replies) in script {
                let got = lines.next().unwrap().unwrap();
                assert!(got.contains(command), "expected {command}, got {got}");
                for r in replies {
                    out.write_all(r.as_bytes()).unwrap();
                }
            }
            if hold {
                for _ in lines {}
            }
        });
        (Qmp::handshake(ours).unwrap(), peer)
    }

    #[test]
    fn a_command_returns_and_events_on_the_way_are_kept() {
        let (mut qmp, peer) = fake_qemu(vec![(
            "system_reset",
            vec![
                "{\"event\": \"RESET\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-system-reset\"}}\r\n",
                "{\"return\": {}}\r\n",
            ],
        )]);
        qmp.system_reset().unwrap();
        let event = qmp.wait_event("RESET", Duration::from_secs(5)).unwrap();
        assert_eq!(event.data["reason"], "host-qmp-system-reset");
        assert_eq!(event.timestamp, None, "this event carried no timestamp");
        drop(qmp);
        peer.join().unwrap();
    }

    #[test]
    fn a_failed_command_names_its_class() {
        let (mut qmp, peer) = fake_qemu(vec![(
            "nonsense",
            vec!["{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nonsense has not been found\"}}\r\n"],
        )]);
        let err = qmp.execute("nonsense", Value::Null).unwrap_err();
        assert!(err.to_string().contains("CommandNotFound"), "{err}");
        drop(qmp);
        peer.join().unwrap();
    }

    #[test]
    fn waiting_for_an_event_times_out_listing_what_came() {
        let (mut qmp, peer) = fake_qemu(vec![(
            "query-status",
            vec!["{\"event\": \"STOP\"}\r\n{\"return\": {\"status\": \"paused\"}}\r\n"],
        )]);
        let status = qmp.execute("query-status", Value::Null).unwrap();
        assert_eq!(status["status"], "paused");
        let err = qmp
            .wait_event("WATCHDOG", Duration::from_millis(100))
            .unwrap_err();
        assert!(
            matches!(&err, QemuError::EventTimeout { seen, .. } if seen == &["STOP".to_owned()]),
            "{err}"
        );
        drop(qmp);
        peer.join().unwrap();
    }

    #[test]
    fn pumped_events_keep_their_timestamps() {
        let (mut qmp, peer) = fake_qemu_then(
            vec![(
                "query-status",
                vec![
                    "{\"return\": {\"status\": \"running\"}}\r\n",
                    "{\"event\": \"WATCHDOG\", \"data\": {\"action\": \"reset\"}, \"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 250000}}\r\n",
                ],
            )],
            false,
        );
        qmp.execute("query-status", Value::Null).unwrap();
        peer.join().unwrap();
        qmp.pump(Duration::from_secs(5)).unwrap();
        let events = qmp.take_events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].name, "WATCHDOG");
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        assert_eq!(events[0].timestamp, Some(at));
    }

    #[test]
    fn quit_accepts_a_closed_socket() {
        let (mut qmp, peer) = fake_qemu_then(vec![("quit", vec![])], false);
        qmp.quit().unwrap();
        peer.join().unwrap();
    }

    #[test]
    fn garbage_and_endless_lines_are_errors() {
        assert!(matches!(
            classify(b"not json", "test"),
            Err(QemuError::QmpGarbage { .. })
        ));
        assert!(matches!(
            classify(b"{\"neither\": 1}", "test"),
            Err(QemuError::QmpGarbage { .. })
        ));
        let (mut qmp, peer) = fake_qemu_then(vec![], false);
        peer.join().unwrap();
        qmp.pending = vec![b'x'; MAX_MESSAGE + 1];
        let err = qmp
            .next_message("test", Instant::now() + Duration::from_secs(1))
            .unwrap_err();
        assert!(matches!(err, QemuError::QmpTooLong { .. }), "{err}");
    }
}
