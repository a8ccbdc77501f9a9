//! Faults aimed at one link or one disk (`Sim::set_link_loss`,
//! `Sim::set_disk_delay`, as `quorum viz` sets them): a lossy link loses
//! only its own messages, and a slow disk delays what waits for it.

use quorum_core::{Duration, KvOp, LinkKind, NodeId};
use quorum_sim::baseline::PrimaryBackup;
use quorum_sim::{Sim, SimConfig, What};

fn scripted(links: LinkKind) -> SimConfig {
    let mut c = SimConfig::new(3, 11);
    c.clients.count = 0;
    c.trace = true;
    c.network.links = Some(links);
    c
}

fn put(k: u64) -> KvOp {
    KvOp::Put { key: format!("k{k}").into_bytes().into(), value: b"v".to_vec().into() }
}

#[test]
fn a_lossy_link_loses_its_own_messages_and_no_others() {
    let mut sim = Sim::<PrimaryBackup>::new(scripted(LinkKind::Datagram), Default::default());
    sim.run_for(Duration::from_millis(100));
    sim.set_link_loss(NodeId(1), NodeId(2), 1.0);
    assert_eq!((sim.link_loss(NodeId(2), NodeId(1)), sim.link_loss(NodeId(1), NodeId(3))), (1.0, 0.0));
    let from = sim.trace().events().len();
    let set_at = sim.now().as_nanos();
    for k in 0..20 {
        sim.submit(NodeId(1), put(k), false);
    }
    sim.run_for(Duration::from_millis(300));
    let events = &sim.trace().events()[from..];
    let pair = |a: u64, b: u64| (a, b) == (1, 2) || (a, b) == (2, 1);
    let lost: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|e| match &e.what {
            What::Drop { from, to, reason, .. } if reason == "lost" => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert!(!lost.is_empty(), "nothing lost on a link that loses everything");
    assert!(lost.iter().all(|(a, b)| pair(*a, *b)), "lost elsewhere: {lost:?}");
    // Sent after the loss was set (what was already on its way still arrives).
    let delivered = |a: u64, b: u64| {
        events.iter().any(
            |e| matches!(e.what, What::Deliver { from, to, sent_ns, .. } if (from, to) == (a, b) && sent_ns >= set_at),
        )
    };
    assert!(!delivered(1, 2) && !delivered(2, 1), "the lossy link delivered");
    assert!(delivered(1, 3) && delivered(3, 1), "the other links carried nothing");

    sim.set_link_loss(NodeId(2), NodeId(1), 0.0);
    let from = sim.trace().events().len();
    sim.run_for(Duration::from_millis(300));
    let healed = &sim.trace().events()[from..];
    assert!(healed.iter().any(|e| matches!(e.what, What::Deliver { from: 1, to: 2, .. })));
}

#[test]
fn healing_one_link_leaves_the_others_cut() {
    let mut sim = Sim::<PrimaryBackup>::new(scripted(LinkKind::Datagram), Default::default());
    sim.partition(&[&[NodeId(1)]]);
    sim.set_link_loss(NodeId(2), NodeId(3), 0.5);
    sim.heal_link(NodeId(2), NodeId(1));
    assert!(!sim.is_cut(NodeId(1), NodeId(2)) && !sim.is_cut(NodeId(2), NodeId(1)));
    assert!(sim.is_cut(NodeId(1), NodeId(3)) && sim.is_cut(NodeId(3), NodeId(1)));
    assert_eq!(sim.link_loss(NodeId(3), NodeId(2)), 0.5);
    sim.heal_link(NodeId(3), NodeId(2));
    assert_eq!(sim.link_loss(NodeId(2), NodeId(3)), 0.0);
    let healed: Vec<String> = sim
        .trace()
        .events()
        .iter()
        .filter_map(|e| match &e.what {
            What::Partition { cut } if cut.ends_with("healed") => Some(cut.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(healed, ["link 2-1 healed", "link 3-2 healed"]);
}

/// How long the first write through node 1 takes, from request to answer.
fn write_latency(disk_delay: Duration) -> Duration {
    let mut sim = Sim::<PrimaryBackup>::new(scripted(LinkKind::Fifo), Default::default());
    sim.run_for(Duration::from_millis(100));
    for id in [1, 2, 3] {
        sim.set_disk_delay(NodeId(id), disk_delay);
    }
    assert_eq!(sim.disk_delay(NodeId(3)), disk_delay);
    let from = sim.trace().events().len();
    sim.submit(NodeId(1), put(1), false);
    sim.run_for(Duration::from_millis(500));
    let events = &sim.trace().events()[from..];
    let at = |f: &dyn Fn(&What) -> bool| events.iter().find(|e| f(&e.what)).map(|e| e.at_ns).unwrap();
    let asked = at(&|w| matches!(w, What::Request { .. }));
    let answered = at(&|w| matches!(w, What::Reply { result, .. } if result == "ok"));
    Duration::from_nanos(answered - asked)
}

#[test]
fn a_slow_disk_delays_every_write_by_its_fsync() {
    let normal = write_latency(Duration::ZERO);
    let slow = write_latency(Duration::from_millis(30));
    assert!(slow >= normal + Duration::from_millis(30), "normal {normal}, with 30 ms fsyncs {slow}");
}
