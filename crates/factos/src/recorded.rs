//! Committed events as the store returns them.

use std::collections::BTreeSet;

use crate::event::{EventId, Metadata, Timestamp};
use crate::name::{EventType, StreamId, Tag};
use crate::position::{Position, StreamRevision};
use crate::query::Query;

/// A committed event: where and when the store put it, plus the event itself.
///
/// Stores return `Recorded<Vec<u8>>` ([`StoredEvent`]); a [`crate::Codec`]
/// turns those into `Recorded<E>` for the application's event type `E`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded<E> {
    /// Global position: unique, increasing with the stream's revisions and
    /// after everything a decision read; not necessarily in commit order
    /// across unrelated events (see [`Position`]).
    pub position: Position,
    /// The id the application gave the event.
    pub id: EventId,
    /// The stream the event was appended to.
    pub stream: StreamId,
    /// The event's revision inside its stream.
    pub revision: StreamRevision,
    /// The event's type.
    pub event_type: EventType,
    /// The payload schema version.
    pub version: u32,
    /// The event's tags.
    pub tags: BTreeSet<Tag>,
    /// String key/value pairs carried with the event.
    pub metadata: Metadata,
    /// When the store committed the event.
    pub recorded_at: Timestamp,
    /// The event: payload bytes as stored, or the decoded domain event.
    pub event: E,
}

/// A committed event with its payload as stored.
pub type StoredEvent = Recorded<Vec<u8>>;

impl Recorded<Vec<u8>> {
    /// About how many bytes the event takes in memory and on the wire: its
    /// payload, metadata, tags, type and stream, plus a fixed 64 for its
    /// numbers. What [`crate::ReadOptions::max_bytes`] budgets.
    pub fn byte_size(&self) -> usize {
        64 + self.event.len()
            + self.event_type.as_str().len()
            + self.stream.as_str().len()
            + self.tags.iter().map(|t| t.as_str().len()).sum::<usize>()
            + self.metadata.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

impl<E> Recorded<E> {
    /// Whether this event matches `query`.
    pub fn matches(&self, query: &Query) -> bool {
        query.matches(&self.event_type, &self.tags)
    }

    /// The same record with its event transformed.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Recorded<F> {
        self.try_map(|event| Ok::<F, std::convert::Infallible>(f(event)))
            .unwrap_or_else(|never| match never {})
    }

    /// The same record with its event transformed by a fallible function.
    ///
    /// # Errors
    ///
    /// Whatever `f` returns.
    pub fn try_map<F, Err>(self, f: impl FnOnce(E) -> Result<F, Err>) -> Result<Recorded<F>, Err> {
        Ok(Recorded {
            event: f(self.event)?,
            position: self.position,
            id: self.id,
            stream: self.stream,
            revision: self.revision,
            event_type: self.event_type,
            version: self.version,
            tags: self.tags,
            metadata: self.metadata,
            recorded_at: self.recorded_at,
        })
    }

    /// The same record borrowing its event.
    pub fn as_ref(&self) -> Recorded<&E> {
        Recorded {
            event: &self.event,
            position: self.position,
            id: self.id,
            stream: self.stream.clone(),
            revision: self.revision,
            event_type: self.event_type.clone(),
            version: self.version,
            tags: self.tags.clone(),
            metadata: self.metadata.clone(),
            recorded_at: self.recorded_at,
        }
    }
}
