//! A JSON codec over serde for applications that only want to say, per
//! event, its type name, version and tags.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::codec::Codec;
use crate::event::{EventId, NewEvent};
use crate::name::{EventType, InvalidName, Tag};
use crate::recorded::StoredEvent;

/// What an event type tells the [`JsonCodec`] about each event.
pub trait JsonEvent: Serialize + DeserializeOwned {
    /// The stored event type, matched by queries (for an enum: usually the
    /// variant name).
    fn event_type(&self) -> &'static str;

    /// The tags that place the event in consistency boundaries.
    fn tags(&self) -> Vec<String>;

    /// The payload schema version.
    fn version(&self) -> u32 {
        1
    }
}

/// Why the [`JsonCodec`] could not encode or decode an event.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JsonCodecError {
    /// The payload is not valid JSON for the event type.
    #[error("invalid JSON payload")]
    Json(#[from] serde_json::Error),
    /// The event's type name or one of its tags is invalid.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// The payload decoded to an event of another type than the stored one.
    #[error("payload decodes to a {decoded} event but was stored as {stored}")]
    TypeMismatch {
        /// The stored type.
        stored: EventType,
        /// The decoded event's type.
        decoded: &'static str,
    },
}

/// Stores events as the JSON serde makes of them, with fresh random ids.
///
/// ```
/// use factos::{Codec, JsonCodec, JsonEvent};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// enum Event { Registered { name: String } }
///
/// impl JsonEvent for Event {
///     fn event_type(&self) -> &'static str { "Registered" }
///     fn tags(&self) -> Vec<String> {
///         match self { Event::Registered { name } => vec![format!("username:{name}")] }
///     }
/// }
///
/// let codec = JsonCodec::<Event>::new();
/// let new = codec.encode(&Event::Registered { name: "ada".into() })?;
/// assert_eq!(new.event_type.as_str(), "Registered");
/// assert_eq!(new.tags.iter().next().map(|t| t.as_str()), Some("username:ada"));
/// # Ok::<(), factos::JsonCodecError>(())
/// ```
pub struct JsonCodec<E> {
    _event: PhantomData<fn() -> E>,
}

impl<E> JsonCodec<E> {
    /// A codec for `E`.
    pub fn new() -> Self {
        Self { _event: PhantomData }
    }
}

impl<E> Default for JsonCodec<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Clone for JsonCodec<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for JsonCodec<E> {}

impl<E> fmt::Debug for JsonCodec<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JsonCodec")
    }
}

impl<E: JsonEvent> Codec<E> for JsonCodec<E> {
    type Error = JsonCodecError;

    fn encode(&self, event: &E) -> Result<NewEvent, JsonCodecError> {
        let event_type = EventType::new(event.event_type())?;
        let tags = event.tags().into_iter().map(Tag::new).collect::<Result<Vec<_>, _>>()?;
        Ok(NewEvent::new(EventId::random(), event_type, serde_json::to_vec(event)?)
            .with_version(event.version())
            .with_tags(tags))
    }

    fn decode(&self, stored: &StoredEvent) -> Result<E, JsonCodecError> {
        let event: E = serde_json::from_slice(&stored.event)?;
        if event.event_type() != stored.event_type.as_str() {
            return Err(JsonCodecError::TypeMismatch {
                stored: stored.event_type.clone(),
                decoded: event.event_type(),
            });
        }
        Ok(event)
    }
}
