//! Drivers for power-loss tests: which subsets of pending changes to try, and a loop
//! that cuts an action at every operation and checks every outcome.

use std::collections::BTreeSet;

use super::{LossyFs, Survivors};

/// Where power was cut, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutPoint {
    /// Operations of the action that ran before the cut.
    pub after_ops: u64,
    /// Operations the whole action takes.
    pub of_ops: u64,
    /// The pending changes that survived.
    pub survivors: Survivors,
}

impl CutPoint {
    /// Whether the action had finished (every operation ran) before the cut.
    pub fn completed(&self) -> bool {
        self.after_ops == self.of_ops
    }
}

impl std::fmt::Display for CutPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "power cut after {} of {} operations, surviving changes {:?}",
            self.after_ops, self.of_ops, self.survivors
        )
    }
}

/// Runs `act` on a fork of `before` to count its operations, then again on a fresh fork
/// cut after each number of operations from 0 to all of them, and calls `check` on
/// every outcome [`LossyFs::survivor_choices`] allows (at most `limit` per cut). Returns
/// the uncut run's filesystem, or the first violation `check` reports.
pub fn every_power_loss(
    before: &LossyFs,
    act: impl Fn(&LossyFs),
    mut check: impl FnMut(&CutPoint, &LossyFs) -> Result<(), String>,
    limit: usize,
) -> Result<LossyFs, String> {
    let full = before.fork();
    let start = full.ops();
    act(&full);
    let total = full.ops() - start;
    for cut in 0..=total {
        let torn = before.fork();
        torn.cut_after(cut);
        act(&torn);
        for survivors in torn.survivor_choices(limit) {
            let point = CutPoint {
                after_ops: cut,
                of_ops: total,
                survivors: survivors.clone(),
            };
            check(&point, &torn.power_loss(&survivors)).map_err(|e| format!("{point}: {e}"))?;
        }
    }
    Ok(full)
}

/// Every subset of `pending` when that is at most `limit`, else a deterministic sample.
pub(super) fn choices(pending: &[u64], limit: usize) -> Vec<Survivors> {
    let n = pending.len();
    let subset = |mask: &dyn Fn(usize) -> bool| -> Survivors {
        pending
            .iter()
            .enumerate()
            .filter(|(i, _)| mask(*i))
            .map(|(_, s)| *s)
            .collect()
    };
    if n < usize::BITS as usize && (1usize << n) <= limit.max(1) {
        return (0..1usize << n)
            .map(|bits| subset(&|i| bits >> i & 1 == 1))
            .collect();
    }
    let mut out: BTreeSet<Survivors> = BTreeSet::new();
    out.insert(subset(&|_| false));
    out.insert(subset(&|_| true));
    for k in 0..n {
        out.insert(subset(&|i| i == k));
        out.insert(subset(&|i| i != k));
        out.insert(subset(&|i| i < k));
        out.insert(subset(&|i| i >= k));
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ n as u64;
    while out.len() < limit {
        let bits: Vec<bool> = (0..n)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng & 1 == 1
            })
            .collect();
        out.insert(subset(&|i| bits[i]));
    }
    out.into_iter().collect()
}
