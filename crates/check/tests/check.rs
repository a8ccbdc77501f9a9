//! The model checker explores small bounds completely, and finds planted
//! bugs with a shortest counterexample that replays.

use quorum_check::{explore, replay, Action, Bounds, Counterexample, Report, Search};
use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig, PlantedBug as MultiPaxosBug};
use quorum_paxos::{Paxos, PaxosConfig, PlantedBug as PaxosBug};
use quorum_raft::{PlantedBug, Raft, RaftConfig};
use quorum_sim::baseline::{PlantedBug as PbBug, PrimaryBackup, PrimaryBackupConfig};
use quorum_zab::{PlantedBug as ZabBug, Zab, ZabConfig};

fn quiet<P: quorum_check::Checkable>(config: P::Config, bounds: &Bounds) -> Report {
    explore::<P>(config, bounds, |_| {})
}

/// Checks `bounds` with `config`, expecting every state explored and no
/// violation.
fn clean<P: quorum_check::Checkable>(config: P::Config, bounds: &Bounds) -> Report {
    let report = quiet::<P>(config, bounds);
    assert!(report.counterexample.is_none(), "{:?}", report.counterexample);
    assert!(report.exhausted, "the bound must be explored completely");
    report
}

/// Checks `bounds` with `config` (a planted bug), expects a counterexample
/// that breaks `property`, and replays its steps to the same violation.
fn caught<P: quorum_check::Checkable>(config: P::Config, bounds: &Bounds, property: &str) -> (Counterexample, Report) {
    let report = quiet::<P>(config.clone(), bounds);
    let cx = report.counterexample.clone().unwrap_or_else(|| panic!("not found in {} states", report.states));
    assert_eq!(cx.violation.property, property, "{:?}", cx.violation);
    let world = replay::<P>(config, bounds, &cx.steps);
    assert_eq!(world.violation().map(|v| v.property), Some(cx.violation.property), "the steps replay to it");
    (cx, report)
}

#[test]
fn basic_paxos_with_one_command_is_exhausted_without_a_violation() {
    let bounds = Bounds { commands: 1, crashes: 0, timers: 0, max_depth: 60, ..Bounds::default() };
    let report = clean::<Paxos>(Default::default(), &bounds);
    // 6,214 states since a broadcast decision no longer draws a catch-up
    // round trip (Decided says whether more is coming).
    assert!(report.states > 5_000, "only {} states: the transitions are not all explored", report.states);
    assert!(report.first_applied_at.is_some(), "the command is never applied: the bounds prune everything");
}

#[test]
fn raft_elects_a_leader_and_applies_its_no_op_in_every_explored_order() {
    let bounds = Bounds { commands: 0, crashes: 0, timers: 1, max_depth: 60, ..Bounds::default() };
    let report = clean::<Raft>(RaftConfig::default(), &bounds);
    assert!(report.first_leader_at.is_some() && report.first_applied_at.is_some(), "{report:?}");
}

#[test]
fn depth_first_visits_the_states_breadth_first_visits() {
    let bounds = Bounds { commands: 1, crashes: 0, timers: 0, max_depth: 60, ..Bounds::default() };
    let bfs = quiet::<Paxos>(Default::default(), &bounds);
    let dfs = quiet::<Paxos>(Default::default(), &Bounds { search: Search::DepthFirst, ..bounds });
    assert!(bfs.exhausted && dfs.exhausted);
    assert_eq!((dfs.states, dfs.transitions), (bfs.states, bfs.transitions));
    assert_eq!(dfs.first_applied_at, bfs.first_applied_at, "the shallowest depths agree");
    // A tight depth bound: states first met deep are expanded again when a
    // shorter path reaches them, so both still see the same states.
    let bounds = Bounds { commands: 0, crashes: 1, timers: 2, max_depth: 9, ..Bounds::default() };
    let bfs = quiet::<Raft>(RaftConfig::default(), &bounds);
    let dfs = quiet::<Raft>(RaftConfig::default(), &Bounds { search: Search::DepthFirst, ..bounds });
    assert_eq!(dfs.states, bfs.states);
    assert!(bfs.at_depth_limit > 0, "the depth bound must bind for this to mean anything");
}

#[test]
fn two_threads_see_the_states_one_thread_sees() {
    let bounds = Bounds { commands: 1, crashes: 0, timers: 0, max_depth: 60, ..Bounds::default() };
    let one = quiet::<Paxos>(Default::default(), &bounds);
    let two = quiet::<Paxos>(Default::default(), &Bounds { threads: 2, ..bounds });
    assert!(one.exhausted && two.exhausted);
    assert_eq!(two.states, one.states);
}

