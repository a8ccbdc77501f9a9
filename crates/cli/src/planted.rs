//! `quorum sim --planted NAME`: a fixed protocol bug put back on purpose, to
//! watch the simulator's checks catch it. Only a build with `--features
//! planted-bugs` has them (the protocol crates compile them out otherwise);
//! a shipping build refuses the flag.

use quorum_multipaxos::{MultiPaxosConfig, PlantedBug as MultiPaxosBug};
use quorum_paxos::{PaxosConfig, PlantedBug as PaxosBug};
use quorum_raft::{PlantedBug as RaftBug, RaftConfig};
use quorum_zab::{PlantedBug as ZabBug, ZabConfig};

/// Basic Paxos's planted bugs by their command-line names.
const PAXOS: &[(&str, PaxosBug)] = &[("ignore-promised-values", PaxosBug::IgnorePromisedValues)];

/// Multi-Paxos's planted bugs by their command-line names.
const MULTIPAXOS: &[(&str, MultiPaxosBug)] = &[
    ("ignore-promised-values", MultiPaxosBug::IgnorePromisedValues),
    ("promise-omits-chosen-past-cap", MultiPaxosBug::PromiseOmitsChosenPastCap),
    ("accept-overwrites-chosen", MultiPaxosBug::AcceptOverwritesChosen),
    ("learn-keeps-older-stamp", MultiPaxosBug::LearnKeepsOlderStamp),
    ("lease-ignores-acks", MultiPaxosBug::LeaseIgnoresAcks),
    ("no-check-quorum", MultiPaxosBug::NoCheckQuorum),
    ("whole-snapshot", MultiPaxosBug::WholeSnapshot),
];

/// Raft's planted bugs by their command-line names.
const RAFT: &[(&str, RaftBug)] = &[
    ("suspected-ack-without-lease", RaftBug::SuspectedAckWithoutLease),
    ("unbounded-reads", RaftBug::UnboundedReads),
    ("trust-snapshot-meta", RaftBug::TrustSnapshotMeta),
    ("vote-before-persisted", RaftBug::VoteBeforePersisted),
    ("trust-match-index", RaftBug::TrustMatchIndex),
];

/// Zab's planted bugs by their command-line names.
const ZAB: &[(&str, ZabBug)] = &[
    ("ack-before-durable", ZabBug::AckBeforeDurable),
    ("commit-without-quorum", ZabBug::CommitWithoutQuorum),
    ("sessions-from-zero", ZabBug::SessionsFromZero),
    ("ack-new-leader-before-durable", ZabBug::AckNewLeaderBeforeDurable),
    ("skip-follower-ahead-check", ZabBug::SkipFollowerAheadCheck),
    ("unbounded-proposal-queue", ZabBug::UnboundedProposalQueue),
    ("sync-in-one-message", ZabBug::SyncInOneMessage),
    ("trust-proposals", ZabBug::TrustProposals),
];

/// The bug `planted` names in `protocol`'s table: none if none was asked
/// for; an error naming the choices if it is not there, or if this build has
/// no planted bugs.
fn find<B: Copy>(protocol: &str, table: &[(&str, B)], planted: Option<&str>) -> Result<Option<B>, String> {
    let Some(name) = planted else { return Ok(None) };
    let Some(&(_, bug)) = table.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        return Err(format!("no planted bug '{name}' in {protocol}: choose one of {}", names.join(", ")));
    };
    if cfg!(feature = "planted-bugs") {
        Ok(Some(bug))
    } else {
        Err(format!("this build has no planted bugs: build it with `--features planted-bugs` to plant '{name}'"))
    }
}

/// `pub fn $protocol(config, planted)`: the settings with `planted` put back.
macro_rules! planter {
    ($protocol:ident, $config:ty, $table:expr) => {
        #[doc = concat!("`", stringify!($protocol), "` settings with `planted` put back.")]
        pub fn $protocol(config: $config, planted: Option<&str>) -> Result<$config, String> {
            let bug = find(stringify!($protocol), $table, planted)?;
            #[cfg(feature = "planted-bugs")]
            return Ok(config.with(|c| c.planted = bug));
            #[cfg(not(feature = "planted-bugs"))]
            {
                debug_assert!(bug.is_none(), "find refuses every bug in a shipping build");
                Ok(config)
            }
        }
    };
}

planter!(paxos, PaxosConfig, PAXOS);
planter!(multipaxos, MultiPaxosConfig, MULTIPAXOS);
planter!(raft, RaftConfig, RAFT);
planter!(zab, ZabConfig, ZAB);
