//! Just enough of an HTTP/1.1 client for the benchmark: etcd's JSON gateway
//! and the nodes' `/metrics`, one kept-alive connection each.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The longest status or header line, and the largest body, we read.
const MAX_LINE: u64 = 8 << 10;
const MAX_BODY: usize = 1 << 20;

/// One kept-alive connection: a request at a time, an answer with a length
/// or chunked.
pub(crate) struct Http {
    host: String,
    con: BufReader<TcpStream>,
}

impl Http {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Option<Http> {
        let stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
        stream.set_read_timeout(Some(timeout)).ok()?;
        stream.set_write_timeout(Some(timeout)).ok()?;
        stream.set_nodelay(true).ok()?;
        Some(Http { host: addr.to_string(), con: BufReader::new(stream) })
    }

    /// POSTs a JSON body and returns the body of a 200 answer.
    pub fn post(&mut self, path: &str, body: &str) -> Result<Vec<u8>, String> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.exchange(&request)
    }

    /// GETs `path` and returns the body of a 200 answer.
    pub fn get(&mut self, path: &str) -> Result<Vec<u8>, String> {
        self.exchange(&format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host))
    }

    fn exchange(&mut self, request: &str) -> Result<Vec<u8>, String> {
        self.con.get_mut().write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let status = self.line()?;
        let code = status.split_whitespace().nth(1).unwrap_or("");
        let (mut length, mut chunked) = (None, false);
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((&line, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                _ => {}
            }
        }
        if length.is_some_and(|n| n > MAX_BODY) {
            return Err(format!("a {}-byte answer", length.unwrap_or_default()));
        }
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let size = usize::from_str_radix(self.line()?.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| "a malformed chunk size".to_string())?;
                if body.len() + size > MAX_BODY {
                    return Err(format!("an answer over {MAX_BODY} bytes"));
                }
                let mut chunk = vec![0; size + 2];
                self.con.read_exact(&mut chunk).map_err(|e| e.to_string())?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
            body
        } else {
            let mut body = vec![0; length.ok_or("an answer without a length")?];
            self.con.read_exact(&mut body).map_err(|e| e.to_string())?;
            body
        };
        if code == "200" {
            Ok(body)
        } else {
            Err(format!("HTTP {code}: {}", String::from_utf8_lossy(&body)))
        }
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match (&mut self.con).take(MAX_LINE).read_line(&mut line) {
            Ok(0) => Err("the connection closed".into()),
            Ok(_) if !line.ends_with('\n') => Err(format!("a header line over {MAX_LINE} bytes")),
            Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}