#[test]
fn multi_paxos_elects_a_leader_in_every_explored_order() {
    let bounds = Bounds { commands: 0, crashes: 0, timers: 1, max_depth: 60, ..Bounds::default() };
    let report = clean::<MultiPaxos>(Default::default(), &bounds);
    assert!(report.first_leader_at.is_some(), "{report:?}");
}

#[test]
fn zab_elects_a_leader_and_applies_a_command_in_every_explored_order() {
    // Zab needs two timer firings to elect: one to start looking, one to
    // end the election round.
    let bounds = Bounds { commands: 1, crashes: 0, timers: 2, max_term: 2, max_depth: 60, ..Bounds::default() };
    let report = clean::<Zab>(ZabConfig::default(), &bounds);
    assert!(report.first_leader_at.is_some() && report.first_applied_at.is_some(), "{report:?}");
}

#[test]
fn zab_through_a_crash_and_a_second_election_shows_no_violation() {
    // This bound once reported "zab: integrity" in 61,251 states: an
    // invariant that remembers proposals, shown a state whose proposer had
    // crashed. Such invariants are skipped (`judges_one_state`).
    clean_to_the_state_limit::<Zab>(ZabConfig::default(), &through_a_crash(150_000));
}

/// One command, one crash, three timers, terms up to 2, depth first until
/// `max_states`.
fn through_a_crash(max_states: usize) -> Bounds {
    Bounds {
        commands: 1,
        crashes: 1,
        timers: 3,
        max_term: 2,
        max_depth: 40,
        max_states,
        search: Search::DepthFirst,
        ..Bounds::default()
    }
}

/// Explores `bounds` up to its state limit: no violation, and a command applied.
fn clean_to_the_state_limit<P: quorum_check::Checkable>(config: P::Config, bounds: &Bounds) {
    let report = quiet::<P>(config, bounds);
    assert!(report.counterexample.is_none(), "{:?}", report.counterexample.map(|c| c.violation));
    assert_eq!(report.states, bounds.max_states, "the search ended early");
    assert!(report.first_applied_at.is_some(), "{report:?}");
}

#[test]
fn multipaxos_through_a_crash_and_a_second_ballot_shows_no_violation() {
    // This bound once reported "one value chosen per slot: n1 committed slot
    // 1, but no majority ... accepted one value there" in 4,418 states: the
    // invariant's commit check, shown a fresh state, could not see the votes
    // of a node that crashed after voting, or votes forgotten once
    // committed. A checker that starts late judges votes, not commits.
    // Ballots (round, node) share rounds, as `quorum check` knows.
    let bounds = Bounds { one_leader_per_term: false, ..through_a_crash(60_000) };
    clean_to_the_state_limit::<MultiPaxos>(Default::default(), &bounds);
}

#[test]
fn paxos_ignoring_promised_values_chooses_two_values_for_one_slot() {
    let config = PaxosConfig::default().with(|c| c.planted = Some(PaxosBug::IgnorePromisedValues));
    let bounds = Bounds { commands: 2, crashes: 0, timers: 0, max_depth: 40, ..Bounds::default() };
    // Paxos's own invariant sees the second value reach a majority of votes.
    let (cx, _) = caught::<Paxos>(config, &bounds, "protocol invariants");
    assert!(cx.violation.detail.contains("two values chosen"), "{:?}", cx.violation);
}

#[test]
fn zab_acknowledging_before_the_write_is_durable_applies_what_no_majority_holds() {
    let config = ZabConfig::default().with(|c| c.planted = Some(ZabBug::AckBeforeDurable));
    let bounds = Bounds { commands: 1, crashes: 0, timers: 2, max_term: 2, max_depth: 60, ..Bounds::default() };
    caught::<Zab>(config, &bounds, "applied entries are durable on a majority");
}

#[test]
fn a_lost_write_is_found_with_its_shortest_path_and_replays() {
    let config = PrimaryBackupConfig { bug: Some(PbBug::AckBeforeMajority), ..Default::default() };
    let bounds = Bounds { commands: 2, crashes: 1, timers: 2, max_depth: 30, ..Bounds::default() };
    // The primary applies (and answers) a command before any disk holds it:
    // one step, long before a crash could make another value take its place.
    let (cx, _) = caught::<PrimaryBackup>(config, &bounds, "applied entries are durable on a majority");
    assert_eq!(cx.steps.len(), 1, "{}", quorum_check::render::steps(&cx));
    let diagram = quorum_check::render::mermaid(&cx, bounds.nodes);
    assert!(diagram.starts_with("sequenceDiagram") && diagram.contains("propose"), "{diagram}");
}

#[test]
fn backups_appending_in_arrival_order_apply_what_a_majority_never_held() {
    let config = PrimaryBackupConfig { bug: Some(PbBug::DivergentApply), ..Default::default() };
    let bounds = Bounds { commands: 2, crashes: 0, timers: 0, max_depth: 30, ..Bounds::default() };
    // A backup stores the second command at index 1 and acknowledges index 1;
    // the primary counts it as holding the first.
    caught::<PrimaryBackup>(config, &bounds, "applied entries are durable on a majority");
}

