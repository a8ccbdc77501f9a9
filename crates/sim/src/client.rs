//! Closed-loop clients: each has one operation outstanding, sends it to the node
//! it believes leads, follows leader hints, and on a timeout retries elsewhere
//! with the same (client, seq) so that the command is applied at most once.
//!
//! A client whose operation times out `give_up_after` times gives up on it:
//! the history keeps the operation with an unknown outcome (it may still take
//! effect), and the client moves on to its next one; sometimes it crashes
//! too and comes back under a new id, its session gone.
//!
//! Like a ZooKeeper client, each remembers the highest applied index any
//! answer was stamped with (its last zxid) and sends it with a local read, so
//! the node that serves the read waits until it has applied that much.

use crate::history::{Operation, Outcome};
use crate::session::{Seen, Served};
use crate::sim::{Event, Sim};
use crate::trace::What;
use crate::workload::OpContext;
use crate::Workload;
use bytes::Bytes;
use quorum_core::{ClientId, Command, Duration, Instant, NodeId, Protocol};

/// A request on its way to a node.
pub(crate) struct Request {
    pub(crate) client: usize,
    pub(crate) cmd: Command,
    /// Set for a read that may use the protocol's own read path: the query.
    pub(crate) read_query: Option<Bytes>,
    /// Set for a local read: the highest index the client has seen, which the
    /// serving node must have applied before it answers.
    pub(crate) local_floor: Option<u64>,
    /// When the client sent it.
    pub(crate) sent: Instant,
}

/// A node's answer to a client.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// The result, stamped with the answering node's applied index (for a
    /// read outside the log: the state it read), and how it was served.
    Ok {
        /// The state machine's response bytes.
        response: Bytes,
        zxid: u64,
        served: Served,
    },
    NotLeader(Option<NodeId>),
    /// The node is at its bound of unfinished requests: retry it a little later.
    Busy,
}

struct InFlight<O> {
    seq: u64,
    op: O,
    history_index: usize,
    attempt: u32,
    /// A read to serve from the contacted node's own state.
    local: bool,
}

pub(crate) struct Client<O> {
    /// Which client this is; with `incarnation`, its id (a crash changes it).
    index: usize,
    incarnation: u64,
    seq: u64,
    target: usize,
    nodes: usize,
    in_flight: Option<InFlight<O>>,
    /// The highest applied index an answer was stamped with (ZooKeeper's lastZxid).
    last_seen: u64,
}

impl<O> Client<O> {
    /// Its id: the index from 1, and the incarnation in the high bits.
    fn id(&self) -> ClientId {
        ClientId((self.incarnation << 32) | (self.index as u64 + 1))
    }

    pub(crate) fn new(index: usize, nodes: usize) -> Self {
        Client { index, incarnation: 0, seq: 0, target: index % nodes, in_flight: None, nodes, last_seen: 0 }
    }

    /// A crash and restart: a new id (so a new session at every node), no
    /// memory of what it saw. Sequence numbers go on from where they were:
    /// answers find their client by (index, seq), and a late answer to the
    /// old incarnation's operation must not pass for the new one's.
    fn restart(&mut self) {
        self.incarnation += 1;
        self.last_seen = 0;
    }
}

/// A short label of an answer: how traces and pictures of the wire name it.
pub(crate) fn answer_label(answer: &Answer) -> String {
    match answer {
        Answer::Ok { .. } => "answer".into(),
        Answer::NotLeader(Some(l)) => format!("not leader, try {l}"),
        Answer::NotLeader(None) => "not leader".into(),
        Answer::Busy => "busy, retry later".into(),
    }
}

/// Client ids in traces are numbered from 1.
fn client_id(c: usize) -> u64 {
    c as u64 + 1
}

impl<P: Protocol, W: Workload> Sim<P, W> {
    /// Open loop: a request arrives; an idle client session takes it.
    pub(crate) fn arrival(&mut self) {
        if !self.load_running {
            return;
        }
        let idle = (0..self.clients.len()).find(|c| self.clients[*c].in_flight.is_none());
        let c = idle.unwrap_or_else(|| {
            self.clients.push(Client::new(self.clients.len(), self.config.nodes));
            self.clients.len() - 1
        });
        self.client_next(c);
        let rate = self.config.clients.rate.expect("arrivals only in open loop");
        let gap = -(self.rng.unit().max(1e-12).ln()) / rate;
        self.queue.push(self.now + Duration::from_nanos((gap * 1e9) as u64), Event::Arrival);
    }

