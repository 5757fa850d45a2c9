//! How much memory and time a policy costs to load: `cargo run --release -p
//! mtls-authz-policy --example load -- POLICY.json [ROUNDS]`.
//!
//! Counts the heap the engine allocates (a counting global allocator): peak
//! during parse + validate + compile, and what stays live in the compiled
//! policy. This is what each Envoy Wasm VM pays for the policy, minus the Wasm
//! allocator's own overhead; `bench/README.md` sets it beside the RSS that
//! Envoy shows.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use mtls_authz_policy::CompiledPolicy;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: load POLICY.json [ROUNDS]");
        return std::process::ExitCode::from(2);
    };
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5).max(1);
    let src = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let start = Instant::now();
        let compiled = match CompiledPolicy::from_json(&src) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{path}: {e}");
                return std::process::ExitCode::from(1);
            }
        };
        let took = start.elapsed();
        let live = LIVE.load(Ordering::Relaxed) - before;
        let peak = PEAK.load(Ordering::Relaxed) - before;
        let model = {
            let before_model = LIVE.load(Ordering::Relaxed);
            let policy = compiled.policy().clone();
            let bytes = LIVE.load(Ordering::Relaxed) - before_model;
            drop(policy);
            bytes
        };
        times.push(took.as_secs_f64() * 1e3);
        println!(
            "{} rules: load {:.1} ms, live {:.2} MiB (the rules {:.2}, the index {:.2}), peak {:.2} MiB",
            compiled.policy().rules.len(),
            took.as_secs_f64() * 1e3,
            mib(live),
            mib(model),
            mib(live.saturating_sub(model)),
            mib(peak)
        );
        drop(compiled);
    }
    times.sort_by(f64::total_cmp);
    println!("median load {:.1} ms over {rounds} rounds (min {:.1}, max {:.1})", times[rounds / 2], times[0], times[rounds - 1]);
    std::process::ExitCode::SUCCESS
}
