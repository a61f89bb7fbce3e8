//! `migrate`: the schema, versioned in a table of its own (D1 refuses
//! `PRAGMA user_version`, which the SQLite backend uses).

use serde::Deserialize;
use worker::D1Database;

use crate::error::D1Error;
use crate::statement::Statement;

/// The newest schema version this release writes.
pub(crate) const VERSION: i64 = 3;

/// The statements of each version, in order; each runs in one batch with
/// the version's row, so a version is applied entirely or not at all.
/// Versions 2 and 3 are the read side and the parked effects' retries, as
/// SQLite's 2 and 6.
const VERSIONS: [&str; 3] = [
    include_str!("sql/schema_v1.sql"),
    factos_sql::sqlite_dialect::READ_SIDE_SCHEMA,
    factos_sql::sqlite_dialect::PARKED_RETRY_SCHEMA,
];

#[derive(Debug, Deserialize)]
struct Version {
    version: Option<i64>,
}

/// The schema version the database holds (0: none).
pub(crate) async fn version(db: &D1Database) -> Result<i64, D1Error> {
    let exists: Option<Version> = db
        .prepare("SELECT COUNT(*) AS version FROM sqlite_master WHERE type = 'table' AND name = 'factos_schema'")
        .first(None)
        .await
        .map_err(|e| D1Error::d1("reading the schema version", e))?;
    if exists.and_then(|v| v.version).unwrap_or(0) == 0 {
        return Ok(0);
    }
    let found: Option<Version> = db
        .prepare("SELECT MAX(version) AS version FROM factos_schema")
        .first(None)
        .await
        .map_err(|e| D1Error::d1("reading the schema version", e))?;
    Ok(found.and_then(|v| v.version).unwrap_or(0))
}

/// Creates or upgrades the schema; returns the version found before.
pub(crate) async fn migrate(db: &D1Database) -> Result<i64, D1Error> {
    let found = version(db).await?;
    if found > VERSION {
        return Err(D1Error::UnknownSchema { found, known: VERSION });
    }
    for (index, sql) in VERSIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        let version = index as i64 + 1;
        let mut statements = vec![Statement::new(
            "CREATE TABLE IF NOT EXISTS factos_schema (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )];
        statements.extend(
            sql.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty() && !s.lines().all(|l| l.trim_start().starts_with("--")))
                .map(Statement::new),
        );
        statements.push(Statement::new(format!(
            "INSERT OR IGNORE INTO factos_schema (version, applied_at) VALUES ({version}, unixepoch())"
        )));
        let prepared = statements
            .iter()
            .map(|s| s.prepare(db, "migrating"))
            .collect::<Result<Vec<_>, _>>()?;
        db.batch(prepared).await.map_err(|e| D1Error::d1("migrating", e))?;
    }
    Ok(found)
}
