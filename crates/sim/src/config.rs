//! What a simulated run looks like: cluster, network, disk, clients and faults.

use quorum_core::{Duration, LinkKind};
use serde::{Deserialize, Serialize};

/// One-way message delay.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Latency {
    /// Always the same.
    Constant(Duration),
    /// Uniform between two bounds.
    Uniform {
        /// Smallest delay.
        min: Duration,
        /// Largest delay.
        max: Duration,
    },
    /// Log-normal with the given median and 99th percentile: mostly fast, sometimes very slow.
    LongTail {
        /// Median delay.
        median: Duration,
        /// 99th-percentile delay.
        p99: Duration,
    },
}

/// The network between nodes (and between clients and nodes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// One-way delay of every link.
    pub latency: Latency,
    /// Probability that a message is lost (datagram links), or that a message
    /// breaks its connection (fifo links, which never lose silently).
    pub loss: f64,
    /// Probability that a message is delivered twice (datagram links only).
    pub duplicate: f64,
    /// Link kind; `None` means the weakest kind the protocol declares it tolerates.
    pub links: Option<LinkKind>,
    /// The largest message (postcard-encoded) a link carries: the runtime's
    /// peer frame limit (`TcpConfig::max_frame_bytes`, 16 MiB by default). A
    /// larger message is not delivered and breaks its link, as the runtime's
    /// receiver closes the connection on an oversized frame: on fifo links both
    /// ends get `on_link_down` and whatever was in flight on the link is lost.
    /// Counted in `Metrics::oversized`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Probability that a message between nodes arrives corrupted, as if a
    /// broken or hostile peer sent it: a few of its encoded bytes changed, or
    /// its tail cut off. If the bytes still decode, the receiver gets the
    /// forged message; if not, it is refused and the link breaks (the
    /// runtime drops a connection on an undecodable frame). With corruption
    /// on, the safety checks are off (the protocols tolerate crashes, not
    /// lies): such a run checks only that no node panics on what it is sent.
    #[serde(default)]
    pub corrupt: f64,
}

/// The runtime's default peer frame limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;

fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            latency: Latency::Uniform { min: Duration::from_micros(500), max: Duration::from_millis(2) },
            loss: 0.0,
            duplicate: 0.0,
            links: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            corrupt: 0.0,
        }
    }
}

/// The simulated disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DiskConfig {
    /// Time for one fsync; writes issued while one is running share the next (group commit).
    pub fsync: Duration,
    /// Probability that a crash tears the tail instead of losing every
    /// unsynced write: a random prefix of them (whole writes, as the
    /// write-ahead log recovers) reached the disk.
    #[serde(default = "half")]
    pub torn_tail: f64,
}

fn half() -> f64 {
    0.5
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig { fsync: Duration::from_micros(200), torn_tail: half() }
    }
}

/// The nodes' clocks (see `crate::clock`): each is set off from true time
/// by up to `max_offset` and runs up to `max_drift_ppm` fast or slow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClockConfig {
    /// Largest offset from true time.
    pub max_offset: Duration,
    /// Largest rate error, in parts per million (two nodes' rates differ by
    /// up to twice this).
    pub max_drift_ppm: u64,
}

impl Default for ClockConfig {
    /// Up to 1 s off and 0.1 % fast or slow: well within the rate bounds the
    /// protocols' leases assume (Raft's `max_clock_drift_ppm` is 1 %,
    /// Multi-Paxos's lease margin 25 %).
    fn default() -> Self {
        ClockConfig { max_offset: Duration::from_secs(1), max_drift_ppm: 1_000 }
    }
}

/// How clients read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadPath {
    /// Every read is a command through the log.
    Log,
    /// Use the protocol's own linearizable read (`Protocol::read`) where it has one.
    Protocol,
}

/// How keys are chosen.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// Zipfian with this exponent (about 1.0: a few hot keys).
    Zipf(f64),
}

