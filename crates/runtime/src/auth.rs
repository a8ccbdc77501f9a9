//! Client authentication: named users with hashed passwords and a role each.
//!
//! Without a users file every client may do everything (as before). With
//! one, a connection must authenticate (`AUTH [user] password`, or `HELLO 3
//! AUTH user password`) before any command but those that set up the
//! connection; until then it is answered `-NOAUTH`. `AUTH password` alone
//! names the user `default`, as in Redis.
//!
//! Roles nest: `read` runs the commands that only read, `write` also those
//! that change data, `admin` also the commands that manage the node (the
//! `QUORUM` family: leadership transfer, snapshots).
//!
//! Passwords are stored as Argon2id hashes in PHC form (`quorum passwd`
//! prints one), checked on a blocking thread so a slow hash never holds up
//! the node, and never logged.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// What a user may do; each role may do what the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Commands that read data.
    Read,
    /// Also commands that change data.
    Write,
    /// Also commands that manage the node or the cluster.
    Admin,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
        })
    }
}

/// The users of a node, from a TOML file:
///
/// ```toml
/// [[user]]
/// name = "default"                  # what `AUTH password` authenticates as
/// password = "$argon2id$v=19$..."   # from `quorum passwd`
/// role = "admin"                    # read | write | admin
/// ```
#[derive(Clone)]
pub struct Users {
    by_name: Arc<HashMap<String, (String, Access)>>,
    /// Password checks running at once: each costs ~20 MiB and tens of
    /// milliseconds, so a flood of AUTH attempts waits here instead of
    /// taking every blocking thread and gigabytes of memory.
    checking: Arc<tokio::sync::Semaphore>,
}

/// Password checks run at once, at most (one per core, up to this).
const MAX_CONCURRENT_CHECKS: usize = 4;

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.by_name.keys().collect();
        names.sort();
        f.debug_struct("Users").field("names", &names).finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    user: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    password: String,
    role: Access,
}

impl Users {
    /// Reads and checks a users file.
    pub fn from_file(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Users::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks the TOML text of a users file.
    pub fn from_toml(text: &str) -> Result<Users, String> {
        let file: UsersFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_name = HashMap::new();
        for user in file.user {
            if user.name.is_empty() || !user.name.bytes().all(|c| c.is_ascii_graphic()) {
                return Err(format!("user name '{}' is empty or has spaces or control characters", user.name));
            }
            PasswordHash::new(&user.password).map_err(|e| {
                format!("user '{}': the password is not an Argon2 hash from `quorum passwd`: {e}", user.name)
            })?;
            if by_name.insert(user.name.clone(), (user.password, user.role)).is_some() {
                return Err(format!("user '{}' is listed twice", user.name));
            }
        }
        if by_name.is_empty() {
            return Err("the users file lists no user".into());
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let checking = Arc::new(tokio::sync::Semaphore::new(cores.min(MAX_CONCURRENT_CHECKS)));
        Ok(Users { by_name: Arc::new(by_name), checking })
    }

    /// The role of `user` if `password` is theirs. Slow by design (Argon2):
    /// call it off the async threads (see `check`).
    pub fn verify(&self, user: &str, password: &[u8]) -> Option<Access> {
        let (hash, role) = self.by_name.get(user)?;
        let parsed = PasswordHash::new(hash).ok()?;
        Argon2::default().verify_password(password, &parsed).ok().map(|()| *role)
    }

    /// [`Users::verify`] on a blocking thread.
    pub async fn check(&self, user: String, password: bytes::Bytes) -> Option<Access> {
        // The turn goes with the work: a client that hangs up while its
        // password is being checked frees nothing until the check ends.
        let turn = self.checking.clone().acquire_owned().await.ok()?;
        let users = self.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            users.verify(&user, &password)
        })
        .await
        .ok()
        .flatten()
    }
}

/// An Argon2id hash of `password` in PHC form, with the default cost
/// (about 20 MiB and a few tens of milliseconds).
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    hash_password_with(password, Params::default())
}

