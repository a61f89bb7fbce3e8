//! # factos-kurrentdb: factos on KurrentDB
//!
//! A factos event store on [KurrentDB](https://www.kurrent.io) through the
//! official `kurrentdb` client. It uses what KurrentDB enforces, and refuses
//! what it cannot:
//!
//! * **Stream consistency.** Appends carry factos' expected revision as
//!   KurrentDB's expected stream state, one to one
//!   ([`ExpectedRevision::Any`](factos::ExpectedRevision::Any) → any,
//!   `NoStream` → no stream, `StreamExists` → stream exists, `Exact(n)` →
//!   revision `n`); a wrong one is
//!   [`StoreError::RevisionMismatch`](factos::StoreError::RevisionMismatch)
//!   with the stream's actual revision. So
//!   [`Dispatcher::dispatch_stream`](factos::Dispatcher::dispatch_stream)
//!   and `load_stream` work as everywhere.
//! * **Query conditions are refused.** A revision protects one stream: it
//!   says nothing about events other streams received meanwhile. A rule
//!   that spans streams ("a username is taken once", "a concert sells at
//!   most 100 tickets over all orders") needs `FailIfEventsMatch(query,
//!   after)` checked atomically with the write, which KurrentDB's append
//!   cannot do. Every append with a condition, and every
//!   [`dispatch_context`](factos::Dispatcher::dispatch_context), fails with
//!   [`StoreError::UnsupportedCondition`](factos::StoreError::UnsupportedCondition)
//!   before anything is read or written, never by silently dropping the
//!   condition. Model such a rule as one stream (every decision on it reads
//!   and appends that stream), or pick a backend that enforces query
//!   conditions: `factos-sqlite` on one machine, `factos-postgres` beyond.
//! * **Context reads work.** [`read`](factos::LocalEventStore::read) and
//!   [`Dispatcher::read_context`](factos::Dispatcher::read_context) read
//!   `$all`; the context still carries its `FailIfEventsMatch` condition,
//!   for an application that hands it to another store.
//!
//! ```
//! use factos::{AppendRequest, EventId, EventType, EventStore, NewEvent, Query, QueryItem, ReadOptions, StreamId, Tag};
//! use factos_kurrentdb::KurrentStore;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! # let server = factos_test_kurrentdb::FakeKurrentDb::start().await?;
//! # let url = server.connection_string();
//! // url = "kurrentdb://admin:changeit@localhost:2113?tls=false"
//! let store = KurrentStore::connect(&url)?;
//! let placed = NewEvent::new(EventId::random(), EventType::new("OrderPlaced")?, br#"{"total":12}"#.to_vec())
//!     .with_tags([Tag::new("customer:ada")?]);
//! let committed = store.append(AppendRequest::new(StreamId::new("order-1")?, vec![placed])).await?;
//! let ada = Query::from(QueryItem::tags([Tag::new("customer:ada")?]));
//! assert_eq!(store.read(&ada, ReadOptions::forwards()).await?, committed.records);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Mapping
//!
//! A factos event is one KurrentDB event: same id, same event type, the
//! payload bytes as the data (content type JSON when the bytes are exactly
//! one JSON value, binary otherwise; either way they come back byte for
//! byte). Tags, the payload version and factos metadata travel in the
//! event's custom metadata as one JSON object, so other KurrentDB tools see
//! a normal event:
//!
//! ```json
//! {"factos":{"tags":["order:7"],"version":1,"metadata":{"trace":"a1"},"fingerprint":"9f2c41d07a3b5e68"}}
//! ```
//!
//! (`fingerprint` identifies the append request, for re-sends; below.)
//! Events written by other tools read back with no tags, version 0 and no
//! metadata. System events (types starting with `$`) never reach the
//! application, and appending one, or to a `$` stream, is refused with
//! [`InvalidAppend::ReservedName`](factos::InvalidAppend::ReservedName).
//!
//! ## Positions
//!
//! A factos [`Position`](factos::Position) is the event's `$all` commit
//! position. KurrentDB reports a commit and a prepare position per event;
//! an append (one implicit transaction) writes each of its events as a log
//! record that commits itself, so for every event both are that record's
//! own log position: unique, increasing in `$all` order, distinct for the
//! events of one batch. A read from a position resumes at `(p, p)`, which
//! is that event's record. Only the legacy TCP protocol's explicit
//! transactions give events a shared commit position (prepare below
//! commit); reading one is an error rather than a repeated position.
//! Positions are log offsets, so they have gaps; `from` should be a
//! position factos returned.
//!
//! ## Re-sent batches
//!
//! factos promises that re-sending a committed batch (same ids, same
//! request) returns the original records and writes nothing twice. After
//! every append the backend reads the batch back from its stream (a
//! second round trip) and compares it, by id and request fingerprint, with
//! what it sent:
//!
//! * KurrentDB acknowledges a re-send of ids it still recognises without
//!   writing them again; the read-back then returns the original records,
//!   or [`StoreError::DuplicateEventId`](factos::StoreError::DuplicateEventId)
//!   if the ids now carry different content.
//! * How long KurrentDB recognises ids depends on the expectation. With an
//!   exact expected revision (or `NoStream`), as
//!   [`dispatch_stream`](factos::Dispatcher::dispatch_stream) sends, the
//!   server compares the batch with the events after that revision in its
//!   index, so a re-send is recognised however late it comes. With `Any`
//!   or `StreamExists` it looks the first id up in its in-memory cache of
//!   recently written events: the idempotency window, bounded by that
//!   cache's size and lost on restart. A re-send after the window is
//!   written again.
//! * KurrentDB has no global index of event ids: the same id in another
//!   stream is a new event to it. Event ids are unique per stream (within
//!   the window), not across the store as on the SQL backends.
//!
//! ## Reads and their cost
//!
//! `read_stream` reads the stream. `read(query, options)` reads `$all` with
//! a server-side filter and matches the full query (tags included) here:
//! when every query item names event types, the filter is an anchored,
//! escaped regular expression of exactly those types (`^(?:A|B)$`), so
//! only they cross the wire; an item with tags only (or the empty query)
//! can only exclude system events, so **every other event of the store is
//! sent and matched here**, since KurrentDB has no index over metadata.
//! Name the event types in context queries. Reads page through `$all` 512
//! events at a time, and stop as soon as a page's limit or byte budget
//! ([`factos::ReadOptions::max_bytes`]) is reached.
//!
//! A query over [`factos::QueryLimits`] (10,000 items, 100 types and 100
//! tags per item, 1 MiB by default; [`KurrentStore::with_query_limits`]) is
//! refused with [`factos::StoreError::QueryTooLarge`] before anything is
//! sent, as on every backend.
//!
//! ## Following the log
//!
//! The store implements the follow contract ([`factos::Follow`]:
//! [`factos::Subscription`] and effect runners work on it): followers read
//! `$all` after their cursor with the same filters, and are woken by a
//! KurrentDB catch-up subscription to `$all`, with polling
//! ([`KurrentStore::with_poll_interval`]) as the safety net. It also keeps
//! effect runners' checkpoints and parked effects ([`factos::Checkpoints`])
//! in KurrentDB, in streams named `factos-checkpoint-{name}` and
//! `factos-parked-{runner}` whose `$`-typed events no factos read returns;
//! those stream names are reserved.
#![deny(missing_docs)]

mod checkpoints;
mod error;
mod filter;
mod follow;
mod mapping;
mod store;

pub use error::KurrentError;
pub use kurrentdb;
pub use store::KurrentStore;

/// The name this backend gives in typed refusals.
const BACKEND: &str = "KurrentDB";
