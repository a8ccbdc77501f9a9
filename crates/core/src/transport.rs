//! Moving messages between nodes.
//!
//! A driver that runs on real threads (the runtime) reads from and writes to a
//! [`Transport`]. This crate provides the in-process one, built on channels;
//! the runtime adds TCP. The simulator has its own network model and needs neither.

use crate::NodeId;
use async_trait::async_trait;
use futures_channel::mpsc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a transport delivers.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Incoming<M> {
    /// A message from a peer.
    Message(NodeId, M),
    /// The connection to a peer broke; messages in flight may be lost.
    LinkDown(NodeId),
}

/// Sending failed; the message is lost (the protocol's retries cover it).
#[derive(Debug, Hash, thiserror::Error)]
pub enum TransportError {
    /// No such peer is configured.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// The peer is unreachable right now.
    #[error("peer {0} is unreachable")]
    Unreachable(NodeId),
    /// This endpoint was shut down.
    #[error("transport closed")]
    Closed,
}

/// An endpoint of a cluster's peer network.
#[async_trait]
pub trait Transport<M: Send + 'static>: Send {
    /// Sends a message; returns once it is handed to the network.
    async fn send(&self, to: NodeId, msg: M) -> Result<(), TransportError>;

    /// The next message or link event; `None` once the transport is closed.
    async fn recv(&mut self) -> Option<Incoming<M>>;

    /// From now on, talk to `peer`, a member added while the cluster runs,
    /// which listens for peers at `address`. The default: this transport's
    /// peers are fixed, and it says so.
    fn add_peer(&mut self, peer: NodeId, address: &str) -> Result<(), String> {
        Err(format!("this transport cannot add peers ({peer} at {address})"))
    }
}

type Inboxes<M> = Arc<Mutex<HashMap<NodeId, mpsc::UnboundedSender<Incoming<M>>>>>;

/// A set of in-process endpoints connected by unbounded channels.
pub struct ChannelNetwork<M> {
    inboxes: Inboxes<M>,
}

impl<M: Send + 'static> Default for ChannelNetwork<M> {
    fn default() -> Self {
        ChannelNetwork { inboxes: Arc::new(Mutex::new(HashMap::new())) }
    }
}

impl<M: Send + 'static> ChannelNetwork<M> {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the endpoint for `id`, replacing an earlier one.
    pub fn endpoint(&self, id: NodeId) -> ChannelTransport<M> {
        let (tx, rx) = mpsc::unbounded();
        self.inboxes.lock().expect("inbox lock poisoned").insert(id, tx);
        ChannelTransport { id, inboxes: self.inboxes.clone(), rx }
    }

    /// Disconnects `id`: its peers see the link go down and later sends fail.
    pub fn disconnect(&self, id: NodeId) {
        let mut inboxes = self.inboxes.lock().expect("inbox lock poisoned");
        inboxes.remove(&id);
        for tx in inboxes.values() {
            let _ = tx.unbounded_send(Incoming::LinkDown(id));
        }
    }
}

/// One node's endpoint on a [`ChannelNetwork`].
pub struct ChannelTransport<M> {
    id: NodeId,
    inboxes: Inboxes<M>,
    rx: mpsc::UnboundedReceiver<Incoming<M>>,
}

#[async_trait]
impl<M: Send + 'static> Transport<M> for ChannelTransport<M> {
    async fn send(&self, to: NodeId, msg: M) -> Result<(), TransportError> {
        let inboxes = self.inboxes.lock().expect("inbox lock poisoned");
        let tx = inboxes.get(&to).ok_or(TransportError::Unreachable(to))?;
        tx.unbounded_send(Incoming::Message(self.id, msg)).map_err(|_| TransportError::Unreachable(to))
    }

    async fn recv(&mut self) -> Option<Incoming<M>> {
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut self.rx), cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::block_on;

    #[test]
    fn messages_arrive_tagged_with_the_sender_and_disconnects_are_reported() {
        let net = ChannelNetwork::<u32>::new();
        let a = net.endpoint(NodeId(1));
        let mut b = net.endpoint(NodeId(2));
        block_on(async {
            a.send(NodeId(2), 7).await.unwrap();
            assert_eq!(b.recv().await, Some(Incoming::Message(NodeId(1), 7)));
            net.disconnect(NodeId(1));
            assert_eq!(b.recv().await, Some(Incoming::LinkDown(NodeId(1))));
            assert!(matches!(a.send(NodeId(1), 1).await, Err(TransportError::Unreachable(_))));
            assert!(matches!(a.send(NodeId(9), 1).await, Err(TransportError::Unreachable(_))));
        });
    }
}
