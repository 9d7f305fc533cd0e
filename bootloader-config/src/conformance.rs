//! The one conformance suite every [`BootStore`](crate::BootStore) passes.
//!
//! It drives a store and the pure [`BootState`] side by side through fixed and
//! pseudo-random sequences of transitions and power-ons, and checks that the store always
//! loads exactly what the model holds and that its own power-on (the simulated bootloader)
//! picks the same slot as the model. Then it cuts power at every byte of every write a
//! commit makes and checks that loading afterwards yields the old or the new state.
//!
//! Backends call [`boot_store_suite`] from their tests with a way to open a store on a
//! [`PowerCutMedium`] and to take the medium back out.

use crate::medium::PowerCutMedium;
use crate::sim::{self, Firmware, Simulated};
use crate::state::{BootState, SlotName};

/// One step of a scenario.
#[derive(Debug, Clone)]
pub enum Step {
    BeginTrial(SlotName),
    MarkGood(SlotName),
    MarkBad(SlotName),
    PowerOn,
}

/// How the suite reaches a backend.
pub struct Harness<S, O, T>
where
    S: Simulated,
    O: Fn(PowerCutMedium) -> S,
    T: Fn(S) -> PowerCutMedium,
{
    /// Opens a store on a medium (the same backend configuration every time).
    pub open: O,
    /// Takes the medium back out of a store.
    pub take: T,
    /// The medium a fresh device starts with (empty, or a partitioned disk for GPT).
    pub blank: PowerCutMedium,
    /// The slots the store was configured with, in their initial boot order.
    pub slots: Vec<SlotName>,
}

impl<S, O, T> std::fmt::Debug for Harness<S, O, T>
where
    S: Simulated,
    O: Fn(PowerCutMedium) -> S,
    T: Fn(S) -> PowerCutMedium,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("slots", &self.slots)
            .finish()
    }
}

/// Runs every check; panics with a description of the first difference.
pub fn boot_store_suite<S, O, T>(h: &Harness<S, O, T>)
where
    S: Simulated,
    O: Fn(PowerCutMedium) -> S,
    T: Fn(S) -> PowerCutMedium,
{
    h.blank_store_has_no_state();
    let a = h.slots[0].clone();
    let b = h.slots[1].clone();
    let scripted = vec![
        Step::BeginTrial(b.clone()),
        Step::PowerOn,
        Step::MarkGood(b.clone()),
        Step::PowerOn,
        Step::BeginTrial(a.clone()),
        Step::PowerOn,
        Step::PowerOn,
        Step::PowerOn,
        Step::PowerOn,
        Step::PowerOn,
        Step::MarkBad(a.clone()),
        Step::BeginTrial(a.clone()),
        Step::MarkBad(b.clone()),
        Step::MarkGood(a.clone()),
        Step::MarkBad(b.clone()),
        Step::PowerOn,
    ];
    h.run_steps(&scripted);
    let mut rng = XorShift(0x5eed_b007_u64);
    for _ in 0..60 {
        let steps: Vec<Step> = (0..16).map(|_| random_step(&mut rng, &h.slots)).collect();
        h.run_steps(&steps);
    }
    h.torn_writes(&scripted);
}

impl<S, O, T> Harness<S, O, T>
where
    S: Simulated,
    O: Fn(PowerCutMedium) -> S,
    T: Fn(S) -> PowerCutMedium,
{
    /// A store on a blank medium with a fresh state committed, and that state.
    fn initialized(&self) -> (S, BootState) {
        let mut store = (self.open)(self.blank.clone());
        let tries = store.max_tries().min(3);
        let model =
            BootState::new(&self.slots, tries).expect("the suite's slots form a valid state");
        store.commit(&model).expect("initial commit");
        (store, model)
    }

    fn blank_store_has_no_state(&self) {
        let store = (self.open)(self.blank.clone());
        assert!(
            store.load().is_err(),
            "a blank medium must not load as a valid boot state"
        );
    }

    /// Applies `steps` to the model and the store, checking they agree after each step, and
    /// reopening the store from its medium now and then as a reboot would.
    fn run_steps(&self, steps: &[Step]) {
        let (mut store, mut model) = self.initialized();
        assert_eq!(store.load().expect("load after init"), model);
        for (i, step) in steps.iter().enumerate() {
            apply(&mut store, &mut model, step)
                .unwrap_or_else(|e| panic!("step {i} {step:?} of {steps:?}: {e}"));
            let loaded = store
                .load()
                .unwrap_or_else(|e| panic!("load after step {i} {step:?}: {e}"));
            assert_eq!(loaded, model, "after step {i} {step:?} of {steps:?}");
            if i % 3 == 2 {
                store = (self.open)((self.take)(store));
            }
        }
    }

    /// Replays `steps`, and before each one that writes, cuts power at every byte of that
    /// write and checks what loads afterwards.
    fn torn_writes(&self, steps: &[Step]) {
        let (store, mut model) = self.initialized();
        let mut medium = (self.take)(store);
        for step in steps {
            // A full, uncut run tells how many bytes this step writes and what it leads to.
            let mut full = (self.open)(medium.clone());
            let mut after = model.clone();
            apply(&mut full, &mut after, step).expect("uncut step");
            let mut full_medium = (self.take)(full);
            let total = full_medium.written();
            full_medium.power_on();
            for cut in 0..total {
                let mut torn = medium.clone();
                torn.power_on();
                torn.cut_after(cut);
                let mut s = (self.open)(torn);
                let mut m = model.clone();
                // The write fails part-way; that is the point.
                let _ = apply(&mut s, &mut m, step);
                let mut torn = (self.take)(s);
                torn.power_on();
                let loaded = (self.open)(torn).load().unwrap_or_else(|e| {
                    panic!("power cut after {cut} of {total} bytes of {step:?} left no loadable state: {e}")
                });
                assert!(
                    loaded == model || loaded == after,
                    "power cut after {cut} of {total} bytes of {step:?}: loaded {loaded:?}, \
                     expected the old {model:?} or the new {after:?}"
                );
                assert!(loaded.next_boot().is_some(), "no bootable slot after a cut");
            }
            medium = full_medium;
            model = after;
        }
    }
}

