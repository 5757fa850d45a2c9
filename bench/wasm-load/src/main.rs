//! Loads a policy the way the filter does ([`load_owned`]: the text freed
//! once the rules are validated) and prints the VM's linear memory before and
//! after, with the heap the engine asked for (a counting allocator). Linear
//! memory never shrinks, so "after" is the peak of the load, which a VM keeps
//! for life; Envoy logs the same figure as `vm_memory` in its load line.
//!
//! `run.mjs POLICY.json [staged]`: `staged` loads in steps (validate, free the
//! text, compile) and prints each, to see which step sets the peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mtls_authz_policy::load::load_owned;
use mtls_authz_policy::{CompiledPolicy, Policy};

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
    // grows and shrinks blocks in place, and the figure must be the filter's.
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

/// The VM's linear memory, in bytes.
fn linear() -> usize {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    return 0;
}

fn report(step: &str, start: usize, base: usize) {
    let live = LIVE.load(Ordering::Relaxed).saturating_sub(base);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    println!(
        "{step:>10}: linear memory {:.2} MiB (+{:.2} over the start), engine heap live {:.2} MiB, peak {:.2} MiB",
        mib(linear()),
        mib(linear() - start),
        mib(live),
        mib(peak)
    );
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: run.mjs POLICY.json [staged]");
        return std::process::ExitCode::from(2);
    };
    let staged = args.next().as_deref() == Some("staged");
    let start = linear();
    report("start", start, 0);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // The text counts from here, as the plugin configuration does in a VM.
    let base = LIVE.load(Ordering::Relaxed).saturating_sub(bytes.len());
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    report("text", start, base);
    let compiled = if staged {
        let policy =
            match std::str::from_utf8(&bytes).map_err(|e| e.to_string()).and_then(|t| Policy::from_json(t).map_err(|e| e.to_string())) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{path}: {e}");
                    return std::process::ExitCode::from(1);
                }
            };
        report("validated", start, base);
        drop(bytes);
        report("text freed", start, base);
        CompiledPolicy::new(policy)
    } else {
        match load_owned(&path, bytes) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return std::process::ExitCode::from(1);
            }
        }
    };
    report("loaded", start, base);
    println!("{} rules", compiled.policy().rules.len());
    std::process::ExitCode::SUCCESS
}
