//! A 3-server ZooKeeper ensemble, written to over its own binary protocol
//! (jute records in length-prefixed frames: a session handshake, then
//! `setData`, or `create` the first time a key is written).

use super::procs::{free_addr, on_path, Launch, Procs};
use super::{Connector, KvClient, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const SETTINGS: &str = "ZooKeeper 3.8, tickTime 50 ms, initLimit 40, syncLimit 3, forceSync on (its \
                                   default), writes as setData (create on a key's first write), JVM warmed by 3 s \
                                   of the same load first";

/// The server's classes, as Debian's `zookeeper` package installs them.
const JAR: &str = "/usr/share/java/zookeeper.jar";

/// A JVM compiles its hot paths while it runs: this much of the same load
/// goes before the measured run.
const WARM_UP: Duration = Duration::from_secs(3);

pub(crate) fn installed() -> bool {
    on_path("java").is_some() && Path::new(JAR).is_file()
}

pub(crate) struct ZooKeeper {
    procs: Procs,
    clients: Vec<SocketAddr>,
}

impl ZooKeeper {
    pub fn start(n: usize, seed: u64) -> Result<ZooKeeper, String> {
        let java = on_path("java").ok_or("java is not installed (apt-get install zookeeper)")?;
        let mut procs = Procs::new("zookeeper", seed)?;
        let clients: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let mut servers = String::new();
        for i in 1..=n {
            let (quorum, election) = (free_addr()?, free_addr()?);
            servers += &format!("server.{i}=127.0.0.1:{}:{}\n", quorum.port(), election.port());
        }
        for (i, client) in clients.iter().enumerate() {
            let data = procs.dir().join(format!("z{}", i + 1));
            std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).map_err(|e| e.to_string())?;
            let config = format!(
                "tickTime=50\ninitLimit=40\nsyncLimit=3\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
                 maxSessionTimeout=20000\n4lw.commands.whitelist=srvr\nadmin.enableServer=false\n{servers}",
                data.display(),
                client.port()
            );
            let path = procs.dir().join(format!("z{}.cfg", i + 1));
            std::fs::write(&path, config).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let args = vec![
                "-cp".into(),
                JAR.into(),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain".into(),
                path.into_os_string(),
            ];
            let log = procs.dir().join(format!("z{}.log", i + 1));
            procs.add(Launch { program: java.clone(), args, log })?;
        }
        Ok(ZooKeeper { procs, clients })
    }

    /// Server `i`'s answer to the `srvr` command.
    fn srvr(&self, i: usize) -> Option<String> {
        let timeout = Duration::from_millis(300);
        let mut s = TcpStream::connect_timeout(&self.clients[i], timeout).ok()?;
        s.set_read_timeout(Some(timeout)).ok()?;
        s.write_all(b"srvr").ok()?;
        let mut text = String::new();
        s.take(64 << 10).read_to_string(&mut text).ok()?;
        Some(text)
    }
}

impl System for ZooKeeper {
    fn name(&self) -> &str {
        "zookeeper"
    }

    fn procs(&self) -> &Procs {
        &self.procs
    }

    fn procs_mut(&mut self) -> &mut Procs {
        &mut self.procs
    }

    fn leader(&self) -> Option<usize> {
        (0..self.clients.len())
            .find(|&i| self.procs.is_up(i) && self.srvr(i).is_some_and(|s| s.contains("Mode: leader")))
    }

    /// The epoch: the high 32 bits of the last zxid.
    fn term(&self) -> u64 {
        (0..self.clients.len())
            .filter(|&i| self.procs.is_up(i))
            .filter_map(|i| {
                let text = self.srvr(i)?;
                let hex = text.lines().find_map(|l| l.strip_prefix("Zxid: 0x"))?;
                u64::from_str_radix(hex.trim(), 16).ok().map(|zxid| zxid >> 32)
            })
            .max()
            .unwrap_or(0)
    }

    fn connector(&self) -> Connector {
        let addrs = self.clients.clone();
        Arc::new(move |i, timeout| Session::open(addrs[i], timeout).map(|s| Box::new(s) as Box<dyn KvClient>))
    }

    fn warm_up(&self) -> Duration {
        WARM_UP
    }
}

// Operation codes and error codes of ZooKeeper's protocol (`ZooDefs.OpCode`, `KeeperException.Code`).
const OP_CREATE: i32 = 1;
const OP_GET_DATA: i32 = 4;
const OP_SET_DATA: i32 = 5;
const OP_SYNC: i32 = 9;
const NO_NODE: i32 = -101;
const NODE_EXISTS: i32 = -110;
/// `ZooDefs.Perms.ALL`, for the `world:anyone` ACL.
const PERMS_ALL: i32 = 31;
/// A session lives this long without a request; the client writes far more often.
const SESSION_MS: i32 = 10_000;
/// The largest answer we read: a header and a stat.
const MAX_FRAME: usize = 1 << 20;

