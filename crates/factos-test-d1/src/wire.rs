//! The store contract as JSON: what the native client sends the test worker
//! and what the worker's `factos-d1` store answers.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use factos::{
    AppendCondition, AppendConditionFailed, AppendRequest, Committed, DecisionScope, DuplicateEventId, ErrorChain,
    EventId, EventType, ExpectedRevision, Metadata, NewEvent, Position, Query, QueryItem, QueryLimit, QueryTooLarge,
    ReadOptions, Recorded, RevisionMismatch, StoreError, StoredEvent, StreamId, StreamRevision, Tag, Timestamp,
    UnsupportedAppendCondition, UnsupportedQuery,
};
use serde::{Deserialize, Serialize};

/// A JSON value that is not a valid contract call or answer.
#[derive(Debug, thiserror::Error)]
#[error("invalid wire value: {0}")]
pub struct WireError(pub String);

fn invalid(error: impl std::fmt::Display) -> WireError {
    WireError(error.to_string())
}

/// One contract call on the store behind D1 binding `db`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    /// Which D1 binding (`DB{n}`) the store uses.
    pub db: u32,
    /// The call.
    pub op: Op,
}

/// The contract's operations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `D1Store::migrate`.
    Migrate,
    /// `read`.
    Read {
        /// The query.
        query: WireQuery,
        /// `from` position.
        from: Option<u64>,
        /// `limit`.
        limit: Option<usize>,
        /// Direction.
        backwards: bool,
        /// `max_bytes`.
        #[serde(default)]
        max_bytes: Option<usize>,
    },
    /// `read_stream`.
    ReadStream {
        /// The stream.
        stream: String,
        /// From this revision.
        from: u64,
        /// At most this many events (`read_stream_page`); all when absent.
        limit: Option<u64>,
    },
    /// `append`.
    Append(WireAppend),
    /// `begin_decision`.
    BeginDecision {
        /// The query scope, or
        query: Option<WireQuery>,
        /// the stream scope.
        stream: Option<String>,
    },
    /// `commit_decision`.
    CommitDecision(WireAppend),
    /// `load_checkpoint`.
    LoadCheckpoint {
        /// Its name.
        name: String,
    },
    /// `save_checkpoint`.
    SaveCheckpoint {
        /// Its name.
        name: String,
        /// The cursor.
        cursor: String,
    },
    /// `park_effect`.
    ParkEffect(WireParked),
    /// `parked_effects`.
    ParkedEffects {
        /// The runner.
        runner: String,
    },
    /// `retry_parked`.
    RetryParked(WireParkedKey),
    /// `discard_parked`.
    DiscardParked(WireParkedKey),
    /// The follow contract's `read_after`.
    ReadAfter {
        /// The query.
        query: WireQuery,
        /// The cursor (`commit:position`), if any.
        after: Option<String>,
        /// At most this many events examined.
        limit: usize,
    },
    /// A batch of the tally projection (see `factos_conformance::tally_sql`)
    /// committed through the store's `ReadModelStore` for `D1Projection`.
    ProjectTally {
        /// Whether the tally fails on a poisoned event.
        refuse_poison: bool,
        /// The checkpoint the batch was read after, if any.
        after: Option<String>,
        /// Where the checkpoint moves.
        end: String,
        /// The events, each with its cursor.
        events: Vec<(String, WireRecord)>,
    },
    /// The tally's reset through the store's `ReadModelStore`.
    ResetTally,
    /// The tally's counts.
    Tallies,
}

/// What a read-model store did with a batch (`factos::BatchOutcome`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WireOutcome {
    /// Committed.
    Applied,
    /// The checkpoint had moved; nothing written.
    CheckpointMoved,
    /// The projection failed; nothing written.
    Failed {
        /// Its error.
        message: String,
    },
}

impl WireOutcome {
    /// The wire form of `outcome`.
    pub fn from_outcome(outcome: &factos::BatchOutcome) -> Self {
        match outcome {
            factos::BatchOutcome::Applied => WireOutcome::Applied,
            factos::BatchOutcome::CheckpointMoved => WireOutcome::CheckpointMoved,
            factos::BatchOutcome::Failed(error) => WireOutcome::Failed {
                message: error.to_string(),
            },
        }
    }

