//! The JSON form of events, shared by `read --json`, `tail --json`,
//! `export`/`import`, `append` and the HTTP API.
//!
//! A record is one JSON object: `position`, `id`, `stream`, `revision`,
//! `type`, `version`, `tags`, `metadata`, `recordedAt` (RFC 3339, UTC,
//! microseconds) and the payload: `data` holding the payload itself when it
//! is one line of JSON (kept byte for byte), `dataBase64` otherwise.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use factos::{
    EventId, EventType, Metadata, NewEvent, Position, Recorded, StoredEvent, StreamId, StreamRevision, Tag, Timestamp,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// A record as written: borrowed from the stored event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "position": 42, "id": "0b6f4c1e-6c7e-4d3a-9a53-2f3c9e1f7a10", "stream": "concert-42", "revision": 3,
    "type": "TicketSold", "version": 1, "tags": ["concert:42"], "metadata": {},
    "recordedAt": "2026-12-05T10:00:00.000000Z", "data": {"seat": 7}
}))]
pub struct RecordOut<'a> {
    position: u64,
    id: String,
    stream: &'a str,
    revision: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
    version: u32,
    tags: Vec<&'a str>,
    metadata: BTreeMap<&'a str, &'a str>,
    recorded_at: String,
    /// The payload when it is one line of JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    data: Option<&'a RawValue>,
    /// The payload as base64 otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
    /// The follower cursor after the record (`tail` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

impl<'a> RecordOut<'a> {
    /// The JSON form of `record`.
    pub fn new(record: &'a StoredEvent) -> Self {
        let data = json_payload(&record.event);
        Self {
            position: record.position.value(),
            id: record.id.as_uuid().hyphenated().to_string(),
            stream: record.stream.as_str(),
            revision: record.revision.value(),
            event_type: record.event_type.as_str(),
            version: record.version,
            tags: record.tags.iter().map(Tag::as_str).collect(),
            metadata: record.metadata.iter().collect(),
            recorded_at: format_time(record.recorded_at),
            data,
            data_base64: data.is_none().then(|| BASE64.encode(&record.event)),
            cursor: None,
        }
    }

    /// With the follower cursor after it (for `tail`).
    pub fn with_cursor(mut self, cursor: factos::Cursor) -> Self {
        self.cursor = Some(cursor.to_string());
        self
    }

    /// One line of JSON.
    pub fn line(&self) -> String {
        // Strings, numbers and raw JSON always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The payload as JSON text, when it is exactly one line of valid JSON.
pub fn json_payload(payload: &[u8]) -> Option<&RawValue> {
    let text = std::str::from_utf8(payload).ok()?;
    if text.contains(['\n', '\r']) {
        return None;
    }
    let raw: &RawValue = serde_json::from_str(text).ok()?;
    (raw.get().len() == text.len()).then_some(raw)
}

/// A short human preview of a payload: JSON as is, otherwise base64, cut
/// to `width` characters; `(empty)` for no bytes.
pub fn preview(payload: &[u8], width: usize) -> String {
    if payload.is_empty() {
        return "(empty)".to_owned();
    }
    let text = match json_payload(payload) {
        Some(raw) => raw.get().to_owned(),
        None => format!("base64:{}", BASE64.encode(payload)),
    };
    match text.char_indices().nth(width) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// `at` in RFC 3339 (UTC, microseconds).
pub fn format_time(at: Timestamp) -> String {
    match chrono::DateTime::from_timestamp_micros(at.as_unix_micros()) {
        Some(time) => time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        None => at.as_unix_micros().to_string(),
    }
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| format!("recordedAt {text:?}: {e}"))?;
    Ok(Timestamp::from_unix_micros(time.timestamp_micros()))
}

/// `data` present (even `null`) is `Some`; absent is `None`.
fn raw_present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

/// The payload of `data` or `dataBase64`.
fn payload(data: Option<Box<RawValue>>, base64: Option<String>) -> Result<Vec<u8>, String> {
    match (data, base64) {
        (Some(_), Some(_)) => Err("give either data or dataBase64, not both".into()),
        (Some(raw), None) => Ok(raw.get().as_bytes().to_vec()),
        (None, Some(text)) => BASE64.decode(text).map_err(|e| format!("dataBase64: {e}")),
        (None, None) => Ok(Vec::new()),
    }
}

fn tags(tags: Vec<String>) -> Result<BTreeSet<Tag>, String> {
    tags.into_iter()
        .map(|tag| Tag::new(tag.as_str()).map_err(|e| format!("tag {tag:?}: {e}")))
        .collect()
}

/// A record as read back from JSON (`import`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordIn {
    position: u64,
    id: uuid::Uuid,
    stream: String,
    revision: u64,
    #[serde(rename = "type")]
    event_type: String,
    version: u32,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    recorded_at: String,
    #[serde(default, deserialize_with = "raw_present")]
    data: Option<Box<RawValue>>,
    data_base64: Option<String>,
    /// `tail --json` lines carry it; an import ignores it.
    #[serde(default, rename = "cursor")]
    _cursor: Option<serde::de::IgnoredAny>,
}

impl RecordIn {
    /// Parses one line.
    ///
    /// # Errors
    ///
    /// What is wrong with the line.
    pub fn parse(line: &str) -> Result<StoredEvent, String> {
        let record: RecordIn = serde_json::from_str(line).map_err(|e| e.to_string())?;
        record.into_record()
    }