    /// Starts the client's next operation (if the load is still running).
    pub(crate) fn client_next(&mut self, c: usize) {
        if !self.load_running || self.clients[c].in_flight.is_some() {
            return;
        }
        let key = self.random_key();
        let client = &self.clients[c];
        let mut ctx = OpContext {
            rng: &mut self.rng,
            client: client.id(),
            seq: client.seq + 1,
            now: self.now,
            key,
            config: &self.config.clients,
            history: &self.history,
            reader: c < self.config.clients.readers,
        };
        let op = W::next_op(&mut ctx);
        let local = self.roll_local_read(&op);
        if local {
            // A client may reconnect to any server: the hardest case for session order.
            self.clients[c].target = self.rng.index(self.config.nodes);
        }
        self.start_op(c, op, local);
    }

    /// Sends one operation from a new client to `node`, as someone typing at
    /// a console would: the client follows redirects and retries like the
    /// workload's clients, its request and answer are traced, and the
    /// operation joins the history the checks judge. `local` asks for a
    /// local read (see `ClientConfig::local_read_ratio`). Returns the
    /// client's number in traces (`c1` is 1).
    pub fn submit(&mut self, node: NodeId, op: W::Op, local: bool) -> u64 {
        let target = self.index(node);
        let c = self.clients.len();
        let mut client = Client::new(c, self.config.nodes);
        client.target = target;
        self.clients.push(client);
        let local = local && W::is_read(&op);
        self.start_op(c, op, local);
        client_id(c)
    }

    /// Client `c` starts `op`: into the history, and off to its target.
    fn start_op(&mut self, c: usize, op: W::Op, local: bool) {
        let client = &mut self.clients[c];
        client.seq += 1;
        let seq = client.seq;
        self.history.push(Operation {
            client: client.id(),
            seq,
            op: op.clone(),
            invoked: self.now,
            outcome: Outcome::Unknown,
            answered_by: None,
        });
        let history_index = self.history.len() - 1;
        self.clients[c].in_flight = Some(InFlight { seq, op, history_index, attempt: 0, local });
        self.client_send(c);
    }

    /// Whether a read is a local read. Rolls the dice only if local reads are
    /// configured, so other runs keep their random stream (and trace hashes).
    fn roll_local_read(&mut self, op: &W::Op) -> bool {
        let ratio = self.config.clients.local_read_ratio;
        W::is_read(op) && ratio > 0.0 && self.rng.unit() < ratio
    }

    fn random_key(&mut self) -> usize {
        if self.key_cdf.is_empty() {
            return self.rng.index(self.config.clients.keys.max(1));
        }
        let u = self.rng.unit();
        self.key_cdf.partition_point(|p| *p < u).min(self.key_cdf.len() - 1)
    }

    /// Sends the in-flight operation to the client's current target and arms its timeout.
    fn client_send(&mut self, c: usize) {
        let client = &mut self.clients[c];
        let Some(f) = client.in_flight.as_mut() else { return };
        f.attempt += 1;
        let (seq, attempt, op, local) = (f.seq, f.attempt, f.op.clone(), f.local);
        let node = client.target;
        let data = W::encode(&op);
        let read_query = (W::is_read(&op) && (local || self.config.clients.reads == crate::config::ReadPath::Protocol))
            .then(|| data.clone());
        let cmd = Command::new(client.id(), seq, data);
        let local_floor = local.then_some(client.last_seen);
        self.trace.mix_u64s(&[7, self.now.as_nanos(), c as u64, seq, node as u64]);
        self.trace.record(self.now, || What::Request {
            client: client_id(c),
            node: node as u64 + 1,
            op: W::show_op(&op),
        });
        let at = self.now + self.net.sample(&mut self.rng);
        // A client cut off from the node (`Sim::cut_client`, traced there) loses the request.
        if !self.net.client_cut(c, node) {
            self.queue.push(
                at,
                Event::Request { node, req: Request { client: c, cmd, read_query, local_floor, sent: self.now } },
            );
        }
        let timeout = self.now + self.config.clients.timeout;
        self.queue.push(timeout, Event::ClientRetry { client: c, seq, attempt, retarget: true });
    }

