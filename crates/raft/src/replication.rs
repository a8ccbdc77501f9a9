//! Log replication (§5.3): AppendEntries with the consistency check, fast
//! backup on conflicts, batching and pipelining, and the commit rule (§5.4.2).

use crate::message::{Append, AppendReply, Message, Reject};
use crate::node::{entry_bytes, State};
use crate::progress::ReplicationMode;
use crate::Out;
use crate::Raft;
use quorum_core::{Entry, Instant, NodeId};

impl Raft {
    /// Entries for one message starting at `from`: at most `max_entries_per_message`
    /// and `max_bytes_per_message` (but always at least one if there is one).
    fn entries_from(&self, from: u64) -> Vec<Entry> {
        let mut entries = self.log.slice(from, self.log.last_index(), self.config.max_entries_per_message);
        let sizes = entries.iter().map(|e| entry_bytes(e) as usize);
        entries.truncate(quorum_core::batch::fitting(sizes, usize::MAX, self.config.max_bytes_per_message));
        entries
    }

    /// Sends one AppendEntries to `to` if its progress allows. With `allow_empty`
    /// an append without entries (a probe or heartbeat) is sent too.
    /// Returns true if a message with entries left.
    pub(crate) fn send_append(&mut self, now: Instant, to: NodeId, allow_empty: bool, out: &mut Out) -> bool {
        let Some(pr) = self.lead.progress.get(&to) else { return false };
        if !pr.can_send(self.config.max_inflight) {
            return false;
        }
        let prev = pr.next_index - 1;
        let Some(prev_stamp) = self.log.stamp_at(prev) else {
            // §7: the entries it needs were compacted; send the snapshot instead.
            self.start_snapshot(now, to, out);
            return false;
        };
        let entries = self.entries_from(prev + 1);
        if entries.is_empty() && !allow_empty {
            return false;
        }
        let last = prev + entries.len() as u64;
        let carried = !entries.is_empty();
        let pr = self.lead.progress.get_mut(&to).expect("checked above");
        if carried || pr.mode == ReplicationMode::Probe {
            pr.sent(last);
        }
        let msg = Append {
            term: self.term,
            prev_index: prev,
            prev_term: prev_stamp.major,
            entries,
            commit: self.commit,
            round: self.lead.round,
        };
        out.send(to, Message::Append(msg));
        carried
    }

    /// Sends `to` everything its window allows (pipelining).
    pub(crate) fn replicate_to(&mut self, now: Instant, to: NodeId, out: &mut Out) {
        while self.send_append(now, to, false, out) {}
    }

    /// Sends new entries to every follower.
    pub(crate) fn broadcast_append(&mut self, now: Instant, out: &mut Out) {
        let peers: Vec<NodeId> = self.lead.progress.keys().copied().collect();
        for peer in peers {
            self.replicate_to(now, peer, out);
        }
    }

    /// The heartbeat timer fired: a new round to everyone, retrying what stalled.
    pub(crate) fn on_heartbeat_timer(&mut self, now: Instant, out: &mut Out) {
        self.lead.heartbeat_deadline = now + self.config.heartbeat_interval;
        self.broadcast_round(now, out);
    }

