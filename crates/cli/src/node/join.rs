//! `quorum node --join`: learn a running cluster's members, and where they
//! listen for peers, from one of them (`QUORUM MEMBERS` on its client port).

use crate::admin_cmd::Conn;
use quorum_core::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A running cluster as one of its members describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Members {
    /// Every member's peer address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The voters.
    pub voters: Vec<NodeId>,
}

/// Asks the member whose client port is `client_addr` for the members.
pub fn members_of(client_addr: &str) -> Result<Members, String> {
    let mut conn = Conn::open(client_addr, None).map_err(|e| format!("--join {client_addr}: {e}"))?;
    conn.send(&[b"QUORUM", b"MEMBERS"])?;
    let text = match conn.reply()? {
        Ok(text) => text,
        Err(why) => return Err(format!("--join {client_addr}: QUORUM MEMBERS refused: {why}")),
    };
    parse(&String::from_utf8_lossy(&text)).map_err(|e| format!("--join {client_addr}: {e}"))
}

/// Parses `QUORUM MEMBERS`: one `id voter|learner host:port` per line.
fn parse(text: &str) -> Result<Members, String> {
    let mut members = Members { peers: BTreeMap::new(), voters: Vec::new() };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [id, role, address] = words[..] else { return Err(format!("unexpected member line '{line}'")) };
        let id = NodeId(id.parse().map_err(|_| format!("unexpected member id in '{line}'"))?);
        let address: SocketAddr =
            address.parse().map_err(|_| format!("member {id} has no usable peer address ('{line}')"))?;
        members.peers.insert(id, address);
        match role {
            "voter" => members.voters.push(id),
            "learner" => {}
            _ => return Err(format!("unexpected member role in '{line}'")),
        }
    }
    if members.voters.is_empty() {
        return Err("the cluster named no voter".into());
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_lines_parse_and_bad_ones_are_named() {
        let m = parse("1 voter 127.0.0.1:7001\n2 voter 127.0.0.1:7002\n4 learner 127.0.0.1:7004\n").unwrap();
        assert_eq!(m.voters, vec![NodeId(1), NodeId(2)]);
        assert_eq!(m.peers.len(), 3);
        assert!(parse("1 voter ?\n").unwrap_err().contains("no usable peer address"));
        assert!(parse("1 boss 127.0.0.1:1\n").unwrap_err().contains("role"));
        assert!(parse("4 learner 127.0.0.1:7004\n").unwrap_err().contains("no voter"));
    }
}
