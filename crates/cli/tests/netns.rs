//! A partition with real network namespaces: three raft nodes, each in its own
//! namespace on a private bridge; the leader is cut off, the others elect a new
//! leader and keep serving, the link is healed and the old leader catches up.
//!
//! Needs root and `ip netns`; otherwise the test prints why and passes without
//! running. Everything it creates (namespaces, bridge, veths) is named after the
//! test process and removed on drop; the only addresses used are on that bridge.

mod processes;

use processes::{wait_until, Proc, BIN};
use redis::Commands;
use std::process::{Command, Stdio};
use std::time::Duration;

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn in_ns(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, "ip"];
    all.extend_from_slice(args);
    ip(&all)
}

/// Namespaces `qh-<tag>` (a bridge) and `qn<i>-<tag>` (one node each), plus a
/// veth from the test's own namespace to the bridge.
struct Net {
    tag: u32,
    subnet: String,
    nodes: u64,
}

impl Net {
    fn hub(&self) -> String {
        format!("qh-{}", self.tag)
    }
    fn ns(&self, i: u64) -> String {
        format!("qn{i}-{}", self.tag)
    }
    fn addr(&self, i: u64) -> String {
        format!("{}.{i}", self.subnet)
    }
    /// The bridge-side end of node `i`'s link.
    fn port(&self, i: u64) -> String {
        format!("qb{i}-{}", self.tag)
    }

    fn create(nodes: u64) -> Result<Net, String> {
        let tag = std::process::id() % 100_000;
        let net = Net { tag, subnet: format!("10.213.{}", 20 + tag % 200), nodes };
        let hub = net.hub();
        ip(&["netns", "add", &hub])?;
        in_ns(&hub, &["link", "add", "br0", "type", "bridge"])?;
        in_ns(&hub, &["link", "set", "br0", "up"])?;
        for i in 1..=nodes {
            let (ns, node_end, bridge_end) = (net.ns(i), format!("qv{i}-{tag}"), net.port(i));
            ip(&["netns", "add", &ns])?;
            ip(&["link", "add", &node_end, "type", "veth", "peer", "name", &bridge_end])?;
            ip(&["link", "set", &node_end, "netns", &ns])?;
            ip(&["link", "set", &bridge_end, "netns", &hub])?;
            in_ns(&ns, &["addr", "add", &format!("{}/24", net.addr(i)), "dev", &node_end])?;
            in_ns(&ns, &["link", "set", &node_end, "up"])?;
            in_ns(&ns, &["link", "set", "lo", "up"])?;
            in_ns(&hub, &["link", "set", &bridge_end, "master", "br0"])?;
            in_ns(&hub, &["link", "set", &bridge_end, "up"])?;
        }
        let (mine, bridge_end) = (format!("qr-{tag}"), format!("qbr-{tag}"));
        ip(&["link", "add", &mine, "type", "veth", "peer", "name", &bridge_end])?;
        ip(&["link", "set", &bridge_end, "netns", &hub])?;
        in_ns(&hub, &["link", "set", &bridge_end, "master", "br0"])?;
        in_ns(&hub, &["link", "set", &bridge_end, "up"])?;
        ip(&["addr", "add", &format!("{}/24", net.addr(254)), "dev", &mine])?;
        ip(&["link", "set", &mine, "up"])?;
        Ok(net)
    }

    fn cut(&self, i: u64) {
        in_ns(&self.hub(), &["link", "set", &self.port(i), "down"]).unwrap();
    }

    fn heal(&self, i: u64) {
        in_ns(&self.hub(), &["link", "set", &self.port(i), "up"]).unwrap();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &format!("qr-{}", self.tag)]);
        for i in 1..=self.nodes {
            let _ = ip(&["netns", "del", &self.ns(i)]);
        }
        let _ = ip(&["netns", "del", &self.hub()]);
    }
}

fn info(addr: &str, field: &str) -> Option<String> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let mut conn = client.get_connection_with_timeout(Duration::from_millis(300)).ok()?;
    conn.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let text: String = redis::cmd("INFO").query(&mut conn).ok()?;
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).map(str::to_string)
}

#[test]
fn a_leader_cut_off_by_the_network_is_replaced_and_catches_up_once_healed() {
    let net = match Net::create(3) {
        Ok(net) => net,
        Err(why) => {
            println!("skipped: network namespaces are not available here ({why})");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let peers = (1..=3).map(|i| format!("{i}={}:7001", net.addr(i))).collect::<Vec<_>>().join(",");
    let client = |i: u64| format!("{}:6379", net.addr(i));
    let _nodes: Vec<Proc> = (1..=3)
        .map(|i| {
            let data = dir.path().join(format!("n{i}"));
            Proc(
                Command::new("ip")
                    .args(["netns", "exec", &net.ns(i), BIN, "node", "--protocol", "raft"])
                    .args(["--id", &i.to_string(), "--peers", &peers, "--client", &client(i)])
                    .arg("--data-dir")
                    .arg(data)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let leader =
        |except: u64| (1..=3).filter(|i| *i != except).find(|i| info(&client(*i), "role").as_deref() == Some("leader"));
    let mut old = None;
    wait_until("a leader is elected", Duration::from_secs(15), || {
        old = leader(0);
        old.is_some()
    });
    let old = old.unwrap();
    let other = if old == 1 { 2 } else { 1 };
    let mut conn = redis::Client::open(format!("redis://{}/", client(other))).unwrap().get_connection().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 0..20u64 {
        let _: () = conn.set(format!("before{i}"), i).unwrap();
    }

    net.cut(old);
    let mut new = None;
    wait_until("the majority elects a new leader", Duration::from_secs(15), || {
        new = leader(old);
        new.is_some()
    });
    for i in 0..20u64 {
        let _: () = conn.set(format!("during{i}"), i).unwrap();
    }
    let commit: u64 = info(&client(new.unwrap()), "commit_index").unwrap().parse().unwrap();

    net.heal(old);
    wait_until("the old leader rejoins as a follower and catches up", Duration::from_secs(15), || {
        info(&client(old), "role").as_deref() == Some("follower")
            && info(&client(old), "applied_index").and_then(|a| a.parse::<u64>().ok()).unwrap_or(0) >= commit
    });
    assert_eq!(info(&client(old), "keys").as_deref(), Some("40"));
    let mut via_old = redis::Client::open(format!("redis://{}/", client(old))).unwrap().get_connection().unwrap();
    let v: u64 = via_old.get("during19").unwrap();
    assert_eq!(v, 19);
}
