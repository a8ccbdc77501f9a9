use quorum_sim::{Faults, Sim, SimConfig};
use quorum_zab::{Zab, ZabConfig};

#[test]
fn replay() {
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let mut cfg = SimConfig::quick(seed, Faults::All);
    cfg.trace = true;
    let mut sim = Sim::<Zab>::new(cfg, ZabConfig::default());
    sim.start_workload();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sim.run_until_time(quorum_core::Instant::from_nanos(1_800_000_000));
    }));
    eprintln!("events {}", sim.events());
    if r.is_err() {
        let text = sim.trace().to_text();
        let lines: Vec<&str> = text.lines().collect();
        let n = lines.len();
        for l in &lines[n.saturating_sub(400)..] {
            if !l.contains("Ping") && !l.contains("request") && !l.contains("reply") {
                eprintln!("{l}");
            }
        }
    }
}
