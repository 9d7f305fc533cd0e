//! An SNTP client (RFC 4330, the client mode of RFC 5905): one request, one reply,
//! validated before it is believed — the reply's mode, version, stratum (0 is a
//! kiss-o'-death), leap indicator, and the echo of our transmit timestamp — then the
//! clock offset and round-trip delay from the four timestamps.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::SystemClock;

/// An NTP packet without extension fields or a MAC.
pub const PACKET_LEN: usize = 48;
/// The most bytes of a reply read (extension fields and MACs are ignored).
pub const MAX_REPLY: usize = 1024;
/// The NTP port.
pub const NTP_PORT: u16 = 123;
/// How long one request waits for its reply.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many requests one server gets per poll.
pub const ATTEMPTS: u32 = 2;
/// How long resolving a server's name may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest server name (a DNS name and a port).
pub const MAX_SERVER_NAME: usize = 260;
/// The largest round-trip delay believed; a slower reply's offset is too uncertain.
pub const MAX_DELAY: Duration = Duration::from_secs(4);

/// Seconds from 1900 (NTP era 0) to 1970.
const NTP_TO_UNIX: u64 = 2_208_988_800;
const MODE_CLIENT: u8 = 3;
const MODE_SERVER: u8 = 4;
const VERSION: u8 = 4;
const LEAP_ALARM: u8 = 3;
/// Stratum 16 means the server is not synchronized.
const STRATUM_UNSYNCHRONIZED: u8 = 16;

/// An NTP timestamp: seconds since 1900 in the high 32 bits, the fraction in the low.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The timestamp of `t` (times before 1970 are taken as 1970).
    pub fn from_system(t: SystemTime) -> Self {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = (since.as_secs() + NTP_TO_UNIX) & 0xffff_ffff;
        let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTimestamp((secs << 32) | frac)
    }

    /// Nanoseconds since 1970. Era 1 (from 2036) is assumed when the seconds' high bit is
    /// clear, as RFC 4330 section 3 suggests.
    pub fn unix_nanos(self) -> i128 {
        let secs = self.0 >> 32;
        let frac = self.0 & 0xffff_ffff;
        let era_secs = if secs & 0x8000_0000 == 0 {
            secs + (1 << 32)
        } else {
            secs
        };
        let unix = era_secs as i128 - NTP_TO_UNIX as i128;
        unix * 1_000_000_000 + ((frac as i128 * 1_000_000_000) >> 32)
    }
}

/// Why a server gave no usable time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SntpError {
    /// The server's name is not `HOST`, `HOST:PORT`, `ADDRESS` or `[ADDRESS]:PORT`.
    #[error("`{server}` is not a server name: {why}")]
    BadServer {
        /// The name as configured (cut).
        server: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The name did not resolve.
    #[error("could not resolve {server}: {message}")]
    Resolve {
        /// The server.
        server: String,
        /// Why.
        message: String,
    },
    /// Sending or receiving failed.
    #[error("talking to {server}: {message}")]
    Io {
        /// The server.
        server: String,
        /// Why.
        message: String,
    },
    /// No reply came.
    #[error("{server} did not answer {attempts} requests within {timeout:?} each")]
    Timeout {
        /// The server.
        server: String,
        /// How many requests were sent.
        attempts: u32,
        /// How long each waited.
        timeout: Duration,
    },
    /// The reply is shorter than an NTP packet.
    #[error("the reply is {len} bytes, shorter than an NTP packet ({PACKET_LEN})")]
    Short {
        /// Its length.
        len: usize,
    },
    /// The reply is not in server mode.
    #[error("the reply is in mode {mode}, not server mode (4)")]
    BadMode {
        /// The mode found.
        mode: u8,
    },
    /// The reply's version is not 3 or 4.
    #[error("the reply is NTP version {version}, not 3 or 4")]
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// Stratum 0: the server refuses us (RATE: ask less often; DENY, RSTR: stop).
    #[error("kiss-o'-death from the server: {code}")]
    KissOfDeath {
        /// The four-letter code (non-ASCII bytes replaced).
        code: String,
    },
    /// The server says it is not synchronized (leap indicator 3 or stratum 16 or more).
    #[error("the server is not synchronized (leap indicator {leap}, stratum {stratum})")]
    Unsynchronized {
        /// The leap indicator.
        leap: u8,
        /// The stratum.
        stratum: u8,
    },
    /// The reply does not echo our request's transmit timestamp: a stale, duplicated or
    /// forged packet.
    #[error("the reply's originate timestamp {found:#018x} is not our request's {sent:#018x}")]
    WrongOriginate {
        /// What we sent.
        sent: u64,
        /// What came back.
        found: u64,
    },
    /// The server's receive or transmit timestamp is zero.
    #[error("the reply has no {which} timestamp")]
    MissingTimestamp {
        /// Which one.
        which: &'static str,
    },
    /// The round trip is negative or longer than [`MAX_DELAY`].
    #[error("the round-trip delay {delay_nanos} ns is not believable")]
    BadDelay {
        /// The delay computed.
        delay_nanos: i128,
    },
}

