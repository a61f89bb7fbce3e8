//! Durable checkpoints and parked effects on KurrentDB.
//!
//! Each checkpoint is a stream of its own, `factos-checkpoint-{name}`, whose
//! last event holds the cursor (`{"cursor":"0:1234"}`); the stream's
//! `$maxCount` is set to 1 when it is created, so KurrentDB keeps only the
//! newest. Parked effects go to `factos-parked-{runner}`, one event each.
//! Their event types (`$factos-checkpoint`, `$factos-parked-effect`) start
//! with `$`, so KurrentDB's system-event filter, and every factos read,
//! leaves them out of the application's log. In a scoped store the
//! streams carry the scope's prefix. The `factos-checkpoint-` and
//! `factos-parked-` stream prefixes are reserved.

use bytes::Bytes;
use factos::{Checkpoints, Cursor, EffectKey, EventId, ParkedEffect, Position, StoreError};
use kurrentdb::{EventData, ReadStreamOptions, StreamMetadata, StreamPosition};
use serde::{Deserialize, Serialize};

use crate::error::KurrentError;
use crate::store::KurrentStore;

const CHECKPOINT: &str = "$factos-checkpoint";
const PARKED: &str = "$factos-parked-effect";

#[derive(Debug, Serialize, Deserialize)]
struct SavedCursor {
    cursor: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedParked {
    event: String,
    index: u32,
    position: u64,
    attempts: u32,
    error: String,
}

fn backend(error: kurrentdb::Error) -> StoreError {
    StoreError::backend(KurrentError::Kurrent(error))
}

fn unreadable(stream: &str, revision: u64, reason: String) -> StoreError {
    StoreError::backend(KurrentError::Unreadable {
        stream: stream.to_owned(),
        revision,
        reason,
    })
}

impl KurrentStore {
    /// The events of the bookkeeping stream `stream` (newest first when
    /// `backwards`), at most `count`, with their revisions and data.
    async fn bookkeeping(&self, stream: &str, backwards: bool, count: usize) -> Result<Vec<(u64, Bytes)>, StoreError> {
        let options = ReadStreamOptions::default().max_count(count);
        let options = if backwards {
            options.backwards().position(StreamPosition::End)
        } else {
            options.forwards().position(StreamPosition::Start)
        };
        Ok(self
            .raw_stream(stream, &options)
            .await?
            .into_iter()
            .map(|event| (event.revision, event.data))
            .collect())
    }

    async fn write_bookkeeping(
        &self,
        stream: &str,
        event_type: &str,
        data: &impl Serialize,
    ) -> Result<u64, StoreError> {
        let event = EventData::json(event_type, data).map_err(StoreError::backend)?;
        let written = self
            .client()
            .append_to_stream(stream, &Default::default(), event)
            .await
            .map_err(backend)?;
        Ok(written.next_expected_version)
    }
}

impl Checkpoints for KurrentStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>, StoreError> {
        let stream = self.scope().raw_stream(&format!("factos-checkpoint-{name}"));
        let Some((revision, data)) = self.bookkeeping(&stream, true, 1).await?.into_iter().next() else {
            return Ok(None);
        };
        let saved: SavedCursor =
            serde_json::from_slice(&data).map_err(|e| unreadable(&stream, revision, e.to_string()))?;
        saved
            .cursor
            .parse()
            .map(Some)
            .map_err(|e: factos::InvalidCursor| unreadable(&stream, revision, e.to_string()))
    }

    async fn save_checkpoint(&self, name: &str, cursor: Cursor) -> Result<(), StoreError> {
        let stream = self.scope().raw_stream(&format!("factos-checkpoint-{name}"));
        let saved = SavedCursor {
            cursor: cursor.to_string(),
        };
        if self.write_bookkeeping(&stream, CHECKPOINT, &saved).await? == 0 {
            // A new checkpoint stream: only its newest event matters.
            let keep_one = StreamMetadata::builder().max_count(1).build();
            self.client()
                .set_stream_metadata(stream.as_str(), &Default::default(), &keep_one)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn park_effect(&self, parked: ParkedEffect) -> Result<(), StoreError> {
        let stream = self.scope().raw_stream(&format!("factos-parked-{}", parked.runner));
        let saved = SavedParked {
            event: parked.key.event.to_string(),
            index: parked.key.index,
            position: parked.position.value(),
            attempts: parked.attempts,
            error: parked.error,
        };
        self.write_bookkeeping(&stream, PARKED, &saved).await.map(drop)
    }

    async fn parked_effects(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError> {
        let stream = self.scope().raw_stream(&format!("factos-parked-{runner}"));
        self.bookkeeping(&stream, false, usize::MAX)
            .await?
            .into_iter()
            .map(|(revision, data)| {
                let saved: SavedParked =
                    serde_json::from_slice(&data).map_err(|e| unreadable(&stream, revision, e.to_string()))?;
                let event = uuid::Uuid::parse_str(&saved.event)
                    .map(EventId::from_uuid)
                    .map_err(|e| unreadable(&stream, revision, e.to_string()))?;
                Ok(ParkedEffect {
                    runner: runner.to_owned(),
                    key: EffectKey {
                        event,
                        index: saved.index,
                    },
                    position: Position::new(saved.position),
                    attempts: saved.attempts,
                    error: saved.error,
                })
            })
            .collect()
    }
}
