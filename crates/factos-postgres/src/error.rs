//! The crate's error type.

use std::fmt;
use std::time::Duration;

use factos::{BoxError, StoreError};
use thiserror::Error;
use tokio_postgres::error::SqlState;

/// What the PostgreSQL backend can fail with.
///
/// Like every factos error, a `PgError` says what failed in its own words
/// and leaves its causes to [`std::error::Error::source`], never both. The
/// driver's errors end the chain: a `PgError` made from one already says
/// what the server or the connection said (the SQLSTATE and the server's
/// message, or the driver's words with their IO cause), without the
/// connection pool's wording, and [`PgError::code`] gives the SQLSTATE.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PgError {
    /// PostgreSQL or the connection to it failed. The message carries the
    /// SQLSTATE and the server's words; [`PgError::code`] gives the code.
    #[error("PostgreSQL failed: {}", describe(.0))]
    Postgres(tokio_postgres::Error),
    /// No connection could be had: the server refused it (a wrong password,
    /// an unknown database or user), could not be reached, or the pool is
    /// closed. The message says which, in the server's words.
    #[error("{}", describe_pool(.0))]
    Pool(deadpool_postgres::PoolError),
    /// The connection string could not be parsed.
    #[error("invalid PostgreSQL connection string: {}", describe(.0))]
    InvalidConfig(tokio_postgres::Error),
    /// The name given to [`crate::PgStore::with_schema`] cannot name a
    /// schema.
    #[error("invalid schema name {name:?}: {problem}")]
    InvalidSchemaName {
        /// The name.
        name: String,
        /// Why.
        problem: &'static str,
    },
    /// The pool could not be built.
    #[error("cannot build the connection pool")]
    BuildPool(#[source] deadpool_postgres::BuildError),
    /// A configured time limit ran out; see the crate docs for the defaults.
    #[error("{limit} took longer than its limit of {after:?}")]
    Timeout {
        /// Which limit.
        limit: Limit,
        /// The limit.
        after: Duration,
        /// The failure the limit showed up as, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// An append's connection was lost before its answer, and re-sending
    /// it (with the same event ids) found no primary to answer within the
    /// store's resend window ([`crate::PgStore::with_resend_window`]): the
    /// batch was either committed entirely or not at all. Sending the same
    /// request again later says which (an identical re-send returns the
    /// original records; otherwise it appends).
    #[error("an append's outcome is unknown: no primary answered its re-sends within {window:?}")]
    OutcomeUnknown {
        /// The resend window.
        window: Duration,
        /// The last failure of a re-send.
        #[source]
        source: Box<PgError>,
    },
    /// A replica was asked of a store in [`crate::LockMode::RowLocks`],
    /// whose followers take row locks, which a standby refuses.
    #[error(
        "a replica's followers need LockMode::Advisory or LockMode::TableLock; a standby refuses the row locks of LockMode::RowLocks"
    )]
    ReplicaNeedsAdvisoryLocks,
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
    /// The schema has no factos tables yet, or an older version of them.
    #[error(
        "schema {schema:?} has factos schema version {found}, this factos-postgres needs {required}; call PgStore::migrate first"
    )]
    NotMigrated {
        /// The schema the store works in (the connection's `search_path`).
        schema: String,
        /// The version found (0: none).
        found: i32,
        /// The version this crate needs.
        required: i32,
    },
    /// A query's SQL predicate is not one well-formed expression; nothing
    /// ran.
    #[error(transparent)]
    InvalidPredicate(#[from] factos::InvalidPredicate),
    /// A parked effect's stored cursor is not a cursor.
    #[error("corrupt parked effect of runner {runner:?}")]
    CorruptParkedEffect {
        /// The runner that parked it.
        runner: String,
        /// What is wrong with its cursor.
        #[source]
        source: factos::InvalidCursor,
    },
    /// A stored checkpoint is not a cursor.
    #[error("corrupt checkpoint")]
    CorruptCheckpoint(#[source] factos::InvalidCursor),
    /// A stored snapshot row has a negative position, revision or
    /// generation.
    #[error("corrupt snapshot row of decider {decider}")]
    CorruptSnapshot {
        /// The decider whose snapshot it is.
        decider: String,
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
    /// An event's metadata could not be encoded as JSON.
    #[error("cannot encode an event's metadata as JSON")]
    EncodeMetadata(#[source] serde_json::Error),
    /// The append function answered in a way no version of it does (was
    /// the schema changed by hand?); nothing is assumed about the append.
    #[error("unexpected answer from the append function: {0}")]
    UnexpectedAnswer(&'static str),
    /// A value does not fit PostgreSQL's signed 64-bit integers.
    #[error("{what} {value} does not fit a signed 64-bit integer")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u64,
    },
}

/// The time limits of a [`crate::PgStore`], named by [`PgError::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// Opening a new connection (TCP, TLS and PostgreSQL's startup).
    Connect,
    /// Waiting for a pooled connection while all are in use.
    PoolWait,
    /// A decision, from the transaction its read began to its append.
    Decision,
    /// One statement on the server (`statement_timeout`).
    Statement,
    /// A standby replaying the primary's WAL up to a given point
    /// ([`crate::PgReplica::wait_for_primary`]).
    Replay,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Connect => "connecting to PostgreSQL",
            Limit::PoolWait => "waiting for a pooled connection",
            Limit::Decision => "a decision (from its read to its append)",
            Limit::Statement => "a statement",
            Limit::Replay => "a standby's replay of the primary's writes",
        })
    }
}

