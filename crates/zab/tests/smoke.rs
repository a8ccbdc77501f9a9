use quorum_core::{ClientId, Command, Duration};
use quorum_sim::{check_seeds, Faults, Sim, SimConfig};
use quorum_zab::{Zab, ZabConfig};

#[test]
fn smoke_elects_and_commits() {
    let mut cfg = SimConfig::new(3, 1);
    cfg.clients.count = 0;
    let mut sim = Sim::<Zab>::new(cfg, ZabConfig::default());
    assert!(sim.run_until(Duration::from_secs(2), |s| s.leader().is_some()), "no leader");
    let l = sim.leader().unwrap();
    println!("leader {l:?} at {:?}", sim.now());
    sim.propose(l, Command::new(ClientId(1), 1, &b"x"[..])).unwrap();
    assert!(sim.run_until(Duration::from_secs(1), |s| s.members().iter().all(|m| s.applied_index(*m) >= 1)));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn smoke_sweep() {
    for faults in [Faults::None, Faults::Crash, Faults::Partition, Faults::All] {
        let s = check_seeds::<Zab>(&SimConfig::quick(0, faults), &ZabConfig::default(), 0..100);
        println!("{faults:?}: {s}");
    }
}