/// Clients running a key-value workload: closed-loop (each waits for its
/// answer before the next request) unless `rate` is set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientConfig {
    /// Number of clients (0: no workload, for scripted tests). Ignored when `rate` is set.
    pub count: usize,
    /// Open loop: this many requests per second in total, arriving as a Poisson
    /// process whatever the answers, so latency under a fixed load is free of
    /// coordinated omission. Each request takes an idle client session.
    pub rate: Option<f64>,
    /// How keys are chosen.
    pub key_distribution: KeyDistribution,
    /// Number of distinct keys.
    pub keys: usize,
    /// Bytes per written value (at least 8: values are unique per write).
    pub value_size: usize,
    /// Fraction of writes whose value is `large_value_size` bytes instead,
    /// so that a few entries fill a frame (0: none; the dice are only rolled
    /// when it is set, so other runs keep their random stream).
    #[serde(default)]
    pub large_value_ratio: f64,
    /// Bytes of a large value.
    #[serde(default)]
    pub large_value_size: usize,
    /// Fraction of operations that are reads.
    pub read_ratio: f64,
    /// Fraction that are compare-and-set.
    pub cas_ratio: f64,
    /// Fraction that are deletes.
    pub delete_ratio: f64,
    /// Fraction of operations on counters (keys `n0`, `n1`, ...): half
    /// `INCR`s, half reads of a counter, checked against a counter model
    /// (0: none; the dice are only rolled when it is set, so other runs keep
    /// their random stream).
    #[serde(default)]
    pub incr_ratio: f64,
    /// How long a client waits for an answer before retrying elsewhere.
    pub timeout: Duration,
    /// Pause between one answer and the next request.
    pub think_time: Duration,
    /// How reads are served.
    pub reads: ReadPath,
    /// Fraction of reads that are *local reads* (ZooKeeper's plain read):
    /// sent to a node chosen at random, as if the client had reconnected to
    /// another server, and answered from that node's own state if the protocol
    /// allows it ([`quorum_core::Protocol::local_read`]) once the node has
    /// applied the client's last seen index. They are sequentially consistent,
    /// not linearizable: they are checked for per-client order and against
    /// the committed log, and kept out of the linearizability check. The
    /// other reads follow `reads`.
    #[serde(default)]
    pub local_read_ratio: f64,
    /// After this many timed-out attempts a client gives up on an operation:
    /// its outcome stays unknown (it may still take effect, from a copy in
    /// flight or in a node's queue) and the client moves on (0: never).
    #[serde(default = "give_up_after")]
    pub give_up_after: u32,
    /// Probability that a client giving up also crashes: it comes back as a
    /// new client (a new id, so a new session) for its next operation.
    #[serde(default = "half")]
    pub crash_on_give_up: f64,
    /// The first this many clients only read (a dashboard beside a service
    /// that writes): they stay with a leader that answers their reads, where
    /// a client that writes moves on when its write stalls. The lease
    /// disturbance keeps them with a leader it cuts off.
    #[serde(default)]
    pub readers: usize,
}

fn give_up_after() -> u32 {
    3
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            count: 4,
            rate: None,
            key_distribution: KeyDistribution::Uniform,
            keys: 5,
            value_size: 8,
            large_value_ratio: 0.0,
            large_value_size: 0,
            read_ratio: 0.4,
            cas_ratio: 0.1,
            delete_ratio: 0.05,
            incr_ratio: 0.0,
            timeout: Duration::from_millis(150),
            think_time: Duration::from_millis(1),
            reads: ReadPath::Protocol,
            local_read_ratio: 0.0,
            give_up_after: give_up_after(),
            crash_on_give_up: half(),
            readers: 0,
        }
    }
}

/// Deliberate driver bugs in how local reads are served, to show that the
/// session check catches them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriverBug {
    /// A node answers a local read at once, without waiting to reach the
    /// client's last seen index: a client that moves to a lagging node sees
    /// its view go back in time.
    LocalReadIgnoresSession,
    /// A lagging node answers a local read at once from its current state but
    /// stamps it with the client's last seen index, as if it had caught up.
    LocalReadClaimsSession,
    /// A client retries a timed-out operation under a new sequence number,
    /// so the state machine cannot tell it from a new one: if the first
    /// attempt committed too, it takes effect twice (an `INCR` counts twice).
    RetryWithNewSeq,
}

/// Which faults to inject.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Faults {
    /// A perfect run.
    None,
    /// Nodes crash (losing unsynced writes) and restart.
    Crash,
    /// Partitions (any split, and one-way cuts) come and go.
    Partition,
    /// Crashes, partitions, pauses, message loss and duplication together.
    All,
}

impl std::str::FromStr for Faults {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Faults::None),
            "crash" => Ok(Faults::Crash),
            "partition" => Ok(Faults::Partition),
            "all" => Ok(Faults::All),
            other => Err(format!("unknown fault set '{other}': use none, crash, partition or all")),
        }
    }
}

/// Rates and durations of injected faults.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultConfig {
    /// Which faults.
    pub kind: Faults,
    /// Mean time between fault events.
    pub mean_interval: Duration,
    /// Longest a crashed node stays down or a partition lasts.
    pub max_outage: Duration,
    /// Message loss probability used when `kind` is `All`.
    pub loss: f64,
    /// Duplication probability used when `kind` is `All`.
    pub duplicate: f64,
    /// With `kind` `All`: the share of fault events that pause a node (a
    /// stopped process, a long GC or VM pause: it handles nothing until it
    /// resumes, then everything that waited, in order, while its peers may
    /// have moved on); the rest are crashes and partitions, half each.
    #[serde(default = "pause_share")]
    pub pauses: f64,
    /// The share of random crashes that are a machine's rather than a
    /// process's: no FIN closes the machine's connections, so each peer hears
    /// that its link broke only once the machine is back and answers a write
    /// of the peer's with a reset, up to 20 ms (`LATE_LINK_DOWN`) after the restart:
    /// until then only the protocol's own timeouts can tell, and the
    /// restarted node's new connection may deliver messages first (as the
    /// runtime's TCP transport may report it).
    #[serde(default = "late_share")]
    pub late_link_down: f64,
}

