//! What every protocol must show in the simulator, written once and run on
//! each with its own numbers: a killed leader is replaced fast (its
//! connections close, and the link-down hint tells the followers at once), a
//! frozen one only when the followers' timers run out, a lease on votes or
//! promises holds even against the hint, and a planted bug is caught by the
//! check that exists to catch it. What is particular to one protocol (how a
//! spurious link-down is refused, Zab's TRUNC, Raft's PreVote) stays in its
//! crate's tests.
//!
//! Recovery is the time from the fault until a new leader has committed a
//! fresh command (`quorum_sim::testkit::leader_recovery_ms`), over 50 seeds.

use quorum_core::{Duration, Protocol};
use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig};
use quorum_paxos::{Paxos, PaxosConfig};
use quorum_raft::{Raft, RaftConfig, ReadMode};
use quorum_sim::testkit::{leader_recoveries, median, seeds_caught_by, LeaderFault};
use quorum_sim::{Faults, SimConfig};
use quorum_zab::{Zab, ZabConfig};

const RUNS: u64 = 50;

/// How a protocol must fail over, in milliseconds, from its own settings.
struct Failover {
    /// After a crash, the median recovery is below this.
    crash_median_below: f64,
    /// After a crash, at most 5 of the runs take this long or longer (a split
    /// vote now and then falls back to the timeout).
    crash_slow_from: f64,
    /// The earliest a follower's timer can act once the leader went quiet
    /// (its timeout less the age of the last heartbeat).
    timer_floor: f64,
    /// After a freeze, the median recovery is below this.
    freeze_median_below: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

impl Failover {
    /// A protocol whose followers suspect the leader `timeout` after its last
    /// heartbeat (sent every `heartbeat`): the hint beats that timer by half,
    /// and the timer is the slow path.
    fn by_timer(timeout: f64, heartbeat: f64, freeze_median_below: f64) -> Self {
        let (crash_median_below, crash_slow_from, timer_floor) = (timeout / 2.0, timeout, timeout - heartbeat);
        Failover { crash_median_below, crash_slow_from, timer_floor, freeze_median_below }
    }
}

fn multipaxos() -> Failover {
    let c = MultiPaxosConfig::default();
    let timeout = ms(c.election_timeout);
    Failover::by_timer(timeout, ms(c.heartbeat_interval), 3.0 * timeout)
}

fn raft() -> Failover {
    let c = RaftConfig::default();
    let timeout = ms(c.election_timeout_min);
    Failover::by_timer(timeout, ms(c.heartbeat_interval), ms(c.election_timeout_max) + timeout / 2.0)
}

/// Zab's followers give up on a silent leader after `syncLimit`; a killed
/// one costs a round of votes, `finalize_wait`, then discovery and sync (two
/// round trips and two fsyncs).
fn zab() -> Failover {
    let c = ZabConfig::default();
    Failover {
        crash_median_below: ms(c.finalize_wait) + 20.0,
        crash_slow_from: ms(c.finalize_wait) + 20.0,
        timer_floor: ms(c.sync_limit()),
        freeze_median_below: ms(c.sync_limit() + c.tick * 3),
    }
}

fn a_killed_leader_is_replaced_fast<P: Protocol>(config: &P::Config, f: &Failover) {
    for nodes in [3, 5] {
        let times = leader_recoveries::<P>(nodes, RUNS, config, LeaderFault::Crash);
        let m = median(times.clone());
        eprintln!("{}, {nodes} nodes, leader killed: median recovery {m:.1} ms", P::NAME);
        assert!(m < f.crash_median_below, "{nodes} nodes: median {m:.1} ms after a crash: {times:?}");
        let slow = times.iter().filter(|t| **t >= f.crash_slow_from).count();
        assert!(slow <= 5, "{nodes} nodes: {slow} of {RUNS} runs took {} ms or more: {times:?}", f.crash_slow_from);
    }
}

fn a_frozen_leader_is_replaced_only_when_the_timers_run_out<P: Protocol>(config: &P::Config, f: &Failover) {
    // Nobody hears of a frozen process: its connections stay open.
    let times = leader_recoveries::<P>(5, RUNS, config, LeaderFault::Freeze);
    let m = median(times.clone());
    eprintln!("{}, 5 nodes, leader frozen: median recovery {m:.1} ms", P::NAME);
    assert!(times.iter().all(|t| *t >= f.timer_floor), "a follower acted before its timer: {times:?}");
    assert!(m < f.freeze_median_below, "median {m:.1} ms after a freeze: {times:?}");
}

/// Followers promised the leader not to back anyone else within a timeout of
/// hearing from it; the link-down hint must keep that promise, and still
/// recover no slower than the timers alone.
fn a_lease_holds_against_the_hint<P: Protocol>(lease: &P::Config, f: &Failover) {
    let times = leader_recoveries::<P>(5, RUNS, lease, LeaderFault::Crash);
    assert!(times.iter().all(|t| *t >= f.timer_floor), "a lease was broken: {times:?}");
    let m = median(times.clone());
    let timers_only = median(leader_recoveries::<P>(5, RUNS, lease, LeaderFault::Freeze));
    assert!(m <= timers_only, "the hint made recovery slower: {m:.1} vs {timers_only:.1} ms");
}

/// A planted bug is caught, in at least `at_least` of `seeds` seeds, by the
/// check named.
fn a_planted_bug_is_caught<P: Protocol>(config: &P::Config, base: &SimConfig, seeds: u64, check: &str, at_least: u64) {
    let caught = seeds_caught_by::<P>(base, config, seeds, check);
    assert!(caught >= at_least, "'{check}' fired in only {caught} of {seeds} seeds");
}

/// The two failover checks, for a protocol with a leader, with its default
/// settings and the numbers `failover()` gives it.
macro_rules! failover_tests {
    ($module:ident, $protocol:ty, $failover:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn replaces_a_killed_leader_fast() {
                a_killed_leader_is_replaced_fast::<$protocol>(&Default::default(), &$failover);
            }

            #[test]
            fn replaces_a_frozen_leader_only_when_the_timers_run_out() {
                a_frozen_leader_is_replaced_only_when_the_timers_run_out::<$protocol>(&Default::default(), &$failover);
            }
        }
    };
}

