//! The panic hook of the CLI: the store panics on a dead medium (invariant I7), so
//! every simulated power cut is a panic; [`install_panic_hook`] keeps those quiet,
//! and [`quietly`] turns any panic into its message for the caller to report.

use std::panic::PanicHookInfo;
use std::sync::Once;

/// The message of a panic payload, if it is a string.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

fn hook_message(info: &PanicHookInfo<'_>) -> String {
    panic_message(info.payload())
}

thread_local! {
    /// Whether panics on this thread are caught and reported by the caller (the
    /// CLI's inspect and verify), which then prints its own one-line error.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs (once per process) a panic hook that prints nothing for the panics a
/// power cut causes (their message names `PowerCut`, the simulated medium's
/// error: the store panics on any medium error, invariant I7) and for panics inside
/// [`quietly`]; every other panic goes to the previous hook.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if hook_message(info).contains("PowerCut") || QUIET.with(|q| q.get()) {
                return;
            }
            previous(info);
        }));
    });
}

/// Runs `f`, catching a panic and returning its message instead of printing it.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_panic_hook();
    QUIET.with(|q| q.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r.map_err(|p| panic_message(p.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quietly_returns_the_panic_message_or_the_value() {
        assert_eq!(quietly(|| 7), Ok(7));
        assert_eq!(
            quietly(|| -> u8 { panic!("no free sector left") }),
            Err("no free sector left".to_owned())
        );
        let n = 3;
        assert_eq!(
            quietly(|| -> u8 { panic!("program at {n} failed: PowerCut") }),
            Err("program at 3 failed: PowerCut".to_owned())
        );
    }

    #[test]
    fn panic_message_of_a_non_string_payload_says_so() {
        let payload: Box<dyn std::any::Any + Send> = Box::new(42u32);
        assert_eq!(
            panic_message(payload.as_ref()),
            "(a panic without a message)"
        );
    }
}