/// How long after a crashed machine is back its peers may take to hear that their old connections to it broke.
pub const LATE_LINK_DOWN: Duration = Duration::from_millis(20);

fn pause_share() -> f64 {
    0.2
}

fn late_share() -> f64 {
    0.5
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            kind: Faults::None,
            mean_interval: Duration::from_millis(300),
            max_outage: Duration::from_millis(600),
            loss: 0.05,
            duplicate: 0.05,
            pauses: pause_share(),
            late_link_down: late_share(),
        }
    }
}

/// Everything that defines a run, apart from the protocol and its settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimConfig {
    /// Cluster size.
    pub nodes: usize,
    /// The seed: a run is a pure function of (protocol, config, seed).
    pub seed: u64,
    /// How long clients issue requests and faults are injected.
    pub duration: Duration,
    /// After `duration`: faults stop, everything heals and restarts, and clients
    /// get this long to finish what they started.
    pub drain: Duration,
    /// Network model.
    pub network: NetworkConfig,
    /// Disk model.
    pub disk: DiskConfig,
    /// The nodes' clocks.
    #[serde(default)]
    pub clocks: ClockConfig,
    /// Workload.
    pub clients: ClientConfig,
    /// Fault injection.
    pub faults: FaultConfig,
    /// The driver snapshots each node's state machine every this many applied entries.
    pub snapshot_every: Option<u64>,
    /// Record a full trace (sends, deliveries, drops, crashes, role changes).
    pub trace: bool,
    /// Stop after this many events (a guard against livelock in a buggy protocol).
    pub max_events: u64,
    /// Check at the end of a run that every live node of the final
    /// configuration applied as far as the furthest one (`convergence`). On by
    /// default; a sweep that turns it off must say which known liveness gap
    /// it steps around.
    #[serde(default = "yes")]
    pub check_convergence: bool,
    /// A deliberate bug in the driver, to show that a checker catches it.
    /// Never set outside such tests.
    #[serde(default)]
    pub driver_bug: Option<DriverBug>,
}

fn yes() -> bool {
    true
}

impl SimConfig {
    /// Defaults for a cluster of `nodes` and a seed.
    pub fn new(nodes: usize, seed: u64) -> Self {
        assert!(nodes >= 1, "a cluster needs at least one node");
        SimConfig {
            nodes,
            seed,
            duration: Duration::from_secs(2),
            drain: Duration::from_secs(1),
            network: NetworkConfig::default(),
            disk: DiskConfig::default(),
            clocks: ClockConfig::default(),
            clients: ClientConfig::default(),
            faults: FaultConfig::default(),
            snapshot_every: Some(200),
            trace: false,
            max_events: 20_000_000,
            check_convergence: true,
            driver_bug: None,
        }
    }

    /// The same config with a fault set.
    pub fn with_faults(mut self, kind: Faults) -> Self {
        self.faults.kind = kind;
        self
    }

    /// The same config in a world of small frames: a 2 KiB peer frame limit,
    /// twenty keys, one write in ten with a 600-byte value, and a snapshot
    /// every ten entries. A frame holds one large compare-and-set (two such
    /// values) but not two, and the state outgrows a frame, so every message
    /// must be cut by bytes (`quorum sim --profile tiny-caps`).
    pub fn with_small_frames(mut self) -> Self {
        self.network.max_message_bytes = 2048;
        self.clients.keys = 20;
        self.clients.large_value_ratio = 0.1;
        self.clients.large_value_size = 600;
        self.snapshot_every = Some(10);
        self
    }

    /// The same config with messages corrupted in flight with probability `p`
    /// ([`NetworkConfig::corrupt`]: the safety checks are off, panics count).
    pub fn with_corruption(mut self, p: f64) -> Self {
        self.network.corrupt = p;
        self
    }

    /// A short run for sweeping thousands of seeds: 3 nodes, 1 s of load.
    pub fn quick(seed: u64, kind: Faults) -> Self {
        let mut c = SimConfig::new(3, seed).with_faults(kind);
        c.duration = Duration::from_secs(1);
        c.drain = Duration::from_millis(800);
        c.clients.count = 3;
        c.faults.mean_interval = Duration::from_millis(150);
        c.faults.max_outage = Duration::from_millis(400);
        c.snapshot_every = Some(50);
        c
    }
}
