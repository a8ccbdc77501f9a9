//! The link-down hint: a killed leader's connections close at once, so its
//! followers ask each other whether it is gone (`Suspect`) after a short
//! randomized delay, and start Phase 1 as soon as a majority agrees, instead
//! of waiting out an election timeout (100–200 ms by default). How fast that
//! is, for every protocol, is in the workspace's `tests/conformance.rs`; here,
//! what is Multi-Paxos's own: a spurious link-down (one connection reset
//! while the leader lives) must not depose a healthy leader, because the
//! followers that still hear it say no.

use quorum_core::{ClientId, Command, Duration, Effects, NodeId, Protocol};
use quorum_multipaxos::{Message, MultiPaxos, MultiPaxosConfig};
use quorum_sim::testkit::{Envelope, Net};

fn cmd(seq: u64) -> Command {
    Command::new(ClientId(1), seq, format!("cmd-{seq}").into_bytes())
}

fn leader_of(net: &Net<MultiPaxos>) -> Option<NodeId> {
    net.nodes.iter().flatten().find(|n| n.leading_ballot().is_some()).map(|n| n.status().id)
}

/// Runs the hand-driven network for `d`, dropping what `hold` picks, and
/// returns every message delivered.
fn run(net: &mut Net<MultiPaxos>, d: Duration, hold: impl Fn(&Envelope<Message>) -> bool) -> Vec<Envelope<Message>> {
    let end = net.now + d;
    let mut seen = Vec::new();
    loop {
        net.drop_where(&hold);
        if let Some(env) = net.in_flight.front().cloned() {
            net.deliver_at(0);
            seen.push(env);
            continue;
        }
        match net.next_timer() {
            Some(at) if at <= end => {
                net.fire_timers();
            }
            _ => break,
        }
    }
    net.now = end;
    seen
}

#[test]
fn a_spurious_link_down_on_one_follower_does_not_depose_a_healthy_leader() {
    for (nodes, seed) in [(3, 1), (3, 2), (5, 3), (5, 4)] {
        let mut net: Net<MultiPaxos> = Net::new(nodes, MultiPaxosConfig::default(), seed);
        assert!(net.run_until(Duration::from_secs(2), |net| leader_of(net).is_some()));
        run(&mut net, Duration::from_millis(300), |_| false);
        let leader = leader_of(&net).unwrap();
        let ballot = net.node(leader).unwrap().leading_ballot();
        let follower = NodeId(leader.0 % nodes + 1);
        // One connection resets; the leader is fine. Its heartbeats to the
        // follower are held back for a while, as a reconnect would.
        net.with_node(follower, |n, now, out: &mut Effects<Message>| n.on_link_down(now, leader, out));
        assert_eq!(net.node(follower).unwrap().status().leader, None, "the follower forgot the leader");
        let seen = run(&mut net, Duration::from_millis(60), |e| e.from == leader && e.to == follower);
        let asked = seen.iter().filter(|e| e.from == follower && matches!(e.msg, Message::Suspect { .. })).count();
        assert_eq!(asked as u64, nodes - 1, "{nodes} nodes: the follower asked its peers early");
        assert!(
            seen.iter().all(|e| !matches!(e.msg, Message::SuspectReply { agree: true, .. } | Message::Prepare { .. })),
            "{nodes} nodes: whoever hears the leader says no, and nobody starts Phase 1"
        );
        run(&mut net, Duration::from_secs(2), |_| false);
        assert_eq!(leader_of(&net), Some(leader), "{nodes} nodes: the leader keeps leading");
        assert_eq!(net.node(leader).unwrap().leading_ballot(), ballot, "{nodes} nodes: in the same ballot");
        assert_eq!(net.node(follower).unwrap().status().leader, Some(leader), "the follower follows again");
        net.propose(leader, cmd(1)).unwrap();
        assert!(net.run_until(Duration::from_millis(100), |net| net
            .nodes
            .iter()
            .flatten()
            .all(|n| n.learner().committed() >= 1)));
        net.assert_logs_agree();
    }
}
