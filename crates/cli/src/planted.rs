//! `quorum sim --planted NAME`: a fixed protocol bug put back on purpose, to
//! watch the simulator's checks catch it. Only a build with `--features
//! planted-bugs` has them (the protocol crates compile them out otherwise);
//! a shipping build refuses the flag.

use quorum_multipaxos::{MultiPaxosConfig, PlantedBug as MultiPaxosBug};
use quorum_paxos::{PaxosConfig, PlantedBug as PaxosBug};
use quorum_raft::{PlantedBug as RaftBug, RaftConfig};
use quorum_zab::{PlantedBug as ZabBug, ZabConfig};

/// Every planted bug of each protocol; on the command line each goes by its
/// variant's name in kebab case (`VoteBeforePersisted`: `vote-before-persisted`).
const PAXOS: &[PaxosBug] = &[PaxosBug::IgnorePromisedValues];
const MULTIPAXOS: &[MultiPaxosBug] = &[
    MultiPaxosBug::IgnorePromisedValues,
    MultiPaxosBug::PromiseOmitsChosenPastCap,
    MultiPaxosBug::AcceptOverwritesChosen,
    MultiPaxosBug::LearnKeepsOlderStamp,
    MultiPaxosBug::LeaseIgnoresAcks,
    MultiPaxosBug::NoCheckQuorum,
    MultiPaxosBug::WholeSnapshot,
    MultiPaxosBug::NonVotersCount,
];
const RAFT: &[RaftBug] = &[
    RaftBug::SuspectedAckWithoutLease,
    RaftBug::UnboundedReads,
    RaftBug::TrustSnapshotMeta,
    RaftBug::VoteBeforePersisted,
    RaftBug::TrustMatchIndex,
];
const ZAB: &[ZabBug] = &[
    ZabBug::AckBeforeDurable,
    ZabBug::CommitWithoutQuorum,
    ZabBug::SessionsFromZero,
    ZabBug::AckNewLeaderBeforeDurable,
    ZabBug::SkipFollowerAheadCheck,
    ZabBug::UnboundedProposalQueue,
    ZabBug::SyncInOneMessage,
    ZabBug::TrustProposals,
    ZabBug::NonVotersCount,
];

/// A bug's command-line name: its variant's name in kebab case.
fn name_of(bug: impl std::fmt::Debug) -> String {
    let mut name = String::new();
    for c in format!("{bug:?}").chars() {
        if c.is_ascii_uppercase() && !name.is_empty() {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// The bug `planted` names among `protocol`'s: none if none was asked for;
/// an error naming the choices if it is not there, or if this build has no
/// planted bugs.
fn find<B: Copy + std::fmt::Debug>(protocol: &str, bugs: &[B], planted: Option<&str>) -> Result<Option<B>, String> {
    let Some(name) = planted else { return Ok(None) };
    let Some(&bug) = bugs.iter().find(|b| name_of(b) == name) else {
        let names: Vec<String> = bugs.iter().map(name_of).collect();
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
