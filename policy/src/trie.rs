//! The compiled index's storage: a segment trie in a few flat arrays.
//!
//! Every Wasm VM keeps one copy of the index for as long as the policy is
//! loaded, and Envoy runs a VM per worker thread, so its size is paid many
//! times over. A node with its own hash map and boxed keys costs a few hundred
//! bytes; here a node is a fixed 16-byte record, every literal edge of the
//! whole trie lives in one hash table keyed by (parent, segment), and each
//! distinct segment text is stored once in one string arena.
//!
//! A lookup hashes the request segment once (FxHash, as before: only the
//! policy inserts keys, a request can only look up) and compares it with the
//! arena text of the edges in its bucket chain, so the walk still does not
//! allocate.

use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};

use crate::pattern::{PathPattern, Placeholder, Segment};

/// No node, no edge.
const NONE: u32 = u32::MAX;

/// A read-only segment trie over path patterns; each leaf list holds rule indices.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
    /// Literal edges, chained per hash key.
    edges: Vec<Edge>,
    /// The first edge of each hash bucket's chain, or [`NONE`]; a power of
    /// two long (empty when there are no edges), indexed by the low bits of
    /// [`edge_key`]. 4 bytes a bucket where a hash map entry takes 16.
    heads: Vec<u32>,
    /// Every distinct literal segment, back to back.
    arena: String,
    /// Each node's placeholder children, contiguous per node.
    placeholders: Vec<(Placeholder, u32)>,
    /// Each node's `exact` rules then its `rest` rules, contiguous per node.
    rules: Vec<u32>,
}

/// A node: where its entries start in the trie's shared arrays. They end
/// where the next node's start (the last node is followed by a sentinel), so
/// a node is 16 bytes: a 10,000-rule policy has some 40,000 of them.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// The `*` child, or [`NONE`].
    any: u32,
    placeholders_start: u32,
    /// The `exact` rules, then from `rest_start` the `rest` rules.
    rules_start: u32,
    rest_start: u32,
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    parent: u32,
    child: u32,
    text_start: u32,
    text_len: u32,
    /// The next edge with the same hash key, or [`NONE`].
    next: u32,
}

/// One node's children, as the walk sees them.
pub(crate) struct NodeView<'t> {
    trie: &'t Trie,
    index: u32,
    node: Node,
    /// The next node's starts: where this node's entries end.
    next: Node,
}

impl<'t> NodeView<'t> {
    /// Rules whose pattern ends exactly here.
    pub(crate) fn exact(&self) -> &'t [u32] {
        self.trie.rules.get(self.node.rules_start as usize..self.node.rest_start as usize).unwrap_or(&[])
    }

    /// Rules whose pattern ends here in `/**`.
    pub(crate) fn rest(&self) -> &'t [u32] {
        self.trie.rules.get(self.node.rest_start as usize..self.next.rules_start as usize).unwrap_or(&[])
    }

    /// The child reached by the literal segment `segment`.
    pub(crate) fn literal(&self, segment: &str) -> Option<u32> {
        self.trie.literal_child(self.index, segment)
    }

    /// The `*` child.
    pub(crate) fn any(&self) -> Option<u32> {
        (self.node.any != NONE).then_some(self.node.any)
    }

    /// The placeholder children.
    pub(crate) fn placeholders(&self) -> &'t [(Placeholder, u32)] {
        self.trie.placeholders.get(self.node.placeholders_start as usize..self.next.placeholders_start as usize).unwrap_or(&[])
    }
}

impl Trie {
    /// Index every pattern of every rule: `rules` yields each rule's patterns, in rule-index order.
    pub(crate) fn build<'p>(rules: impl Iterator<Item = &'p [PathPattern]>) -> Trie {
        let mut builder = Builder::new();
        for (rule_index, patterns) in rules.enumerate() {
            for pattern in patterns {
                builder.insert(rule_index as u32, pattern);
            }
        }
        builder.freeze()
    }

    /// The node at `index` (the root is 0).
    pub(crate) fn node(&self, index: u32) -> Option<NodeView<'_>> {
        let node = *self.nodes.get(index as usize)?;
        let next = *self.nodes.get(index as usize + 1)?;
        Some(NodeView { trie: self, index, node, next })
    }

    fn literal_child(&self, parent: u32, segment: &str) -> Option<u32> {
        let mask = self.heads.len().checked_sub(1)?;
        let first = *self.heads.get(edge_key(parent, segment) as usize & mask)?;
        self.find_edge(first, parent, segment)
    }

    /// The child of the edge from `parent` by `segment` in the chain that starts at edge `at`.
    fn find_edge(&self, mut at: u32, parent: u32, segment: &str) -> Option<u32> {
        while let Some(edge) = self.edges.get(at as usize) {
            if edge.parent == parent && self.text(edge) == segment {
                return Some(edge.child);
            }
            at = edge.next;
        }
        None
    }

    fn text(&self, edge: &Edge) -> &str {
        arena_text(&self.arena, edge.text_start, edge.text_len)
    }
}

