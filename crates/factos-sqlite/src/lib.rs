//! # factos-sqlite: the embedded default event store
//!
//! The factos store contract on SQLite (bundled; no system library, no
//! server). One database file holds the events; several connections and
//! several processes can use it at once.
//!
//! ```
//! use factos::{decider, Dispatcher, JsonCodec, JsonEvent, Query, QueryItem, StreamId, Tag};
//! use factos_sqlite::SqliteStore;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct Reserved { name: String }
//! impl JsonEvent for Reserved {
//!     fn event_type(&self) -> &'static str { "Reserved" }
//!     fn tags(&self) -> Vec<String> { vec![format!("username:{}", self.name)] }
//! }
//!
//! let reserve = decider(
//!     false,
//!     |name: &String, taken: &bool| if *taken { Err("taken") } else { Ok(vec![Reserved { name: name.clone() }]) },
//!     |_, _: &Reserved| true,
//! );
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("events.db"))?;
//! store.migrate().await?;
//!
//! let dispatcher = Dispatcher::new(&store, JsonCodec::new());
//! let boundary = Query::from(QueryItem::tags([Tag::new("username:ada")?]));
//! let committed = dispatcher.dispatch_context(&reserve, &"ada".to_string(), &boundary, &StreamId::new("user-1")?).await?;
//! assert_eq!(committed[0].position.value(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## How it keeps decisions valid
//!
//! Every write goes to the store's writer thread, which takes every write
//! waiting in its queue, runs them one after another in one `BEGIN
//! IMMEDIATE` transaction, each in a savepoint of its own (a refused or
//! failed one rolls back alone), and commits once: group commit, so
//! concurrent writers share each commit's flush. A write is acknowledged
//! only after that commit. Each append checks its expected revision and
//! `FailIfEventsMatch(query, after)` on the writer, where nothing else
//! writes in between.
//!
//! `dispatch_context` and `dispatch_stream` read their context from a
//! snapshot on a reader connection, decide, and append with the condition
//! (or expected revision) that the read implies: a write that got in
//! between is caught by that check, exactly, and the dispatch runs again.
//! A scope that lost such a race is remembered: its next decisions in this
//! process take turns, each holding the scope from its read to its append,
//! so they cannot invalidate each other (only a plain append, another
//! process or a decision on an overlapping scope still can, and the check
//! catches it). The scope stays contended while any decision waits for
//! its turn, so a dispatch that lost a race is not outrun again by the
//! decisions that began after its loss. Against racers in other processes,
//! which take no turns, a decision on a scope that lost two races in a
//! row first pauses a random time, up to 1 ms and doubling with each
//! further loss to at most 32 ms, so that it falls out of step with them.
//! Nothing else ever waits for a decision: the writer thread
//! never waits for a decider, unrelated contexts never wait for each
//! other's decisions, and an append made while a decision is open (from
//! the same task too) goes through at once. A decision waits for its
//! scope's turn at most [`SqliteOptions::decision_timeout`] (5 s by
//! default, like PostgreSQL's decision limit), then fails with
//! [`SqliteError::DecisionTimeout`].
//!
//! ## Limits
//!
//! | limit | default | set with |
//! |---|---|---|
//! | a query's items, types and tags per item, bytes ([`factos::QueryLimits`]) | 10,000; 100; 100; 1 MiB | [`SqliteOptions::query_limits`] |
//! | waiting for another process's write lock | 5 s | [`SqliteOptions::busy_timeout`] |
//! | a decision waiting for its scope's turn | 5 s | [`SqliteOptions::decision_timeout`] |
//!
//! A query over its limits is refused with
//! [`StoreError::QueryTooLarge`](factos::StoreError::QueryTooLarge) before
//! anything runs; every query within them runs (a large one is written as
//! one JSON parameter, so SQLite's compound-SELECT, depth and parameter
//! limits are never reached; see [`factos_sql::matching`]). No error
//! message carries generated SQL.
//!
//! ## Without an async runtime
//!
//! [`SqliteStore::inline`] gives the same store reading on the calling
//! thread (its writes go to the writer thread, and its futures wait for
//! the answer without a runtime): a synchronous application drives the
//! contract and the dispatch flows with any executor
//! (`futures::executor::block_on`), from as many threads as it likes.
//!
//! ## Storage
//!
//! Events live in an append-only `events` table; tags also get one row per
//! (tag, event) in `event_tags`, so a context query is a handful of index
//! range scans, never a scan of every event. All SQL is parameterised: tags
//! are data. The journal is WAL; `synchronous` is [`Synchronous::Full`] by
//! default (every acknowledged commit survives a power loss) or
//! [`Synchronous::Normal`] (commits survive a process crash; the last ones
//! may not survive a power loss).
//!
//! The schema is created and upgraded by [`SqliteStore::migrate`] and its
//! version recorded in the database; a database written by a newer version
//! is refused at open ([`SqliteError::SchemaTooNew`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod follow;
mod pool;
mod projection;
pub mod schema;
mod store;
mod turns;
mod writer;

pub use error::SqliteError;
pub use pool::{SqliteOptions, Synchronous};
pub use projection::SqliteProjection;
/// The driver, re-exported for [`SqliteProjection::apply`]'s transaction.
pub use rusqlite;
pub use store::{SqliteDecision, SqliteStore};
