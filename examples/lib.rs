//! Runnable examples for factos (`cargo run --example NAME`). This library
//! holds no code: it compiles and runs the README's code blocks as
//! doctests, with every backend available to them.

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
