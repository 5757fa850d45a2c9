//! How much memory and time a policy costs to load: `cargo run --release -p
//! mtls-authz-policy --example load -- POLICY.json [ROUNDS]`.
//!
//! Loads the policy the way the filter does ([`load_owned`]: the text is
//! freed once the rules are validated, before the index is built) and counts
//! the heap the engine allocates (a counting global allocator): the peak of
//! the load, the text included as in a VM, and what stays live
//! in the compiled policy. Built for wasm32-wasip1 by `bench/wasm-load` and
//! run under Node's WASI, it also prints the VM's linear memory, which never
//! shrinks: the figure Envoy logs as `vm_memory` and a VM keeps for life.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use mtls_authz_policy::load::load_owned;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(0, layout.size());
        }
        p
    }

    // Forwarded, not left to the default (alloc, copy, free): the allocator
    // grows and shrinks blocks in place, and the figures must be the filter's.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(layout.size(), new_size);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

fn grew(from: usize, to: usize) {
    LIVE.fetch_sub(from, Ordering::Relaxed);
    let now = LIVE.fetch_add(to, Ordering::Relaxed) + to;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The VM's linear memory in bytes, on wasm32.
fn linear_memory() -> Option<usize> {
    #[cfg(target_arch = "wasm32")]
    return Some(core::arch::wasm32::memory_size(0) * 65536);
    #[cfg(not(target_arch = "wasm32"))]
    return None;
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: load POLICY.json [ROUNDS]");
        return std::process::ExitCode::from(2);
    };
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5).max(1);
    // Before the text, which a VM's load counts too.
    let memory_before = linear_memory();
    let mut src = match std::fs::read(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut times = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        // The last round loads the text that was read, as a VM loads its one copy.
        let bytes = if round == rounds { std::mem::take(&mut src) } else { src.clone() };
        // The text counts towards the peak, as the plugin configuration does in a VM.
        let before = LIVE.load(Ordering::Relaxed).saturating_sub(bytes.capacity());
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        let start = Instant::now();
        let compiled = match load_owned(&path, bytes) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return std::process::ExitCode::from(1);
            }
        };
        let took = start.elapsed();
        let live = LIVE.load(Ordering::Relaxed).saturating_sub(before);
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
        // Read before the clone below grows it. Only a single round's is the
        // filter's: more rounds hold a second copy of the text.
        let memory = match (memory_before, linear_memory()) {
            (Some(a), Some(b)) if rounds == 1 => format!(", linear memory {:.2} MiB (+{:.2})", mib(b), mib(b.saturating_sub(a))),
            _ => String::new(),
        };
        let model = {
            let before_model = LIVE.load(Ordering::Relaxed);
            let policy = compiled.policy().clone();
            let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before_model);
            drop(policy);
            bytes
        };
        times.push(took.as_secs_f64() * 1e3);
        println!(
            "{} rules: load {:.1} ms, live {:.2} MiB (the rules {:.2}, the index {:.2}), peak {:.2} MiB with the text{memory}",
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
