//! Snapshots of long contexts: a decision that starts from a stored fold
//! instead of folding every event of its context.
//!
//! A decision over a context of 100,000 events reads and folds all of them,
//! every time. Opting a decider in ([`Snapshotting`]) makes its decisions
//! start from the newest *snapshot* of its state: the fold of the context's
//! events up to a position, stored under a [`SnapshotKey`] made of the
//! decider's name, a version the application bumps whenever its fold
//! changes, and the decision's scope (its query, or its stream). The
//! decision then reads and folds only the events after that position, and
//! appends on the same condition as without a snapshot (no event matching
//! the query after the last position it saw), so what it accepts is exactly
//! what a full fold would accept.
//!
//! # What keeps a snapshot valid
//!
//! - The store reads the snapshot and the events after it in one consistent
//!   read ([`LocalSnapshotStore::begin_decision_from_snapshot`]), so the
//!   state is the fold of a prefix of the very context it is completed
//!   with.
//! - A snapshot is found only under the exact name, version and scope it
//!   was taken with: a version bump leaves every older snapshot unused.
//! - Adding tags to history ([`crate::retag`]) changes what a query
//!   matches, so a snapshot carries the store's tag generation it was read
//!   under (its *stamp*): a store never returns a snapshot of another
//!   generation, and refuses to save one read before a publish.
//! - A snapshot whose state cannot be decoded is ignored: the decision reads
//!   its whole context instead (and logs a warning).
//!
//! # Written off the dispatch path
//!
//! When a decision folded at least [`Snapshotting::every`] events after its
//! snapshot (or from the start), the dispatcher encodes the state it read
//! and *offers* it to the store ([`LocalSnapshotStore::offer_snapshot`]),
//! which saves it in the background (SQLite's writer thread, a PostgreSQL
//! task) and never makes the dispatch wait. An offer can be dropped (one for
//! the same key is already being saved, or the save failed, which is
//! logged): the next decision offers again.
//!
//! ```
//! use factos::snapshot::{JsonState, SnapshotKey, Snapshotting, SnapshotStore};
//! use factos::{decider, DecisionScope, Dispatcher, JsonCodec, JsonEvent, MemoryStore, Query, QueryItem, StreamId, Tag};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct Sold { concert: u32 }
//! impl JsonEvent for Sold {
//!     fn event_type(&self) -> &'static str { "Sold" }
//!     fn tags(&self) -> Vec<String> { vec![format!("concert:{}", self.concert)] }
//! }
//!
//! // Sells up to 1,000 seats; the state (seats sold) is what a snapshot keeps.
//! let sell = decider(
//!     0u32,
//!     |concert: &u32, sold: &u32| if *sold < 1_000 { Ok(vec![Sold { concert: *concert }]) } else { Err("sold out") },
//!     |sold, _: &Sold| sold + 1,
//! );
//! let seats = Snapshotting::new(sell, "seats", 1, JsonState).every(50);
//!
//! # futures::executor::block_on(async {
//! let store = MemoryStore::new();
//! let dispatcher = Dispatcher::new(&store, JsonCodec::new());
//! let concert = Query::from(QueryItem::tags([Tag::new("concert:7")?]));
//! let stream = StreamId::new("sales-7")?;
//! for _ in 0..120 {
//!     dispatcher.dispatch_context_snapshotted(&seats, &7, &concert, &stream).await?;
//! }
//!
//! // The newest snapshot holds a fold of at least 100 sales; a decision
//! // reads only the events after it.
//! let key = SnapshotKey::new("seats", 1, &DecisionScope::Query(concert.clone()));
//! let (_, read) = store.begin_decision_from_snapshot(&DecisionScope::Query(concert), &key).await?;
//! let snapshot = read.snapshot.expect("a snapshot was saved");
//! assert!(snapshot.position.value() >= 100);
//! assert_eq!(serde_json::from_slice::<u32>(&snapshot.state)? as usize + read.events.len(), 120);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use xxhash_rust::xxh3::Xxh3;

use crate::error::{BoxError, StoreError};
use crate::handler::CommandHandler;
use crate::position::{Position, StreamRevision};
use crate::recorded::{Recorded, StoredEvent};
use crate::store::{DecisionScope, LocalEventStore};

/// How many events a decision folds past its snapshot before it offers a
/// new one, unless [`Snapshotting::every`] says otherwise.
pub const DEFAULT_EVERY: u64 = 100;

/// Where a snapshot belongs: the decider's name and version, and the scope
/// its decisions read.
///
/// The scope is kept as text (the query's types, tags and predicates, or the
/// stream) and compared whole when a snapshot is loaded; [`digest`] is only
/// its index.
///
/// [`digest`]: SnapshotKey::digest
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SnapshotKey {
    decider: String,
    version: u32,
    scope: String,
}

