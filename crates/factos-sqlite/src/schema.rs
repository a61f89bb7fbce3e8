//! Schema versions and migrations, recorded in SQLite's `user_version`.

use rusqlite::Connection;

use crate::error::SqliteError;

/// The schema version this crate writes.
pub const SCHEMA_VERSION: i64 = 6;

/// The migration to each version, in order: entry `i` moves a database from
/// version `i` to `i + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    include_str!("sql/schema_v1.sql"),
    factos_sql::sqlite_dialect::READ_SIDE_SCHEMA,
    include_str!("sql/schema_v3.sql"),
    include_str!("sql/schema_v4.sql"),
    include_str!("sql/schema_v5.sql"),
    factos_sql::sqlite_dialect::PARKED_RETRY_SCHEMA,
];

/// The schema version recorded in the database (0: none).
pub(crate) fn version(conn: &Connection) -> Result<i64, SqliteError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Fails if the database was written by a newer schema.
pub(crate) fn check_not_newer(found: i64) -> Result<(), SqliteError> {
    if found > SCHEMA_VERSION {
        return Err(SqliteError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`] in one immediate transaction, so
/// concurrent migrators (other processes) apply each step once.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), SqliteError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found = version(&tx)?;
    check_not_newer(found)?;
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}
