//! The metrics port: `GET /metrics` (Prometheus text), `GET /health` (the
//! process answers) and `GET /ready` (200 once a leader is known and every
//! known commit is applied, 503 before). One request per connection; a
//! request head over 8 KiB, or not sent within 5 s, closes the connection;
//! at most 64 connections are served at once.

use crate::limits::{ClientCounters, PeerCounters};
use crate::metrics::render;
use crate::node::NodeHandle;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info};

const MAX_HEAD_BYTES: usize = 8 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 64;

/// What the metrics port reads from.
#[derive(Clone, Debug)]
pub struct MetricsSources {
    /// The node (its view and its measurements).
    pub node: NodeHandle,
    /// The client port's counts.
    pub clients: Arc<ClientCounters>,
    /// The peer transport's counts.
    pub peers: Arc<PeerCounters>,
    /// The protocol's settings by name.
    pub settings: Arc<Vec<(String, String)>>,
}

/// Serves the metrics port until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, sources: MetricsSources) {
    info!(addr = ?listener.local_addr().ok(), "metrics port listening (/metrics, /health, /ready)");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, remote)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let sources = sources.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &sources).await {
                debug!(%remote, error = %e, "metrics request failed");
            }
            drop(slot);
        });
    }
}

async fn answer(mut stream: TcpStream, sources: &MetricsSources) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read_head = async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 || head.len() + n > MAX_HEAD_BYTES {
                return Err(std::io::Error::other("request head too long or cut short"));
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(HEAD_TIMEOUT, read_head).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let view = sources.node.watch().borrow().clone();
    let (status, content_type, body) = match (method, path) {
        (b"GET", b"/metrics") => {
            let mut text = render(&view, &sources.node.metrics(), &sources.clients, &sources.peers);
            text.push_str("# HELP quorum_setting A protocol setting and its value.\n# TYPE quorum_setting gauge\n");
            for (key, value) in sources.settings.iter() {
                text.push_str(&format!("quorum_setting{{key=\"{key}\",value=\"{value}\"}} 1\n"));
            }
            ("200 OK", "text/plain; version=0.0.4", text)
        }
        (b"GET", b"/health") => ("200 OK", "text/plain", "ok\n".to_string()),
        (b"GET", b"/ready") => match view.not_ready_because() {
            None => ("200 OK", "text/plain", "ready\n".to_string()),
            Some(why) => ("503 Service Unavailable", "text/plain", format!("not ready: {why}\n")),
        },
        (b"GET", _) => ("404 Not Found", "text/plain", "try /metrics, /health or /ready\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