    /// The outcome.
    pub fn to_outcome(&self) -> factos::BatchOutcome {
        match self {
            WireOutcome::Applied => factos::BatchOutcome::Applied,
            WireOutcome::CheckpointMoved => factos::BatchOutcome::CheckpointMoved,
            WireOutcome::Failed { message } => factos::BatchOutcome::Failed(message.clone().into()),
        }
    }
}

/// What a call answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// Events read.
    Events {
        /// The records.
        events: Vec<WireRecord>,
    },
    /// An append committed.
    Committed {
        /// The records.
        records: Vec<WireRecord>,
        /// The stream's revision after it.
        revision: u64,
    },
    /// What a `read_after` found.
    Batch {
        /// The matching events, each with its cursor.
        events: Vec<(String, WireRecord)>,
        /// The cursor after the last event examined.
        end: Option<String>,
        /// How many events were examined.
        examined: usize,
    },
    /// A checkpoint, or none.
    Checkpoint {
        /// The cursor.
        cursor: Option<String>,
    },
    /// Done, nothing to return.
    Done,
    /// Parked effects, in the order they were parked.
    Parked {
        /// The effects.
        effects: Vec<WireParked>,
    },
    /// Whether a change found what it changes.
    Changed {
        /// It did.
        changed: bool,
    },
    /// Migrated from this version.
    Migrated {
        /// The version found.
        found: i64,
    },
    /// The store refused or failed.
    Failed(WireFailure),
    /// What a read-model store did.
    Projected(WireOutcome),
    /// The tally's counts.
    Tallies {
        /// `(tag, n)` pairs.
        counts: Vec<(String, i64)>,
    },
}

/// A query: items of types (OR) and tags (AND).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireQuery {
    /// The items, OR-combined.
    pub items: Vec<WireItem>,
}

/// One query item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireItem {
    /// Event types.
    pub types: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
}

impl WireQuery {
    /// The wire form of `query`.
    ///
    /// # Errors
    ///
    /// For a query with SQL predicates, which the wire does not carry.
    pub fn from_query(query: &Query) -> Result<Self, WireError> {
        if query.has_predicates() {
            return Err(WireError("SQL predicates do not cross the test wire".into()));
        }
        Ok(Self {
            items: query
                .items()
                .iter()
                .map(|item| WireItem {
                    types: item.event_types().iter().map(|t| t.as_str().to_owned()).collect(),
                    tags: item.required_tags().iter().map(|t| t.as_str().to_owned()).collect(),
                })
                .collect(),
        })
    }

    /// The query.
    ///
    /// # Errors
    ///
    /// For invalid names.
    pub fn to_query(&self) -> Result<Query, WireError> {
        let items = self
            .items
            .iter()
            .map(|item| {
                let types = item.types.iter().map(EventType::new).collect::<Result<Vec<_>, _>>();
                let tags = item.tags.iter().map(Tag::new).collect::<Result<Vec<_>, _>>();
                Ok(QueryItem::types(types.map_err(invalid)?).with_tags(tags.map_err(invalid)?))
            })
            .collect::<Result<Vec<_>, WireError>>()?;
        Ok(Query::new(items))
    }
}

/// Read options on the wire.
pub fn options(from: Option<u64>, limit: Option<usize>, backwards: bool, max_bytes: Option<usize>) -> ReadOptions {
    let mut options = if backwards {
        ReadOptions::backwards()
    } else {
        ReadOptions::forwards()
    };
    options.from = from.map(Position::new);
    options.limit = limit;
    options.max_bytes = max_bytes;
    options
}

/// A new event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireEvent {
    /// Its id (UUID text).
    pub id: String,
    /// Type.
    pub event_type: String,
    /// Payload version.
    pub version: u32,
    /// Tags.
    pub tags: Vec<String>,
    /// Metadata pairs.
    pub metadata: Vec<(String, String)>,
    /// Payload, base64.
    pub data: String,
}

