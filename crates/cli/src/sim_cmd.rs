//! `quorum sim`: run many checked seeds, or one seed with its trace.

use crate::protocols::{dispatch_with, Profile, WithProtocol};
use clap::{Args, ValueEnum};
use quorum_core::Protocol;
use quorum_sim::{check_seeds_with, Faults, Sim, SimConfig, Summary};
use std::io::Write;

/// Arguments of `quorum sim`.
#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Protocol to run.
    #[arg(long, short, value_parser = crate::protocols::any_protocol())]
    pub protocol: String,
    /// Cluster size [default: 5, or 3 with --profile crash-storm or backlog].
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Number of seeds to run.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub seed_start: u64,
    /// Run one seed (with --trace to print it).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Faults to inject [default: all; crash with --profile crash-storm,
    /// partition with --profile backlog].
    #[arg(long)]
    pub faults: Option<FaultsArg>,
    /// Virtual seconds of load per seed.
    #[arg(long, default_value_t = 2.0)]
    pub duration: f64,
    /// Closed-loop clients [default: 4, or 200 with --profile high-load].
    #[arg(long)]
    pub clients: Option<usize>,
    /// Settings to sweep: protocol caps, load, read path, clocks (see docs/simulator.md).
    #[arg(long, value_enum, default_value = "default")]
    pub profile: Profile,
    /// Put a fixed bug back (e.g. `vote-before-persisted` in raft), to watch
    /// the checks catch it; only in a build with `--features planted-bugs`.
    #[arg(long)]
    pub planted: Option<String>,
    /// Fraction of reads sent as local reads (served by any node from its own
    /// state where the protocol allows it, e.g. Zab): checked for per-client
    /// session order instead of linearizability.
    #[arg(long, default_value_t = 0.0)]
    pub local_reads: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// With --seed: print the run's trace in this format.
    #[arg(long)]
    pub trace: Option<TraceFormat>,
    /// With --seed: write the clients' history (every operation, when it was
    /// invoked and answered, and what it returned) to this file as JSON, for
    /// `cargo run -p quorum-sim --example lincheck -- FILE` or your own tools.
    #[arg(long, value_name = "FILE")]
    pub history: Option<std::path::PathBuf>,
    /// Membership churn (raft): at random times remove a voter (sometimes
    /// the leader), add it back as a learner, promote it, or transfer leadership.
    #[arg(long)]
    pub churn: bool,
}

/// Fault sets on the command line.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum FaultsArg {
    /// No faults.
    None,
    /// Crashes and restarts.
    Crash,
    /// Partitions.
    Partition,
    /// Crashes, partitions, pauses, loss and duplication.
    All,
}

/// Trace formats.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum TraceFormat {
    /// Mermaid sequenceDiagram.
    Mermaid,
    /// JSON array of events.
    Json,
    /// One line per event.
    Text,
}

impl SimArgs {
    fn config(&self, seed: u64) -> SimConfig {
        let faults = match self.faults() {
            FaultsArg::None => Faults::None,
            FaultsArg::Crash => Faults::Crash,
            FaultsArg::Partition => Faults::Partition,
            FaultsArg::All => Faults::All,
        };
        let mut c = SimConfig::new(self.nodes(), seed).with_faults(faults);
        c.duration = quorum_core::Duration::from_nanos((self.duration * 1e9) as u64);
        c.clients.count = self.clients();
        c.clients.local_read_ratio = self.local_reads;
        match self.profile {
            Profile::Default | Profile::HighLoad => {}
            Profile::Counters => c.clients.incr_ratio = 0.4,
            Profile::SlowDisk => c.disk.fsync = quorum_core::Duration::from_millis(10),
            Profile::TinyCaps => c = c.with_small_frames(),
            Profile::Hostile => c = c.with_small_frames().with_corruption(0.03),
            Profile::LeaseFifo => {
                c.network.links = Some(quorum_core::LinkKind::Fifo);
                // Mostly reads, and clients that leave a stalled leader soon,
                // so reads reach both the old leader and the new one.
                c.clients.read_ratio = 0.6;
                c.clients.timeout = quorum_core::Duration::from_millis(20);
                // A quarter only read, and stay with a leader the
                // disturbance cuts off from the writers.
                c.clients.readers = c.clients.count / 4;
            }
            Profile::CrashStorm => {
                c.disk.fsync = quorum_core::Duration::from_millis(30);
                c.faults.mean_interval = quorum_core::Duration::from_millis(60);
                c.faults.max_outage = quorum_core::Duration::from_millis(5);
                c.network.latency = quorum_sim::Latency::Uniform {
                    min: quorum_core::Duration::from_micros(500),
                    max: quorum_core::Duration::from_millis(10),
                };
            }
            Profile::Backlog => {
                c.network.loss = 0.1;
                c.faults.mean_interval = quorum_core::Duration::from_millis(80);
            }
            Profile::Drift => {
                // Rates up to 0.5 % fast or slow, so two nodes differ by up to
                // 1 %: Raft's `max_clock_drift_ppm`, the tightest lease bound.
                c.clocks.max_drift_ppm = 5_000;
                c.clocks.max_offset = quorum_core::Duration::from_secs(30);
            }
        }
        c
    }

