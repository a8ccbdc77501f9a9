//! Issue 12 item 8: messages from peers are input, not trusted state. A
//! malformed but decodable message is dropped and counted, never a panic.

use super::*;
use quorum_core::{ClientId, Command, Duration};
use quorum_sim::testkit::{Envelope, Net};

fn value(seq: u64) -> Payload {
    Payload::Command(Command::new(ClientId(1), seq, format!("c{seq}").into_bytes()))
}

fn deliver(net: &mut Net<Paxos>, from: u64, to: u64, msg: Message) {
    net.in_flight.push_back(Envelope { from: NodeId(from), to: NodeId(to), msg });
    let last = net.in_flight.len() - 1;
    net.deliver_at(last);
}

fn dropped(net: &Net<Paxos>, id: u64) -> u64 {
    net.node(NodeId(id)).unwrap().dropped_messages()
}

#[test]
fn malformed_peer_messages_are_dropped_and_counted_not_panicked_on() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 31);
    for seq in 1..=2 {
        net.propose(NodeId(1), Command::new(ClientId(1), seq, format!("c{seq}").into_bytes())).unwrap();
    }
    let done = |n: u64| move |net: &Net<Paxos>| net.nodes.iter().flatten().all(|x| x.learner().committed() >= n);
    assert!(net.run_until(Duration::from_secs(1), done(2)));
    let chosen_in = net.node(NodeId(1)).unwrap().learner().chosen(1).unwrap().0;
    let absurd = Ballot::new(u64::MAX, NodeId(3));
    let decided = |slot, ballot, value| Message::Decided { chosen: vec![Chosen { slot, ballot, value }], more: false };
    let messages: Vec<(Message, bool)> = vec![
        // Another value for a committed slot, and for one decided above a hole.
        (decided(1, chosen_in, value(9)), true),
        (decided(5, chosen_in, value(5)), false),
        (decided(5, chosen_in, value(9)), true),
        (decided(u64::MAX, chosen_in, value(9)), true),
        (decided(6, absurd, value(6)), true),
        (Message::Accept { slot: u64::MAX, ballot: chosen_in, value: value(9) }, true),
        (Message::Prepare { slot: u64::MAX, ballot: chosen_in }, true),
        (Message::Prepare { slot: 7, ballot: absurd }, true),
        (Message::Nack { slot: 3, ballot: chosen_in, promised: absurd }, true),
        (Message::Promise { slot: 3, ballot: Ballot::new(77, NodeId(3)), accepted: None }, false),
        (Message::Accepted { slot: 3, ballot: Ballot::new(77, NodeId(3)) }, false),
        (Message::CatchUp { from: u64::MAX }, true),
    ];
    for id in [1, 2] {
        for (msg, is_dropped) in messages.clone() {
            let before = dropped(&net, id);
            deliver(&mut net, 3, id, msg.clone());
            assert_eq!(dropped(&net, id) - before, u64::from(is_dropped), "n{id} given {msg:?}");
        }
    }
    // A second value in a ballot the acceptor already holds a value in.
    let b = Ballot::new(50, NodeId(3));
    deliver(&mut net, 3, 2, Message::Accept { slot: 8, ballot: b, value: value(8) });
    let before = dropped(&net, 2);
    deliver(&mut net, 3, 2, Message::Accept { slot: 8, ballot: b, value: value(9) });
    assert_eq!(dropped(&net, 2) - before, 1);
    assert_eq!(net.node(NodeId(2)).unwrap().acceptor().accepted(8).map(|a| a.value.clone()), Some(value(8)));
    // The cluster still works: slots 3 and 4 get commands, 5 keeps its value.
    net.in_flight.clear();
    for seq in 3..=4 {
        net.propose(NodeId(1), Command::new(ClientId(1), seq, format!("c{seq}").into_bytes())).unwrap();
    }
    assert!(net.run_until(Duration::from_secs(5), |net| net.node(NodeId(1)).unwrap().learner().committed() >= 5));
    net.assert_logs_agree();
    assert_eq!(net.node(NodeId(1)).unwrap().learner().chosen(5).map(|(_, v)| v.clone()), Some(value(5)));
}
