//! Operating a store: its schema version, what it holds, copying records in
//! with their positions, and checking that its tables agree with each other.
//!
//! The [`Admin`] contract is what tools (the `factos` command-line tool)
//! need beyond the [store contract](crate::store): backends implement the
//! few primitives that need their own SQL, and the rules live here once —
//! what an import may write ([`ImportCheck`]) and what an intact store
//! looks like ([`IntegrityCheck`]).
//!
//! ```
//! use factos::admin::IntegrityCheck;
//! use factos::{EventId, EventType, Position, Recorded, StreamId, StreamRevision, Timestamp};
//!
//! let record = |position: u64, revision: u64| Recorded {
//!     position: Position::new(position),
//!     id: EventId::from_bytes([position as u8; 16]),
//!     stream: StreamId::new("s").unwrap(),
//!     revision: StreamRevision::new(revision),
//!     event_type: EventType::new("Noted").unwrap(),
//!     version: 1,
//!     tags: Default::default(),
//!     metadata: Default::default(),
//!     recorded_at: Timestamp::UNIX_EPOCH,
//!     event: Vec::new(),
//! };
//! let mut check = IntegrityCheck::new();
//! // Revision 1 is missing from stream `s`.
//! let problems = check.page(&[record(1, 0), record(2, 2)], &[]);
//! assert_eq!(problems.len(), 1);
//! assert_eq!(problems[0].position(), Position::new(2));
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::error::StoreError;
use crate::event::{EventId, Timestamp};
use crate::name::StreamId;
use crate::position::{Position, StreamRevision};
use crate::recorded::StoredEvent;

/// The schema a store found, and the one this build writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    /// The version recorded in the database; 0 when it has no schema yet.
    pub found: i64,
    /// The version this backend writes ([`Admin::migrate`] brings a store
    /// to it).
    pub supported: i64,
}

impl SchemaVersion {
    /// Whether the store is at exactly the version this build writes.
    pub fn is_current(&self) -> bool {
        self.found == self.supported
    }
}

/// What a store holds, for a human looking at it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// How many events.
    pub events: u64,
    /// How many streams.
    pub streams: u64,
    /// Every event type with its number of events, most frequent first.
    pub event_types: Vec<(String, u64)>,
    /// The most used tags with their number of events, most used first.
    pub top_tags: Vec<(String, u64)>,
    /// The first event's position and time.
    pub first: Option<(Position, Timestamp)>,
    /// The last event's position and time.
    pub last: Option<(Position, Timestamp)>,
    /// Bytes on disk, where the backend can tell.
    pub size_bytes: Option<u64>,
}

/// One row of a store's tag index: the event at `position` carries `tag`
/// and has type `event_type`. Read raw, so that a damaged index can be
/// reported rather than refused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagRow {
    /// The event's position.
    pub position: Position,
    /// The tag, as stored.
    pub tag: String,
    /// The event type, as stored.
    pub event_type: String,
}

/// Why an import refused a batch; nothing of the batch was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportRefused {
    /// A record's position is not after the store's last position (or the
    /// previous record's).
    #[error("the record at position {position} is not after the store's last position {last}")]
    PositionNotAfter {
        /// The record's position.
        position: Position,
        /// The last position already taken.
        last: Position,
    },
    /// A record's revision does not continue its stream.
    #[error("the record at position {position} has revision {found} of stream {stream}, which continues at {expected}")]
    RevisionGap {
        /// The record's position.
        position: Position,
        /// Its stream.
        stream: StreamId,
        /// The revision the stream continues at.
        expected: StreamRevision,
        /// The record's revision.
        found: StreamRevision,
    },
    /// A record's id is already taken.
    #[error("the record at position {position} has id {id}, already used at position {existing}")]
    DuplicateId {
        /// The record's position.
        position: Position,
        /// The id.
        id: EventId,
        /// Where the event holding it sits.
        existing: Position,
    },
}

/// The import rules every backend applies, in the transaction that writes:
/// positions strictly increasing after the store's last one, each stream's
/// revisions continuing its head, ids not taken (the backend checks those
/// against its index; repeats inside a batch are caught here).
#[derive(Debug)]
pub struct ImportCheck {
    last: Option<Position>,
    heads: HashMap<StreamId, Option<StreamRevision>>,
    ids: HashMap<EventId, Position>,
}

impl ImportCheck {
    /// Starts a batch on a store whose last position is `last`.
    pub fn new(last: Option<Position>) -> Self {
        Self {
            last,
            heads: HashMap::new(),
            ids: HashMap::new(),
        }
    }

