//! # factos: context-first event sourcing
//!
//! Accepted facts (events) are the authoritative, append-only history, and
//! the part of that history relevant to a command decides whether new facts
//! may be accepted. No aggregates are needed: a command's consistency
//! boundary is a [`Query`] over event types and tags.
//!
//! 1. a command arrives;
//! 2. the application picks the facts relevant to the decision (a query);
//! 3. they are folded into a temporary state;
//! 4. a pure [`Decider`] rejects the command or produces new events;
//! 5. the store appends them only if no event matching the query was
//!    appended after the position the decision saw
//!    ([`AppendCondition`]: `FailIfEventsMatch(query, after)`).
//!
//! Stream-revision consistency ([`ExpectedRevision`]) stays available as one
//! strategy among others.
//!
//! This crate is the pure core: no IO, no async runtime. Backends implement
//! the [`EventStore`] contract (or [`LocalEventStore`] where futures cannot
//! be `Send`); [`MemoryStore`] is the in-memory reference implementation.
//!
//! ## Example: unique usernames, on the in-memory store
//!
//! ```
//! use factos::{decider, Dispatcher, JsonCodec, JsonEvent, MemoryStore, Query, QueryItem, StreamId, Tag};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! enum Event {
//!     UsernameReserved { user: u64, name: String },
//! }
//!
//! impl JsonEvent for Event {
//!     fn event_type(&self) -> &'static str {
//!         "UsernameReserved"
//!     }
//!     fn tags(&self) -> Vec<String> {
//!         let Event::UsernameReserved { name, .. } = self;
//!         vec![format!("username:{name}")]
//!     }
//! }
//!
//! struct Register { user: u64, name: String }
//!
//! #[derive(Debug, PartialEq, thiserror::Error)]
//! #[error("the username is taken")]
//! struct NameTaken;
//!
//! let register = decider(
//!     false,
//!     |cmd: &Register, taken: &bool| {
//!         if *taken {
//!             return Err(NameTaken);
//!         }
//!         Ok(vec![Event::UsernameReserved { user: cmd.user, name: cmd.name.clone() }])
//!     },
//!     |_taken, _event: &Event| true,
//! );
//!
//! # futures::executor::block_on(async {
//! let store = MemoryStore::new();
//! let dispatcher = Dispatcher::new(&store, JsonCodec::new());
//! let boundary = Query::from(QueryItem::tags([Tag::new("username:ada")?]));
//!
//! let ada = Register { user: 1, name: "ada".into() };
//! let committed = dispatcher.dispatch_context(&register, &ada, &boundary, &StreamId::new("user-1")?).await?;
//! assert_eq!(committed.len(), 1);
//!
//! let impostor = Register { user: 2, name: "ada".into() };
//! let rejected = dispatcher.dispatch_context(&register, &impostor, &boundary, &StreamId::new("user-2")?).await;
//! assert_eq!(rejected.err().and_then(|e| e.into_domain()), Some(NameTaken));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! ## Observability
//!
//! Each dispatch runs in an `info` span named `dispatch` with the fields
//! `command` and `handler` (type names), `stream`, `context` (`query` or
//! `stream`), `query_items`, and, recorded when it ends, `attempts`,
//! `conflicts`, `events_read`, `events_appended` and `outcome`
//! (`committed`, `nothing to append`, `rejected`, `conflict`, `failed`);
//! each lost race is a `debug` event. Backends open a `debug` span per
//! store call ([`record_outcome`]). The core keeps no clock: a subscriber
//! that records span timings (`tracing-subscriber`'s `FmtSpan::CLOSE`)
//! gives each dispatch's duration.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod codec;
mod context;
mod decider;
mod dispatch;
mod error;
mod event;
pub mod facts;
pub mod follow;
pub mod forget;
mod handler;
pub mod limits;
mod memory;
mod name;
mod position;
pub mod projection;
mod query;
mod reactor;
mod recorded;
pub mod retag;
pub mod snapshot;
pub mod store;
mod view;

pub use codec::{Codec, StoredCodec, upcast};
#[cfg(feature = "serde")]
pub use codec::{JsonCodec, JsonCodecError, JsonEvent};
pub use context::{Context, LoadedStream};
pub use decider::{Decider, FnDecider, compute_events, compute_state, decider};
pub use dispatch::{Dispatcher, RetryPolicy};
pub use error::{
    AppendConditionFailed, BoxError, DecodeError, DuplicateEventId, EncodeError, Error, ErrorChain, InvalidAppend,
    InvalidPredicate, Operation, ProjectionFailed, RevisionMismatch, SplitRejection, StoreError,
    UnsupportedAppendCondition, UnsupportedQuery,
};
pub use event::{EventId, InvalidMetadata, MAX_METADATA_VALUE_LEN, Metadata, MetadataProblem, NewEvent, Timestamp};
pub use facts::{Fact, FactHandler, FactSet, Facts, fact, facts, handler};
pub use follow::{
    Checkpoints, CommitSignal, Cursor, Delivered, EffectKey, Follow, FollowBatch, InvalidCursor, LocalCheckpoints,
    LocalFollow, ParkedEffect, Subscription, decode, decode_delivered, deliver_in_position_order,
};
pub use handler::CommandHandler;
pub use limits::{QueryLimit, QueryLimits, QueryTooLarge};
pub use memory::{MemoryDecision, MemoryStore};
pub use name::{EventType, InvalidName, MAX_NAME_LEN, NameProblem, StreamId, Tag};
pub use position::{AppendCondition, ExpectedRevision, Position, StreamRevision};
pub use projection::{BatchOutcome, Projection, ProjectionBatch, ProjectionError, Projector, ReadModelStore};
pub use query::{Predicate, PredicateValue, Query, QueryItem};
pub use reactor::{FnReactor, Reactor, react_all, reactor};
pub use recorded::{Recorded, StoredEvent};
pub use store::{
    AppendRequest, Committed, DecisionScope, Direction, EventStore, LocalEventStore, PageBudget, ReadOptions,
    SharedStore, record_outcome,
};
pub use view::{FnView, MergedViews, View, merge_views, project, view};
