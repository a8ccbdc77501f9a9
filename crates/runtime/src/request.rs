//! Client requests off the wire: a command is one flat RESP array of bulk
//! strings (`*N\r\n$len\r\nbytes\r\n...`), or an inline command (one line of
//! words, as typed into telnet), and that is all this parser reads.
//!
//! It never recurses (a nested array is a protocol error, so no input can
//! exhaust the stack), checks every announced length against its limits
//! before it reserves anything, and consumes arguments as they complete, so a
//! request arriving in pieces is never re-scanned. An argument too large to be
//! replicated is skipped as it arrives (not buffered) and the command answered
//! with `-ERR value too large`; the connection carries on.

use bytes::{Buf, Bytes, BytesMut};

/// The longest header line (`*N`, `$N`, `+...`, `:...`) accepted.
const MAX_LINE: usize = 64 * 1024;

/// Limits on one client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// The most elements in a command's array; more is a protocol error
    /// (`invalid multibulk length`) and closes the connection.
    pub max_array_len: usize,
    /// The largest bulk length announced; more is a protocol error
    /// (`invalid bulk length`) and closes the connection.
    pub max_bulk_bytes: usize,
    /// The most argument bytes in one command (a SET's key plus value): larger
    /// commands could not be replicated in one peer frame, so they are read
    /// past and answered `-ERR value too large` without being proposed.
    pub max_command_bytes: usize,
}

/// Room left in a peer frame for what wraps a client command (message
/// headers, term and index, client id and sequence number, key length).
pub const REPLICATION_OVERHEAD: usize = 64 * 1024;

impl RequestLimits {
    /// Limits for a cluster whose peers accept frames up to `max_frame_bytes`.
    pub fn for_frame_limit(max_frame_bytes: usize) -> Self {
        let max_command_bytes = max_frame_bytes.saturating_sub(REPLICATION_OVERHEAD).max(1);
        RequestLimits { max_array_len: 1 << 20, max_bulk_bytes: (64 << 20).max(max_command_bytes), max_command_bytes }
    }
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits::for_frame_limit(16 << 20)
    }
}

/// One request read.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A command's arguments, the first its name (never empty).
    Command(Vec<Bytes>),
    /// A request read in full but refused: the error to answer (without the
    /// leading `-`); the connection carries on.
    Refused(String),
}

/// Input that is not RESP or breaks a limit: answer `-ERR Protocol error: ..`
/// and close the connection.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

/// A command whose arguments are still arriving.
#[derive(Debug)]
struct Partial {
    left: usize,
    args: Vec<Bytes>,
    bytes: usize,
    not_bulk: bool,
}

/// Reads commands from a connection's input buffer.
#[derive(Debug)]
pub struct RequestParser {
    limits: RequestLimits,
    partial: Option<Partial>,
    /// Bytes of a refused argument still to be discarded.
    skip: usize,
}

fn protocol(what: impl Into<String>) -> ProtocolError {
    ProtocolError(what.into())
}

/// The line at the start of `input` (without `\r\n`), if it is complete.
fn line(input: &[u8]) -> Result<Option<&[u8]>, ProtocolError> {
    let window = &input[..input.len().min(MAX_LINE + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some(&input[..end])),
        None if input.len() > MAX_LINE => Err(protocol("too big request line")),
        None => Ok(None),
    }
}

fn number(digits: &[u8], what: &str) -> Result<i64, ProtocolError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| protocol(format!("invalid {what} length")))
}

impl RequestParser {
    /// A parser with these limits.
    pub fn new(limits: RequestLimits) -> Self {
        RequestParser { limits, partial: None, skip: 0 }
    }

    /// Whether no request is partly read (nothing is waiting for more bytes).
    pub fn is_idle(&self) -> bool {
        self.partial.is_none() && self.skip == 0
    }

    /// The limits in force.
    pub fn limits(&self) -> &RequestLimits {
        &self.limits
    }

