//! The commands that set up a client connection rather than touch data:
//! `HELLO` (RESP2 or RESP3, `SETNAME`), `CLIENT SETNAME | GETNAME | ID | INFO
//! | SETINFO`, `ECHO`, `RESET`. They change only the connection's own state,
//! never the store, and are answered by the node the client is connected to.

use crate::reply::{Proto, Reply};
use bytes::Bytes;
use std::net::SocketAddr;

/// What a connection carries besides its session: the protocol version it
/// speaks and the name its client gave it.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) proto: Proto,
    pub(crate) name: Option<Bytes>,
    /// The number `CLIENT ID` and `HELLO` report (the session's id).
    pub(crate) id: u64,
    pub(crate) peer: Option<SocketAddr>,
    /// `CLIENT SETINFO` library name and version, shown by `CLIENT INFO`.
    lib: (Bytes, Bytes),
}

impl Connection {
    pub(crate) fn new(id: u64, peer: Option<SocketAddr>) -> Self {
        Connection { proto: Proto::Resp2, name: None, id, peer, lib: (Bytes::new(), Bytes::new()) }
    }

    /// `HELLO [protover [AUTH username password] [SETNAME name]]`: switches
    /// the protocol version and answers with a map that describes the
    /// server. `role` is the node's role as Redis names it (`master` or
    /// `replica`). Nothing changes unless the whole command is valid.
    pub(crate) fn hello(&mut self, args: &[Bytes], role: &str) -> Reply {
        let mut proto = self.proto;
        let mut name = None;
        if let Some(version) = args.get(1) {
            proto = match &version[..] {
                b"2" => Proto::Resp2,
                b"3" => Proto::Resp3,
                _ if parse_int(version).is_some() => {
                    return Reply::Error("NOPROTO unsupported protocol version".into());
                }
                _ => return Reply::Error("ERR Protocol version is not an integer or out of range".into()),
            };
        }
        let mut rest = args.iter().skip(2);
        while let Some(option) = rest.next() {
            match option.to_ascii_uppercase().as_slice() {
                b"AUTH" => {
                    if rest.next().is_none() || rest.next().is_none() {
                        return Reply::Error("ERR syntax error: HELLO AUTH needs a username and a password".into());
                    }
                    return Reply::Error(
                        "ERR AUTH called without any users configured (start the node with --users)".into(),
                    );
                }
                b"SETNAME" => match rest.next() {
                    Some(n) if valid_name(n) => name = Some(n.clone()),
                    Some(_) => return Reply::Error(BAD_NAME.into()),
                    None => return Reply::Error("ERR syntax error: HELLO SETNAME needs a name".into()),
                },
                _ => {
                    let what = String::from_utf8_lossy(&option[..option.len().min(64)]).into_owned();
                    return Reply::Error(format!("ERR syntax error in HELLO option '{what}'"));
                }
            }
        }
        self.proto = proto;
        if name.is_some() {
            self.name = name;
        }
        Reply::Map(vec![
            (Reply::text("server"), Reply::text("quorum")),
            (Reply::text("version"), Reply::text(env!("CARGO_PKG_VERSION"))),
            (Reply::text("proto"), Reply::Integer(self.proto.number())),
            (Reply::text("id"), Reply::Integer(self.id as i64)),
            (Reply::text("mode"), Reply::text("standalone")),
            (Reply::text("role"), Reply::text(role)),
            (Reply::text("modules"), Reply::Array(Vec::new())),
        ])
    }

    /// `CLIENT <subcommand> ...`.
    pub(crate) fn client(&mut self, args: &[Bytes]) -> Reply {
        let Some(sub) = args.get(1) else {
            return Reply::Error("ERR wrong number of arguments for 'client' command".into());
        };
        match (sub.to_ascii_uppercase().as_slice(), args.len()) {
            (b"SETNAME", 3) if valid_name(&args[2]) => {
                self.name = (!args[2].is_empty()).then(|| args[2].clone());
                Reply::ok()
            }
            (b"SETNAME", 3) => Reply::Error(BAD_NAME.into()),
            (b"GETNAME", 2) => self.name.clone().map_or(Reply::Null, Reply::Bulk),
            (b"ID", 2) => Reply::Integer(self.id as i64),
            (b"INFO", 2) => Reply::Bulk(Bytes::from(self.info_line())),
            (b"SETINFO", 4) => {
                let value = args[3].clone();
                match args[2].to_ascii_uppercase().as_slice() {
                    b"LIB-NAME" if valid_name(&value) => self.lib.0 = value,
                    b"LIB-VER" if valid_name(&value) => self.lib.1 = value,
                    b"LIB-NAME" | b"LIB-VER" => return Reply::Error(BAD_NAME.into()),
                    _ => return Reply::Error("ERR Unrecognized option for CLIENT SETINFO".into()),
                }
                Reply::ok()
            }
            (b"SETNAME" | b"GETNAME" | b"ID" | b"INFO" | b"SETINFO", _) => Reply::Error(format!(
                "ERR wrong number of arguments for 'client|{}' command",
                String::from_utf8_lossy(sub).to_ascii_lowercase()
            )),
            _ => Reply::Error(format!(
                "ERR unknown subcommand '{}': this server knows CLIENT SETNAME, GETNAME, ID, INFO and SETINFO",
                String::from_utf8_lossy(&sub[..sub.len().min(64)])
            )),
        }
    }

