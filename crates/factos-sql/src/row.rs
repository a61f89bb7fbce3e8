//! How the SQLite-dialect backends (SQLite, D1) store an event in a row of
//! `events`, and read it back: tags joined by U+001F (tags cannot contain
//! control characters), metadata as a JSON object of strings, the id as 16
//! bytes.

use std::collections::{BTreeMap, BTreeSet};

use factos::{EventId, EventType, Metadata, Position, Recorded, StoredEvent, StreamId, StreamRevision, Tag, Timestamp};

/// Separates tags in the `tags` column.
pub const TAG_SEPARATOR: char = '\u{1f}';

/// The `tags` column of an event with `tags`.
pub fn tags_column(tags: &BTreeSet<Tag>) -> String {
    let mut column = String::new();
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            column.push(TAG_SEPARATOR);
        }
        column.push_str(tag.as_str());
    }
    column
}

/// The `metadata` column of an event with `metadata`: a JSON object of
/// strings.
pub fn metadata_column(metadata: &Metadata) -> String {
    let object: BTreeMap<&str, &str> = metadata.iter().collect();
    // A map of strings always serialises.
    serde_json::to_string(&object).unwrap_or_else(|_| String::from("{}"))
}

/// The columns of one `events` row, as a driver reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// `position`.
    pub position: i64,
    /// `event_id`: 16 bytes.
    pub event_id: Vec<u8>,
    /// `stream`.
    pub stream: String,
    /// `revision`.
    pub revision: i64,
    /// `event_type`.
    pub event_type: String,
    /// `version`.
    pub version: i64,
    /// `tags`, joined by [`TAG_SEPARATOR`].
    pub tags: String,
    /// `metadata`, a JSON object of strings.
    pub metadata: String,
    /// `data`.
    pub data: Vec<u8>,
    /// `recorded_at`, microseconds since the Unix epoch.
    pub recorded_at: i64,
}

impl EventRow {
    /// The record this row holds.
    ///
    /// # Errors
    ///
    /// Why no append could have written the row (a negative position, an
    /// id that is not 16 bytes, an invalid name, metadata that is not a JSON
    /// object of strings).
    pub fn into_record(self) -> Result<StoredEvent, String> {
        let unsigned = |value: i64, what: &str| u64::try_from(value).map_err(|_| format!("negative {what} {value}"));
        let id: [u8; 16] = self
            .event_id
            .try_into()
            .map_err(|id: Vec<u8>| format!("the event id is {} bytes, not 16", id.len()))?;
        let tags = self
            .tags
            .split(TAG_SEPARATOR)
            .filter(|t| !t.is_empty())
            .map(Tag::new)
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let metadata: BTreeMap<String, String> = serde_json::from_str(&self.metadata).map_err(|e| e.to_string())?;
        Ok(Recorded {
            position: Position::new(unsigned(self.position, "position")?),
            id: EventId::from_bytes(id),
            stream: StreamId::new(self.stream).map_err(|e| e.to_string())?,
            revision: StreamRevision::new(unsigned(self.revision, "revision")?),
            event_type: EventType::new(self.event_type).map_err(|e| e.to_string())?,
            version: u32::try_from(self.version).map_err(|_| format!("version {} out of range", self.version))?,
            tags,
            metadata: Metadata::from_iter(metadata),
            recorded_at: Timestamp::from_unix_micros(self.recorded_at),
            event: self.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos::NewEvent;

    #[test]
    fn a_row_written_from_an_event_reads_back_as_that_event() -> Result<(), Box<dyn std::error::Error>> {
        let event = NewEvent::new(EventId::from_bytes([7; 16]), EventType::new("Sold")?, vec![0, 255])
            .with_tags([Tag::new("b")?, Tag::new("a")?])
            .with_metadata(Metadata::new().with("k", "v\n✓"));
        let row = EventRow {
            position: 3,
            event_id: event.id.as_bytes().to_vec(),
            stream: "s".into(),
            revision: 0,
            event_type: "Sold".into(),
            version: 1,
            tags: tags_column(&event.tags),
            metadata: metadata_column(&event.metadata),
            data: event.data.clone(),
            recorded_at: 42,
        };
        let record = row.clone().into_record()?;
        assert_eq!(
            (record.tags, record.metadata, record.event),
            (event.tags, event.metadata, event.data)
        );
        assert!(
            EventRow {
                event_id: vec![1; 15],
                ..row.clone()
            }
            .into_record()
            .is_err()
        );
        assert!(
            EventRow {
                metadata: "[1]".into(),
                ..row.clone()
            }
            .into_record()
            .is_err()
        );
        assert!(EventRow { position: -1, ..row }.into_record().is_err());
        Ok(())
    }
}
