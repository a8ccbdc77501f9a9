//! `quorum trace`: print a scenario's run as Mermaid, JSON or text.

use clap::{Args, ValueEnum};
use quorum::scenarios;

/// Arguments of `quorum trace`.
#[derive(Args, Debug, Clone)]
pub struct TraceArgs {
    /// The protocol the scenario runs.
    #[arg(long, short)]
    pub protocol: String,
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
}

/// Runs `quorum trace`; returns the exit code.
pub fn run(args: TraceArgs) -> Result<i32, String> {
    if args.list {
        for s in scenarios::ALL {
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
    if scenario.protocol != args.protocol && scenario.protocol != "all" {
        let fits: Vec<&str> = scenarios::ALL
            .iter()
            .filter(|s| s.protocol == args.protocol || s.protocol == "all")
            .map(|s| s.name)
            .collect();
        return Err(format!(
            "scenario '{}' runs {}, not {}; scenarios for {}: {}",
            scenario.name,
            scenario.protocol,
            args.protocol,
            args.protocol,
            if fits.is_empty() { "none".to_string() } else { fits.join(", ") }
        ));
    }
    let story = (scenario.run)();
    match args.format {
        Format::Mermaid => print!("{}", story.mermaid()),
        Format::Json => println!("{}", story.trace_json()),
        Format::Text => print!("{}", story.trace_text()),
        Format::Story => print!("{}", story.narration()),
    }
    Ok(i32::from(!story.passed()))
}
