//! The ChromeOS firmware's choice of kernel partition, as the simulation plays it.
//!
//! Among the candidate entries, the firmware starts the one with the highest priority
//! that has priority above 0 and is successful or has tries left; equal priorities go
//! to the entry that comes first in the table (the lowest partition number). It then
//! uses up a try of an unsuccessful entry. The simulation looks at the configured slot
//! partitions only (the real firmware looks at every ChromeOS-kernel entry).

use super::attributes::KernelAttributes;

/// The partition the firmware starts, from `(partition number, attributes)` pairs in
/// any order; `None` when nothing is bootable (the real firmware enters recovery).
pub fn pick(candidates: &[(u32, KernelAttributes)]) -> Option<u32> {
    candidates
        .iter()
        .filter(|(_, a)| a.priority > 0 && (a.successful || a.tries > 0))
        .min_by(|(pa, a), (pb, b)| b.priority.cmp(&a.priority).then(pa.cmp(pb)))
        .map(|(partition, _)| *partition)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(priority: u8, tries: u8, successful: bool) -> KernelAttributes {
        KernelAttributes {
            priority,
            tries,
            successful,
        }
    }

    #[test]
    fn highest_bootable_priority_wins_ties_to_lowest_partition() {
        let c = [
            (2, attrs(1, 0, true)),
            (3, attrs(2, 3, false)),
            (4, attrs(2, 0, true)),
        ];
        assert_eq!(pick(&c), Some(3));
        // Out of tries and not successful: skipped.
        let c = [(2, attrs(1, 0, true)), (3, attrs(5, 0, false))];
        assert_eq!(pick(&c), Some(2));
        // Priority 0 is never started.
        assert_eq!(pick(&[(2, attrs(0, 5, true))]), None);
    }
}
