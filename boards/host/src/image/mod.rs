//! The image part of the CLI: `inspect` and `verify` read a flash dump or a store
//! file read-only ([`load`]), open it with the journal's own recovery
//! ([`inspect`]) and describe what it holds ([`describe`]).

pub mod describe;
pub mod inspect;
pub mod load;