impl SnapshotKey {
    /// The key of `decider` at `version` for decisions on `scope`.
    pub fn new(decider: impl Into<String>, version: u32, scope: &DecisionScope) -> Self {
        let scope = match scope {
            DecisionScope::Query(query) => {
                let mut text = format!("query {query}");
                for predicate in query.items().iter().filter_map(|item| item.predicate()) {
                    text.push_str(&format!(" params {:?}", predicate.params()));
                }
                text
            }
            DecisionScope::Stream(stream) => format!("stream {stream}"),
        };
        Self {
            decider: decider.into(),
            version,
            scope,
        }
    }

    /// The decider's name.
    pub fn decider(&self) -> &str {
        &self.decider
    }

    /// The decider's version: the application bumps it when its fold
    /// changes.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The scope, as text.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// A 64-bit hash of the decider, version and scope, stable across
    /// processes and releases of this crate's major version: what stores
    /// index snapshots by (the scope text is compared as well).
    pub fn digest(&self) -> u64 {
        let mut hash = Xxh3::new();
        for text in [self.decider.as_str(), self.scope.as_str()] {
            hash.update(&(text.len() as u64).to_le_bytes());
            hash.update(text.as_bytes());
        }
        hash.update(&self.version.to_le_bytes());
        hash.digest()
    }
}

/// A decider's folded state at a position, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Whose state it is.
    pub key: SnapshotKey,
    /// The position of the last event folded into the state.
    pub position: Position,
    /// That event's revision in its stream: for a stream's decisions, the
    /// revision to expect when nothing came after.
    pub revision: StreamRevision,
    /// The store's tag generation the state was read under (see the
    /// [module docs](self)).
    pub stamp: u64,
    /// The encoded state.
    pub state: Vec<u8>,
}

/// Where a decision's read after `snapshot` starts: the position after its
/// last event (for a query) and the revision after it (for a stream); the
/// first ones without a snapshot. For backends'
/// [`begin_decision_from_snapshot`](LocalSnapshotStore::begin_decision_from_snapshot).
pub fn read_after(snapshot: Option<&Snapshot>) -> (Position, StreamRevision) {
    snapshot.map_or((Position::FIRST, StreamRevision::FIRST), |s| {
        (s.position.next(), s.revision.next())
    })
}

/// What a decision from a snapshot read: the newest valid snapshot, if
/// any, and the scope's events after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRead {
    /// The newest snapshot under the key, of the current tag generation.
    pub snapshot: Option<Snapshot>,
    /// The scope's events after the snapshot's position (all of them
    /// without a snapshot), in position order.
    pub events: Vec<StoredEvent>,
    /// The tag generation the read was made under: the stamp of a snapshot
    /// taken from it.
    pub stamp: u64,
}

/// Stores that keep snapshots beside their events. See the
/// [module docs](self).
#[trait_variant::make(SnapshotStore: Send)]
pub trait LocalSnapshotStore: LocalEventStore {
    /// Begins a decision on `scope` like
    /// [`begin_decision`](LocalEventStore::begin_decision), reading the
    /// newest snapshot stored under `key` (if its stamp is the current tag
    /// generation) and only the scope's events after it, both in one
    /// consistent read.
    ///
    /// # Errors
    ///
    /// As [`begin_decision`](LocalEventStore::begin_decision).
    async fn begin_decision_from_snapshot(
        &self,
        scope: &DecisionScope,
        key: &SnapshotKey,
    ) -> Result<(Self::Transaction, SnapshotRead), StoreError>;

    /// Saves `snapshot` unless one at a later position is stored under its
    /// key, or tags were published since its stamp. Returns whether it was
    /// saved.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be written.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<bool, StoreError>;

    /// Saves `snapshot` in the background, off the caller's path, or drops
    /// it (see the [module docs](self)). Never blocks.
    fn offer_snapshot(&self, snapshot: Snapshot);
}

/// Turns a decider's state into bytes and back, for snapshots.
pub trait StateCodec<S> {
    /// The state's bytes.
    ///
    /// # Errors
    ///
    /// When the state cannot be represented.
    fn encode(&self, state: &S) -> Result<Vec<u8>, BoxError>;

    /// The state in `bytes`.
    ///
    /// # Errors
    ///
    /// When `bytes` are not a state this codec wrote.
    fn decode(&self, bytes: &[u8]) -> Result<S, BoxError>;
}

/// States as JSON, for any state that serde can write and read.
#[cfg(feature = "serde")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonState;

#[cfg(feature = "serde")]
impl<S: serde::Serialize + serde::de::DeserializeOwned> StateCodec<S> for JsonState {
    fn encode(&self, state: &S) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(state)?)
    }
    fn decode(&self, bytes: &[u8]) -> Result<S, BoxError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// A decider (or any [`CommandHandler`]) whose decisions start from
