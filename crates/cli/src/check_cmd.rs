//! `quorum check`: exhaustive, bounded model checking of one protocol.

use crate::protocols::{dispatch_with, Profile, WithProtocol};
use clap::{Args, ValueEnum};
use quorum_check::{explore, render, Bounds, Report, Search};

/// Arguments of `quorum check`.
#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Protocol to check.
    #[arg(long, short, value_parser = crate::protocols::any_protocol())]
    pub protocol: String,
    /// Cluster size.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Client commands that may be proposed, in all.
    #[arg(long, default_value_t = 2)]
    pub commands: u32,
    /// Crashes, in all (a crashed node may restart).
    #[arg(long, default_value_t = 1)]
    pub crashes: u32,
    /// Timer firings, in all (each moves time on).
    #[arg(long, default_value_t = 8)]
    pub timers: u32,
    /// Operator actions, in all: a leader asked to add a learner, promote
    /// one or remove a member, or the disk of a node that does not vote
    /// replaced (Raft, Multi-Paxos, Zab).
    #[arg(long, default_value_t = 0)]
    pub changes: u32,
    /// Nodes beyond `--nodes` that start outside the configuration, for the
    /// operator to add (needs `--changes`).
    #[arg(long, default_value_t = 0)]
    pub spares: u64,
    /// Do not expand states where a term, ballot round or epoch passes this.
    #[arg(long, default_value_t = 3)]
    pub max_term: u64,
    /// Do not expand paths longer than this.
    #[arg(long, default_value_t = 24)]
    pub depth: usize,
    /// Stop after this many distinct states.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_states: usize,
    /// Stop after this many seconds of wall time.
    #[arg(long)]
    pub max_seconds: Option<f64>,
    /// Protocol settings (caps, batch sizes, read path) as `quorum sim
    /// --profile` sets them; `tiny-caps` makes caps and batches small.
    #[arg(long, value_enum, default_value = "default")]
    pub profile: Profile,
    /// A protocol setting, `KEY=VALUE`, over the profile's (repeatable; the
    /// keys are `quorum node --set`'s): e.g. `catch_up_batch=1` brings a cap
    /// boundary within the few commands a model holds.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Put a fixed bug back (e.g. `vote-before-persisted` in raft), to watch
    /// the checker find it; only in a build with `--features planted-bugs`.
    #[arg(long)]
    pub planted: Option<String>,
    /// Breadth first (a shortest counterexample; memory grows with the
    /// widest level), depth first (one thread, little memory, deep states
    /// soon; the counterexample is the path it was on), or random walks to
    /// the depth bound (never exhaustive; deep at once; see `--seed`).
    #[arg(long, value_enum, default_value = "bfs")]
    pub search: SearchArg,
    /// Worker threads (default: one per core). With one, every run finds the
    /// same counterexample; with more, an equally short one may be found.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed of `--search random` (the same seed walks the same way).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `--search`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchArg {
    /// Breadth first.
    Bfs,
    /// Depth first.
    Dfs,
    /// Random walks.
    Random,
}

/// Runs `quorum check`; exit code 1 if a property is broken.
pub fn run(args: CheckArgs) -> Result<i32, String> {
    if !(1..=7).contains(&args.nodes) || args.nodes + args.spares > 7 {
        return Err("--nodes must be between 1 and 7, and --nodes plus --spares at most 7".into());
    }
    if args.changes > 0 && !crate::protocols::RECONFIGURABLE.contains(&args.protocol.as_str()) {
        let supported = crate::protocols::RECONFIGURABLE.join(", ");
        return Err(format!("--changes: {} has no membership changes ({supported} have)", args.protocol));
    }
    if args.spares > 0 && args.changes == 0 {
        return Err(
            "--spares: spare nodes wait outside the configuration until an operator adds them: give --changes too"
                .into(),
        );
    }
    if args.max_seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        return Err("--max-seconds must be a positive number of seconds".into());
    }
    let (protocol, planted) = (args.protocol.clone(), args.planted.clone());
    dispatch_with(&protocol, args.profile, planted.as_deref(), CheckJob(args))
}

