//! The client side of a real run: closed-loop client threads that write
//! unique values and read them back, the final read of every key written,
//! and their records as a history for the linearizability checker.

use super::{Connector, KvClient, System};
use crate::workload::Workload;
use quorum_core::{ClientId, Instant, KvOp, KvResult, NodeId};
use quorum_sim::{Operation, Outcome};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One operation a real client made: which key, what, when, and how it ended.
pub(super) struct Op {
    key: usize,
    kind: OpKind,
    invoked: std::time::Instant,
    /// When the answer came; `None` for a write whose outcome is unknown (the
    /// connection failed or timed out: it may or may not have taken effect).
    done: Option<std::time::Instant>,
    /// The member it was sent to.
    member: usize,
}

enum OpKind {
    /// A write of the value unique to this client and the operation's place
    /// in its record (`unique_value`: rebuilt for the check, not kept).
    Put,
    /// A read and what it returned.
    Get(Option<Vec<u8>>),
}

/// One client's operations, in the order it made them.
pub(super) type Record = Vec<Op>;

/// The key a real client names by number.
fn key_name(prefix: &str, key: usize) -> String {
    format!("{prefix}k{key}")
}

/// A value nobody else writes: the client and the operation's number, padded
/// to the workload's size, so that a read says which write it saw.
fn unique_value(client: usize, seq: usize, size: usize) -> Vec<u8> {
    let mut value = format!("c{client}.{seq}.").into_bytes();
    value.resize(value.len().max(size), b'v');
    value
}

/// A closed-loop client: one operation at a time to member `first` (a read
/// with probability `read_ratio`, else a write of a unique value), moving on
/// to the next member when one fails or takes longer than 100 ms. A failed
/// write is kept with an unknown outcome; a failed read says nothing and is
/// left out.
struct ClientLoop {
    id: usize,
    first: usize,
    members: usize,
    connect: Connector,
    w: Workload,
    /// Prefixed to every key: the warm-up's clients write keys of their own.
    prefix: &'static str,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<(usize, Record)>>>,
}

impl ClientLoop {
    fn run(self) {
        let mut record = Record::new();
        let mut target = self.first;
        let mut con: Option<Box<dyn KvClient>> = None;
        let mut rng = quorum_core::Rng::new(self.id as u64 + 1);
        while !self.stop.load(Ordering::Relaxed) {
            let Some(c) = con.as_mut() else {
                con = (self.connect)(target, Duration::from_millis(100));
                if con.is_none() {
                    target = (target + 1) % self.members;
                    std::thread::sleep(Duration::from_millis(5));
                }
                continue;
            };
            let key = rng.range(0, self.w.keys.max(1) as u64) as usize;
            let name = key_name(self.prefix, key);
            let invoked = std::time::Instant::now();
            let read = self.w.read_ratio > 0.0 && rng.chance(self.w.read_ratio);
            let (kind, ok) = if read {
                match c.get(&name) {
                    Ok(value) => (OpKind::Get(value), true),
                    Err(_) => (OpKind::Get(None), false),
                }
            } else {
                // Named by the operation's place in the record (writes are always kept).
                let value = unique_value(self.id, record.len(), self.w.value_size);
                (OpKind::Put, c.put(&name, &value).is_ok())
            };
            let done = ok.then(std::time::Instant::now);
            if ok || !read {
                record.push(Op { key, kind, invoked, done, member: target });
            }
            if !ok {
                // The member died, hung, or has no leader to forward to: try the next one.
                con = None;
                target = (target + 1) % self.members;
            }
        }
        self.out.lock().expect("record lock").push((self.id, record));
    }
}

/// The records the client threads left, client `i`'s at `i` (as its values
/// name it; a client that left none has an empty record there).
pub(super) fn in_client_order(records: Vec<(usize, Record)>) -> Vec<Record> {
    let mut ordered: Vec<Record> = Vec::new();
    for (id, record) in records {
        ordered.resize_with(ordered.len().max(id + 1), Vec::new);
        ordered[id] = record;
    }
    ordered
}

