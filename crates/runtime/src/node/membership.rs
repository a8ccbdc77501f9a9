//! Membership changes on a running node: an operator's change proposed to
//! the protocol and answered once it commits, the member list, and dialling
//! members added while the node runs (their peer addresses come from the
//! log, see `Membership::addresses`).

use super::Node;
use crate::service::Service;
use crate::wire::Wire;
use quorum_core::{Bytes, MembershipChange, NodeId, Protocol, Role, Transport};
use std::fmt::Write;
use tokio::sync::oneshot;
use tracing::warn;

/// An operator's change this leader proposed, waiting to commit.
pub(super) struct PendingChange {
    change: MembershipChange,
    index: u64,
    term: u64,
    reply: oneshot::Sender<Result<Bytes, String>>,
    deadline: tokio::time::Instant,
}

/// How long an operator waits for a change to commit before being told to check.
const CHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The most changes waiting to commit at once (the protocols take one at a time).
const MAX_PENDING_CHANGES: usize = 16;

impl<P, T, M> Node<P, T, M>
where
    P: Protocol,
    T: Transport<Wire<P::Message>>,
    M: Service,
{
    /// Proposes `change`; `reply` hears once it commits, or why not.
    pub(super) fn propose_change(&mut self, change: MembershipChange, reply: oneshot::Sender<Result<Bytes, String>>) {
        if self.changes.len() >= MAX_PENDING_CHANGES {
            let _ = reply.send(Err("too many membership changes waiting: retry shortly".into()));
            return;
        }
        let now = self.now();
        match self.protocol.change_membership(now, change.clone(), &mut self.out) {
            Ok(index) => {
                let term = self.protocol.status().term;
                let deadline = tokio::time::Instant::now() + CHANGE_TIMEOUT;
                self.changes.push(PendingChange { change, index, term, reply, deadline });
            }
            Err(why) => {
                let _ = reply.send(Err(why));
            }
        }
    }

    /// Answers the changes that committed, and those that can no longer be
    /// known to (this node lost the leadership it proposed them in, or time ran out).
    pub(super) fn answer_changes(&mut self) {
        if self.changes.is_empty() {
            return;
        }
        let status = self.protocol.status();
        let now = tokio::time::Instant::now();
        for pending in std::mem::take(&mut self.changes) {
            // Within the term it was proposed in, only this node led, so the
            // entry at the change's index is still the change (a leader
            // removed by it steps down in that same term, after it commits).
            let same_term = status.term == pending.term;
            let still_leading = status.role == Role::Leader && same_term;
            let answer = if same_term && status.commit_index >= pending.index {
                Ok(Bytes::from(format!("{}: committed at index {}", pending.change, pending.index)))
            } else if !still_leading {
                Err(format!(
                    "leadership changed before '{}' (index {}) committed: it may or may not take effect; see QUORUM MEMBERS",
                    pending.change, pending.index
                ))
            } else if pending.deadline <= now {
                Err(format!(
                    "'{}' (index {}) has not committed within {CHANGE_TIMEOUT:?}; see QUORUM MEMBERS",
                    pending.change, pending.index
                ))
            } else {
                self.changes.push(pending);
                continue;
            };
            let _ = pending.reply.send(answer);
        }
    }

    /// Dials the members whose peer addresses the configuration carries and
    /// the transport does not know yet.
    pub(super) fn meet_new_members(&mut self) {
        let Some(membership) = self.protocol.membership() else { return };
        if membership.addresses == self.addresses_seen {
            return;
        }
        self.addresses_seen = membership.addresses.clone();
        for (node, address) in &self.addresses_seen {
            if *node == self.config.id {
                continue;
            }
            if let Err(why) = self.transport.add_peer(*node, address) {
                warn!(id = %self.config.id, %node, %address, %why, "cannot reach a new member");
            }
        }
    }

    /// One line per member: id, `voter` or `learner`, and its peer address
    /// (from the configuration, else this node's settings; `?` if neither).
    pub(super) fn members_text(&self) -> String {
        let (voters, learners, membership) = match self.protocol.membership() {
            Some(m) => (m.voters.clone(), m.learners.clone(), Some(m)),
            None => (self.config.members.clone(), Vec::new(), None),
        };
        let address = |node: NodeId| {
            membership
                .and_then(|m| m.address_of(node).map(str::to_string))
                .or_else(|| self.config.peer_addresses.get(&node).cloned())
                .unwrap_or_else(|| "?".to_string())
        };
        let mut text = String::new();
        for (nodes, role) in [(&voters, "voter"), (&learners, "learner")] {
            for node in nodes {
                let _ = writeln!(text, "{} {role} {}", node.0, address(*node));
            }
        }
        text
    }
}
