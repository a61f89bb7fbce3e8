//! How a factos event becomes a KurrentDB event and back.
//!
//! The event id, type and payload map one to one. What KurrentDB has no
//! field for (tags, payload version, factos metadata, and the request
//! fingerprint that recognises a re-sent batch) travels in the event's
//! custom metadata as one JSON object under the key `factos`:
//!
//! ```json
//! {"factos":{"tags":["order:7"],"version":1,"metadata":{"trace":"a1"},"fingerprint":"9f2c41d07a3b5e68"}}
//! ```
//!
//! Other KurrentDB tools see a normal event with JSON metadata. Events
//! written by other tools (no `factos` key, or metadata that is not JSON)
//! read back with no tags, version 0 and no metadata.

use std::collections::BTreeMap;

use bytes::Bytes;
use factos::{
    EventId, EventType, InvalidAppend, Metadata, NewEvent, Position, StoreError, StoredEvent, StreamId, StreamRevision,
    Tag, Timestamp,
};
use kurrentdb::{EventData, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::BACKEND;

/// The custom metadata object factos writes.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    factos: Carried,
}

/// What KurrentDB has no field for.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Carried {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    version: u32,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// The request's [`factos::AppendRequest::fingerprint`], 16 hex digits
    /// (a string: JSON numbers lose precision past 2^53 in many tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
}

/// Whether `name` is reserved by KurrentDB for system use.
pub(crate) fn is_system(name: &str) -> bool {
    name.starts_with('$')
}

/// Refuses event types and streams KurrentDB reserves (`$`-prefixed): their
/// events would be system events, hidden from every factos read.
pub(crate) fn refuse_reserved(stream: &StreamId, events: &[NewEvent]) -> Result<(), InvalidAppend> {
    if is_system(stream.as_str()) {
        return Err(InvalidAppend::ReservedName {
            backend: BACKEND,
            name: stream.as_str().to_owned(),
            reason: "streams starting with `$` are KurrentDB's system and metadata streams",
        });
    }
    match events.iter().find(|e| is_system(e.event_type.as_str())) {
        Some(event) => Err(InvalidAppend::ReservedName {
            backend: BACKEND,
            name: event.event_type.as_str().to_owned(),
            reason: "event types starting with `$` are KurrentDB's system events, which factos never reads",
        }),
        None => Ok(()),
    }
}

/// The KurrentDB event for `event`, carrying `fingerprint`.
///
/// The payload keeps its bytes exactly; its content type is JSON when the
/// bytes are exactly one JSON value (nothing before or after it), so
/// KurrentDB's projections and UI can read it, and binary otherwise.
pub(crate) fn to_event_data(event: &NewEvent, fingerprint: u64) -> Result<EventData, StoreError> {
    let carried = Envelope {
        factos: Carried {
            tags: event.tags.iter().map(|t| t.as_str().to_owned()).collect(),
            version: event.version,
            metadata: event
                .metadata
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            fingerprint: Some(format!("{fingerprint:016x}")),
        },
    };
    let custom = serde_json::to_vec(&carried).map_err(StoreError::backend)?;
    let data = match exact_json(&event.data) {
        Some(raw) => EventData::json(event.event_type.as_str(), &raw).map_err(StoreError::backend)?,
        None => EventData::binary(event.event_type.as_str(), Bytes::copy_from_slice(&event.data)),
    };
    Ok(data
        .id(uuid::Uuid::from_bytes(*event.id.as_bytes()))
        .metadata(Bytes::from(custom)))
}

/// `bytes` as a raw JSON value when they are exactly one, byte for byte.
fn exact_json(bytes: &[u8]) -> Option<Box<serde_json::value::RawValue>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let raw = serde_json::value::RawValue::from_string(text.to_owned()).ok()?;
    (raw.get().len() == text.len()).then_some(raw)
}