failover_tests!(multipaxos_failover, MultiPaxos, multipaxos());
failover_tests!(raft_failover, Raft, raft());
failover_tests!(zab_failover, Zab, zab());

#[test]
fn multipaxos_keeps_its_lease_on_promises_against_the_hint() {
    let lease = MultiPaxosConfig::default().with(|c| c.read_lease = true);
    a_lease_holds_against_the_hint::<MultiPaxos>(&lease, &multipaxos());
}

#[test]
fn raft_keeps_its_lease_on_votes_against_the_hint() {
    let lease = RaftConfig::default().with(|c| c.read_mode = ReadMode::Lease);
    a_lease_holds_against_the_hint::<Raft>(&lease, &raft());
}

/// Proposers that ignore the values their promises report (breaking P2c)
/// soon choose two values for one slot.
#[test]
fn paxos_ignoring_promised_values_is_caught_by_one_value_per_slot() {
    let config = PaxosConfig::default().with(|c| c.planted = Some(quorum_paxos::PlantedBug::IgnorePromisedValues));
    let base = SimConfig::quick(0, Faults::All);
    a_planted_bug_is_caught::<Paxos>(&config, &base, 100, "one value chosen per slot", 10);
}

/// A new leader that ignores the values its promises report overwrites slots
/// that were already chosen.
#[test]
fn multipaxos_ignoring_promised_values_is_caught_by_one_value_per_slot() {
    let planted = Some(quorum_multipaxos::PlantedBug::IgnorePromisedValues);
    let config = MultiPaxosConfig::default().with(|c| c.planted = planted);
    let base = SimConfig::quick(0, Faults::Crash);
    a_planted_bug_is_caught::<MultiPaxos>(&config, &base, 300, "one value chosen per slot", 30);
}