/// The fields of a reply the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Leap indicator (2 bits).
    pub leap: u8,
    /// Version (3 bits).
    pub version: u8,
    /// Mode (3 bits).
    pub mode: u8,
    /// Stratum.
    pub stratum: u8,
    /// Reference id (the kiss code at stratum 0).
    pub reference_id: [u8; 4],
    /// Originate timestamp: our request's transmit time, echoed.
    pub originate: NtpTimestamp,
    /// When the server received the request.
    pub receive: NtpTimestamp,
    /// When the server sent the reply.
    pub transmit: NtpTimestamp,
}

impl Packet {
    /// A client request sent at `transmit`.
    pub fn request(transmit: NtpTimestamp) -> [u8; PACKET_LEN] {
        let mut bytes = [0u8; PACKET_LEN];
        bytes[0] = (VERSION << 3) | MODE_CLIENT;
        bytes[40..48].copy_from_slice(&transmit.0.to_be_bytes());
        bytes
    }

    /// A packet's fields (it is at least [`PACKET_LEN`] bytes; the rest is ignored).
    pub fn parse(bytes: &[u8]) -> Result<Packet, SntpError> {
        if bytes.len() < PACKET_LEN {
            return Err(SntpError::Short { len: bytes.len() });
        }
        let stamp = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            NtpTimestamp(u64::from_be_bytes(word))
        };
        let mut reference_id = [0u8; 4];
        reference_id.copy_from_slice(&bytes[12..16]);
        Ok(Packet {
            leap: bytes[0] >> 6,
            version: (bytes[0] >> 3) & 0x7,
            mode: bytes[0] & 0x7,
            stratum: bytes[1],
            reference_id,
            originate: stamp(24),
            receive: stamp(32),
            transmit: stamp(40),
        })
    }

    /// Writes the packet (for tests and fakes).
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut bytes = [0u8; PACKET_LEN];
        bytes[0] = (self.leap << 6) | ((self.version & 7) << 3) | (self.mode & 7);
        bytes[1] = self.stratum;
        bytes[12..16].copy_from_slice(&self.reference_id);
        bytes[24..32].copy_from_slice(&self.originate.0.to_be_bytes());
        bytes[32..40].copy_from_slice(&self.receive.0.to_be_bytes());
        bytes[40..48].copy_from_slice(&self.transmit.0.to_be_bytes());
        bytes
    }
}

/// One good measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Server clock minus ours, in nanoseconds.
    pub offset_nanos: i64,
    /// The round trip, less the server's own processing time.
    pub delay: Duration,
    /// The server's stratum.
    pub stratum: u8,
}

/// Checks a reply to the request sent at `sent` (T1) that arrived at `arrived` (T4), and
/// measures the offset and delay.
pub fn validate(
    reply: &[u8],
    sent: NtpTimestamp,
    arrived: NtpTimestamp,
) -> Result<Sample, SntpError> {
    let packet = Packet::parse(reply)?;
    if packet.mode != MODE_SERVER {
        return Err(SntpError::BadMode { mode: packet.mode });
    }
    if !(3..=4).contains(&packet.version) {
        return Err(SntpError::BadVersion {
            version: packet.version,
        });
    }
    if packet.stratum == 0 {
        let code = packet
            .reference_id
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
            .collect();
        return Err(SntpError::KissOfDeath { code });
    }
    if packet.leap == LEAP_ALARM || packet.stratum >= STRATUM_UNSYNCHRONIZED {
        return Err(SntpError::Unsynchronized {
            leap: packet.leap,
            stratum: packet.stratum,
        });
    }
    if packet.originate != sent {
        return Err(SntpError::WrongOriginate {
            sent: sent.0,
            found: packet.originate.0,
        });
    }
    if packet.receive.0 == 0 {
        return Err(SntpError::MissingTimestamp { which: "receive" });
    }
    if packet.transmit.0 == 0 {
        return Err(SntpError::MissingTimestamp { which: "transmit" });
    }
    let (t1, t2, t3, t4) = (
        sent.unix_nanos(),
        packet.receive.unix_nanos(),
        packet.transmit.unix_nanos(),
        arrived.unix_nanos(),
    );
    let delay = (t4 - t1) - (t3 - t2);
    if delay < 0 || delay > MAX_DELAY.as_nanos() as i128 {
        return Err(SntpError::BadDelay { delay_nanos: delay });
    }
    let offset = ((t2 - t1) + (t3 - t4)) / 2;
    Ok(Sample {
        offset_nanos: offset.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        delay: Duration::from_nanos(delay as u64),
        stratum: packet.stratum,
    })
}

