//! Tests that drive Basic Paxos nodes directly on the hand-driven network,
//! each named after the property of "Paxos Made Simple" it checks.

use super::*;
use quorum_core::{ClientId, Command, Duration};
use quorum_sim::testkit::{Envelope, Net};

fn cmd(client: u64, seq: u64) -> Command {
    Command::new(ClientId(client), seq, format!("c{client}-{seq}").into_bytes())
}

fn value(client: u64, seq: u64) -> Payload {
    Payload::Command(cmd(client, seq))
}

fn committed_values(net: &Net<Paxos>, id: u64) -> Vec<Payload> {
    net.committed[(id - 1) as usize].iter().map(|e| e.payload.clone()).collect()
}

fn all_committed(_net: &Net<Paxos>, n: usize) -> impl Fn(&Net<Paxos>) -> bool {
    move |net| net.nodes.iter().flatten().all(|node| node.learner().committed() as usize >= n)
}

fn is_phase1(env: &Envelope<Message>) -> bool {
    matches!(env.msg, Message::Prepare { .. } | Message::Promise { .. } | Message::Nack { .. })
}

#[test]
fn one_proposer_gets_its_value_chosen_in_two_round_trips() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 1);
    net.propose(NodeId(1), cmd(1, 1)).unwrap();
    assert!(net.run_until(Duration::from_secs(1), all_committed(&net, 1)));
    for id in 1..=3 {
        assert_eq!(committed_values(&net, id), vec![value(1, 1)]);
    }
    // Prepare and Promise with each peer, Accept and Accepted, then Decided: 2 x 5.
    assert_eq!(net.delivered, 10);
    assert_eq!(net.now, Instant::ZERO, "no timer was needed");
}

#[test]
fn any_node_proposes_and_commands_fill_slots_in_order() {
    let mut net: Net<Paxos> = Net::new(5, PaxosConfig::default(), 2);
    for seq in 1..=3 {
        for id in 1..=5 {
            net.propose(NodeId(id), cmd(id, seq)).unwrap();
        }
    }
    assert!(net.run_until(Duration::from_secs(5), all_committed(&net, 15)));
    net.assert_logs_agree();
    let mut log = committed_values(&net, 1);
    assert_eq!(log.len(), 15);
    log.sort_by_key(|v| format!("{v:?}"));
    log.dedup();
    assert_eq!(log.len(), 15, "every command committed exactly once");
}

#[test]
fn competing_proposers_converge_on_one_value_per_slot() {
    for seed in 0..50 {
        let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), seed);
        net.propose(NodeId(1), cmd(1, 1)).unwrap();
        net.propose(NodeId(2), cmd(2, 1)).unwrap();
        net.propose(NodeId(3), cmd(3, 1)).unwrap();
        // Shuffle delivery: always deliver a pseudo-random in-flight message.
        let mut rng = Rng::new(seed);
        let mut steps = 0;
        while !all_committed(&net, 3)(&net) {
            steps += 1;
            assert!(steps < 100_000, "seed {seed}: no progress");
            if net.in_flight.is_empty() {
                assert!(net.fire_timers(), "seed {seed}: stuck with nothing to do");
            } else {
                let i = rng.index(net.in_flight.len());
                net.deliver_at(i);
            }
        }
        net.assert_logs_agree();
        let mut log = committed_values(&net, 1);
        log.sort_by_key(|v| format!("{v:?}"));
        assert_eq!(log, vec![value(1, 1), value(2, 1), value(3, 1)], "seed {seed}");
    }
}

/// Node 1 gets `v` accepted by itself and node 2 only (2 of 5), then crashes.
fn minority_accepts_then_proposer_crashes(net: &mut Net<Paxos>) {
    net.propose(NodeId(1), cmd(1, 1)).unwrap();
    while net.deliver_first(is_phase1) {}
    assert!(net.deliver_first(|e| e.to == NodeId(2) && matches!(e.msg, Message::Accept { .. })));
    net.crash(NodeId(1));
    net.drop_where(|_| true);
}

