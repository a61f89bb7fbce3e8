//! The durability settings a table was measured with, named in its heading.

use factos_sqlite::{SqliteOptions, Synchronous};
use factos_test_postgres::Cluster;

/// Which PostgreSQL cluster a section runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync`, `synchronous_commit` and `full_page_writes` on (the
    /// server's defaults): every commit waits for its WAL flush.
    Durable,
    /// All three off: commits never wait for the disk.
    Off,
}

impl Durability {
    /// The throwaway cluster with these settings.
    pub fn cluster(self) -> anyhow::Result<&'static Cluster> {
        Ok(match self {
            Durability::Durable => Cluster::durable()?,
            Durability::Off => Cluster::shared()?,
        })
    }

    /// The PostgreSQL settings, for a heading.
    pub fn postgres(self) -> &'static str {
        match self {
            Durability::Durable => "PostgreSQL durable: fsync=on, synchronous_commit=on, full_page_writes=on",
            Durability::Off => "PostgreSQL durability off: fsync=off, synchronous_commit=off, full_page_writes=off",
        }
    }
}

/// SQLite's setting, for a row or heading.
pub fn sqlite_label(synchronous: Synchronous) -> &'static str {
    match synchronous {
        Synchronous::Full => "SQLite synchronous=FULL",
        Synchronous::Normal => "SQLite synchronous=NORMAL",
    }
}

/// Store options with `synchronous`.
pub fn sqlite_options(synchronous: Synchronous) -> SqliteOptions {
    SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    }
}
