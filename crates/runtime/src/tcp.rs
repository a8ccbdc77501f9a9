//! The peer transport over TCP.
//!
//! Each node keeps one outgoing connection per peer and accepts one incoming
//! connection from each (a direction per connection, as etcd's raft transport
//! does): a writer task per peer dials, handshakes and streams frames; a reader
//! task per accepted connection checks the handshake and delivers frames.
//!
//! - **Frames**: `len: u32 big-endian | postcard payload`. A frame over
//!   [`TcpConfig::max_frame_bytes`], or one that does not decode, closes that
//!   connection (reported as [`Incoming::LinkDown`]) and never the node. The
//!   read buffer grows as a frame's bytes arrive (64 KiB steps), so a length
//!   prefix alone reserves nothing.
//! - **Handshake**: the dialer sends [`Hello`] (magic, cluster id, its node id,
//!   the node it meant to reach, protocol name and version, its client address);
//!   the acceptor answers [`HelloReply`]. A stranger — wrong magic, cluster,
//!   protocol, version, unknown node id or this node's own id — is refused with
//!   a log line saying why, on both sides. A dialer's claims are not trusted:
//!   the client address a peer announces is recorded only from the answer to
//!   our own dial of its configured address, and a second link claiming one
//!   member id closes the first, with a warning (see `register_inbound`).
//! - **Reconnect**: with exponential backoff from [`TcpConfig::backoff_min`] to
//!   [`TcpConfig::backoff_max`], cut short when the peer dials us: a peer that
//!   just connected is up, so a restarted node is heard from at once instead of
//!   after the backoff its peers built up while it was down. Messages sent while
//!   a peer is unreachable are dropped (the protocols' own retries cover loss),
//!   so a dead peer costs no memory.

use crate::limits::PeerCounters;
use crate::tls::{check_identity, Tls};
use async_trait::async_trait;
use quorum_core::{Incoming, NodeId, Transport, TransportError};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// `QRM1`: the first field of every handshake.
const MAGIC: u32 = 0x5152_4d31;
/// The largest handshake frame accepted.
const MAX_HANDSHAKE_BYTES: usize = 4096;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Inbound peer connections allowed between accept and a finished handshake.
const MAX_PENDING_HANDSHAKES: usize = 64;
/// A free 127.0.0.1 address, for tests and clusters started on one machine.
/// The port comes from below the kernel's ephemeral range (32768 and up on
/// Linux), which outgoing connections draw from: a port found free there can
/// be taken by some other connection between this check and the node's bind
/// ("Address already in use"). Successive calls in one process try successive
/// ports, and processes start at different points.
pub fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 1000) * 20;
    for _ in 0..SPAN {
        let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            return listener.local_addr();
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free port on 127.0.0.1 below the ephemeral range"))
}

/// Messages queued for one peer before further sends fail fast.
const PEER_QUEUE: usize = 16 * 1024;
/// A frame's payload is read (and its buffer grown) this much at a time.
const READ_STEP: usize = 64 * 1024;
/// Frames coalesced into one write.
const MAX_WRITE_BYTES: usize = 1 << 20;

/// Client addresses peers gave when this node dialled them, by node id.
pub type PeerDirectory = Arc<Mutex<HashMap<NodeId, String>>>;

/// The peers this node talks to, each with a signal to its dialer that the
/// peer just connected to us. It grows when a member is added to a running
/// cluster ([`TcpTransport::add_peer`]); a dialer with an id not in it is refused.
type Wakers = Arc<Mutex<HashMap<NodeId, Arc<Notify>>>>;

/// The most peers a node talks to, those added while it runs included.
pub const MAX_PEERS: usize = 128;

/// Settings of a node's peer transport.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// This node.
    pub id: NodeId,
    /// Nodes of another cluster are refused.
    pub cluster_id: String,
    /// The protocol's name (`Protocol::NAME`); a peer running another is refused.
    pub protocol: String,
    /// The wire version; a peer with another is refused.
    pub version: u32,
    /// Every other member and its peer address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// This node's client address, announced to peers (for redirects).
    pub client_addr: String,
    /// The largest frame accepted; a bigger one closes the connection.
    pub max_frame_bytes: usize,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Mutual TLS between peers (see the `tls` module); `None`: plain TCP.
    pub tls: Option<Tls>,
}

