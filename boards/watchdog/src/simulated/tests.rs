use std::time::{Duration, Instant};

use super::*;
use crate::{Error, ErrorKind, Watchdog};

const TIMEOUT: Duration = Duration::from_millis(400);

#[test]
fn requests_round_trip_and_bad_datagrams_are_refused_by_name() {
    for request in [Request::Arm(TIMEOUT), Request::Feed, Request::MagicClose] {
        assert_eq!(Request::decode(&request.encode()), Ok(request));
    }
    assert_eq!(
        Request::decode(&[b'f'; MAX_DATAGRAM + 1]),
        Err(RequestError::TooLong {
            len: MAX_DATAGRAM + 1
        })
    );
    for bad in [
        &b"arm"[..],
        b"arm ",
        b"arm -5",
        b"arm 1e3",
        b"feed ",
        b"v",
        b"",
        b"\xff",
    ] {
        assert!(
            matches!(Request::decode(bad), Err(RequestError::Unknown { .. })),
            "{bad:?} was accepted"
        );
    }
    assert_eq!(
        Request::decode(b"arm 99"),
        Err(RequestError::TimeoutOutOfRange { millis: 99 })
    );
    assert_eq!(
        Request::decode(b"arm 99999999999999999999"),
        Err(RequestError::Unknown {
            text: "arm 99999999999999999999".into()
        })
    );
}

#[test]
fn a_missing_socket_is_device_missing_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchdog.sock");
    let mut watchdog = SocketWatchdog::new(&path);
    let error = watchdog.arm(TIMEOUT).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DeviceMissing);
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    assert_eq!(watchdog.feed().unwrap_err().kind(), ErrorKind::NotArmed);
    assert_eq!(
        watchdog.arm(Duration::from_millis(10)).unwrap_err().kind(),
        ErrorKind::TimeoutOutOfRange
    );
}

#[test]
fn the_device_records_arms_feeds_and_an_orderly_close() {
    let dir = tempfile::tempdir().unwrap();
    let device = SimulatedWatchdogDevice::bind(dir.path().join("wd.sock")).unwrap();
    let mut watchdog = SocketWatchdog::new(device.path());
    assert_eq!(watchdog.arm(TIMEOUT).unwrap(), TIMEOUT);
    assert_eq!(watchdog.arm(TIMEOUT).unwrap(), TIMEOUT);
    assert_eq!(
        watchdog.arm(TIMEOUT * 2).unwrap_err().kind(),
        ErrorKind::AlreadyArmed
    );
    for _ in 0..5 {
        std::thread::sleep(TIMEOUT / 4);
        watchdog.feed().unwrap();
    }
    watchdog.disarm().unwrap();
    let record = device
        .wait_until(Duration::from_secs(5), |r| !r.closes.is_empty())
        .expect("the magic close arrived");
    assert_eq!(record.arms.len(), 1);
    assert_eq!(record.arms[0].1, TIMEOUT);
    assert_eq!(record.feed_count, 5);
    assert_eq!(record.timeout, None);
    std::thread::sleep(TIMEOUT * 2);
    assert_eq!(device.fired_at(), None, "fired after an orderly close");
}

#[test]
fn a_dropped_driver_leaves_it_counting_and_it_fires_one_timeout_after_the_last_feed() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fired");
    let device =
        SimulatedWatchdogDevice::bind_with_marker(dir.path().join("wd.sock"), Some(marker.clone()))
            .unwrap();
    let mut watchdog = SocketWatchdog::new(device.path());
    watchdog.arm(TIMEOUT).unwrap();
    watchdog.feed().unwrap();
    drop(watchdog);
    let record = device
        .wait_until(TIMEOUT * 5, |r| !r.fires.is_empty())
        .expect("the device fired");
    let late = record.fires[0].duration_since(record.last_feed.unwrap());
    assert!(
        late >= TIMEOUT && late <= TIMEOUT.mul_f64(1.1),
        "fired {late:?} after the feed"
    );
    assert!(record.closes.is_empty());
    let started = Instant::now();
    while !marker.exists() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(std::fs::read(&marker).unwrap(), b"fired\n");
}

#[test]
fn the_device_refuses_junk_without_touching_the_countdown() {
    let dir = tempfile::tempdir().unwrap();
    let device = SimulatedWatchdogDevice::bind(dir.path().join("wd.sock")).unwrap();
    let socket = std::os::unix::net::UnixDatagram::unbound().unwrap();
    socket.send_to(b"feed", device.path()).unwrap();
    socket.send_to(&[b'x'; 4096], device.path()).unwrap();
    socket.send_to(b"arm 5", device.path()).unwrap();
    let record = device
        .wait_until(Duration::from_secs(5), |r| {
            r.refused == 2 && r.ignored_feeds == 1
        })
        .expect("two refusals and an ignored feed");
    assert!(record.arms.is_empty() && !device.is_armed());
    assert!(record.last_refusal.unwrap().contains("arm 5"));
}
