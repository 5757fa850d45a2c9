//! Embeds the built playground (target/playground, made by
//! scripts/build-playground.sh) into the binary, for `mtls-authz playground`.
//!
//! The page's WebAssembly is built from this workspace for another target, so
//! it cannot be a Cargo dependency; build.sh builds it first. When it has not
//! been built (a fresh clone, `cargo test` alone), the CLI still builds and
//! `playground` serves a page that says how to build it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn files(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, base, out);
        } else if let Ok(rel) = path.strip_prefix(base) {
            out.push((rel.to_string_lossy().replace('\\', "/"), path.clone()));
        }
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=MTLS_AUTHZ_PLAYGROUND_DIR");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = env::var_os("MTLS_AUTHZ_PLAYGROUND_DIR").map(PathBuf::from).unwrap_or_else(|| manifest.join("../target/playground"));
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut found = Vec::new();
    files(&dir, &dir, &mut found);
    let built = found.iter().any(|(name, _)| name == "index.html") && found.iter().any(|(name, _)| name.ends_with(".wasm"));
    let mut code = format!("/// Whether the page was built when this binary was.\npub const BUILT: bool = {built};\n");
    code.push_str("/// Every file of the built page, by its path under the site root.\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    if built {
        for (name, path) in &found {
            let _ = writeln!(code, "    ({name:?}, include_bytes!({:?})),", path.display().to_string());
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_default()).join("playground_assets.rs");
    if let Err(e) = fs::write(&out, code) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
    }
}
