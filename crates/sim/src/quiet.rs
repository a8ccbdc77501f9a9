//! Running a planted bug without drowning the test output: a planted bug
//! often trips the protocol's own assertions as well as the simulator's
//! checks, and each panic would print a message and a backtrace.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

/// The panic hook is process-wide: one quiet section at a time.
static QUIET: Mutex<()> = Mutex::new(());

/// Runs `f` with panic messages silenced; `None` if it panicked.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    let _one_at_a_time = QUIET.lock().unwrap_or_else(|e| e.into_inner());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.ok()
}

/// The message a panic carried (`panic!` with a literal or with format arguments).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::quietly;

    #[test]
    fn a_panic_becomes_none_and_a_value_passes_through() {
        assert_eq!(quietly(|| 7), Some(7));
        assert_eq!(quietly(|| -> u32 { panic!("planted") }), None);
    }
}
