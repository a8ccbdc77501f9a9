//! `quorum trace`: print a scenario's run as Mermaid, JSON or text.

use clap::{Args, ValueEnum};
use quorum_scenarios as scenarios;

/// Arguments of `quorum trace`.
#[derive(Args, Debug, Clone)]
pub struct TraceArgs {
    /// The protocol the scenario runs: a check on `--scenario`, a filter on
    /// `--list`.
    #[arg(long, short)]
    pub protocol: Option<String>,
    /// The scenario (see `quorum trace --list`).
    #[arg(long, short, required_unless_present = "list")]
    pub scenario: Option<String>,
    /// Output format.
    #[arg(long, default_value = "mermaid")]
    pub format: Format,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
}

/// Trace formats.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Format {
    /// A Mermaid sequenceDiagram.
    Mermaid,
    /// JSON array of events.
    Json,
    /// One line per event.
    Text,
    /// The plain-words narration and its checks.
    Story,
    /// One self-contained HTML page that plays the run, with its narration
    /// beside the picture (the player of `quorum viz`).
    Html,
}

/// Runs `quorum trace`; returns the exit code.
pub fn run(args: TraceArgs) -> Result<i32, String> {
    crate::logs::init_sim_tracing();
    let fits = |s: &scenarios::Scenario| args.protocol.as_ref().is_none_or(|p| s.protocol == p || s.protocol == "all");
    if args.list {
        for s in scenarios::ALL.iter().filter(|s| fits(s)) {
            println!("{:<20} {:<12} {}", s.name, s.protocol, s.about);
        }
        return Ok(0);
    }
    let name = args.scenario.as_deref().unwrap_or_default();
    let scenario = scenarios::find(name).ok_or_else(|| {
        let names: Vec<&str> = scenarios::ALL.iter().map(|s| s.name).collect();
        format!("unknown scenario '{name}': choose one of {}", names.join(", "))
    })?;
    // A scenario that runs every protocol fits any --protocol.
    if let Some(protocol) = args.protocol.as_deref().filter(|_| !fits(scenario)) {
        let fitting: Vec<&str> = scenarios::ALL.iter().filter(|s| fits(s)).map(|s| s.name).collect();
        return Err(format!(
            "scenario '{}' runs {}, not {protocol}; scenarios for {protocol}: {}",
            scenario.name,
            scenario.protocol,
            if fitting.is_empty() { "none".to_string() } else { fitting.join(", ") }
        ));
    }
    let story = (scenario.run)();
    match args.format {
        Format::Mermaid => print!("{}", story.mermaid()),
        Format::Json => println!("{}", story.trace_json()),
        Format::Text => print!("{}", story.trace_text()),
        Format::Story => print!("{}", story.narration()),
        Format::Html => print!("{}", crate::viz::player_html(&story, scenario.protocol)),
    }
    Ok(i32::from(!story.passed()))
}
