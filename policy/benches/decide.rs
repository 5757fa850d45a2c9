//! Decision cost against policy size: 10, 1,000 and 10,000 rules.
//!
//! Every policy has the same shape (one service per rule, its own path prefix,
//! plus a handful of wildcard and deny rules), so the only thing that changes
//! between sizes is the number of rules the index must not walk.
//!
//! Run: `cargo bench -p mtls-authz-policy --bench decide`. Compare the
//! `10000` and `10` medians of the same request kind: their ratio is the
//! scaling figure the README reports.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mtls_authz_policy::{CompiledPolicy, Identity};
use std::hint::black_box;

fn policy(rules: usize) -> CompiledPolicy {
    let mut out = Vec::with_capacity(rules);
    // Shared rules every size has: a deny on admin, a wildcard read rule.
    out.push(r#"{"name": "no-admin", "action": "deny", "principals": [{"any": true}], "paths": ["/admin/**"]}"#.to_owned());
    out.push(
        r#"{"name": "health", "action": "allow", "principals": [{"any": true}], "paths": ["/health"], "methods": ["GET"]}"#.to_owned(),
    );
    for i in 0..rules.saturating_sub(2) {
        out.push(format!(
            r#"{{"name": "svc-{i}", "action": "allow", "principals": [{{"uri_san": "spiffe://shop.test/ns/prod/sa/svc-{i}"}}, {{"cn": "svc-{i}"}}], "paths": ["/api/svc-{i}/items", "/api/svc-{i}/items/*/detail", "/api/svc-{i}/reports/**"], "methods": ["GET", "POST"]}}"#
        ));
    }
    let src = format!(r#"{{"version": 1, "default_action": "deny", "rules": [{}]}}"#, out.join(","));
    match CompiledPolicy::from_json(&src) {
        Ok(p) => p,
        Err(e) => unreachable!("benchmark policy is valid: {e}"),
    }
}

fn caller(i: usize) -> Identity {
    Identity {
        common_names: vec![format!("svc-{i}")],
        uri_sans: vec![format!("spiffe://shop.test/ns/prod/sa/svc-{i}")],
        ..Identity::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for size in [10usize, 1_000, 10_000] {
        let p = policy(size);
        let me = (size - 2) / 2;
        let id = caller(me);
        let allow_path = format!("/api/svc-{me}/items/42/detail?verbose=1");
        let other_path = format!("/api/svc-{}/items", (me + 1) % (size - 2));
        group.bench_with_input(BenchmarkId::new("allow-by-rule", size), &size, |b, _| {
            b.iter(|| black_box(p.decide(Some(black_box(&id)), black_box("GET"), black_box(&allow_path))))
        });
        group.bench_with_input(BenchmarkId::new("default-deny", size), &size, |b, _| {
            b.iter(|| black_box(p.decide(Some(black_box(&id)), black_box("GET"), black_box(&other_path))))
        });
        group.bench_with_input(BenchmarkId::new("deny-rule", size), &size, |b, _| {
            b.iter(|| black_box(p.decide(Some(black_box(&id)), black_box("GET"), black_box("/admin/users/1"))))
        });
        group.bench_with_input(BenchmarkId::new("rejected-path", size), &size, |b, _| {
            b.iter(|| black_box(p.decide(Some(black_box(&id)), black_box("GET"), black_box("/api/../admin"))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