/// An append request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireAppend {
    /// The stream.
    pub stream: String,
    /// The events.
    pub events: Vec<WireEvent>,
    /// `any`, `no_stream`, `stream_exists` or a revision.
    pub expected: WireExpected,
    /// `FailIfEventsMatch(query, after)`.
    pub condition: Option<(WireQuery, Option<u64>)>,
}

/// An expected revision.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireExpected {
    /// Any.
    Any,
    /// No stream.
    NoStream,
    /// Stream exists.
    StreamExists,
    /// Exactly this revision.
    Exact(u64),
}

impl WireAppend {
    /// The wire form of `request`.
    ///
    /// # Errors
    ///
    /// For a condition with SQL predicates.
    pub fn from_request(request: &AppendRequest) -> Result<Self, WireError> {
        Ok(Self {
            stream: request.stream.as_str().to_owned(),
            events: request
                .events
                .iter()
                .map(|event| WireEvent {
                    id: event.id.to_string(),
                    event_type: event.event_type.as_str().to_owned(),
                    version: event.version,
                    tags: event.tags.iter().map(|t| t.as_str().to_owned()).collect(),
                    metadata: event
                        .metadata
                        .iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                    data: STANDARD.encode(&event.data),
                })
                .collect(),
            expected: match request.expected {
                ExpectedRevision::Any => WireExpected::Any,
                ExpectedRevision::NoStream => WireExpected::NoStream,
                ExpectedRevision::StreamExists => WireExpected::StreamExists,
                ExpectedRevision::Exact(revision) => WireExpected::Exact(revision.value()),
            },
            condition: request
                .condition
                .as_ref()
                .map(|c| Ok::<_, WireError>((WireQuery::from_query(&c.query)?, c.after.map(|p| p.value()))))
                .transpose()?,
        })
    }

    /// The request.
    ///
    /// # Errors
    ///
    /// For invalid names, ids or payloads.
    pub fn to_request(&self) -> Result<AppendRequest, WireError> {
        let events = self
            .events
            .iter()
            .map(|event| {
                let id = uuid::Uuid::parse_str(&event.id).map_err(invalid)?;
                let tags = event
                    .tags
                    .iter()
                    .map(Tag::new)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(invalid)?;
                let metadata = event
                    .metadata
                    .iter()
                    .fold(Metadata::new(), |m, (k, v)| m.with(k.clone(), v.clone()));
                Ok(NewEvent::new(
                    EventId::from_uuid(id),
                    EventType::new(&event.event_type).map_err(invalid)?,
                    STANDARD.decode(&event.data).map_err(invalid)?,
                )
                .with_version(event.version)
                .with_tags(tags)
                .with_metadata(metadata))
            })
            .collect::<Result<Vec<_>, WireError>>()?;
        let expected = match self.expected {
            WireExpected::Any => ExpectedRevision::Any,
            WireExpected::NoStream => ExpectedRevision::NoStream,
            WireExpected::StreamExists => ExpectedRevision::StreamExists,
            WireExpected::Exact(revision) => ExpectedRevision::Exact(StreamRevision::new(revision)),
        };
        let mut request = AppendRequest::new(StreamId::new(&self.stream).map_err(invalid)?, events).expect(expected);
        if let Some((query, after)) = &self.condition {
            request = request.condition(AppendCondition::new(query.to_query()?, after.map(Position::new)));
        }
        Ok(request)
    }
}

/// A committed event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireRecord {
    /// Position.
    pub position: u64,
    /// Id.
    pub id: String,
    /// Stream.
    pub stream: String,
    /// Revision.
    pub revision: u64,
    /// Type.
    pub event_type: String,
    /// Version.
    pub version: u32,
    /// Tags.
    pub tags: Vec<String>,
    /// Metadata pairs.
    pub metadata: Vec<(String, String)>,
    /// Microseconds since the epoch.
    pub recorded_at: i64,
    /// Payload, base64.
    pub data: String,
}

