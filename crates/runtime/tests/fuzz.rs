//! Seeded, structure-aware fuzzing of everything a node reads from outside:
//! client requests (RESP and inline), peer frames and handshakes, and the
//! files of a data directory (segments, manifest, snapshot).
//!
//! Each target starts from valid input (a generated command stream, encoded
//! frames, a real log written by `Wal`) and mutates it: flipped bits, cut
//! and spliced pieces, repeated runs, extreme numbers in length fields,
//! random chunking. The properties: nothing panics; valid input still parses
//! to exactly what was encoded; a damaged data directory either opens to
//! what the log held before the damage or is refused with an error.
//!
//! CI runs a few seconds of each. The long run is
//! `QUORUM_FUZZ_CASES=200000 cargo test --release -p quorum-runtime --test fuzz`
//! (cases per target; `QUORUM_FUZZ_SEED` picks another sequence). A failure
//! prints the seed and case that reproduce it.

use bytes::BytesMut;
use quorum_core::{Bytes, ClientId, Command, Entry, Payload, Snapshot, Stamp, Storage, WriteBatch};
use quorum_runtime::request::{Request, RequestLimits, RequestParser};
use quorum_runtime::tcp::{encode_frame, read_frame, FrameError, Hello, HelloReply};
use quorum_runtime::wire::{Op, Outcome, Wire};
use quorum_runtime::Wal;
use std::fs;

/// SplitMix64: small, seeded, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn cases(default: usize) -> usize {
    std::env::var("QUORUM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn seed() -> u64 {
    std::env::var("QUORUM_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed)
}

/// Runs `case` `n` times with a fresh generator each, naming the case that panics.
fn fuzz(target: &str, n: usize, mut case: impl FnMut(&mut Rng)) {
    let base = seed();
    // QUORUM_FUZZ_CASE=i runs that case alone (what a failure names).
    let only: Option<usize> = std::env::var("QUORUM_FUZZ_CASE").ok().and_then(|v| v.parse().ok());
    for i in only.map_or(0..n, |i| i..i + 1) {
        let mut rng = Rng(base ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&mut rng)));
        if let Err(panic) = outcome {
            panic!(
                "{target}: case {i} panicked (reproduce with QUORUM_FUZZ_SEED={base} QUORUM_FUZZ_CASE={i}): {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or(panic.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
            );
        }
    }
    println!("{target}: {n} cases, no panic");
}

/// Damages `data` in one to four ways.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(8) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.truncate(at),
            2 => {
                let n = rng.below(16);
                let noise = rng.bytes(n);
                data.splice(at..at, noise);
            }
            3 if !data.is_empty() => {
                // Copy a piece of the input somewhere else (a repeated record, a spliced header).
                let from = rng.below(data.len());
                let len = rng.below(data.len() - from + 1).min(64);
                let piece = data[from..from + len].to_vec();
                data.splice(at..at, piece);
            }
            4 if data.len() >= at + 4 => {
                // An extreme number where a length might be.
                let n = [0u32, 1, u32::MAX, i32::MAX as u32, 1 << 24, 1 << 31][rng.below(6)];
                data[at..at + 4].copy_from_slice(&n.to_le_bytes());
            }
            5 => {
                let text = [&b"-1"[..], b"0", b"99999999999999999999", b"\r\n", b"*", b"$", b"\r", b"\n"];
                let piece = text[rng.below(text.len())];
                data.splice(at..at, piece.iter().copied());
            }
            6 if !data.is_empty() => {
                let end = (at + rng.below(32)).min(data.len());
                data.drain(at.min(end)..end);
            }
            _ => {
                if let Some(b) = data.get_mut(at) {
                    *b = rng.next() as u8;
                }
            }
        }
    }
}

fn word(rng: &mut Rng) -> Vec<u8> {
    let n = [0, 1, 3, 8, 40, 300][rng.below(6)];
    match rng.below(3) {
        0 => (0..n).map(|_| b'a' + rng.below(26) as u8).collect(),
        _ => rng.bytes(n),
    }
}

fn command(rng: &mut Rng) -> Vec<Vec<u8>> {
    let names: [&[u8]; 8] = [b"SET", b"GET", b"PING", b"HELLO", b"INCR", b"CLIENT", b"DEL", b"MGET"];
    let mut args = vec![names[rng.below(names.len())].to_vec()];
    for _ in 0..rng.below(5) {
        args.push(word(rng));
    }
    args
}

