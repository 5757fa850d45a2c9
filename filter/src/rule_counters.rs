//! Per-rule counter ids, kept by the rule's key so that counting a request
//! builds no stat name.
//!
//! A per-rule counter is found by name (`mtls_authz.rule.<label>.<count>`),
//! and making that name on every request (escaping the label, formatting,
//! hashing the result) cost more than the `increment_metric` host call
//! itself. The engine's [`mtls_authz_policy::metrics::rule_key`] is what the label is made
//! from; equal keys give equal names, so the id is kept under the key, and
//! the name is only built the first time a VM counts a rule.

use mtls_authz_policy::metrics::Count;

/// One id per [`Count`] of a rule key; `None` where it is not defined yet.
type Ids = [Option<u32>; Count::ALL.len()];

/// Counter ids by rule key. Bounded like the counters themselves: by the
/// rule names of the policies this VM has run.
#[derive(Debug, Default)]
pub struct RuleCounterIds(rustc_hash::FxHashMap<Box<str>, Ids>);

impl RuleCounterIds {
    /// The id counting `count` for rule key `key`
    /// ([`mtls_authz_policy::metrics::rule_key`]): the one kept, else what
    /// `define` returns for it, kept when it is an id. A failed definition is
    /// tried again on the next request.
    pub fn get_or_define(&mut self, key: &str, count: Count, define: impl FnOnce() -> Option<u32>) -> Option<u32> {
        if let Some(id) = self.0.get(key).and_then(|ids| ids.get(count.index()).copied().flatten()) {
            return Some(id);
        }
        let id = define()?;
        let ids = self.0.entry(key.into()).or_insert([None; Count::ALL.len()]);
        if let Some(slot) = ids.get_mut(count.index()) {
            *slot = Some(id);
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn an_id_is_defined_once_per_key_and_count() {
        let mut ids = RuleCounterIds::default();
        let defined = Cell::new(0);
        let define = |id| {
            defined.set(defined.get() + 1);
            Some(id)
        };
        assert_eq!(ids.get_or_define("orders", Count::Allowed, || define(7)), Some(7));
        assert_eq!(ids.get_or_define("orders", Count::Allowed, || define(99)), Some(7), "kept");
        assert_eq!(ids.get_or_define("orders", Count::Denied, || define(8)), Some(8), "another count is another counter");
        assert_eq!(ids.get_or_define("~default", Count::Allowed, || define(9)), Some(9), "another key too");
        assert_eq!(defined.get(), 3);
    }

    #[test]
    fn a_failed_definition_is_not_kept() {
        let mut ids = RuleCounterIds::default();
        assert_eq!(ids.get_or_define("orders", Count::Allowed, || None), None);
        assert_eq!(ids.get_or_define("orders", Count::Allowed, || Some(3)), Some(3));
    }
}
