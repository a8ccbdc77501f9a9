//! Recovery time in the simulator: from the leader's crash to the first
//! commit under the new leader, over many seeds. A killed leader's sockets
//! close, so followers learn at once (`on_link_down`) and go LOOKING; a hung
//! leader is noticed only after `syncLimit`.

use quorum_core::{ClientId, Command, Duration, Instant, NodeId, Role};
use quorum_sim::{Sim, SimConfig};
use quorum_zab::{Zab, ZabConfig};

struct Recovery {
    /// Crash to a new established leader.
    elected: Duration,
    /// Crash to the first command of the new epoch committed on the new leader.
    committed: Duration,
}

fn measure(seed: u64, nodes: usize, hang: bool) -> Recovery {
    let mut cfg = SimConfig::new(nodes, seed);
    cfg.clients.count = 0;
    let mut sim = Sim::<Zab>::new(cfg, ZabConfig::default());
    assert!(sim.run_until(Duration::from_secs(2), |s| s.leader().is_some()));
    let old = sim.leader().unwrap();
    for seq in 1..=5 {
        sim.propose(old, Command::new(ClientId(1), seq, &b"warm"[..])).unwrap();
    }
    sim.run_for(Duration::from_millis(50 + seed % 50));
    let old_term = sim.status(old).unwrap().term;
    let crashed_at: Instant = sim.now();
    if hang {
        sim.freeze(old);
    } else {
        sim.crash(old);
    }
    let new_leader = |s: &Sim<Zab>| {
        s.members()
            .iter()
            .copied()
            .find(|m| *m != old && s.status(*m).is_some_and(|st| st.role == Role::Leader && st.term > old_term))
    };
    assert!(sim.run_until(Duration::from_secs(2), |s| new_leader(s).is_some()), "seed {seed}: no new leader");
    let leader: NodeId = new_leader(&sim).unwrap();
    let elected = sim.now().saturating_since(crashed_at);
    let target = sim.status(leader).unwrap().last_index + 1;
    sim.propose(leader, Command::new(ClientId(2), 1, &b"first"[..])).unwrap();
    assert!(sim.run_until(Duration::from_secs(1), |s| s.status(leader).unwrap().commit_index >= target));
    let committed = sim.now().saturating_since(crashed_at);
    assert!(sim.violations().is_empty(), "seed {seed}: {:?}", sim.violations());
    Recovery { elected, committed }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(label: &str, runs: &[Recovery]) -> (Duration, Duration) {
    let mut elected: Vec<Duration> = runs.iter().map(|r| r.elected).collect();
    let mut committed: Vec<Duration> = runs.iter().map(|r| r.committed).collect();
    elected.sort();
    committed.sort();
    eprintln!(
        "zab recovery, {label}, {} seeds: new leader p50 {} p99 {} max {}; first commit p50 {} p99 {} max {}",
        runs.len(),
        percentile(&elected, 0.5),
        percentile(&elected, 0.99),
        elected.last().unwrap(),
        percentile(&committed, 0.5),
        percentile(&committed, 0.99),
        committed.last().unwrap(),
    );
    (percentile(&committed, 0.5), percentile(&committed, 0.99))
}

#[test]
fn a_crashed_leader_is_replaced_and_commits_resume_within_tens_of_milliseconds() {
    let config = ZabConfig::default();
    for nodes in [3, 5] {
        let runs: Vec<Recovery> = (0..200).map(|seed| measure(seed, nodes, false)).collect();
        let (p50, p99) = report(&format!("{nodes} nodes, leader killed"), &runs);
        // Link-down is immediate; election costs a round of votes plus finalize_wait,
        // then discovery and sync cost two round trips and two fsyncs.
        assert!(p50 < config.finalize_wait + Duration::from_millis(20), "p50 {p50}");
        assert!(p99 < config.finalize_wait + Duration::from_millis(20), "p99 {p99}");
    }
}

#[test]
fn a_hung_leader_is_replaced_after_the_sync_limit() {
    let config = ZabConfig::default();
    let runs: Vec<Recovery> = (0..100).map(|seed| measure(seed, 3, true)).collect();
    let (p50, p99) = report("3 nodes, leader hung", &runs);
    assert!(p50 >= config.sync_limit(), "followers wait for syncLimit before giving up: {p50}");
    assert!(p99 < config.sync_limit() + config.tick * 3, "p99 {p99}");
}
