//! Client requests inside the node task: proposing, reading, forwarding to the
//! leader, and answering.

use super::{AdminAction, Node, NodeStatus, PendingRead, Request, Waiter};
use crate::metrics::NodeMetrics;
use crate::service::Service;
use crate::wire::{Op, Outcome, Wire};
use quorum_core::{Bytes, ClientId, Command, NodeId, ProposeError, Protocol, ReadError, Transport};

impl<P, T, M> Node<P, T, M>
where
    P: Protocol,
    T: Transport<Wire<P::Message>>,
    M: Service,
{
    pub(super) async fn on_request(&mut self, request: Request) {
        match request {
            Request::Op { client, seq, op, reply } => self.execute(client, seq, op, Waiter::Local(reply)).await,
            Request::Local { query, reply } => {
                let _ = reply.send(self.machine.query(&query));
            }
            Request::Admin { action, reply } => {
                let now = self.now();
                let done = match action {
                    AdminAction::TransferLeader(target) => self
                        .protocol
                        .transfer_to(now, target, &mut self.out)
                        .map(|()| Bytes::from(format!("transferring leadership to {target}"))),
                    AdminAction::Snapshot => Ok(Bytes::from(self.snapshot_now())),
                    AdminAction::Backup => {
                        Ok(Bytes::from(crate::backup::encode(self.applied, &self.machine.snapshot())))
                    }
                    AdminAction::Members => Ok(Bytes::from(self.members_text())),
                    AdminAction::Change(change) => return self.propose_change(change, reply),
                };
                let _ = reply.send(done);
            }
            Request::Status { reply } => {
                let status = self.protocol.status();
                let leader_client_addr = status.leader.and_then(|l| self.client_addr_of(l));
                let _ = reply.send(NodeStatus {
                    status,
                    protocol: P::NAME,
                    applied_index: self.applied,
                    leader_client_addr,
                    items: self.machine.item_count(),
                });
            }
        }
    }

    fn client_addr_of(&self, node: NodeId) -> Option<String> {
        self.config.directory.lock().expect("directory lock").get(&node).cloned()
    }

    fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.config.request_timeout
    }

    /// Serves one command or query, here or through the leader.
    pub(super) async fn execute(&mut self, client: ClientId, seq: u64, op: Op, waiter: Waiter) {
        if let Some(cached) = self.machine.cached_response(client, seq) {
            // A retry of a command already applied: the first answer, not a second application.
            return self.answer(waiter, Outcome::Done(cached)).await;
        }
        match op {
            Op::Query(query) => {
                if let Some((query, waiter)) = self.start_read(client, seq, query, waiter).await {
                    // No read path outside the log: the query is ordered like a command.
                    self.propose(client, seq, Op::Query(query), waiter).await;
                }
            }
            command => self.propose(client, seq, command, waiter).await,
        }
    }

    /// Serves a query without the log if the protocol can confirm a read
    /// index; hands it back when it must go through the log instead.
    async fn start_read(
        &mut self,
        client: ClientId,
        seq: u64,
        query: Bytes,
        waiter: Waiter,
    ) -> Option<(Bytes, Waiter)> {
        if self.config.local_reads {
            let answer = self.machine.query(&query);
            self.answer(waiter, Outcome::Done(answer)).await;
            return None;
        }
        let id = self.next_id();
        let now = self.now();
        match self.protocol.read(now, id, &mut self.out) {
            Ok(()) => {
                let read = PendingRead { query, client, seq, waiter, deadline: self.deadline() };
                self.reads.insert(id, read);
                None
            }
            Err(ReadError::NotLeader(e)) => {
                self.elsewhere(client, seq, Op::Query(query), waiter, e.leader_hint).await;
                None
            }
            Err(busy @ ReadError::Busy { .. }) => {
                self.answer(waiter, Outcome::Retry(busy.to_string())).await;
                None
            }
            Err(ReadError::Unsupported) => Some((query, waiter)),
        }
    }

    /// Orders a command (or a query the protocol can only read through the log).
    pub(super) async fn propose(&mut self, client: ClientId, seq: u64, op: Op, waiter: Waiter) {
        let (Op::Command(data) | Op::Query(data)) = &op;
        let now = self.now();
        // Time in a command comes from the node that proposes it (the leader).
        let stamped = match &op {
            Op::Command(data) => self.machine.stamp(data, super::unix_millis()),
            Op::Query(_) => None,
        };
        let cmd = Command::new(client, seq, stamped.unwrap_or_else(|| data.clone()));
        match self.protocol.propose(now, cmd, &mut self.out) {
            Ok(()) => {
                NodeMetrics::bump(&self.metrics.proposals);
                let deadline = self.deadline();
                self.pending.insert((client, seq), (waiter, deadline));
            }
            Err(ProposeError::NotLeader(e)) => self.elsewhere(client, seq, op, waiter, e.leader_hint).await,
            Err(busy @ ProposeError::Busy { .. }) => self.answer(waiter, Outcome::Retry(busy.to_string())).await,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// This node cannot serve the request: forward it to the leader, or say who it is.
    async fn elsewhere(&mut self, client: ClientId, seq: u64, op: Op, waiter: Waiter, hint: Option<NodeId>) {
        let leader = hint.filter(|l| *l != self.config.id);
        match (waiter, leader) {
            (Waiter::Local(reply), Some(leader)) if self.config.forward => {
                let id = self.next_id();
                let deadline = self.deadline();
                self.forwards.insert(id, (leader, reply, deadline));
                self.send(leader, Wire::Forward { id, client, seq, op }).await;
            }
            // Forwarded requests go one hop only: the follower retries with a fresher hint.
            (waiter, leader) => self.answer(waiter, Outcome::NotLeader(leader)).await,
        }
    }

    pub(super) async fn read_ready(&mut self, id: u64, index: u64) {
        let Some(read) = self.reads.remove(&id) else { return };
        if self.applied >= index {
            let answer = self.machine.query(&read.query);
            self.answer(read.waiter, Outcome::Done(answer)).await;
        } else {
            self.ready_reads.entry(index).or_default().push((read.query, read.waiter));
        }
    }

    pub(super) async fn read_failed(&mut self, id: u64, hint: Option<NodeId>) {
        let Some(read) = self.reads.remove(&id) else { return };
        self.elsewhere(read.client, read.seq, Op::Query(read.query), read.waiter, hint).await;
    }

    /// Answers every read whose index the store has now applied.
    pub(super) async fn release_reads(&mut self) {
        while let Some(entry) = self.ready_reads.first_entry() {
            if *entry.key() > self.applied {
                break;
            }
            for (query, waiter) in entry.remove() {
                let answer = self.machine.query(&query);
                self.answer(waiter, Outcome::Done(answer)).await;
            }
        }
    }

    /// Answers requests past their deadline with a retryable error.
    pub(super) async fn expire_requests(&mut self) {
        let now = tokio::time::Instant::now();
        let late: Vec<_> = self.pending.iter().filter(|(_, (_, d))| *d <= now).map(|(k, _)| *k).collect();
        for key in late {
            if let Some((waiter, _)) = self.pending.remove(&key) {
                self.answer(waiter, Outcome::Retry("timed out waiting for the command to commit".into())).await;
            }
        }
        let late: Vec<_> = self.reads.iter().filter(|(_, r)| r.deadline <= now).map(|(k, _)| *k).collect();
        for id in late {
            if let Some(read) = self.reads.remove(&id) {
                self.answer(read.waiter, Outcome::Retry("timed out waiting for the read to be confirmed".into())).await;
            }
        }
        let late: Vec<_> = self.forwards.iter().filter(|(_, (_, _, d))| *d <= now).map(|(id, _)| *id).collect();
        for id in late {
            if let Some((leader, reply, _)) = self.forwards.remove(&id) {
                let _ = reply.send(Outcome::Retry(format!("the leader {leader} did not answer in time")));
            }
        }
    }

    /// Requests forwarded to `peer` may never be answered (its link broke, or
    /// it no longer leads): their clients are told to retry.
    pub(super) fn fail_forwards_to(&mut self, peer: NodeId) {
        let ids: Vec<_> = self.forwards.iter().filter(|(_, (to, _, _))| *to == peer).map(|(id, _)| *id).collect();
        for id in ids {
            if let Some((_, reply, _)) = self.forwards.remove(&id) {
                let _ = reply.send(Outcome::Retry(format!("the leader {peer} is gone or no longer leads")));
            }
        }
    }
}
