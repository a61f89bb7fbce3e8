//! Command dispatch over the store contract: read, fold, decide, append.

use std::convert::Infallible;

use tracing::Instrument;

use crate::codec::Codec;
use crate::context::{Context, LoadedStream};
use crate::error::{EncodeError, Error, Operation, StoreError};
use crate::event::Metadata;
use crate::follow::decode;
use crate::handler::CommandHandler;
use crate::name::StreamId;
use crate::position::{AppendCondition, ExpectedRevision, Position, StreamRevision};
use crate::query::Query;
use crate::recorded::{Recorded, StoredEvent};
use crate::snapshot::{LocalSnapshotStore, Snapshotting, StateCodec};
use crate::store::{AppendRequest, DecisionScope, LocalEventStore, ReadOptions};

/// How often a dispatch re-runs its whole flow (read, fold, decide, append)
/// when its append loses a race.
///
/// Re-running is always safe: the failed append wrote nothing, and the next
/// attempt decides on the fresh events. There is no sleep between attempts;
/// the core has no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    max_attempts: u32,
}

impl RetryPolicy {
    /// At most `max_attempts` runs (at least one).
    pub fn attempts(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
        }
    }

    /// One run, no retry: conflicts are returned at once.
    pub fn none() -> Self {
        Self::attempts(1)
    }

    /// The maximum number of runs.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
}

impl Default for RetryPolicy {
    /// 16 attempts: enough for dozens of writers racing on one context in an
    /// optimistic store, few enough to surface a livelock.
    fn default() -> Self {
        Self::attempts(16)
    }
}

/// What a dispatch's attempts did, for its span.
#[derive(Debug, Default)]
struct Tally {
    /// How many times the flow ran.
    attempts: u32,
    /// How many events the last attempt read.
    events_read: usize,
}

/// `T`'s name without its module path or generic arguments (`Buy`,
/// `FnDecider`): short enough for a log line.
fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let plain = full.split('<').next().unwrap_or(full);
    plain.rsplit("::").next().unwrap_or(plain)
}

/// The committed records with the domain events they encode.
fn with_events<E>(records: Vec<StoredEvent>, events: Vec<E>) -> Vec<Recorded<E>> {
    records
        .into_iter()
        .zip(events)
        .map(|(record, event)| record.map(|_| event))
        .collect()
}

/// What a decision produced: the append request and the domain events it
/// encodes.
type Decided<E> = (AppendRequest, Vec<E>);

/// What an attempt read for its decision: where its fold starts, and the
/// events to fold from there.
struct Begun<T, State> {
    /// What the store keeps until the decision ends.
    transaction: T,
    /// The initial state, or a snapshot's.
    start: State,
    /// The last event folded into `start` (a snapshot's), if any.
    base: Option<(Position, StreamRevision)>,
    /// The events after `base`, in position order.
    events: Vec<StoredEvent>,
    /// For a read from a snapshot: the tag generation it was made under.
    stamp: Option<u64>,
}

/// How an attempt reads its context: every event of it
/// ([`WholeContext`]), or a snapshot and the events after it.
trait ContextSource<S: LocalEventStore, H: CommandHandler> {
    /// Begins the decision on `scope`.
    async fn begin(&self, store: &S, scope: &DecisionScope) -> Result<Begun<S::Transaction, H::State>, StoreError>;

    /// Sees the state folded from what [`begin`](Self::begin) read under
    /// `stamp`: `folded` events, the last of them `last`.
    fn folded(
        &self,
        store: &S,
        scope: &DecisionScope,
        stamp: Option<u64>,
        state: &H::State,
        folded: usize,
        last: Option<&Recorded<H::Event>>,
    );
}

/// Every event of the context, folded from the initial state.
struct WholeContext<'h, H>(&'h H);

