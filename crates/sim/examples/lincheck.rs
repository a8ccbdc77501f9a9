//! Checks a client history for linearizability, as the simulator does at the
//! end of a run: each key by the register check where it decides, by the
//! search otherwise.
//!
//! ```text
//! quorum sim --protocol raft --profile high-load --seed 358 --history h.json
//! cargo run --release -p quorum-sim --example lincheck -- h.json [search|plain]
//! ```

use quorum_sim::lincheck::{check_with, Method};
use quorum_sim::Operation;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: lincheck HISTORY.json [auto|search|plain]");
        std::process::exit(2);
    };
    let method = match args.next().as_deref() {
        None | Some("auto") => Method::Auto,
        Some("search") => Method::Search,
        Some("plain") => Method::PlainSearch,
        Some(other) => {
            eprintln!("unknown method {other:?}: auto, search or plain");
            std::process::exit(2);
        }
    };
    let history: Vec<Operation> = match std::fs::read(&path).map_err(|e| e.to_string()).and_then(|bytes| {
        serde_json::from_slice(&bytes).map_err(|e| format!("not a history (a JSON array of operations): {e}"))
    }) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            std::process::exit(2);
        }
    };
    let started = std::time::Instant::now();
    let verdict = check_with(&history, method);
    let took = started.elapsed();
    match verdict {
        Ok(decided) => {
            println!(
                "linearizable: {} operations, {} keys by the register check, {} by the search, {:.1} ms",
                history.len(),
                decided.by_register,
                decided.by_search,
                took.as_secs_f64() * 1e3
            );
        }
        Err(e) => {
            println!("not shown linearizable ({:.1} ms): {e}", took.as_secs_f64() * 1e3);
            std::process::exit(1);
        }
    }
}