/// snapshots: dispatch it with
/// [`Dispatcher::dispatch_context_snapshotted`](crate::Dispatcher::dispatch_context_snapshotted)
/// or
/// [`Dispatcher::dispatch_stream_snapshotted`](crate::Dispatcher::dispatch_stream_snapshotted).
///
/// Bump `version` whenever the fold changes (`evolve`, the initial state,
/// the state's type, the events it reads): a snapshot of another version is
/// never used.
#[derive(Debug, Clone)]
pub struct Snapshotting<H, C> {
    handler: H,
    name: String,
    version: u32,
    codec: C,
    every: u64,
}

impl<H, C> Snapshotting<H, C> {
    /// `handler` with snapshots stored under `name` and `version`, encoded
    /// by `codec`, offered every [`DEFAULT_EVERY`] events.
    pub fn new(handler: H, name: impl Into<String>, version: u32, codec: C) -> Self {
        Self {
            handler,
            name: name.into(),
            version,
            codec,
            every: DEFAULT_EVERY,
        }
    }

    /// Offers a snapshot when a decision folded at least `events` events
    /// past its snapshot (at least one).
    pub fn every(mut self, events: u64) -> Self {
        self.every = events.max(1);
        self
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The key of this decider's snapshots for `scope`.
    pub fn key(&self, scope: &DecisionScope) -> SnapshotKey {
        SnapshotKey::new(self.name.clone(), self.version, scope)
    }

    /// The state of `snapshot`, or `None` (with a warning logged) when it
    /// cannot be decoded.
    pub(crate) fn restore(&self, snapshot: &Snapshot) -> Option<H::State>
    where
        H: CommandHandler,
        C: StateCodec<H::State>,
    {
        match self.codec.decode(&snapshot.state) {
            Ok(state) => Some(state),
            Err(error) => {
                tracing::warn!(
                    decider = %self.name, version = self.version, position = %snapshot.position, %error,
                    "a snapshot cannot be decoded; folding the whole context instead (bump the decider's version when its state changes)"
                );
                None
            }
        }
    }

    /// The snapshot to offer after a decision on `scope` folded `folded`
    /// events past its start into `state`, the last of them `last`: `None`
    /// when too few, or when the state cannot be encoded (logged). The key
    /// is only built for a snapshot that is due.
    pub(crate) fn due<E>(
        &self,
        scope: &DecisionScope,
        stamp: u64,
        state: &H::State,
        folded: usize,
        last: Option<&Recorded<E>>,
    ) -> Option<Snapshot>
    where
        H: CommandHandler,
        C: StateCodec<H::State>,
    {
        let last = last.filter(|_| folded as u64 >= self.every)?;
        match self.codec.encode(state) {
            Ok(bytes) => Some(Snapshot {
                key: self.key(scope),
                position: last.position,
                revision: last.revision,
                stamp,
                state: bytes,
            }),
            Err(error) => {
                tracing::warn!(decider = %self.name, %error, "a state cannot be encoded; no snapshot taken");
                None
            }
        }
    }
}

/// The keys whose snapshot is being saved in the background, so that a
/// store saves one per key at a time and drops other offers meanwhile.
/// For backends' [`offer_snapshot`](LocalSnapshotStore::offer_snapshot).
#[derive(Debug, Clone, Default)]
pub struct SnapshotOffers {
    saving: Arc<Mutex<HashSet<SnapshotKey>>>,
}

impl SnapshotOffers {
    /// No save in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims `key` for a save: `None` when one is in progress. The key is
    /// free again when the returned claim is dropped.
    pub fn claim(&self, key: &SnapshotKey) -> Option<SnapshotClaim> {
        let mut saving = self.saving.lock().unwrap_or_else(PoisonError::into_inner);
        saving.insert(key.clone()).then(|| SnapshotClaim {
            saving: Arc::clone(&self.saving),
            key: key.clone(),
        })
    }
}

/// A save in progress, from [`SnapshotOffers::claim`].
pub struct SnapshotClaim {
    saving: Arc<Mutex<HashSet<SnapshotKey>>>,
    key: SnapshotKey,
}

impl fmt::Debug for SnapshotClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotClaim").field("key", &self.key).finish()
    }
}

impl Drop for SnapshotClaim {
    fn drop(&mut self) {
        self.saving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// Logs how a background save of a snapshot ended, for backends'
/// [`offer_snapshot`](LocalSnapshotStore::offer_snapshot).
pub fn log_offer_outcome(key: &SnapshotKey, outcome: &Result<bool, StoreError>) {
    match outcome {
        Ok(saved) => tracing::debug!(decider = key.decider(), saved, "snapshot offered"),
        Err(error) => tracing::warn!(decider = key.decider(), %error, "a snapshot could not be saved"),
    }
}
