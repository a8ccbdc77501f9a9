//! The sans-IO `Protocol` trait that every consensus protocol implements.

use crate::{Command, Effects, Instant, NodeId, ReadId, Snapshot, Stored};
use bytes::Bytes;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fmt::{self, Debug};

/// What a node is doing right now.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Leads: orders commands for the cluster.
    Leader,
    /// Trying to become leader (Raft candidate, Zab LOOKING, Paxos Phase 1).
    Candidate,
    /// Follows a leader, or waits for one.
    Follower,
    /// Receives the log without voting.
    Learner,
    /// A leaderless peer that proposes, accepts and learns (Basic Paxos).
    Peer,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Role::Leader => "leader",
            Role::Candidate => "candidate",
            Role::Follower => "follower",
            Role::Learner => "learner",
            Role::Peer => "peer",
        };
        f.write_str(s)
    }
}

/// A summary of a node for tools, clients and the simulator. Cheap to compute.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Raft term, ballot round, or Zab epoch.
    pub term: u64,
    /// The leader this node believes in, if any.
    pub leader: Option<NodeId>,
    /// The highest index known committed.
    pub commit_index: u64,
    /// The highest commit index the current leader has announced to this
    /// node (its own on a leader or a Basic Paxos peer); `None` until the
    /// leader has said. A node that has applied less is still catching up,
    /// even if it has applied everything it knows committed (`/ready`).
    pub leader_commit: Option<u64>,
    /// The highest index in this node's log.
    pub last_index: u64,
}

/// The weakest kind of link a protocol is correct over.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinkKind {
    /// Messages may be lost, duplicated and reordered.
    Datagram,
    /// Order is kept and nothing is duplicated; a broken connection loses what
    /// was in flight and the driver reports it with `on_link_down` (TCP).
    Fifo,
}

/// A proposal or read reached a node that cannot order it.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct NotLeader {
    /// The node this one believes is leader, if it knows one.
    pub leader_hint: Option<NodeId>,
}

impl fmt::Display for NotLeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.leader_hint {
            Some(leader) => write!(f, "not the leader: send this request to {leader}"),
            None => write!(f, "not the leader, and no leader is known yet: retry shortly"),
        }
    }
}

/// Why a proposal was not accepted. Both are retryable: the first elsewhere,
/// the second here, later.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ProposeError {
    /// This node cannot order it; see the hint.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// This node already holds `limit` requests it has not finished: taking
    /// more would grow its queue without bound. Retry shortly.
    #[error("busy: this node holds as much unfinished work as it allows ({limit}); retry shortly")]
    Busy {
        /// The bound that was reached.
        limit: u64,
    },
}

impl ProposeError {
    /// The leader this node believes in, when the proposal went to the wrong node.
    pub fn leader_hint(&self) -> Option<NodeId> {
        match self {
            ProposeError::NotLeader(not_leader) => not_leader.leader_hint,
            ProposeError::Busy { .. } => None,
        }
    }
}

/// Why a `read` was not accepted.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// This node cannot serve it; see the hint.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// The protocol has no read path outside the log: propose the read as a command.
    #[error("this protocol serves linearizable reads through the log only")]
    Unsupported,
    /// This node already holds `limit` reads it has not answered. Retry shortly.
    #[error("busy: {limit} reads are already waiting at this node; retry shortly")]
    Busy {
        /// The bound that was reached.
        limit: u64,
    },
}

