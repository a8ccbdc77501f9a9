//! Log compaction: the driver snapshotted its state machine; the log below goes.

use crate::MultiPaxos;
use quorum_core::{Bytes, Snapshot, SnapshotMeta, Stamp};
use tracing::debug;

impl MultiPaxos {
    /// The driver applied everything up to `index` and snapshotted it: keep the
    /// snapshot (durably, dropping the stored entries it covers) and forget the
    /// chosen values below it. Lagging replicas get the snapshot instead.
    pub(crate) fn take_snapshot(&mut self, index: u64, data: Bytes) {
        assert!(index <= self.learner.committed(), "snapshot at {index} beyond the commit point");
        if self.snapshot.as_ref().is_some_and(|s| s.index >= index) {
            return;
        }
        let stamp = self.learner.chosen(index).map_or(Stamp::ZERO, |(ballot, _)| ballot.stamp());
        debug!(node = self.id.0, index, "compacting the log");
        let meta = SnapshotMeta { membership: self.configs.at(index).clone() }.encode();
        self.configs.compact(index);
        let snapshot = Snapshot { index, stamp, meta, data };
        self.learner.forget_upto(index);
        self.snapshot_to_write = Some(snapshot.clone());
        self.snapshot = Some(snapshot);
    }
}
