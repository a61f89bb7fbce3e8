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
