//! N decisions on a loaded policy, for counting instructions per decision:
//!
//! ```sh
//! cargo build --release -p mtls-authz-policy --example decide_loop
//! for n in 0 5000; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/decide_loop POLICY.json $n 2>&1 | grep Collected; done
//! ```
//!
//! (difference) / (2 × 5000) is the instructions per decision, exact and
//! independent of machine load. Each round decides the envoy/policy.json
//! request (`order-service`, `POST /api/payment/create`) and one five-segment
//! path that walks the generated rules' part of the trie
//! (`GET /api/svc-00042/items/7/detail`, bench/run.py's 10,000-rule policy).

use mtls_authz_policy::{CompiledPolicy, Identity};
fn main() {
    let mut a = std::env::args().skip(1);
    let Some(path) = a.next() else {
        eprintln!("usage: decide_loop POLICY.json N");
        std::process::exit(2);
    };
    let n: usize = a.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let p = match std::fs::read_to_string(&path).map(|src| CompiledPolicy::from_json(&src)) {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let id = Identity { common_names: vec!["order-service".into()], subject: "CN=order-service".into(), ..Identity::default() };
    let mut allowed = 0;
    for _ in 0..n {
        allowed += p.decide(Some(&id), "POST", "/api/payment/create").is_allowed() as usize;
        allowed += p.decide(Some(&id), "GET", "/api/svc-00042/items/7/detail").is_allowed() as usize;
    }
    println!("{allowed}");
}