/// A driver error in the caller's terms: the SQLSTATE and the server's
/// message for database errors; otherwise the driver's words followed by
/// each of their causes (an IO error, a TLS library's).
fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("SQLSTATE {}: {}", db.code().code(), db.message());
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// A pool's failure in the caller's terms, without the pool's wording.
fn describe_pool(error: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::{PoolError, TimeoutType};
    match error {
        PoolError::Backend(e) => format!("cannot connect to PostgreSQL: {}", describe(e)),
        PoolError::Timeout(TimeoutType::Wait) => "timed out waiting for a free connection".to_owned(),
        PoolError::Timeout(TimeoutType::Create) => "timed out connecting to PostgreSQL".to_owned(),
        PoolError::Timeout(TimeoutType::Recycle) => "timed out checking a pooled connection".to_owned(),
        PoolError::Closed => "the connection pool is closed".to_owned(),
        PoolError::NoRuntimeSpecified => "the connection pool has no async runtime".to_owned(),
        PoolError::PostCreateHook(hook) => format!("a new connection's setup hook failed: {hook}"),
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(error: tokio_postgres::Error) -> Self {
        PgError::Postgres(error)
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        PgError::Pool(error)
    }
}

impl From<deadpool_postgres::BuildError> for PgError {
    fn from(error: deadpool_postgres::BuildError) -> Self {
        PgError::BuildPool(error)
    }
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

    /// Whether a time limit ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PgError::Timeout { .. })
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

    /// Whether the connection was gone: closed by the server (terminated,
    /// shut down, an idle timeout) or by the network.
    pub(crate) fn is_connection_lost(&self) -> bool {
        match self {
            PgError::Postgres(e) => connection_lost(e),
            _ => false,
        }
    }

    /// Whether the failure says the server cannot be used for writing right
    /// now, which a failover ends: the connection was lost, no server
    /// accepting writes could be connected to, or the connection reached a
    /// server that has become a read-only standby (SQLSTATE 25006).
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            PgError::Pool(deadpool_postgres::PoolError::Backend(e)) => connection_lost(e) || e.as_db_error().is_none(),
            PgError::Timeout {
                limit: Limit::Connect, ..
            } => true,
            _ => self.is_connection_lost() || self.is_read_only(),
        }
    }

    /// Whether the server refused to write because it is a standby in
    /// recovery (a demoted primary): the connection must not be reused for
    /// writing.
    pub(crate) fn is_read_only(&self) -> bool {
        self.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION)
    }

    /// Whether the server refused an append alone because the connection's
    /// transaction is stricter than READ COMMITTED (SQLSTATE `FX001`, see
    /// `sql/schema_v4.sql`).
    pub(crate) fn is_isolation_refused(&self) -> bool {
        self.code().is_some_and(|code| code.code() == "FX001")
    }

    /// The statement-timeout cancellation as [`Limit::Statement`].
    pub(crate) fn with_statement_limit(self, limit: Option<Duration>) -> Self {
        match (limit, self.code()) {
            (Some(after), Some(code)) if *code == SqlState::QUERY_CANCELED => PgError::Timeout {
                limit: Limit::Statement,
                after,
                source: Some(Box::new(self)),
            },
            _ => self,
        }
    }
}

/// Whether `error` says the connection is gone rather than that a statement
/// failed.
pub(crate) fn connection_lost(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::IDLE_SESSION_TIMEOUT,
            SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
        ]
        .contains(code),
        None => std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

impl From<PgError> for StoreError {
    fn from(error: PgError) -> Self {
        if let PgError::InvalidPredicate(invalid) = error {
            return StoreError::InvalidPredicate(invalid);
        }
        if error.is_transient_conflict() || error.is_event_id_race() {
            StoreError::contention(error)
        } else {
            StoreError::backend(error)
        }
    }
}