#[test]
fn the_correct_baseline_shows_no_violation_where_its_planted_twin_does() {
    let bounds = Bounds { commands: 2, crashes: 1, timers: 2, max_depth: 30, max_states: 20_000, ..Bounds::default() };
    let report = quiet::<PrimaryBackup>(PrimaryBackupConfig::default(), &bounds);
    assert!(report.counterexample.is_none(), "{:?}", report.counterexample);
    assert!(report.first_applied_at.is_some());
}

#[test]
fn raft_voting_before_the_vote_is_durable_gives_a_term_two_leaders() {
    let config = RaftConfig::default().with(|c| c.planted = Some(PlantedBug::VoteBeforePersisted));
    let bounds = Bounds {
        commands: 0,
        crashes: 1,
        timers: 2,
        max_term: 1,
        max_depth: 40,
        max_states: 3_000_000,
        ..Bounds::default()
    };
    // The checker's ghost record of who led which term sees it; Raft's own
    // invariants, run on one state, cannot see a first leader that crashed
    // before the second won (and the ghost check runs first).
    let (cx, report) = caught::<Raft>(config, &bounds, "one leader per term");
    eprintln!(
        "found in {} states, {:.1} s:\n{}",
        report.states,
        report.elapsed.as_secs_f64(),
        quorum_check::render::steps(&cx)
    );
}

/// The bound of `scripts/check-planted.sh`'s random walks: deeper than any
/// exhaustive search gets (three crashes, a dozen timer firings, 150 steps).
fn walks(seed: u64) -> Bounds {
    Bounds {
        commands: 3,
        crashes: 3,
        timers: 12,
        max_term: 6,
        max_depth: 150,
        max_states: 20_000_000,
        search: Search::RandomWalks,
        seed,
        ..Bounds::default()
    }
}

#[test]
fn random_walks_are_repeatable_and_find_nothing_in_the_fixed_protocols() {
    let bounds = Bounds { max_states: 30_000, ..walks(7) };
    let first = quiet::<Raft>(RaftConfig::default(), &bounds);
    let again = quiet::<Raft>(RaftConfig::default(), &bounds);
    assert!(first.counterexample.is_none(), "{:?}", first.counterexample);
    assert_eq!((first.states, first.transitions), (again.states, again.transitions), "same seed, same walks");
    assert!(!first.exhausted && first.stopped_by == Some("the state limit"), "walks never claim to exhaust");
    assert!(first.depth > 100 && first.first_applied_at.is_some(), "deep, and commands are applied: {first:?}");
    let other = quiet::<Raft>(RaftConfig::default(), &Bounds { seed: 8, ..bounds.clone() });
    assert_ne!(other.transitions, first.transitions, "another seed walks elsewhere");
    // (A Paxos ballot round may be tried by several proposers, each with its own ballot.)
    let ballots = Bounds { one_leader_per_term: false, ..bounds.clone() };
    for report in [quiet::<Zab>(ZabConfig::default(), &bounds), quiet::<MultiPaxos>(Default::default(), &ballots)] {
        assert!(report.counterexample.is_none(), "{:?}", report.counterexample);
    }
}

/// A follower that acknowledges NEWLEADER before its synchronised history
/// is durable: the depth-first bounds tried missed it (50 s each); a random
/// walk gets there in tens of thousands of states at most, and the walk,
/// shortened, is a short path through that early acknowledgement.
#[test]
fn random_walks_find_zab_acknowledging_new_leader_before_its_history_is_durable() {
    let config = ZabConfig::default().with(|c| c.planted = Some(ZabBug::AckNewLeaderBeforeDurable));
    let (cx, report) = caught::<Zab>(config, &walks(0), "applied entries are durable on a majority");
    assert!(report.states < 100_000, "found in {} states", report.states);
    // The follower's early ack lets the leader commit with one disk.
    assert!(cx.steps.len() <= 60, "{} steps", cx.steps.len());
    let early_ack = |s: &Action| matches!(s, Action::Deliver { label, .. } if label.starts_with("AckNewLeader"));
    assert!(cx.steps.iter().any(early_ack), "{:?}", cx.steps);
    eprintln!("found in {} states, a walk of {} steps", report.states, cx.steps.len());
}

