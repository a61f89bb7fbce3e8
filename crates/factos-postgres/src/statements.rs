//! The fixed statements of the hot paths, prepared once per connection.
//!
//! Each is prepared on a connection's first use (deadpool's per-connection
//! statement cache) and executed by name afterwards, so the server parses
//! and plans it once. Stores built with
//! [`PgStore::with_prepared_statements`]`(false)`, for transaction-mode
//! poolers, send them unnamed instead: a pooler like PgBouncer before 1.21
//! hands each transaction to any server connection, where a statement
//! prepared on another one does not exist.
//!
//! [`PgStore::with_prepared_statements`]: crate::PgStore::with_prepared_statements

use deadpool_postgres::Object;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row, Statement};

use crate::error::PgError;
use crate::store::append::CALL_TYPES;

/// The text of the advisory-lock statement.
pub(crate) const ADVISORY_LOCKS: &str = include_str!("sql/advisory_locks.sql");
/// The text of the statement that sets `lock_timeout`.
pub(crate) const SET_LOCK_TIMEOUT: &str = include_str!("sql/set_lock_timeout.sql");

/// A connection's prepared fixed statements; `None` where statements go
/// unnamed.
#[derive(Debug, Default)]
pub(crate) struct Fixed {
    pub(crate) locks: Option<Statement>,
    pub(crate) append: Option<Statement>,
    pub(crate) append_alone: Option<Statement>,
    pub(crate) lock_timeout: Option<Statement>,
}

impl Fixed {
    /// The statements of `object` for a store whose append calls are
    /// `calls` (in a transaction, alone): from the connection's cache,
    /// prepared (all in one round trip) on its first use; none unless
    /// `prepared`.
    pub(crate) async fn prepare(object: &Object, prepared: bool, calls: [&str; 2]) -> Result<Self, PgError> {
        if !prepared {
            return Ok(Self::default());
        }
        let (locks, append, append_alone, lock_timeout) = tokio::try_join!(
            object.prepare_typed_cached(ADVISORY_LOCKS, &[Type::INT8_ARRAY, Type::BOOL_ARRAY]),
            object.prepare_typed_cached(calls[0], &CALL_TYPES),
            object.prepare_typed_cached(calls[1], &CALL_TYPES),
            object.prepare_typed_cached(SET_LOCK_TIMEOUT, &[Type::TEXT]),
        )?;
        Ok(Self {
            locks: Some(locks),
            append: Some(append),
            append_alone: Some(append_alone),
            lock_timeout: Some(lock_timeout),
        })
    }
}

/// Runs `sql` with `params`: by name when it is `prepared`, else unnamed.
/// Either way the request is sent when the future is first polled, so
/// futures joined in order are pipelined in that order.
pub(crate) async fn query<C: GenericClient + Sync>(
    client: &C,
    prepared: Option<&Statement>,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    match prepared {
        Some(statement) => {
            let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(value, _)| *value).collect();
            client.query(statement, &values).await
        }
        None => client.query_typed(sql, params).await,
    }
}
