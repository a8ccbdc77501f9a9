//! Issue 12, item 4: a follower that suspects its leader (after a link-down
//! hint) still acknowledges the leader's appends and heartbeats, and each
//! acknowledgement extends the leader's read lease. Whatever it acknowledges
//! it must honour: no vote for another candidate (and no campaign of its own)
//! until the lease it vouched for has run out. Otherwise the old leader keeps
//! serving lease reads while a new leader commits writes: stale reads.

use quorum_core::{Duration, Effects, NodeId, Protocol, ReadId, Role};
type Cluster = quorum_sim::testkit::Cluster<quorum_raft::Raft>;
use quorum_raft::{Message, RaftConfig, ReadMode};

fn lease_config() -> RaftConfig {
    RaftConfig::default().with(|c| c.read_mode = ReadMode::Lease)
}

/// A new leader (other than `old`) of a term above `old_term`, with its write committed.
fn new_leader(c: &Cluster, old: NodeId, old_term: u64) -> Option<NodeId> {
    c.ids()
        .into_iter()
        .filter(|id| *id != old)
        .find(|id| c.node(*id).is_some_and(|r| r.status().role == Role::Leader && r.term() > old_term))
}

/// Three nodes, n1 leading with lease reads. n2 gets a link-down hint for n1
/// (a connection reset: n1 lives and its heartbeats keep reaching n2, which
/// answers them), and n3 is cut off from n1. n1 never hears of a newer term
/// (its inbound messages of later terms are lost). Today n2 keeps extending
/// n1's lease through its acks but, having frozen `heard_leader_at` at the
/// hint, campaigns or votes once its old lease on votes ends, while n1's
/// extended lease still runs: a new leader commits a write, and a lease read
/// on n1 is answered at an index below it.
fn stale_lease_read_after_hint(seed: u64) -> Result<(), String> {
    let mut c = Cluster::new(3, lease_config(), seed);
    assert!(c.run_until(Duration::from_secs(3), |c| c.leader().is_some()));
    let old = c.leader().unwrap();
    c.run_for(Duration::from_millis(300));
    assert_eq!(c.leader(), Some(old));
    let old_term = c.node(old).unwrap().term();
    let mut others = c.ids().into_iter().filter(|id| *id != old);
    let (hinted, cut) = (others.next().unwrap(), others.next().unwrap());
    // The write every later read must see.
    c.propose(old, b"before".to_vec()).unwrap();
    c.settle();
    // Nothing of a newer term reaches the old leader (as if delayed).
    c.set_drop_filter(move |_, to, m: &Message| to == old && m.term() > old_term);
    c.cut_one_way(old, cut);
    c.cut_one_way(cut, old);
    c.act(hinted, |r, now, out: &mut Effects<Message>| r.on_link_down(now, old, out));
    // Step in small slices until another node leads and committed a write.
    let mut read_id = 0;
    let end = c.now() + Duration::from_secs(2);
    while c.now() < end {
        c.run_for(Duration::from_millis(2));
        let Some(new) = new_leader(&c, old, old_term) else { continue };
        let cmd = c.command(b"after".to_vec());
        let written = c.act(new, |r, now, out| r.try_propose(now, cmd, out)).expect("the new leader takes writes");
        c.settle();
        if c.node(new).unwrap().status().commit_index < written {
            continue;
        }
        // The write is committed. A read on the old leader must not miss it.
        if c.node(old).unwrap().status().role != Role::Leader {
            return Ok(());
        }
        read_id += 1;
        let id: ReadId = read_id;
        if c.read(old, id).is_err() {
            return Ok(());
        }
        let answer = c.reads(old).iter().find(|(r, _)| *r == id).map(|(_, a)| *a);
        if let Some(Ok(index)) = answer {
            if index < written {
                return Err(format!(
                    "seed {seed}: stale lease read at {:?}: n{} answered index {index} after n{} committed \
                     index {written} in a newer term",
                    c.now(),
                    old.0,
                    new.0
                ));
            }
        }
        return Ok(());
    }
    Ok(())
}

#[test]
fn a_follower_that_suspects_its_leader_honours_the_lease_its_acks_extend() {
    let mut stale = Vec::new();
    for seed in 0..20 {
        if let Err(e) = stale_lease_read_after_hint(seed) {
            stale.push(e);
        }
    }
    assert!(stale.is_empty(), "{} of 20 seeds served a stale lease read:\n{}", stale.len(), stale.join("\n"));
}