#[test]
fn a_value_accepted_by_a_minority_before_a_crash_is_kept_by_the_next_ballot() {
    let mut net: Net<Paxos> = Net::new(5, PaxosConfig::default(), 3);
    minority_accepts_then_proposer_crashes(&mut net);
    // With node 5 down too, every majority includes node 2: the next proposer
    // hears of v and cannot rule out that it was chosen (by {1, 2, 5}, for all
    // it knows), so P2c makes it propose v.
    net.crash(NodeId(5));
    net.propose(NodeId(3), cmd(3, 1)).unwrap();
    let live = [2, 3, 4];
    let done = net.run_until(Duration::from_secs(2), |net| {
        live.iter().all(|&id| net.node(NodeId(id)).unwrap().learner().committed() >= 2)
    });
    assert!(done, "the hole and the new command are committed");
    for id in live {
        assert_eq!(committed_values(&net, id), vec![value(1, 1), value(3, 1)], "node {id}");
    }
}

#[test]
fn a_minority_value_no_majority_reports_was_never_chosen_and_may_be_replaced() {
    let mut net: Net<Paxos> = Net::new(5, PaxosConfig::default(), 3);
    minority_accepts_then_proposer_crashes(&mut net);
    // With node 2 down, the next majority is {3, 4, 5}: nobody reports v, which
    // therefore was not chosen (a majority without it exists), and the hole is
    // filled with a no-op.
    net.crash(NodeId(2));
    net.propose(NodeId(3), cmd(3, 1)).unwrap();
    let live = [3, 4, 5];
    let done = net.run_until(Duration::from_secs(2), |net| {
        live.iter().all(|&id| net.node(NodeId(id)).unwrap().learner().committed() >= 2)
    });
    assert!(done, "the hole and the new command are committed");
    for id in live {
        assert_eq!(committed_values(&net, id), vec![Payload::Noop, value(3, 1)], "node {id}");
    }
}

#[test]
fn a_value_chosen_then_every_acceptor_but_one_crashes_survives_restart() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 4);
    net.propose(NodeId(1), cmd(1, 1)).unwrap();
    assert!(net.run_until(Duration::from_secs(1), all_committed(&net, 1)));
    for id in 1..=3 {
        net.crash(NodeId(id));
    }
    for id in 1..=3 {
        net.restart(NodeId(id));
    }
    net.propose(NodeId(2), cmd(2, 1)).unwrap();
    assert!(net.run_until(Duration::from_secs(2), all_committed(&net, 2)));
    for id in 1..=3 {
        assert_eq!(committed_values(&net, id), vec![value(1, 1), value(2, 1)]);
    }
}

/// Delivers Phase 1 traffic before any Phase 2 traffic: each proposer's
/// Prepare overtakes the other's Accepts ("Paxos Made Simple" §2.4).
fn run_dueling(net: &mut Net<Paxos>, max_steps: usize) -> bool {
    net.propose(NodeId(1), cmd(1, 1)).unwrap();
    net.propose(NodeId(2), cmd(2, 1)).unwrap();
    for _ in 0..max_steps {
        if net.nodes.iter().flatten().any(|n| n.learner().committed() >= 1) {
            return true;
        }
        if net.deliver_first(is_phase1) || net.deliver_at(0) {
            continue;
        }
        if !net.fire_timers() {
            return false;
        }
    }
    false
}

#[test]
fn dueling_proposers_livelock_without_backoff() {
    let config = PaxosConfig::default().with(|c| c.backoff = false);
    let mut net: Net<Paxos> = Net::new(3, config, 5);
    assert!(!run_dueling(&mut net, 20_000), "nothing may be chosen under this schedule");
    let round = net.node(NodeId(1)).unwrap().status().term;
    assert!(round > 1_000, "ballots keep rising (round {round})");
    assert_eq!(net.now, Instant::ZERO, "no timer ever fired: the proposers preempt each other forever");
}

#[test]
fn dueling_proposers_terminate_with_randomized_backoff() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 5);
    assert!(run_dueling(&mut net, 20_000), "backoff lets one proposer finish");
    assert!(net.run_until(Duration::from_secs(2), all_committed(&net, 2)));
    net.assert_logs_agree();
}