impl<S: LocalEventStore, H: CommandHandler> ContextSource<S, H> for WholeContext<'_, H> {
    async fn begin(&self, store: &S, scope: &DecisionScope) -> Result<Begun<S::Transaction, H::State>, StoreError> {
        let (transaction, events) = store.begin_decision(scope).await?;
        Ok(Begun {
            transaction,
            start: self.0.initial(),
            base: None,
            events,
            stamp: None,
        })
    }

    fn folded(&self, _: &S, _: &DecisionScope, _: Option<u64>, _: &H::State, _: usize, _: Option<&Recorded<H::Event>>) {
    }
}

impl<S, H, SC> ContextSource<S, H> for Snapshotting<H, SC>
where
    S: LocalSnapshotStore,
    H: CommandHandler,
    SC: StateCodec<H::State>,
{
    async fn begin(&self, store: &S, scope: &DecisionScope) -> Result<Begun<S::Transaction, H::State>, StoreError> {
        let (transaction, read) = store.begin_decision_from_snapshot(scope, &self.key(scope)).await?;
        let Some(snapshot) = read.snapshot else {
            return Ok(Begun {
                transaction,
                start: self.handler().initial(),
                base: None,
                events: read.events,
                stamp: Some(read.stamp),
            });
        };
        if let Some(start) = self.restore(&snapshot) {
            return Ok(Begun {
                transaction,
                start,
                base: Some((snapshot.position, snapshot.revision)),
                events: read.events,
                stamp: Some(read.stamp),
            });
        }
        // An undecodable snapshot: the whole context instead. A snapshot
        // taken from it keeps the first read's stamp, so a publish in
        // between makes the store refuse it.
        store.abandon_decision(transaction).await;
        let whole = WholeContext(self.handler()).begin(store, scope).await?;
        Ok(Begun {
            stamp: Some(read.stamp),
            ..whole
        })
    }

    fn folded(
        &self,
        store: &S,
        scope: &DecisionScope,
        stamp: Option<u64>,
        state: &H::State,
        folded: usize,
        last: Option<&Recorded<H::Event>>,
    ) {
        let Some(stamp) = stamp else { return };
        if let Some(snapshot) = self.due(scope, stamp, state, folded, last) {
            store.offer_snapshot(snapshot);
        }
    }
}

/// Runs commands against a store with an application codec.
///
/// A dispatcher borrows its store and is cheap to build and to clone. To
/// dispatch from spawned tasks, give each task a clone of the store (the
/// backends' clones share one pool) and build a dispatcher inside the task;
/// generic code over such stores takes `S:` [`crate::SharedStore`], whose
/// docs show the pattern.
///
/// ```
/// use factos::{decider, Dispatcher, JsonCodec, JsonEvent, MemoryStore, Query, QueryItem, StreamId, Tag};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize)]
/// struct Reserved { name: String }
/// impl JsonEvent for Reserved {
///     fn event_type(&self) -> &'static str { "Reserved" }
///     fn tags(&self) -> Vec<String> { vec![format!("username:{}", self.name)] }
/// }
///
/// let reserve = decider(
///     false,
///     |name: &String, taken: &bool| {
///         if *taken { Err("taken") } else { Ok(vec![Reserved { name: name.clone() }]) }
///     },
///     |_, _: &Reserved| true,
/// );
///
/// # futures::executor::block_on(async {
/// let store = MemoryStore::new();
/// let dispatcher = Dispatcher::new(&store, JsonCodec::new());
/// let query = Query::from(QueryItem::tags([Tag::new("username:ada")?]));
/// let stream = StreamId::new("user-1")?;
///
/// let committed = dispatcher.dispatch_context(&reserve, &"ada".to_string(), &query, &stream).await?;
/// assert_eq!(committed[0].event.name, "ada");
/// let again = dispatcher.dispatch_context(&reserve, &"ada".to_string(), &query, &stream).await;
/// assert_eq!(again.err().and_then(|e| e.into_domain()), Some("taken"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Dispatcher<'s, S, C> {
    store: &'s S,
    codec: C,
    retry: RetryPolicy,
    metadata: Metadata,
}

impl<'s, S: LocalEventStore, C> Dispatcher<'s, S, C> {
    /// A dispatcher with the default [`RetryPolicy`] and no extra metadata.
    pub fn new(store: &'s S, codec: C) -> Self {
        Self {
            store,
            codec,
            retry: RetryPolicy::default(),
            metadata: Metadata::new(),
        }
    }

