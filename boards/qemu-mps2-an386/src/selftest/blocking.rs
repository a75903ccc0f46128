//! Phases 1 to 4's checks on the blocking journal and store: [`w1`] and
//! [`typed`] compiled with every `.await` removed (`maybe_async::must_be_sync`).

pub(super) use crate::journal::{open_journal, open_store, EventStore, Journal};
pub(super) use maybe_async::must_be_sync as maybe;

/// How the log lines of [`w1`] and [`typed`] name this path: not at all.
const PATH: &str = "";

#[path = "w1.rs"]
pub(super) mod w1;

#[path = "typed.rs"]
pub(super) mod typed;