    /// The next complete request in `input` (consumed from it), `None` if more
    /// input is needed.
    pub fn next(&mut self, input: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(input.len());
                input.advance(n);
                self.skip -= n;
                if self.skip > 0 {
                    return Ok(None);
                }
            }
            let Some(partial) = self.partial.as_mut() else {
                match self.start(input)? {
                    Some(Some(request)) => return Ok(Some(request)),
                    Some(None) => continue,
                    None => return Ok(None),
                }
            };
            if partial.left == 0 {
                let done = self.partial.take().expect("a partial command");
                return Ok(Some(self.finish(done)));
            }
            let Some(&kind) = input.first() else { return Ok(None) };
            let Some(header) = line(input)? else { return Ok(None) };
            let header_len = header.len() + 2;
            match kind {
                b'$' => {
                    let len = number(&header[1..], "bulk")?;
                    if len == -1 {
                        partial.not_bulk = true;
                        partial.left -= 1;
                        input.advance(header_len);
                        continue;
                    }
                    let len = usize::try_from(len).map_err(|_| protocol("invalid bulk length"))?;
                    if len > self.limits.max_bulk_bytes {
                        return Err(protocol("invalid bulk length"));
                    }
                    if partial.bytes.saturating_add(len) > self.limits.max_command_bytes {
                        // Too big to replicate: discard it as it arrives.
                        partial.bytes = partial.bytes.saturating_add(len);
                        partial.left -= 1;
                        partial.args.clear();
                        input.advance(header_len);
                        self.skip = len + 2;
                        continue;
                    }
                    if input.len() < header_len + len + 2 {
                        // Wait for the whole argument; make room for it once.
                        input.reserve(header_len + len + 2 - input.len());
                        return Ok(None);
                    }
                    if &input[header_len + len..header_len + len + 2] != b"\r\n" {
                        return Err(protocol("bulk string not terminated by CRLF"));
                    }
                    input.advance(header_len);
                    let arg = input.split_to(len).freeze();
                    input.advance(2);
                    partial.bytes += len;
                    partial.left -= 1;
                    if partial.bytes <= self.limits.max_command_bytes {
                        partial.args.push(arg);
                    }
                }
                b'+' | b':' => {
                    let arg = Bytes::copy_from_slice(&header[1..]);
                    input.advance(header_len);
                    partial.bytes += arg.len();
                    partial.left -= 1;
                    partial.args.push(arg);
                }
                b'-' => {
                    input.advance(header_len);
                    partial.not_bulk = true;
                    partial.left -= 1;
                }
                b'*' => return Err(protocol("nested arrays are not commands (a command is an array of bulk strings)")),
                other => return Err(protocol(format!("expected '$', got '{}'", other.escape_ascii()))),
            }
        }
    }

    /// Reads the start of a request: `Some(Some(_))` a request complete at
    /// once, `Some(None)` a command's array header (arguments follow) or an
    /// empty inline line, `None` more input needed.
    fn start(&mut self, input: &mut BytesMut) -> Result<Option<Option<Request>>, ProtocolError> {
        let Some(&kind) = input.first() else { return Ok(None) };
        if !matches!(kind, b'*' | b'+' | b'-' | b':' | b'$') {
            return self.inline(input);
        }
        let Some(header) = line(input)? else { return Ok(None) };
        let header_len = header.len() + 2;
        let not_a_command = || Request::Refused("ERR Protocol error: expected an array of bulk strings".into());
        match kind {
            b'*' => {
                let n = number(&header[1..], "multibulk")?;
                input.advance(header_len);
                if n <= 0 {
                    return Ok(Some(Some(if n == 0 {
                        Request::Refused("ERR empty command".into())
                    } else {
                        not_a_command()
                    })));
                }
                let n = n as u64;
                if n > self.limits.max_array_len as u64 {
                    return Err(protocol("invalid multibulk length"));
                }
                let n = n as usize;
                self.partial =
                    Some(Partial { left: n, args: Vec::with_capacity(n.min(16)), bytes: 0, not_bulk: false });
                Ok(Some(None))
            }
            b'+' | b'-' | b':' => {
                input.advance(header_len);
                Ok(Some(Some(not_a_command())))
            }
            b'$' => {
                let len = number(&header[1..], "bulk")?;
                input.advance(header_len);
                if len >= 0 {
                    let len = len as u64;
                    if len > self.limits.max_bulk_bytes as u64 {
                        return Err(protocol("invalid bulk length"));
                    }
                    self.skip = len as usize + 2;
                }
                Ok(Some(Some(not_a_command())))
            }
            _ => unreachable!("inline commands are read above"),
        }
    }

    /// An inline command (`PING\r\n`, as typed into telnet and sent by
    /// redis-benchmark's *_INLINE tests): one line, ended by `\n`, words
    /// split on spaces, quotes as Redis reads them.
    fn inline(&self, input: &mut BytesMut) -> Result<Option<Option<Request>>, ProtocolError> {
        let window = &input[..input.len().min(MAX_LINE + 1)];
        let Some(end) = window.iter().position(|&b| b == b'\n') else {
            return if input.len() > MAX_LINE { Err(protocol("too big inline request")) } else { Ok(None) };
        };
        let words = split_inline(&input[..end])?;
        input.advance(end + 1);
        if words.is_empty() {
            return Ok(Some(None)); // an empty line is skipped, as Redis does
        }
        let bytes: usize = words.iter().map(|w| w.len()).sum();
        Ok(Some(Some(self.finish(Partial { left: 0, args: words, bytes, not_bulk: false }))))
    }

    fn finish(&self, done: Partial) -> Request {
        if done.bytes > self.limits.max_command_bytes {
            Request::Refused(format!(
                "ERR value too large: {} bytes, the limit is {}",
                done.bytes, self.limits.max_command_bytes
            ))
        } else if done.not_bulk {
            Request::Refused("ERR Protocol error: expected an array of bulk strings".into())
        } else {
            Request::Command(done.args)
        }
    }
}

