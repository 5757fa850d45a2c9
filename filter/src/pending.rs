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
//! Counts are summed only while some root context in the VM has its flush
//! tick running; otherwise [`PendingCounts::add`] says to hand the count
//! over at once, since no tick would. The adapter ([`crate::wasm`]) also
//! flushes when a root context goes away and at the end of `on_configure`
//! (a VM whose configuration is refused is discarded without another
//! callback). What it cannot flush is a VM that fails (a trap): Envoy calls
//! nothing in it again, so up to one period of counts is lost with it.
//! Every root context ticks, idle or not: one call into the VM per period,
//! which hands nothing over when nothing was counted.

use rustc_hash::FxHashMap;

/// How often a VM hands its summed counts to Envoy. Also what the e2e suites
/// wait before they read counters (filter/constants.json).
pub const FLUSH_PERIOD_MS: u32 = 100;

/// One VM's counts not yet handed to Envoy, by metric id, and how many of
/// its root contexts have a flush tick running.
#[derive(Debug, Default)]
pub struct PendingCounts {
    sums: FxHashMap<u32, u64>,
    ticking: u32,
}

impl PendingCounts {
    /// Count one for metric `id`. `true` when it is summed for the next
    /// flush; `false` when no tick is running, and the caller must hand it
    /// to the host itself.
    pub fn add(&mut self, id: u32) -> bool {
        if self.ticking == 0 {
            return false;
        }
        let sum = self.sums.entry(id).or_insert(0);
        *sum = sum.saturating_add(1);
        true
    }

    /// A root context's flush tick has started.
    pub fn tick_started(&mut self) {
        self.ticking = self.ticking.saturating_add(1);
    }

    /// A root context whose tick was running is gone. What is summed stays
    /// until the next [`drain`](Self::drain), which the caller makes now.
    pub fn tick_stopped(&mut self) {
        self.ticking = self.ticking.saturating_sub(1);
    }

    /// Is there nothing to hand over?
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }

    /// Every id counted since the last drain, once, with its sum; empty
    /// afterwards. The map keeps its capacity, so a steady load allocates
    /// nothing here after the first period.
    pub fn drain(&mut self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.sums.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(pending: &mut PendingCounts) -> Vec<(u32, u64)> {
        let mut all: Vec<_> = pending.drain().collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn without_a_tick_every_count_goes_at_once() {
        let mut pending = PendingCounts::default();
        assert!(!pending.add(5), "nothing would flush it");
        assert!(pending.is_empty());
    }

    #[test]
    fn while_a_tick_runs_counts_are_summed_by_id_and_drained_once() {
        let mut pending = PendingCounts::default();
        pending.tick_started();
        for id in [5, 9, 5, 5, 13] {
            assert!(pending.add(id));
        }
        assert!(!pending.is_empty());
        assert_eq!(drained(&mut pending), [(5, 3), (9, 1), (13, 1)]);
        assert!(pending.is_empty(), "a drain leaves nothing to hand over twice");
        assert_eq!(drained(&mut pending), []);
        assert!(pending.add(9));
        assert_eq!(drained(&mut pending), [(9, 1)], "counting starts again from zero");
    }

    #[test]
    fn counts_are_summed_until_the_last_ticking_root_is_gone() {
        let mut pending = PendingCounts::default();
        pending.tick_started();
        pending.tick_started();
        assert!(pending.add(5));
        pending.tick_stopped();
        assert!(pending.add(5), "another root context still ticks");
        pending.tick_stopped();
        assert!(!pending.add(5), "no tick is left: this one goes at once");
        assert_eq!(drained(&mut pending), [(5, 2)], "what was summed is still there to flush");
        pending.tick_stopped();
        assert!(!pending.add(5), "a stop too many does not wrap around");
    }
}