fn encode_resp(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Feeds `input` in random chunks; returns what was parsed, stopping at a protocol error.
fn parse_in_chunks(rng: &mut Rng, parser: &mut RequestParser, input: &[u8]) -> (Vec<Request>, bool) {
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let most = [1, 7, 64, 4096][rng.below(4)];
        let n = 1 + rng.below(most);
        let end = (at + n).min(input.len());
        buf.extend_from_slice(&input[at..end]);
        at = end;
        loop {
            match parser.next(&mut buf) {
                Ok(Some(request)) => requests.push(request),
                Ok(None) => break,
                Err(_) => return (requests, true),
            }
        }
    }
    (requests, false)
}

fn small_limits() -> RequestLimits {
    RequestLimits { max_array_len: 8, max_bulk_bytes: 512, max_command_bytes: 256 }
}

#[test]
fn resp_requests_valid_ones_parse_exactly_in_any_chunking() {
    fuzz("resp valid", cases(30_000), |rng| {
        let commands: Vec<Vec<Vec<u8>>> = (0..1 + rng.below(6)).map(|_| command(rng)).collect();
        let input: Vec<u8> = commands.iter().flat_map(|c| encode_resp(c)).collect();
        let mut parser = RequestParser::new(RequestLimits::default());
        let (requests, failed) = parse_in_chunks(rng, &mut parser, &input);
        assert!(!failed, "valid input refused");
        let expected: Vec<Request> =
            commands.iter().map(|c| Request::Command(c.iter().map(|a| Bytes::from(a.clone())).collect())).collect();
        assert_eq!(requests, expected);
    });
}

/// What real clients sent, recorded through a proxy in front of a node:
/// redis-cli (RESP2, RESP3, stdin, inline), redis-benchmark (pipelined and
/// inline), redis-py 8 (RESP3 handshake, pipeline). Seeds for the mutations.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/resp");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap()))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus in {} is missing", dir.display());
    files
}

#[test]
fn what_real_clients_send_parses_whole_in_any_chunking() {
    let corpus = corpus();
    fuzz("resp corpus", cases(2_000), |rng| {
        for (name, input) in &corpus {
            let mut parser = RequestParser::new(RequestLimits::default());
            let (requests, failed) = parse_in_chunks(rng, &mut parser, input);
            assert!(!failed && parser.is_idle(), "{name}: refused or left unfinished");
            assert!(requests.iter().all(|r| matches!(r, Request::Command(_))), "{name}: {requests:?}");
            assert!(!requests.is_empty(), "{name}");
        }
    });
}

#[test]
fn resp_requests_damaged_or_random_never_panic_and_limits_hold() {
    let corpus = corpus();
    fuzz("resp damaged", cases(200_000), |rng| {
        let mut input: Vec<u8> = (0..1 + rng.below(4)).flat_map(|_| encode_resp(&command(rng))).collect();
        if rng.chance(3) {
            input = corpus[rng.below(corpus.len())].1.clone();
        }
        match rng.below(4) {
            0 => {
                let n = rng.below(200);
                input = rng.bytes(n);
            }
            1 => {
                // Inline commands, with quotes and escapes.
                let lines: [&[u8]; 5] = [b"SET k \"a b\"\r\n", b"GET 'x\r\n", b"\"\\x4\"\r\n", b"PING\n", b"  \r\n"];
                input = (0..1 + rng.below(4)).flat_map(|_| lines[rng.below(lines.len())].to_vec()).collect();
                mutate(rng, &mut input);
            }
            _ => mutate(rng, &mut input),
        }
        let limits = if rng.chance(2) { small_limits() } else { RequestLimits::default() };
        let mut parser = RequestParser::new(limits.clone());
        let (requests, _) = parse_in_chunks(rng, &mut parser, &input);
        for request in requests {
            if let Request::Command(args) = request {
                assert!(!args.is_empty() && args.len() <= limits.max_array_len.max(1));
                let bytes: usize = args.iter().map(|a| a.len()).sum();
                assert!(
                    bytes <= limits.max_command_bytes,
                    "a {bytes}-byte command passed a {} limit; input {:?}",
                    limits.max_command_bytes,
                    String::from_utf8_lossy(&input[..input.len().min(160)])
                );
            }
        }
    });
}

fn frames(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(3) {
        match rng.below(4) {
            0 => {
                let hello = Hello {
                    magic: 0x5152_4d31,
                    cluster_id: String::from_utf8_lossy(&word(rng)).into_owned(),
                    from: rng.next() % 5,
                    to: rng.next() % 5,
                    protocol: "raft".into(),
                    version: 1,
                    client_addr: "127.0.0.1:6379".into(),
                };
                encode_frame(&hello, &mut out).unwrap();
            }
            1 => encode_frame(&HelloReply::Refused { reason: "no".into() }, &mut out).unwrap(),
            2 => {
                let op = Op::Command(Bytes::from(word(rng)));
                let wire: Wire<Vec<u8>> = Wire::Forward { id: rng.next(), client: ClientId(rng.next()), seq: 1, op };
                encode_frame(&wire, &mut out).unwrap();
            }
            _ => {
                let wire: Wire<Vec<u8>> = match rng.below(2) {
                    0 => Wire::Protocol(word(rng)),
                    _ => Wire::ForwardReply { id: 3, outcome: Outcome::Retry("later".into()) },
                };
                encode_frame(&wire, &mut out).unwrap();
            }
        }
    }
    out
}