struct CheckJob(CheckArgs);

impl WithProtocol for CheckJob {
    type Output = i32;
    fn run<P: quorum_check::Checkable>(self, mut config: P::Config) -> i32
    where
        P::Config: Sync + quorum_core::settings::Tunables,
    {
        let a = self.0;
        if let Err(e) = quorum_core::settings::apply_tunables(&mut config, &a.set, &[], |_| None) {
            eprintln!("error: {e}");
            return 2;
        }
        let bounds = Bounds {
            nodes: a.nodes,
            commands: a.commands,
            crashes: a.crashes,
            timers: a.timers,
            changes: a.changes,
            spares: a.spares,
            max_term: a.max_term,
            max_depth: a.depth,
            max_states: a.max_states,
            max_time: a.max_seconds.map(std::time::Duration::from_secs_f64),
            // Raft terms and Zab epochs name one leader; a Paxos ballot round
            // may be tried by several proposers, each with its own ballot.
            one_leader_per_term: matches!(P::NAME, "raft" | "zab"),
            search: match a.search {
                SearchArg::Bfs => Search::BreadthFirst,
                SearchArg::Dfs => Search::DepthFirst,
                SearchArg::Random => Search::RandomWalks,
            },
            seed: a.seed,
            threads: a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        };
        let operator = match (a.changes, a.spares) {
            (0, _) => String::new(),
            (c, 0) => format!(", {c} operator actions"),
            (c, s) => format!(" and {s} spare, {c} operator actions"),
        };
        println!(
            "checking {} with {} nodes{operator}, {} commands, {} crashes, {} timer firings, terms <= {}, depth <= {}, {}",
            P::NAME,
            a.nodes,
            a.commands,
            a.crashes,
            a.timers,
            a.max_term,
            a.depth,
            match bounds.search {
                Search::BreadthFirst => format!("breadth first, {} threads", bounds.threads),
                Search::DepthFirst => "depth first".to_string(),
                Search::RandomWalks => format!("random walks, seed {}", a.seed),
            }
        );
        if a.planted.is_some() || a.profile != Profile::Default || !a.set.is_empty() {
            let planted = a.planted.as_deref().map_or(String::new(), |b| format!(", planted bug {b}"));
            let profile = a.profile.to_possible_value().map_or(String::new(), |v| v.get_name().to_string());
            let sets = if a.set.is_empty() { String::new() } else { format!(" with {}", a.set.join(" ")) };
            println!("settings of profile {profile}{sets}{planted}");
        }
        let report = explore::<P>(config, &bounds, |r| {
            eprintln!("  ... {} states, depth {}, {:.0} states/s", r.states, r.depth, r.states_per_second());
        });
        print_report(&report);
        match &report.counterexample {
            Some(cx) => {
                println!("\n{}", render::steps(cx));
                println!("```mermaid\n{}```", render::mermaid(cx, a.nodes + a.spares));
                1
            }
            None => 0,
        }
    }
}

fn print_report(r: &Report) {
    println!("states       {}", r.states);
    println!("transitions  {}", r.transitions);
    println!("depth        {}", r.depth);
    println!("states/s     {:.0}", r.states_per_second());
    println!("wall time    {:.1} s", r.elapsed.as_secs_f64());
    println!("pruned       {} at the term bound, {} at the depth bound", r.pruned_by_term, r.at_depth_limit);
    let at = |d: Option<usize>| d.map_or("never".to_string(), |d| format!("first at depth {d}"));
    println!("sometimes    a leader: {}; a command applied: {}", at(r.first_leader_at), at(r.first_applied_at));
    match (&r.counterexample, r.exhausted) {
        (Some(cx), _) => println!("VIOLATION    {} ({} steps)", cx.violation.property, cx.steps.len()),
        (None, true) => println!("result       no violation within these bounds (every state expanded)"),
        (None, false) => println!(
            "result       no violation in the states explored (stopped by {})",
            r.stopped_by.unwrap_or("a limit")
        ),
    }
}