    /// The operators the arguments ask for: `--churn`, and the lease
    /// disturbance of `--profile lease-fifo`.
    fn install_operators<P: Protocol>(&self, sim: &mut Sim<P>) {
        if self.churn {
            crate::churn::install(sim);
        }
        if self.profile == Profile::LeaseFifo {
            let (min, max) = (quorum_core::Duration::from_millis(20), quorum_core::Duration::from_millis(200));
            let disturbance = quorum_sim::LeaseDisturbance::new(min, max).cutting_writers();
            sim.set_operator(quorum_core::Duration::from_millis(2), disturbance);
        }
    }

    fn clients(&self) -> usize {
        self.clients.unwrap_or(match self.profile {
            Profile::HighLoad => 200,
            Profile::Counters => 8,
            Profile::Backlog => 12,
            Profile::LeaseFifo => 16,
            _ => 4,
        })
    }

    fn nodes(&self) -> usize {
        self.nodes.unwrap_or(if matches!(self.profile, Profile::CrashStorm | Profile::Backlog) { 3 } else { 5 })
    }

    fn faults(&self) -> FaultsArg {
        self.faults.unwrap_or(match self.profile {
            Profile::CrashStorm => FaultsArg::Crash,
            Profile::Backlog => FaultsArg::Partition,
            _ => FaultsArg::All,
        })
    }
}

/// Runs `quorum sim`; returns the process exit code.
pub fn run(args: SimArgs) -> Result<i32, String> {
    crate::logs::init_sim_tracing();
    if args.history.is_some() && args.seed.is_none() {
        return Err("--history writes one run's history: give --seed too".into());
    }
    if args.nodes == Some(0) {
        return Err("--nodes must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&args.local_reads) {
        return Err("--local-reads must be a fraction between 0 and 1".into());
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        return Err("--duration must be a positive number of seconds".into());
    }
    if args.churn && !crate::protocols::RECONFIGURABLE.contains(&args.protocol.as_str()) {
        let supported = crate::protocols::RECONFIGURABLE.join(", ");
        return Err(format!("--churn changes membership, supported for: {supported}"));
    }
    if args.churn && args.profile == Profile::LeaseFifo {
        // Both act through the simulator's one operator; the disturbance would silently replace the churn.
        return Err("--churn cannot run with --profile lease-fifo: its lease disturbance is the run's operator".into());
    }
    if !args.profile.applies_to(&args.protocol) {
        return Err(format!("--profile {} does not apply to {}", args.profile.name(), args.protocol));
    }
    let protocol = args.protocol.clone();
    let planted = args.planted.clone();
    dispatch_with(&protocol, args.profile, planted.as_deref(), SimJob(args))
}

struct SimJob(SimArgs);

impl WithProtocol for SimJob {
    type Output = i32;
    fn run<P: quorum_check::Checkable>(self, config: P::Config) -> i32
    where
        P::Config: Sync + quorum_core::settings::Tunables,
    {
        match self.0.seed {
            Some(seed) => one_seed::<P>(&self.0, config, seed),
            None => many_seeds::<P>(&self.0, config),
        }
    }
}

fn replay_command(args: &SimArgs, seed: u64) -> String {
    format!(
        "quorum sim --protocol {}{}{} --nodes {} --faults {:?} --duration {} --clients {}{}{} --seed {seed} --trace text",
        args.protocol,
        args.planted.as_ref().map_or(String::new(), |b| format!(" --planted {b}")),
        if args.profile == Profile::Default { String::new() } else { format!(" --profile {}", args.profile.name()) },
        args.nodes(),
        args.faults(),
        args.duration,
        args.clients(),
        if args.local_reads > 0.0 { format!(" --local-reads {}", args.local_reads) } else { String::new() },
        if args.churn { " --churn" } else { "" }
    )
    .replace("--faults None", "--faults none")
    .replace("--faults Crash", "--faults crash")
    .replace("--faults Partition", "--faults partition")
    .replace("--faults All", "--faults all")
}

fn one_seed<P: Protocol>(args: &SimArgs, protocol: P::Config, seed: u64) -> i32 {
    let mut config = args.config(seed);
    config.trace = args.trace.is_some();
    let nodes = config.nodes;
    let mut sim = Sim::<P>::new(config, protocol);
    args.install_operators(&mut sim);
    let report = sim.run();
    if let Some(path) = &args.history {
        let written = serde_json::to_vec(&report.history)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("error: cannot write the history to {}: {e}", path.display());
            return 2;
        }
    }
    let trace = &report.trace;
    match args.trace {
        Some(TraceFormat::Mermaid) => print!("{}", trace.to_mermaid(nodes)),
        Some(TraceFormat::Json) => print!("{}", trace.to_json()),
        Some(TraceFormat::Text) => print!("{}", trace.to_text()),
        None => {}
    }
    let summary = {
        let mut s = Summary::default();
        s.add(&report);
        s.wall = report.wall;
        s
    };
    if args.json {
        println!(
            "{}",
            json_summary(&args.protocol, args.profile, args.planted.as_deref(), &summary, Some(report.trace_hash))
        );
    } else {
        eprintln!("{}: seed {seed}: {summary}", args.protocol);
        eprintln!("trace hash {:016x}", report.trace_hash);
    }
    i32::from(!report.violations.is_empty())
}

