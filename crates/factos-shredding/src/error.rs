//! [`ShreddingError`]: what goes wrong reading encrypted personal data.

use factos::EventId;

/// Why a stored event's personal data could not be read (a failed read
/// returns it as the source of a `StoreError::Backend`); a forgotten
/// subject is not an error, it reads as [`crate::Personal::Forgotten`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShreddingError {
    /// A payload or value is not valid JSON.
    #[error("a personal payload is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// An encrypted value is malformed.
    #[error("event {id} holds a malformed encrypted value")]
    Envelope {
        /// The event.
        id: EventId,
    },
    /// An encrypted value does not decrypt with its subject's key: it was
    /// altered, or moved from another event.
    #[error("event {id} holds an encrypted value that does not decrypt with its subject's key")]
    Decrypt {
        /// The event.
        id: EventId,
    },
    /// The cipher refused its input (a plaintext too large for AES-GCM).
    #[error("the cipher refused to encrypt a value")]
    Cipher,
    /// The operating system gave no random bytes for a new key.
    #[error("no random bytes for a new data key")]
    Random(#[source] getrandom::Error),
}
