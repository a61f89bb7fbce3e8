//! The conformance cases, each an async function over any store.
//!
//! Each case expects a fresh, empty store.

mod admin;
mod append;
mod concurrent;
mod dispatch;
mod follow;
mod limits;
mod predicates;
mod query;
mod read;
mod retag;
mod snapshot;
mod upcast;

pub use admin::*;
pub use append::*;
pub use concurrent::*;
pub use dispatch::*;
pub use follow::*;
pub use limits::*;
pub use predicates::*;
pub use query::*;
pub use read::*;
pub use retag::*;
pub use snapshot::*;
pub use upcast::*;
