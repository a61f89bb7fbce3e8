//! Following the log: cursors, the follow contract every backend
//! implements, catch-up subscriptions, and durable checkpoints.
//!
//! A follower remembers a [`Cursor`] and asks "what came after it?". On a
//! store where positions are handed out before commit (PostgreSQL), a
//! position can become visible after a higher one was already read, so a
//! tailer that remembered the higher one would skip it forever. Every
//! backend's [`LocalFollow::read_after`] therefore returns only events that
//! nothing can precede any more, in the backend's *delivery order*, and the
//! cursor says where in that order a follower stands. Where commit order is
//! position order (SQLite, the memory store) the cursor is the position;
//! elsewhere it carries more (see the backend's docs).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

use crate::codec::Codec;
use crate::error::{DecodeError, StoreError};
use crate::event::EventId;
use crate::position::Position;
use crate::query::Query;
use crate::recorded::{Recorded, StoredEvent};

/// Where a follower of the log stands: after the event it last handled.
///
/// Cursors are totally ordered in the backend's delivery order and
/// serialisable (`Display`/`FromStr` as `commit:position`, and serde as that
/// string), so a checkpoint can be stored anywhere. Treat them as opaque:
/// `commit` is 0 where delivery order is position order, and a commit-order
/// key where it is not.
///
/// ```
/// use factos::{Cursor, Position};
/// let cursor = Cursor::new(0, Position::new(42));
/// assert_eq!(cursor.to_string(), "0:42");
/// assert_eq!("0:42".parse::<Cursor>()?, cursor);
/// # Ok::<(), factos::InvalidCursor>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    commit: u64,
    position: Position,
}

impl Cursor {
    /// The cursor after the event at `position`, with the backend's commit
    /// key `commit`.
    pub const fn new(commit: u64, position: Position) -> Self {
        Self { commit, position }
    }

    /// The backend's commit-order key (0 where delivery order is position
    /// order).
    pub const fn commit(&self) -> u64 {
        self.commit
    }

    /// The position of the event this cursor stands after.
    pub const fn position(&self) -> Position {
        self.position
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.commit, self.position)
    }
}

/// A string that is not a [`Cursor`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid cursor {0:?}: expected `commit:position`, two unsigned integers")]
pub struct InvalidCursor(pub String);

impl FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(text: &str) -> Result<Self, InvalidCursor> {
        let invalid = || InvalidCursor(text.to_owned());
        let (commit, position) = text.split_once(':').ok_or_else(invalid)?;
        Ok(Cursor {
            commit: commit.parse().map_err(|_| invalid())?,
            position: Position::new(position.parse().map_err(|_| invalid())?),
        })
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An event handed to a follower, with the cursor that stands after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered<E = Vec<u8>> {
    /// Where a follower that handled this event resumes.
    pub cursor: Cursor,
    /// The event.
    pub record: Recorded<E>,
}

/// What one [`LocalFollow::read_after`] call found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowBatch {
    /// The matching events, in delivery order.
    pub events: Vec<Delivered>,
    /// The cursor after the last event examined, matching or not: where the
    /// next read starts. `None` when nothing new was safe to read.
    pub end: Option<Cursor>,
    /// How many events were examined (at most the read's limit; fewer means
    /// the read reached the end of what was safe to read).
    pub examined: usize,
}

/// The follow contract: reading the log in delivery order without ever
/// skipping, and waiting for commits. See the [module docs](self).
#[trait_variant::make(Follow: Send)]
pub trait LocalFollow {
    /// Examines up to `limit` events after `after` (from the start when
    /// `None`) in delivery order and returns those matching `query`.
    ///
    /// Only events that no later commit can precede are examined, so a
    /// follower that resumes from [`FollowBatch::end`] never skips one and
    /// never sees one twice.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be read.
    async fn read_after(&self, query: &Query, after: Option<Cursor>, limit: usize) -> Result<FollowBatch, StoreError>;

    /// A number that changes whenever this store learns of a commit.
    fn commit_count(&self) -> u64;

    /// A mark of "now": once [`settled`](LocalFollow::settled) says so for
    /// it, `read_after` can return every event committed before the mark
    /// was taken. Stores whose readable log is always everything committed
    /// return 0.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be asked.
    async fn commit_mark(&self) -> Result<u64, StoreError>;

