//! `quorum sim --planted NAME`: a fixed protocol bug put back on purpose, to
//! watch the simulator's checks catch it. Only a build with `--features
//! planted-bugs` has them (the protocol crates compile them out otherwise);
//! a shipping build refuses the flag.

use quorum_multipaxos::MultiPaxosConfig;
use quorum_paxos::PaxosConfig;
use quorum_raft::RaftConfig;
use quorum_zab::ZabConfig;

/// Every planted bug, per protocol, by its command-line name.
pub const BUGS: &[(&str, &[&str])] = &[
    ("paxos", &["ignore-promised-values"]),
    (
        "multipaxos",
        &[
            "ignore-promised-values",
            "promise-omits-chosen-past-cap",
            "accept-overwrites-chosen",
            "learn-keeps-older-stamp",
            "lease-ignores-acks",
            "no-check-quorum",
            "whole-snapshot",
        ],
    ),
    (
        "raft",
        &[
            "suspected-ack-without-lease",
            "unbounded-reads",
            "trust-snapshot-meta",
            "vote-before-persisted",
            "trust-match-index",
        ],
    ),
    (
        "zab",
        &[
            "ack-before-durable",
            "commit-without-quorum",
            "sessions-from-zero",
            "ack-new-leader-before-durable",
            "skip-follower-ahead-check",
            "unbounded-proposal-queue",
            "sync-in-one-message",
            "trust-proposals",
        ],
    ),
];

fn unknown(protocol: &str, name: &str) -> String {
    let names = BUGS.iter().find(|(p, _)| *p == protocol).map_or(&[][..], |(_, b)| *b);
    format!("no planted bug '{name}' in {protocol}: choose one of {}", names.join(", "))
}

#[cfg(not(feature = "planted-bugs"))]
fn refuse<C>(protocol: &str, config: C, planted: Option<&str>) -> Result<C, String> {
    let known = |name| BUGS.iter().any(|(p, bugs)| *p == protocol && bugs.contains(&name));
    match planted {
        None => Ok(config),
        Some(name) if known(name) => {
            Err(format!("this build has no planted bugs: build it with `--features planted-bugs` to plant '{name}'"))
        }
        Some(name) => Err(unknown(protocol, name)),
    }
}

/// Basic Paxos settings with `planted` put back.
pub fn paxos(config: PaxosConfig, planted: Option<&str>) -> Result<PaxosConfig, String> {
    #[cfg(feature = "planted-bugs")]
    return match planted {
        None => Ok(config),
        Some("ignore-promised-values") => {
            Ok(config.with(|c| c.planted = Some(quorum_paxos::PlantedBug::IgnorePromisedValues)))
        }
        Some(other) => Err(unknown("paxos", other)),
    };
    #[cfg(not(feature = "planted-bugs"))]
    refuse("paxos", config, planted)
}

/// Multi-Paxos settings with `planted` put back.
pub fn multipaxos(config: MultiPaxosConfig, planted: Option<&str>) -> Result<MultiPaxosConfig, String> {
    #[cfg(feature = "planted-bugs")]
    {
        use quorum_multipaxos::PlantedBug as B;
        let bug = match planted {
            None => return Ok(config),
            Some("ignore-promised-values") => B::IgnorePromisedValues,
            Some("promise-omits-chosen-past-cap") => B::PromiseOmitsChosenPastCap,
            Some("accept-overwrites-chosen") => B::AcceptOverwritesChosen,
            Some("learn-keeps-older-stamp") => B::LearnKeepsOlderStamp,
            Some("lease-ignores-acks") => B::LeaseIgnoresAcks,
            Some("no-check-quorum") => B::NoCheckQuorum,
            Some("whole-snapshot") => B::WholeSnapshot,
            Some(other) => return Err(unknown("multipaxos", other)),
        };
        Ok(config.with(|c| c.planted = Some(bug)))
    }
    #[cfg(not(feature = "planted-bugs"))]
    refuse("multipaxos", config, planted)
}

/// Raft settings with `planted` put back.
pub fn raft(config: RaftConfig, planted: Option<&str>) -> Result<RaftConfig, String> {
    #[cfg(feature = "planted-bugs")]
    {
        use quorum_raft::PlantedBug as B;
        let bug = match planted {
            None => return Ok(config),
            Some("suspected-ack-without-lease") => B::SuspectedAckWithoutLease,
            Some("unbounded-reads") => B::UnboundedReads,
            Some("trust-snapshot-meta") => B::TrustSnapshotMeta,
            Some("vote-before-persisted") => B::VoteBeforePersisted,
            Some("trust-match-index") => B::TrustMatchIndex,
            Some(other) => return Err(unknown("raft", other)),
        };
        Ok(config.with(|c| c.planted = Some(bug)))
    }
    #[cfg(not(feature = "planted-bugs"))]
    refuse("raft", config, planted)
}

/// Zab settings with `planted` put back.
pub fn zab(config: ZabConfig, planted: Option<&str>) -> Result<ZabConfig, String> {
    #[cfg(feature = "planted-bugs")]
    {
        use quorum_zab::PlantedBug as B;
        let bug = match planted {
            None => return Ok(config),
            Some("ack-before-durable") => B::AckBeforeDurable,
            Some("commit-without-quorum") => B::CommitWithoutQuorum,
            Some("sessions-from-zero") => B::SessionsFromZero,
            Some("ack-new-leader-before-durable") => B::AckNewLeaderBeforeDurable,
            Some("skip-follower-ahead-check") => B::SkipFollowerAheadCheck,
            Some("unbounded-proposal-queue") => B::UnboundedProposalQueue,
            Some("sync-in-one-message") => B::SyncInOneMessage,
            Some("trust-proposals") => B::TrustProposals,
            Some(other) => return Err(unknown("zab", other)),
        };
        Ok(config.with(|c| c.planted = Some(bug)))
    }
    #[cfg(not(feature = "planted-bugs"))]
    refuse("zab", config, planted)
}
