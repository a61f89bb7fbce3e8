//! # factos-d1: factos on Cloudflare D1
//!
//! A factos event store on a [D1](https://developers.cloudflare.com/d1/)
//! database, for Rust workers compiled to `wasm32-unknown-unknown` with the
//! `worker` crate. D1 is SQLite behind Cloudflare's edge; it has no
//! interactive transactions (`BEGIN` and `SAVEPOINT` are refused), but one
//! statement is atomic and `batch([...])` runs as one transaction. The
//! store gives the full DCB guarantee on that: a conditional append is
//! decided and written inside one batch (see [`append`](crate#the-append)),
//! never by a read followed by a separate write. Decisions are optimistic:
//! `dispatch_context` reads, decides, and appends with
//! `FailIfEventsMatch(query, after)`, retrying under the dispatcher's
//! `RetryPolicy` when another writer got there first.
//!
//! ```no_run
//! use factos::{AppendRequest, EventId, EventType, LocalEventStore, NewEvent, StreamId};
//! use factos_d1::D1Store;
//!
//! /// Called from the worker's `#[event(fetch)]` handler with
//! /// `D1Store::new(env.d1("DB")?)` (it only runs inside a worker: see
//! /// `examples/d1-tickets` for a whole one).
//! async fn greet(store: &D1Store) -> Result<u64, Box<dyn std::error::Error>> {
//!     store.migrate().await?;
//!     let event = NewEvent::new(EventId::random(), EventType::new("Greeted")?, b"hi".to_vec());
//!     let committed = store.append(AppendRequest::new(StreamId::new("greetings")?, vec![event])).await?;
//!     Ok(committed.records[0].position.value())
//! }
//! # fn main() {}
//! ```
//!
//! ## The append
//!
//! The schema is the SQLite backend's, and queries become the same SQL
//! (`factos-sql`). The batch's first statement inserts the events with
//! `INSERT … SELECT … WHERE` the expected revision holds `AND NOT EXISTS`
//! (one of the ids) `AND NOT EXISTS` (an event matching the condition's
//! query after its position), `RETURNING` what it inserted; the tag rows
//! follow, only for this request's events. Success is read from the
//! returned rows; a refusal is explained afterwards by reads, which cannot
//! change their answer since the log only grows.
//!
//! ## Following the log
//!
//! [`D1Store`] implements the follow contract ([`factos::LocalFollow`]) and
//! durable checkpoints ([`factos::LocalCheckpoints`]): D1 has one writer,
//! so positions are assigned in commit order and a follower's cursor is a
//! position; a waiting follower polls every
//! [`D1Store::with_poll_interval`] (100 ms), and appends through the same
//! store wake it at once. Checkpoints and parked effects use the SQLite
//! backend's tables (schema version 2).
//!
//! ## Limits
//!
//! * D1 binds at most 100 parameters per statement: a batch of more than
//!   about a dozen events continues in further statements of the same
//!   batch (inserting only if the first one did), and tags go 49 to a
//!   statement. Queries within [`factos::QueryLimits`] (10,000 items, 100
//!   types and 100 tags per item, 1 MiB by default; over them:
//!   [`StoreError::QueryTooLarge`](factos::StoreError::QueryTooLarge))
//!   fit: a large query travels as one JSON parameter
//!   ([`factos_sql::matching`]). Only SQL predicates bind their own
//!   values, and a query whose predicates need more than D1's 100
//!   parameters is refused with `UnsupportedQuery` /
//!   `UnsupportedCondition`.
//! * One row holds at most 2,000,000 bytes: a larger event is refused with
//!   [`InvalidAppend::TooLarge`](factos::InvalidAppend::TooLarge) before
//!   anything is sent.
//! * D1 refuses `BEGIN`, `SAVEPOINT` and most pragmas (`user_version`,
//!   `journal_mode`, `synchronous`, `busy_timeout`, `application_id`:
//!   `SQLITE_AUTH`); `foreign_keys`, `table_list` and `data_version` work.
//!   The schema version therefore lives in a table, `factos_schema`.
//! * Reads are paged 500 rows at a time.
//! * Numbers cross into JavaScript as doubles: positions, revisions and
//!   times stay far below 2^53; the request fingerprint is stored as text.
#![deny(missing_docs)]

mod append;
mod error;
mod follow;
mod projection;
mod read;
mod schema;
mod statement;
mod store;

pub use error::D1Error;
pub use projection::D1Projection;
pub use store::D1Store;
pub use worker;

/// The name this backend gives in typed refusals.
const BACKEND: &str = "Cloudflare D1";
