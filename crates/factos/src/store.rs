//! The store contract every backend implements, and the request and result
//! types it speaks.
//!
//! The contract comes in two flavours generated from one definition:
//! [`LocalEventStore`], whose futures need not be `Send` (a Cloudflare D1
//! backend running in wasm), and [`EventStore`], whose futures are `Send`
//! (everything on tokio). Implement whichever fits; every [`EventStore`] is
//! also a [`LocalEventStore`], and the dispatch flows accept either.

use std::collections::BTreeSet;

use xxhash_rust::xxh3::Xxh3;

use crate::error::{AppendConditionFailed, DuplicateEventId, InvalidAppend, RevisionMismatch, StoreError};
use crate::event::{NewEvent, Timestamp};
use crate::name::StreamId;
use crate::position::{AppendCondition, ExpectedRevision, Position, StreamRevision};
use crate::query::{PredicateValue, Query};
use crate::recorded::{Recorded, StoredEvent};

/// Which way a read walks the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Lowest position first.
    #[default]
    Forwards,
    /// Highest position first.
    Backwards,
}

/// How much of the matching events a read returns.
///
/// A read is a page: it ends at the [`limit`](ReadOptions::limit) of
/// events or at the [`max_bytes`](ReadOptions::max_bytes) budget, whichever
/// comes first, and [`ReadOptions::next_page`] says whether more may follow
/// and where.
///
/// ```
/// use factos::{Direction, Position, ReadOptions};
/// let newest_ten = ReadOptions::backwards().limit(10);
/// assert_eq!(newest_ten.direction, Direction::Backwards);
/// let page = ReadOptions::forwards().from(Position::new(100)).limit(50);
/// assert!(page.admits(Position::new(100)) && !page.admits(Position::new(99)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Start here, inclusive: forwards reads return positions `>= from`,
    /// backwards reads positions `<= from`. `None` starts at the respective
    /// end of the log.
    pub from: Option<Position>,
    /// Return at most this many events.
    pub limit: Option<usize>,
    /// Which way to walk.
    pub direction: Direction,
    /// End the page with the event at which the events' sizes
    /// ([`StoredEvent::byte_size`](Recorded::byte_size)) add up to this many bytes or more: a page
    /// holds at most this much plus one event (and always at least one
    /// event, so paging always moves on). `None`: no byte budget.
    pub max_bytes: Option<usize>,
}

impl ReadOptions {
    /// All matching events, oldest first.
    pub fn forwards() -> Self {
        Self::default()
    }

    /// All matching events, newest first.
    pub fn backwards() -> Self {
        Self {
            direction: Direction::Backwards,
            ..Self::default()
        }
    }

    /// Starts at `position`, inclusive.
    pub fn from(mut self, position: Position) -> Self {
        self.from = Some(position);
        self
    }

    /// Returns at most `limit` events.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Ends each page once its events' sizes add up to `bytes` (see
    /// [`ReadOptions::max_bytes`](field@ReadOptions::max_bytes)).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// The options of the page after `page` (what a read with `self`
    /// returned), or `None` when `page` ended because no more events
    /// matched: it ended neither at the limit nor at the byte budget.
    ///
    /// ```
    /// use factos::{AppendRequest, EventId, EventStore, EventType, MemoryStore, NewEvent, Query, ReadOptions, StreamId};
    /// # futures::executor::block_on(async {
    /// let store = MemoryStore::new();
    /// for n in 0..5u8 {
    ///     let event = NewEvent::new(EventId::random(), EventType::new("Noted")?, vec![n; 1_000]);
    ///     store.append(AppendRequest::new(StreamId::new("notes")?, vec![event])).await?;
    /// }
    /// // Pages of about 2 kB: every event once, in order.
    /// let mut options = Some(ReadOptions::forwards().max_bytes(2_000));
    /// let mut read = Vec::new();
    /// while let Some(page_options) = options {
    ///     let page = store.read(&Query::all(), page_options).await?;
    ///     options = page_options.next_page(&page);
    ///     read.extend(page);
    /// }
    /// assert_eq!(read.len(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn next_page(&self, page: &[StoredEvent]) -> Option<ReadOptions> {
        let last = page.last()?;
        let full = self.limit.is_some_and(|limit| page.len() >= limit);
        let spent = self
            .max_bytes
            .is_some_and(|budget| page.iter().map(StoredEvent::byte_size).sum::<usize>() >= budget);
        if !(full || spent) {
            return None;
        }
        let from = match self.direction {
            Direction::Forwards => last.position.value().checked_add(1)?,
            Direction::Backwards => last.position.value().checked_sub(1).filter(|p| *p > 0)?,
        };
        Some(self.from(Position::new(from)))
    }

    /// A tally for a backend filling one page under these options: feed it
    /// each event in read order; it says when the page is full.
    pub fn budget(&self) -> PageBudget {
        PageBudget {
            events_left: self.limit.unwrap_or(usize::MAX),
            // A budget of 0 is spent by the first event, which the page
            // still holds, as by any budget smaller than one event.
            bytes_left: self.max_bytes.map(|bytes| bytes.max(1)),
        }
    }

    /// Whether an event at `position` lies on the read's side of `from`.
    pub fn admits(&self, position: Position) -> bool {
        match (self.from, self.direction) {
            (None, _) => true,
            (Some(from), Direction::Forwards) => position >= from,
            (Some(from), Direction::Backwards) => position <= from,
        }
    }
}