/// The hash key of the edge from `parent` by `segment`. The parent's fixed
/// width keeps two keys apart without the length suffix `str`'s `Hash` adds.
fn edge_key(parent: u32, segment: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write_u32(parent);
    h.write(segment.as_bytes());
    h.finish()
}

/// The trie as it is built. Literal edges and their texts go straight into
/// the trie's own arrays, chained from power-of-two bucket arrays of `u32`
/// that double as they fill (the builder looks edges up the way a request
/// does); what each node holds is gathered as flat entries and laid out per
/// node at the end. A Wasm VM keeps its peak memory for life, so building
/// should not cost much more than the trie it builds: a hash map entry here
/// would take 16 bytes and a fresh table at every doubling, a bucket takes 4.
struct Builder {
    trie: Trie,
    /// Each node's `*` child, or [`NONE`]; one entry per node.
    any: Vec<u32>,
    /// (node, placeholder) -> child.
    placeholder_child: FxHashMap<(u32, Placeholder), u32>,
    /// (node, placeholder, child), in insertion order.
    placeholders: Vec<(u32, Placeholder, u32)>,
    /// (node, ends in `/**`, rule): where each pattern ends.
    ends: Vec<(u32, bool, u32)>,
    /// Each distinct text's (start in the arena, length, next entry in its bucket).
    texts: Vec<(u32, u32, u32)>,
    /// The first entry of each bucket of `texts`, by [`text_key`].
    text_heads: Vec<u32>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            trie: Trie::default(),
            any: vec![NONE],
            placeholder_child: FxHashMap::default(),
            placeholders: Vec::new(),
            ends: Vec::new(),
            texts: Vec::new(),
            text_heads: Vec::new(),
        }
    }

    fn new_node(&mut self) -> u32 {
        self.any.push(NONE);
        (self.any.len() - 1) as u32
    }

    fn insert(&mut self, rule: u32, pattern: &PathPattern) {
        let mut at = 0u32;
        for segment in &pattern.segments {
            at = match segment {
                Segment::Literal(l) => match self.trie.literal_child(at, l) {
                    Some(child) => child,
                    None => {
                        let child = self.new_node();
                        self.add_edge(at, l, child);
                        child
                    }
                },
                Segment::Any => match self.any.get(at as usize) {
                    Some(&child) if child != NONE => child,
                    Some(_) => {
                        let child = self.new_node();
                        if let Some(slot) = self.any.get_mut(at as usize) {
                            *slot = child;
                        }
                        child
                    }
                    None => return,
                },
                Segment::Placeholder(p) => match self.placeholder_child.get(&(at, *p)) {
                    Some(&child) => child,
                    None => {
                        let child = self.new_node();
                        self.placeholder_child.insert((at, *p), child);
                        self.placeholders.push((at, *p, child));
                        child
                    }
                },
            };
        }
        self.ends.push((at, pattern.rest, rule));
    }

    fn add_edge(&mut self, parent: u32, text: &str, child: u32) {
        let text_start = self.intern(text);
        let trie = &mut self.trie;
        trie.edges.push(Edge { parent, child, text_start, text_len: text.len() as u32, next: NONE });
        let arena = &trie.arena;
        chain_last(
            &mut trie.heads,
            trie.edges.iter_mut().map(|edge| (edge_key(edge.parent, arena_text(arena, edge.text_start, edge.text_len)), &mut edge.next)),
        );
    }

    /// Where `text` starts in the arena, appending it the first time.
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(mask) = self.text_heads.len().checked_sub(1) {
            let mut at = self.text_heads.get(text_key(text) as usize & mask).copied().unwrap_or(NONE);
            while let Some(&(start, len, next)) = self.texts.get(at as usize) {
                if self.trie.arena.get(start as usize..(start + len) as usize) == Some(text) {
                    return start;
                }
                at = next;
            }
        }
        let start = self.trie.arena.len() as u32;
        self.trie.arena.push_str(text);
        self.texts.push((start, text.len() as u32, NONE));
        let arena = &self.trie.arena;
        chain_last(&mut self.text_heads, self.texts.iter_mut().map(|(start, len, next)| (text_key(arena_text(arena, *start, *len)), next)));
        start
    }

    fn freeze(mut self) -> Trie {
        // The build-time lookups go first, so the per-node arrays reuse their memory.
        drop((self.texts, self.text_heads, self.placeholder_child));
        let mut trie = self.trie;
        trie.edges.shrink_to_fit();
        trie.arena.shrink_to_fit();
        // Per node: exact rules, then `/**` rules, each in rule order and once.
        self.ends.sort_unstable();
        self.ends.dedup();
        // Stable: a node's placeholder children keep their insertion order.
        self.placeholders.sort_by_key(|&(node, _, _)| node);
        let (mut ends, mut placeholders) = (self.ends.iter().peekable(), self.placeholders.iter().peekable());
        trie.nodes.reserve_exact(self.any.len() + 1);
        trie.rules.reserve_exact(self.ends.len());
        for (index, &any) in self.any.iter().enumerate() {
            let index = index as u32;
            let placeholders_start = trie.placeholders.len() as u32;
            while let Some(&(_, p, child)) = placeholders.next_if(|(node, _, _)| *node == index) {
                trie.placeholders.push((p, child));
            }
            let rules_start = trie.rules.len() as u32;
            // `ends` sorts a node's exact rules (false) before its rest rules.
            while let Some(&(_, _, rule)) = ends.next_if(|&&(node, rest, _)| node == index && !rest) {
                trie.rules.push(rule);
            }
            let rest_start = trie.rules.len() as u32;
            while let Some(&(_, _, rule)) = ends.next_if(|&&(node, _, _)| node == index) {
                trie.rules.push(rule);
            }
            trie.nodes.push(Node { any, placeholders_start, rules_start, rest_start });
        }
        let (placeholders_end, rules_end) = (trie.placeholders.len() as u32, trie.rules.len() as u32);
        trie.nodes.push(Node { any: NONE, placeholders_start: placeholders_end, rules_start: rules_end, rest_start: rules_end });
        trie.placeholders.shrink_to_fit();
        trie
    }
}

