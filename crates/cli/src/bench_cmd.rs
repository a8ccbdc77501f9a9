//! `quorum bench`: every protocol under one workload and one fault plan.

use crate::protocols::{dispatch, WithProtocol, NAMES};
use clap::{Args, ValueEnum};
use quorum_bench::{aggregate, FaultKind, FaultPlan, ProtocolResult, RealOptions, RunResult, Workload};
use quorum_core::Duration;
use quorum_sim::{KeyDistribution, Latency};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `quorum bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Protocols to compare (repeat the flag); default: all of them.
    #[arg(long = "protocol", short, value_parser = crate::protocols::any_protocol())]
    pub protocols: Vec<String>,
    /// Where to run: the deterministic simulator, or real processes.
    #[arg(long, default_value = "sim")]
    pub mode: Mode,
    /// Cluster size.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Closed-loop clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Open loop instead: requests per second (the simulator only).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Number of keys.
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Zipfian key choice with this exponent (default: uniform).
    #[arg(long)]
    pub zipf: Option<f64>,
    /// Bytes per value.
    #[arg(long, default_value_t = 128)]
    pub value_size: usize,
    /// Fraction of reads (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub read_ratio: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 6.0)]
    pub duration: f64,
    /// Seconds of warm-up not measured.
    #[arg(long, default_value_t = 0.5)]
    pub warmup: f64,
    /// The fault to inject: none, leader-crash, leader-freeze,
    /// leader-partition (simulator), follower-crash, reconfigure (real mode:
    /// membership changes under load) or chaos (real mode: members killed
    /// or frozen, one at a time unless --chaos-down says more, again and
    /// again, from --fault-at to --fault-until).
    #[arg(long, default_value = "leader-crash")]
    pub fault: FaultKind,
    /// With --fault chaos: the most members down (killed or frozen) at
    /// once. More than a minority stalls the cluster until they are back.
    #[arg(long, default_value_t = 1)]
    pub chaos_down: usize,
    /// Seconds into the load when the fault hits.
    #[arg(long, default_value_t = 2.0)]
    pub fault_at: f64,
    /// Seconds into the load when it is undone (restart, thaw, heal).
    #[arg(long, default_value_t = 4.0)]
    pub fault_until: f64,
    /// Simulator: one-way delay in ms (constant unless --latency-max-ms is given).
    #[arg(long, default_value_t = 1.0)]
    pub latency_ms: f64,
    /// Simulator: upper bound for a uniform one-way delay in ms.
    #[arg(long)]
    pub latency_max_ms: Option<f64>,
    /// Simulator: message loss probability.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Runs per protocol, each with its own seed; the report gives medians.
    #[arg(long, default_value_t = 1)]
    pub repeat: u64,
    /// First seed (the same seeds are used for every protocol).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write a Markdown report and SVG charts into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Real mode: production systems to measure beside the protocols, under
    /// the same load, client loop and fault plan (`etcd`, `zookeeper`,
    /// `redis`, comma-separated or repeated), each started from its Debian
    /// package; one not installed is named and left out.
    #[arg(long = "reference", value_delimiter = ',')]
    pub references: Vec<quorum_bench::Reference>,
    /// Real mode: start the quorum nodes with `--unsafe-no-fsync`, to see what
    /// the disk costs (never for data that matters).
    #[arg(long)]
    pub unsafe_no_fsync: bool,
    /// Real mode: start the quorum nodes with `--local-reads`, so that each
    /// serves GET from its own copy (fast, not linearizable: the history
    /// check says so when a read comes back stale).
    #[arg(long)]
    pub local_reads: bool,
}

/// Where the benchmark runs.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Virtual time in the deterministic simulator.
    Sim,
    /// Real processes over TCP on loopback with fsync.
    Real,
}

fn secs(s: f64) -> Duration {
    Duration::from_nanos((s * 1e9) as u64)
}

impl BenchArgs {
    fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 {
            return Err("--nodes must be at least 1".into());
        }
        if self.duration <= 0.0 || self.warmup < 0.0 || self.warmup >= self.duration {
            return Err("--duration must be positive and longer than --warmup".into());
        }
        if self.fault == FaultKind::Reconfigure {
            // The changes take what they take; --fault-until has no part.
            if !(self.fault_at >= 0.0 && self.fault_at < self.duration) {
                return Err("--fault reconfigure must start before the load ends: --fault-at < --duration".into());
            }
        } else if self.fault != FaultKind::None
            && !(self.fault_at < self.fault_until && self.fault_until <= self.duration)
        {
            return Err("the fault must satisfy --fault-at < --fault-until <= --duration".into());
        }
        if !(0.0..=1.0).contains(&self.read_ratio) || !(0.0..1.0).contains(&self.loss) {
            return Err("--read-ratio must be in 0..1 and --loss in 0..1".into());
        }
        if self.fault == FaultKind::Reconfigure && (self.mode == Mode::Sim || !self.references.is_empty()) {
            return Err("--fault reconfigure changes the membership of real quorum clusters: it needs --mode real \
                        and no --reference (in the simulator, `quorum sim --churn` changes membership)"
                .into());
        }
        if self.fault == FaultKind::Chaos && self.mode == Mode::Sim {
            return Err("--fault chaos kills and freezes real processes: it needs --mode real (in the simulator, \
                        `quorum sim --faults all` crashes, freezes and partitions nodes at random)"
                .into());
        }
        if self.chaos_down != 1 && (self.fault != FaultKind::Chaos || !(1..=self.nodes).contains(&self.chaos_down)) {
            return Err(format!(
                "--chaos-down {} needs --fault chaos and at most --nodes ({}) members",
                self.chaos_down, self.nodes
            ));
        }
        if self.mode == Mode::Real && self.rate.is_some() {
            return Err("--rate (open loop) runs in the simulator only: real mode drives closed-loop clients, \
                        as many as --clients"
                .into());
        }
        if self.mode == Mode::Sim && (!self.references.is_empty() || self.unsafe_no_fsync || self.local_reads) {
            return Err("--reference, --unsafe-no-fsync and --local-reads need --mode real".into());
        }
        if self.repeat == 0 {
            return Err("--repeat must be at least 1".into());
        }
        if self.rate.is_some_and(|r| r <= 0.0) || (self.rate.is_none() && self.clients == 0) {
            return Err("give a positive --rate or at least one --clients".into());
        }
        Ok(())
    }

    fn workload(&self) -> Workload {
        let min = Duration::from_nanos((self.latency_ms * 1e6) as u64);
        Workload {
            nodes: self.nodes,
            clients: self.clients,
            rate: self.rate,
            keys: self.keys,
            key_distribution: self.zipf.map_or(KeyDistribution::Uniform, KeyDistribution::Zipf),
            value_size: self.value_size,
            read_ratio: self.read_ratio,
            duration: secs(self.duration),
            warmup: secs(self.warmup),
            latency: match self.latency_max_ms {
                Some(max) => Latency::Uniform { min, max: Duration::from_nanos((max * 1e6) as u64) },
                None => Latency::Constant(min),
            },
            loss: self.loss,
            ..Workload::default()
        }
    }

    fn plan(&self) -> FaultPlan {
        FaultPlan {
            kind: self.fault,
            at: secs(self.fault_at),
            until: secs(self.fault_until),
            most_down: self.chaos_down,
        }
    }
}

/// A row of the comparison: one of our protocols, or a reference system.
enum Row {
    Protocol(String),
    Reference(quorum_bench::Reference),
}

impl Row {
    fn name(&self) -> &str {
        match self {
            Row::Protocol(p) => p,
            Row::Reference(r) => r.name(),
        }
    }
}

struct SimJob<'a> {
    workload: &'a Workload,
    plan: &'a FaultPlan,
    seed: u64,
}

impl WithProtocol for SimJob<'_> {
    type Output = RunResult;
    fn run<P: quorum_check::Checkable>(self, config: P::Config) -> RunResult
    where
        P::Config: Sync + quorum_core::settings::Tunables,
    {
        quorum_bench::run_sim::<P>(self.workload, self.plan, self.seed, config)
    }
}

/// Runs `quorum bench`; returns the exit code.
pub fn run(args: BenchArgs) -> Result<i32, String> {
    crate::logs::init_sim_tracing();
    args.validate()?;
    let protocols: Vec<String> =
        if args.protocols.is_empty() { NAMES.iter().map(|s| s.to_string()).collect() } else { args.protocols.clone() };
    let mut references = Vec::new();
    for r in &args.references {
        match r.installed() {
            Ok(()) if !references.contains(r) => references.push(*r),
            Ok(()) => {}
            Err(why) => eprintln!("{why}: its row is left out"),
        }
    }
    let rows: Vec<Row> = protocols
        .iter()
        .map(|p| Row::Protocol(p.clone()))
        .chain(references.iter().map(|r| Row::Reference(*r)))
        .collect();
    let workload = args.workload();
    let plan = args.plan();
    let total = rows.len() as u64 * args.repeat;
    let mut done = 0;
    let mut results: Vec<ProtocolResult> = Vec::new();
    for row in &rows {
        let name = row.name();
        let mut runs = Vec::new();
        for seed in args.seed..args.seed + args.repeat {
            if !args.json {
                eprint!("\r[{}/{total}] {name} seed {seed}          ", done + 1);
                let _ = std::io::stderr().flush();
            }
            let run = match (args.mode, row) {
                (Mode::Sim, _) => dispatch(name, SimJob { workload: &workload, plan: &plan, seed })?,
                (Mode::Real, Row::Protocol(name)) => {
                    if !NAMES.contains(&name.as_str()) {
                        return Err(format!("unknown protocol '{name}': choose one of {}", NAMES.join(", ")));
                    }
                    let opts = RealOptions {
                        exe: quorum_bench::current_exe()?,
                        protocol: name.clone(),
                        no_fsync: args.unsafe_no_fsync,
                        local_reads: args.local_reads,
                    };
                    quorum_bench::run_real(&workload, &plan, seed, &opts)?
                }
                (Mode::Real, Row::Reference(r)) => quorum_bench::run_reference(&workload, &plan, seed, *r)?,
            };
            runs.push(run);
            done += 1;
        }
        results.push(aggregate(runs));
    }
    if !args.json {
        eprintln!("\r{:60}", "");
    }
    if args.json {
        println!("{}", quorum_bench::json(&results));
    } else {
        let fault = if args.fault == FaultKind::None {
            "none".to_string()
        } else if args.fault == FaultKind::Reconfigure {
            format!("{} from {:.1}s on", args.fault, args.fault_at)
        } else if args.fault == FaultKind::Chaos {
            format!(
                "chaos from {:.1}s to {:.1}s ({} killed or frozen)",
                args.fault_at,
                args.fault_until,
                quorum_bench::at_a_time(args.chaos_down)
            )
        } else {
            format!("{} at {:.1}s undone at {:.1}s", args.fault, args.fault_at, args.fault_until)
        };
        println!(
            "{} nodes, {}, fault: {fault}, {} run(s) each, {} mode\n",
            args.nodes,
            match args.rate {
                Some(r) => format!("open loop {r:.0}/s"),
                None => format!("{} closed-loop clients", args.clients),
            },
            args.repeat,
            if args.mode == Mode::Sim { "sim" } else { "real" }
        );
        print!("{}", quorum_bench::table(&results));
        if args.fault == FaultKind::Chaos {
            for r in &results {
                if let Some(v) = &r.victim {
                    println!("{}: the fault hit {v}", r.protocol);
                }
            }
        }
        if let Some(changes) = quorum_bench::membership_table(&results) {
            println!("\nmembership changes under the load (the first run of each):\n{changes}");
        }
        if args.unsafe_no_fsync {
            println!("quorum nodes ran with --unsafe-no-fsync: their logs were never synced");
        }
        if args.local_reads {
            println!("quorum nodes ran with --local-reads: each served GET from its own copy");
        }
        for r in &references {
            println!("{}: {}", r.name(), r.settings());
        }
    }
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let md = quorum_bench::markdown(&results, &workload, &plan, &command);
        let path = dir.join("README.md");
        std::fs::write(&path, md).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let json = dir.join("results.json");
        std::fs::write(&json, quorum_bench::json(&results))
            .map_err(|e| format!("cannot write {}: {e}", json.display()))?;
        quorum_bench::charts::write_all(&results, dir).map_err(|e| format!("cannot draw charts: {e}"))?;
        if !args.json {
            println!("report written to {}", path.display());
        }
    }
    let violations: usize = results.iter().map(|r| r.violations).sum();
    Ok(i32::from(violations > 0))
}
