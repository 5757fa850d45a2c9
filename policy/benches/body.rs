//! What reading a POST body for a `_method` override costs, by body kind and
//! size: `cargo bench -p mtls-authz-policy --bench body`. The filter pays this
//! once per held request (an allowed POST with a form, multipart or JSON
//! body); every other request pays nothing here. Bodies are typical shapes
//! without an override, so every byte is read.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mtls_authz_policy::overrides::{body_overrides_method, BodyFinding, BodyReadings};

const FORM: BodyReadings = BodyReadings { form: true, multipart: false, json: false };
const MULTIPART: BodyReadings = BodyReadings { form: false, multipart: true, json: false };
const JSON: BodyReadings = BodyReadings { form: false, multipart: false, json: true };

fn form(size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size + 32);
    let mut i = 0;
    while body.len() < size {
        body.extend_from_slice(format!("field{i}=value%20{i}&").as_bytes());
        i += 1;
    }
    body
}

fn multipart(size: usize) -> Vec<u8> {
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"amount\"\r\n\r\n10\r\n".to_vec();
    body.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n",
    );
    let mut line = 0;
    while body.len() < size {
        body.extend_from_slice(format!("line {line} of the uploaded file, with some text in it\r\n").as_bytes());
        line += 1;
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    body
}

fn json(size: usize) -> Vec<u8> {
    let mut body = b"{\"amount\": 10, \"items\": [".to_vec();
    let mut i = 0;
    while body.len() < size {
        body.extend_from_slice(format!("{{\"id\": {i}, \"name\": \"item {i}\", \"tags\": [\"a\", \"b\"]}},").as_bytes());
        i += 1;
    }
    body.extend_from_slice(b"{}]}");
    body
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("body");
    for size in [64usize, 1024, 16 * 1024, 256 * 1024] {
        for (kind, readings, body) in [("form", FORM, form(size)), ("multipart", MULTIPART, multipart(size)), ("json", JSON, json(size))] {
            assert_eq!(body_overrides_method(readings, &body), BodyFinding::Clean, "{kind} {size}");
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_with_input(BenchmarkId::new(kind, size), &body, |b, body| {
                b.iter(|| body_overrides_method(readings, black_box(body)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