impl WireRecord {
    /// The wire form of `record`.
    pub fn from_record(record: &StoredEvent) -> Self {
        Self {
            position: record.position.value(),
            id: record.id.to_string(),
            stream: record.stream.as_str().to_owned(),
            revision: record.revision.value(),
            event_type: record.event_type.as_str().to_owned(),
            version: record.version,
            tags: record.tags.iter().map(|t| t.as_str().to_owned()).collect(),
            metadata: record
                .metadata
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            recorded_at: record.recorded_at.as_unix_micros(),
            data: STANDARD.encode(&record.event),
        }
    }

    /// The record.
    ///
    /// # Errors
    ///
    /// For invalid names, ids or payloads.
    pub fn to_record(&self) -> Result<StoredEvent, WireError> {
        Ok(Recorded {
            position: Position::new(self.position),
            id: EventId::from_uuid(uuid::Uuid::parse_str(&self.id).map_err(invalid)?),
            stream: StreamId::new(&self.stream).map_err(invalid)?,
            revision: StreamRevision::new(self.revision),
            event_type: EventType::new(&self.event_type).map_err(invalid)?,
            version: self.version,
            tags: self
                .tags
                .iter()
                .map(Tag::new)
                .collect::<Result<BTreeSet<_>, _>>()
                .map_err(invalid)?,
            metadata: self
                .metadata
                .iter()
                .fold(Metadata::new(), |m, (k, v)| m.with(k.clone(), v.clone())),
            recorded_at: Timestamp::from_unix_micros(self.recorded_at),
            event: STANDARD.decode(&self.data).map_err(invalid)?,
        })
    }
}

/// A store error on the wire: the typed conflicts and refusals keep their
/// fields; the rest keep their message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum WireFailure {
    /// `ConditionFailed`, with the conflicting position.
    ConditionFailed {
        /// Where the matching event sits.
        conflicting: u64,
    },
    /// `RevisionMismatch`, with the actual revision.
    RevisionMismatch {
        /// The stream's last revision.
        actual: Option<u64>,
    },
    /// `DuplicateEventId`.
    DuplicateEventId {
        /// The id.
        id: String,
        /// Where it is used.
        existing: u64,
    },
    /// `InvalidAppend::TooLarge`.
    TooLarge {
        /// The event's id.
        id: String,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Any other `InvalidAppend`; the client re-derives the exact reason
    /// from the request with the core's own validation.
    InvalidAppend {
        /// The store's message.
        message: String,
    },
    /// `UnsupportedCondition`.
    UnsupportedCondition {
        /// Why.
        reason: String,
    },
    /// `UnsupportedQuery`.
    UnsupportedQuery {
        /// Why.
        reason: String,
    },
    /// `QueryTooLarge`, naming the limit.
    QueryTooLarge {
        /// Which limit: `items`, `types_per_item`, `tags_per_item` or
        /// `bytes`.
        limit: String,
        /// What it allows.
        allowed: usize,
        /// What the query had.
        found: usize,
    },
    /// `Contention`.
    Contention {
        /// The message.
        message: String,
    },
    /// Anything else.
    Backend {
        /// The message.
        message: String,
    },
}

impl WireFailure {
    /// The wire form of `error`.
    pub fn from_error(error: &StoreError) -> Self {
        match error {
            StoreError::ConditionFailed(failed) => WireFailure::ConditionFailed {
                conflicting: failed.conflicting.value(),
            },
            StoreError::RevisionMismatch(mismatch) => WireFailure::RevisionMismatch {
                actual: mismatch.actual.map(|r| r.value()),
            },
            StoreError::DuplicateEventId(duplicate) => WireFailure::DuplicateEventId {
                id: duplicate.id.to_string(),
                existing: duplicate.existing.value(),
            },
            StoreError::InvalidAppend(factos::InvalidAppend::TooLarge { id, bytes, limit, .. }) => {
                WireFailure::TooLarge {
                    id: id.to_string(),
                    bytes: *bytes,
                    limit: *limit,
                }
            }
            StoreError::InvalidAppend(invalid) => WireFailure::InvalidAppend {
                message: invalid.to_string(),
            },
            StoreError::UnsupportedCondition(refusal) => WireFailure::UnsupportedCondition {
                reason: refusal.reason.clone(),
            },
            StoreError::UnsupportedQuery(refusal) => WireFailure::UnsupportedQuery {
                reason: refusal.reason.clone(),
            },
            StoreError::QueryTooLarge(too_large) => WireFailure::QueryTooLarge {
                limit: match too_large.limit {
                    QueryLimit::Items => "items",
                    QueryLimit::TypesPerItem => "types_per_item",
                    QueryLimit::TagsPerItem => "tags_per_item",
                    QueryLimit::Bytes => "bytes",
                    _ => "unknown",
                }
                .to_owned(),
                allowed: too_large.allowed,
                found: too_large.found,
            },
            StoreError::Contention(source) => WireFailure::Contention {
                message: ErrorChain(source.as_ref()).to_string(),
            },
            other => WireFailure::Backend {
                message: ErrorChain(other).to_string(),
            },
        }
    }

