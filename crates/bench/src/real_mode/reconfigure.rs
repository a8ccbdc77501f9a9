//! `--fault reconfigure`: membership changes on a running `quorum node`
//! cluster under the benchmark's write load, made the way an operator makes
//! them (`quorum node --join`, then `QUORUM ADD | PROMOTE | REMOVE` on the
//! leader's client port, which `quorum admin` sends too):
//!
//! 1. a new node joins as a learner, catches up and is promoted;
//! 2. the original leader is removed (it hands over), then stopped;
//! 3. another new node joins and is promoted;
//! 4. a second original member is removed and stopped.
//!
//! Each change's window is recorded here; how long writes stopped in it is
//! read from the clients' history once the run is over ([`unavailable`]).

use super::quorum::QuorumCluster;
use super::System;
use crate::metrics::ChangeCost;
use std::time::{Duration, Instant};

/// How long one change may take, retries included, before the run fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// Answers to retry: the leader is busy with another change or a learner
/// is still behind, or leadership is moving.
const RETRY: [&str; 5] = ["not committed yet", "has not caught up", "TRYAGAIN", "not the leader", "retry"];

/// One change and when it ran.
pub(crate) struct Window {
    change: String,
    from: Instant,
    to: Instant,
    caught_up: Option<Duration>,
}

/// What the changes came to.
pub(crate) enum Outcome {
    /// Every change was made.
    Done(Vec<Window>),
    /// The protocol refused the first change (it has none): why.
    Refused(String),
}

/// Makes the four changes; an error if one could not be made within
/// [`PATIENCE`] (the cluster failed, which the run must not hide).
pub(crate) fn run(cluster: &mut QuorumCluster) -> Result<Outcome, String> {
    let founders = cluster.procs().len();
    if founders < 3 {
        return Err("--fault reconfigure needs at least 3 nodes (it removes two of the founders)".into());
    }
    let leader = wait_for_leader(cluster, None)?;
    let others: Vec<usize> = (0..founders).filter(|i| *i != leader).collect();
    let (via, second) = (others[0], others[1]);
    let mut windows = Vec::new();
    match add_and_promote(cluster, via)? {
        Added::Refused(why) => return Ok(Outcome::Refused(why)),
        Added::Done(w) => windows.push(w),
    }
    windows.push(remove(cluster, leader, true)?);
    match add_and_promote(cluster, via)? {
        Added::Refused(why) => return Err(format!("the second add was refused after the first was made: {why}")),
        Added::Done(w) => windows.push(w),
    }
    windows.push(remove(cluster, second, false)?);
    Ok(Outcome::Done(windows))
}

enum Added {
    Done(Window),
    Refused(String),
}

/// Starts a node that joins through member `via`, adds it as a learner,
/// waits until it has applied what the leader had committed, promotes it.
fn add_and_promote(cluster: &mut QuorumCluster, via: usize) -> Result<Added, String> {
    let from = Instant::now();
    let new = cluster.add_joiner(via)?;
    let id = (new + 1).to_string();
    let peer = cluster.peer_addr(new).to_string();
    match admin(cluster, &["ADD", &id, &peer], "is a member already")? {
        Answer::Done => {}
        Answer::Refused(why) => {
            cluster.procs_mut().kill(new);
            return Ok(Added::Refused(why));
        }
    }
    let leader = wait_for_leader(cluster, None)?;
    let target = cluster.info_number(leader, "commit_index").unwrap_or(0);
    wait_until(&format!("learner n{id} catches up to index {target}"), || {
        cluster.info_number(new, "applied_index").is_some_and(|a| a >= target)
    })?;
    let caught_up = from.elapsed();
    if let Answer::Refused(why) = admin(cluster, &["PROMOTE", &id], "is a voter already")? {
        return Err(format!("promoting n{id} was refused: {why}"));
    }
    Ok(Added::Done(Window {
        change: format!("add+promote n{id}"),
        from,
        to: Instant::now(),
        caught_up: Some(caught_up),
    }))
}

