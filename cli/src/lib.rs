//! The library half of the `moat` command: what the binary uses and tests can reach.
//!
//! - [`config`]: the broker configuration file (YAML) and its loader.
#![forbid(unsafe_code)]

pub mod config;
