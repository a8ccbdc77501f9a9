//! The simulator enforces the runtime's peer frame limit: a message whose
//! encoding is larger is not delivered, breaks its link (both ends of a fifo
//! link are told, as the TCP transport tells them) and is counted; the first
//! one in a run is a `frame limit` violation.

use quorum_core::LinkKind;
use quorum_sim::baseline::PrimaryBackup;
use quorum_sim::{Faults, Sim, SimConfig, What, DEFAULT_MAX_MESSAGE_BYTES};

fn config(max_message_bytes: usize) -> SimConfig {
    let mut config = SimConfig::quick(7, Faults::None);
    config.trace = true;
    config.network.links = Some(LinkKind::Fifo);
    config.clients.value_size = 1000;
    config.network.max_message_bytes = max_message_bytes;
    config
}

#[test]
fn a_message_over_the_frame_limit_is_dropped_counted_and_breaks_its_link() {
    let report = Sim::<PrimaryBackup>::new(config(300), Default::default()).run();
    assert!(report.metrics.oversized > 0, "no message was over 300 bytes: {:?}", report.metrics.oversized);
    let events = report.trace.events();
    let over_limit = events
        .iter()
        .filter(|e| matches!(&e.what, What::Drop { reason, .. } if reason.contains("over the frame limit of 300")))
        .count() as u64;
    assert_eq!(over_limit, report.metrics.oversized);
    // Every message must fit (a retry would send the same bytes again): the
    // first one that does not is a violation of its own.
    let fired: Vec<&str> = report.violations.iter().map(|v| v.check.as_str()).collect();
    assert_eq!(fired.iter().filter(|c| **c == "frame limit").count(), 1, "{fired:?}");
    let link_downs: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|e| match e.what {
            What::LinkDown { node, peer } => Some((node, peer)),
            _ => None,
        })
        .collect();
    // The first oversized message broke a link: both of its ends heard of it.
    let (from, to) = events
        .iter()
        .find_map(|e| match &e.what {
            What::Drop { from, to, reason, .. } if reason.contains("frame limit") => Some((*from, *to)),
            _ => None,
        })
        .unwrap();
    assert!(link_downs.contains(&(from, to)), "the sender was not told: {link_downs:?}");
    assert!(link_downs.contains(&(to, from)), "the receiver was not told: {link_downs:?}");
}

#[test]
fn the_default_limit_is_the_runtimes_and_ordinary_runs_never_hit_it() {
    assert_eq!(SimConfig::new(3, 1).network.max_message_bytes, 16 << 20);
    assert_eq!(DEFAULT_MAX_MESSAGE_BYTES, 16 << 20);
    let report = Sim::<PrimaryBackup>::new(config(DEFAULT_MAX_MESSAGE_BYTES), Default::default()).run();
    assert_eq!(report.metrics.oversized, 0);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(report.ops_ok > 0);
}
