//! Opening the store an example runs on: SQLite by default, PostgreSQL with
//! `--database-url` (built with `--features postgres`).

use std::path::PathBuf;

use anyhow::Context as _;
#[cfg(feature = "postgres")]
use factos_postgres::{PgStore, PoolOptions};
use factos_sqlite::SqliteStore;

/// Where an example keeps its events.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The SQLite database file; a fresh one in a temporary directory if
    /// neither this nor --database-url is given.
    #[arg(long, conflicts_with = "database_url")]
    pub database: Option<PathBuf>,
    /// A PostgreSQL connection string (postgres://user@host/db); the example
    /// creates its tables in the connection's schema.
    #[arg(long)]
    pub database_url: Option<String>,
}

/// An opened store.
pub enum Store {
    /// SQLite, with the temporary directory that holds the file if the
    /// example chose it.
    Sqlite(SqliteStore, Option<tempfile::TempDir>),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(PgStore),
}

impl StoreArgs {
    /// Opens and migrates the store; `name` names a temporary SQLite file.
    pub async fn open(&self, name: &str) -> anyhow::Result<Store> {
        #[cfg(not(feature = "postgres"))]
        if self.database_url.is_some() {
            return Err(not_built_with("postgres", "--database-url"));
        }
        #[cfg(feature = "postgres")]
        if let Some(url) = &self.database_url {
            let store = PgStore::connect_with(url, PoolOptions::new(64)).context("--database-url")?;
            store.migrate().await.context("migrating the PostgreSQL schema")?;
            println!("store: PostgreSQL");
            return Ok(Store::Postgres(store));
        }
        let (path, scratch) = match &self.database {
            Some(path) => (path.clone(), None),
            None => {
                let dir = tempfile::tempdir()?;
                (dir.path().join(format!("{name}.db")), Some(dir))
            }
        };
        let store = SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
        store.migrate().await?;
        println!("store: SQLite at {}", path.display());
        Ok(Store::Sqlite(store, scratch))
    }
}

/// The refusal of a flag whose backend this build left out: the examples
/// compile only the backends their features name, so that the SQLite demo
/// compiles no server client.
#[allow(dead_code)]
pub fn not_built_with(feature: &str, flag: &str) -> anyhow::Error {
    anyhow::anyhow!("{flag} needs the example built with its backend: cargo run --features {feature} --example ...")
}