/// A leader that skips ZooKeeper's "follower is ahead" check establishes an
/// epoch with a follower whose history outranks its own.
#[test]
fn random_walks_find_zab_leading_behind_a_follower_of_its_quorum() {
    let config = ZabConfig::default().with(|c| c.planted = Some(ZabBug::SkipFollowerAheadCheck));
    let (cx, report) = caught::<Zab>(config, &walks(0), "protocol invariants");
    assert!(cx.violation.detail.contains("leader not behind its quorum"), "{:?}", cx.violation);
    eprintln!("found in {} states, a walk of {} steps", report.states, cx.steps.len());
}

/// Walks with an operator: a spare node outside the configuration, and four
/// operator actions (add a learner, promote, remove, replace a non-voter's
/// disk) among the crashes, timers and commands.
fn churning(seed: u64) -> Bounds {
    Bounds { spares: 1, changes: 4, crashes: 2, ..walks(seed) }
}

#[test]
fn operator_changes_add_states_and_break_nothing_in_the_fixed_protocols() {
    // Exhaustively, on a small bound: the operator's actions are transitions.
    let small = Bounds { commands: 0, crashes: 0, timers: 1, max_depth: 14, ..Bounds::default() };
    let fixed = clean::<Raft>(RaftConfig::default(), &small);
    let changing = clean::<Raft>(RaftConfig::default(), &Bounds { spares: 1, changes: 1, ..small.clone() });
    assert!(
        changing.states > 2 * fixed.states,
        "{} states with an operator, {} without",
        changing.states,
        fixed.states
    );
    // Deep, by random walks, in all three protocols with membership changes.
    let bounds = Bounds { max_states: 60_000, ..churning(3) };
    let ballots = Bounds { one_leader_per_term: false, ..bounds.clone() };
    let reports = [
        quiet::<Raft>(RaftConfig::default(), &bounds),
        quiet::<Zab>(ZabConfig::default(), &bounds),
        quiet::<MultiPaxos>(MultiPaxosConfig::default(), &ballots),
    ];
    for report in reports {
        assert!(report.counterexample.is_none(), "{:?}", report.counterexample);
        assert!(report.first_applied_at.is_some(), "{report:?}");
    }
}

/// A leader that counts learners in its quorums (the planted
/// `NonVotersCount` of Multi-Paxos and Zab) applies what no majority of
/// voters holds, as soon as the operator has added a learner.
#[test]
fn walks_with_an_operator_find_learners_counted_in_quorums() {
    let property = "applied entries are durable on a majority";
    let ballots = Bounds { one_leader_per_term: false, ..churning(0) };
    let config = MultiPaxosConfig::default().with(|c| c.planted = Some(MultiPaxosBug::NonVotersCount));
    let (cx, report) = caught::<MultiPaxos>(config, &ballots, property);
    let added = |cx: &Counterexample| cx.steps.iter().any(|s| matches!(s, Action::Change { .. }));
    assert!(added(&cx), "{:?}", cx.steps);
    eprintln!("multipaxos: found in {} states, {} steps", report.states, cx.steps.len());
    let config = ZabConfig::default().with(|c| c.planted = Some(ZabBug::NonVotersCount));
    let (cx, report) = caught::<Zab>(config, &churning(0), property);
    assert!(added(&cx), "{:?}", cx.steps);
    eprintln!("zab: found in {} states, {} steps", report.states, cx.steps.len());
}

/// Multi-Paxos with its caps at their smallest (one chosen value per
/// catch-up answer and promise page, one command per Accept, two slots in
/// flight): the cap boundaries of issue 12's fixes come within four
/// commands, and walks find their planted twins.
fn smallest_caps(bug: MultiPaxosBug) -> MultiPaxosConfig {
    MultiPaxosConfig::default().with(|c| {
        c.catch_up_batch = 1;
        c.max_batch = 1;
        c.window = 2;
        c.planted = Some(bug);
    })
}

#[test]
fn walks_find_multi_paxos_cap_bugs_with_the_smallest_caps() {
    let bounds = Bounds { commands: 4, crashes: 2, one_leader_per_term: false, ..walks(0) };
    // A promise that leaves out a slot known chosen past its page: the new
    // leader fills that slot with something else.
    let (cx, report) =
        caught::<MultiPaxos>(smallest_caps(MultiPaxosBug::PromiseOmitsChosenPastCap), &bounds, "protocol invariants");
    assert!(cx.violation.detail.contains("one value chosen per slot"), "{:?}", cx.violation);
    eprintln!("promise-omits-chosen-past-cap: {} states, {} steps", report.states, cx.steps.len());
    // A decision learned for a value held in an older ballot keeps the old stamp.
    let (cx, report) =
        caught::<MultiPaxos>(smallest_caps(MultiPaxosBug::LearnKeepsOlderStamp), &bounds, "protocol invariants");
    assert!(cx.violation.detail.contains("votes match decisions"), "{:?}", cx.violation);
    eprintln!("learn-keeps-older-stamp: {} states, {} steps", report.states, cx.steps.len());
}
