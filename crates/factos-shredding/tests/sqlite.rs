//! Forgetting on SQLite, each case on a fresh database file.

mod cases;

async fn fresh() -> Result<(factos_sqlite::SqliteStore, tempfile::TempDir), Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let store = factos_sqlite::SqliteStore::open(dir.path().join("events.db"))?;
    store.migrate().await?;
    Ok((store, dir))
}

forget_cases!(fresh);