#[test]
fn peer_frames_and_handshakes_damaged_never_panic_or_overrun_the_limit() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    fuzz("peer frames", cases(200_000), |rng| {
        let mut input = frames(rng);
        if rng.chance(8) {
            let n = rng.below(100);
            input = rng.bytes(n);
        } else if !rng.chance(4) {
            mutate(rng, &mut input);
        }
        let limit = [64, 4096, 1 << 20][rng.below(3)];
        rt.block_on(async {
            let mut reader = &input[..];
            let mut buf = Vec::new();
            for _ in 0..4 {
                let read = match rng.below(3) {
                    0 => read_frame::<_, Hello>(&mut reader, limit, &mut buf).await.map(|_| ()),
                    1 => read_frame::<_, HelloReply>(&mut reader, limit, &mut buf).await.map(|_| ()),
                    _ => read_frame::<_, Wire<Vec<u8>>>(&mut reader, limit, &mut buf).await.map(|_| ()),
                };
                assert!(buf.len() <= limit, "read {} bytes under a {limit}-byte limit", buf.len());
                match read {
                    Ok(()) | Err(FrameError::Malformed(_)) => continue,
                    Err(FrameError::TooBig { .. } | FrameError::Io(_)) => break,
                }
            }
        });
    });
}

fn entry(index: u64, rng: &mut Rng) -> Entry {
    let cmd = Command::new(ClientId(7), index, Bytes::from(word(rng)));
    Entry { index, stamp: Stamp::new(1, 0), payload: Payload::Command(cmd) }
}

/// A real data directory, in small segments with a snapshot in the middle of its history.
fn written_log(rng: &mut Rng) -> (tempfile::TempDir, quorum_core::Stored) {
    // In memory where the machine has it: the log syncs on every roll and open.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
    let mut wal = Wal::open_with_segment_bytes(dir.path(), 200 + rng.below(400) as u64).unwrap();
    wal.set_unsafe_no_sync(true); // the damage comes after writing: syncs would only cost time
    let records = 2 + rng.below(12) as u64;
    for i in 1..=records {
        let mut batch = WriteBatch {
            tag: i,
            hard_state: Some(Bytes::from(format!("term={i}"))),
            entries: vec![entry(i, rng)],
            ..Default::default()
        };
        if rng.chance(6) {
            let data = Bytes::from(word(rng));
            batch.snapshot = Some(Snapshot { index: i, stamp: Stamp::new(1, 0), meta: Bytes::new(), data });
        }
        wal.write(&[batch]).unwrap();
    }
    let stored = wal.load().unwrap();
    (dir, stored)
}

#[test]
fn a_damaged_data_directory_opens_to_what_was_written_or_is_refused() {
    let (mut opened, mut refused) = (0, 0);
    fuzz("data directory", cases(10_000), |rng| {
        let (dir, before) = written_log(rng);
        let mut files: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let victim = &files[rng.below(files.len())];
        let mut data = fs::read(victim).unwrap();
        mutate(rng, &mut data);
        fs::write(victim, &data).unwrap();
        let Ok(wal) = Wal::open(dir.path()) else {
            refused += 1;
            return;
        };
        opened += 1;
        {
            // Whatever opens holds a prefix of what was written: at most the
            // torn tail of the newest segment (never acknowledged, in a real
            // crash) may be missing, and nothing may be invented.
            let after = wal.load().unwrap();
            let indexes = |s: &quorum_core::Stored| s.entries.iter().map(|e| e.index).collect::<Vec<_>>();
            let (was, now) = (indexes(&before), indexes(&after));
            assert_eq!(after.snapshot, before.snapshot, "damage to {victim:?} changed the snapshot");
            assert!(was.starts_with(&now), "damage to {victim:?}: entries {was:?} became {now:?}");
            for e in &after.entries {
                assert!(before.entries.contains(e), "entry {} was not written", e.index);
            }
        }
    });
    println!("data directory: {opened} opened (a torn tail cut, or damage outside the records), {refused} refused");
    if opened + refused >= 100 {
        assert!(opened > 0 && refused > 0, "the mutations must reach both outcomes");
    }
}
