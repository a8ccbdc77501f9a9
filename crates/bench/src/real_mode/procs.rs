//! The processes of one cluster under test: how to start each, and the
//! faults a benchmark does to them (kill -9, SIGSTOP, SIGCONT).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How to start one member: a program, its arguments, and where its output goes.
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub log: PathBuf,
}

/// One process per member, each killed when the set is dropped, and a
/// scratch directory removed with it.
pub(crate) struct Procs {
    dir: PathBuf,
    launches: Vec<Launch>,
    children: Vec<Option<Child>>,
    /// Leave the directory (and the logs in it) behind: the run failed.
    keep: bool,
}

impl Procs {
    /// A fresh scratch directory named after `what` (removed on drop).
    pub fn new(what: &str, seed: u64) -> Result<Procs, String> {
        let dir = std::env::temp_dir().join(format!("quorum-bench-{what}-{}-{seed}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Procs { dir, launches: Vec::new(), children: Vec::new(), keep: false })
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps the scratch directory and its logs after the processes stop.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Adds a member and starts it.
    pub fn add(&mut self, launch: Launch) -> Result<(), String> {
        self.launches.push(launch);
        self.children.push(None);
        self.spawn(self.launches.len() - 1)
    }

    /// Members, running or not.
    pub fn len(&self) -> usize {
        self.launches.len()
    }

    /// Whether member `i` runs (it may be stopped).
    pub fn is_up(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// Starts member `i` (again).
    pub fn spawn(&mut self, i: usize) -> Result<(), String> {
        let launch = &self.launches[i];
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&launch.log)
                .map_err(|e| format!("cannot open {}: {e}", launch.log.display()))
        };
        let child = Command::new(&launch.program)
            .args(&launch.args)
            .stdin(Stdio::null())
            .stdout(open()?)
            .stderr(open()?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", launch.program.display()))?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// `kill -9` of member `i`: its sockets close at once.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `sig` (`-STOP`, `-CONT`) to member `i`.
    pub fn signal(&self, i: usize, sig: &str) {
        if let Some(c) = &self.children[i] {
            let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A free TCP port on loopback, never one handed out before in this process.
/// (Port 0 let the kernel give the same port to two calls in a row once the
/// first listener closed: a ZooKeeper member was configured with one port
/// for its quorum and election channels and never came up.)
pub(crate) fn free_addr() -> Result<SocketAddr, String> {
    quorum_runtime::tcp::free_loopback_addr().map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// The path of `program` on `PATH`, if it is there.
pub(crate) fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}
