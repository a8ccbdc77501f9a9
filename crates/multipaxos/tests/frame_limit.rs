//! Issue 13: Multi-Paxos under a 2 KiB frame limit, with twenty keys and one
//! write in ten carrying a 600-byte value (a frame holds one large
//! compare-and-set, not two, and the state outgrows a frame). Every message
//! must be cut by bytes: Accept batches, catch-up answers, snapshot chunks and
//! promise pages (a promise carried every accepted slot until this sweep
//! found it). A message over the limit is the `frame limit` violation.

use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig, PlantedBug};
use quorum_sim::{Faults, SimConfig, Summary};

fn sweep(planted: Option<PlantedBug>) -> Summary {
    let base = SimConfig::quick(0, Faults::All).with_small_frames();
    let config = MultiPaxosConfig::default().with(|c| {
        c.window = 4;
        c.max_batch = 2;
        c.catch_up_batch = 8;
        c.snapshot_chunk_bytes = 64;
        c.max_queued = 16;
        c.planted = planted;
    });
    quorum_sim::testkit::sweep::<MultiPaxos>(&base, &config, 0..12)
}

#[test]
fn every_message_fits_a_small_frame() {
    sweep(None).assert_clean();
}

#[test]
fn a_snapshot_sent_whole_is_caught_by_the_frame_limit() {
    sweep(Some(PlantedBug::WholeSnapshot)).assert_caught_including("planted WholeSnapshot", "frame limit");
}
