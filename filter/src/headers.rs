//! The request header map as proxy-wasm hands it over, read without copying.
//!
//! `proxy_get_header_map_pairs` returns every header in one buffer, so the
//! filter makes one host call for the whole map rather than one per header. The
//! buffer's layout (proxy-wasm ABI, `marshalPairs` in the C++ host):
//!
//! ```text
//! u32 count                         little-endian, like every length
//! count × (u32 name_len, u32 value_len)
//! count × (name, NUL, value, NUL)   in the same order
//! ```
//!
//! An empty map may come as an empty buffer. [`Pairs`] walks it with every
//! offset checked: a length past the end, a missing NUL, a count the buffer
//! cannot hold or bytes after the last value end the walk with [`Malformed`]
//! instead of a panic (the SDK's `get_map_bytes` indexes and unwraps), and the
//! filter turns that into a 403. Names and values are bytes: Envoy does not
//! promise UTF-8.

use std::fmt;

use crate::host::HostError;

/// The serialized header map, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    bytes: Vec<u8>,
}

/// The buffer does not follow the layout; what is wrong, for the error log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed header map: {}", self.0)
    }
}

impl From<Malformed> for HostError {
    fn from(_: Malformed) -> HostError {
        HostError("get_header_map_pairs (malformed map)")
    }
}

const WORD: usize = 4;

/// One header: name and value, as bytes.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

impl HeaderMap {
    /// Wrap a buffer in the layout above; it is checked while it is read.
    pub fn from_bytes(bytes: Vec<u8>) -> HeaderMap {
        HeaderMap { bytes }
    }

    /// Serialize pairs into the layout `proxy_get_header_map_pairs` returns,
    /// which is also the one `proxy_send_local_response` takes (the 403's
    /// headers; and for test hosts). The inverse of [`HeaderMap::pairs`].
    /// `None` if a length or the count does not fit in a `u32`.
    pub fn serialize<'a, I>(pairs: I) -> Option<HeaderMap>
    where
        I: IntoIterator<Item = Pair<'a>>,
        I::IntoIter: Clone,
    {
        let pairs = pairs.into_iter();
        let count = u32::try_from(pairs.clone().count()).ok()?;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&count.to_le_bytes());
        for (name, value) in pairs.clone() {
            bytes.extend_from_slice(&u32::try_from(name.len()).ok()?.to_le_bytes());
            bytes.extend_from_slice(&u32::try_from(value.len()).ok()?.to_le_bytes());
        }
        for (name, value) in pairs {
            bytes.extend_from_slice(name);
            bytes.push(0);
            bytes.extend_from_slice(value);
            bytes.push(0);
        }
        Some(HeaderMap { bytes })
    }

    /// The raw buffer.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The `(name, value)` pairs in the order the proxy gave them. The walk
    /// ends after the first `Err`.
    pub fn pairs(&self) -> Pairs<'_> {
        Pairs::new(&self.bytes)
    }
}

/// Iterator over a serialized map: `Ok((name, value))` per header, or one
/// `Err` where the buffer stops making sense. Allocates nothing.
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    bytes: &'a [u8],
    /// Pairs not yet read.
    remaining: usize,
    /// Offset of the next (name_len, value_len) entry.
    table: usize,
    /// Offset of the next name.
    data: usize,
    /// A fault found before the first pair (reported by the first `next`).
    fault: Option<Malformed>,
    done: bool,
}

impl<'a> Pairs<'a> {
    /// Start walking `bytes`.
    pub fn new(bytes: &'a [u8]) -> Pairs<'a> {
        let mut pairs = Pairs { bytes, remaining: 0, table: WORD, data: 0, fault: None, done: false };
        if bytes.is_empty() {
            // The host's encoding of a map with no entries.
            return pairs;
        }
        match header(bytes) {
            Ok((count, data)) => {
                pairs.remaining = count;
                pairs.data = data;
            }
            Err(fault) => pairs.fault = Some(fault),
        }
        pairs
    }

    fn step(&mut self) -> Result<Option<Pair<'a>>, Malformed> {
        if let Some(fault) = self.fault.take() {
            return Err(fault);
        }
        if self.remaining == 0 {
            return if self.data == self.bytes.len() { Ok(None) } else { Err(Malformed("bytes after the last value")) };
        }
        let name_len = read_len(self.bytes, self.table)?;
        let value_len = read_len(self.bytes, self.table.checked_add(WORD).ok_or(Malformed("offset overflow"))?)?;
        let name = take(self.bytes, &mut self.data, name_len)?;
        let value = take(self.bytes, &mut self.data, value_len)?;
        self.table = self.table.checked_add(2 * WORD).ok_or(Malformed("offset overflow"))?;
        self.remaining -= 1;
        Ok(Some((name, value)))
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<Pair<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(pair)) => Some(Ok(pair)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(fault) => {
                self.done = true;
                Some(Err(fault))
            }
        }
    }
}

