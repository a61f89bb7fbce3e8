//! The crate's error type.

use thiserror::Error;

/// What the D1 backend can fail with. Store operations report these inside
/// [`factos::StoreError::Backend`]; conflicts are factos' own typed errors.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum D1Error {
    /// D1 (or the binding to it) failed; the message is D1's. (D1's own
    /// error holds a JavaScript value, which cannot cross threads, so it is
    /// kept as text.)
    #[error("D1 failed during {during}: {message}")]
    D1 {
        /// What the store was doing.
        during: &'static str,
        /// D1's message.
        message: String,
    },
    /// A row that no append could have written.
    #[error("the event at position {position} cannot be read: {reason}")]
    CorruptRow {
        /// Where it sits.
        position: i64,
        /// What is wrong.
        reason: String,
    },
    /// The database holds a schema newer than this crate knows.
    #[error("the database has factos schema version {found}; this release knows up to {known}")]
    UnknownSchema {
        /// The version found.
        found: i64,
        /// The newest version this release can use.
        known: i64,
    },
    /// The database has no factos schema yet.
    #[error("the database has no factos schema; run D1Store::migrate first")]
    NotMigrated,
    /// D1 refused a batch without saying why, or the reason could not be
    /// found by reading afterwards.
    #[error("D1 wrote nothing for an append and no check explains why: {0}")]
    Unexplained(String),
}

impl D1Error {
    /// Wraps a `worker` error met during `during`.
    pub(crate) fn d1(during: &'static str, error: worker::Error) -> Self {
        D1Error::D1 {
            during,
            message: error.to_string(),
        }
    }
}

impl From<D1Error> for factos::StoreError {
    fn from(error: D1Error) -> Self {
        factos::StoreError::backend(error)
    }
}