/// Why a node could not start: its identity or its stored state is wrong.
/// A node never starts from state it cannot read: the operator must look.
#[derive(Clone, Debug, Hash, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    /// The node's id is not in the member list it was given.
    #[error("node {id} is not a member of its cluster {members:?}")]
    NotAMember {
        /// This node.
        id: NodeId,
        /// The members it was given.
        members: Vec<NodeId>,
    },
    /// Stored state does not decode, or contradicts itself.
    #[error("stored {what} is unreadable or inconsistent: {detail}")]
    CorruptState {
        /// Which part of the stored state (`hard state`, `log`, `snapshot`...).
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

impl InitError {
    /// Stored state that is unreadable or inconsistent.
    pub fn corrupt(what: &'static str, detail: impl fmt::Display) -> Self {
        InitError::CorruptState { what, detail: detail.to_string() }
    }

    /// Fails with [`InitError::NotAMember`] unless `id` is in `members`.
    pub fn check_member(id: NodeId, members: &[NodeId]) -> Result<(), Self> {
        if members.contains(&id) {
            Ok(())
        } else {
            Err(InitError::NotAMember { id, members: members.to_vec() })
        }
    }
}

/// Everything a protocol needs to start (or restart after a crash).
#[derive(Clone, Debug, Hash)]
pub struct Init<C> {
    /// This node.
    pub id: NodeId,
    /// Every voting member at start-up, this node included, in ascending order.
    pub members: Vec<NodeId>,
    /// Protocol settings.
    pub config: C,
    /// What storage recovered (empty on first start).
    pub stored: Stored,
    /// Seed for the protocol's random choices (election timeouts, backoff).
    pub seed: u64,
    /// The time of start-up.
    pub now: Instant,
}

impl<C> Init<C> {
    /// True if this node starts with nothing stored and is not among
    /// `members`: it joins a running cluster (`quorum node --join`, or a disk
    /// replaced), and the log it replays may hold configurations that list
    /// an earlier incarnation of its id, whose votes it does not hold.
    pub fn joins_empty(&self) -> bool {
        let s = &self.stored;
        s.hard_state.is_none() && s.entries.is_empty() && s.snapshot.is_none() && !self.members.contains(&self.id)
    }

    /// Node `id` of a cluster of nodes `1..=cluster_size` starting for the
    /// first time (nothing stored), at time zero, with seed 1: the usual
    /// start of a test. Change any field with struct update syntax
    /// (`Init { stored, ..Init::first_start(NodeId(2), 3, config) }`).
    pub fn first_start(id: NodeId, cluster_size: u64, config: C) -> Self {
        let members = (1..=cluster_size).map(NodeId).collect();
        Init { id, members, config, stored: Stored::default(), seed: 1, now: Instant::ZERO }
    }

    /// For a protocol whose membership is fixed at start-up: checks that this
    /// node is one of `members`, then decodes its hard state
    /// ([`Stored::decode_hard_state`]).
    pub fn member_hard_state<H: DeserializeOwned + Default>(&self) -> Result<H, InitError> {
        InitError::check_member(self.id, &self.members)?;
        self.stored.decode_hard_state()
    }

    /// An id for this incarnation of the node, different at every restart
    /// (the seed and the start-up time mixed), so that a checker can tell a
    /// restarted node's fresh volatile state from the old one's.
    pub fn incarnation(&self) -> u64 {
        self.seed ^ self.now.as_nanos().rotate_left(32)
    }
}

/// A consensus protocol as a deterministic state machine. It never reads a clock,
/// touches a socket or a file, or spawns a task: a driver feeds it inputs and
/// carries out the [`Effects`] it asks for. Same inputs, same outputs.
pub trait Protocol: Sized + 'static {
    /// The messages nodes exchange.
    type Message: Clone + Debug + Serialize + DeserializeOwned + Send + 'static;
    /// Settings, with sensible defaults.
    type Config: Clone + Debug + Default + Send + 'static;

    /// A short lowercase name: `raft`, `zab`, `paxos`, `multipaxos`.
    const NAME: &'static str;
    /// The weakest links the protocol is correct over: datagrams (loss,
    /// duplication, reordering) unless it declares that it needs FIFO links.
    const LINKS: LinkKind = LinkKind::Datagram;

    /// Starts a node, from scratch or from what storage recovered. Stored state
    /// that does not decode or contradicts itself is an error, not a panic.
    fn new(init: Init<Self::Config>) -> Result<Self, InitError>;

    /// A message from a peer arrived.
    fn on_message(&mut self, now: Instant, from: NodeId, msg: Self::Message, out: &mut Effects<Self::Message>);

    /// The time reported by [`Protocol::next_timer`] has come.
    fn on_timer(&mut self, now: Instant, out: &mut Effects<Self::Message>);

    /// When `on_timer` wants to run next. The driver may call it late, never early.
    fn next_timer(&self) -> Option<Instant>;

    /// A client command to order. Fails fast on a node that cannot order it,
    /// or that already holds as many unfinished requests as it allows.
    fn propose(&mut self, now: Instant, cmd: Command, out: &mut Effects<Self::Message>) -> Result<(), ProposeError>;

    /// A linearizable read outside the log (ReadIndex, sync). Answered later by
    /// `ReadReady`/`ReadFailed`. The default says: read through the log instead.
    fn read(&mut self, now: Instant, id: ReadId, out: &mut Effects<Self::Message>) -> Result<(), ReadError> {
        let _ = (now, id, out);
        Err(ReadError::Unsupported)
    }

    /// May this node answer a read from its own state machine now, without
    /// asking anyone? Such a *local read* (ZooKeeper's default read) is
    /// sequentially consistent, not linearizable: it may miss writes another
    /// node has already acknowledged. The driver serves it once its state
    /// machine has applied the highest index the client has already seen (the
    /// client's last zxid), so a client never sees the state go backwards,
    /// even after moving to another node. The default says the protocol offers
    /// no local reads: use [`Protocol::read`] or the log.
    fn local_read(&self, now: Instant) -> Result<(), ReadError> {
        let _ = now;
        Err(ReadError::Unsupported)
    }

    /// The write with this tag, and every write before it, is durable.
    fn on_persisted(&mut self, now: Instant, tag: u64, out: &mut Effects<Self::Message>);

    /// The FIFO link to `peer` broke: messages in flight on it may be lost.
    fn on_link_down(&mut self, now: Instant, peer: NodeId, out: &mut Effects<Self::Message>) {
        let _ = (now, peer, out);
    }

    /// The driver snapshotted its state machine after applying `index`; the
    /// protocol may compact its log up to there.
    fn on_snapshot(&mut self, now: Instant, index: u64, data: Bytes, out: &mut Effects<Self::Message>) {
        let _ = (now, index, data, out);
    }

    /// An operator asks this leader to pass leadership to `target`. The
    /// default: the protocol has no such thing, and says so.
    fn transfer_to(&mut self, now: Instant, target: NodeId, out: &mut Effects<Self::Message>) -> Result<(), String> {
        let _ = (now, target, out);
        Err("this protocol has no leadership transfer".into())
    }

    /// An operator asks this leader to change the membership: add a learner,
    /// promote one, remove a member. Returns the log index of the change; it
    /// is in force once that index commits. A change that cannot be carried
    /// out safely is refused with the reason, and nothing changes. The
    /// default: the protocol's membership is fixed at start-up, and it says so.
    fn change_membership(
        &mut self,
        now: Instant,
        change: crate::MembershipChange,
        out: &mut Effects<Self::Message>,
    ) -> Result<u64, String> {
        let _ = (now, change, out);
        Err(format!("{} has no membership changes: its members are fixed at start-up", Self::NAME))
    }

    /// The configuration in force at this node, for a protocol whose
    /// membership can change (Raft: the newest in its log; Multi-Paxos: the
    /// newest it has committed); `None` (the default): the members are the
    /// ones it started with.
    fn membership(&self) -> Option<&crate::Membership> {
        None
    }

    /// True unless a membership change is in flight at this node: the
    /// configuration it goes by is known committed, so no other can take
    /// over from it. An operator changes membership, or replaces the disk of
    /// a node that does not vote, only then. The default (fixed membership): true.
    fn membership_committed(&self) -> bool {
        true
    }

    /// This node is about to stop: a leader that can pass leadership to an
    /// up-to-date peer starts doing so and returns true, so that the cluster
    /// does not wait out an election timeout (Raft's leadership transfer).
    /// The default does nothing.
    fn hand_off(&mut self, now: Instant, out: &mut Effects<Self::Message>) -> bool {
        let _ = (now, out);
        false
    }

    /// The snapshot a new cluster of `members` starts from when it is
    /// restored from a backup (`quorum restore --data-dir`): the state
    /// machine image `data`, as if every entry up to `index` had been
    /// applied, with whatever metadata this protocol keeps beside it. `None`
    /// (the default): the protocol cannot start from a snapshot.
    fn seed_snapshot(members: &[NodeId], index: u64, data: Bytes) -> Option<Snapshot> {
        let _ = (members, index, data);
        None
    }

    /// Role, term, leader and commit index.
    fn status(&self) -> Status;

    /// Whether `msg` vouches for what its sender has written (a vote, a
    /// promise, an acknowledgement of entries), so that it may leave only
    /// once every write issued before it is durable
    /// ([`Effects::send_durable`]): a receiver counts on it surviving a
    /// crash. The simulator fails a run in which such a message is sent
    /// plainly while its sender still has writes on their way to disk (the
    /// "durable sends" check), so a vote or an acknowledgement sent too
    /// early is caught in the run that sends it, not only in the rare one
    /// where a crash lands in between. The default: no message does.
    fn vouches_for_disk(msg: &Self::Message) -> bool {
        let _ = msg;
        false
    }

    /// Safety checks this protocol adds to the simulator's own.
    fn invariants() -> Vec<Box<dyn Invariant<Self>>> {
        Vec::new()
    }
}

