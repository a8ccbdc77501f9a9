//! One workload description and one fault plan, used unchanged for every protocol.

use quorum_core::Duration;
use quorum_sim::{KeyDistribution, Latency};
use serde::{Deserialize, Serialize};

/// What load to offer, for how long, to how large a cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Workload {
    /// Cluster size (3, 5, 7...).
    pub nodes: usize,
    /// Closed-loop clients (ignored when `rate` is set).
    pub clients: usize,
    /// Open loop: requests per second, whatever the answers.
    pub rate: Option<f64>,
    /// Number of keys.
    pub keys: usize,
    /// How keys are chosen.
    pub key_distribution: KeyDistribution,
    /// Bytes per value.
    pub value_size: usize,
    /// Fraction of reads.
    pub read_ratio: f64,
    /// How long the load runs.
    pub duration: Duration,
    /// Operations that start before this are not measured.
    pub warmup: Duration,
    /// Simulator only: one-way delay of every link.
    pub latency: Latency,
    /// Simulator only: message loss probability.
    pub loss: f64,
    /// Simulator only: fsync time.
    pub fsync: Duration,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            nodes: 5,
            clients: 8,
            rate: None,
            keys: 1000,
            key_distribution: KeyDistribution::Uniform,
            value_size: 128,
            read_ratio: 0.0,
            duration: Duration::from_secs(6),
            warmup: Duration::from_millis(500),
            latency: Latency::Constant(Duration::from_millis(1)),
            loss: 0.0,
            fsync: Duration::from_micros(200),
        }
    }
}

/// What goes wrong during the run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Nothing.
    None,
    /// The leader crashes (kill -9) and restarts later.
    LeaderCrash,
    /// The leader hangs (SIGSTOP): its connections stay open; it resumes later.
    LeaderFreeze,
    /// The leader is cut off from every other node, then the partition heals.
    LeaderPartition,
    /// One follower crashes and restarts later.
    FollowerCrash,
    /// Real mode only: membership changes under load. A fourth node joins
    /// as a learner, catches up and is promoted; the original leader is
    /// removed; a fifth replaces a second original member the same way.
    /// Reports how long each learner took to catch up and how long writes
    /// stopped during each change.
    Reconfigure,
    /// Real mode only: from `at` to `until`, members are killed (kill -9) or
    /// frozen (SIGSTOP), leader or not, and brought back 50 to 400 ms later,
    /// over and over (drawn from the run's seed), at most `most_down` of them
    /// at once; the clients' history is checked for linearizability, as in
    /// every real run.
    Chaos,
}

impl std::str::FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(FaultKind::None),
            "leader-crash" => Ok(FaultKind::LeaderCrash),
            "leader-freeze" => Ok(FaultKind::LeaderFreeze),
            "leader-partition" => Ok(FaultKind::LeaderPartition),
            "follower-crash" => Ok(FaultKind::FollowerCrash),
            "reconfigure" => Ok(FaultKind::Reconfigure),
            "chaos" => Ok(FaultKind::Chaos),
            other => Err(format!(
                "unknown fault '{other}': use none, leader-crash, leader-freeze, leader-partition, follower-crash, \
                 reconfigure or chaos"
            )),
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            FaultKind::None => "none",
            FaultKind::LeaderCrash => "leader-crash",
            FaultKind::LeaderFreeze => "leader-freeze",
            FaultKind::LeaderPartition => "leader-partition",
            FaultKind::FollowerCrash => "follower-crash",
            FaultKind::Reconfigure => "reconfigure",
            FaultKind::Chaos => "chaos",
        };
        f.write_str(s)
    }
}

/// One fault at a fixed time, undone at another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultPlan {
    /// What fails.
    pub kind: FaultKind,
    /// When it fails (from the start of the load).
    pub at: Duration,
    /// When it is undone: restart, thaw, or heal.
    pub until: Duration,
    /// `Chaos` only: the most members down (killed or frozen) at once.
    #[serde(default = "one")]
    pub most_down: usize,
}

fn one() -> usize {
    1
}

/// How many members chaos takes down at once, in words.
pub fn at_a_time(most_down: usize) -> String {
    match most_down {
        1 => "one member at a time".to_string(),
        k => format!("up to {k} members at a time"),
    }
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            kind: FaultKind::LeaderCrash,
            at: Duration::from_secs(2),
            until: Duration::from_secs(4),
            most_down: 1,
        }
    }
}