/// Every key some client wrote (or tried to), once each, in order.
pub(super) fn written_keys(records: &[Record]) -> Vec<usize> {
    let mut keys: Vec<usize> =
        records.iter().flatten().filter(|op| matches!(op.kind, OpKind::Put)).map(|op| op.key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// When each operation answered up to `until`, in no particular order.
pub(super) fn answer_times(records: &[Record], until: std::time::Instant) -> Vec<std::time::Instant> {
    records.iter().flatten().filter_map(|op| op.done).filter(|done| *done <= until).collect()
}

/// After the load (and the fault) is over, reads every key the clients
/// wrote, once, through any member that answers: a write acknowledged and
/// then lost shows as a final value older than it. If the keys are not all
/// read within `limit`, the run fails with the first key left unread.
pub(super) fn final_reads(system: &dyn System, written: &[usize], limit: Duration) -> Result<Record, String> {
    let connect = system.connector();
    let members = system.procs().len();
    let deadline = std::time::Instant::now() + limit;
    let mut record = Record::new();
    let (mut target, mut con) = (0, None);
    let mut keys = written.iter().copied().peekable();
    while let Some(&key) = keys.peek() {
        if std::time::Instant::now() > deadline {
            return Err(format!("no member answered a read of {} within {limit:?}", key_name("", key)));
        }
        let Some(c) = con.as_mut() else {
            con = connect(target, Duration::from_millis(500));
            if con.is_none() {
                target = (target + 1) % members;
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        let invoked = std::time::Instant::now();
        match c.get(&key_name("", key)) {
            Ok(value) => {
                let done = Some(std::time::Instant::now());
                record.push(Op { key, kind: OpKind::Get(value), invoked, done, member: target });
                keys.next();
            }
            Err(_) => {
                con = None;
                target = (target + 1) % members;
            }
        }
    }
    Ok(record)
}

/// Starts `w.clients` client threads; they run until `stop` is set.
///
/// Client `i` starts at the member `i` places after the leader, so the
/// clients spread evenly and every system puts the same share of them on its
/// leader: one client always talks to the leader (which member wins the
/// first election differs by protocol, and a forwarded write costs a hop).
pub(super) fn start_clients(
    system: &dyn System,
    w: &Workload,
    prefix: &'static str,
    stop: &Arc<AtomicBool>,
    records: &Arc<Mutex<Vec<(usize, Record)>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let members = system.procs().len();
    let leader = system.leader().unwrap_or(0);
    (0..w.clients.max(1))
        .map(|id| {
            let client = ClientLoop {
                id,
                first: (leader + id) % members,
                members,
                connect: system.connector(),
                w: w.clone(),
                prefix,
                stop: stop.clone(),
                out: records.clone(),
            };
            std::thread::spawn(move || client.run())
        })
        .collect()
}

/// The clients' records as a history for the linearizability checker, with
/// times from `since` and writes of `value_size` bytes. Client `i`'s
/// operations are client `i`'s; the final reads (the last record) are one
/// more client's.
pub(super) fn history_of(
    records: &[Record],
    value_size: usize,
    since: impl Fn(std::time::Instant) -> Instant,
) -> Vec<Operation> {
    let mut history = Vec::new();
    for (c, record) in records.iter().enumerate() {
        for (seq, op) in record.iter().enumerate() {
            let key = bytes::Bytes::from(key_name("", op.key));
            let (op_kind, result) = match &op.kind {
                OpKind::Put => {
                    let value = bytes::Bytes::from(unique_value(c, seq, value_size));
                    (KvOp::Put { key, value }, KvResult::Done)
                }
                OpKind::Get(value) => (KvOp::Get { key }, KvResult::Value(value.clone().map(bytes::Bytes::from))),
            };
            let outcome = match op.done {
                Some(done) => Outcome::Ok { at: since(done), result },
                None => Outcome::Unknown,
            };
            history.push(Operation {
                client: ClientId(c as u64),
                seq: seq as u64,
                op: op_kind,
                invoked: since(op.invoked),
                outcome,
                answered_by: op.done.map(|_| NodeId(op.member as u64 + 1)),
            });
        }
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history of records given as (client, key, kind, invoked ms,
    /// answered ms), with values of `SIZE` bytes.
    fn history(ops: &[(usize, usize, OpKind, u64, Option<u64>)]) -> Vec<Operation> {
        let start = std::time::Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut records: Vec<Record> = Vec::new();
        for (client, key, kind, invoked, done) in ops {
            records.resize_with(records.len().max(client + 1), Vec::new);
            let kind = match kind {
                OpKind::Put => OpKind::Put,
                OpKind::Get(v) => OpKind::Get(v.clone()),
            };
            records[*client].push(Op { key: *key, kind, invoked: at(*invoked), done: done.map(at), member: 0 });
        }
        history_of(&records, SIZE, |t| Instant::from_nanos(t.saturating_duration_since(start).as_nanos() as u64 + 1))
    }

    const SIZE: usize = 8;

    fn put() -> OpKind {
        OpKind::Put
    }

    /// A read that saw the write at place `seq` of client `client`'s record (or nothing).
    fn get(seen: Option<(usize, usize)>) -> OpKind {
        OpKind::Get(seen.map(|(client, seq)| unique_value(client, seq, SIZE)))
    }

    #[test]
    fn records_are_placed_by_their_client_even_when_one_is_missing() {
        let op = || Op { key: 0, kind: OpKind::Put, invoked: std::time::Instant::now(), done: None, member: 0 };
        let ordered = in_client_order(vec![(2, vec![op(), op()]), (0, vec![op()])]);
        assert_eq!(ordered.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 0, 2]);
    }

    #[test]
    fn unique_values_name_their_client_and_operation_and_keep_the_size() {
        assert_eq!(unique_value(3, 17, 12), b"c3.17.vvvvvv".to_vec());
        assert_eq!(unique_value(3, 17, 2), b"c3.17.".to_vec(), "longer than asked rather than not unique");
    }

    #[test]
    fn a_history_of_reads_that_see_the_latest_write_is_linearizable() {
        let h = history(&[
            (0, 1, put(), 0, Some(2)),
            (1, 1, get(Some((0, 0))), 3, Some(4)),
            (0, 1, put(), 5, Some(7)),
            (1, 1, get(Some((0, 1))), 8, Some(9)),
            (2, 1, get(Some((0, 1))), 10, Some(11)),
        ]);
        assert_eq!(quorum_sim::lincheck::check(&h), Ok(()));
    }

    #[test]
    fn a_stale_read_is_a_violation_on_its_key() {
        let h = history(&[(0, 1, put(), 0, Some(2)), (0, 1, put(), 3, Some(5)), (1, 1, get(Some((0, 0))), 6, Some(7))]);
        let v = quorum_sim::lincheck::check(&h).expect_err("a read of a value overwritten before it began");
        assert_eq!(v.key, "k1");
    }

    #[test]
    fn an_acknowledged_write_the_final_read_does_not_see_is_a_violation() {
        // Client 1's record stands for the final reads.
        let lost = history(&[(0, 2, put(), 0, Some(2)), (1, 2, get(None), 10, Some(11))]);
        assert_eq!(quorum_sim::lincheck::check(&lost).expect_err("lost").key, "k2");
    }

    #[test]
    fn a_write_whose_answer_never_came_may_or_may_not_have_taken_effect() {
        for seen in [None, Some((0, 0))] {
            let h = history(&[(0, 2, put(), 0, None), (1, 2, get(seen), 10, Some(11))]);
            assert_eq!(quorum_sim::lincheck::check(&h), Ok(()), "final read {seen:?}");
        }
        assert_eq!(history(&[(0, 2, put(), 0, None)])[0].answered_by, None);
    }
}
