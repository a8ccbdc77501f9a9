//! The simulator queues a timer wake-up only when a node's deadline moves
//! earlier: a follower's election deadline, pushed later by every heartbeat
//! and append, must not leave one stale wake-up per reset in the queue (under
//! load that was tens of thousands of events, and every pop paid for them).
//! The timers must still fire on time: elections happen when a leader dies.

use quorum_core::Duration;
use quorum_raft::{Raft, RaftConfig};
use quorum_sim::{Faults, Sim, SimConfig};

#[test]
fn a_deadline_that_keeps_moving_later_keeps_a_few_wake_ups_queued_and_still_fires() {
    let mut config = SimConfig::quick(11, Faults::None);
    config.clients.count = 50;
    let nodes = config.nodes;
    let mut sim = Sim::<Raft>::new(config, RaftConfig::default());
    sim.start_workload();
    let mut most = 0;
    for _ in 0..200 {
        sim.run_for(Duration::from_millis(5));
        most = most.max(sim.timer_wakeups_queued());
    }
    println!("{nodes} nodes, at most {most} timer wake-ups queued over 1 s of load");
    // Each move earlier queues one more (the later ones wait out their
    // time), so a few per node; one per reset was 3,811 here.
    assert!(most <= 8 * nodes, "{most} wake-ups queued for {nodes} nodes");
    let leader = sim.leader().expect("a leader after 1 s without faults");
    sim.crash(leader);
    let elected = sim.run_until(Duration::from_secs(2), |s| s.leader().is_some_and(|l| l != leader));
    assert!(elected, "no election after the leader crashed: the followers' timers did not fire");
}
