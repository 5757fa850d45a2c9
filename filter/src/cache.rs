//! Per-VM cache of parsed certificates, keyed by the certificate's SHA-256.
//!
//! Parsing X.509 is by far the most expensive thing the filter does, and the
//! PEM fetch is the largest host copy; a client keeps presenting the same
//! certificate, so both are done once per certificate per VM. The key is
//! Envoy's `connection.sha256_peer_certificate_digest` (checked against the
//! parsed certificate on insert), so a hit needs one small host call.
//!
//! Eviction is two-generation ("segmented") rather than exact LRU: entries
//! live in a young map; when it fills up to half the capacity it becomes the
//! old map and the previous old map is dropped. A hit in the old map moves the
//! entry to the young one. That keeps certificates in active use, bounds the
//! cache at `capacity` entries, costs one hash lookup on the hot path and needs
//! no per-hit bookkeeping.
//!
//! Failures are cached too: a CA-signed certificate that this parser cannot
//! read would otherwise be re-fetched and re-parsed on every request.

use std::rc::Rc;

use rustc_hash::FxHashMap;

use mtls_authz_policy::Identity;

/// What is known about one certificate.
#[derive(Debug, Clone)]
pub enum Entry {
    /// Parsed, and its SHA-256 equals the digest Envoy reported.
    Parsed(Rc<Identity>),
    /// Unusable: unparsable, or its content did not match the digest.
    Unreadable,
}

/// Default capacity: comfortably more distinct client certificates than one
/// worker sees in a mesh, at roughly 1 KiB each.
pub const DEFAULT_CAPACITY: usize = 1024;

/// A bounded map from certificate digest (lower-case hex) to [`Entry`].
///
/// FxHash, not SipHash: a key is the SHA-256 of a certificate the CA signed
/// and Envoy verified, so nobody can choose keys to collide, and the lookup
/// hashes 64 bytes on every request.
#[derive(Debug)]
pub struct IdentityCache {
    young: FxHashMap<Box<str>, Entry>,
    old: FxHashMap<Box<str>, Entry>,
    generation: usize,
}

impl Default for IdentityCache {
    fn default() -> Self {
        IdentityCache::new(DEFAULT_CAPACITY)
    }
}

impl IdentityCache {
    /// A cache that holds at most `capacity` entries (at least 2).
    pub fn new(capacity: usize) -> IdentityCache {
        let generation = (capacity / 2).max(1);
        IdentityCache {
            young: FxHashMap::with_capacity_and_hasher(generation, Default::default()),
            old: FxHashMap::with_capacity_and_hasher(generation, Default::default()),
            generation,
        }
    }

    /// The entry for `digest`, which must already be lower-case.
    pub fn get(&mut self, digest: &str) -> Option<Entry> {
        if let Some(entry) = self.young.get(digest) {
            return Some(entry.clone());
        }
        let (key, entry) = self.old.remove_entry(digest)?;
        self.insert_key(key, entry.clone());
        Some(entry)
    }

    /// Remember `entry` for `digest` (lower-case).
    pub fn insert(&mut self, digest: &str, entry: Entry) {
        self.insert_key(digest.into(), entry);
    }

    fn insert_key(&mut self, key: Box<str>, entry: Entry) {
        if self.young.len() >= self.generation && !self.young.contains_key(&key) {
            // The young generation becomes the old one; the old one is dropped.
            // Swapping reuses the old map's allocation instead of growing a new one.
            std::mem::swap(&mut self.young, &mut self.old);
            self.young.clear();
        }
        self.young.insert(key, entry);
    }

    /// Entries held now (at most the capacity).
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// Is the cache empty?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(cn: &str) -> Entry {
        Entry::Parsed(Rc::new(Identity { common_names: vec![cn.into()], ..Identity::default() }))
    }

    fn cn(entry: Option<Entry>) -> Option<String> {
        match entry {
            Some(Entry::Parsed(id)) => id.common_name().map(str::to_owned),
            Some(Entry::Unreadable) => Some("<unreadable>".into()),
            None => None,
        }
    }

    #[test]
    fn hit_and_miss() {
        let mut c = IdentityCache::new(4);
        assert!(c.is_empty());
        c.insert("aa", parsed("a"));
        c.insert("bb", Entry::Unreadable);
        assert_eq!(cn(c.get("aa")).as_deref(), Some("a"));
        assert_eq!(cn(c.get("bb")).as_deref(), Some("<unreadable>"));
        assert!(c.get("cc").is_none());
    }

    #[test]
    fn never_grows_past_capacity() {
        let mut c = IdentityCache::new(8);
        for i in 0..1000 {
            c.insert(&format!("{i:064x}"), parsed("x"));
            assert!(c.len() <= 8, "len {} after {} inserts", c.len(), i + 1);
        }
    }

    #[test]
    fn entries_in_use_survive_rotation() {
        let mut c = IdentityCache::new(4);
        c.insert("hot", parsed("hot"));
        for i in 0..100 {
            c.insert(&format!("cold{i}"), parsed("cold"));
            // The hot certificate is used between every pair of new ones.
            assert_eq!(cn(c.get("hot")).as_deref(), Some("hot"), "evicted after {i} cold inserts");
        }
        // Cold entries from long ago are gone.
        assert!(c.get("cold0").is_none());
    }

    #[test]
    fn reinserting_a_present_key_does_not_rotate() {
        let mut c = IdentityCache::new(4);
        c.insert("a", parsed("a"));
        c.insert("b", parsed("b"));
        c.insert("b", parsed("b2"));
        assert_eq!(cn(c.get("a")).as_deref(), Some("a"));
        assert_eq!(cn(c.get("b")).as_deref(), Some("b2"));
    }
}