#[test]
fn an_acceptor_refuses_a_lower_ballot_and_names_its_promise() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 6);
    let high = Ballot::new(7, NodeId(3));
    let low = Ballot::new(2, NodeId(1));
    net.with_node(NodeId(2), |node, now, out| {
        node.on_message(now, NodeId(3), Message::Prepare { slot: 1, ballot: high }, out)
    });
    net.in_flight.clear();
    net.with_node(NodeId(2), |node, now, out| {
        node.on_message(now, NodeId(1), Message::Accept { slot: 1, ballot: low, value: Payload::Noop }, out)
    });
    let reply = net.in_flight.pop_front().unwrap();
    assert_eq!(reply.msg, Message::Nack { slot: 1, ballot: low, promised: high });
}

#[test]
fn a_promise_leaves_only_after_the_acceptor_wrote_it() {
    let config = PaxosConfig::default();
    let stored = Default::default();
    let init = Init { stored, ..Init::first_start(NodeId(2), 3, config) };
    let mut node = Paxos::new(init).expect("a node starts");
    let mut out = Effects::new();
    node.on_message(
        Instant::ZERO,
        NodeId(1),
        Message::Prepare { slot: 1, ballot: Ballot::new(1, NodeId(1)) },
        &mut out,
    );
    let effects = out.as_slice();
    assert!(matches!(effects[0], quorum_core::Effect::Persist(_)));
    assert!(matches!(effects[1], quorum_core::Effect::SendDurable { to: NodeId(1), msg: Message::Promise { .. } }));
}

#[test]
fn a_lagging_node_catches_up_from_its_peers() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 7);
    net.crash(NodeId(3));
    for seq in 1..=20 {
        net.propose(NodeId(1), cmd(1, seq)).unwrap();
    }
    assert!(net.run_until(Duration::from_secs(2), |net| net.node(NodeId(1)).unwrap().learner().committed() >= 20));
    net.restart(NodeId(3));
    net.propose(NodeId(2), cmd(2, 1)).unwrap();
    assert!(net.run_until(Duration::from_secs(2), all_committed(&net, 21)));
    assert_eq!(committed_values(&net, 3), committed_values(&net, 1));
}

#[test]
fn a_restarted_node_catches_up_with_no_new_traffic_in_several_batches_from_one_peer() {
    let mut net: Net<Paxos> = Net::new(5, PaxosConfig::default(), 9);
    net.propose(NodeId(1), cmd(1, 1)).unwrap();
    assert!(net.run_until(Duration::from_secs(2), all_committed(&net, 1)));
    let back = NodeId(5);
    net.crash(back);
    // Several catch-up answers' worth, decided while node 5 is down.
    let missed = 4 * PaxosConfig::default().catch_up_batch as u64;
    for seq in 2..=missed + 1 {
        net.propose(NodeId(1), cmd(1, seq)).unwrap();
    }
    let n = missed + 1;
    assert!(net.run_until(Duration::from_secs(5), |net| net.node(NodeId(1)).unwrap().learner().committed() >= n));
    net.drop_where(|env| env.to == back); // lost with the crash
    net.restart(back);
    // Nobody proposes: the restarted node must ask by itself.
    let mut values_sent_to_it = 0;
    let deadline = net.now + Duration::from_secs(2);
    while net.node(back).unwrap().learner().committed() < n {
        assert!(net.now < deadline, "node 5 did not catch up");
        match net.in_flight.front() {
            Some(env) => {
                if let (true, Message::Decided { chosen, .. }) = (env.to == back, &env.msg) {
                    values_sent_to_it += chosen.len() as u64;
                }
                net.deliver_at(0);
            }
            None => assert!(net.fire_timers()),
        }
    }
    assert_eq!(committed_values(&net, 5), committed_values(&net, 1));
    // All four peers answer the first request; after that, only a peer whose
    // answers are news is asked again.
    assert!(values_sent_to_it < 2 * missed, "{values_sent_to_it} values sent for {missed} missed: every peer streamed");
}