/// A connection to a peer: plain TCP, or TLS over it.
trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}

impl TcpConfig {
    /// Settings with defaults for the limits and backoff.
    pub fn new(id: NodeId, cluster_id: &str, protocol: &str, peers: BTreeMap<NodeId, SocketAddr>) -> Self {
        TcpConfig {
            id,
            cluster_id: cluster_id.to_string(),
            protocol: protocol.to_string(),
            version: 1,
            peers: peers.into_iter().filter(|(p, _)| *p != id).collect(),
            client_addr: String::new(),
            max_frame_bytes: 16 << 20,
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            tls: None,
        }
    }
}

/// The dialer's half of the handshake.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    /// Always `QRM1`.
    pub magic: u32,
    /// The dialer's cluster.
    pub cluster_id: String,
    /// The dialer.
    pub from: u64,
    /// The node the dialer meant to reach.
    pub to: u64,
    /// The dialer's protocol name.
    pub protocol: String,
    /// The dialer's wire version.
    pub version: u32,
    /// The dialer's client address.
    pub client_addr: String,
}

/// The acceptor's half of the handshake.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum HelloReply {
    /// Welcome; here is my client address.
    Accepted {
        /// The acceptor's client address.
        client_addr: String,
    },
    /// Refused, and why.
    Refused {
        /// A sentence for the log.
        reason: String,
    },
}

/// A node's endpoint: implements [`Transport`] over TCP.
pub struct TcpTransport<M> {
    outboxes: HashMap<NodeId, mpsc::Sender<M>>,
    inbox: mpsc::Receiver<Incoming<M>>,
    directory: PeerDirectory,
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<PeerCounters>,
    config: Arc<TcpConfig>,
    wakers: Wakers,
    inbox_tx: mpsc::Sender<Incoming<M>>,
}

impl<M> Drop for TcpTransport<M> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl<M: Serialize + DeserializeOwned + Send + 'static> TcpTransport<M> {
    /// Starts the transport on an already bound listener.
    pub fn start(listener: TcpListener, config: TcpConfig, directory: PeerDirectory) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (inbox_tx, inbox) = mpsc::channel(PEER_QUEUE);
        let config = Arc::new(config);
        let wakers: Wakers = Arc::new(Mutex::new(config.peers.keys().map(|&p| (p, Arc::new(Notify::new()))).collect()));
        let counters = Arc::new(PeerCounters::for_peers(config.peers.keys().copied()));
        let inbound = Inbound {
            config: config.clone(),
            inbox: inbox_tx.clone(),
            links: InboundLinks::default(),
            counters: counters.clone(),
        };
        let tasks = vec![tokio::spawn(accept_loop(listener, inbound, wakers.clone()))];
        info!(id = %config.id, addr = %local_addr, peers = config.peers.len(), "peer transport listening");
        let mut transport = TcpTransport {
            outboxes: HashMap::new(),
            inbox,
            directory,
            local_addr,
            tasks,
            counters,
            config: config.clone(),
            wakers,
            inbox_tx,
        };
        for (&peer, &addr) in &config.peers {
            transport.start_dialer(peer, addr);
        }
        Ok(transport)
    }

    fn start_dialer(&mut self, peer: NodeId, addr: SocketAddr) {
        let wake = self.wakers.lock().expect("wakers lock").entry(peer).or_default().clone();
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        self.outboxes.insert(peer, tx);
        let link = Dialer {
            peer,
            addr,
            counters: self.counters.clone(),
            config: self.config.clone(),
            directory: self.directory.clone(),
            inbox: self.inbox_tx.clone(),
            wake,
        };
        self.tasks.push(tokio::spawn(link.run(rx)));
    }

    /// What the peer port has refused and closed (for `INFO`).
    pub fn counters(&self) -> Arc<PeerCounters> {
        self.counters.clone()
    }

    /// The address peers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The client address a peer announced, once it has connected.
    pub fn client_addr_of(&self, peer: NodeId) -> Option<String> {
        self.directory.lock().expect("directory lock").get(&peer).cloned()
    }
}