    /// The store error this stands for, for a call that sent `request`
    /// (conflicts name the request's stream, expectation and condition).
    pub fn into_error(self, request: Option<&AppendRequest>) -> StoreError {
        let backend = "Cloudflare D1";
        match (self, request) {
            (WireFailure::ConditionFailed { conflicting }, Some(request)) if request.condition.is_some() => {
                AppendConditionFailed {
                    condition: request
                        .condition
                        .clone()
                        .unwrap_or_else(|| AppendCondition::new(Query::all(), None)),
                    conflicting: Position::new(conflicting),
                }
                .into()
            }
            (WireFailure::RevisionMismatch { actual }, Some(request)) => RevisionMismatch {
                stream: request.stream.clone(),
                expected: request.expected,
                actual: actual.map(StreamRevision::new),
            }
            .into(),
            (WireFailure::DuplicateEventId { id, existing }, _) => match uuid::Uuid::parse_str(&id) {
                Ok(id) => DuplicateEventId {
                    id: EventId::from_uuid(id),
                    existing: Position::new(existing),
                }
                .into(),
                Err(e) => StoreError::backend(e),
            },
            (WireFailure::TooLarge { id, bytes, limit }, _) => match uuid::Uuid::parse_str(&id) {
                Ok(id) => factos::InvalidAppend::TooLarge {
                    backend,
                    id: EventId::from_uuid(id),
                    bytes,
                    limit,
                }
                .into(),
                Err(e) => StoreError::backend(e),
            },
            (WireFailure::InvalidAppend { message }, Some(request)) => match request.validate() {
                Err(invalid) => invalid.into(),
                Ok(()) => StoreError::backend(format!("the worker refused a valid request as invalid: {message}")),
            },
            (WireFailure::UnsupportedCondition { reason }, _) => UnsupportedAppendCondition { backend, reason }.into(),
            (WireFailure::UnsupportedQuery { reason }, _) => UnsupportedQuery { backend, reason }.into(),
            (WireFailure::QueryTooLarge { limit, allowed, found }, _) => {
                let limit = match limit.as_str() {
                    "items" => QueryLimit::Items,
                    "types_per_item" => QueryLimit::TypesPerItem,
                    "tags_per_item" => QueryLimit::TagsPerItem,
                    "bytes" => QueryLimit::Bytes,
                    other => return StoreError::backend(format!("the worker named an unknown query limit {other:?}")),
                };
                QueryTooLarge { limit, allowed, found }.into()
            }
            (WireFailure::Contention { message }, _) => StoreError::contention(message),
            (other, _) => StoreError::backend(format!("{other:?}")),
        }
    }
}

/// The answer for a committed append.
pub fn committed(committed: &Committed) -> Answer {
    Answer::Committed {
        records: committed.records.iter().map(WireRecord::from_record).collect(),
        revision: committed.revision.value(),
    }
}

/// The decision scope of a `BeginDecision`.
///
/// # Errors
///
/// For a call that names neither or both, or invalid names.
pub fn scope(query: &Option<WireQuery>, stream: &Option<String>) -> Result<DecisionScope, WireError> {
    match (query, stream) {
        (Some(query), None) => Ok(DecisionScope::Query(query.to_query()?)),
        (None, Some(stream)) => Ok(DecisionScope::Stream(StreamId::new(stream).map_err(invalid)?)),
        _ => Err(WireError("a decision scope is a query or a stream".into())),
    }
}

