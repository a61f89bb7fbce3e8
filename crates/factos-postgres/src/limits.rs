//! Time limits: how long a store waits for the server, the pool and its own
//! decisions, so that nothing hangs and no lock is held forever.

use std::time::Duration;

/// How [`crate::PgStore::connect_with`] builds its connection pool.
///
/// ```
/// use std::time::Duration;
/// use factos_postgres::PoolOptions;
/// let options = PoolOptions::new(16).connect_timeout(Duration::from_secs(2));
/// assert_eq!(options.max_connections, 16);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolOptions {
    /// The most connections the pool opens.
    pub max_connections: usize,
    /// How long opening one connection may take, PostgreSQL's startup
    /// included ([`DEFAULT_CONNECT_TIMEOUT`] by default). A server that
    /// accepts TCP connections and never answers fails within it.
    pub connect_timeout: Duration,
    /// How long a call waits for a free connection when all are in use
    /// ([`DEFAULT_POOL_WAIT_TIMEOUT`] by default).
    pub wait_timeout: Duration,
}

/// The default [`PoolOptions::connect_timeout`]: 5 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default [`PoolOptions::wait_timeout`]: 10 seconds.
pub const DEFAULT_POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`crate::PgStore::with_decision_timeout`]: 5 seconds.
pub const DEFAULT_DECISION_TIMEOUT: Duration = Duration::from_secs(5);
/// The default [`crate::PgStore::with_statement_timeout`]: 30 seconds.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

impl PoolOptions {
    /// At most `max_connections` connections, default time limits.
    pub fn new(max_connections: usize) -> Self {
        Self {
            max_connections,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            wait_timeout: DEFAULT_POOL_WAIT_TIMEOUT,
        }
    }

    /// Sets [`PoolOptions::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`PoolOptions::wait_timeout`].
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }
}

impl Default for PoolOptions {
    /// 16 connections, default time limits.
    fn default() -> Self {
        Self::new(16)
    }
}

/// What a store sets on each of its transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    /// `statement_timeout` of every transaction; `None` leaves the server's.
    pub(crate) statement: Option<Duration>,
    /// How long a decision may hold its transaction (and its locks).
    pub(crate) decision: Duration,
    /// The schema, quoted, when the store has one of its own; otherwise
    /// the connection's `search_path` decides.
    pub(crate) schema: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            statement: Some(DEFAULT_STATEMENT_TIMEOUT),
            decision: DEFAULT_DECISION_TIMEOUT,
            schema: None,
        }
    }
}

impl Limits {
    /// The statements that open a transaction, sent as one round trip.
    ///
    /// READ COMMITTED gives every statement a snapshot taken when it
    /// starts, which is what makes a read after taking locks see every
    /// writer that held them. A decision's transaction also gets
    /// `idle_in_transaction_session_timeout`: if its decider hangs, the
    /// server ends the session after the limit, which releases its locks,
    /// so one stuck decision cannot block matching writers for longer. A
    /// store with a schema of its own sets `search_path` to it (creating it
    /// first when `create_schema`, for `migrate`). All settings are
    /// `SET LOCAL`, so nothing outlives the transaction (which keeps
    /// connections clean behind transaction-mode poolers).
    pub(crate) fn begin(&self, decision: bool, create_schema: bool) -> String {
        let mut sql = String::from("BEGIN ISOLATION LEVEL READ COMMITTED");
        if let Some(schema) = &self.schema {
            if create_schema {
                sql.push_str(&format!("; CREATE SCHEMA IF NOT EXISTS {schema}"));
            }
            sql.push_str(&format!("; {}", self.search_path().unwrap_or_default()));
        }
        if let Some(statement) = self.statement {
            sql.push_str(&format!("; SET LOCAL statement_timeout = {}", millis(statement)));
        }
        if decision {
            sql.push_str(&format!(
                "; SET LOCAL idle_in_transaction_session_timeout = {}",
                millis(self.decision)
            ));
        }
        sql
    }
}

impl Limits {
    /// The statement that puts a transaction in the store's schema.
    pub(crate) fn search_path(&self) -> Option<String> {
        self.schema
            .as_ref()
            .map(|schema| format!("SET LOCAL search_path TO {schema}"))
    }
}

/// `name` as a quoted PostgreSQL identifier.
///
/// # Errors
///
/// Why PostgreSQL would not take it as a schema name: empty, longer than
/// 63 bytes (it would be truncated), or holding a NUL.
pub(crate) fn quote_schema(name: &str) -> Result<String, &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > 63 {
        return Err("it is longer than PostgreSQL's 63 bytes");
    }
    if name.contains('\0') {
        return Err("it contains a NUL character");
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// A duration as a whole number of milliseconds, at least 1 (0 would
/// disable a PostgreSQL timeout).
pub(crate) fn millis(duration: Duration) -> u128 {
    duration.as_millis().max(1)
}
