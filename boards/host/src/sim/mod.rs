//! The simulation part of the CLI: `simulate` runs a monitor device on simulated
//! NOR flash with power cuts.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | what to run: [`SimConfig`](config::SimConfig), the flash and the store's capacity |
//! | [`run`] | the emulated device and its power cuts, restarts and checks |
//! | [`workload`] | the channel monitor that produces events |
//! | [`consumer`] | the channel manager that releases and acks them |
//! | [`model`] | what the store must hold, and the invariant checks |
//! | [`report`] | the counters and the summary (a table or JSON) |
//! | [`rng`] | the seeded random numbers |
//!
//! Dependencies only point down the table's `config` → `report` → `run` order:
//! `run` uses everything, `report` the configuration and the model, `config`
//! nothing of the others.

pub mod config;
pub mod consumer;
pub mod model;
pub mod report;
pub mod rng;
pub mod run;
pub mod workload;