    /// Starts a heartbeat round: every follower gets an append (or a snapshot chunk)
    /// carrying the new round number, which its answer echoes.
    pub(crate) fn broadcast_round(&mut self, now: Instant, out: &mut Out) {
        self.lead.round_wanted = false;
        self.lead.round += 1;
        self.lead.rounds.push_back((self.lead.round, now));
        if self.lead.rounds.len() > 256 {
            self.lead.rounds.pop_front();
        }
        let stall = self.config.heartbeat_interval * 2;
        let peers: Vec<NodeId> = self.lead.progress.keys().copied().collect();
        for peer in peers {
            let pr = self.lead.progress.get_mut(&peer).expect("listed");
            // Datagram links lose appends: a pipeline with no progress falls back to probing.
            if pr.mode == ReplicationMode::Replicate && !pr.inflight.is_empty() && now - pr.last_progress >= stall {
                pr.become_probe(pr.match_index + 1, now);
            }
            match pr.mode {
                ReplicationMode::Snapshot { .. } => self.send_snapshot_chunk(peer, out),
                ReplicationMode::Probe => {
                    pr.probe_sent = false;
                    self.send_append(now, peer, true, out);
                }
                ReplicationMode::Replicate => {
                    let (match_index, has_more) = (pr.match_index, pr.next_index <= self.log.last_index());
                    if has_more && self.send_append(now, peer, false, out) {
                        self.replicate_to(now, peer, out);
                    } else if let Some(stamp) = self.log.stamp_at(match_index) {
                        out.send(peer, self.heartbeat_to(match_index, stamp.major));
                    } else {
                        let pr = self.lead.progress.get_mut(&peer).expect("listed");
                        pr.become_probe(match_index + 1, now);
                        self.send_append(now, peer, true, out);
                    }
                }
            }
        }
    }

    /// A follower receives AppendEntries from the leader of its term (Figure 2, receiver rules).
    pub(crate) fn on_append(&mut self, now: Instant, from: NodeId, msg: Append, out: &mut Out) {
        if self.state == State::Leader {
            return self.drop_malformed(from, "an append from another leader of this node's term");
        }
        self.heard_from_leader(now, from);
        let round = msg.round;
        let Append { mut prev_index, mut prev_term, mut entries, commit, .. } = msg;
        let heard = self.heard_commit.filter(|(term, _)| *term == self.term).map_or(0, |(_, c)| c);
        self.heard_commit = Some((self.term, heard.max(commit)));
        self.join_floor.get_or_insert(commit);
        // Entries at or below our commit index are committed: they match the leader's already.
        if prev_index < self.commit {
            let skip = (self.commit - prev_index) as usize;
            if skip >= entries.len() {
                let reply = AppendReply { term: self.term, result: Ok(self.commit), round };
                self.send_durable(from, Message::AppendReply(reply), out);
                return;
            }
            entries.drain(..skip);
            prev_index = self.commit;
            prev_term = self.log.stamp_at(prev_index).expect("the commit index is at or above the offset").major;
        }
        // §5.3 consistency check: our log must hold prev_index with prev_term.
        let result = match self.log.stamp_at(prev_index) {
            None => Err(Reject { prev_index, conflict_term: None, conflict_index: self.log.last_index() + 1 }),
            Some(s) if s.major != prev_term => Err(self.conflict_hint(prev_index, s.major)),
            Some(_) => Ok(self.store_entries(prev_index, entries)),
        };
        if let Ok(last_new) = result {
            // Figure 2: commitIndex = min(leaderCommit, index of last new entry).
            self.set_commit(commit.min(last_new));
        }
        let reply = AppendReply { term: self.term, result, round };
        self.send_durable(from, Message::AppendReply(reply), out);
    }

    /// Fast backup: the term in conflict and the first index we hold of it.
    fn conflict_hint(&self, prev_index: u64, term: u64) -> Reject {
        let floor = self.commit.max(self.log.offset()) + 1;
        let mut first = prev_index;
        while first > floor && self.log.stamp_at(first - 1).is_some_and(|s| s.major == term) {
            first -= 1;
        }
        Reject { prev_index, conflict_term: Some(term), conflict_index: first }
    }

    /// Stores entries after a successful consistency check; returns the last index they cover.
    fn store_entries(&mut self, prev_index: u64, entries: Vec<Entry>) -> u64 {
        let last_new = prev_index + entries.len() as u64;
        for entry in entries {
            if entry.index <= self.log.last_index() {
                if self.log.stamp_at(entry.index) == Some(entry.stamp) {
                    continue; // already held (a duplicate or reordered append)
                }
                // §5.3: an existing entry conflicts with a new one: delete it and all that follow.
                self.truncate(entry.index);
            }
            self.append_entry(entry);
        }
        last_new
    }

