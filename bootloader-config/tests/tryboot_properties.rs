//! Property tests of `autoboot.txt` rewriting: whatever other lines a file holds
//! (comments, unknown keys, `[none]` and other filters, CRLF), a commit keeps them in
//! order, loads back exactly, and the firmware keys point where the model says.

use proptest::prelude::*;
use skerry_boot_state::tryboot::autoboot::Autoboot;
use skerry_boot_state::tryboot::TrybootStore;
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