    /// `RESET`: back to RESP2, no name, as a fresh connection (the session
    /// and its sequence numbers go on: they are what makes retries safe).
    pub(crate) fn reset(&mut self) -> Reply {
        self.proto = Proto::Resp2;
        self.name = None;
        Reply::Status("RESET")
    }

    fn info_line(&self) -> String {
        let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        format!(
            "id={} addr={} name={} resp={} lib-name={} lib-ver={}\n",
            self.id,
            self.peer.map_or("?".to_string(), |a| a.to_string()),
            self.name.as_ref().map(text).unwrap_or_default(),
            self.proto.number(),
            text(&self.lib.0),
            text(&self.lib.1),
        )
    }
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

/// Names and library tags are printable ASCII without spaces, as in Redis.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn parse_int(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    fn field(reply: &Reply, key: &str) -> Reply {
        let Reply::Map(pairs) = reply else { panic!("not a map: {reply:?}") };
        pairs.iter().find(|(k, _)| *k == Reply::text(key)).map(|(_, v)| v.clone()).expect(key)
    }

    #[test]
    fn hello_3_switches_to_resp3_and_describes_the_server() {
        let mut conn = Connection::new(7, None);
        let reply = conn.hello(&args(&["HELLO", "3", "SETNAME", "app-1"]), "master");
        assert_eq!(conn.proto, Proto::Resp3);
        assert_eq!(field(&reply, "proto"), Reply::Integer(3));
        assert_eq!(field(&reply, "id"), Reply::Integer(7));
        assert_eq!(field(&reply, "role"), Reply::text("master"));
        assert_eq!(conn.client(&args(&["CLIENT", "GETNAME"])), Reply::Bulk(Bytes::from("app-1")));
        // HELLO with no version reports without switching.
        let again = conn.hello(&args(&["HELLO"]), "replica");
        assert_eq!((conn.proto, field(&again, "proto")), (Proto::Resp3, Reply::Integer(3)));
        conn.hello(&args(&["HELLO", "2"]), "master");
        assert_eq!(conn.proto, Proto::Resp2);
    }

    #[test]
    fn a_bad_hello_is_refused_whole() {
        let mut conn = Connection::new(1, None);
        let refused = [
            (&["HELLO", "4"][..], "NOPROTO"),
            (&["HELLO", "three"][..], "ERR Protocol version"),
            (&["HELLO", "3", "AUTH", "default", "secret"][..], "ERR AUTH called without any users"),
            (&["HELLO", "3", "AUTH", "default"][..], "ERR syntax error"),
            (&["HELLO", "3", "SETNAME", "has space"][..], "ERR Client names"),
            (&["HELLO", "3", "SETNAME"][..], "ERR syntax error"),
            (&["HELLO", "3", "BOGUS"][..], "ERR syntax error"),
        ];
        for (words, start) in refused {
            match conn.hello(&args(words), "master") {
                Reply::Error(e) => assert!(e.starts_with(start), "{words:?}: {e}"),
                other => panic!("{words:?} was accepted: {other:?}"),
            }
            assert_eq!((conn.proto, &conn.name), (Proto::Resp2, &None), "{words:?} changed the connection");
        }
    }

    #[test]
    fn client_subcommands_name_and_describe_the_connection() {
        let mut conn = Connection::new(42, Some("127.0.0.1:5000".parse().unwrap()));
        assert_eq!(conn.client(&args(&["CLIENT", "GETNAME"])), Reply::Null);
        assert_eq!(conn.client(&args(&["client", "setname", "worker"])), Reply::ok());
        assert_eq!(conn.client(&args(&["CLIENT", "ID"])), Reply::Integer(42));
        assert_eq!(conn.client(&args(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"])), Reply::ok());
        let Reply::Bulk(info) = conn.client(&args(&["CLIENT", "INFO"])) else { panic!("not a string") };
        assert_eq!(&info[..], b"id=42 addr=127.0.0.1:5000 name=worker resp=2 lib-name=redis-py lib-ver=\n");
        assert!(
            matches!(conn.client(&args(&["CLIENT", "KILL", "x"])), Reply::Error(e) if e.contains("unknown subcommand"))
        );
        assert!(matches!(conn.client(&args(&["CLIENT", "SETNAME"])), Reply::Error(e) if e.contains("wrong number")));
        assert!(
            matches!(conn.client(&args(&["CLIENT", "SETINFO", "LIB-X", "y"])), Reply::Error(e) if e.contains("Unrecognized"))
        );
        // An empty name clears it.
        assert_eq!(conn.client(&args(&["CLIENT", "SETNAME", ""])), Reply::ok());
        assert_eq!(conn.client(&args(&["CLIENT", "GETNAME"])), Reply::Null);
        conn.hello(&args(&["HELLO", "3", "SETNAME", "x"]), "master");
        assert_eq!(conn.reset(), Reply::Status("RESET"));
        assert_eq!((conn.proto, &conn.name), (Proto::Resp2, &None));
    }
}