#[async_trait]
impl<M: Serialize + DeserializeOwned + Send + 'static> Transport<M> for TcpTransport<M> {
    /// Dials `peer` at `address` from now on and lets it connect to us. A
    /// peer already known keeps its link (and the address it had).
    fn add_peer(&mut self, peer: NodeId, address: &str) -> Result<(), String> {
        if peer == self.config.id || self.outboxes.contains_key(&peer) {
            return Ok(());
        }
        if self.outboxes.len() >= MAX_PEERS {
            return Err(format!("already {MAX_PEERS} peers: {peer} not added"));
        }
        let addr: SocketAddr =
            address.parse().map_err(|e| format!("peer address '{address}' of {peer} is not ip:port: {e}"))?;
        info!(%peer, %addr, "a new member: dialling it");
        self.start_dialer(peer, addr);
        Ok(())
    }

    async fn send(&self, to: NodeId, msg: M) -> Result<(), TransportError> {
        let outbox = self.outboxes.get(&to).ok_or(TransportError::UnknownPeer(to))?;
        outbox.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => TransportError::Unreachable(to),
            mpsc::error::TrySendError::Closed(_) => TransportError::Closed,
        })
    }

    async fn recv(&mut self) -> Option<Incoming<M>> {
        self.inbox.recv().await
    }
}

/// Appends one frame holding `value` to `buf`.
pub fn encode_frame<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    *buf = postcard::to_extend(value, std::mem::take(buf)).map_err(std::io::Error::other)?;
    let len = u32::try_from(buf.len() - start - 4).map_err(std::io::Error::other)?;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, value: &T) -> std::io::Result<()> {
    let mut buf = Vec::new();
    encode_frame(value, &mut buf)?;
    w.write_all(&buf).await
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or closed.
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    /// The length prefix is over the limit.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooBig {
        /// The length announced.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload is not a valid message.
    #[error("frame does not decode: {0}")]
    Malformed(postcard::Error),
}