/// A node that restarts with more than one catch-up answer's worth of values
/// in its own log must ask from where its log ends, not from the start of its
/// commit point before recovery: answers that teach it nothing end the chain
/// (seen as a real process killed after 114 slots: both peers answered slots
/// 1..64, and the node never asked again).
#[test]
fn a_node_restarted_with_a_long_log_asks_for_what_it_does_not_hold() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 11);
    let held = 2 * PaxosConfig::default().catch_up_batch as u64;
    for seq in 1..=held {
        net.propose(NodeId(1), cmd(1, seq)).unwrap();
    }
    assert!(net.run_until(Duration::from_secs(5), all_committed(&net, held as usize)));
    let back = NodeId(3);
    net.crash(back);
    for seq in held + 1..=held + 10 {
        net.propose(NodeId(1), cmd(1, seq)).unwrap();
    }
    let n = held + 10;
    assert!(net.run_until(Duration::from_secs(5), |net| net.node(NodeId(1)).unwrap().learner().committed() >= n));
    net.drop_where(|env| env.to == back);
    net.restart(back);
    // Nobody proposes: the restarted node must fetch the ten slots by itself.
    let caught_up = net.run_until(Duration::from_secs(2), |net| net.node(back).unwrap().learner().committed() >= n);
    assert!(caught_up, "node 3 stayed at {} of {n}", net.node(back).unwrap().learner().committed());
    assert_eq!(committed_values(&net, 3), committed_values(&net, 1));
}

/// A node cut off while the last slots were decided, with no traffic after
/// the heal, has nothing that tells it it is behind: Basic Paxos has no
/// leader heartbeat. It must ask by itself now and then (the simulator's
/// convergence check: seed 704 of 5000 ended with a node 8 slots behind).
#[test]
fn a_node_cut_off_while_slots_were_decided_catches_up_with_no_new_traffic() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 13);
    let cut = NodeId(3);
    net.propose(NodeId(1), cmd(1, 1)).unwrap();
    assert!(net.run_until(Duration::from_secs(2), all_committed(&net, 1)));
    for seq in 2..=10 {
        net.propose(NodeId(1), cmd(1, seq)).unwrap();
    }
    // Everything to node 3 is lost until both others have committed all ten.
    let deadline = net.now + Duration::from_secs(2);
    while net.node(NodeId(2)).unwrap().learner().committed() < 10
        || net.node(NodeId(1)).unwrap().learner().committed() < 10
    {
        assert!(net.now < deadline, "nodes 1 and 2 did not commit");
        net.drop_where(|env| env.to == cut);
        if !net.deliver_at(0) {
            assert!(net.fire_timers());
        }
    }
    net.drop_where(|env| env.to == cut);
    assert_eq!(net.node(cut).unwrap().learner().committed(), 1);
    // Healed; nobody proposes.
    let caught_up = net.run_until(Duration::from_secs(3), |net| net.node(cut).unwrap().learner().committed() >= 10);
    assert!(caught_up, "node 3 stayed at {}", net.node(cut).unwrap().learner().committed());
    assert_eq!(committed_values(&net, 3), committed_values(&net, 1));
}

/// Runs the one-value-per-slot checker as the simulator does after `stepped` moved.
fn check_at(
    checker: &mut OneValuePerSlot,
    now: Instant,
    stepped: NodeId,
    nodes: &[Option<Paxos>],
) -> Result<(), String> {
    let nodes: Vec<Option<&Paxos>> = nodes.iter().map(Option::as_ref).collect();
    Invariant::<Paxos>::check(checker, now, stepped, &nodes)
}

#[test]
fn the_checker_catches_two_values_chosen_in_one_slot() {
    let net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 8);
    let mut nodes = net.nodes;
    let v = value(1, 1);
    let w = value(2, 1);
    let (b1, b2) = (Ballot::new(1, NodeId(1)), Ballot::new(2, NodeId(3)));
    let vote = |ballot, value: &Payload| Vote { slot: 1, ballot, value: value.clone() };
    let mut checker = OneValuePerSlot::new();
    nodes[0].as_mut().unwrap().plant_vote(vote(b1, &v));
    nodes[1].as_mut().unwrap().plant_vote(vote(b1, &v));
    assert_eq!(check_at(&mut checker, Instant::ZERO, NodeId(1), &nodes), Ok(()));
    assert_eq!(check_at(&mut checker, Instant::ZERO, NodeId(2), &nodes), Ok(()));
    assert_eq!(checker.chosen_slots(), 1);
    // A later ballot re-choosing the same value is fine...
    nodes[2].as_mut().unwrap().plant_vote(vote(b2, &v));
    assert_eq!(check_at(&mut checker, Instant::ZERO, NodeId(3), &nodes), Ok(()));
    // ...a different value reaching a majority is not.
    let b3 = Ballot::new(3, NodeId(2));
    nodes[1].as_mut().unwrap().plant_vote(vote(b3, &w));
    nodes[2].as_mut().unwrap().plant_vote(vote(b3, &w));
    // Each check reads every node's new votes: this one sees both.
    let err = check_at(&mut checker, Instant::ZERO, NodeId(2), &nodes).unwrap_err();
    assert!(err.contains("two values chosen"), "{err}");
}

