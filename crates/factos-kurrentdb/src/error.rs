//! The crate's error type.

use factos::BoxError;
use thiserror::Error;

/// What the KurrentDB backend can fail with.
///
/// Store operations report these inside [`factos::StoreError::Backend`]
/// (downcast the source to branch on them); conflicts and refusals are
/// factos' own typed errors.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KurrentError {
    /// The connection string is not one the official client accepts.
    #[error("invalid KurrentDB connection string")]
    InvalidConnectionString(#[source] kurrentdb::ClientSettingsParseError),
    /// The client could not be created (it needs a tokio runtime).
    #[error("cannot create the KurrentDB client")]
    Client(#[source] BoxError),
    /// The prefix given to [`crate::KurrentStore::scoped`] cannot scope a
    /// store.
    #[error("invalid stream prefix {prefix:?}: {problem}")]
    InvalidPrefix {
        /// The prefix.
        prefix: String,
        /// Why.
        problem: &'static str,
    },
    /// The server or the connection to it failed.
    #[error("KurrentDB failed")]
    Kurrent(#[from] kurrentdb::Error),
    /// An event in the database cannot be read as a factos event.
    #[error("event {revision} of stream {stream:?} cannot be read by factos: {reason}")]
    Unreadable {
        /// Its stream.
        stream: String,
        /// Its revision in the stream.
        revision: u64,
        /// Why.
        reason: String,
    },
    /// The server acknowledged an append but the stream does not hold the
    /// batch where it said it wrote it.
    #[error("KurrentDB acknowledged an append to {stream:?} at revision {revision}, but {problem}")]
    Unconfirmed {
        /// The stream appended to.
        stream: String,
        /// The revision the server reported.
        revision: u64,
        /// What the read-back found.
        problem: String,
    },
}
