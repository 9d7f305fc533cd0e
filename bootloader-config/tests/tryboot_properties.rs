//! Property tests of `autoboot.txt` rewriting: whatever other lines a file holds
//! (comments, unknown keys, `[none]` and other filters, CRLF), a commit keeps them in
//! order, loads back exactly, and the firmware keys point where the model says. And of
//! the simulated firmware's one-shot flag: set only by `reboot "0 tryboot"`, lost on a
//! power cut, used up by the next boot, never read from the file.

use proptest::prelude::*;
use skerry_boot_state::sim::Device;
use skerry_boot_state::tryboot::autoboot::Autoboot;
use skerry_boot_state::tryboot::{TrybootStore, TRYBOOT_REBOOT_ARG};
use skerry_boot_state::{BootState, BootStore, PowerCutMedium, SlotName, SlotStatus};

/// A line that is not ours: it must survive every rewrite.
fn foreign_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "# [a-z ]{0,12}".prop_map(|s| s),
        Just(String::new()),
        "[a-z_]{1,8}=[a-z0-9 ]{0,6}".prop_filter("not ours", |l| {
            !l.starts_with("boot_partition=") && !l.starts_with("tryboot_a_b=")
        }),
        prop_oneof![
            Just("[all]"),
            Just("[tryboot]"),
            Just("[none]"),
            Just("[pi4]"),
            Just("[gpio4=1]")
        ]
        .prop_map(String::from),
    ]
}

fn name(s: &str) -> SlotName {
    SlotName::new(s).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn tryboot_rewrite_keeps_foreign_lines_and_means_the_state(
        lines in prop::collection::vec(foreign_line(), 0..12),
        crlf in any::<bool>(),
        trial in any::<bool>(),
        b_first in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let text: String = lines.iter().map(|l| format!("{l}{eol}")).collect();
        let slots = vec![(name("A"), 2), (name("B"), 3)];
        let mut store = TrybootStore::new(PowerCutMedium::new(text.into_bytes()), slots);
        let mut state = BootState::new(&[name("A"), name("B")], 1).unwrap();
        if b_first {
            state.begin_trial(&name("B")).unwrap();
            state.power_on().unwrap();
            state.mark_good(&name("B")).unwrap();
        }
        if trial {
            let other = if b_first { name("A") } else { name("B") };
            state.begin_trial(&other).unwrap();
        }
        store.commit(&state).unwrap();
        prop_assert_eq!(store.load().unwrap(), state.clone());

        let out = String::from_utf8(store.medium().bytes().to_vec()).unwrap();
        // An empty file has no line ending to keep; we then write LF.
        if crlf && !lines.is_empty() {
            prop_assert!(!out.replace("\r\n", "").contains('\n'));
        } else if !crlf {
            prop_assert!(!out.contains('\r'));
        }
        // Every foreign line is still there, in the same order.
        let written: Vec<&str> = out.lines().collect();
        let mut at = 0;
        for line in &lines {
            let found = written[at..].iter().position(|w| w == line);
            prop_assert!(found.is_some(), "lost {:?} in {:?}", line, out);
            at += found.unwrap() + 1;
        }
        let choice = Autoboot::parse(out.as_bytes()).unwrap().boot_choice().unwrap();
        let good = if b_first { 3 } else { 2 };
        prop_assert_eq!(choice.normal, Some(good));
        prop_assert!(choice.tryboot_a_b);
        let expected_try = match state.trial() {
            Some(t) if t.as_str() == "A" => 2,
            Some(_) => 3,
            None => good,
        };
        prop_assert_eq!(choice.tryboot, Some(expected_try));
        let one_try_ahead = state
            .trial()
            .is_none_or(|t| state.status(t).unwrap() == SlotStatus::Trial { tries_left: 1 });
        prop_assert!(one_try_ahead, "a fresh trial has its one tryboot boot ahead");
    }
}

/// What happens to the device between boots.
#[derive(Debug, Clone)]
enum Event {
    /// The update engine begins a trial of the slot that is not first good.
    BeginTrial,
    /// The running slot passes its health checks and, if on trial, is marked good.
    MarkRunningGood,
    /// `reboot "0 tryboot"`.
    TrybootReboot,
    /// A plain `reboot`.
    PlainReboot,
    /// The power is cut (or a watchdog resets the board).
    PowerCut,
    /// The firmware boots.
    PowerOn,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::BeginTrial),
        Just(Event::MarkRunningGood),
        Just(Event::TrybootReboot),
        Just(Event::PlainReboot),
        Just(Event::PowerCut),
        Just(Event::PowerOn),
        Just(Event::PowerOn),
    ]
}

