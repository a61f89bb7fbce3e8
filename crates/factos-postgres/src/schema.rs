//! Schema versions and migrations, recorded in `factos_schema_version`.

use tokio_postgres::GenericClient;
use tokio_postgres::types::Type;

use crate::error::PgError;
use crate::locks::Keys;

/// The schema version this crate writes.
pub const SCHEMA_VERSION: i32 = 8;

/// The migration to each version, in order: entry `i` moves a schema from
/// version `i` to `i + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    include_str!("sql/schema_v1.sql"),
    include_str!("sql/schema_v2.sql"),
    include_str!("sql/schema_v3.sql"),
    include_str!("sql/schema_v4.sql"),
    include_str!("sql/schema_v5.sql"),
    include_str!("sql/schema_v6.sql"),
    include_str!("sql/schema_v7.sql"),
    include_str!("sql/schema_v8.sql"),
];

/// Checks that the connection's schema holds exactly the version this crate
/// writes, and returns the schema's name.
///
/// # Errors
///
/// [`PgError::NotMigrated`] for an empty or older schema,
/// [`PgError::SchemaTooNew`] for a newer one.
pub(crate) async fn check<C: GenericClient + Sync>(client: &C) -> Result<String, PgError> {
    let (schema, found) = found(client).await?;
    match found {
        SCHEMA_VERSION => Ok(schema),
        newer if newer > SCHEMA_VERSION => Err(PgError::SchemaTooNew {
            found: newer,
            supported: SCHEMA_VERSION,
        }),
        older => Err(PgError::NotMigrated {
            schema,
            found: older,
            required: SCHEMA_VERSION,
        }),
    }
}

/// The connection's current schema and the version recorded in it (0 when
/// it has none).
pub(crate) async fn found<C: GenericClient + Sync>(client: &C) -> Result<(String, i32), PgError> {
    let row = client
        .query_typed(
            "SELECT current_schema()::text, to_regclass('factos_schema_version') IS NOT NULL",
            &[],
        )
        .await?;
    let (schema, exists): (Option<String>, bool) = match row.first() {
        Some(row) => (row.try_get(0)?, row.try_get(1)?),
        None => (None, false),
    };
    let schema = schema.unwrap_or_default();
    let found = match exists {
        true => version(client).await?,
        false => 0,
    };
    Ok((schema, found))
}

/// The version recorded in `factos_schema_version` (0 when it is empty).
async fn version<C: GenericClient + Sync>(client: &C) -> Result<i32, PgError> {
    Ok(client
        .query_typed("SELECT coalesce(max(version), 0) FROM factos_schema_version", &[])
        .await?
        .first()
        .map(|row| row.try_get(0))
        .transpose()?
        .unwrap_or(0))
}

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
    let found = version(client).await?;
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