/// What is left of one page's limit and byte budget while a backend fills
/// it ([`ReadOptions::budget`]).
#[derive(Debug, Clone, Copy)]
pub struct PageBudget {
    events_left: usize,
    bytes_left: Option<usize>,
}

impl PageBudget {
    /// Counts `event` into the page; `false` once the page is full (the
    /// event counted is the page's last).
    pub fn take(&mut self, event: &StoredEvent) -> bool {
        self.events_left = self.events_left.saturating_sub(1);
        if let Some(bytes) = &mut self.bytes_left {
            *bytes = bytes.saturating_sub(event.byte_size());
            if *bytes == 0 {
                return false;
            }
        }
        self.events_left > 0
    }

    /// Whether the page can take another event.
    pub fn has_room(&self) -> bool {
        self.events_left > 0 && self.bytes_left != Some(0)
    }
}

/// A batch of events to append atomically to one stream, with the checks it
/// must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRequest {
    /// The stream the events go to; they get consecutive revisions.
    pub stream: StreamId,
    /// The events, in order; at least one.
    pub events: Vec<NewEvent>,
    /// The stream-revision check.
    pub expected: ExpectedRevision,
    /// The DCB check, if any.
    pub condition: Option<AppendCondition>,
}

impl AppendRequest {
    /// An unconditional append of `events` to `stream`.
    pub fn new(stream: StreamId, events: Vec<NewEvent>) -> Self {
        Self {
            stream,
            events,
            expected: ExpectedRevision::Any,
            condition: None,
        }
    }

    /// Requires the stream to be at `expected`.
    pub fn expect(mut self, expected: ExpectedRevision) -> Self {
        self.expected = expected;
        self
    }