/// A KurrentDB event as factos reads it, in the stream the store calls
/// `stream`, with the fingerprint it was written with (none for events
/// from other tools).
///
/// # Errors
///
/// [`StoreError::Backend`] when the event cannot be a factos event: a name
/// factos refuses, a position of an explicit transaction, factos metadata
/// that does not parse.
pub(crate) fn from_recorded(event: &RecordedEvent, stream: &str) -> Result<(StoredEvent, Option<u64>), StoreError> {
    let position = position_of(event)?;
    let carried = carried(&event.custom_metadata).map_err(|reason| corrupt(event, reason))?;
    let tags = carried
        .tags
        .into_iter()
        .map(Tag::new)
        .collect::<Result<_, _>>()
        .map_err(|e| corrupt(event, e.to_string()))?;
    let metadata = carried
        .metadata
        .into_iter()
        .fold(Metadata::new(), |metadata, (k, v)| metadata.with(k, v));
    let fingerprint = match carried.fingerprint {
        Some(hex) => Some(u64::from_str_radix(&hex, 16).map_err(|e| corrupt(event, e.to_string()))?),
        None => None,
    };
    let record = StoredEvent {
        position,
        id: EventId::from_bytes(*event.id.as_bytes()),
        stream: StreamId::new(stream).map_err(|e| corrupt(event, e.to_string()))?,
        revision: StreamRevision::new(event.revision),
        event_type: EventType::new(event.event_type.as_str()).map_err(|e| corrupt(event, e.to_string()))?,
        version: carried.version,
        tags,
        metadata,
        recorded_at: Timestamp::from_unix_micros(event.created.timestamp_micros()),
        event: event.data.to_vec(),
    };
    Ok((record, fingerprint))
}

/// The factos position of an event: its `$all` commit position.
///
/// KurrentDB gives every event a commit and a prepare position. An append
/// writes each of its events as its own log record, committed by that
/// record itself, so both positions are that record's log position: unique
/// per event, increasing in `$all` order, even within one batch. Only
/// events written in the legacy TCP protocol's explicit transactions share
/// a commit position (prepare below commit); factos cannot give those a
/// position of their own and refuses to read them rather than repeat one.
fn position_of(event: &RecordedEvent) -> Result<Position, StoreError> {
    let kurrentdb::Position { commit, prepare } = event.position;
    if commit == u64::MAX {
        return Err(corrupt(
            event,
            "the server reported no $all position for it (stream reads carry one from KurrentDB 22.6 on)".into(),
        ));
    }
    if commit != prepare {
        return Err(corrupt(
            event,
            format!(
                "it was written in an explicit transaction (commit {commit}, prepare {prepare}), so it shares its position"
            ),
        ));
    }
    Ok(Position::new(commit))
}

/// The `$all` position a read starts at to begin at `position`.
pub(crate) fn kurrent_position(position: Position) -> kurrentdb::Position {
    kurrentdb::Position {
        commit: position.value(),
        prepare: position.value(),
    }
}

fn carried(custom_metadata: &[u8]) -> Result<Carried, String> {
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice::<serde_json::Value>(custom_metadata) else {
        return Ok(Carried::default());
    };
    match object.remove("factos") {
        None => Ok(Carried::default()),
        Some(value) => serde_json::from_value(value).map_err(|e| format!("its factos metadata does not parse: {e}")),
    }
}

fn corrupt(event: &RecordedEvent, reason: String) -> StoreError {
    StoreError::backend(crate::KurrentError::Unreadable {
        stream: event.stream_id().to_owned(),
        revision: event.revision,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_json_gets_the_json_content_type() {
        assert!(exact_json(br#"{"a": [1, 2]}"#).is_some());
        assert!(exact_json(b"42").is_some());
        assert!(exact_json(b" {}").is_none(), "leading whitespace would be lost");
        assert!(exact_json(b"{}\n").is_none(), "trailing whitespace would be lost");
        assert!(exact_json(b"\xff\xfe").is_none());
        assert!(exact_json(b"").is_none());
    }

    #[test]
    fn metadata_of_other_tools_reads_as_no_factos_data() -> Result<(), String> {
        for other in [&b""[..], b"not json", b"[1]", br#"{"$correlationId":"x"}"#] {
            let carried = carried(other)?;
            assert!(carried.tags.is_empty() && carried.version == 0 && carried.fingerprint.is_none());
        }
        assert!(carried(br#"{"factos":{"tags":"not a list"}}"#).is_err());
        Ok(())
    }
}