/// Removes member `gone`, waits for a leader other than it, and stops it.
fn remove(cluster: &mut QuorumCluster, gone: usize, was_leader: bool) -> Result<Window, String> {
    let from = Instant::now();
    let id = (gone + 1).to_string();
    if let Answer::Refused(why) = admin(cluster, &["REMOVE", &id], "is not a member")? {
        return Err(format!("removing n{id} was refused: {why}"));
    }
    wait_for_leader(cluster, Some(gone))?;
    cluster.procs_mut().kill(gone);
    let change = if was_leader { format!("remove n{id} (leader)") } else { format!("remove n{id}") };
    Ok(Window { change, from, to: Instant::now(), caught_up: None })
}

enum Answer {
    Done,
    Refused(String),
}

/// Sends `QUORUM words` to the leader until it is carried out, retrying
/// what [`RETRY`] lists. `already` marks an answer that means a previous
/// attempt took effect (its reply was lost).
fn admin(cluster: &QuorumCluster, words: &[&str], already: &str) -> Result<Answer, String> {
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::from("no leader answered");
    while Instant::now() < deadline {
        if let Some(leader) = cluster.leader() {
            match cluster.quorum_command(leader, words) {
                Ok(_) => return Ok(Answer::Done),
                Err(why) if why.contains(already) => return Ok(Answer::Done),
                Err(why) if RETRY.iter().any(|r| why.contains(r)) => last = why,
                Err(why) if why.starts_with("connection:") => last = why,
                Err(why) => return Ok(Answer::Refused(why)),
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("QUORUM {} was not carried out within {PATIENCE:?}: {last}", words.join(" ")))
}

/// The member that leads (other than `not`), once there is one.
fn wait_for_leader(cluster: &QuorumCluster, not: Option<usize>) -> Result<usize, String> {
    let mut found = None;
    wait_until("a leader", || {
        found = cluster.leader_other_than(not);
        found.is_some()
    })?;
    found.ok_or_else(|| "no leader".into())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if done() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("timed out after {PATIENCE:?} waiting for {what}"))
}

/// What each change cost, given when every acknowledged write completed
/// and when the load stopped (writes that never resumed count until then).
pub(crate) fn costs(windows: &[Window], mut acked: Vec<Instant>, end: Instant) -> Vec<ChangeCost> {
    acked.sort();
    acked.push(end.max(acked.last().copied().unwrap_or(end)));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    windows
        .iter()
        .map(|w| ChangeCost {
            change: w.change.clone(),
            caught_up_ms: w.caught_up.map(ms),
            took_ms: ms(w.to - w.from),
            unavailable_ms: ms(unavailable(&acked, w.from, w.to)),
        })
        .collect()
}

/// The longest time between two consecutive acknowledgements (sorted) that
/// overlaps `[from, to]`: the last one before the window, those inside, and
/// the first one after it (the caller ends the list with the end of the load).
pub(crate) fn unavailable(acked: &[Instant], from: Instant, to: Instant) -> Duration {
    let start = acked.partition_point(|t| *t < from).saturating_sub(1);
    let end = (acked.partition_point(|t| *t <= to) + 1).min(acked.len());
    acked[start..end].windows(2).map(|p| p[1] - p[0]).max().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_that_overlaps_the_window_counts_and_no_other() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // A 500 ms gap before the window, a 90 ms one spanning its start,
        // a 120 ms one inside, a 60 ms one spanning its end, 400 ms after.
        let acked: Vec<Instant> = [0, 500, 510, 600, 720, 740, 800, 1200].map(at).to_vec();
        assert_eq!(unavailable(&acked, at(550), at(760)), Duration::from_millis(120));
        assert_eq!(unavailable(&acked, at(505), at(506)), Duration::from_millis(10));
        assert_eq!(unavailable(&[], at(0), at(10)), Duration::ZERO);
    }

    #[test]
    fn writes_that_never_resume_count_until_the_load_stops() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let window = Window { change: "remove n1".into(), from: at(300), to: at(400), caught_up: None };
        let cost = &costs(&[window], vec![at(250), at(0), at(100)], at(2000))[0];
        assert_eq!(cost.unavailable_ms, 1750.0);
        assert_eq!(cost.took_ms, 100.0);
        assert_eq!(cost.caught_up_ms, None);
    }
}
