//! Protocol-specific actions during a run: [`Sim::act`] runs one on a node
//! as if it were one more input, and an [`Operator`] is an administrator
//! that the run calls at random times (membership changes, leadership
//! transfers, ...).
//!
//! The simulator knows protocols only through the `Protocol` trait, which
//! has no admin methods; these hooks let a test reach the concrete type
//! (`Raft::remove_node`, `Raft::transfer_leadership`, ...) without giving up
//! what the simulator guarantees: whatever the action emits (sends, durable
//! sends, writes, commits, reads answered) is carried out exactly like the
//! effects of a message or a timer, the checks run after it, and the times
//! and choices come from the run's seed, so a failing seed replays.

use crate::sim::{Event, Sim};
use crate::trace::What;
use crate::Workload;
use quorum_core::{Duration, Effects, Instant, KvStore, NodeId, Protocol, Rng};

/// An administrator acting on the cluster while the load runs.
///
/// [`Sim::set_operator`] installs one; the run calls [`Operator::operate`] at
/// exponentially distributed intervals until the load phase ends. It may
/// inspect the cluster ([`Sim::leader`], [`Sim::node`]) and act on live nodes
/// through [`Sim::act`] (or crash, partition, propose...). Every random choice
/// must come from the `rng` it is handed, so that a seed replays exactly.
///
/// Any `FnMut(&mut Sim<P, W>, &mut Rng)` is an operator.
pub trait Operator<P: Protocol, W: Workload = KvStore> {
    /// One intervention.
    fn operate(&mut self, sim: &mut Sim<P, W>, rng: &mut Rng);
}

impl<P: Protocol, W: Workload, F: FnMut(&mut Sim<P, W>, &mut Rng)> Operator<P, W> for F {
    fn operate(&mut self, sim: &mut Sim<P, W>, rng: &mut Rng) {
        self(sim, rng)
    }
}

/// An installed operator, its random stream and its mean interval.
pub(crate) struct OperatorSlot<P: Protocol, W: Workload> {
    operator: Box<dyn Operator<P, W>>,
    rng: Rng,
    mean_interval: Duration,
}

impl<P: Protocol, W: Workload> OperatorSlot<P, W> {
    fn next_delay(&mut self) -> Duration {
        let u = self.rng.unit().max(1e-9);
        Duration::from_nanos((-(u.ln()) * self.mean_interval.as_nanos() as f64) as u64)
    }
}

impl<P: Protocol, W: Workload> Sim<P, W> {
    /// Runs a protocol-specific action on node `id` — a membership change, a
    /// leadership transfer — as one more input to it: `f` gets the node, the
    /// time and the effect buffer, and what it emits is carried out like the
    /// effects of any message or timer, then the checks run. `what` labels the
    /// action in the trace. Returns `None` (and does nothing) while the node
    /// is crashed or frozen.
    pub fn act<R>(
        &mut self,
        id: NodeId,
        what: &str,
        f: impl FnOnce(&mut P, Instant, &mut Effects<P::Message>) -> R,
    ) -> Option<R> {
        let i = self.index(id);
        if self.hosts[i].frozen || self.protos[i].is_none() {
            return None;
        }
        let now = self.local_now(i);
        self.trace.mix_u64s(&[14, self.now.as_nanos(), id.0]);
        self.trace.mix(what.as_bytes());
        self.trace.record(self.now, || What::Act { node: id.0, what: what.to_string() });
        let mut out = std::mem::take(&mut self.out);
        let result = f(self.protos[i].as_mut().expect("checked above"), now, &mut out);
        self.out = out;
        self.after_step(i);
        Some(result)
    }

    /// Installs `operator`, called about every `mean_interval` (exponentially
    /// distributed, from a stream forked off the run's seed) while the load
    /// runs. Replaces any operator installed before.
    pub fn set_operator(&mut self, mean_interval: Duration, operator: impl Operator<P, W> + 'static) {
        assert!(mean_interval > Duration::ZERO, "an operator needs a positive mean interval");
        let rng = self.rng.fork(0x09E2_A702);
        let first = self.operator.is_none();
        self.operator = Some(OperatorSlot { operator: Box::new(operator), rng, mean_interval });
        if first && self.load_running {
            self.schedule_operator(); // else the turn already queued calls the new one
        }
    }

    /// Queues the operator's next call.
    pub(crate) fn schedule_operator(&mut self) {
        if let Some(slot) = self.operator.as_mut() {
            let at = self.now + slot.next_delay();
            self.queue.push(at, Event::Operate);
        }
    }