    /// Whether every event committed before `mark` was taken can be read
    /// (on PostgreSQL: once every transaction running at the mark ended).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be asked.
    async fn settled(&self, mark: u64) -> Result<bool, StoreError>;

    /// Returns once [`commit_count`](LocalFollow::commit_count) differs from
    /// `seen`, or after the store's polling interval (commits by other
    /// processes, and stores that cannot be notified, are found by polling).
    async fn wait_for_commit(&self, seen: u64);
}

/// A catch-up subscription: every event matching a query after a cursor,
/// then new ones as they commit, in delivery order, never skipping one.
///
/// It pulls one batch at a time, so a slow consumer makes the store do less,
/// not buffer more. Keep [`Subscription::cursor`] (or each delivered
/// event's cursor) as the checkpoint to resume from.
///
/// ```
/// use factos::{AppendRequest, EventId, EventStore, EventType, MemoryStore, NewEvent, Query, StreamId, Subscription};
///
/// # futures::executor::block_on(async {
/// let store = MemoryStore::new();
/// let greeting = NewEvent::new(EventId::random(), EventType::new("Greeted")?, b"hi".to_vec());
/// store.append(AppendRequest::new(StreamId::new("greetings")?, vec![greeting])).await?;
///
/// let mut subscription = Subscription::new(&store, Query::all(), None);
/// let batch = subscription.next_batch().await?;
/// assert_eq!(batch[0].record.event, b"hi");
/// assert_eq!(subscription.cursor(), Some(batch[0].cursor));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Subscription<'s, S> {
    store: &'s S,
    query: Query,
    cursor: Option<Cursor>,
    batch_size: usize,
    /// Set when the last read reached the end of what was safe to read:
    /// the commit count taken before it. The next batch waits for a commit
    /// after that count first, so a follower at the tip reads once per
    /// wake-up instead of once per commit.
    at_tip: Option<u64>,
}

/// How many events a subscription examines per read by default.
pub const DEFAULT_BATCH_SIZE: usize = 256;

impl<'s, S: LocalFollow> Subscription<'s, S> {
    /// Follows `query` on `store` from after `after` (from the start when
    /// `None`).
    pub fn new(store: &'s S, query: Query, after: Option<Cursor>) -> Self {
        Self {
            store,
            query,
            cursor: after,
            batch_size: DEFAULT_BATCH_SIZE,
            at_tip: None,
        }
    }

