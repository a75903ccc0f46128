//! Telling a simulated power cut from every other panic, for tests that cut power
//! with [`SimFlash::cut_after`](super::SimFlash::cut_after) and catch the panic the
//! store raises (invariant I7: a medium error panics, naming the operation, the
//! offset and the error).

use std::any::Any;

/// The text of a caught panic (`String` or `&str` payloads; empty otherwise).
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Whether a panic message is a store stopping on the simulated cut: the medium's
/// [`PowerCut`](super::SimError::PowerCut) error in its message. Anything else (a
/// store that cannot go on, a failed assertion) is not.
pub fn is_power_cut(message: &str) -> bool {
    message.contains("PowerCut")
}

/// Installs, once per process, a panic hook that keeps the expected panics of
/// simulated power cuts out of the output and reports every other panic as the
/// previous hook would.
pub fn quiet_power_cuts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_power_cut(&panic_text(info.payload())) {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimFlash, Torn};
    use monitor_events::journal::{Config, Journal};

    /// I7: a journal stopped by a cut panics with `PowerCut` in its message; other
    /// panics are told apart.
    #[test]
    fn i7_a_cut_is_told_from_other_panics() {
        quiet_power_cuts();
        let mut flash = SimFlash::default();
        let config = Config::<4>::try_new(monitor_events::Medium::geometry(&flash), 40).unwrap();
        flash.cut_after(0, Torn::NoBits);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut j = Journal::open(&mut flash, config).unwrap();
            j.push(&[1; 8]).unwrap();
        }))
        .unwrap_err();
        let text = panic_text(&*caught);
        assert!(is_power_cut(&text), "{text}");
        assert!(text.contains("offset"), "I7 names the offset: {text}");
        let other = std::panic::catch_unwind(|| panic!("no free sector left")).unwrap_err();
        assert!(!is_power_cut(&panic_text(&*other)));
        let static_str = std::panic::catch_unwind(|| std::panic::panic_any("x")).unwrap_err();
        assert_eq!(panic_text(&*static_str), "x");
    }
}