/// The slot on trial with its one boot ahead, in `state`.
fn trial_ahead(state: &BootState) -> Option<SlotName> {
    state
        .slots()
        .iter()
        .find(|s| s.status == SlotStatus::Trial { tries_left: 1 })
        .map(|s| s.name.clone())
}

fn first_good(state: &BootState) -> SlotName {
    state
        .slots()
        .iter()
        .find(|s| s.status == SlotStatus::Good)
        .unwrap()
        .name
        .clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The reference here keeps the flag beside the model: a boot with the flag set and a
    /// trial ahead starts the trial (the model's power-on); any other boot starts the
    /// first good slot, and gives up a trial whose boot was used.
    #[test]
    fn tryboot_flag_comes_from_the_reboot_request(events in prop::collection::vec(event(), 0..40)) {
        let slots = vec![(name("A"), 2), (name("B"), 3)];
        let mut store = TrybootStore::new(PowerCutMedium::new(Vec::new()), slots);
        let mut model = BootState::new(&[name("A"), name("B")], 1).unwrap();
        store.commit(&model).unwrap();
        let mut device = Device::new(store);
        let mut flag = false;
        let mut running: Option<SlotName> = None;
        for e in &events {
            match e {
                Event::BeginTrial => {
                    let target = if first_good(&model) == name("A") { name("B") } else { name("A") };
                    if running.as_ref() != Some(&target) && model.begin_trial(&target).is_ok() {
                        device.store_mut().commit(&model).unwrap();
                    }
                }
                Event::MarkRunningGood => {
                    if let Some(r) = &running {
                        if matches!(model.status(r).unwrap(), SlotStatus::Trial { .. }) {
                            model.mark_good(r).unwrap();
                            device.store_mut().commit(&model).unwrap();
                        }
                    }
                }
                Event::TrybootReboot => {
                    device.request_reboot(TRYBOOT_REBOOT_ARG);
                    flag = true;
                    running = None;
                }
                Event::PlainReboot => {
                    device.request_reboot("");
                    flag = false;
                    running = None;
                }
                Event::PowerCut => {
                    device.power_cut();
                    flag = false;
                    running = None;
                }
                Event::PowerOn => {
                    let expected = if flag && trial_ahead(&model).is_some() {
                        model.power_on().unwrap()
                    } else if trial_ahead(&model).is_some() {
                        first_good(&model)
                    } else {
                        model.power_on().unwrap()
                    };
                    flag = false;
                    let booted = device.power_on().unwrap();
                    prop_assert_eq!(&booted, &expected, "after {:?}", events);
                    running = Some(booted);
                }
            }
            prop_assert_eq!(device.store().load().unwrap(), model.clone(), "after {:?} of {:?}", e, events);
        }
    }
}

#[test]
fn a_stray_tryboot_reboot_never_starts_a_spent_trial_again() {
    let slots = vec![(name("A"), 2), (name("B"), 3)];
    let mut store = TrybootStore::new(PowerCutMedium::new(Vec::new()), slots);
    let mut state = BootState::new(&[name("A"), name("B")], 1).unwrap();
    state.begin_trial(&name("B")).unwrap();
    store.commit(&state).unwrap();
    let mut device = Device::new(store);
    device.request_reboot(TRYBOOT_REBOOT_ARG);
    assert_eq!(device.power_on().unwrap(), name("B"));
    // B hangs before it is marked good; something asks for tryboot again.
    device.request_reboot(TRYBOOT_REBOOT_ARG);
    assert_eq!(device.power_on().unwrap(), name("A"));
    assert_eq!(
        device.store().load().unwrap().status(&name("B")).unwrap(),
        SlotStatus::Bad
    );
}

#[test]
fn a_power_cut_before_the_tryboot_reboot_keeps_the_trial_and_writes_nothing() {
    let slots = vec![(name("A"), 2), (name("B"), 3)];
    let mut store = TrybootStore::new(PowerCutMedium::new(Vec::new()), slots);
    let mut state = BootState::new(&[name("A"), name("B")], 1).unwrap();
    state.begin_trial(&name("B")).unwrap();
    store.commit(&state).unwrap();
    let mut device = Device::new(store);
    let before = device.store().medium().bytes().to_vec();
    // The engine asked for tryboot, but the power went first.
    device.request_reboot(TRYBOOT_REBOOT_ARG);
    device.power_cut();
    assert_eq!(device.power_on().unwrap(), name("A"));
    assert_eq!(device.store().medium().bytes(), &before[..]);
    // The engine reboots as it meant to: now B gets its boot.
    device.request_reboot(TRYBOOT_REBOOT_ARG);
    assert_eq!(device.power_on().unwrap(), name("B"));
}