    /// Examines at most `size` events per read (at least 1).
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// Where the subscription stands: after everything it returned and
    /// every non-matching event it examined.
    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }

    /// The next matching events, waiting for commits when there are none.
    ///
    /// Cancel-safe: the cursor moves only when a read returns, and a read
    /// that returns events returns them at once, so dropping the future
    /// (in a `select!`, say) loses nothing.
    ///
    /// # Errors
    ///
    /// The store's error; the cursor stays where it was, so calling again
    /// retries.
    pub async fn next_batch(&mut self) -> Result<Vec<Delivered>, StoreError> {
        if let Some(seen) = self.at_tip.take() {
            self.store.wait_for_commit(seen).await;
        }
        loop {
            if let Some(batch) = self.poll_batch().await? {
                return Ok(batch);
            }
        }
    }

    /// One read: `Some` with matching events, or `None` after waiting for a
    /// commit (or having skipped only non-matching events).
    async fn poll_batch(&mut self) -> Result<Option<Vec<Delivered>>, StoreError> {
        let seen = self.store.commit_count();
        match self.read_window().await? {
            Some((events, _, examined)) => {
                if examined < self.batch_size {
                    self.at_tip = Some(seen);
                }
                Ok((!events.is_empty()).then_some(events))
            }
            None => {
                self.store.wait_for_commit(seen).await;
                Ok(None)
            }
        }
    }

    /// One read without waiting: the matching events among the next ones
    /// examined and the cursor after them (the events may be none when
    /// only non-matching ones were examined); `None` when nothing new is
    /// safe to read.
    ///
    /// # Errors
    ///
    /// The store's error; the cursor stays where it was.
    pub async fn try_next(&mut self) -> Result<Option<(Vec<Delivered>, Cursor)>, StoreError> {
        Ok(self.read_window().await?.map(|(events, end, _)| (events, end)))
    }

    /// One read: the matching events, the cursor after the window and how
    /// many events the window held (a full window means there may be more
    /// right away).
    async fn read_window(&mut self) -> Result<Option<(Vec<Delivered>, Cursor, usize)>, StoreError> {
        let batch = self.store.read_after(&self.query, self.cursor, self.batch_size).await?;
        Ok(batch.end.map(|end| {
            self.cursor = Some(end);
            (batch.events, end, batch.examined)
        }))
    }

    /// Every matching event committed before this call, then returns:
    /// for catching up and for tests. Where the store holds events back
    /// (PostgreSQL, until older transactions end) it waits for the
    /// transactions that were running at the call, and no longer. Empty
    /// when the subscription was at the end.
    ///
    /// # Errors
    ///
    /// The store's error; the cursor stays after the last event returned
    /// by an earlier call.
    pub async fn catch_up(&mut self) -> Result<Vec<Delivered>, StoreError> {
        let mut events = Vec::new();
        self.catch_up_each(|batch, _| {
            events.extend(batch);
            std::future::ready(Ok::<_, StoreError>(()))
        })
        .await?;
        Ok(events)
    }

    /// As [`catch_up`](Subscription::catch_up), handing each read's
    /// matching events and the cursor after them to `each` as they come
    /// (possibly none, when the read examined only non-matching events),
    /// so a long log is never held in memory.
    ///
    /// # Errors
    ///
    /// The store's error or `each`'s; the cursor stays after the last
    /// batch read, whether `each` handled it or not.
    pub async fn catch_up_each<E, F, Fut>(&mut self, mut each: F) -> Result<(), E>
    where
        E: From<StoreError>,
        F: FnMut(Vec<Delivered>, Cursor) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let mark = self.store.commit_mark().await?;
        loop {
            let seen = self.store.commit_count();
            while let Some((batch, end)) = self.try_next().await? {
                each(batch, end).await?;
            }
            if self.store.settled(mark).await? {
                while let Some((batch, end)) = self.try_next().await? {
                    each(batch, end).await?;
                }
                return Ok(());
            }
            self.store.wait_for_commit(seen).await;
        }
    }

    /// The subscription as a stream of single events; it never ends by
    /// itself. An error ends a batch; polling again retries from the cursor.
    pub fn into_stream(self) -> impl futures_core::Stream<Item = Result<Delivered, StoreError>> + 's {
        futures_util::stream::unfold(
            (self, std::collections::VecDeque::new()),
            |(mut this, mut queue)| async move {
                loop {
                    if let Some(next) = queue.pop_front() {
                        return Some((Ok(next), (this, queue)));
                    }
                    match this.next_batch().await {
                        Ok(batch) => queue.extend(batch),
                        Err(error) => return Some((Err(error), (this, queue))),
                    }
                }
            },
        )
    }
}

/// A counter of commits that followers can wait on: what backends use to
/// implement [`LocalFollow::commit_count`] and
/// [`LocalFollow::wait_for_commit`] for commits they see themselves.
///
/// Runtime-free: waiting registers a listener before it checks the count,
/// so a commit between the check and the wait is never missed.
#[derive(Debug, Default)]
pub struct CommitSignal {
    count: AtomicU64,
    event: event_listener::Event,
}

impl CommitSignal {
    /// No commits yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a commit and wakes every waiter.
    pub fn bump(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    /// How many commits were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Returns once the count differs from `seen`.
    pub async fn changed_since(&self, seen: u64) {
        loop {
            if self.count() != seen {
                return;
            }
            let listener = self.event.listen();
            if self.count() != seen {
                return;
            }
            listener.await;
        }
    }
}

/// The stable identity of one effect: the event that called for it and the
/// effect's index among that event's effects. An effect handler that sees
/// a key again is seeing a redelivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EffectKey {
    /// The event's id.
    pub event: EventId,
    /// The effect's index in what the reactor returned for the event.
    pub index: u32,
}

impl fmt::Display for EffectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.event, self.index)
    }
}

