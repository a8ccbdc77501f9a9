//! `quorum viz`: the real protocols in the simulator, in a browser. Each
//! open tab gets its own simulated cluster, run on a thread of its own; the
//! page sends requests (advance the clock, step, act, rewind, export) over a
//! WebSocket and draws the frame each one answers with. The page is plain
//! JavaScript compiled into the binary: no CDN, no build step.

mod player;
mod session;
mod world;

pub use player::html as player_html;
pub use session::{Request, Session};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::Args;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Arguments of `quorum viz`.
#[derive(Args, Debug, Clone)]
pub struct VizArgs {
    /// The protocol a new tab starts with (the page can switch).
    #[arg(long, short, default_value = "raft", value_parser = crate::protocols::any_protocol())]
    pub protocol: String,
    /// Cluster size (1 to 9).
    #[arg(long, short, default_value_t = 5)]
    pub nodes: usize,
    /// The seed: with the actions taken, it decides the whole run.
    #[arg(long, short, default_value_t = 1)]
    pub seed: u64,
    /// The port to serve on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The address to serve on. The page can crash and rewind simulations
    /// that cost this machine CPU: keep it on loopback unless you mean it.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Most tabs served at once; a tab beyond it is told so.
    #[arg(long, default_value_t = 16)]
    pub max_tabs: usize,
    /// Open the run an export describes: a file holding its list of actions
    /// (the export's "actions"), carried out at their moments on the cluster
    /// that --protocol, --nodes and --seed name.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<std::path::PathBuf>,
}

/// The biggest message a page may send: requests are small JSON objects.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

struct Shared {
    args: VizArgs,
    tabs: AtomicUsize,
    /// The actions of `--replay`.
    replay: Option<String>,
}

/// Runs `quorum viz` until interrupted.
pub fn run(args: VizArgs) -> Result<i32, String> {
    // Refuse bad settings, or a replay that does not fit them, before serving.
    Session::new(&args.protocol, args.nodes, args.seed)?;
    let mut replay = None;
    if let Some(path) = &args.replay {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Session::replaying(&args.protocol, args.nodes, args.seed, &text)
            .map_err(|e| format!("cannot replay {}: {e}", path.display()))?;
        replay = Some(text);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(serve(args, replay))
}

async fn serve(args: VizArgs, replay: Option<String>) -> Result<i32, String> {
    let listener = tokio::net::TcpListener::bind((args.bind, args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.bind, args.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "quorum viz: serving http://{addr}/ ({}, {} nodes, seed {}); Ctrl-C stops",
        args.protocol, args.nodes, args.seed
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let shared = Arc::new(Shared { args, tabs: AtomicUsize::new(0), replay });
    let app = Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", include_str!("assets/index.html")) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("assets/app.js")) }))
        .route("/draw.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("assets/draw.js")) }))
        .route("/tours", get(tours))
        .route("/tour/{name}", get(tour))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", include_str!("assets/style.css")) }))
        .route("/ws", get(upgrade))
        .with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("the server stopped: {e}"))?;
    Ok(0)
}

/// The scenarios of `quorum trace --list`, as the page's tour menu lists them.
async fn tours() -> Response {
    let list: Vec<_> = quorum_scenarios::ALL
        .iter()
        .map(|s| serde_json::json!({ "name": s.name, "protocol": s.protocol, "about": s.about }))
        .collect();
    ([(header::CONTENT_TYPE, "application/json")], serde_json::Value::from(list).to_string()).into_response()
}

/// A scenario's run, played with its narration beside it.
async fn tour(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let Some(scenario) = quorum_scenarios::find(&name) else {
        return (axum::http::StatusCode::NOT_FOUND, format!("no scenario '{name}': see /tours")).into_response();
    };
    match tokio::task::spawn_blocking(move || player::html(&(scenario.run)(), scenario.protocol)).await {
        Ok(page) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response(),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("the scenario failed: {e}")).into_response(),
    }
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// A tab's choice of cluster, from the page's address.
#[derive(serde::Deserialize)]
struct TabQuery {
    protocol: Option<String>,
    nodes: Option<usize>,
    seed: Option<u64>,
}

async fn upgrade(ws: WebSocketUpgrade, Query(q): Query<TabQuery>, State(shared): State<Arc<Shared>>) -> Response {
    ws.max_message_size(MAX_REQUEST_BYTES).on_upgrade(move |socket| tab(socket, q, shared))
}

/// Serves one tab: its simulation runs on a thread of its own, fed one
/// request at a time, so a slow rewind never holds up another tab.
async fn tab(mut socket: WebSocket, q: TabQuery, shared: Arc<Shared>) {
    let a = &shared.args;
    let (protocol, nodes, seed) =
        (q.protocol.unwrap_or_else(|| a.protocol.clone()), q.nodes.unwrap_or(a.nodes), q.seed.unwrap_or(a.seed));
    if shared.tabs.fetch_add(1, Ordering::SeqCst) >= a.max_tabs {
        shared.tabs.fetch_sub(1, Ordering::SeqCst);
        let refusal = format!("{} tabs are open, the most this server runs (--max-tabs): close one", a.max_tabs);
        let _ = socket.send(Message::Text(error_json(&refusal).into())).await;
        return;
    }
    // A tab opened on the cluster of --replay opens the replayed run.
    let replay =
        shared.replay.clone().filter(|_| (protocol.as_str(), nodes, seed) == (a.protocol.as_str(), a.nodes, a.seed));
    let (to_sim, mut requests) = tokio::sync::mpsc::channel::<String>(4);
    let (replies, mut from_sim) = tokio::sync::mpsc::channel::<String>(4);
    let worker = std::thread::Builder::new().name("viz-tab".into()).spawn(move || {
        let started = match &replay {
            Some(actions) => Session::replaying(&protocol, nodes, seed, actions),
            None => Session::new(&protocol, nodes, seed),
        };
        let mut session = match started {
            Ok(s) => s,
            Err(e) => return drop(replies.blocking_send(error_json(&e))),
        };
        let first = serde_json::to_string(&session.frame(true)).expect("frames serialize");
        if replies.blocking_send(first).is_err() {
            return;
        }
        while let Some(text) = requests.blocking_recv() {
            let reply = match serde_json::from_str::<Request>(&text) {
                Ok(request) => serde_json::to_string(&session.handle(request)).expect("frames serialize"),
                Err(e) => error_json(&format!("not a request this server knows: {e}")),
            };
            if replies.blocking_send(reply).is_err() {
                return;
            }
        }
    });
    if worker.is_ok() {
        loop {
            tokio::select! {
                reply = from_sim.recv() => match reply {
                    Some(reply) => if socket.send(Message::Text(reply.into())).await.is_err() { break },
                    None => break,
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => if to_sim.send(text.to_string()).await.is_err() { break },
                    Some(Ok(Message::Binary(_))) => {
                        let _ = socket.send(Message::Text(error_json("requests are JSON text").into())).await;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
            }
        }
    }
    // Dropping the request channel ends the tab's thread.
    drop(to_sim);
    shared.tabs.fetch_sub(1, Ordering::SeqCst);
}

fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}
