//! Many distinct boot states for checks of a generated boot script against the model.

use skerry_boot_state::{BootState, SlotName};

/// Up to `count` distinct states reached from a fresh state by pseudo-random transitions
/// (an xorshift sequence from `seed`), so every status appears: trials at every count,
/// trials with none left, bad slots in front.
pub fn reachable_states(slots: &[SlotName], tries: u8, count: usize, seed: u64) -> Vec<BootState> {
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut state = BootState::new(slots, tries).unwrap();
    let mut seen = vec![state.clone()];
    for _ in 0..count * 20 {
        let slot = &slots[(next() % slots.len() as u64) as usize];
        let _ = match next() % 6 {
            0 => state.begin_trial(slot),
            1 => state.mark_good(slot),
            2 => state.mark_bad(slot),
            _ => state.power_on().map(|_| ()),
        };
        if !seen.contains(&state) {
            seen.push(state.clone());
        }
        if seen.len() == count {
            break;
        }
    }
    seen
}
