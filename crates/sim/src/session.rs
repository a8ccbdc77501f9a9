//! Session order: what a local read promises, and how a run is checked for it.
//!
//! A *local read* is answered from the state of whichever node the client
//! talks to, without coordination (ZooKeeper's plain read). It is not
//! linearizable — the node may lag writes that others have acknowledged — so
//! the linearizability checker never sees it. What it does promise is
//! sequential consistency, per client (ZooKeeper's "a client never sees an
//! older view after a newer one", kept even when the client reconnects to
//! another server, because the client carries the last zxid it has seen):
//!
//! 1. **The state is a committed prefix.** A read answered "at index i" returns
//!    the value its key has after applying the agreed committed log up to i.
//!    The check replays that log (the payload first applied at each index,
//!    which the simulator already holds every node to) into a fresh store and
//!    compares, so a node answering from some other state is caught.
//! 2. **A client's view never goes back.** The index a local read is answered
//!    at is at least every index the client has seen before: the index its
//!    earlier writes (and log reads) took effect at in the committed log, and
//!    the index every earlier answer was stamped with (the serving node's
//!    applied index, ZooKeeper's reply zxid). Read-your-writes and monotonic
//!    reads are both this rule.
//!
//! Reads served outside the log by the protocol's linearizable path (ReadIndex,
//! `sync`) are held to rule 1 too; the linearizability checker covers the rest.

use crate::history::Operation;
use crate::Workload;
use quorum_core::{ClientId, NodeId, Payload};
use std::collections::{BTreeMap, HashMap};

/// How an answered operation was served.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Served {
    /// As a command through the log.
    Log,
    /// By the protocol's linearizable read path (ReadIndex, `sync`).
    Read,
    /// From the answering node's own state, without coordination.
    LocalRead,
}

/// What an answer told its client.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The answering node's applied index when it answered (for a read
    /// outside the log: the state it read). ZooKeeper's reply zxid.
    pub(crate) zxid: u64,
    /// How the operation was served.
    pub(crate) served: Served,
}

/// What a run records for the session check.
#[derive(Debug, Default)]
pub(crate) struct SessionLog {
    /// The payload first applied at each index (index 0 unused): the committed log.
    committed: Vec<Option<Payload>>,
    /// For each history entry, what its answer said (`None`: never answered).
    seen: Vec<Option<Seen>>,
    local_reads: u64,
}

