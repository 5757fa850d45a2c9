//! The compiled index must decide exactly like the naive rule-by-rule
//! evaluator, on random policies and random requests. The alphabet is small on
//! purpose so that random requests hit random rules often. The policy's
//! `path_reading` is drawn too: folding, stripped parameters, trailing
//! slashes and the extra readings of suffix matching go through both.

use mtls_authz_policy::{decide_naive, CompiledPolicy, Identity, Policy};
use proptest::prelude::*;

const SEGMENTS: &[&str] = &["a", "b", "c", "dev1", "order", "A", "x.y"];
/// Some `path_reading` objects, the strict one first.
const READINGS: &[&str] = &[
    "{}",
    r#"{"case": "insensitive"}"#,
    r#"{"trailing_slash": "same_as_without", "path_parameters": "strip"}"#,
    r#"{"trailing_slash": "distinct", "suffix_patterns": true}"#,
    r#"{"platform": "windows", "unicode": "as_sent"}"#,
    r#"{"platform": "macos", "trim_whitespace": true, "encoded_delimiters": "decode_once"}"#,
    r#"{"unicode": "nfkc", "encoded_slash": "in_segment", "suffix_patterns": true}"#,
];
const CNS: &[&str] = &["dev1", "order", "report"];

fn pattern_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(SEGMENTS).prop_map(str::to_owned),
        2 => Just("*".to_owned()),
        1 => Just("{cn}".to_owned()),
        1 => Just("{uri_san_last_segment}".to_owned()),
    ]
}

fn path_pattern() -> impl Strategy<Value = String> {
    (prop::collection::vec(pattern_segment(), 0..4), any::<bool>()).prop_map(|(segs, rest)| {
        let mut p = String::new();
        for s in &segs {
            p.push('/');
            p.push_str(s);
        }
        if rest {
            p.push_str("/**");
        }
        if p.is_empty() {
            p.push('/');
        }
        p
    })
}

fn principal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"any": true}"#.to_owned()),
        prop::sample::select(CNS).prop_map(|cn| format!(r#"{{"cn": "{cn}"}}"#)),
        prop::sample::select(CNS).prop_map(|cn| format!(r#"{{"cn": "{cn}", "ou": "fleet"}}"#)),
        Just(r#"{"uri_san": "spiffe://t/sa/*"}"#.to_owned()),
        Just(r#"{"dns_san": "*.t"}"#.to_owned()),
    ]
}

fn rule(i: usize) -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec(principal(), 1..3),
        prop::collection::vec(path_pattern(), 1..3),
        prop::option::of(prop::sample::subsequence(vec!["GET", "HEAD", "POST", "DELETE"], 1..3)),
        any::<Option<bool>>(),
    )
        .prop_map(move |(allow, principals, paths, methods, head_with_get)| {
            let paths: Vec<String> = paths.iter().map(|p| format!("\"{p}\"")).collect();
            // head_with_get only where the validator takes it: deny rules listing GET but not HEAD.
            let head_with_get = match (&methods, head_with_get) {
                (Some(ms), Some(h)) if !allow && ms.contains(&"GET") && !ms.contains(&"HEAD") => format!(r#", "head_with_get": {h}"#),
                _ => String::new(),
            };
            let methods = match methods {
                Some(ms) => format!(r#", "methods": [{}]"#, ms.iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ")),
                None => String::new(),
            };
            format!(
                r#"{{"name": "r{i}", "action": "{}", "principals": [{}], "paths": [{}]{methods}{head_with_get}}}"#,
                if allow { "allow" } else { "deny" },
                principals.join(", "),
                paths.join(", ")
            )
        })
}

fn policy_json() -> impl Strategy<Value = String> {
    (any::<bool>(), any::<bool>(), 0usize..8, prop::sample::select(READINGS)).prop_flat_map(|(default_allow, dry_run, n, reading)| {
        let rules: Vec<_> = (0..n).map(rule).collect();
        rules.prop_map(move |rules| {
            format!(
                r#"{{"version": 1, "default_action": "{}", "mode": "{}", "path_reading": {reading}, "rules": [{}]}}"#,
                if default_allow { "allow" } else { "deny" },
                if dry_run { "dry_run" } else { "enforce" },
                rules.join(", ")
            )
        })
    })
}

fn identity() -> impl Strategy<Value = Option<Identity>> {
    prop::option::weighted(
        0.95,
        (
            prop::collection::vec(prop::sample::select(CNS), 0..3),
            any::<bool>(),
            prop::option::of(prop::sample::select(SEGMENTS)),
            prop::option::of(prop::sample::select(&["a.t", "b.a.t", "t", "a.t."][..])),
        )
            .prop_map(|(cns, fleet, sa, dns)| Identity {
                common_names: cns.into_iter().map(str::to_owned).collect(),
                organizational_units: if fleet { vec!["fleet".into()] } else { vec![] },
                uri_sans: sa.map(|s| vec![format!("spiffe://t/sa/{s}")]).unwrap_or_default(),
                dns_sans: dns.map(|d| vec![d.to_owned()]).unwrap_or_default(),
                ..Identity::default()
            }),
    )
}

fn request_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        8 => prop::sample::select(SEGMENTS).prop_map(str::to_owned),
        2 => prop::sample::select(&[
            "..", ".", "", "%61", "%2F", "a;b", "x%00", "a;jsessionid=1", "x.y.json", "ORDER", "%20a", "a.", "a::$DATA", "%23", "%C4%B1",
            "a%2Fb", "%EF%BD%81",
        ][..])
        .prop_map(str::to_owned),
    ];
    (prop::collection::vec(segment, 0..5), any::<bool>(), prop::option::of(Just("?q=/a"))).prop_map(|(segs, slash, q)| {
        let mut p = String::new();
        for s in &segs {
            p.push('/');
            p.push_str(s);
        }
        if p.is_empty() || slash {
            p.push('/');
        }
        if let Some(q) = q {
            p.push_str(q);
        }
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compiled_index_decides_like_the_naive_evaluator(
        src in policy_json(),
        requests in prop::collection::vec((identity(), prop::sample::select(&["GET", "HEAD", "POST", "DELETE", "get"][..]), request_path()), 1..20),
    ) {
        let policy = Policy::from_json(&src).unwrap();
        let compiled = CompiledPolicy::new(policy.clone());
        for (id, method, path) in &requests {
            let fast = compiled.decide(id.as_ref(), method, path);
            let slow = decide_naive(&policy, id.as_ref(), method, path);
            prop_assert_eq!(fast, slow, "policy {} request {:?} {} {}", src, id, method, path);
        }
    }

    #[test]
    fn rule_order_never_changes_a_decision(src in policy_json(), id in identity(), path in request_path()) {
        let policy = Policy::from_json(&src).unwrap();
        let mut reversed = policy.clone();
        reversed.rules.reverse();
        let a = CompiledPolicy::new(policy);
        let b = CompiledPolicy::new(reversed);
        prop_assert_eq!(a.decide(id.as_ref(), "GET", &path), b.decide(id.as_ref(), "GET", &path));
    }
}