/// One client session.
struct Session {
    stream: TcpStream,
    xid: i32,
}

/// A jute record being written.
#[derive(Default)]
struct Record(Vec<u8>);

impl Record {
    fn int(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn long(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(self, b: &[u8]) -> Self {
        let mut r = self.int(b.len() as i32);
        r.0.extend_from_slice(b);
        r
    }
    fn boolean(mut self, v: bool) -> Self {
        self.0.push(u8::from(v));
        self
    }
}

impl Session {
    fn open(addr: SocketAddr, timeout: Duration) -> Option<Session> {
        let stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
        stream.set_read_timeout(Some(timeout)).ok()?;
        stream.set_write_timeout(Some(timeout)).ok()?;
        stream.set_nodelay(true).ok()?;
        let mut s = Session { stream, xid: 0 };
        // ConnectRequest: protocol version, last zxid seen, timeout, session id, password, read-only.
        let hello = Record::default().int(0).long(0).int(SESSION_MS).long(0).bytes(&[0; 16]).boolean(false);
        s.send(&hello.0).ok()?;
        // ConnectResponse: protocol version, timeout, session id, password, read-only.
        let answer = s.receive().ok()?;
        let timeout_ms = i32::from_be_bytes(answer.get(4..8)?.try_into().ok()?);
        let session = i64::from_be_bytes(answer.get(8..16)?.try_into().ok()?);
        (timeout_ms > 0 && session != 0).then_some(s)
    }

    fn send(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 4);
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)
    }

    fn receive(&mut self) -> Result<Vec<u8>, String> {
        let mut len = [0; 4];
        self.stream.read_exact(&mut len).map_err(|e| e.to_string())?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(format!("a {len}-byte answer"));
        }
        let mut payload = vec![0; len];
        self.stream.read_exact(&mut payload).map_err(|e| e.to_string())?;
        Ok(payload)
    }

    /// Sends one request and returns its error code (0: done).
    fn call(&mut self, op: i32, body: Record) -> Result<i32, String> {
        self.call_for(op, body).map(|(code, _)| code)
    }

    /// Sends one request and returns its error code and the answer's body.
    fn call_for(&mut self, op: i32, body: Record) -> Result<(i32, Vec<u8>), String> {
        self.xid += 1;
        let mut request = Record::default().int(self.xid).int(op);
        request.0.extend_from_slice(&body.0);
        self.send(&request.0).map_err(|e| e.to_string())?;
        // ReplyHeader: xid, zxid, error; then the operation's answer.
        let answer = self.receive()?;
        let field = |range: std::ops::Range<usize>| {
            answer.get(range).and_then(|b| b.try_into().ok()).map(i32::from_be_bytes).ok_or("a short answer")
        };
        let xid = field(0..4)?;
        if xid != self.xid {
            return Err(format!("an answer to request {xid}, not to {}", self.xid));
        }
        let code = field(12..16)?;
        Ok((code, answer[16..].to_vec()))
    }
}

impl KvClient for Session {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        let path = format!("/{key}");
        let set = || Record::default().bytes(path.as_bytes()).bytes(value).int(-1);
        let mut code = self.call(OP_SET_DATA, set())?;
        if code == NO_NODE {
            let acl = Record::default().int(1).int(PERMS_ALL).bytes(b"world").bytes(b"anyone");
            let mut create = Record::default().bytes(path.as_bytes()).bytes(value);
            create.0.extend_from_slice(&acl.0);
            code = self.call(OP_CREATE, create.int(0))?;
            if code == NODE_EXISTS {
                // Another client created it first: write over it.
                code = self.call(OP_SET_DATA, set())?;
            }
        }
        match code {
            0 => Ok(()),
            code => Err(format!("ZooKeeper error {code}")),
        }
    }

    /// `sync` then `getData`: a ZooKeeper server answers reads from its own
    /// copy, which may lag the leader; `sync` makes it catch up first (the
    /// read ZooKeeper's documentation gives for "the latest value").
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let path = format!("/{key}");
        match self.call(OP_SYNC, Record::default().bytes(path.as_bytes()))? {
            0 | NO_NODE => {}
            code => return Err(format!("ZooKeeper error {code} on sync")),
        }
        let (code, body) = self.call_for(OP_GET_DATA, Record::default().bytes(path.as_bytes()).boolean(false))?;
        match code {
            NO_NODE => Ok(None),
            0 => {
                // GetDataResponse: the data as a length-prefixed buffer (-1: null), then the node's Stat.
                let len =
                    body.get(0..4).and_then(|b| b.try_into().ok()).map(i32::from_be_bytes).ok_or("a short answer")?;
                let data = usize::try_from(len).ok().and_then(|n| body.get(4..4 + n)).map(<[u8]>::to_vec);
                Ok(Some(data.unwrap_or_default()))
            }
            code => Err(format!("ZooKeeper error {code}")),
        }
    }
}