/// Reads one frame of at most `limit` bytes and decodes it.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
    limit: usize,
    buf: &mut Vec<u8>,
) -> Result<T, FrameError> {
    let len = r.read_u32().await? as usize;
    if len > limit {
        return Err(FrameError::TooBig { len, limit });
    }
    // Grow the buffer as the payload arrives, a step at a time: a peer that
    // announces a large frame and stalls pins no more than it has sent.
    buf.clear();
    if buf.capacity() > (1 << 20).max(len) {
        // Give back what one huge frame left behind.
        buf.shrink_to(READ_STEP.max(len));
    }
    while buf.len() < len {
        if buf.capacity() == buf.len() {
            // Full: grow (amortized doubling), never past twice what arrived plus a step.
            buf.reserve((len - buf.len()).min(READ_STEP));
        }
        let room = (buf.capacity() - buf.len()).min(len - buf.len());
        let read = (&mut *r).take(room as u64).read_buf(buf).await?;
        if read == 0 {
            return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    postcard::from_bytes(buf).map_err(FrameError::Malformed)
}

/// What serving an accepted connection needs.
struct Inbound<M> {
    config: Arc<TcpConfig>,
    inbox: mpsc::Sender<Incoming<M>>,
    links: InboundLinks,
    counters: Arc<PeerCounters>,
}

impl<M> Clone for Inbound<M> {
    fn clone(&self) -> Self {
        Inbound {
            config: self.config.clone(),
            inbox: self.inbox.clone(),
            links: self.links.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// The accepted link of each peer: a number telling links apart, and the
/// signal that closes it. One link per peer: a newer one replaces it.
type InboundLinks = Arc<Mutex<HashMap<NodeId, (u64, Arc<Notify>)>>>;

/// Registers a new inbound link from `peer` and closes the one it replaces.
/// The newer wins because a restarted peer dials again while its old
/// connection may still look open here; an impostor using a member's id
/// therefore cannot hide beside the real link: each replacement is logged.
fn register_inbound(inbound: &Inbound<impl Sized>, peer: NodeId, remote: SocketAddr) -> (u64, Arc<Notify>) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let number = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let close = Arc::new(Notify::new());
    let older = inbound.links.lock().expect("links lock").insert(peer, (number, close.clone()));
    if let Some((_, older)) = older {
        inbound.counters.replaced_links.fetch_add(1, Ordering::Relaxed);
        warn!(%peer, %remote, "a second inbound link claims to be {peer}; closing the older one (once after a peer restarts is normal; repeatedly, two processes use one node id)");
        older.notify_one();
    }
    (number, close)
}

async fn accept_loop<M: DeserializeOwned + Send + 'static>(listener: TcpListener, inbound: Inbound<M>, wakers: Wakers) {
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                // Connections that have not finished their handshake are few:
                // a flood of them costs a refusal each, not a task and a buffer.
                let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                    inbound.counters.refused.fetch_add(1, Ordering::Relaxed);
                    debug!(%remote, "refused a peer connection: {MAX_PENDING_HANDSHAKES} handshakes already under way");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_inbound(stream, remote, inbound.clone(), wakers.clone(), permit));
            }
            Err(e) => {
                warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Checks a dialer's hello; `Err` carries the reason for refusing it.
fn check_hello(config: &TcpConfig, wakers: &Wakers, hello: &Hello) -> Result<NodeId, String> {
    if hello.magic != MAGIC {
        return Err(format!("bad magic {:#x}: not a quorum peer", hello.magic));
    }
    if hello.cluster_id != config.cluster_id {
        return Err(format!(
            "peer is in cluster '{}', this node is in cluster '{}'",
            hello.cluster_id, config.cluster_id
        ));
    }
    if hello.protocol != config.protocol || hello.version != config.version {
        return Err(format!(
            "peer runs protocol '{}' version {}, this node runs '{}' version {}",
            hello.protocol, hello.version, config.protocol, config.version
        ));
    }
    let from = NodeId(hello.from);
    if from == config.id {
        return Err(format!("the dialer claims this node's own id {from}: is a second process running with this id?"));
    }
    if !wakers.lock().expect("wakers lock").contains_key(&from) {
        return Err(format!(
            "node id {from} is not a member of this cluster (a new node is let in once its addition is in the log)"
        ));
    }
    if hello.to != config.id.0 {
        return Err(format!("peer meant to reach n{}, this is {}", hello.to, config.id));
    }
    Ok(from)
}

async fn serve_inbound<M: DeserializeOwned + Send + 'static>(
    stream: TcpStream,
    remote: SocketAddr,
    inbound: Inbound<M>,
    wakers: Wakers,
    handshake_permit: OwnedSemaphorePermit,
) {
    let config = inbound.config.clone();
    let refused = || inbound.counters.refused.fetch_add(1, Ordering::Relaxed);
    // With TLS, a dialer without a certificate from the cluster CA is refused
    // here, before a byte of the quorum handshake is read.
    let (mut stream, certificate): (Box<dyn PeerStream>, _) = match &config.tls {
        None => (Box::new(stream), None),
        Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.peer_acceptor().accept(stream)).await {
            Ok(Ok(stream)) => {
                let certificate = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned();
                (Box::new(stream), certificate)
            }
            Ok(Err(e)) => {
                warn!(%remote, reason = %e, "refused a peer connection: TLS handshake failed");
                refused();
                return;
            }
            Err(_) => {
                warn!(%remote, "refused a peer connection: no TLS handshake within {HANDSHAKE_TIMEOUT:?}");
                refused();
                return;
            }
        },
    };
    let mut buf = Vec::new();
    let hello: Hello =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut stream, MAX_HANDSHAKE_BYTES, &mut buf)).await {
            Ok(Ok(hello)) => hello,
            Ok(Err(e)) => {
                warn!(%remote, reason = %e, "refused a peer connection: bad handshake (not a quorum peer?)");
                refused();
                return;
            }
            Err(_) => {
                warn!(%remote, "refused a peer connection: no handshake within {HANDSHAKE_TIMEOUT:?}");
                refused();
                return;
            }
        };
    let identity = |peer| match &certificate {
        Some(certificate) => check_identity(certificate, peer).map(|()| peer),
        None if config.tls.is_some() => Err("the dialer presented no certificate".to_string()),
        None => Ok(peer),
    };
    let peer = match check_hello(&config, &wakers, &hello).and_then(identity) {
        Ok(peer) => peer,
        Err(reason) => {
            warn!(%remote, %reason, "refused a peer connection");
            refused();
            let _ = write_frame(&mut stream, &HelloReply::Refused { reason }).await;
            let _ = stream.flush().await;
            return;
        }
    };
    // The client address in `hello` is not recorded: anyone who knows the
    // cluster id can send one. The directory holds what a peer answered when
    // this node dialled the address configured for it.
    let reply = HelloReply::Accepted { client_addr: config.client_addr.clone() };
    if write_frame(&mut stream, &reply).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    debug!(%peer, %remote, "inbound peer link up");
    // The peer is up: if our link to it is waiting out a backoff, retry now.
    if let Some(wake) = wakers.lock().expect("wakers lock").get(&peer) {
        wake.notify_one();
    }
    drop(handshake_permit);
    let (number, close) = register_inbound(&inbound, peer, remote);
    // Nothing is written after the handshake: the reader owns the stream.
    let mut reader = tokio::io::BufReader::with_capacity(64 * 1024, stream);
    loop {
        let frame = tokio::select! {
            frame = read_frame::<_, M>(&mut reader, config.max_frame_bytes, &mut buf) => frame,
            _ = close.notified() => {
                debug!(%peer, %remote, "inbound peer link replaced by a newer one");
                break;
            }
        };
        match frame {
            Ok(msg) => {
                if let Some(traffic) = inbound.counters.traffic.get(&peer) {
                    traffic.received_messages.fetch_add(1, Ordering::Relaxed);
                    traffic.received_bytes.fetch_add(buf.len() as u64 + 4, Ordering::Relaxed);
                }
                if inbound.inbox.send(Incoming::Message(peer, msg)).await.is_err() {
                    return; // the node is gone
                }
            }
            Err(FrameError::Io(e)) => {
                debug!(%peer, error = %e, "inbound peer link closed");
                break;
            }
            Err(e) => {
                warn!(%peer, %remote, reason = %e, "closing inbound peer link");
                inbound.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    {
        let mut links = inbound.links.lock().expect("links lock");
        if links.get(&peer).is_some_and(|(n, _)| *n == number) {
            links.remove(&peer);
        }
    }
    let _ = inbound.inbox.send(Incoming::LinkDown(peer)).await;
}

/// The writer side of the link to one peer.
struct Dialer<M> {
    peer: NodeId,
    addr: SocketAddr,
    config: Arc<TcpConfig>,
    directory: PeerDirectory,
    inbox: mpsc::Sender<Incoming<M>>,
    /// Signalled when the peer connects to us.
    wake: Arc<Notify>,
    counters: Arc<PeerCounters>,
}

impl<M: Serialize + Send + 'static> Dialer<M> {
    async fn run(self, mut outbox: mpsc::Receiver<M>) {
        let mut backoff = self.config.backoff_min;
        loop {
            match self.connect().await {
                Ok(stream) => {
                    backoff = self.config.backoff_min;
                    debug!(peer = %self.peer, "outbound peer link up");
                    let result = self.stream(stream, &mut outbox).await;
                    match result {
                        Ok(()) => return, // the transport was dropped
                        Err(e) => debug!(peer = %self.peer, error = %e, "outbound peer link broke"),
                    }
                    if self.inbox.send(Incoming::LinkDown(self.peer)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    debug!(peer = %self.peer, addr = %self.addr, error = %e, ?backoff, "cannot reach peer");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(self.config.backoff_max),
                        _ = self.wake.notified() => backoff = self.config.backoff_min,
                    }
                }
            }
            // Whatever queued while the link was down is stale: drop it.
            while outbox.try_recv().is_ok() {}
            if outbox.is_closed() {
                return;
            }
        }
    }

    async fn connect(&self) -> std::io::Result<Box<dyn PeerStream>> {
        let timed_out = |_| std::io::Error::from(std::io::ErrorKind::TimedOut);
        let tcp = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(self.addr)).await.map_err(timed_out)??;
        tcp.set_nodelay(true)?;
        let mut stream: Box<dyn PeerStream> = match &self.config.tls {
            None => Box::new(tcp),
            // The peer must present a certificate from the cluster CA for node-<its id>.
            Some(tls) => Box::new(
                tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.peer_connector().connect(Tls::server_name(self.peer), tcp))
                    .await
                    .map_err(timed_out)?
                    .inspect_err(
                        |e| warn!(peer = %self.peer, addr = %self.addr, error = %e, "TLS handshake with peer failed"),
                    )?,
            ),
        };
        let hello = Hello {
            magic: MAGIC,
            cluster_id: self.config.cluster_id.clone(),
            from: self.config.id.0,
            to: self.peer.0,
            protocol: self.config.protocol.clone(),
            version: self.config.version,
            client_addr: self.config.client_addr.clone(),
        };
        write_frame(&mut stream, &hello).await?;
        stream.flush().await?;
        let mut buf = Vec::new();
        let reply = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut stream, MAX_HANDSHAKE_BYTES, &mut buf))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
            .map_err(std::io::Error::other)?;
        match reply {
            HelloReply::Accepted { client_addr } => {
                self.directory.lock().expect("directory lock").insert(self.peer, client_addr);
                Ok(stream)
            }
            HelloReply::Refused { reason } => {
                warn!(peer = %self.peer, addr = %self.addr, %reason, "peer refused our handshake");
                Err(std::io::Error::other(format!("refused: {reason}")))
            }
        }
    }

    /// Streams queued messages until the link breaks (`Err`) or the transport is dropped (`Ok`).
    async fn stream(&self, stream: Box<dyn PeerStream>, outbox: &mut mpsc::Receiver<M>) -> std::io::Result<()> {
        let (mut read_half, mut writer) = tokio::io::split(stream);
        let mut probe = [0u8; 1];
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            tokio::select! {
                msg = outbox.recv() => {
                    let Some(msg) = msg else { return Ok(()) };
                    buf.clear();
                    encode_frame(&msg, &mut buf)?;
                    let mut messages = 1;
                    // Batch whatever else is ready into the same write.
                    while buf.len() < MAX_WRITE_BYTES {
                        let Ok(msg) = outbox.try_recv() else { break };
                        encode_frame(&msg, &mut buf)?;
                        messages += 1;
                    }
                    writer.write_all(&buf).await?;
                    writer.flush().await?; // TLS may hold a record back until flushed
                    if let Some(traffic) = self.counters.traffic.get(&self.peer) {
                        traffic.sent_messages.fetch_add(messages, Ordering::Relaxed);
                        traffic.sent_bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                        traffic.queued.store(outbox.len() as u64, Ordering::Relaxed);
                    }
                }
                // The acceptor never writes after the handshake: a readable socket means it closed.
                read = read_half.read(&mut probe) => {
                    read?;
                    return Err(std::io::ErrorKind::ConnectionReset.into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_length_prefix_alone_reserves_no_memory() {
        let (mut peer, mut node) = tokio::io::duplex(1 << 20);
        peer.write_all(&(16u32 << 20).to_be_bytes()).await.unwrap();
        peer.write_all(&[7; 10]).await.unwrap();
        let mut buf = Vec::new();
        let read = read_frame::<_, Vec<u8>>(&mut node, 16 << 20, &mut buf);
        // The peer stalls: the read does not complete.
        assert!(tokio::time::timeout(Duration::from_millis(50), read).await.is_err());
        assert_eq!(buf.len(), 10);
        assert!(buf.capacity() <= READ_STEP, "a 16 MiB header and 10 bytes reserved {} bytes", buf.capacity());
    }

    #[tokio::test]
    async fn frames_arriving_in_pieces_decode_and_the_buffer_shrinks_after_a_big_one() {
        let (mut peer, mut node) = tokio::io::duplex(4096);
        let big = vec![3u8; 3 << 20];
        let small = vec![1u8, 2, 3];
        let writer = tokio::spawn(async move {
            write_frame(&mut peer, &big).await.unwrap();
            write_frame(&mut peer, &small).await.unwrap();
        });
        let mut buf = Vec::new();
        let got: Vec<u8> = read_frame(&mut node, 16 << 20, &mut buf).await.unwrap();
        assert_eq!(got.len(), 3 << 20);
        let got: Vec<u8> = read_frame(&mut node, 16 << 20, &mut buf).await.unwrap();
        assert_eq!(got, vec![1, 2, 3]);
        assert!(buf.capacity() <= READ_STEP);
        writer.await.unwrap();
    }
}