#[test]
fn the_checker_catches_one_ballot_carrying_two_values() {
    let net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 9);
    let mut nodes = net.nodes;
    let b1 = Ballot::new(1, NodeId(1));
    nodes[0].as_mut().unwrap().plant_vote(Vote { slot: 4, ballot: b1, value: value(1, 1) });
    nodes[1].as_mut().unwrap().plant_vote(Vote { slot: 4, ballot: b1, value: value(1, 2) });
    let mut checker = OneValuePerSlot::new();
    let err = check_at(&mut checker, Instant::ZERO, NodeId(1), &nodes).unwrap_err();
    assert!(err.contains("two values"), "{err}");
}

#[test]
fn real_runs_feed_the_checker_votes_that_add_up() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 10);
    let mut checker = OneValuePerSlot::new();
    for seq in 1..=5 {
        net.propose(NodeId(1 + seq % 3), cmd(9, seq)).unwrap();
    }
    assert!(net.run_until(Duration::from_secs(2), all_committed(&net, 5)));
    for id in 1..=3 {
        check_at(&mut checker, net.now, NodeId(id), &net.nodes).unwrap();
    }
    assert_eq!(checker.chosen_slots(), 5);
}

#[test]
fn a_proposers_own_promise_is_written_before_its_prepares_leave() {
    let init = Init::first_start(NodeId(1), 3, PaxosConfig::default());
    let mut node = Paxos::new(init).expect("a node starts");
    let mut out = Effects::new();
    node.propose(Instant::ZERO, cmd(1, 1), &mut out).unwrap();
    let effects = out.as_slice();
    let write = effects.iter().position(|e| matches!(e, quorum_core::Effect::Persist(_))).expect("a write");
    let prepares: Vec<usize> = effects
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, quorum_core::Effect::SendDurable { msg: Message::Prepare { .. }, .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(prepares.len(), 2, "{effects:?}");
    assert!(prepares.iter().all(|&i| i > write), "a crash cannot make us reuse the ballot: {effects:?}");
}

/// A node that already knows a later slot chosen, behind a long gap, and
/// whose peers' answers are capped to one value each: every capped answer
/// says there is more, and the node asks again at once, rather than one
/// value per `catch_up_after` (seen in the tiny-caps sweep: a node 170 slots
/// behind had not caught up a second after the cluster healed).
#[test]
fn capped_catch_up_answers_are_followed_up_at_once() {
    let config = PaxosConfig::default().with(|c| c.catch_up_bytes = 1);
    let mut net: Net<Paxos> = Net::new(3, config, 12);
    net.propose(NodeId(1), cmd(1, 1)).unwrap();
    assert!(net.run_until(Duration::from_secs(2), all_committed(&net, 1)));
    let behind = NodeId(3);
    net.crash(behind);
    let missed = 100;
    for seq in 2..=missed + 1 {
        net.propose(NodeId(1), cmd(1, seq)).unwrap();
    }
    assert!(net.run_until(Duration::from_secs(5), |net| net.node(NodeId(1)).unwrap().learner().committed() > missed));
    net.drop_where(|env| env.to == behind);
    net.restart(behind);
    // One more value, which the restarted node learns as it is decided:
    // from then on it knows how far the log goes.
    net.propose(NodeId(1), cmd(1, missed + 2)).unwrap();
    let n = missed as usize + 2;
    assert!(
        net.run_until(Duration::from_millis(400), all_committed(&net, n)),
        "node 3 committed {} of {n} slots",
        net.node(behind).unwrap().learner().committed()
    );
    assert_eq!(committed_values(&net, 3), committed_values(&net, 1));
}

#[test]
fn the_checker_catches_a_configuration_that_changes_two_voters_at_once() {
    let net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 10);
    let mut nodes = net.nodes;
    let b1 = Ballot::new(1, NodeId(1));
    // From the founding n1, n2, n3 straight to n1 alone: the majorities of
    // the two need not overlap.
    let jump = Payload::Membership(quorum_core::Membership { voters: vec![NodeId(1)], epoch: 1, ..Default::default() });
    nodes[0].as_mut().unwrap().plant_vote(Vote { slot: 1, ballot: b1, value: jump.clone() });
    nodes[1].as_mut().unwrap().plant_vote(Vote { slot: 1, ballot: b1, value: jump });
    let mut checker = OneValuePerSlot::new();
    let err = check_at(&mut checker, Instant::ZERO, NodeId(1), &nodes).unwrap_err();
    assert!(err.contains("chosen after") && err.contains("change one voter at a time"), "{err}");
}