/// Splits a configured server into a host and a port.
pub fn parse_server(server: &str) -> Result<(String, u16), SntpError> {
    let bad = |why| SntpError::BadServer {
        server: server.chars().take(MAX_SERVER_NAME).collect(),
        why,
    };
    if server.is_empty() {
        return Err(bad("it is empty"));
    }
    if server.len() > MAX_SERVER_NAME {
        return Err(bad("it is too long"));
    }
    if let Ok(addr) = server.parse::<SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    if let Ok(ip) = server.parse::<IpAddr>() {
        return Ok((ip.to_string(), NTP_PORT));
    }
    let (host, port) = match server.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| bad("the port is not a number from 1 to 65535"))?,
        ),
        None => (server, NTP_PORT),
    };
    if port == 0 {
        return Err(bad("the port is not a number from 1 to 65535"));
    }
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(bad("the host is not a DNS name or an address"));
    }
    Ok((host.to_owned(), port))
}

/// Asks `server` for the time: resolves it, sends up to `attempts` requests each waiting
/// `timeout` for a valid reply, reading the local time from `clock`. Replies that fail
/// validation are reported as soon as one arrives, except a wrong originate (a stale or
/// forged packet), after which the client keeps waiting for the real one.
pub async fn query(
    server: &str,
    clock: &dyn SystemClock,
    timeout: Duration,
    attempts: u32,
) -> Result<Sample, SntpError> {
    let (host, port) = parse_server(server)?;
    let io = |e: std::io::Error| SntpError::Io {
        server: server.to_owned(),
        message: e.to_string(),
    };
    let target = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| SntpError::Resolve {
            server: server.to_owned(),
            message: format!("no answer within {RESOLVE_TIMEOUT:?}"),
        })?
        .map_err(|e| SntpError::Resolve {
            server: server.to_owned(),
            message: e.to_string(),
        })?
        .next()
        .ok_or_else(|| SntpError::Resolve {
            server: server.to_owned(),
            message: "no addresses".into(),
        })?;
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(local).await.map_err(io)?;
    socket.connect(target).await.map_err(io)?;
    let mut buffer = vec![0u8; MAX_REPLY];
    for _ in 0..attempts.max(1) {
        let sent = NtpTimestamp::from_system(clock.now());
        socket.send(&Packet::request(sent)).await.map_err(io)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let received = match tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
                Err(_) => break,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(io(e))
                }
                Ok(Err(e)) => return Err(io(e)),
                Ok(Ok(n)) => n,
            };
            let arrived = NtpTimestamp::from_system(clock.now());
            match validate(&buffer[..received], sent, arrived) {
                Err(SntpError::WrongOriginate { .. }) => continue,
                other => return other,
            }
        }
    }
    Err(SntpError::Timeout {
        server: server.to_owned(),
        attempts: attempts.max(1),
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> NtpTimestamp {
        NtpTimestamp::from_system(UNIX_EPOCH + Duration::new(secs, nanos))
    }

    /// A reply to a request sent at 1_800_000_000 s, from a server 1.5 s ahead that took
    /// 10 ms to answer, arriving 100 ms after it was sent (by our clock).
    fn good() -> (Packet, NtpTimestamp, NtpTimestamp) {
        let sent = at(1_800_000_000, 0);
        let arrived = at(1_800_000_000, 100_000_000);
        let packet = Packet {
            leap: 0,
            version: 4,
            mode: MODE_SERVER,
            stratum: 2,
            reference_id: *b"GPS\0",
            originate: sent,
            receive: at(1_800_000_001, 545_000_000),
            transmit: at(1_800_000_001, 555_000_000),
        };
        (packet, sent, arrived)
    }

    #[test]
    fn a_good_reply_gives_offset_and_delay() {
        let (packet, sent, arrived) = good();
        let sample = validate(&packet.encode(), sent, arrived).unwrap();
        // offset = ((1.545 - 0) + (1.555 - 0.1)) / 2 = 1.5 s; delay = 0.1 - 0.01 = 90 ms.
        assert!(
            (sample.offset_nanos - 1_500_000_000).abs() < 10,
            "{sample:?}"
        );
        let delay = sample.delay.as_nanos() as i128;
        assert!((delay - 90_000_000).abs() < 10, "{sample:?}");
        assert_eq!(sample.stratum, 2);
    }

    #[test]
    fn a_client_mode_reply_is_refused() {
        let (mut packet, sent, arrived) = good();
        packet.mode = MODE_CLIENT;
        assert_eq!(
            validate(&packet.encode(), sent, arrived),
            Err(SntpError::BadMode { mode: 3 })
        );
    }

    #[test]
    fn kiss_of_death_is_refused_with_its_code() {
        let (mut packet, sent, arrived) = good();
        packet.stratum = 0;
        packet.reference_id = *b"RATE";
        let err = validate(&packet.encode(), sent, arrived).unwrap_err();
        assert_eq!(
            err,
            SntpError::KissOfDeath {
                code: "RATE".into()
            }
        );
        assert!(err.to_string().contains("RATE"));
    }

    #[test]
    fn a_reply_to_another_request_is_refused() {
        let (mut packet, sent, arrived) = good();
        packet.originate = at(1_799_999_990, 0);
        assert!(matches!(
            validate(&packet.encode(), sent, arrived),
            Err(SntpError::WrongOriginate { .. })
        ));
    }

    #[test]
    fn an_unsynchronized_server_is_refused() {
        let (mut packet, sent, arrived) = good();
        packet.leap = 3;
        assert!(matches!(
            validate(&packet.encode(), sent, arrived),
            Err(SntpError::Unsynchronized { leap: 3, .. })
        ));
        let (mut packet, sent, arrived) = good();
        packet.stratum = 16;
        assert!(matches!(
            validate(&packet.encode(), sent, arrived),
            Err(SntpError::Unsynchronized { stratum: 16, .. })
        ));
    }

    #[test]
    fn short_and_zero_timestamp_replies_are_refused() {
        let (packet, sent, arrived) = good();
        assert_eq!(
            validate(&packet.encode()[..47], sent, arrived),
            Err(SntpError::Short { len: 47 })
        );
        let mut zero = packet;
        zero.transmit = NtpTimestamp(0);
        assert_eq!(
            validate(&zero.encode(), sent, arrived),
            Err(SntpError::MissingTimestamp { which: "transmit" })
        );
        let mut v2 = packet;
        v2.version = 2;
        assert_eq!(
            validate(&v2.encode(), sent, arrived),
            Err(SntpError::BadVersion { version: 2 })
        );
    }

    #[test]
    fn a_negative_delay_is_refused() {
        let (mut packet, sent, _) = good();
        // The server claims it spent longer than the whole round trip.
        packet.transmit = at(1_800_000_002, 0);
        let arrived = at(1_800_000_000, 100_000_000);
        assert!(matches!(
            validate(&packet.encode(), sent, arrived),
            Err(SntpError::BadDelay { .. })
        ));
    }

    #[test]
    fn timestamps_round_trip_and_cross_2036() {
        let t = UNIX_EPOCH + Duration::new(1_800_000_000, 250_000_000);
        let nanos = NtpTimestamp::from_system(t).unix_nanos();
        assert!((nanos - 1_800_000_000_250_000_000).abs() < 2);
        // 2040 is in NTP era 1: the seconds field wrapped.
        let t2040 = UNIX_EPOCH + Duration::from_secs(2_208_988_800);
        assert_eq!(
            NtpTimestamp::from_system(t2040).unix_nanos(),
            2_208_988_800 * 1_000_000_000
        );
    }

    #[test]
    fn server_names_are_parsed_or_refused() {
        assert_eq!(
            parse_server("pool.ntp.org").unwrap(),
            ("pool.ntp.org".into(), 123)
        );
        assert_eq!(
            parse_server("127.0.0.1:4123").unwrap(),
            ("127.0.0.1".into(), 4123)
        );
        assert_eq!(parse_server("[::1]:4123").unwrap(), ("::1".into(), 4123));
        assert_eq!(parse_server("fd00::1").unwrap(), ("fd00::1".into(), 123));
        assert!(parse_server("host:0").is_err());
        assert!(parse_server("bad host").is_err());
        assert!(parse_server("").is_err());
    }
}
