//! Group commit on a dedicated thread.
//!
//! The node task hands every [`WriteBatch`] to this thread and goes on (a
//! leader sends to its followers while its own write is in flight). The thread
//! takes everything queued, writes it with one [`Storage::write`] — one fsync
//! for the lot — and reports the tags back in issue order. So the busier the
//! node, the more batches share each fsync.

use crate::metrics::NodeMetrics;
use quorum_core::{Storage, StorageError, WriteBatch};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::error;

/// The most batches written with one sync.
const MAX_GROUP: usize = 4096;

/// What the storage thread reports: the tags made durable, in issue order.
pub type Durable = Result<Vec<u64>, StorageError>;

/// The node's handle on its storage thread. Dropping it stops the thread.
pub struct StorageThread {
    tx: Option<std_mpsc::Sender<WriteBatch>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StorageThread {
    /// Starts the thread; durable tags arrive on the returned receiver.
    pub fn spawn<S: Storage + Send + 'static>(
        mut storage: S,
        metrics: Arc<NodeMetrics>,
    ) -> (StorageThread, mpsc::UnboundedReceiver<Durable>) {
        let (tx, rx) = std_mpsc::channel::<WriteBatch>();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("quorum-storage".into())
            .spawn(move || {
                let mut group = Vec::new();
                while let Ok(first) = rx.recv() {
                    group.push(first);
                    while group.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(batch) => group.push(batch),
                            Err(_) => break,
                        }
                    }
                    let started = std::time::Instant::now();
                    let result = storage.write(&group).map(|()| group.iter().map(|b| b.tag).collect());
                    metrics.fsync_latency.observe(started.elapsed());
                    group.clear();
                    let failed = result.is_err();
                    if let Err(e) = &result {
                        error!(error = %e, "storage write failed; the node must stop");
                    }
                    if done_tx.send(result).is_err() || failed {
                        return;
                    }
                }
            })
            .expect("spawning the storage thread");
        (StorageThread { tx: Some(tx), thread: Some(thread) }, done_rx)
    }

    /// Queues a batch. Returns false if the thread has stopped (after a failure).
    pub fn write(&self, batch: WriteBatch) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok())
    }
}

impl Drop for StorageThread {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