    /// Checks the next record of the batch; `stream_head` asks the store for
    /// a stream's last revision (called once per stream and batch).
    ///
    /// # Errors
    ///
    /// The outer error is the store's; the inner one the refusal.
    pub fn record<E>(
        &mut self,
        record: &StoredEvent,
        stream_head: impl FnOnce(&StreamId) -> Result<Option<StreamRevision>, E>,
    ) -> Result<Result<(), ImportRefused>, E> {
        if let Some(last) = self.last
            && record.position <= last
        {
            return Ok(Err(ImportRefused::PositionNotAfter {
                position: record.position,
                last,
            }));
        }
        if let Some(&existing) = self.ids.get(&record.id) {
            return Ok(Err(ImportRefused::DuplicateId {
                position: record.position,
                id: record.id,
                existing,
            }));
        }
        let head = match self.heads.get(&record.stream) {
            Some(head) => *head,
            None => stream_head(&record.stream)?,
        };
        let expected = head.map_or(StreamRevision::FIRST, |r| r.next());
        if record.revision != expected {
            return Ok(Err(ImportRefused::RevisionGap {
                position: record.position,
                stream: record.stream.clone(),
                expected,
                found: record.revision,
            }));
        }
        self.heads.insert(record.stream.clone(), Some(record.revision));
        self.ids.insert(record.id, record.position);
        self.last = Some(record.position);
        Ok(Ok(()))
    }
}

/// Something an integrity check found wrong, at the position it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Positions do not increase strictly in log order.
    PositionNotIncreasing {
        /// The event's position.
        position: Position,
        /// The position before it.
        previous: Position,
    },
    /// A stream's revisions skip or repeat one, or do not start at 0.
    RevisionGap {
        /// The event's position.
        position: Position,
        /// Its stream.
        stream: StreamId,
        /// The revision that should come next.
        expected: StreamRevision,
        /// The event's revision.
        found: StreamRevision,
    },
    /// Two events share an id.
    DuplicateId {
        /// The later event's position.
        position: Position,
        /// The id.
        id: EventId,
        /// The earlier event's position.
        first: Position,
    },
    /// An event's tag has no row in the tag index: reads by that tag miss it.
    MissingTagRow {
        /// The event's position.
        position: Position,
        /// The tag.
        tag: String,
    },
    /// A tag row names a tag its event does not carry, or an event that
    /// does not exist.
    StrayTagRow {
        /// The position the row names.
        position: Position,
        /// The row's tag.
        tag: String,
    },
    /// A tag row's event type differs from its event's.
    TagRowTypeMismatch {
        /// The event's position.
        position: Position,
        /// The row's tag.
        tag: String,
        /// The row's event type.
        row: String,
        /// The event's type.
        event: String,
    },
}

impl Problem {
    /// The position the problem concerns.
    pub fn position(&self) -> Position {
        match self {
            Problem::PositionNotIncreasing { position, .. }
            | Problem::RevisionGap { position, .. }
            | Problem::DuplicateId { position, .. }
            | Problem::MissingTagRow { position, .. }
            | Problem::StrayTagRow { position, .. }
            | Problem::TagRowTypeMismatch { position, .. } => *position,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::PositionNotIncreasing { position, previous } => {
                write!(f, "position {position} follows position {previous}")
            }
            Problem::RevisionGap {
                stream,
                expected,
                found,
                ..
            } => write!(f, "stream {stream} continues at revision {expected}, found {found}"),
            Problem::DuplicateId { id, first, .. } => write!(f, "id {id} is also used at position {first}"),
            Problem::MissingTagRow { tag, .. } => write!(f, "tag {tag:?} has no row in the tag index"),
            Problem::StrayTagRow { tag, .. } => {
                write!(f, "the tag index holds {tag:?} for an event that does not carry it")
            }
            Problem::TagRowTypeMismatch { tag, row, event, .. } => {
                write!(
                    f,
                    "the tag index holds {tag:?} with type {row:?}; the event's type is {event:?}"
                )
            }
        }
    }
}

/// Checks a log page by page, in position order, remembering what it needs
/// across pages (each stream's last revision, every id seen).
///
/// Feed it every event with [`page`](IntegrityCheck::page) along with the
/// tag rows whose positions lie after the previous page's last event and up
/// to this page's last, and finally the tag rows after the last event (with
/// an empty page), so that stray rows anywhere are found.
#[derive(Debug, Default)]
pub struct IntegrityCheck {
    last: Option<Position>,
    next_revision: HashMap<StreamId, StreamRevision>,
    ids: HashMap<EventId, Position>,
    examined: u64,
}

impl IntegrityCheck {
    /// A check that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events were checked so far.
    pub fn examined(&self) -> u64 {
        self.examined
    }

    /// The last position checked, where the next page starts after.
    pub fn last(&self) -> Option<Position> {
        self.last
    }