    /// Requires `condition` to hold.
    pub fn condition(mut self, condition: AppendCondition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// Checks what can be checked without a store: at least one event, no id
    /// twice, metadata every backend accepts ([`crate::Metadata::validate`]).
    ///
    /// # Errors
    ///
    /// [`InvalidAppend`] describing the first problem found.
    pub fn validate(&self) -> Result<(), InvalidAppend> {
        if self.events.is_empty() {
            return Err(InvalidAppend::EmptyBatch);
        }
        let mut seen = BTreeSet::new();
        for event in &self.events {
            if !seen.insert(event.id) {
                return Err(InvalidAppend::RepeatedId(event.id));
            }
            event
                .metadata
                .validate()
                .map_err(|source| InvalidAppend::InvalidMetadata { id: event.id, source })?;
        }
        Ok(())
    }

    /// A stable 64-bit hash of everything in the request: stream, events
    /// (ids and content), expected revision and condition.
    ///
    /// Backends store it with each event so that a re-sent batch can be
    /// recognised as the same request (see [`AppendRequest::replayed`]). It
    /// is stable across processes, platforms and releases of this crate's
    /// major version.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fingerprint(Xxh3::new());
        h.text(self.stream.as_str());
        h.number(self.events.len() as u64);
        for event in &self.events {
            h.bytes(event.id.as_bytes());
            h.text(event.event_type.as_str());
            h.number(u64::from(event.version));
            h.number(event.tags.len() as u64);
            for tag in &event.tags {
                h.text(tag.as_str());
            }
            h.number(event.metadata.iter().count() as u64);
            for (key, value) in event.metadata.iter() {
                h.text(key);
                h.text(value);
            }
            h.bytes(&event.data);
        }
        match self.expected {
            ExpectedRevision::Any => h.number(0),
            ExpectedRevision::NoStream => h.number(1),
            ExpectedRevision::StreamExists => h.number(2),
            ExpectedRevision::Exact(revision) => {
                h.number(3);
                h.number(revision.value());
            }
        }
        match &self.condition {
            None => h.number(0),
            Some(condition) => {
                h.number(1);
                h.number(condition.after.map_or(0, |p| p.value()));
                h.number(condition.query.items().len() as u64);
                for item in condition.query.items() {
                    h.number(item.event_types().len() as u64);
                    for event_type in item.event_types() {
                        h.text(event_type.as_str());
                    }
                    h.number(item.required_tags().len() as u64);
                    for tag in item.required_tags() {
                        h.text(tag.as_str());
                    }
                    match item.predicate() {
                        None => h.number(0),
                        Some(predicate) => {
                            h.number(1);
                            h.text(predicate.sql());
                            h.number(predicate.params().len() as u64);
                            for param in predicate.params() {
                                match param {
                                    PredicateValue::Text(text) => {
                                        h.number(0);
                                        h.text(text);
                                    }
                                    PredicateValue::Integer(integer) => {
                                        h.number(1);
                                        h.bytes(&integer.to_le_bytes());
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h.0.digest()
    }

    /// Checks the expected revision against the stream's last revision
    /// `current`: the third check of every append, after validity and taken
    /// ids.
    ///
    /// # Errors
    ///
    /// [`RevisionMismatch`] when the expectation does not hold.
    pub fn check_revision(&self, current: Option<StreamRevision>) -> Result<(), RevisionMismatch> {
        if self.expected.is_satisfied_by(current) {
            return Ok(());
        }
        Err(RevisionMismatch {
            stream: self.stream.clone(),
            expected: self.expected,
            actual: current,
        })
    }

    /// Checks the condition given the first event matching its query after
    /// its position (`None` when there is none): the last check of every
    /// append.
    ///
    /// # Errors
    ///
    /// [`AppendConditionFailed`] naming that event.
    pub fn check_condition(&self, first_match_after: Option<Position>) -> Result<(), AppendConditionFailed> {
        match (&self.condition, first_match_after) {
            (Some(condition), Some(conflicting)) => Err(AppendConditionFailed {
                condition: condition.clone(),
                conflicting,
            }),
            _ => Ok(()),
        }
    }

    /// The records of this batch once written at `positions` (one per
    /// event, increasing) after the stream's last revision `current`, at
    /// `recorded_at`.
    pub fn into_committed(
        self,
        positions: impl IntoIterator<Item = Position>,
        current: Option<StreamRevision>,
        recorded_at: Timestamp,
    ) -> Committed {
        let first = current.map_or(StreamRevision::FIRST, |r| r.next());
        let stream = self.stream;
        let records: Vec<StoredEvent> = self
            .events
            .into_iter()
            .zip(positions)
            .zip(0u64..)
            .map(|((event, position), offset)| Recorded {
                position,
                id: event.id,
                stream: stream.clone(),
                revision: StreamRevision::new(first.value() + offset),
                event_type: event.event_type,
                version: event.version,
                tags: event.tags,
                metadata: event.metadata,
                recorded_at,
                event: event.data,
            })
            .collect();
        let revision = records.last().map_or(first, |r| r.revision);
        Committed { records, revision }
    }

    /// Resolves an append whose ids are already taken.
    ///
    /// `existing` holds the committed events that carry any of this
    /// request's ids, each with the fingerprint stored with it. If they are
    /// exactly this request, committed earlier (a retry after a lost
    /// acknowledgement), the original records are returned. Otherwise the
    /// append is a [`DuplicateEventId`] error.
    ///
    /// Every backend calls this, so the rule is the same everywhere.
    ///
    /// # Errors
    ///
    /// [`StoreError::DuplicateEventId`] naming the first taken id.
    pub fn replayed(&self, mut existing: Vec<(StoredEvent, u64)>) -> Result<Committed, StoreError> {
        existing.sort_by_key(|(record, _)| record.position);
        let fingerprint = self.fingerprint();
        let identical =
            existing.len() == self.events.len()
                && existing.iter().zip(&self.events).zip(0u64..).all(
                    |(((record, stored_fingerprint), event), offset)| {
                        *stored_fingerprint == fingerprint
                            && record.id == event.id
                            && record.stream == self.stream
                            && record.revision.value() == existing_first_revision(&existing) + offset
                    },
                );
        if identical {
            let records: Vec<StoredEvent> = existing.into_iter().map(|(record, _)| record).collect();
            let revision = records.last().map(|r| r.revision).unwrap_or(StreamRevision::FIRST);
            return Ok(Committed { records, revision });
        }
        let taken = self
            .events
            .iter()
            .find_map(|event| existing.iter().find(|(record, _)| record.id == event.id))
            .or(existing.first());
        match taken {
            Some((record, _)) => Err(DuplicateEventId {
                id: record.id,
                existing: record.position,
            }
            .into()),
            None => Err(StoreError::backend(
                "append reported a duplicate event id but no event holds any of the batch's ids",
            )),
        }
    }
}

fn existing_first_revision(existing: &[(StoredEvent, u64)]) -> u64 {
    existing.first().map_or(0, |(record, _)| record.revision.value())
}

struct Fingerprint(Xxh3);

impl Fingerprint {
    fn number(&mut self, n: u64) {
        self.0.update(&n.to_le_bytes());
    }
    fn bytes(&mut self, bytes: &[u8]) {
        self.number(bytes.len() as u64);
        self.0.update(bytes);
    }
    fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }
}

/// The result of a successful append: the committed records, as a later read
/// would return them, and the stream's new revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The appended events with their positions, revisions and times.
    pub records: Vec<StoredEvent>,
    /// The revision of the stream's last event after the append.
    pub revision: StreamRevision,
}

/// The part of the log a decision depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DecisionScope {
    /// The events matching a query (DCB); the decision's append carries
    /// `FailIfEventsMatch(query, last position read)`.
    Query(Query),
    /// One stream; the decision's append expects the revision read.
    Stream(StreamId),
}

/// The store contract. See the [module docs](self) for the two flavours.
///
/// Reads return events in the requested direction; appends are atomic (all
/// events or none) and check the expected revision and the append condition
/// in the same transaction that writes.
///
/// A decision (read, decide, append) goes through
/// [`begin_decision`](LocalEventStore::begin_decision) and
/// [`commit_decision`](LocalEventStore::commit_decision). A store with
/// transactions holds one open between the two so the decision cannot be
/// invalidated; an optimistic store reads without holding anything and lets
/// the append's condition catch concurrent writers, and the dispatch flow
/// retries.
#[trait_variant::make(EventStore: Send)]
pub trait LocalEventStore {
    /// What a store keeps between reading for a decision and committing it:
    /// an open transaction, or nothing for an optimistic store. Dropping it
    /// abandons the decision and writes nothing.
    type Transaction;

    /// The events matching `query`, in position order as `options` say.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be read.
    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError>;

    /// The events of `stream` from revision `from` on, in revision order.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be read.
    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError>;

    /// At most `limit` events of `stream` from revision `from` on, in
    /// revision order: one page of
    /// [`read_stream`](LocalEventStore::read_stream). The next page starts
    /// at the last event's revision + 1; fewer than `limit` events means
    /// the stream ends there.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be read.
    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Appends `request.events` to `request.stream` atomically if the
    /// expected revision and the condition hold.
    ///
    /// Re-sending a batch that was already committed (same ids, stream,
    /// content, expectation and condition) returns the original records.
    ///
    /// # Errors
    ///
    /// [`StoreError::ConditionFailed`], [`StoreError::RevisionMismatch`],
    /// [`StoreError::DuplicateEventId`], [`StoreError::InvalidAppend`],
    /// [`StoreError::UnsupportedCondition`]; in all of them nothing was
    /// written.
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError>;

    /// Reads the events of `scope` for a decision, in position order, and
    /// returns whatever must be kept until the decision is committed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be read.
    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(Self::Transaction, Vec<StoredEvent>), StoreError>;

    /// Ends a decision that appends nothing (the command was rejected, the
    /// decider produced no events, an event could not be decoded or
    /// encoded), releasing what [`begin_decision`] holds.
    ///
    /// Dropping the transaction must also be safe (a cancelled dispatch
    /// does); this is the orderly way, which lets a store keep its
    /// connection: a rejection is the normal path of a capacity rule under
    /// load. It cannot fail: a store that cannot end the decision cleanly
    /// discards whatever held it.
    ///
    /// [`begin_decision`]: LocalEventStore::begin_decision
    async fn abandon_decision(&self, transaction: Self::Transaction);

    /// Appends the decision's events. `request` carries the condition or
    /// expected revision derived from what [`begin_decision`] read.
    ///
    /// [`begin_decision`]: LocalEventStore::begin_decision
    ///
    /// # Errors
    ///
    /// As [`append`](LocalEventStore::append).
    async fn commit_decision(
        &self,
        transaction: Self::Transaction,
        request: AppendRequest,
    ) -> Result<Committed, StoreError>;
}

/// Every bound generic code needs to hand a store to spawned tasks (on
/// tokio, say): an [`EventStore`] whose decisions are `Send`, cheap to
/// clone (the backends keep a pool or an `Arc` inside), shareable and
/// `'static`. Written once, so a function generic over "any store I can
/// spawn with" takes `S: SharedStore`. Implemented for every such store.
///
/// ```
/// use factos::{decider, Dispatcher, JsonCodec, JsonEvent, MemoryStore, Query, QueryItem, SharedStore, StreamId, Tag};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// struct Sold { seat: u32 }
/// impl JsonEvent for Sold {
///     fn event_type(&self) -> &'static str { "Sold" }
///     fn tags(&self) -> Vec<String> { vec![format!("seat:{}", self.seat)] }
/// }
///
/// /// Sells `seats` concurrently: one task, one store clone, one dispatcher each.
/// async fn sell<S: SharedStore>(store: S, seats: u32) -> usize {
///     let tasks: Vec<_> = (0..seats)
///         .map(|seat| {
///             let store = store.clone();
///             tokio::spawn(async move {
///                 let sell = decider(false, |seat: &u32, sold: &bool| {
///                     if *sold { Err(String::from("taken")) } else { Ok(vec![Sold { seat: *seat }]) }
///                 }, |_, _: &Sold| true);
///                 let query = Query::from(QueryItem::tags([Tag::new(format!("seat:{seat}")).ok()?]));
///                 let stream = StreamId::new(format!("seat-{seat}")).ok()?;
///                 Dispatcher::new(&store, JsonCodec::new()).dispatch_context(&sell, &seat, &query, &stream).await.ok()
///             })
///         })
///         .collect();
///     let mut sold = 0;
///     for task in tasks {
///         sold += task.await.ok().flatten().map_or(0, |committed| committed.len());
///     }
///     sold
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// assert_eq!(sell(MemoryStore::new(), 8).await, 8);
/// # });
/// ```
pub trait SharedStore: EventStore<Transaction: Send> + Clone + Send + Sync + 'static {}

impl<S> SharedStore for S where S: EventStore<Transaction: Send> + Clone + Send + Sync + 'static {}

/// Records on the current span how a store call ended: `rows` (records read
/// or written) on success; `error` and, where the backend has one, `code`
/// (a SQLSTATE, say) on failure. `code` is asked about the backend's own
/// error, the source of a [`StoreError::Backend`] or
/// [`StoreError::Contention`].
///
/// Backends open a `debug` span per call with those fields empty and call
/// this at its end, so every backend's calls look the same in a log. It
/// costs nothing when no subscriber listens at `debug`.
pub fn record_outcome<T>(
    result: &Result<T, StoreError>,
    rows: impl FnOnce(&T) -> usize,
    code: impl FnOnce(&(dyn std::error::Error + Send + Sync + 'static)) -> Option<String>,
) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    match result {
        Ok(value) => {
            span.record("rows", rows(value));
        }
        Err(error) => {
            span.record("error", tracing::field::display(error));
            if let StoreError::Backend(source) | StoreError::Contention(source) = error
                && let Some(code) = code(source.as_ref())
            {
                span.record("code", code);
            }
        }
    }
}