/// A broken session rule: the check's name and what it saw.
pub(crate) type Broken = (&'static str, String);

impl SessionLog {
    /// Some node applied `payload` at `index`, the first to apply anything there.
    pub(crate) fn record_commit(&mut self, index: u64, payload: &Payload) {
        let slot = index as usize;
        if self.committed.len() <= slot {
            self.committed.resize(slot + 1, None);
        }
        debug_assert!(self.committed[slot].is_none(), "only the first application of an index is recorded");
        self.committed[slot] = Some(payload.clone());
    }

    /// The committed log: `[k]` is the payload first applied at index `k`.
    pub(crate) fn committed(&self) -> &[Option<Payload>] {
        &self.committed
    }

    /// History entry `op` got the answer its client accepted.
    pub(crate) fn record_answer(&mut self, op: usize, seen: Seen) {
        if self.seen.len() <= op {
            self.seen.resize(op + 1, None);
        }
        debug_assert!(self.seen[op].is_none(), "an operation is answered once");
        self.seen[op] = Some(seen);
        if seen.served == Served::LocalRead {
            self.local_reads += 1;
        }
    }

    /// What history entry `op` was told, if it was answered.
    pub(crate) fn seen(&self, op: usize) -> Option<Seen> {
        self.seen.get(op).copied().flatten()
    }

    /// Answered local reads.
    pub(crate) fn local_reads(&self) -> u64 {
        self.local_reads
    }

    /// Checks both rules over the whole history; returns every broken one.
    pub(crate) fn check<W: Workload>(&self, history: &[Operation<W::Op, W::Output>]) -> Vec<Broken> {
        let mut broken = self.check_values::<W>(history);
        broken.extend(self.check_order::<W>(history));
        broken
    }

    /// Rule 1: each read outside the log returned what the committed log's
    /// state answers to it at the index it was answered at.
    fn check_values<W: Workload>(&self, history: &[Operation<W::Op, W::Output>]) -> Vec<Broken> {
        let mut reads: Vec<(u64, usize)> = (0..history.len())
            .filter_map(|i| self.seen(i).filter(|s| s.served != Served::Log).map(|s| (s.zxid, i)))
            .collect();
        reads.sort_unstable();
        let mut broken = Vec::new();
        let mut replica = W::default();
        let mut applied = 0u64;
        for (index, op) in reads {
            while applied < index {
                applied += 1;
                match self.committed.get(applied as usize) {
                    Some(Some(Payload::Command(cmd))) => {
                        replica.apply(applied, cmd);
                    }
                    Some(Some(_)) => {}
                    _ => {
                        let what = describe::<W>(&history[op]);
                        let detail = format!("{what} was answered at index {index}, but no node applied {applied}");
                        broken.push(("read value", detail));
                        return broken;
                    }
                }
            }
            let Some(got) = history[op].result() else { continue };
            let expected = W::decode(&replica.query(&W::encode(&history[op].op)));
            if *got != expected {
                let what = describe::<W>(&history[op]);
                let detail = format!(
                    "{what} was answered at index {index} with {}, but the committed log holds {} there",
                    W::show_output(got),
                    W::show_output(&expected)
                );
                broken.push(("read value", detail));
            }
        }
        broken
    }

    /// Rule 2: no client's local read is answered below an index it has seen.
    fn check_order<W: Workload>(&self, history: &[Operation<W::Op, W::Output>]) -> Vec<Broken> {
        if self.local_reads == 0 {
            return Vec::new();
        }
        let mut took_effect: HashMap<(ClientId, u64), u64> = HashMap::new();
        for (index, payload) in self.committed.iter().enumerate() {
            if let Some(Payload::Command(cmd)) = payload {
                // A retried command may be logged twice; the first takes effect.
                took_effect.entry((cmd.client, cmd.seq)).or_insert(index as u64);
            }
        }
        let mut sessions: BTreeMap<ClientId, Vec<usize>> = BTreeMap::new();
        for (i, op) in history.iter().enumerate() {
            sessions.entry(op.client).or_default().push(i);
        }
        let mut broken = Vec::new();
        for ops in sessions.values() {
            // The highest index the client has seen so far, and the operation that showed it.
            let mut floor: Option<(u64, usize)> = None;
            for &i in ops {
                let seen = self.seen(i);
                if let (Some(s), Some((high, by))) = (seen, floor) {
                    if s.served == Served::LocalRead && s.zxid < high {
                        let detail = format!(
                            "local read {} was answered at index {}, but the client had already seen index {high} ({})",
                            describe::<W>(&history[i]),
                            s.zxid,
                            describe::<W>(&history[by])
                        );
                        broken.push(("session order", detail));
                    }
                }
                // Where its own command took effect counts only once it was
                // answered: a client that gave up on an operation never saw it.
                let answered = history[i].result().is_some();
                let logged = took_effect.get(&(history[i].client, history[i].seq)).copied().filter(|_| answered);
                for index in [seen.map(|s| s.zxid), logged].into_iter().flatten() {
                    if floor.is_none_or(|(high, _)| index > high) {
                        floor = Some((index, i));
                    }
                }
            }
        }
        broken
    }
}

fn describe<W: Workload>(op: &Operation<W::Op, W::Output>) -> String {
    let by = op.answered_by.map_or_else(|| "unanswered".to_string(), |n: NodeId| format!("answered by {n}"));
    format!("c{}#{} {} ({by})", op.client.0, op.seq, W::show_op(&op.op))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;
    use bytes::Bytes;
    use quorum_core::{Command, Instant, KvOp, KvResult, KvStore};

    fn put(client: u64, seq: u64, value: &str) -> Payload {
        let op = KvOp::Put { key: Bytes::from("k"), value: Bytes::from(value.to_string()) };
        Payload::Command(Command::new(ClientId(client), seq, op.encode()))
    }

    fn op(client: u64, seq: u64, op: KvOp, result: KvResult) -> Operation {
        Operation {
            client: ClientId(client),
            seq,
            op,
            invoked: Instant::ZERO,
            outcome: Outcome::Ok { at: Instant::ZERO, result },
            answered_by: Some(NodeId(1)),
        }
    }

    fn get(client: u64, seq: u64, value: Option<&str>) -> Operation {
        let result = KvResult::Value(value.map(|v| Bytes::from(v.to_string())));
        op(client, seq, KvOp::Get { key: Bytes::from("k") }, result)
    }

    /// A log of two writes by client 1 (index 1: "a", index 2: "b").
    fn two_writes() -> SessionLog {
        let mut log = SessionLog::default();
        log.record_commit(1, &put(1, 1, "a"));
        log.record_commit(2, &put(1, 2, "b"));
        log
    }

    fn checks(log: &SessionLog, history: &[Operation]) -> Vec<&'static str> {
        log.check::<KvStore>(history).into_iter().map(|(check, _)| check).collect()
    }

    #[test]
    fn a_local_read_may_be_stale_but_never_older_than_what_its_client_saw() {
        let mut log = two_writes();
        let w = |seq, v: &str| {
            op(1, seq, KvOp::Put { key: Bytes::from("k"), value: Bytes::from(v.to_string()) }, KvResult::Done)
        };
        // Client 2 reads "a" at index 1 (stale: "b" is committed) then "b": fine.
        let history = vec![w(1, "a"), w(2, "b"), get(2, 1, Some("a")), get(2, 2, Some("b"))];
        log.record_answer(0, Seen { zxid: 1, served: Served::Log });
        log.record_answer(1, Seen { zxid: 2, served: Served::Log });
        log.record_answer(2, Seen { zxid: 1, served: Served::LocalRead });
        log.record_answer(3, Seen { zxid: 2, served: Served::LocalRead });
        assert!(checks(&log, &history).is_empty());
    }

    #[test]
    fn reading_an_older_state_after_a_newer_one_breaks_session_order() {
        let mut log = two_writes();
        let history = vec![get(2, 1, Some("b")), get(2, 2, Some("a"))];
        log.record_answer(0, Seen { zxid: 2, served: Served::LocalRead });
        log.record_answer(1, Seen { zxid: 1, served: Served::LocalRead });
        assert_eq!(checks(&log, &history), ["session order"]);
    }

    #[test]
    fn missing_your_own_write_breaks_session_order_even_if_its_answer_was_not_stamped() {
        // Client 1's write took effect at index 2; its next local read is answered at 1.
        let mut log = two_writes();
        let history = vec![
            op(1, 2, KvOp::Put { key: Bytes::from("k"), value: Bytes::from("b") }, KvResult::Done),
            get(1, 3, Some("a")),
        ];
        log.record_answer(1, Seen { zxid: 1, served: Served::LocalRead });
        assert_eq!(checks(&log, &history), ["session order"]);
    }

    #[test]
    fn a_write_its_client_gave_up_on_is_not_part_of_what_the_client_has_seen() {
        // Client 1 gave up on its write, which took effect at index 2; its
        // next local read, answered at 1, is within its session's rules.
        let mut log = two_writes();
        let mut gave_up = op(1, 2, KvOp::Put { key: Bytes::from("k"), value: Bytes::from("b") }, KvResult::Done);
        gave_up.outcome = Outcome::Unknown;
        let history = vec![gave_up, get(1, 3, Some("a"))];
        log.record_answer(1, Seen { zxid: 1, served: Served::LocalRead });
        assert!(checks(&log, &history).is_empty());
    }

    #[test]
    fn a_value_that_is_not_the_committed_one_at_the_index_served_is_caught() {
        let mut log = two_writes();
        let history = vec![get(2, 1, Some("a")), get(3, 1, None)];
        log.record_answer(0, Seen { zxid: 2, served: Served::LocalRead });
        log.record_answer(1, Seen { zxid: 0, served: Served::Read });
        assert_eq!(checks(&log, &history), ["read value"]);
    }
}
