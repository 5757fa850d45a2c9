//! Counter increments summed in the VM and handed to Envoy on a timer tick.
//!
//! Each `increment_metric` host call costs Envoy about a thousand
//! instructions (bench/README.md, issue #19), and the usual request counts
//! twice: the total and its rule's counter. Summing in the VM instead and
//! passing Envoy one `increment_metric(id, sum)` per counter every
//! [`FLUSH_PERIOD_MS`] takes those calls off the request path. Envoy's own
//! stats sinks and a Prometheus scrape run on periods of seconds, so a
//! counter that shows a request up to one period late tells them the same.
//!
//! The adapter ([`crate::wasm`]) sums here only while some root context in
//! the VM has its flush tick running, and flushes when a root context goes
//! away, so no count waits for a tick that will not come.

use rustc_hash::FxHashMap;

/// How often a VM hands its summed counts to Envoy. Also what the e2e suites
/// wait before they read counters (filter/constants.json).
pub const FLUSH_PERIOD_MS: u32 = 100;

/// Counts not yet handed to Envoy, by metric id.
#[derive(Debug, Default)]
pub struct PendingCounts(FxHashMap<u32, u64>);

impl PendingCounts {
    /// Count one more for metric `id`.
    pub fn add(&mut self, id: u32) {
        let sum = self.0.entry(id).or_insert(0);
        *sum = sum.saturating_add(1);
    }

    /// Is there nothing to hand over?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every id counted since the last drain, once, with its sum; empty
    /// afterwards. The map keeps its capacity, so a steady load allocates
    /// nothing here after the first period.
    pub fn drain(&mut self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.0.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_summed_by_id_and_drained_once() {
        let mut pending = PendingCounts::default();
        assert!(pending.is_empty());
        for id in [5, 9, 5, 5, 13] {
            pending.add(id);
        }
        assert!(!pending.is_empty());
        let mut drained: Vec<_> = pending.drain().collect();
        drained.sort_unstable();
        assert_eq!(drained, [(5, 3), (9, 1), (13, 1)]);
        assert!(pending.is_empty(), "a drain leaves nothing to hand over twice");
        assert_eq!(pending.drain().count(), 0);
        pending.add(9);
        assert_eq!(pending.drain().collect::<Vec<_>>(), [(9, 1)], "counting starts again from zero");
    }
}
