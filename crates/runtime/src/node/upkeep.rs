//! The state machine's own upkeep, proposed by the leader: for the
//! key-value store, deleting keys past their deadline
//! ([`Service::housekeeping`]). Replicas never expire keys on their own
//! clocks; the leader proposes a sweep carrying its clock, and every replica
//! deletes the same keys at the same index.

use super::{Node, Waiter};
use crate::service::Service;
use crate::wire::{Op, Wire};
use quorum_core::{ClientId, Protocol, Role, Transport};
use tokio::sync::oneshot;

/// The low 48 bits of the session that proposes a node's upkeep (client
/// sessions count up from 1 below the node id in the high 16 bits).
const UPKEEP_SESSION: u64 = (1 << 48) - 1;

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn unix_millis() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since.as_millis() as u64
}

impl<P, T, M> Node<P, T, M>
where
    P: Protocol,
    T: Transport<Wire<P::Message>>,
    M: Service,
{
    /// On the leader (or a Basic Paxos peer), proposes what the state machine
    /// asks for at this clock reading, one command at a time. The sequence
    /// number is the clock reading, so a later sweep is never taken for a
    /// retry of an earlier one, across restarts too.
    pub(super) async fn propose_upkeep(&mut self) {
        if !matches!(self.protocol.status().role, Role::Leader | Role::Peer) {
            return;
        }
        let client = ClientId((self.config.id.0 << 48) | UPKEEP_SESSION);
        if self.pending.keys().any(|(c, _)| *c == client) {
            return; // the last one has not committed (or timed out) yet
        }
        let now = unix_millis();
        let Some(command) = self.machine.housekeeping(now) else { return };
        // Nobody waits for the answer: the receiver is dropped at once.
        let (reply, _) = oneshot::channel();
        self.propose(client, now, Op::Command(command), Waiter::Local(reply)).await;
    }
}