/// The hash key of a segment text in the builder's text table.
fn text_key(text: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(text.as_bytes());
    h.finish()
}

fn arena_text(arena: &str, start: u32, len: u32) -> &str {
    arena.get(start as usize..(start + len) as usize).unwrap_or("")
}

/// Chain the entry just pushed (the last of `entries`, which give each
/// entry's hash key and next-in-bucket link, in index order) into its bucket:
/// about one entry a bucket, so when there are more entries than buckets the
/// buckets double and every entry is chained anew. Only the last entry's key
/// is computed otherwise.
fn chain_last<'e>(heads: &mut Vec<u32>, mut entries: impl ExactSizeIterator<Item = (u64, &'e mut u32)> + DoubleEndedIterator) {
    let len = entries.len();
    if len > heads.len() {
        return rechain(heads, entries);
    }
    let Some(mask) = heads.len().checked_sub(1) else { return };
    if let Some((key, next)) = entries.next_back() {
        if let Some(head) = heads.get_mut(key as usize & mask) {
            *next = std::mem::replace(head, (len - 1) as u32);
        }
    }
}

/// Double a power-of-two bucket array (to at least one bucket per entry)
/// and chain every entry into it anew; `entries` gives each entry's hash
/// key and its next-in-bucket link, in index order.
fn rechain<'e>(heads: &mut Vec<u32>, entries: impl ExactSizeIterator<Item = (u64, &'e mut u32)>) {
    let buckets = entries.len().next_power_of_two().max(heads.len() * 2);
    heads.clear();
    heads.resize(buckets, NONE);
    let mask = buckets - 1;
    for (i, (key, next)) in entries.enumerate() {
        if let Some(head) = heads.get_mut(key as usize & mask) {
            *next = std::mem::replace(head, i as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trie(patterns: &[&[&str]]) -> Trie {
        let parsed: Vec<Vec<PathPattern>> = patterns.iter().map(|ps| ps.iter().map(|p| PathPattern::parse(p).unwrap()).collect()).collect();
        Trie::build(parsed.iter().map(Vec::as_slice))
    }

    /// Follow literal segments from the root.
    fn walk(t: &Trie, path: &[&str]) -> Option<u32> {
        path.iter().try_fold(0u32, |at, s| t.node(at)?.literal(s))
    }

    #[test]
    fn literal_edges_lead_to_the_rules_that_end_there() {
        let t = trie(&[&["/api/a", "/api/b/**"], &["/api/a"], &["/other"]]);
        let a = walk(&t, &["api", "a"]).unwrap();
        assert_eq!(t.node(a).unwrap().exact(), &[0, 1]);
        let b = walk(&t, &["api", "b"]).unwrap();
        assert_eq!((t.node(b).unwrap().exact(), t.node(b).unwrap().rest()), (&[][..], &[0][..]));
        assert_eq!(walk(&t, &["api", "c"]), None);
        assert_eq!(walk(&t, &["other"]).and_then(|n| t.node(n)).map(|n| n.exact().to_vec()), Some(vec![2]));
    }

    #[test]
    fn the_same_text_under_two_parents_is_two_edges_and_one_arena_entry() {
        let t = trie(&[&["/x/items", "/y/items"]]);
        assert_ne!(walk(&t, &["x", "items"]), walk(&t, &["y", "items"]));
        assert_eq!(t.arena.matches("items").count(), 1);
        assert_eq!(walk(&t, &["items"]), None, "an edge belongs to its parent only");
    }

    #[test]
    fn wildcards_and_placeholders_are_children_of_their_node() {
        let t = trie(&[&["/d/*/x", "/d/{cn}/y"]]);
        let d = t.node(walk(&t, &["d"]).unwrap()).unwrap();
        assert!(d.any().is_some());
        assert_eq!(d.placeholders().len(), 1);
        assert_eq!(d.placeholders()[0].0, Placeholder::Cn);
        assert!(t.node(0).unwrap().any().is_none());
    }

    #[test]
    fn an_empty_policy_has_a_root_and_no_edges() {
        let t = Trie::build(std::iter::empty());
        let root = t.node(0).unwrap();
        assert!(root.exact().is_empty() && root.rest().is_empty() && root.literal("a").is_none());
    }
}