fn many_seeds<P: Protocol>(args: &SimArgs, protocol: P::Config) -> i32
where
    P::Config: Sync,
{
    let seeds = args.seed_start..args.seed_start + args.seeds;
    let total = args.seeds;
    let show_progress = !args.json && total >= 20;
    let protocol_name = &args.protocol;
    let setup = |sim: &mut Sim<P>| args.install_operators(sim);
    let summary = check_seeds_with::<P>(&args.config(0), &protocol, seeds, setup, |done| {
        if show_progress && (done % (total / 20).max(1) == 0 || done == total) {
            eprint!("\r{}: {done}/{total} seeds", protocol_name);
            let _ = std::io::stderr().flush();
        }
    });
    if show_progress {
        eprintln!();
    }
    if args.json {
        println!("{}", json_summary(&args.protocol, args.profile, args.planted.as_deref(), &summary, None));
    } else {
        let secs = summary.wall.as_secs_f64();
        println!("protocol     {}", args.protocol);
        println!("seeds        {} (from {})", summary.seeds, args.seed_start);
        println!("profile      {}", args.profile.name());
        println!("faults       {:?} on {} nodes", args.faults(), args.nodes());
        println!("ops ok       {}", summary.ops_ok);
        println!("unanswered   {} ({} given up by their clients)", summary.ops_unknown, summary.given_up);
        if summary.local_reads > 0 {
            println!("local reads  {} (checked for session order, not linearizability)", summary.local_reads);
        }
        println!("events       {} ({:.2} M/s)", summary.events, summary.events as f64 / secs / 1e6);
        if args.churn {
            println!("membership   {} changes committed", summary.config_changes);
            println!("wiped disks  {} (nodes that did not vote, joining again empty)", summary.wipes);
        }
        if summary.torn_tails > 0 {
            println!("torn tails   {} crashes kept part of their unsynced writes", summary.torn_tails);
        }
        if summary.oversized > 0 {
            println!("oversized    {} messages over the frame limit (each lost, its link broken)", summary.oversized);
        }
        println!("violations   {}", summary.violation_count());
        if let Some((seed, wall)) = summary.slowest {
            println!("slowest seed {seed} ({:.1} ms)", wall.as_secs_f64() * 1e3);
        }
        println!("wall time    {secs:.1} s");
        for fail in &summary.failures {
            println!("\nFAILED seed {}:", fail.seed);
            for v in fail.violations.iter().take(5) {
                println!("  {v}");
            }
            println!("  replay: {}", replay_command(args, fail.seed));
        }
    }
    i32::from(!summary.failures.is_empty())
}

fn json_summary(
    protocol: &str,
    profile: Profile,
    planted: Option<&str>,
    s: &Summary,
    trace_hash: Option<u64>,
) -> String {
    let failures: Vec<_> = s
        .failures
        .iter()
        .map(|f| serde_json::json!({"seed": f.seed, "violations": f.violations.iter().map(|v| v.to_string()).collect::<Vec<_>>()}))
        .collect();
    let mut v = serde_json::json!({
        "protocol": protocol,
        "profile": profile.name(),
        "planted": planted,
        "seeds": s.seeds,
        "ops_ok": s.ops_ok,
        "ops_unanswered": s.ops_unknown,
        "local_reads": s.local_reads,
        "events": s.events,
        "violations": s.violation_count(),
        "membership_changes": s.config_changes,
        "torn_tails": s.torn_tails,
        "wiped_disks": s.wipes,
        "given_up": s.given_up,
        "oversized": s.oversized,
        "failures": failures,
        "wall_s": s.wall.as_secs_f64(),
    });
    if let Some(h) = trace_hash {
        v["trace_hash"] = serde_json::json!(format!("{h:016x}"));
    }
    v.to_string()
}