    /// The operator's turn: call it (while the load runs) and queue the next turn.
    pub(crate) fn operate(&mut self) {
        if !self.load_running {
            return;
        }
        let Some(mut slot) = self.operator.take() else { return };
        slot.operator.operate(self, &mut slot.rng);
        if self.operator.is_none() {
            self.operator = Some(slot);
            self.schedule_operator();
        } // else it installed a successor, whose first turn is queued
    }
}

#[cfg(test)]
mod tests {
    use crate::baseline::PrimaryBackup;
    use crate::{check_seeds_with, Faults, Sim, SimConfig};
    use quorum_core::{ClientId, Command, Duration, NodeId, Protocol, Rng};
    use std::cell::RefCell;
    use std::rc::Rc;

    fn quiet(nodes: usize) -> SimConfig {
        let mut cfg = SimConfig::new(nodes, 1);
        cfg.clients.count = 0;
        cfg
    }

    #[test]
    fn what_an_action_emits_is_carried_out_like_any_step() {
        let mut sim = Sim::<PrimaryBackup>::new(quiet(3), Default::default());
        let cmd = Command::new(ClientId(9), 1, &b"x"[..]);
        // The primary's sends, writes and commits all come from inside the action.
        let accepted = sim.act(NodeId(1), "propose x", |p, now, out| p.propose(now, cmd, out));
        assert_eq!(accepted, Some(Ok(())));
        let applied = sim.run_until(Duration::from_secs(1), |s| s.members().iter().all(|m| s.applied_index(*m) == 1));
        assert!(applied, "the action's messages, writes and commit were not carried out");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    #[test]
    fn an_action_on_a_crashed_or_frozen_node_does_nothing() {
        let mut sim = Sim::<PrimaryBackup>::new(quiet(3), Default::default());
        sim.crash(NodeId(2));
        sim.freeze(NodeId(3));
        let mut ran = false;
        assert_eq!(sim.act(NodeId(2), "poke", |_, _, _| ran = true), None);
        assert_eq!(sim.act(NodeId(3), "poke", |_, _, _| ran = true), None);
        assert!(!ran);
        assert_eq!(sim.act(NodeId(1), "poke", |p, _, _| p.status().id), Some(NodeId(1)));
    }

    /// The operator's calls: (time, node acted on).
    type Calls = Rc<RefCell<Vec<(u64, NodeId)>>>;

    fn run_with_operator(seed: u64, calls: Calls) -> u64 {
        let mut sim = Sim::<PrimaryBackup>::new(SimConfig::quick(seed, Faults::All), Default::default());
        sim.set_operator(Duration::from_millis(50), move |sim: &mut Sim<PrimaryBackup>, rng: &mut Rng| {
            let target = NodeId(rng.range(1, 4));
            if sim.act(target, "poke", |_, _, _| ()).is_some() {
                calls.borrow_mut().push((sim.now().as_nanos(), target));
            }
        });
        let report = sim.run();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        report.trace_hash
    }

    #[test]
    fn an_operator_runs_at_seeded_times_during_the_load_and_replays_exactly() {
        let (a, b, c) = (Calls::default(), Calls::default(), Calls::default());
        let hash_a = run_with_operator(5, a.clone());
        let hash_b = run_with_operator(5, b.clone());
        let hash_c = run_with_operator(6, c.clone());
        assert_ne!(hash_a, hash_c);
        assert_eq!(hash_a, hash_b, "the same seed must replay the same run");
        assert_eq!(*a.borrow(), *b.borrow(), "the same seed must replay the same interventions");
        assert_ne!(*a.borrow(), *c.borrow(), "another seed, other interventions");
        // About 1 s of load / 50 ms, and none after the load phase.
        let calls = a.borrow();
        assert!((5..=60).contains(&calls.len()), "{} calls", calls.len());
        assert!(calls.iter().all(|(at, _)| *at <= Duration::from_secs(1).as_nanos()));
    }

    #[test]
    fn check_seeds_with_installs_the_operator_in_every_run() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let runs = AtomicU64::new(0);
        let setup = |sim: &mut Sim<PrimaryBackup>| {
            runs.fetch_add(1, Ordering::Relaxed);
            sim.set_operator(Duration::from_millis(100), |sim: &mut Sim<PrimaryBackup>, rng: &mut Rng| {
                sim.act(NodeId(rng.range(1, 4)), "poke", |_, _, _| ());
            });
        };
        let base = SimConfig::quick(0, Faults::All);
        let summary = check_seeds_with::<PrimaryBackup>(&base, &Default::default(), 0..8, setup, |_| {});
        summary.assert_clean();
        assert_eq!(runs.load(Ordering::Relaxed), 8);
    }
}
