//! The committed log replayed into a state machine of the simulator's own, to
//! check the state nodes hold by other routes than applying entries one by one:
//! snapshots they install or restore, and what they hold at the end of a run.
//!
//! The log is the first payload applied at each index by any node (the
//! per-index agreement check makes every other node's apply equal to it; the
//! session log keeps it). The state at index `k` is that log's commands
//! `1..=k` applied to an empty machine,
//! encoded as a snapshot: a [`Workload`]'s snapshots are canonical (the
//! key-value store sorts keys and sessions), so equal states have equal bytes.

use crate::sim::Sim;
use crate::Workload;
use quorum_core::{Instant, NodeId, Payload, Protocol, StateMachine};
use std::collections::HashMap;

/// Replays forward as far as asked; a question about an earlier index starts
/// over from the nearest checkpoint below it.
#[derive(Default)]
pub(crate) struct Reference<W> {
    /// The replica and the index it has replayed to.
    replica: W,
    at: u64,
    /// `checkpoints[j]`: the replica at index `(j + 1) * CHECKPOINT`, so that
    /// going back costs at most `CHECKPOINT` applies.
    checkpoints: Vec<W>,
    /// Fingerprints of states already computed, by index.
    known: HashMap<u64, u64>,
}

const CHECKPOINT: u64 = 1024;

impl<W: Workload> Reference<W> {
    /// The fingerprint of the state after the commands of `log` (`log[k]`:
    /// what was first applied at index `k`) up to `index`, or why it cannot be
    /// known (an index no node applied). `log` only ever grows.
    pub(crate) fn state_at(&mut self, log: &[Option<Payload>], index: u64) -> Result<u64, String> {
        if let Some(fp) = self.known.get(&index) {
            return Ok(*fp);
        }
        if index < self.at {
            let below = index / CHECKPOINT;
            self.replica = match below {
                0 => W::default(),
                j => self.checkpoints[j as usize - 1].clone(),
            };
            self.at = below * CHECKPOINT;
        }
        while self.at < index {
            let next = self.at + 1;
            match log.get(next as usize) {
                Some(Some(Payload::Command(cmd))) => {
                    self.replica.apply(next, cmd);
                }
                Some(Some(_)) => {}
                _ => return Err(format!("no node applied index {next}, so the state at {index} is unknown")),
            }
            self.at = next;
            if next % CHECKPOINT == 0 && self.checkpoints.len() as u64 == next / CHECKPOINT - 1 {
                self.checkpoints.push(self.replica.clone());
            }
        }
        let fp = state_fingerprint(&self.replica);
        self.known.insert(index, fp);
        Ok(fp)
    }
}

impl<P: Protocol, W: Workload> Sim<P, W> {
    /// The live node that has applied the furthest, and how far.
    pub(crate) fn furthest_applied(&self) -> Option<(NodeId, u64, Instant)> {
        let live = (0..self.hosts.len()).filter(|i| self.protos[*i].is_some());
        let furthest = live.max_by_key(|i| (self.hosts[*i].applied_index, std::cmp::Reverse(*i)))?;
        Some((self.hosts[furthest].id, self.hosts[furthest].applied_index, self.now))
    }

    /// The checks at the end of a whole run, when every node is up, every link
    /// healed and the drain is over: each live node holds the state the
    /// committed log gives at its applied index, and every live node of the
    /// final configuration has applied at least as far as `target`, the
    /// furthest any node had applied halfway through the drain.
    pub(crate) fn check_final_states(&mut self, target: Option<(NodeId, u64, Instant)>) {
        let mut live: Vec<usize> = (0..self.hosts.len()).filter(|i| self.protos[*i].is_some()).collect();
        live.sort_by_key(|i| self.hosts[*i].applied_index); // the replay only goes forwards
        for &i in &live {
            let (id, index) = (self.hosts[i].id, self.hosts[i].applied_index);
            let held = state_fingerprint(&self.hosts[i].state);
            let detail = match self.reference.state_at(self.sessions.committed(), index) {
                Ok(expected) if expected == held => continue,
                Ok(_) => format!("{id} holds a state that differs from the committed log replayed to index {index}"),
                Err(why) => format!("{id} applied up to {index}: {why}"),
            };
            self.violation("final state", detail);
        }
        let Some((ahead, top, at)) = target.filter(|_| self.config.check_convergence) else { return };
        let members: Vec<NodeId> = match self.metrics.config_changes.iter().max_by_key(|c| c.index) {
            Some(last) => last.membership.voters.iter().chain(&last.membership.learners).copied().collect(),
            None => self.members.clone(),
        };
        for &i in &live {
            let (id, index) = (self.hosts[i].id, self.hosts[i].applied_index);
            if index < top && members.contains(&id) {
                let detail = format!(
                    "{id} applied up to {index} by the end of the run, but {ahead} had applied {top} at {at}, with every node up and every link healed: it did not catch up"
                );
                self.violation("convergence", detail);
            }
        }
    }
}

/// A fingerprint of a state machine's state: FNV-1a over its snapshot bytes.
pub(crate) fn state_fingerprint(state: &impl StateMachine) -> u64 {
    bytes_fingerprint(&state.snapshot())
}

/// FNV-1a over `bytes`: stable across machines and Rust releases.
pub(crate) fn bytes_fingerprint(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::{ClientId, Command, KvOp, KvStore};

    fn put(seq: u64, key: &str) -> Payload {
        let op = KvOp::Put { key: key.as_bytes().to_vec().into(), value: seq.to_string().into_bytes().into() };
        Payload::Command(Command::new(ClientId(1), seq, op.encode()))
    }

    #[test]
    fn the_state_at_an_index_is_the_log_replayed_to_it_forwards_and_backwards() {
        let mut reference = Reference::<KvStore>::default();
        let mut log = vec![None];
        let mut direct = Vec::new();
        let mut kv = KvStore::new();
        for i in 1..=3000u64 {
            let payload = if i % 7 == 0 { Payload::Noop } else { put(i, &format!("k{}", i % 13)) };
            log.push(Some(payload.clone()));
            if let Payload::Command(cmd) = &payload {
                kv.apply(i, cmd);
            }
            direct.push(state_fingerprint(&kv));
        }
        for i in [2500u64, 10, 3000, 1024, 1025, 1, 2047, 2048] {
            assert_eq!(reference.state_at(&log, i), Ok(direct[i as usize - 1]), "index {i}");
        }
        assert_eq!(reference.state_at(&log, 0), Ok(state_fingerprint(&KvStore::new())));
    }

    #[test]
    fn an_index_nobody_applied_is_reported_not_guessed() {
        let log = vec![None, Some(put(1, "a")), None, Some(put(3, "a"))];
        let err = Reference::<KvStore>::default().state_at(&log, 3).unwrap_err();
        assert!(err.contains("no node applied index 2"), "{err}");
    }
}
