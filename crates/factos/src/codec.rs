//! Codecs: the application's mapping between its domain events and stored
//! events.
//!
//! The application owns its payload encoding. A codec turns a domain event
//! into a [`NewEvent`] (id, type, version, tags, metadata, bytes) and a
//! [`StoredEvent`] back into a domain event. Decode failures are the
//! application's own error type; the dispatch flows wrap them in
//! [`crate::DecodeError`] and stop the read instead of skipping the event.

#[cfg(feature = "serde")]
mod json;
pub mod upcast;

#[cfg(feature = "serde")]
pub use json::{JsonCodec, JsonCodecError, JsonEvent};

use crate::event::NewEvent;
use crate::recorded::StoredEvent;

/// Encodes domain events of type `E` for the store and decodes them back.
pub trait Codec<E> {
    /// The application's encode/decode error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The store-ready form of `event`, with a fresh id.
    ///
    /// # Errors
    ///
    /// When `event` cannot be represented (for example an invalid tag).
    fn encode(&self, event: &E) -> Result<NewEvent, Self::Error>;

    /// The domain event stored in `stored`.
    ///
    /// # Errors
    ///
    /// When the payload is not a valid `E` of the stored type and version.
    fn decode(&self, stored: &StoredEvent) -> Result<E, Self::Error>;
}

impl<E, C: Codec<E> + ?Sized> Codec<E> for &C {
    type Error = C::Error;
    fn encode(&self, event: &E) -> Result<NewEvent, Self::Error> {
        (**self).encode(event)
    }
    fn decode(&self, stored: &StoredEvent) -> Result<E, Self::Error> {
        (**self).decode(stored)
    }
}

/// The identity codec: stored events as they are, for code that works on
/// the store's records rather than on domain events (projections over tags
/// and positions, copying events between stores).
///
/// ```
/// use factos::{Codec, EventId, EventType, NewEvent, Position, Recorded, StoredCodec, StreamId, StreamRevision, Timestamp};
/// let new = NewEvent::new(EventId::random(), EventType::new("Noted")?, b"x".to_vec());
/// let stored = Recorded {
///     position: Position::new(1), id: new.id, stream: StreamId::new("s")?, revision: StreamRevision::FIRST,
///     event_type: new.event_type.clone(), version: new.version, tags: new.tags.clone(),
///     metadata: new.metadata.clone(), recorded_at: Timestamp::UNIX_EPOCH, event: new.data.clone(),
/// };
/// assert_eq!(StoredCodec.decode(&stored)?, stored);
/// assert_eq!(StoredCodec.encode(&stored)?, new);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredCodec;

impl Codec<StoredEvent> for StoredCodec {
    type Error = std::convert::Infallible;

    /// The event as it would be appended again: same id, type, version,
    /// tags, metadata and payload.
    fn encode(&self, stored: &StoredEvent) -> Result<NewEvent, Self::Error> {
        Ok(NewEvent {
            id: stored.id,
            event_type: stored.event_type.clone(),
            version: stored.version,
            tags: stored.tags.clone(),
            metadata: stored.metadata.clone(),
            data: stored.event.clone(),
        })
    }

    fn decode(&self, stored: &StoredEvent) -> Result<StoredEvent, Self::Error> {
        Ok(stored.clone())
    }
}