/// [`hash_password`] at a chosen cost (tests use a cheap one).
pub fn hash_password_with(password: &[u8], params: Params) -> Result<String, String> {
    let mut salt = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(|e| format!("cannot open /dev/urandom: {e}"))?,
        &mut salt,
    )
    .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    argon.hash_password(password, &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// The role a command needs (by its upper-case name). Connection commands
/// need none: they are allowed before authentication.
pub fn required_access(command: &str) -> Option<Access> {
    match command {
        "AUTH" | "HELLO" | "QUIT" | "RESET" => None,
        "QUORUM" => Some(Access::Admin),
        "PING" | "ECHO" | "CLIENT" | "SELECT" | "COMMAND" | "CONFIG" | "INFO" | "ROLE" | "GET" | "MGET" | "EXISTS"
        | "STRLEN" | "TYPE" | "DBSIZE" | "GETRANGE" | "SUBSTR" | "SCAN" | "KEYS" | "TTL" | "PTTL" | "EXPIRETIME"
        | "PEXPIRETIME" | "HGET" | "HMGET" | "HGETALL" | "HKEYS" | "HVALS" | "HLEN" | "HEXISTS" | "HSTRLEN" => {
            Some(Access::Read)
        }
        // Everything else changes data or is unknown (and answered as unknown
        // once the client may write): the safe side is to ask for `write`.
        _ => Some(Access::Write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(password: &str) -> String {
        hash_password_with(password.as_bytes(), Params::new(256, 1, 1, None).unwrap()).unwrap()
    }

    fn users() -> Users {
        let text = format!(
            "[[user]]\nname = \"reader\"\npassword = \"{}\"\nrole = \"read\"\n\n\
             [[user]]\nname = \"default\"\npassword = \"{}\"\nrole = \"admin\"\n",
            cheap("r-secret"),
            cheap("admin-secret")
        );
        Users::from_toml(&text).unwrap()
    }

    #[test]
    fn a_user_is_known_by_their_password_and_nobody_else_is() {
        let users = users();
        assert_eq!(users.verify("reader", b"r-secret"), Some(Access::Read));
        assert_eq!(users.verify("default", b"admin-secret"), Some(Access::Admin));
        assert_eq!(users.verify("reader", b"admin-secret"), None);
        assert_eq!(users.verify("nobody", b"r-secret"), None);
        assert!(!format!("{users:?}").contains("argon2"), "Debug must not show hashes");
    }

    #[test]
    fn many_checks_at_once_wait_their_turn_and_each_gets_its_answer() {
        let users = users();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let answers = rt.block_on(async {
            // All sixteen are in flight together: they take turns at the semaphore.
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let users = users.clone();
                    let password = if i % 2 == 0 { "r-secret" } else { "wrong" };
                    tokio::spawn(async move { users.check("reader".into(), bytes::Bytes::from(password)).await })
                })
                .collect();
            let mut answers = Vec::new();
            for task in tasks {
                answers.push(task.await.unwrap());
            }
            answers
        });
        for (i, answer) in answers.iter().enumerate() {
            assert_eq!(*answer, (i % 2 == 0).then_some(Access::Read), "check {i}");
        }
        // Every turn came back.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(users.checking.available_permits(), cores.min(MAX_CONCURRENT_CHECKS));
    }

    #[test]
    fn bad_users_files_are_explained() {
        let refused = [
            ("", "missing field"),
            ("user = []", "no user"),
            ("[[user]]\nname = \"a\"\npassword = \"plain\"\nrole = \"read\"", "not an Argon2 hash"),
            ("[[user]]\nname = \"a b\"\npassword = \"x\"\nrole = \"read\"", "spaces"),
            ("[[user]]\nname = \"a\"\npassword = \"x\"\nrole = \"root\"", "unknown variant"),
        ];
        for (text, says) in refused {
            let err = Users::from_toml(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
        let hash = cheap("x");
        let twice = format!("[[user]]\nname = \"a\"\npassword = \"{hash}\"\nrole = \"read\"\n").repeat(2);
        assert!(Users::from_toml(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn reads_need_read_writes_need_write_and_connection_setup_needs_nothing() {
        assert_eq!(required_access("AUTH"), None);
        assert_eq!(required_access("HELLO"), None);
        assert_eq!(required_access("GET"), Some(Access::Read));
        assert_eq!(required_access("SET"), Some(Access::Write));
        assert_eq!(required_access("INCR"), Some(Access::Write));
        assert_eq!(required_access("FLUSHALL"), Some(Access::Write));
        assert_eq!(required_access("QUORUM"), Some(Access::Admin));
        assert!(Access::Read < Access::Write && Access::Write < Access::Admin);
    }
}
