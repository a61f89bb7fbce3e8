//! Schema versions and migrations, recorded in `factos_schema_version`.

use tokio_postgres::GenericClient;
use tokio_postgres::types::Type;

use crate::error::PgError;
use crate::locks::Keys;

/// The schema version this crate writes.
pub const SCHEMA_VERSION: i32 = 1;

/// The migration to each version, in order: entry `i` moves a schema from
/// version `i` to `i + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [include_str!("sql/schema_v1.sql")];

/// Brings the schema to [`SCHEMA_VERSION`] inside the caller's transaction;
/// an advisory lock makes concurrent migrators apply each step once.
pub(crate) async fn migrate<C: GenericClient + Sync>(client: &C, keys: Keys) -> Result<(), PgError> {
    let lock = keys.migration();
    client
        .execute_typed("SELECT pg_advisory_xact_lock($1)", &[(&lock, Type::INT8)])
        .await?;
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS factos_schema_version (version integer NOT NULL)")
        .await?;
    let found: i32 = client
        .query_typed("SELECT coalesce(max(version), 0) FROM factos_schema_version", &[])
        .await?
        .first()
        .map(|row| row.try_get(0))
        .transpose()?
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(PgError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        client.batch_execute(migration).await?;
        let to = i32::try_from(from + 1).unwrap_or(SCHEMA_VERSION);
        client
            .execute_typed(
                "INSERT INTO factos_schema_version (version) VALUES ($1)",
                &[(&to, Type::INT4)],
            )
            .await?;
    }
    Ok(())
}