    /// Uses `retry` for conflicts.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Adds `metadata` (correlation and causation ids, say) to every event
    /// appended, unless the codec already set the same key.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The store this dispatcher writes to.
    pub fn store(&self) -> &'s S {
        self.store
    }

    /// Reads the events matching `query`, decoded, with the position to
    /// append after: the first half of the explicit flow, for applications
    /// that decide in their own code. Append the result with
    /// [`Dispatcher::append`] and the context's
    /// [`append_condition`](Context::append_condition).
    ///
    /// ```
    /// use factos::{Dispatcher, ExpectedRevision, JsonCodec, JsonEvent, MemoryStore, Query, QueryItem, StreamId, Tag};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, Serialize, Deserialize)]
    /// struct Booked { room: u32, night: u32 }
    /// impl JsonEvent for Booked {
    ///     fn event_type(&self) -> &'static str { "Booked" }
    ///     fn tags(&self) -> Vec<String> { vec![format!("room:{}:{}", self.room, self.night)] }
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let store = MemoryStore::new();
    /// let dispatcher = Dispatcher::new(&store, JsonCodec::<Booked>::new());
    /// let night = Query::from(QueryItem::tags([Tag::new("room:7:1")?]));
    ///
    /// // Read, decide in your own code, append on the condition read.
    /// let context = dispatcher.read(&night).await?;
    /// if context.events.is_empty() {
    ///     let booked = vec![Booked { room: 7, night: 1 }];
    ///     let stream = StreamId::new("booking-1")?;
    ///     let committed = dispatcher
    ///         .append(&stream, booked, ExpectedRevision::NoStream, Some(context.append_condition()))
    ///         .await?;
    ///     assert_eq!(committed[0].event.room, 7);
    /// }
    ///
    /// // A second booking decided on the same, now stale, context fails.
    /// let stale = dispatcher
    ///     .append(&StreamId::new("booking-2")?, vec![Booked { room: 7, night: 1 }], ExpectedRevision::Any, Some(context.append_condition()))
    ///     .await;
    /// assert!(stale.is_err_and(|e| e.is_conflict()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the read fails, [`Error::Decode`] when an event
    /// cannot be decoded (the read stops there). Use [`Error::cast`] to
    /// return them as your own `Error<D>`.
    pub async fn read<E>(&self, query: &Query) -> Result<Context<E>, Error<Infallible>>
    where
        C: Codec<E>,
    {
        let stored = self
            .store
            .read(query, ReadOptions::forwards())
            .await
            .map_err(|e| Operation::Read { query: query.clone() }.failed(e))?;
        let events = self.decode_all(stored)?;
        Ok(Context {
            query: query.clone(),
            position: events.last().map(|e| e.position),
            state: (),
            events,
        })
    }

    /// Appends `events`, encoded by the codec, to `stream` if `expected`
    /// and `condition` hold: the second half of the explicit flow (see
    /// [`Dispatcher::read`]). Nothing is retried: on a conflict, read and
    /// decide again. No events append nothing.
    ///
    /// # Errors
    ///
    /// [`Error::AppendConditionFailed`] or [`Error::RevisionMismatch`] (with
    /// one attempt) when a check fails, [`Error::Encode`] when an event
    /// cannot be encoded, [`Error::Store`] otherwise; in every case nothing
    /// was written.
    pub async fn append<E>(
        &self,
        stream: &StreamId,
        events: Vec<E>,
        expected: ExpectedRevision,
        condition: Option<AppendCondition>,
    ) -> Result<Vec<Recorded<E>>, Error<Infallible>>
    where
        C: Codec<E>,
    {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut request = AppendRequest::new(stream.clone(), self.encode_all(&events)?).expect(expected);
        request.condition = condition;
        match self.store.append(request).await {
            Ok(committed) => Ok(with_events(committed.records, events)),
            Err(StoreError::ConditionFailed(source)) => Err(Error::AppendConditionFailed { source, attempts: 1 }),
            Err(StoreError::RevisionMismatch(source)) => Err(Error::RevisionMismatch { source, attempts: 1 }),
            Err(other) => Err(Operation::Append { stream: stream.clone() }.failed(other)),
        }
    }

    /// Reads the events matching `query` and folds them with `decider` (a
    /// [`crate::Decider`] or any other [`CommandHandler`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the read fails, [`Error::Decode`] when an event
    /// cannot be decoded (the read stops there).
    pub async fn read_context<D>(
        &self,
        decider: &D,
        query: &Query,
    ) -> Result<Context<D::Event, D::State>, Error<D::Error>>
    where
        D: CommandHandler,
        C: Codec<D::Event>,
    {
        let Context {
            query,
            position,
            events,
            ..
        } = self.read(query).await.map_err(Error::cast)?;
        Ok(Context {
            state: events
                .iter()
                .fold(decider.initial(), |state, e| decider.apply(state, e)),
            query,
            position,
            events,
        })
    }

    /// Reads `stream` and folds it with `decider`.
    ///
    /// # Errors
    ///
    /// As [`Dispatcher::read_context`].
    pub async fn load_stream<D>(
        &self,
        decider: &D,
        stream: &StreamId,
    ) -> Result<LoadedStream<D::Event, D::State>, Error<D::Error>>
    where
        D: CommandHandler,
        C: Codec<D::Event>,
    {
        let stored = self
            .store
            .read_stream(stream, StreamRevision::FIRST)
            .await
            .map_err(|e| Operation::LoadStream { stream: stream.clone() }.failed(e))?;
        let events = self.decode_all(stored)?;
        Ok(LoadedStream {
            stream: stream.clone(),
            revision: events.last().map(|e| e.revision),
            state: events
                .iter()
                .fold(decider.initial(), |state, e| decider.apply(state, e)),
            events,
        })
    }

    /// Decides `command` on the events matching `query` and appends the
    /// result to `stream` on the condition that no matching event arrived
    /// since the read. On a conflict the whole flow runs again, up to the
    /// retry policy.
    ///
    /// Returns the committed events (empty when the decider produced none;
    /// then nothing is appended).
    ///
    /// # Errors
    ///
    /// [`Error::Domain`] when the decider rejects the command;
    /// [`Error::AppendConditionFailed`] when every attempt lost its race;
    /// [`Error::Encode`], [`Error::Decode`], [`Error::Store`] otherwise. In
    /// every case nothing was written.
    pub async fn dispatch_context<D>(
        &self,
        decider: &D,
        command: &D::Command,
        query: &Query,
        stream: &StreamId,
    ) -> Result<Vec<Recorded<D::Event>>, Error<D::Error>>
    where
        D: CommandHandler,
        C: Codec<D::Event>,
    {
        let scope = DecisionScope::Query(query.clone());
        self.dispatch(decider, &WholeContext(decider), command, scope, stream)
            .await
    }

    /// Decides `command` on the events of `stream` and appends the result to
    /// it, expecting the revision that was read. On a conflict the whole flow
    /// runs again, up to the retry policy.
    ///
    /// # Errors
    ///
    /// As [`Dispatcher::dispatch_context`], with [`Error::RevisionMismatch`]
    /// for a lost race.
    pub async fn dispatch_stream<D>(
        &self,
        decider: &D,
        command: &D::Command,
        stream: &StreamId,
    ) -> Result<Vec<Recorded<D::Event>>, Error<D::Error>>
    where
        D: CommandHandler,
        C: Codec<D::Event>,
    {
        let scope = DecisionScope::Stream(stream.clone());
        self.dispatch(decider, &WholeContext(decider), command, scope, stream)
            .await
    }

    /// [`Dispatcher::dispatch_context`] for a decider with snapshots: the
    /// decision starts from the newest snapshot of its state on `query` and
    /// folds only the events after it, and offers a new snapshot when it
    /// folded [`Snapshotting::every`] events or more (see
    /// [`crate::snapshot`]). It accepts and rejects exactly what
    /// [`Dispatcher::dispatch_context`] would.
    ///
    /// # Errors
    ///
    /// As [`Dispatcher::dispatch_context`].
    pub async fn dispatch_context_snapshotted<D, SC>(
        &self,
        decider: &Snapshotting<D, SC>,
        command: &D::Command,
        query: &Query,
        stream: &StreamId,
    ) -> Result<Vec<Recorded<D::Event>>, Error<D::Error>>
    where
        S: LocalSnapshotStore,
        D: CommandHandler,
        C: Codec<D::Event>,
        SC: StateCodec<D::State>,
    {
        let scope = DecisionScope::Query(query.clone());
        self.dispatch(decider.handler(), decider, command, scope, stream).await
    }

    /// [`Dispatcher::dispatch_stream`] for a decider with snapshots (see
    /// [`Dispatcher::dispatch_context_snapshotted`]).
    ///
    /// # Errors
    ///
    /// As [`Dispatcher::dispatch_stream`].
    pub async fn dispatch_stream_snapshotted<D, SC>(
        &self,
        decider: &Snapshotting<D, SC>,
        command: &D::Command,
        stream: &StreamId,
    ) -> Result<Vec<Recorded<D::Event>>, Error<D::Error>>
    where
        S: LocalSnapshotStore,
        D: CommandHandler,
        C: Codec<D::Event>,
        SC: StateCodec<D::State>,
    {
        let scope = DecisionScope::Stream(stream.clone());
        self.dispatch(decider.handler(), decider, command, scope, stream).await
    }

    /// The flow behind both dispatch methods, in a `dispatch` span (see the
    /// crate docs' "Observability").
    async fn dispatch<D, R>(
        &self,
        decider: &D,
        source: &R,
        command: &D::Command,
        scope: DecisionScope,
        stream: &StreamId,
    ) -> Result<Vec<Recorded<D::Event>>, Error<D::Error>>
    where
        D: CommandHandler,
        C: Codec<D::Event>,
        R: ContextSource<S, D>,
    {
        let span = tracing::info_span!(
            "dispatch",
            command = short_type_name::<D::Command>(),
            handler = short_type_name::<D>(),
            stream = %stream,
            context = match &scope {
                DecisionScope::Query(_) => "query",
                DecisionScope::Stream(_) => "stream",
            },
            query_items = match &scope {
                DecisionScope::Query(query) => query.items().len(),
                DecisionScope::Stream(_) => 0,
            },
            attempts = tracing::field::Empty,
            conflicts = tracing::field::Empty,
            events_read = tracing::field::Empty,
            events_appended = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let mut tally = Tally::default();
        let outcome = self
            .run_attempts(decider, source, command, &scope, stream, &mut tally)
            .instrument(span.clone())
            .await;
        // Recorded once, at the end: a log line shows each field once.
        span.record("attempts", tally.attempts);
        span.record("conflicts", tally.attempts.saturating_sub(1));
        span.record("events_read", tally.events_read);
        if let Ok(committed) = &outcome {
            span.record("events_appended", committed.len());
        }
        span.record(
            "outcome",
            match &outcome {
                Ok(committed) if committed.is_empty() => "nothing to append",
                Ok(_) => "committed",
                Err(Error::Domain(_)) => "rejected",
                Err(error) if error.is_conflict() => "conflict",
                Err(_) => "failed",
            },
        );
        outcome
    }

    async fn run_attempts<D, R>(
        &self,
        decider: &D,
        source: &R,
        command: &D::Command,
        scope: &DecisionScope,
        stream: &StreamId,
        tally: &mut Tally,
    ) -> Result<Vec<Recorded<D::Event>>, Error<D::Error>>
    where
        D: CommandHandler,
        C: Codec<D::Event>,
        R: ContextSource<S, D>,
    {
        let operation = || match scope {
            DecisionScope::Query(query) => Operation::DispatchContext {
                query: query.clone(),
                stream: stream.clone(),
            },
            DecisionScope::Stream(stream) => Operation::DispatchStream { stream: stream.clone() },
        };
        let mut attempt = 1;
        loop {
            tally.attempts = attempt;
            let begun = source
                .begin(self.store, scope)
                .await
                .map_err(|e| operation().failed(e))?;
            tally.events_read = begun.events.len();
            let transaction = begun.transaction;
            let start = (begun.start, begun.base);
            let stored = begun.events;
            let folded = |state: &D::State, seen: &[Recorded<D::Event>]| {
                source.folded(self.store, scope, begun.stamp, state, seen.len(), seen.last());
            };
            let request = match self.decide(decider, command, scope, stream, start, stored, folded) {
                Ok(Some(request)) => request,
                // Nothing to append, or a rejection: end the decision so the
                // store can release what it holds (a pooled connection).
                Ok(None) => {
                    self.store.abandon_decision(transaction).await;
                    return Ok(Vec::new());
                }
                Err(error) => {
                    self.store.abandon_decision(transaction).await;
                    return Err(error);
                }
            };
            let (request, decided) = request;
            match self.store.commit_decision(transaction, request).await {
                Ok(committed) => return Ok(with_events(committed.records, decided)),
                Err(conflict) if conflict.is_conflict() && attempt < self.retry.max_attempts => {
                    tracing::debug!(attempt, %conflict, "lost a race; deciding again on fresh events");
                    attempt += 1;
                }
                Err(StoreError::ConditionFailed(source)) => {
                    return Err(Error::AppendConditionFailed {
                        source,
                        attempts: attempt,
                    });
                }
                Err(StoreError::RevisionMismatch(source)) => {
                    return Err(Error::RevisionMismatch {
                        source,
                        attempts: attempt,
                    });
                }
                Err(other) => return Err(operation().failed(other)),
            }
        }
    }

    /// The pure middle of a dispatch: decodes what the decision read, folds
    /// it from `start` (a state and the last event folded into it, if any),
    /// shows the state to `folded`, decides, and builds the append request
    /// with the condition or expected revision the read implies. `None`
    /// when the decider produced no events.
    #[allow(clippy::too_many_arguments)]
    fn decide<D>(
        &self,
        decider: &D,
        command: &D::Command,
        scope: &DecisionScope,
        stream: &StreamId,
        start: (D::State, Option<(Position, StreamRevision)>),
        stored: Vec<StoredEvent>,
        folded: impl FnOnce(&D::State, &[Recorded<D::Event>]),
    ) -> Result<Option<Decided<D::Event>>, Error<D::Error>>
    where
        D: CommandHandler,
        C: Codec<D::Event>,
    {
        let (state, base) = start;
        let seen = self.decode_all(stored)?;
        let state = seen.iter().fold(state, |state, e| decider.apply(state, e));
        folded(&state, &seen);
        let decided = decider.handle(command, &state).map_err(Error::Domain)?;
        if decided.is_empty() {
            return Ok(None);
        }
        let last = seen.last().map(|e| (e.position, e.revision)).or(base);
        let mut request = AppendRequest::new(stream.clone(), self.encode_all(&decided)?);
        match scope {
            DecisionScope::Query(query) => {
                let after = last.map(|(position, _)| position);
                request = request.condition(AppendCondition::new(query.clone(), after));
            }
            DecisionScope::Stream(_) => {
                let current = last.map(|(_, revision)| revision);
                request = request.expect(ExpectedRevision::from_current(current));
            }
        }
        Ok(Some((request, decided)))
    }

    fn decode_all<E, Err>(&self, stored: Vec<StoredEvent>) -> Result<Vec<Recorded<E>>, Error<Err>>
    where
        C: Codec<E>,
    {
        Ok(stored
            .into_iter()
            .map(|record| decode(&self.codec, record))
            .collect::<Result<_, _>>()?)
    }

    fn encode_all<E, Err>(&self, events: &[E]) -> Result<Vec<crate::NewEvent>, Error<Err>>
    where
        C: Codec<E>,
    {
        events
            .iter()
            .map(|event| {
                let mut new = self.codec.encode(event).map_err(|source| EncodeError {
                    source: Box::new(source),
                })?;
                new.metadata.merge_missing(&self.metadata);
                Ok(new)
            })
            .collect()
    }
}