/// The answer for a follow batch.
pub fn batch(batch: &factos::FollowBatch) -> Answer {
    Answer::Batch {
        events: batch
            .events
            .iter()
            .map(|d| (d.cursor.to_string(), WireRecord::from_record(&d.record)))
            .collect(),
        end: batch.end.map(|c| c.to_string()),
        examined: batch.examined,
    }
}

/// Delivered events from the wire.
///
/// # Errors
///
/// For invalid cursors or records.
pub fn to_delivered(events: &[(String, WireRecord)]) -> Result<Vec<factos::Delivered>, WireError> {
    events
        .iter()
        .map(|(cursor, record)| {
            Ok(factos::Delivered {
                cursor: cursor.parse().map_err(invalid)?,
                record: record.to_record()?,
            })
        })
        .collect()
}

/// The follow batch an answer carries.
///
/// # Errors
///
/// For invalid cursors or records.
pub fn to_batch(
    events: Vec<(String, WireRecord)>,
    end: Option<String>,
    examined: usize,
) -> Result<factos::FollowBatch, WireError> {
    Ok(factos::FollowBatch {
        events: to_delivered(&events)?,
        end: cursor(&end)?,
        examined,
    })
}

/// A cursor from the wire.
///
/// # Errors
///
/// For text that is not a cursor.
pub fn cursor(text: &Option<String>) -> Result<Option<factos::Cursor>, WireError> {
    text.as_deref().map(|t| t.parse().map_err(invalid)).transpose()
}

/// A parked effect.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireParked {
    /// The runner that parked it.
    pub runner: String,
    /// The event id.
    pub event: String,
    /// The effect's index.
    pub index: u32,
    /// The event's cursor (`commit:position`).
    pub cursor: String,
    /// How many times the handler was tried.
    pub attempts: u32,
    /// The handler's last error.
    pub error: String,
    /// Whether a retry was asked for.
    pub retry_requested: bool,
}

impl WireParked {
    /// The wire form of `parked`.
    pub fn from_parked(parked: &factos::ParkedEffect) -> Self {
        Self {
            runner: parked.runner.clone(),
            event: parked.key.event.to_string(),
            index: parked.key.index,
            cursor: parked.cursor.to_string(),
            attempts: parked.attempts,
            error: parked.error.clone(),
            retry_requested: parked.retry_requested,
        }
    }

    /// The parked effect.
    ///
    /// # Errors
    ///
    /// For an event id that is not a UUID or a cursor that is not one.
    pub fn to_parked(&self) -> Result<factos::ParkedEffect, WireError> {
        Ok(factos::ParkedEffect {
            runner: self.runner.clone(),
            key: effect_key(&self.event, self.index)?,
            cursor: self.cursor.parse().map_err(invalid)?,
            attempts: self.attempts,
            error: self.error.clone(),
            retry_requested: self.retry_requested,
        })
    }
}

/// One runner's parked effect, named.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireParkedKey {
    /// The runner.
    pub runner: String,
    /// The event id.
    pub event: String,
    /// The effect's index.
    pub index: u32,
}

impl WireParkedKey {
    /// The wire form of `runner`'s `key`.
    pub fn new(runner: &str, key: factos::EffectKey) -> Self {
        Self {
            runner: runner.to_owned(),
            event: key.event.to_string(),
            index: key.index,
        }
    }

    /// The effect key.
    ///
    /// # Errors
    ///
    /// For an event id that is not a UUID.
    pub fn key(&self) -> Result<factos::EffectKey, WireError> {
        effect_key(&self.event, self.index)
    }
}

fn effect_key(event: &str, index: u32) -> Result<factos::EffectKey, WireError> {
    Ok(factos::EffectKey {
        event: EventId::from_uuid(uuid::Uuid::parse_str(event).map_err(invalid)?),
        index,
    })
}
