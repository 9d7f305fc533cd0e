use super::*;

#[test]
fn a_missing_device_is_named_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchdog");
    let mut wd = LinuxWatchdog::new(&path);
    let err = wd.arm(Duration::from_secs(10)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeviceMissing);
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("driver loaded"), "{message}");
    assert_eq!(wd.timeout(), None);
}

#[test]
fn a_file_that_is_not_a_watchdog_is_refused_and_magic_closed() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut wd = LinuxWatchdog::new(file.path());
    let err = wd.arm(Duration::from_millis(2500)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(
        matches!(err, LinuxWatchdogError::SetTimeout { seconds: 3, .. }),
        "{err:?}"
    );
    // A device opened but not configured would count with its default timeout; the
    // driver stops it with the magic close instead of leaving it unfed.
    assert_eq!(std::fs::read(file.path()).unwrap(), b"V");
    assert_eq!(wd.timeout(), None);
}

#[test]
fn dev_null_is_not_a_watchdog_either() {
    let mut wd = LinuxWatchdog::new("/dev/null");
    assert_eq!(
        wd.arm(Duration::from_secs(5)).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn feeding_before_arming_is_refused_without_touching_the_device() {
    let mut wd = LinuxWatchdog::new("/nonexistent/watchdog");
    let err = wd.feed().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotArmed);
    assert!(err.to_string().contains("/nonexistent/watchdog"));
    assert!(
        wd.disarm().is_ok(),
        "disarming a never-armed watchdog does nothing"
    );
}

#[test]
fn timeouts_we_never_ask_for_are_refused_before_opening() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut wd = LinuxWatchdog::new(file.path());
    for bad in [
        Duration::ZERO,
        Duration::from_millis(999),
        MAX_TIMEOUT + Duration::from_secs(1),
    ] {
        assert_eq!(
            wd.arm(bad).unwrap_err().kind(),
            ErrorKind::TimeoutOutOfRange,
            "{bad:?}"
        );
    }
    assert_eq!(
        std::fs::read(file.path()).unwrap(),
        b"",
        "the device was never opened"
    );
}

#[test]
fn timeouts_round_up_to_whole_seconds() {
    assert_eq!(whole_seconds(Duration::from_secs(1)), 1);
    assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
    assert_eq!(whole_seconds(Duration::from_millis(59_999)), 60);
}

#[test]
fn os_errors_map_to_kinds() {
    let os = |errno: Errno| io::Error::from_raw_os_error(errno.raw_os_error());
    let set = |errno| LinuxWatchdogError::SetTimeout {
        path: "/dev/watchdog".into(),
        seconds: 9,
        source: os(errno),
    };
    assert_eq!(set(Errno::INVAL).kind(), ErrorKind::TimeoutOutOfRange);
    assert_eq!(set(Errno::OPNOTSUPP).kind(), ErrorKind::Unsupported);
    assert_eq!(set(Errno::IO).kind(), ErrorKind::Device);
    let open = |errno| LinuxWatchdogError::Open {
        path: "/dev/watchdog".into(),
        source: os(errno),
    };
    assert_eq!(open(Errno::NOENT).kind(), ErrorKind::DeviceMissing);
    assert_eq!(open(Errno::NODEV).kind(), ErrorKind::DeviceMissing);
    assert_eq!(open(Errno::BUSY).kind(), ErrorKind::Device);
    assert_eq!(open(Errno::ACCESS).kind(), ErrorKind::Device);
}