/// Node 1 proposes a full window of commands, both acceptors vote for every
/// slot but no answer reaches node 1 (the values are chosen and nobody knows
/// it), and node 1 crashes: a window of holes.
fn killed_with_a_full_window(net: &mut Net<Paxos>, first_seq: u64) {
    let window = PaxosConfig::default().max_in_flight as u64;
    for seq in first_seq..first_seq + window {
        net.propose(NodeId(1), cmd(1, seq)).unwrap();
    }
    let to_node_1 = |e: &Envelope<Message>| e.to == NodeId(1) && matches!(e.msg, Message::Accepted { .. });
    while net.deliver_first(|e| !to_node_1(e) && !matches!(e.msg, Message::Decided { .. })) {}
    net.crash(NodeId(1));
    net.drop_where(|_| true);
}

/// Proposes one command at node 2 and runs until nodes 2 and 3 commit it
/// after the `holes` node 1 left; returns the simulated time that took.
fn fill_the_holes(net: &mut Net<Paxos>, holes: u64) -> Duration {
    let started = net.now;
    net.propose(NodeId(2), cmd(2, 1)).unwrap();
    let done = net.run_until(Duration::from_secs(10), |net| {
        [2, 3].iter().all(|&id| net.node(NodeId(id)).unwrap().learner().committed() > holes)
    });
    assert!(done, "the holes and the new command are committed");
    for id in [2, 3] {
        let log = committed_values(net, id);
        assert_eq!(log[..holes as usize], (1..=holes).map(|seq| value(1, seq)).collect::<Vec<_>>()[..], "node {id}");
    }
    net.now.saturating_since(started)
}

/// A proposer killed with a full window leaves that many holes. The
/// survivors fill them side by side, as many at once as their own window,
/// not one after another with a hole timer's wait between each (the real
/// cluster of `quorum bench --mode real -p paxos --fault chaos` took about
/// 100 ms per hole, and after 38 kills could not answer a read for minutes).
#[test]
fn the_holes_a_killed_proposer_leaves_are_filled_side_by_side() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 7);
    killed_with_a_full_window(&mut net, 1);
    let window = PaxosConfig::default().max_in_flight as u64;
    let took = fill_the_holes(&mut net, window);
    assert!(took < Duration::from_millis(400), "{window} holes took {took} of simulated time");
}

/// Holes past one window (node 1 killed four times, each with a full
/// window) wait one hole timer, not one per window: once a stall's holes
/// are ripe, the commit point moving within them keeps them ripe.
#[test]
fn holes_past_one_window_wait_one_hole_timer_not_one_per_window() {
    let mut net: Net<Paxos> = Net::new(3, PaxosConfig::default(), 7);
    let window = PaxosConfig::default().max_in_flight as u64;
    for round in 0..4 {
        if round > 0 {
            net.restart(NodeId(1));
        }
        killed_with_a_full_window(&mut net, 1 + round * window);
    }
    let timer = PaxosConfig::default().fill_hole_after;
    let took = fill_the_holes(&mut net, 4 * window);
    assert!(took < timer * 3, "{} holes took {took} of simulated time (hole timer {timer})", 4 * window);
}