/// Applies one step to both; refused transitions must be refused by the model and leave
/// the store alone.
fn apply<S: Simulated>(store: &mut S, model: &mut BootState, step: &Step) -> Result<(), String> {
    let mut next = model.clone();
    let outcome = match step {
        Step::BeginTrial(s) => next.begin_trial(s),
        Step::MarkGood(s) => next.mark_good(s),
        Step::MarkBad(s) => next.mark_bad(s),
        Step::PowerOn => {
            // The bootloader's own rules on the stored bytes, after the reboot the
            // device's update engine asks for.
            let expected = next
                .power_on_with(<S::Firmware as Firmware<S>>::GIVE_UP)
                .map_err(|e| e.to_string())?;
            let mut firmware = S::Firmware::default();
            if let Some(arg) = sim::reboot_request(model) {
                firmware.request_reboot(arg);
            }
            let booted = firmware.power_on(store).map_err(|e| e.to_string())?;
            if booted != expected {
                return Err(format!("store booted {booted}, model booted {expected}"));
            }
            *model = next;
            return Ok(());
        }
    };
    if outcome.is_ok() {
        store.commit(&next).map_err(|e| e.to_string())?;
        *model = next;
    }
    Ok(())
}

fn random_step(rng: &mut XorShift, slots: &[SlotName]) -> Step {
    let slot = slots[(rng.next() % slots.len() as u64) as usize].clone();
    match rng.next() % 5 {
        0 => Step::BeginTrial(slot),
        1 => Step::MarkGood(slot),
        2 => Step::MarkBad(slot),
        _ => Step::PowerOn,
    }
}

/// A tiny deterministic generator, so a failure replays exactly.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BootStore, StoreError};

    /// A reference store: the state as JSON, replaced atomically. It shows the suite
    /// itself passes a correct store and catches a wrong one.
    struct JsonStore {
        medium: PowerCutMedium,
        lossy_power_on: bool,
    }

    impl BootStore for JsonStore {
        fn load(&self) -> Result<BootState, StoreError> {
            let bytes = crate::medium::Medium::read_all(&self.medium)?;
            let state: BootState =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: "<memory>".into(),
                    format: "JSON boot state",
                    reason: e.to_string(),
                })?;
            state.check()?;
            Ok(state)
        }
        fn commit(&mut self, state: &BootState) -> Result<(), StoreError> {
            let json = serde_json::to_vec(state).expect("state serializes");
            Ok(crate::medium::Medium::replace_all(&mut self.medium, &json)?)
        }
        fn max_tries(&self) -> u8 {
            3
        }
    }

    /// The reference store's bootloader: the model's power-on on the stored JSON.
    #[derive(Debug, Default)]
    struct JsonFirmware;

    impl Simulated for JsonStore {
        type Firmware = JsonFirmware;
    }

    impl Firmware<JsonStore> for JsonFirmware {
        fn power_on(&mut self, store: &mut JsonStore) -> Result<SlotName, StoreError> {
            let mut state = store.load()?;
            let slot = state.power_on()?;
            if !store.lossy_power_on {
                store.commit(&state)?;
            }
            Ok(slot)
        }
    }

    fn harness(
        lossy: bool,
    ) -> Harness<
        JsonStore,
        impl Fn(PowerCutMedium) -> JsonStore,
        impl Fn(JsonStore) -> PowerCutMedium,
    > {
        Harness {
            open: move |medium| JsonStore {
                medium,
                lossy_power_on: lossy,
            },
            take: |s: JsonStore| s.medium,
            blank: PowerCutMedium::new(Vec::new()),
            slots: vec![SlotName::new("A").unwrap(), SlotName::new("B").unwrap()],
        }
    }

    #[test]
    fn reference_store_passes() {
        boot_store_suite(&harness(false));
    }

    #[test]
    fn a_store_that_forgets_tries_fails() {
        let result = std::panic::catch_unwind(|| boot_store_suite(&harness(true)));
        assert!(result.is_err(), "the suite missed a store that loses tries");
    }
}