    pub(crate) fn answer(&mut self, node: usize, c: usize, seq: u64, answer: Answer) {
        let Some(f) = self.clients[c].in_flight.as_ref() else { return };
        if f.seq != seq {
            return; // a late answer to an operation already finished
        }
        self.trace.mix_u64s(&[8, self.now.as_nanos(), c as u64, seq]);
        match answer {
            Answer::Ok { response, zxid, served } => {
                let result = W::decode(&response);
                let index = f.history_index;
                self.sessions.record_answer(index, Seen { zxid, served });
                let client = &mut self.clients[c];
                client.last_seen = client.last_seen.max(zxid);
                self.trace.record(self.now, || What::Reply {
                    client: client_id(c),
                    node: node as u64 + 1,
                    result: W::show_output(&result),
                });
                let invoked = self.history[index].invoked;
                self.metrics.latencies.push(self.now - invoked);
                self.metrics.completions.push(self.now);
                self.history[index].outcome = Outcome::Ok { at: self.now, result };
                self.history[index].answered_by = Some(NodeId(node as u64 + 1));
                self.clients[c].in_flight = None;
                if self.config.clients.rate.is_none() {
                    let next = self.now + self.config.clients.think_time;
                    self.queue.push(next, Event::ClientNext { client: c });
                }
            }
            Answer::NotLeader(hint) => {
                self.trace.record(self.now, || What::Reply {
                    client: client_id(c),
                    node: node as u64 + 1,
                    result: answer_label(&Answer::NotLeader(hint)),
                });
                let client = &mut self.clients[c];
                // A hint names a node of the cluster, unless a forged message
                // (`NetworkConfig::corrupt`) put another id in the node's head.
                let hinted = hint.and_then(|l| l.0.checked_sub(1)).map(|i| i as usize).filter(|i| *i < client.nodes);
                client.target = match hinted {
                    Some(l) if l != node => l,
                    _ => (node + 1) % client.nodes,
                };
                // Back off a little when no leader is known, so a leaderless
                // cluster is not flooded with requests.
                let pause = if hint.is_some() { Duration::ZERO } else { Duration::from_millis(5) };
                let f = client.in_flight.as_mut().expect("checked above");
                f.attempt += 1; // cancels the pending timeout of the attempt just answered
                let attempt = f.attempt;
                self.queue.push(self.now + pause, Event::ClientRetry { client: c, seq, attempt, retarget: false });
            }
            Answer::Busy => {
                self.trace.record(self.now, || What::Reply {
                    client: client_id(c),
                    node: node as u64 + 1,
                    result: answer_label(&Answer::Busy),
                });
                let f = self.clients[c].in_flight.as_mut().expect("checked above");
                f.attempt += 1; // cancels the pending timeout of the attempt just answered
                let attempt = f.attempt;
                let pause = Duration::from_millis(5);
                self.queue.push(self.now + pause, Event::ClientRetry { client: c, seq, attempt, retarget: false });
            }
        }
    }

    /// Sends the in-flight operation again: after a timeout to the next node
    /// (`retarget`), after a redirect to the node already chosen.
    pub(crate) fn client_retry(&mut self, c: usize, seq: u64, attempt: u32, retarget: bool) {
        let client = &mut self.clients[c];
        let Some(f) = client.in_flight.as_ref() else { return };
        if f.seq != seq || f.attempt != attempt {
            return; // answered, or superseded by a newer attempt
        }
        let give_up = self.config.clients.give_up_after;
        if retarget && give_up > 0 && f.attempt >= give_up {
            return self.give_up(c);
        }
        let client = &mut self.clients[c];
        if retarget {
            client.target = (client.target + 1) % client.nodes;
            if self.config.driver_bug == Some(crate::config::DriverBug::RetryWithNewSeq) {
                client.seq += 1;
                let new_seq = client.seq;
                if let Some(f) = client.in_flight.as_mut() {
                    f.seq = new_seq;
                }
            }
        }
        self.client_send(c);
    }

    /// The client stops waiting for its operation, whose outcome stays
    /// unknown, and (while the load runs) starts its next one; sometimes it
    /// crashes first and comes back under a new id.
    fn give_up(&mut self, c: usize) {
        let f = self.clients[c].in_flight.take().expect("giving up on an operation in flight");
        self.metrics.given_up += 1;
        let crash = self.rng.chance(self.config.clients.crash_on_give_up);
        self.trace.mix_u64s(&[14, self.now.as_nanos(), c as u64, f.seq, u64::from(crash)]);
        self.trace.record(self.now, || What::GiveUp { client: client_id(c), crashed: crash });
        if crash {
            self.clients[c].restart();
        }
        if self.config.clients.rate.is_none() {
            let next = self.now + self.config.clients.think_time;
            self.queue.push(next, Event::ClientNext { client: c });
        }
    }

    /// The load phase is over: heal (a test's drop filter too), restart, stop
    /// injecting faults, and let clients finish (but not start) operations.
    pub(crate) fn end_of_load(&mut self) {
        self.load_running = false;
        self.heal();
        self.drop_filter = None;
        self.net.set_loss(0.0, 0.0);
        for id in self.members.clone() {
            self.thaw(id);
            self.restart(id);
        }
    }
}
