//! Durable checkpoints and parked effects on KurrentDB.
//!
//! Each checkpoint is a stream of its own, `factos-checkpoint-{name}`, whose
//! last event holds the cursor (`{"cursor":"0:1234"}`); the stream's
//! `$maxCount` is set to 1 when it is created, so KurrentDB keeps only the
//! newest. Parked effects go to `factos-parked-{runner}`: one event per
//! parking (`$factos-parked-effect`), per retry request
//! (`$factos-parked-retry`) and per removal (`$factos-parked-discard`); the
//! runner's parked effects are that stream folded. Their event types start
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
const RETRY: &str = "$factos-parked-retry";
const DISCARD: &str = "$factos-parked-discard";

#[derive(Debug, Serialize, Deserialize)]
struct SavedCursor {
    cursor: String,
}

/// A parking. Its cursor is `0:position`: this backend's delivery order
/// is position order.
#[derive(Debug, Serialize, Deserialize)]
struct SavedParked {
    event: String,
    index: u32,
    position: u64,
    attempts: u32,
    error: String,
}

/// A retry request or a removal of one parked effect.
#[derive(Debug, Serialize, Deserialize)]
struct SavedKey {
    event: String,
    index: u32,
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
    /// `backwards`), at most `count`, with their revisions, types and data.
    async fn bookkeeping(
        &self,
        stream: &str,
        backwards: bool,
        count: usize,
    ) -> Result<Vec<(u64, String, Bytes)>, StoreError> {
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
            .map(|event| (event.revision, event.event_type, event.data))
            .collect())
    }

    /// `runner`'s parked effects: its bookkeeping stream folded.
    async fn parked(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError> {
        let stream = parked_stream(self, runner);
        let mut parked: Vec<ParkedEffect> = Vec::new();
        for (revision, event_type, data) in self.bookkeeping(&stream, false, usize::MAX).await? {
            let unreadable = |reason: String| unreadable(&stream, revision, reason);
            match event_type.as_str() {
                PARKED => {
                    let saved: SavedParked = serde_json::from_slice(&data).map_err(|e| unreadable(e.to_string()))?;
                    let key = effect_key(&saved.event, saved.index).map_err(unreadable)?;
                    parked.retain(|p| p.key != key);
                    parked.push(ParkedEffect {
                        runner: runner.to_owned(),
                        key,
                        cursor: Cursor::new(0, Position::new(saved.position)),
                        attempts: saved.attempts,
                        error: saved.error,
                        retry_requested: false,
                    });
                }
                RETRY | DISCARD => {
                    let saved: SavedKey = serde_json::from_slice(&data).map_err(|e| unreadable(e.to_string()))?;
                    let key = effect_key(&saved.event, saved.index).map_err(unreadable)?;
                    if event_type == RETRY {
                        parked
                            .iter_mut()
                            .filter(|p| p.key == key)
                            .for_each(|p| p.retry_requested = true);
                    } else {
                        parked.retain(|p| p.key != key);
                    }
                }
                other => return Err(unreadable(format!("unexpected event type {other:?}"))),
            }
        }
        Ok(parked)
    }

    /// Appends `event_type` for `runner`'s parked effect `key` when there
    /// is one.
    async fn change_parked(&self, event_type: &str, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        if !self.parked(runner).await?.iter().any(|p| p.key == key) {
            return Ok(false);
        }
        let saved = SavedKey {
            event: key.event.to_string(),
            index: key.index,
        };
        self.write_bookkeeping(&parked_stream(self, runner), event_type, &saved)
            .await?;
        Ok(true)
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
        let Some((revision, _, data)) = self.bookkeeping(&stream, true, 1).await?.into_iter().next() else {
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
        let saved = SavedParked {
            event: parked.key.event.to_string(),
            index: parked.key.index,
            position: parked.position().value(),
            attempts: parked.attempts,
            error: parked.error,
        };
        self.write_bookkeeping(&parked_stream(self, &parked.runner), PARKED, &saved)
            .await
            .map(drop)
    }

    async fn parked_effects(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError> {
        self.parked(runner).await
    }

    async fn retry_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        self.change_parked(RETRY, runner, key).await
    }

    async fn discard_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        self.change_parked(DISCARD, runner, key).await
    }
}

/// The bookkeeping stream of `runner`'s parked effects.
fn parked_stream(store: &KurrentStore, runner: &str) -> String {
    store.scope().raw_stream(&format!("factos-parked-{runner}"))
}

/// The effect key stored as `event` (a UUID) and `index`.
fn effect_key(event: &str, index: u32) -> Result<EffectKey, String> {
    let event = uuid::Uuid::parse_str(event)
        .map(EventId::from_uuid)
        .map_err(|e| e.to_string())?;
    Ok(EffectKey { event, index })
}
