//! The crate's error type.

use factos::{BoxError, StoreError};
use thiserror::Error;

/// What the SQLite backend can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// SQLite reported an error. Errors that would quote the statement
    /// (a statement SQLite could not compile) carry SQLite's message
    /// without the generated SQL.
    #[error("SQLite failed")]
    Sqlite(#[source] rusqlite::Error),
    /// A query's SQL predicate is not one well-formed expression; nothing
    /// ran.
    #[error(transparent)]
    InvalidPredicate(#[from] factos::InvalidPredicate),
    /// The database was written by a newer factos-sqlite; writing to it
    /// could corrupt it, so nothing is done.
    #[error(
        "the database has schema version {found}, newer than the {supported} this factos-sqlite supports; upgrade factos-sqlite"
    )]
    SchemaTooNew {
        /// The version recorded in the database.
        found: i64,
        /// The newest version this crate knows.
        supported: i64,
    },
    /// The database has no factos schema yet.
    #[error("the database has no factos schema; call SqliteStore::migrate first")]
    NotMigrated,
    /// A stored row cannot be turned back into an event.
    #[error("corrupt event row at position {position}")]
    CorruptRow {
        /// The row's position.
        position: i64,
        /// What is wrong with it.
        #[source]
        source: BoxError,
    },
    /// A stored snapshot row has a negative position or revision.
    #[error("corrupt snapshot row of decider {decider}")]
    CorruptSnapshot {
        /// The decider whose snapshot it is.
        decider: String,
    },
    /// A parked effect's row cannot be read back.
    #[error("corrupt parked effect of runner {runner:?}")]
    CorruptParkedEffect {
        /// The runner that parked it.
        runner: String,
        /// What is wrong with it.
        #[source]
        source: BoxError,
    },
    /// A stored checkpoint is not a cursor.
    #[error("corrupt checkpoint")]
    CorruptCheckpoint(#[source] factos::InvalidCursor),
    /// A value does not fit SQLite's signed 64-bit integers.
    #[error("{what} {value} does not fit a signed 64-bit integer")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// The group transaction this write ran in failed (to begin, or to
    /// commit): nothing of the write was kept.
    #[error("the write's group transaction failed")]
    Group(#[source] std::sync::Arc<SqliteError>),
    /// The store's writer thread could not be started.
    #[error("cannot start the SQLite writer thread")]
    WriterThread(#[source] std::io::Error),
    /// The store's writer thread is gone (it panicked); nothing more can be
    /// written through this store.
    #[error("the SQLite writer thread is gone")]
    WriterGone,
    /// A decision on a context that recently lost a race waited longer
    /// than [`crate::SqliteOptions::decision_timeout`] for the decision
    /// ahead of it on the same context; nothing was read or written.
    #[error("a decision waited longer than its limit of {after:?} for another decision on the same context")]
    DecisionTimeout {
        /// The limit.
        after: std::time::Duration,
    },
    /// The blocking task running a database call panicked or was cancelled.
    #[error("database task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl From<rusqlite::Error> for SqliteError {
    fn from(error: rusqlite::Error) -> Self {
        match error {
            // Its text quotes the whole statement: generated SQL, possibly
            // megabytes of it, never belongs in a message.
            rusqlite::Error::SqlInputError { error, msg, .. } => {
                SqliteError::Sqlite(rusqlite::Error::SqliteFailure(error, Some(msg)))
            }
            other => SqliteError::Sqlite(other),
        }
    }
}

impl SqliteError {
    /// Whether the database stayed locked by another connection or process
    /// for longer than the busy timeout. Nothing was written; retrying is
    /// safe.
    pub fn is_busy(&self) -> bool {
        match self {
            SqliteError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                )
            }
            SqliteError::Group(cause) => cause.is_busy(),
            _ => false,
        }
    }
}

impl SqliteError {
    /// Whether a time limit of the store ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SqliteError::DecisionTimeout { .. })
    }
}

impl From<SqliteError> for StoreError {
    fn from(error: SqliteError) -> Self {
        if let SqliteError::InvalidPredicate(invalid) = error {
            return StoreError::InvalidPredicate(invalid);
        }
        if error.is_busy() {
            StoreError::contention(error)
        } else {
            StoreError::backend(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_sqlite_cannot_compile_is_reported_without_its_sql() -> Result<(), rusqlite::Error> {
        let conn = rusqlite::Connection::open_in_memory()?;
        let generated = "SELECT position FROM events WHERE tag_generated_here = ?1 UNION SELEC";
        let error = conn.prepare(generated).err().map(SqliteError::from);
        let mut chain = Vec::new();
        let mut cause: Option<&dyn std::error::Error> = error.as_ref().map(|e| e as _);
        while let Some(e) = cause {
            chain.push(e.to_string());
            cause = e.source();
        }
        assert!(!chain.is_empty(), "the statement must not compile");
        assert!(
            chain.iter().all(|text| !text.contains("tag_generated_here")),
            "{chain:?}"
        );
        assert!(chain.iter().any(|text| text.contains("syntax error")), "{chain:?}");
        Ok(())
    }
}