/// An effect that kept failing and was set aside so that the runner could
/// go on: visible with [`LocalCheckpoints::parked_effects`], and
/// re-creatable from its event (a reactor is a pure function), which is
/// what a runner does when an operator asks for it again
/// ([`LocalCheckpoints::retry_parked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEffect {
    /// The runner that parked it.
    pub runner: String,
    /// The effect's identity.
    pub key: EffectKey,
    /// Where its event stands in the store's delivery order: the cursor
    /// delivered with it. A runner finds the event again right after
    /// `Cursor::new(cursor.commit(), cursor.position() - 1)`.
    pub cursor: Cursor,
    /// How many times the handler was tried, over every hand-over.
    pub attempts: u32,
    /// The handler's last error, as text.
    pub error: String,
    /// Whether an operator asked for it to be handed over again: its runner
    /// does so the next time it looks, then removes it (accepted) or parks
    /// it again with the new error, which clears this.
    pub retry_requested: bool,
}

impl ParkedEffect {
    /// The position of the event that called for it.
    pub const fn position(&self) -> Position {
        self.cursor.position()
    }
}

/// Durable checkpoints and parked effects, for runners that follow the log
/// outside a transaction of their own (effect runners).
#[trait_variant::make(Checkpoints: Send)]
pub trait LocalCheckpoints {
    /// The cursor stored under `name`, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when it cannot be read.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>, StoreError>;

    /// Stores `cursor` under `name`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when it cannot be written.
    async fn save_checkpoint(&self, name: &str, cursor: Cursor) -> Result<(), StoreError>;

    /// Records an effect that kept failing. Parking the same runner's key
    /// again replaces the record (its attempts, error and cursor) and
    /// withdraws a retry request.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when it cannot be written.
    async fn park_effect(&self, parked: ParkedEffect) -> Result<(), StoreError>;

    /// The effects `runner` parked, in the order they were (last) parked.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when they cannot be read.
    async fn parked_effects(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError>;

    /// Asks `runner` to hand its parked effect `key` over again (an
    /// operator's decision): sets [`ParkedEffect::retry_requested`].
    /// `false` when `runner` has no such parked effect. A request made while
    /// the runner is already handing that effect over again is answered by
    /// that hand-over.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be written.
    async fn retry_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError>;

    /// Removes the effect `key` that `runner` parked: it was handed over on
    /// a retry, or an operator decided it is not to be. `false` when there
    /// was none.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be written.
    async fn discard_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError>;
}

/// Decodes delivered events with `codec`, stopping at the first that does
/// not decode: what every runner that hands typed events to application
/// code does.
///
/// # Errors
///
/// [`DecodeError`] naming the event.
pub fn decode_delivered<E, C: Codec<E>>(
    codec: &C,
    delivered: Vec<Delivered>,
) -> Result<Vec<Delivered<E>>, DecodeError> {
    delivered
        .into_iter()
        .map(|Delivered { cursor, record }| {
            Ok(Delivered {
                cursor,
                record: decode(codec, record)?,
            })
        })
        .collect()
}

/// Decodes one stored event with `codec`.
///
/// # Errors
///
/// [`DecodeError`] naming the event, with the codec's error as its source.
pub fn decode<E, C: Codec<E>>(codec: &C, record: StoredEvent) -> Result<Recorded<E>, DecodeError> {
    match codec.decode(&record) {
        Ok(event) => Ok(record.map(|_| event)),
        Err(source) => Err(DecodeError {
            position: record.position,
            event_type: record.event_type,
            version: record.version,
            source: Box::new(source),
        }),
    }
}

/// `stored`, each with the cursor after it (commit key 0): what a backend
/// whose delivery order is position order delivers.
pub fn deliver_in_position_order(stored: Vec<StoredEvent>) -> Vec<Delivered> {
    stored
        .into_iter()
        .map(|record| Delivered {
            cursor: Cursor::new(0, record.position),
            record,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_order_by_commit_then_position_and_round_trip_as_text() {
        let a = Cursor::new(1, Position::new(9));
        let b = Cursor::new(2, Position::new(3));
        assert!(a < b);
        for cursor in [a, b, Cursor::new(u64::MAX, Position::new(u64::MAX))] {
            assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        }
        for bad in ["", "1", "1:", ":2", "a:1", "1:2:3", "-1:2"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_commit_signal_wakes_a_waiter_registered_before_the_commit() {
        let signal = std::sync::Arc::new(CommitSignal::new());
        let seen = signal.count();
        let waker = signal.clone();
        let bumper = std::thread::spawn(move || waker.bump());
        futures::executor::block_on(signal.changed_since(seen));
        assert_eq!(signal.count(), seen + 1);
        let _ = bumper.join();
    }
}
