//! POST bodies and their headers into the method-override readers
//! (`overrides::BodyHeaders`, `overrides::body_overrides_method`).
//!
//! Checks on every input:
//! 1. nothing panics, whatever the bytes and the content type;
//! 2. a form or multipart reading that finds an override saw the letters
//!    `method` in the body once `+` and `%XX` are decoded: the readers never
//!    invent a parameter name;
//! 3. adding a reading never hides an override another reading found (a
//!    request a framework would read as a form stays refused however many
//!    other ways it could also be read).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_authz_policy::overrides::{body_overrides_method, BodyFinding, BodyHeaders, BodyReadings};

fn readings(bits: u8) -> BodyReadings {
    BodyReadings { form: bits & 1 != 0, multipart: bits & 2 != 0, json: bits & 4 != 0 }
}

/// The body with `+` read as a space and every `%XX` decoded, lower-cased.
fn decoded_lower(body: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match (body[i], body.get(i + 1).copied().and_then(hex), body.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out.to_ascii_lowercase()
}

fuzz_target!(|data: &[u8]| {
    let Some((&bits, body)) = data.split_first() else { return };
    // The same bytes as a content type and an encoding: the header side must not panic either.
    let mut headers = BodyHeaders::default();
    headers.note(b"content-type", body);
    headers.note(b"content-encoding", body);
    for method in ["POST", "PUT"] {
        let _ = headers.plan(method);
    }
    let r = readings(bits);
    let found = body_overrides_method(r, body);
    if found == BodyFinding::Override && !r.json {
        // A multipart name may be a quoted string, where `\t` is a quoted-pair
        // standing for `t` (RFC 9110 §5.6.4): `name="_me\thod"` is `_method` to
        // a parser that unescapes, so the override is real. Backslashes go first.
        let unescaped: Vec<u8> = body.iter().copied().filter(|&b| b != b'\\').collect();
        let text = decoded_lower(&unescaped);
        assert!(text.windows(6).any(|w| w == b"method"), "override found in a body without 'method': {body:?}");
    }
    if found == BodyFinding::Override {
        let all = readings(bits | 7);
        assert_eq!(body_overrides_method(all, body), BodyFinding::Override, "another reading hid the override in {body:?}");
    }
});
