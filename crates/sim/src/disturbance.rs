//! The lease disturbance: an operator that puts a live leader where a lease
//! read is most likely to go stale, for `quorum sim --profile lease-fifo`.
//!
//! Random partitions rarely do it. A stale lease read needs a leader that is
//! still alive, still holding a lease, and cut off from a majority that has
//! already moved on; and, on fifo links, a follower that was told the
//! leader's connection broke (a link-down hint) while it still hears it. The
//! operator builds that, round after round: cut the leader off (both ways)
//! from every follower but the `near` ones (as few as make a majority with
//! the leader), which get a link-down hint and keep hearing the leader;
//! after a random wait, about an election timeout, cut their messages to the
//! leader too, so that the leader
//! hears of no newer leader and keeps answering from its lease; heal 300 ms
//! after the round began. A correct lease has run out by the time a new
//! leader can be elected; a lease renewed by acknowledgements it should not
//! count has not.
//!
//! [`LeaseDisturbance::cutting_writers`] also cuts the clients that write
//! from the leader for the round (the read-only ones,
//! `ClientConfig::readers`, stay with it): a Multi-Paxos leader's lease read
//! waits for the last slot it proposed, so one write reaching it after the
//! cut, which can no longer commit, stalls its reads, and a stale one never
//! shows.

use crate::{Sim, Workload};
use quorum_core::{Duration, Instant, NodeId, Protocol, Rng};

/// The operator (install it with [`Sim::set_operator`] at a short interval,
/// a few milliseconds: it acts on its own schedule and only polls).
#[derive(Clone, Debug)]
pub struct LeaseDisturbance {
    /// The wait before `near`'s messages to the leader are cut, drawn per
    /// round between these bounds.
    pub isolate_after: (Duration, Duration),
    /// Cut the clients that write from the leader for the round.
    pub cut_writers: bool,
    phase: Phase,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Waiting to start a round at this time.
    Idle { next: Instant },
    /// The leader is cut from all but the `near` followers, hinted at `began`.
    Hinted { leader: NodeId, near: Vec<NodeId>, began: Instant, isolate_at: Instant },
    /// `near`'s messages to the leader are cut too.
    Isolated { began: Instant },
}

/// How long a round lasts before the network heals.
const ROUND: Duration = Duration::from_millis(300);

impl LeaseDisturbance {
    /// Rounds that isolate the leader after a wait between `min` and `max`.
    pub fn new(min: Duration, max: Duration) -> LeaseDisturbance {
        LeaseDisturbance {
            isolate_after: (min, max.max(min)),
            cut_writers: false,
            phase: Phase::Idle { next: Instant::ZERO },
        }
    }

    /// Also cuts the clients that may write (all but the first
    /// `ClientConfig::readers`) from the leader for each round.
    pub fn cutting_writers(mut self) -> LeaseDisturbance {
        self.cut_writers = true;
        self
    }
}

impl<P: Protocol, W: Workload> crate::Operator<P, W> for LeaseDisturbance {
    fn operate(&mut self, sim: &mut Sim<P, W>, rng: &mut Rng) {
        let now = sim.now();
        match self.phase {
            Phase::Idle { next } if now >= next => {
                let Some(leader) = sim.leader() else { return };
                let others: Vec<NodeId> = sim.members().iter().copied().filter(|&n| n != leader).collect();
                if others.len() < 2 {
                    return;
                }
                // The nears and the leader are a bare majority: the leader's
                // lease rests on their acks, and a new leader needs a vote
                // from one of them.
                let mut others = others;
                let mut near = Vec::new();
                while near.len() < sim.members().len() / 2 {
                    near.push(others.swap_remove(rng.index(others.len())));
                }
                for &far in &others {
                    sim.cut_one_way(leader, far);
                    sim.cut_one_way(far, leader);
                }
                for &n in &near {
                    sim.act(n, "connection to the leader reset", |node, now, out| node.on_link_down(now, leader, out));
                }
                if self.cut_writers {
                    for c in sim.config().clients.readers..sim.clients.len() {
                        sim.cut_client(c, leader);
                    }
                }
                let (min, max) = self.isolate_after;
                let wait = Duration::from_nanos(rng.range(min.as_nanos(), max.as_nanos() + 1));
                self.phase = Phase::Hinted { leader, near, began: now, isolate_at: now + wait };
            }
            Phase::Hinted { leader, ref near, began, isolate_at } if now >= isolate_at => {
                for &n in near {
                    sim.cut_one_way(n, leader);
                }
                self.phase = Phase::Isolated { began };
            }
            Phase::Hinted { began, .. } | Phase::Isolated { began } if now >= began + ROUND => {
                sim.heal();
                let pause = Duration::from_millis(rng.range(50, 200));
                self.phase = Phase::Idle { next: now + pause };
            }
            _ => {}
        }
    }
}
