//! Messages from peers are input, not trusted state. A message that no
//! correct Raft node could have sent (version skew, a bug or corruption on
//! the sender) is dropped, logged and counted ([`Raft::malformed_dropped`]);
//! it never reaches an assertion. Assertions guard this node's own state.
//!
//! Two kinds of checks: the message's shape on its own (`check_shape`,
//! before anything else looks at it), and a few that need this node's state,
//! made where that state is read (an acknowledgement past the leader's log,
//! a leader hearing from another leader of its own term).

use crate::message::Message;
use crate::Raft;
use quorum_core::{Entry, NodeId, Payload, SnapshotMeta};

/// No term or log index reaches this: anything above is corruption. With
/// every term and index below it, `+ 1` and `+ len` never overflow.
pub(crate) const LIMIT: u64 = 1 << 62;

fn check_entries(term: u64, prev_index: u64, prev_term: u64, entries: &[Entry]) -> Result<(), String> {
    let mut last_term = prev_term;
    for (i, e) in entries.iter().enumerate() {
        if e.index != prev_index + 1 + i as u64 {
            return Err(format!("entry {} of an append after {prev_index} has index {}", i, e.index));
        }
        if e.stamp.minor != 0 || e.stamp.major < last_term || e.stamp.major > term {
            return Err(format!(
                "entry {} has stamp {:?} (previous term {last_term}, leader term {term})",
                e.index, e.stamp
            ));
        }
        last_term = e.stamp.major;
        if let Payload::Membership(m) = &e.payload {
            if !m.is_sane() {
                return Err(format!("entry {} holds a membership that makes no sense: {m:?}", e.index));
            }
        }
    }
    Ok(())
}

/// What is wrong with a message on its own, if anything.
pub(crate) fn check_shape(msg: &Message, trust_snapshot_meta: bool) -> Result<(), String> {
    let big = |what: &str, v: u64| if v >= LIMIT { Err(format!("{what} {v} is out of range")) } else { Ok(()) };
    big("term", msg.term())?;
    match msg {
        Message::Vote(v) => {
            big("last index", v.last_index)?;
            if v.last_term > v.term {
                return Err(format!("a candidate's last log term {} is above its term {}", v.last_term, v.term));
            }
        }
        Message::VoteReply(_) | Message::TimeoutNow { .. } => {}
        Message::Append(a) => {
            big("prev index", a.prev_index)?;
            big("commit index", a.commit)?;
            big("entry count", a.entries.len() as u64)?;
            if a.prev_term > a.term {
                return Err(format!("prev term {} is above the leader's term {}", a.prev_term, a.term));
            }
            check_entries(a.term, a.prev_index, a.prev_term, &a.entries)?;
            big("last index", a.prev_index + a.entries.len() as u64)?;
        }
        Message::AppendReply(r) => match &r.result {
            Ok(index) => big("match index", *index)?,
            Err(reject) => {
                big("rejected prev index", reject.prev_index)?;
                big("conflict index", reject.conflict_index)?;
            }
        },
        Message::Snapshot(c) => {
            big("snapshot index", c.index)?;
            big("snapshot offset", c.offset)?;
            if c.index_term > c.term {
                return Err(format!("snapshot term {} is above the leader's term {}", c.index_term, c.term));
            }
            if c.offset == 0 && !trust_snapshot_meta {
                // The first chunk starts the snapshot: its metadata must make sense.
                SnapshotMeta::decode(&c.meta).map_err(|e| format!("snapshot metadata: {e}"))?;
            }
        }
        Message::SnapshotReply(r) => {
            big("snapshot index", r.index)?;
        }
    }
    Ok(())
}

impl Raft {
    /// Drops a message no correct peer sends: logged and counted.
    pub(crate) fn drop_malformed(&mut self, from: NodeId, why: &str) {
        self.malformed += 1;
        tracing::warn!(node = self.id.0, term = self.term, %from, why, "malformed message dropped");
    }

    /// Messages dropped because no correct peer could have sent them (see `validate.rs`).
    pub fn malformed_dropped(&self) -> u64 {
        self.malformed
    }
}