    /// Checks the next `events` (in position order) and the tag rows of
    /// their position range, and returns the problems found in them.
    pub fn page(&mut self, events: &[StoredEvent], tag_rows: &[TagRow]) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut rows: HashMap<Position, Vec<&TagRow>> = HashMap::new();
        for row in tag_rows {
            rows.entry(row.position).or_default().push(row);
        }
        for event in events {
            self.examined += 1;
            if let Some(previous) = self.last
                && event.position <= previous
            {
                problems.push(Problem::PositionNotIncreasing {
                    position: event.position,
                    previous,
                });
            }
            self.last = Some(self.last.map_or(event.position, |last| last.max(event.position)));
            if let Some(&first) = self.ids.get(&event.id) {
                problems.push(Problem::DuplicateId {
                    position: event.position,
                    id: event.id,
                    first,
                });
            } else {
                self.ids.insert(event.id, event.position);
            }
            let expected = self
                .next_revision
                .get(&event.stream)
                .copied()
                .unwrap_or(StreamRevision::FIRST);
            if event.revision != expected {
                problems.push(Problem::RevisionGap {
                    position: event.position,
                    stream: event.stream.clone(),
                    expected,
                    found: event.revision,
                });
            }
            self.next_revision.insert(event.stream.clone(), event.revision.next());
            let indexed = rows.remove(&event.position).unwrap_or_default();
            problems.extend(tag_problems(event, &indexed));
        }
        let mut strays: Vec<&TagRow> = rows.into_values().flatten().collect();
        strays.sort();
        problems.extend(strays.into_iter().map(|row| Problem::StrayTagRow {
            position: row.position,
            tag: row.tag.clone(),
        }));
        problems.sort_by_key(Problem::position);
        problems
    }
}

/// What is wrong between `event`'s tags and the tag rows naming it.
fn tag_problems(event: &StoredEvent, rows: &[&TagRow]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let indexed: BTreeSet<&str> = rows.iter().map(|row| row.tag.as_str()).collect();
    for tag in &event.tags {
        if !indexed.contains(tag.as_str()) {
            problems.push(Problem::MissingTagRow {
                position: event.position,
                tag: tag.to_string(),
            });
        }
    }
    for row in rows {
        if !event.tags.iter().any(|tag| tag.as_str() == row.tag) {
            problems.push(Problem::StrayTagRow {
                position: event.position,
                tag: row.tag.clone(),
            });
        } else if row.event_type != event.event_type.as_str() {
            problems.push(Problem::TagRowTypeMismatch {
                position: event.position,
                tag: row.tag.clone(),
                row: row.event_type.clone(),
                event: event.event_type.to_string(),
            });
        }
    }
    problems
}

/// What a store offers to operators and tools, beyond the store contract.
///
/// Implemented by the SQL backends; the `factos` command-line tool is
/// generic over it.
#[trait_variant::make(Admin: Send)]
pub trait LocalAdmin {
    /// The schema version the store holds and the one this build writes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be asked.
    async fn schema_version(&self) -> Result<SchemaVersion, StoreError>;

    /// Creates or upgrades the schema to the version this build writes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the migration fails (nothing of it is
    /// kept) or the store was written by a newer version.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Counts and sizes, with the `top_tags` most used tags.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be read.
    async fn stats(&self, top_tags: usize) -> Result<StoreStats, StoreError>;

    /// Every stored checkpoint (of effect runners, and of projections whose
    /// read model lives in this store), by name.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be read or a stored
    /// checkpoint is not a cursor.
    async fn checkpoints(&self) -> Result<Vec<(String, crate::Cursor)>, StoreError>;

    /// The tag index rows with positions after `after` (from the start when
    /// `None`) and up to `up_to` (to the end when `None`), in position
    /// order.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the store cannot be read.
    async fn tag_rows(&self, after: Option<Position>, up_to: Option<Position>) -> Result<Vec<TagRow>, StoreError>;

    /// Writes `records` as they are — positions, ids, streams, revisions,
    /// times — in one transaction, indexing their tags, and moves the
    /// store's position counter past them. Every record is checked with
    /// [`ImportCheck`] first; a refused batch writes nothing. Concurrent
    /// appends wait until the import's transaction ends.
    ///
    /// Imported events carry no batch fingerprint: re-sending the batch that
    /// originally wrote one is answered as a duplicate id, not recognised.
    ///
    /// # Errors
    ///
    /// [`StoreError::ImportRefused`] naming the first record refused;
    /// [`StoreError::Backend`] when the store cannot be written.
    async fn import(&self, records: Vec<StoredEvent>) -> Result<(), StoreError>;
}
