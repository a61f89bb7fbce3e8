//! A durable read model for the examples: one table of counters
//! (`key → value`), kept by a projection on SQLite or on PostgreSQL, in the
//! same transaction as its checkpoint.

use std::collections::BTreeMap;

use factos::{BoxError, Codec, Delivered, Projection, Projector, Query, Recorded};
#[cfg(feature = "postgres")]
use factos_postgres::PgProjection;
use factos_sqlite::SqliteProjection;

use crate::support::Store;

/// What the examples project: which events, and which counters each one
/// changes by how much.
pub trait Counters: Send + Sync + 'static {
    /// The events folded.
    type Event: Send + Sync + 'static;
    /// The table (and projection) name.
    fn name(&self) -> &'static str;
    /// The events folded.
    fn query(&self) -> Query;
    /// `(key, delta)` for each counter `event` changes.
    fn changes(&self, event: &Recorded<Self::Event>) -> Vec<(i64, i64)>;
}

fn create(name: &str) -> String {
    format!("CREATE TABLE IF NOT EXISTS {name} (key BIGINT PRIMARY KEY, value BIGINT NOT NULL)")
}

fn upsert(name: &str) -> String {
    format!(
        "INSERT INTO {name} (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = {name}.value + excluded.value"
    )
}

struct OnSqlite<T>(T);

impl<T: Counters> Projection for OnSqlite<T> {
    type Event = T::Event;
    fn name(&self) -> &str {
        self.0.name()
    }
    fn query(&self) -> Query {
        self.0.query()
    }
}

impl<T: Counters> SqliteProjection for OnSqlite<T> {
    fn apply(
        &mut self,
        tx: &factos_sqlite::rusqlite::Transaction<'_>,
        events: &[Delivered<T::Event>],
    ) -> Result<(), BoxError> {
        tx.execute(&create(self.0.name()), [])?;
        for delivered in events {
            for (key, delta) in self.0.changes(&delivered.record) {
                tx.execute(&upsert(self.0.name()), [key, delta])?;
            }
        }
        Ok(())
    }
    fn reset(&mut self, tx: &factos_sqlite::rusqlite::Transaction<'_>) -> Result<(), BoxError> {
        tx.execute(&format!("DROP TABLE IF EXISTS {}", self.0.name()), [])?;
        Ok(())
    }
}

#[cfg(feature = "postgres")]
struct OnPostgres<T>(T);

#[cfg(feature = "postgres")]
impl<T: Counters> Projection for OnPostgres<T> {
    type Event = T::Event;
    fn name(&self) -> &str {
        self.0.name()
    }
    fn query(&self) -> Query {
        self.0.query()
    }
}

#[cfg(feature = "postgres")]
impl<T: Counters> PgProjection for OnPostgres<T> {
    async fn apply(
        &mut self,
        tx: &factos_postgres::tokio_postgres::Transaction<'_>,
        events: &[Delivered<T::Event>],
    ) -> Result<(), BoxError> {
        tx.batch_execute(&create(self.0.name())).await?;
        for delivered in events {
            for (key, delta) in self.0.changes(&delivered.record) {
                tx.execute(&upsert(self.0.name()), &[&key, &delta]).await?;
            }
        }
        Ok(())
    }
    async fn reset(&mut self, tx: &factos_postgres::tokio_postgres::Transaction<'_>) -> Result<(), BoxError> {
        tx.batch_execute(&format!("DROP TABLE IF EXISTS {}", self.0.name()))
            .await?;
        Ok(())
    }
}

/// Brings the read model up to date with the log (a new one catches up from
/// the first event) and returns its counters.
pub async fn catch_up<T, C>(store: &Store, counters: T, codec: C) -> anyhow::Result<BTreeMap<i64, i64>>
where
    T: Counters,
    C: Codec<T::Event> + Clone + Send + Sync + 'static,
{
    let name = counters.name();
    match store {
        Store::Sqlite(store, _) => {
            Projector::new(store, store, OnSqlite(counters), codec)
                .catch_up()
                .await?;
            let path = store
                .path()
                .ok_or_else(|| anyhow::anyhow!("the SQLite store has no file"))?;
            let conn = factos_sqlite::rusqlite::Connection::open(path)?;
            conn.execute(&create(name), [])?;
            let mut stmt = conn.prepare(&format!("SELECT key, value FROM {name}"))?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        }
        #[cfg(feature = "postgres")]
        Store::Postgres(store) => {
            Projector::new(store, store, OnPostgres(counters), codec)
                .catch_up()
                .await?;
            let client = store.pool().get().await?;
            client.batch_execute(&create(name)).await?;
            let rows = client.query(&format!("SELECT key, value FROM {name}"), &[]).await?;
            Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
        }
    }
}