/// The pair count, and the offset where names begin (after the length table),
/// checked to lie within the buffer.
fn header(bytes: &[u8]) -> Result<(usize, usize), Malformed> {
    let count = read_len(bytes, 0)?;
    let data = count.checked_mul(2 * WORD).and_then(|table| table.checked_add(WORD)).ok_or(Malformed("the pair count overflows"))?;
    if data > bytes.len() {
        return Err(Malformed("the length table is longer than the buffer"));
    }
    Ok((count, data))
}

/// The little-endian `u32` at `at`.
fn read_len(bytes: &[u8], at: usize) -> Result<usize, Malformed> {
    let end = at.checked_add(WORD).ok_or(Malformed("offset overflow"))?;
    let word: [u8; WORD] = bytes.get(at..end).and_then(|w| w.try_into().ok()).ok_or(Malformed("the buffer ends inside a length"))?;
    usize::try_from(u32::from_le_bytes(word)).map_err(|_| Malformed("a length does not fit in usize"))
}

/// The `len` bytes at `*at`, which must be followed by a NUL; advances past it.
fn take<'a>(bytes: &'a [u8], at: &mut usize, len: usize) -> Result<&'a [u8], Malformed> {
    let end = at.checked_add(len).ok_or(Malformed("a length overflows"))?;
    let field = bytes.get(*at..end).ok_or(Malformed("a name or value runs past the end"))?;
    if bytes.get(end) != Some(&0) {
        return Err(Malformed("a name or value is not followed by NUL"));
    }
    *at = end + 1;
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        HeaderMap::serialize(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))).unwrap()
    }

    type Owned = Vec<(Vec<u8>, Vec<u8>)>;

    fn read(bytes: &[u8]) -> Result<Owned, Malformed> {
        Pairs::new(bytes).map(|p| p.map(|(n, v)| (n.to_vec(), v.to_vec()))).collect()
    }

    fn le(n: u32) -> [u8; 4] {
        n.to_le_bytes()
    }

    #[test]
    fn well_formed_map_reads_back_in_order() {
        let m = map(&[(":method", "GET"), (":path", "/a?b"), ("x", ""), ("x", "second")]);
        let got: Vec<_> = m.pairs().map(Result::unwrap).collect();
        assert_eq!(got, [(&b":method"[..], &b"GET"[..]), (b":path", b"/a?b"), (b"x", b""), (b"x", b"second")]);
    }

    #[test]
    fn the_layout_is_the_abi_one() {
        let m = map(&[("ab", "c")]);
        let mut want = Vec::new();
        want.extend_from_slice(&le(1));
        want.extend_from_slice(&le(2));
        want.extend_from_slice(&le(1));
        want.extend_from_slice(b"ab\0c\0");
        assert_eq!(m.as_bytes(), want);
    }

    #[test]
    fn bytes_are_not_required_to_be_utf8() {
        let m = HeaderMap::serialize([(&b"x"[..], &b"\xff\xfe"[..])]).unwrap();
        assert_eq!(read(m.as_bytes()).unwrap(), [(b"x".to_vec(), b"\xff\xfe".to_vec())]);
    }

    #[test]
    fn empty_maps() {
        // What the host sends for no headers, and an explicit zero count.
        assert_eq!(read(&[]).unwrap(), []);
        assert_eq!(read(&le(0)).unwrap(), []);
        assert_eq!(HeaderMap::default().pairs().count(), 0);
        assert_eq!(map(&[]).as_bytes(), le(0));
    }

    #[test]
    fn empty_names_and_values_still_need_their_nul() {
        let mut b = Vec::new();
        b.extend_from_slice(&le(1));
        b.extend_from_slice(&le(0));
        b.extend_from_slice(&le(0));
        b.extend_from_slice(b"\0\0");
        assert_eq!(read(&b).unwrap(), [(vec![], vec![])]);
        b.pop();
        assert_eq!(read(&b), Err(Malformed("a name or value is not followed by NUL")));
    }

    #[test]
    fn truncated_buffers_are_malformed_at_every_length() {
        let m = map(&[(":method", "GET"), (":path", "/x"), ("host", "h")]);
        let full = m.as_bytes();
        for cut in 1..full.len() {
            let got = read(&full[..cut]);
            assert!(got.is_err(), "cut at {cut} of {}: {got:?}", full.len());
        }
        assert!(read(full).is_ok());
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut b = map(&[("a", "b")]).as_bytes().to_vec();
        b.push(0);
        assert_eq!(read(&b), Err(Malformed("bytes after the last value")));
        let mut b = le(0).to_vec();
        b.push(b'x');
        assert_eq!(read(&b), Err(Malformed("bytes after the last value")));
    }

    #[test]
    fn counts_and_lengths_that_overflow_are_malformed() {
        // A count whose table would be 32 GiB.
        let mut b = le(u32::MAX).to_vec();
        b.extend_from_slice(&[0; 16]);
        assert!(read(&b).is_err());
        // A count one more than the table holds.
        let mut b = le(2).to_vec();
        b.extend_from_slice(&le(0));
        b.extend_from_slice(&le(0));
        b.extend_from_slice(b"\0\0");
        assert_eq!(read(&b), Err(Malformed("the length table is longer than the buffer")));
        // Lengths pointing far past the end, and at the very end.
        for (name_len, value_len) in [(u32::MAX, 0), (0, u32::MAX), (u32::MAX, u32::MAX), (3, 0), (1, 1)] {
            let mut b = le(1).to_vec();
            b.extend_from_slice(&le(name_len));
            b.extend_from_slice(&le(value_len));
            b.extend_from_slice(b"a\0");
            assert!(read(&b).is_err(), "{name_len} {value_len}");
        }
        // Only part of a count.
        assert_eq!(read(&[1, 0]), Err(Malformed("the buffer ends inside a length")));
    }

    #[test]
    fn missing_or_misplaced_nuls_are_malformed() {
        let good = map(&[("ab", "cd")]).as_bytes().to_vec();
        let names_at = 4 + 8;
        for (at, byte) in [(names_at + 2, b'x'), (names_at + 5, b'x')] {
            let mut b = good.clone();
            b[at] = byte;
            assert_eq!(read(&b), Err(Malformed("a name or value is not followed by NUL")), "{at}");
        }
        // A name length one short puts the NUL check on the name's last byte.
        let mut b = good.clone();
        b[4] = 1;
        assert!(read(&b).is_err());
    }

    #[test]
    fn the_walk_stops_after_the_first_error() {
        let mut b = map(&[("a", "1"), ("b", "2")]).as_bytes().to_vec();
        let last = b.len() - 1;
        b[last] = b'!';
        let items: Vec<_> = Pairs::new(&b).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(items[1].is_err());
        let mut pairs = Pairs::new(&b);
        pairs.by_ref().for_each(drop);
        assert!(pairs.next().is_none());
    }

    #[test]
    fn random_bytes_never_panic() {
        // A cheap deterministic sweep on top of the proptest below: every
        // short buffer over a small alphabet that makes lengths plausible.
        let alphabet = [0u8, 1, 2, 0xff, b'a'];
        for len in 0..=7usize {
            let mut digits = vec![0usize; len];
            loop {
                let b: Vec<u8> = digits.iter().map(|&d| alphabet[d]).collect();
                let _ = read(&b);
                let mut i = 0;
                while i < len {
                    digits[i] += 1;
                    if digits[i] < alphabet.len() {
                        break;
                    }
                    digits[i] = 0;
                    i += 1;
                }
                if i == len {
                    break;
                }
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_buffers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let items: Vec<_> = Pairs::new(&bytes).collect();
            // At most one error, and only last.
            let errors = items.iter().filter(|i| i.is_err()).count();
            prop_assert!(errors <= 1);
            if errors == 1 {
                prop_assert!(items.last().is_some_and(Result::is_err));
            }
        }

        #[test]
        fn small_counts_with_random_tails_never_panic(count in 0u32..4, tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = count.to_le_bytes().to_vec();
            bytes.extend_from_slice(&tail);
            let _ = read(&bytes);
        }

        #[test]
        fn serialize_then_read_round_trips(
            pairs in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..16), proptest::collection::vec(any::<u8>(), 0..16)),
                0..12,
            )
        ) {
            let m = HeaderMap::serialize(pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice()))).unwrap();
            prop_assert_eq!(read(m.as_bytes()).unwrap(), pairs);
        }
    }
}
