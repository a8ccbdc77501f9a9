//! Where log lines go: real nodes stamp them with the wall clock; simulator
//! runs (`quorum sim`, `bench`, `trace`) with the seed and virtual time of
//! the event being run, and only when `RUST_LOG` asks for them.

use crate::node::LogFormat;
use std::fmt;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// Sends logs to stderr, filtered by `RUST_LOG` (default `info`), as text
/// or as one JSON object per line.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
}

/// Stamps a line with the simulated event's seed and virtual time.
struct SimTime;

impl FormatTime for SimTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        match quorum_sim::sim_clock() {
            Some((seed, at)) => write!(w, "seed {seed} t={:.3}ms", at.as_nanos() as f64 / 1e6),
            None => write!(w, "(no simulated event)"),
        }
    }
}

/// With `RUST_LOG` set (`RUST_LOG=quorum_raft=debug`), the protocols' log
/// lines on stderr, stamped with seed and virtual time; without it, nothing.
pub fn init_sim_tracing() {
    let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() else { return };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(SimTime)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
