//! The README's code blocks, compiled and run as doctests, with every
//! backend available to them.

/// The README's code blocks.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