/// Splits an inline command line into words: runs of non-space bytes,
/// `"double quoted"` with the escapes `\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
/// `\a` and `\xHH`, or `'single quoted'` with `\'`. A quote must be followed
/// by a space or the end of the line; unbalanced quotes are a protocol error.
fn split_inline(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // An inline command is text: control bytes mean something else is
    // talking to the port (a TLS handshake, a binary protocol).
    if let Some(&c) = line.iter().find(|&&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
        return Err(protocol(format!("unexpected byte {:#04x} in an inline command", c)));
    }
    let unbalanced = || protocol("unbalanced quotes in request");
    let mut words = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if line[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut word = Vec::new();
        match line[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let &c = line.get(i).ok_or_else(unbalanced)?;
                    i += 1;
                    if c == quote {
                        break;
                    }
                    if c != b'\\' {
                        word.push(c);
                        continue;
                    }
                    let &e = line.get(i).ok_or_else(unbalanced)?;
                    i += 1;
                    let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
                    if quote == b'\'' && e != b'\'' {
                        word.extend_from_slice(&[b'\\', e]); // only \' escapes in single quotes
                        continue;
                    }
                    word.push(match (quote, e) {
                        (b'\'', _) => b'\'',
                        (_, b'n') => b'\n',
                        (_, b'r') => b'\r',
                        (_, b't') => b'\t',
                        (_, b'b') => 8,
                        (_, b'a') => 7,
                        (_, b'x') => match (hex(line.get(i)), hex(line.get(i + 1))) {
                            (Some(h), Some(l)) => {
                                i += 2;
                                (h * 16 + l) as u8
                            }
                            _ => b'x',
                        },
                        (_, other) => other,
                    });
                }
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err(unbalanced());
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    word.push(line[i]);
                    i += 1;
                }
            }
        }
        words.push(Bytes::from(word));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RequestLimits {
        RequestLimits { max_array_len: 8, max_bulk_bytes: 1000, max_command_bytes: 100 }
    }

    fn parse_all(bytes: &[u8], chunk: usize) -> (Vec<Request>, Option<ProtocolError>) {
        let mut parser = RequestParser::new(limits());
        let mut input = BytesMut::new();
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            input.extend_from_slice(piece);
            loop {
                match parser.next(&mut input) {
                    Ok(Some(r)) => out.push(r),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    }

    fn cmd(args: &[&str]) -> Request {
        Request::Command(args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect())
    }

    #[test]
    fn inline_commands_split_into_words_with_quotes() {
        let bytes = b"PING\r\nset k \"a b\\n\\x41\"\n\r\n  GET  'it\\'s' \r\n";
        for chunk in [1, 1000] {
            let (got, err) = parse_all(bytes, chunk);
            assert_eq!(err, None);
            assert_eq!(got, vec![cmd(&["PING"]), cmd(&["set", "k", "a b\nA"]), cmd(&["GET", "it's"])]);
        }
        for bad in [&b"GET \"k\r\n"[..], b"GET 'k'x\r\n", b"\x16\x03\x01 hello\r\n"] {
            let (got, err) = parse_all(bad, 1000);
            assert!(got.is_empty() && err.is_some(), "{:?}: {got:?} {err:?}", bad.escape_ascii().to_string());
        }
        let (_, err) = parse_all(&vec![b'a'; MAX_LINE + 10], 1000);
        assert_eq!(err, Some(protocol("too big inline request")));
    }

    /// Found by the fuzzer (tests/fuzz.rs): an inline command skipped the command size limit.
    #[test]
    fn an_inline_command_over_the_command_limit_is_refused_like_an_array_one() {
        let long = format!("SET k {}\r\nPING\r\n", "v".repeat(limits().max_command_bytes));
        let (got, err) = parse_all(long.as_bytes(), 1000);
        assert_eq!(err, None);
        assert!(matches!(&got[0], Request::Refused(e) if e.starts_with("ERR value too large")), "{got:?}");
        assert_eq!(got[1], cmd(&["PING"]));
    }

    #[test]
    fn commands_parse_whole_and_byte_by_byte() {
        let bytes = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n*2\r\n+GET\r\n:12\r\n";
        for chunk in [1, 3, 1000] {
            let (got, err) = parse_all(bytes, chunk);
            assert_eq!(err, None);
            assert_eq!(got, vec![cmd(&["SET", "k", "hello"]), cmd(&["PING"]), cmd(&["GET", "12"])]);
        }
    }

    #[test]
    fn nesting_is_a_protocol_error_at_the_first_inner_array() {
        let mut bytes = b"*1\r\n".repeat(40_000);
        bytes.extend_from_slice(b"$4\r\nPING\r\n");
        let (got, err) = parse_all(&bytes, 4096);
        assert!(got.is_empty());
        assert!(err.unwrap().0.contains("nested arrays"));
    }

    #[test]
    fn lengths_over_the_limits_are_protocol_errors_before_any_allocation() {
        let (_, err) = parse_all(b"*9\r\n", 100);
        assert_eq!(err.unwrap().0, "invalid multibulk length");
        let (_, err) = parse_all(b"*2\r\n$3\r\nGET\r\n$4294967296\r\n", 100);
        assert_eq!(err.unwrap().0, "invalid bulk length");
        let (_, err) = parse_all(b"*1\r\n$-5\r\n", 100);
        assert_eq!(err.unwrap().0, "invalid bulk length");
        let (_, err) = parse_all(b"*x\r\n", 100);
        assert_eq!(err.unwrap().0, "invalid multibulk length");
        let (_, err) = parse_all(&[b'*'; MAX_LINE + 10], 100_000);
        assert_eq!(err.unwrap().0, "too big request line");
    }

    #[test]
    fn a_command_too_large_to_replicate_is_refused_and_the_connection_goes_on() {
        let value = "v".repeat(200);
        let bytes = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200\r\n{value}\r\n*1\r\n$4\r\nPING\r\n");
        for chunk in [7, 10_000] {
            let (got, err) = parse_all(bytes.as_bytes(), chunk);
            assert_eq!(err, None);
            assert_eq!(
                got,
                vec![Request::Refused("ERR value too large: 204 bytes, the limit is 100".into()), cmd(&["PING"])]
            );
        }
    }

    #[test]
    fn malformed_but_framed_requests_are_refused_without_closing() {
        let (got, err) =
            parse_all(b"+OK\r\n*0\r\n*-1\r\n*2\r\n$3\r\nGET\r\n$-1\r\n$3\r\nabc\r\n*1\r\n$4\r\nPING\r\n", 3);
        assert_eq!(err, None);
        let refused = |s: &str| Request::Refused(s.into());
        let expected = "ERR Protocol error: expected an array of bulk strings";
        assert_eq!(
            got,
            vec![
                refused(expected),
                refused("ERR empty command"),
                refused(expected),
                refused(expected),
                refused(expected),
                cmd(&["PING"])
            ]
        );
    }

    #[test]
    fn the_default_command_limit_fits_a_peer_frame() {
        let l = RequestLimits::for_frame_limit(16 << 20);
        assert_eq!(l.max_command_bytes, (16 << 20) - REPLICATION_OVERHEAD);
        assert_eq!(l.max_array_len, 1 << 20);
    }
}