/// A cluster-wide safety property, checked by the simulator after every step.
/// It may keep state across steps (for example, the leader seen for each term),
/// so it can catch a violation that spans crashes.
pub trait Invariant<P>: Send {
    /// A short name for reports.
    fn name(&self) -> &'static str;

    /// Checks the cluster after `stepped` handled an input. `nodes[i]` is node
    /// `i + 1`, or `None` while it is crashed. (References, so that a driver
    /// that keeps its nodes apart, like the model checker, copies none.)
    fn check(&mut self, now: Instant, stepped: NodeId, nodes: &[Option<&P>]) -> Result<(), String>;

    /// False for an invariant that needs the steps leading to a state, not
    /// just the state: one that remembers what a leader proposed, say, and
    /// checks deliveries against it after that leader crashed. The model
    /// checker shows invariants one state at a time and skips these.
    fn judges_one_state(&self) -> bool {
        true
    }

    /// The driver names the founding configuration's voters, before the
    /// first check. An invariant that judges membership changes starts from
    /// it; without it, every node `1..=n` founded the cluster (true in the
    /// simulator, not in a model with spare nodes that start outside). The
    /// default ignores it.
    fn founders(&mut self, voters: &[NodeId]) {
        let _ = voters;
    }
}

/// An invariant that judges the node that just stepped (most do). Implement
/// this and [`Invariant`] comes with it: steps of a node that is down are
/// skipped, and the name and `judges_one_state` are constants.
pub trait StepInvariant<P>: Send {
    /// A short name for reports.
    const NAME: &'static str;
    /// As [`Invariant::judges_one_state`].
    const JUDGES_ONE_STATE: bool = true;
    /// Checks `node`, which just handled an input; `nodes` as in [`Invariant::check`].
    fn check_stepped(&mut self, now: Instant, node: &P, nodes: &[Option<&P>]) -> Result<(), String>;
    /// As [`Invariant::founders`].
    fn founders(&mut self, voters: &[NodeId]) {
        let _ = voters;
    }
}

impl<P, T: StepInvariant<P>> Invariant<P> for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn check(&mut self, now: Instant, stepped: NodeId, nodes: &[Option<&P>]) -> Result<(), String> {
        match node_of(stepped, nodes) {
            Some(node) => self.check_stepped(now, node, nodes),
            None => Ok(()),
        }
    }

    fn founders(&mut self, voters: &[NodeId]) {
        StepInvariant::founders(self, voters);
    }

    fn judges_one_state(&self) -> bool {
        T::JUDGES_ONE_STATE
    }
}

/// Node `id` among `nodes` (node `i + 1` at `nodes[i]`), if it is up.
pub fn node_of<'a, P>(id: NodeId, nodes: &[Option<&'a P>]) -> Option<&'a P> {
    *nodes.get((id.0 as usize).checked_sub(1)?)?
}
