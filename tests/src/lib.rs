//! Shared helpers for the end-to-end tests in `tests/tests/`.
//!
//! The end-to-end tests start brokers and clients on 127.0.0.1 and run each case on both
//! runtimes. They arrive with the broker and client issues.
#![forbid(unsafe_code)]
