//! Replies on the client port, written in the protocol version the
//! connection chose: RESP2 by default, RESP3 after `HELLO 3`. A reply is
//! built once, in the shapes both versions share, and encoded at the end
//! with the `redis-protocol` crate's codecs; RESP2 writes a map as a flat
//! array of keys and values and a null as the null bulk string.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::BytesFrame as Resp2;
use redis_protocol::resp3::types::BytesFrame as Resp3;

/// The protocol version of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    Resp2,
    Resp3,
}

impl Proto {
    /// The number `HELLO` names it by.
    pub(crate) fn number(self) -> i64 {
        match self {
            Proto::Resp2 => 2,
            Proto::Resp3 => 3,
        }
    }
}

/// One reply.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Reply {
    /// A one-line status (`+OK`).
    Status(&'static str),
    /// A binary-safe string.
    Bulk(Bytes),
    /// No value.
    Null,
    Integer(i64),
    Array(Vec<Reply>),
    /// Keys and values, in order.
    Map(Vec<(Reply, Reply)>),
    /// An error line; starts with its kind (`ERR`, `NOPROTO`, `MOVED`, ...).
    Error(String),
}

impl Reply {
    pub(crate) fn ok() -> Reply {
        Reply::Status("OK")
    }

    pub(crate) fn text(s: impl Into<String>) -> Reply {
        Reply::Bulk(Bytes::from(s.into()))
    }

    /// Appends the reply to `out` in `proto`.
    pub(crate) fn encode(&self, out: &mut BytesMut, proto: Proto) {
        let written = match proto {
            Proto::Resp2 => redis_protocol::resp2::encode::extend_encode(out, &self.resp2(), false).map(drop),
            Proto::Resp3 => redis_protocol::resp3::encode::complete::extend_encode(out, &self.resp3(), false).map(drop),
        };
        written.expect("encoding into a growable buffer cannot fail");
    }

    fn resp2(&self) -> Resp2 {
        match self {
            Reply::Status(s) => Resp2::SimpleString(Bytes::from_static(s.as_bytes())),
            Reply::Bulk(b) => Resp2::BulkString(b.clone()),
            Reply::Null => Resp2::Null,
            Reply::Integer(n) => Resp2::Integer(*n),
            Reply::Array(items) => Resp2::Array(items.iter().map(Reply::resp2).collect()),
            Reply::Map(pairs) => Resp2::Array(pairs.iter().flat_map(|(k, v)| [k.resp2(), v.resp2()]).collect()),
            Reply::Error(line) => Resp2::Error(one_line(line).into()),
        }
    }

    fn resp3(&self) -> Resp3 {
        match self {
            Reply::Status(s) => Resp3::SimpleString { data: Bytes::from_static(s.as_bytes()), attributes: None },
            Reply::Bulk(b) => Resp3::BlobString { data: b.clone(), attributes: None },
            Reply::Null => Resp3::Null,
            Reply::Integer(n) => Resp3::Number { data: *n, attributes: None },
            Reply::Array(items) => Resp3::Array { data: items.iter().map(Reply::resp3).collect(), attributes: None },
            Reply::Map(pairs) => {
                Resp3::Map { data: pairs.iter().map(|(k, v)| (k.resp3(), v.resp3())).collect(), attributes: None }
            }
            Reply::Error(line) => Resp3::SimpleError { data: one_line(line).into(), attributes: None },
        }
    }
}

/// RESP errors are one line.
fn one_line(message: &str) -> String {
    message.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(reply: Reply) -> (String, String) {
        let mut two = BytesMut::new();
        let mut three = BytesMut::new();
        reply.encode(&mut two, Proto::Resp2);
        reply.encode(&mut three, Proto::Resp3);
        (String::from_utf8(two.to_vec()).unwrap(), String::from_utf8(three.to_vec()).unwrap())
    }

    #[test]
    fn nulls_numbers_and_strings_take_each_versions_form() {
        assert_eq!(both(Reply::Null), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(Reply::Integer(-7)), (":-7\r\n".into(), ":-7\r\n".into()));
        assert_eq!(both(Reply::ok()), ("+OK\r\n".into(), "+OK\r\n".into()));
        assert_eq!(both(Reply::text("hi")), ("$2\r\nhi\r\n".into(), "$2\r\nhi\r\n".into()));
        assert_eq!(both(Reply::Error("ERR a\r\nb".into())), ("-ERR a  b\r\n".into(), "-ERR a  b\r\n".into()));
    }

    #[test]
    fn a_map_is_a_map_in_resp3_and_a_flat_array_in_resp2() {
        let map = Reply::Map(vec![(Reply::text("proto"), Reply::Integer(3))]);
        assert_eq!(both(map), ("*2\r\n$5\r\nproto\r\n:3\r\n".into(), "%1\r\n$5\r\nproto\r\n:3\r\n".into()));
    }
}