    /// The leader hears back from a follower.
    pub(crate) fn on_append_reply(&mut self, now: Instant, from: NodeId, reply: AppendReply, out: &mut Out) {
        if self.state != State::Leader {
            return;
        }
        let last_index = self.log.last_index();
        if reply.result.as_ref().is_ok_and(|index| *index > last_index) {
            // A follower of this term cannot match past the leader's log.
            return self.drop_malformed(from, "an append acknowledged past the leader's log");
        }
        if reply.round > self.lead.round {
            return self.drop_malformed(from, "an answer to a heartbeat round not yet sent");
        }
        let Some(pr) = self.lead.progress.get_mut(&from) else { return };
        if reply.round < pr.min_round {
            return; // from before it was made a voter: maybe from a process since wiped
        }
        pr.recent_active = true;
        pr.acked_round = pr.acked_round.max(reply.round);
        match reply.result {
            Ok(index) => {
                if matches!(pr.mode, ReplicationMode::Snapshot { .. }) {
                    return;
                }
                let moved = pr.on_success(index, now);
                if pr.mode == ReplicationMode::Probe {
                    pr.become_replicate(now);
                }
                if moved {
                    self.maybe_commit();
                    self.maybe_send_timeout_now(from, out);
                }
                self.replicate_to(now, from, out);
            }
            Err(reject) => {
                if pr.is_stale_rejection(reject.prev_index) {
                    return;
                }
                if reject.conflict_term.is_none()
                    && reject.conflict_index <= pr.match_index
                    && !self.config.planted(crate::PlantedBug::TrustMatchIndex)
                {
                    // The follower's log ends below an index it acknowledged:
                    // it lost its disk and came back empty (or this rejection
                    // was overtaken by a later success). Either way, counting
                    // it from where it says its log ends is safe: the commit
                    // index never goes back, and at worst entries are resent.
                    tracing::warn!(
                        node = self.id.0,
                        follower = from.0,
                        acknowledged = pr.match_index,
                        holds = reject.conflict_index.saturating_sub(1),
                        "a follower's log ends below what it acknowledged: replicating to it from there"
                    );
                    pr.match_index = reject.conflict_index.saturating_sub(1);
                }
                let match_index = pr.match_index;
                let next = self.backup_index(&reject).clamp(match_index + 1, last_index + 1);
                let pr = self.lead.progress.get_mut(&from).expect("checked above");
                pr.become_probe(next, now);
                self.send_append(now, from, true, out);
            }
        }
    }

    /// Where to retry after a rejection: past our last entry of the conflicting
    /// term if we have it, else at the follower's first entry of that term.
    fn backup_index(&self, reject: &Reject) -> u64 {
        let Some(term) = reject.conflict_term else { return reject.conflict_index };
        let mut i = reject.prev_index.min(self.log.last_index());
        while i > self.log.offset() {
            let t = self.log.stamp_at(i).expect("held").major;
            if t == term {
                return i + 1;
            }
            if t < term {
                break;
            }
            i -= 1;
        }
        reject.conflict_index
    }

    /// §5.4.2: the leader commits the highest index stored on a quorum, but
    /// only if that entry is from its current term (Figure 8). The leader
    /// counts itself only up to what its own disk has made durable.
    pub(crate) fn maybe_commit(&mut self) {
        if self.state != State::Leader {
            return;
        }
        let (id, durable) = (self.id, self.durable_index);
        let progress = &self.lead.progress;
        let quorum_index = self.configs.current().quorum_value(|n| {
            if n == id {
                durable
            } else {
                progress.get(&n).map_or(0, |p| p.match_index)
            }
        });
        if quorum_index > self.commit && self.log.stamp_at(quorum_index).is_some_and(|s| s.major == self.term) {
            self.set_commit(quorum_index);
        }
    }
}
