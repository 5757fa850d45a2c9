//! What the policy matched is what the backend serves.
//!
//! For every path the canonicaliser accepts, several models of how real
//! backends read a path (decode once, decode twice, remove dot segments,
//! merge slashes, treat `\` as `/`, strip `;` parameters per segment) must all
//! resolve it to exactly the decoded path the policy was matched against. If
//! any backend could read an accepted path as something else, that is a
//! bypass, and this test finds it.

use mtls_authz_policy::canonicalize;
use proptest::prelude::*;

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4 remove_dot_segments, plus the liberties backends take.
fn normalise(path: &str, merge_slashes: bool, backslash_is_slash: bool, strip_params: bool) -> String {
    let path = if backslash_is_slash { path.replace('\\', "/") } else { path.to_owned() };
    let mut out: Vec<String> = Vec::new();
    for seg in path.split('/').skip(1) {
        let seg = if strip_params { seg.split(';').next().unwrap_or("").to_owned() } else { seg.to_owned() };
        match seg.as_str() {
            "." => {}
            ".." => {
                out.pop();
            }
            "" if merge_slashes => {}
            _ => out.push(seg),
        }
    }
    format!("/{}", out.join("/"))
}

/// Every way a backend might read `raw` (the path without query).
fn backend_readings(raw: &str) -> Vec<String> {
    let mut readings = Vec::new();
    let once = String::from_utf8_lossy(&percent_decode(raw)).into_owned();
    let twice = String::from_utf8_lossy(&percent_decode(&once)).into_owned();
    for decoded in [&once, &twice] {
        for merge in [false, true] {
            for backslash in [false, true] {
                for params in [false, true] {
                    readings.push(normalise(decoded, merge, backslash, params));
                }
            }
        }
    }
    // Normalise first, decode after (the order some frameworks use).
    let normalised_raw = normalise(raw, true, true, true);
    readings.push(String::from_utf8_lossy(&percent_decode(&normalised_raw)).into_owned());
    readings
}

fn tricky_segment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a",
        "b",
        "admin",
        "api",
        ".",
        "..",
        "%2e",
        "%2E%2e",
        ".%2e",
        "%2f",
        "%2F",
        "%5c",
        "\\",
        "%25",
        "%252f",
        "%252e%252e",
        ";",
        "a;x",
        "%3b",
        "%00",
        "%c0%af",
        "%61",
        "%41dmin",
        "",
        "%20",
        "~",
        "x%2fy",
        "%ff",
        "a.b",
        "...",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn accepted_paths_mean_the_same_to_every_backend(segs in prop::collection::vec(tricky_segment(), 0..6), query in prop::option::of("[a-z/.%?#]{0,6}")) {
        let mut raw = String::new();
        for s in &segs {
            raw.push('/');
            raw.push_str(s);
        }
        if raw.is_empty() {
            raw.push('/');
        }
        let target = match &query {
            Some(q) => format!("{raw}?{q}"),
            None => raw.clone(),
        };
        if let Ok(canonical) = canonicalize(&target) {
            for reading in backend_readings(&raw) {
                prop_assert_eq!(&reading, canonical.as_str(), "raw {:?} accepted as {:?}", raw, canonical.as_str());
            }
        }
    }
}

#[test]
fn the_model_backends_do_see_the_classic_tricks_differently() {
    // Guard against a vacuous property: these raw paths *would* be read as
    // something else by at least one model backend, and the canonicaliser refuses them all.
    for raw in ["/a/../admin", "/a/%2e%2e/admin", "/a%2fadmin", "/a;x/admin", "/a\\..\\admin", "//admin", "/a/%252e%252e/admin"] {
        let readings = backend_readings(raw);
        assert!(readings.iter().any(|r| r != raw), "{raw} looks harmless to every model backend");
        assert!(canonicalize(raw).is_err(), "{raw} must be refused");
    }
}
