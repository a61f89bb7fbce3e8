//! The crate's error type.

use factos::{BoxError, StoreError};
use thiserror::Error;
use tokio_postgres::error::SqlState;

/// What the PostgreSQL backend can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PgError {
    /// PostgreSQL or the connection to it failed.
    #[error("PostgreSQL failed")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be taken from the pool.
    #[error("no connection available from the pool")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The pool could not be built.
    #[error("cannot build the connection pool")]
    BuildPool(#[from] deadpool_postgres::BuildError),
    /// The database was written by a newer factos-postgres; nothing is done
    /// to it.
    #[error(
        "the database has schema version {found}, newer than the {supported} this factos-postgres supports; upgrade factos-postgres"
    )]
    SchemaTooNew {
        /// The version recorded in the database.
        found: i32,
        /// The newest version this crate knows.
        supported: i32,
    },
    /// A stored row cannot be turned back into an event.
    #[error("corrupt event row at position {position}")]
    CorruptRow {
        /// The row's position.
        position: i64,
        /// What is wrong with it.
        #[source]
        source: BoxError,
    },
    /// A value does not fit PostgreSQL's signed 64-bit integers.
    #[error("{what} {value} does not fit a signed 64-bit integer")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u64,
    },
}

impl PgError {
    /// The SQLSTATE PostgreSQL reported, if any.
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            PgError::Postgres(e) => e.code(),
            PgError::Pool(deadpool_postgres::PoolError::Backend(e)) => e.code(),
            _ => None,
        }
    }

    /// Whether PostgreSQL aborted the transaction because of a concurrent
    /// one (a deadlock, a serialization failure, a lock wait that timed
    /// out). Nothing was written; running the decision again is safe.
    pub fn is_transient_conflict(&self) -> bool {
        matches!(
            self.code(),
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::LOCK_NOT_AVAILABLE
        )
    }

    /// Whether an insert hit the unique event id of an event committed
    /// concurrently (a re-send racing its original).
    pub(crate) fn is_event_id_race(&self) -> bool {
        match self {
            PgError::Postgres(e) => {
                e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    && e.as_db_error().and_then(|d| d.constraint()) == Some("events_event_id_key")
            }
            _ => false,
        }
    }
}

impl From<PgError> for StoreError {
    fn from(error: PgError) -> Self {
        if error.is_transient_conflict() || error.is_event_id_race() {
            StoreError::contention(error)
        } else {
            StoreError::backend(error)
        }
    }
}
