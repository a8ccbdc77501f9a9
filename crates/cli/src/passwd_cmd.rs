//! `quorum passwd`: the Argon2 hash of a password, for a users file.

use std::io::BufRead;

/// `quorum passwd`: read a password from standard input, print its hash.
#[derive(clap::Args, Debug, Clone)]
pub struct PasswdArgs {}

/// Reads one line (the password, without its newline) and prints its hash
/// in the form a users file takes.
pub fn run(_args: PasswdArgs) -> Result<i32, String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&line);
    if password.is_empty() {
        return Err("the password is empty (give it on standard input: echo -n secret | quorum passwd)".into());
    }
    println!("{}", quorum_runtime::auth::hash_password(password.as_bytes())?);
    Ok(0)
}