    fn into_record(self) -> Result<StoredEvent, String> {
        let metadata = Metadata::from_iter(self.metadata);
        metadata.validate().map_err(|e| e.to_string())?;
        Ok(Recorded {
            position: Position::new(self.position),
            id: EventId::from_uuid(self.id),
            stream: StreamId::new(self.stream.as_str()).map_err(|e| format!("stream {:?}: {e}", self.stream))?,
            revision: StreamRevision::new(self.revision),
            event_type: EventType::new(self.event_type.as_str())
                .map_err(|e| format!("type {:?}: {e}", self.event_type))?,
            version: self.version,
            tags: tags(self.tags)?,
            metadata,
            recorded_at: parse_time(&self.recorded_at)?,
            event: payload(self.data, self.data_base64)?,
        })
    }
}

/// A new event as given to `append` and `POST /append`: `type`, `tags`,
/// the payload (`data` or `dataBase64`), and optionally `id`, `version`
/// and `metadata`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventIn {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    tags: Vec<String>,
    /// A JSON payload (stored as its bytes).
    #[serde(default, deserialize_with = "raw_present")]
    #[schema(value_type = Option<Object>)]
    data: Option<Box<RawValue>>,
    /// A binary payload, base64.
    data_base64: Option<String>,
    /// The event's id; a new one when absent.
    #[schema(value_type = Option<String>, format = "uuid")]
    id: Option<uuid::Uuid>,
    /// The payload's schema version (1 when absent).
    version: Option<u32>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl EventIn {
    /// The event, with a fresh id when none was given.
    ///
    /// # Errors
    ///
    /// What is wrong with it (a name, a tag, the payload, metadata).
    pub fn into_event(self) -> Result<NewEvent, String> {
        let event_type =
            EventType::new(self.event_type.as_str()).map_err(|e| format!("type {:?}: {e}", self.event_type))?;
        let id = self.id.map_or_else(EventId::random, EventId::from_uuid);
        let metadata = Metadata::from_iter(self.metadata);
        metadata.validate().map_err(|e| e.to_string())?;
        Ok(NewEvent::new(id, event_type, payload(self.data, self.data_base64)?)
            .with_version(self.version.unwrap_or(1))
            .with_tags(tags(self.tags)?)
            .with_metadata(metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload: &[u8]) -> Result<StoredEvent, Box<dyn std::error::Error>> {
        Ok(Recorded {
            position: Position::new(7),
            id: EventId::from_bytes([9; 16]),
            stream: StreamId::new("orders-1")?,
            revision: StreamRevision::new(2),
            event_type: EventType::new("Placed")?,
            version: 3,
            tags: [Tag::new("order:1")?].into(),
            metadata: Metadata::new().with("by", "ada"),
            recorded_at: Timestamp::from_unix_micros(1_700_000_000_123_456),
            event: payload.to_vec(),
        })
    }

    #[test]
    fn records_round_trip_byte_for_byte_whatever_the_payload() -> Result<(), Box<dyn std::error::Error>> {
        for payload in [
            &b"{\"b\": 1,  \"a\":[1,2]}"[..],
            b"null",
            b"\"text\"",
            b"{\"multi\":\n1}",
            b" {}",
            &[0, 159, 255],
            b"",
        ] {
            let original = record(payload)?;
            let line = RecordOut::new(&original).line();
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(RecordIn::parse(&line)?, original, "{line}");
        }
        Ok(())
    }

    #[test]
    fn json_payloads_are_shown_as_json_and_others_as_base64() -> Result<(), Box<dyn std::error::Error>> {
        let line = RecordOut::new(&record(b"{\"seat\":4}")?).line();
        assert!(line.contains("\"data\":{\"seat\":4}"), "{line}");
        assert!(
            line.contains("\"recordedAt\":\"2023-11-14T22:13:20.123456Z\""),
            "{line}"
        );
        let line = RecordOut::new(&record(&[1, 2, 3])?).line();
        assert!(line.contains("\"dataBase64\":\"AQID\""), "{line}");
        Ok(())
    }

    #[test]
    fn events_name_what_is_wrong_with_them() {
        let problem = |line: &str| {
            serde_json::from_str::<EventIn>(line)
                .map_err(|e| e.to_string())
                .and_then(EventIn::into_event)
                .err()
                .unwrap_or_default()
        };
        assert!(problem(r#"{"type":"","data":1}"#).contains("type"));
        assert!(problem(r#"{"type":"A","tags":["bad\u0001"]}"#).contains("tag"));
        assert!(problem(r#"{"type":"A","data":1,"dataBase64":"AA=="}"#).contains("not both"));
        assert!(problem(r#"{"type":"A","colour":1}"#).contains("colour"));
    }
}
