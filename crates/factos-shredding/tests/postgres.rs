//! Forgetting on a real PostgreSQL server, each case in a fresh schema.

mod cases;

async fn fresh() -> Result<(factos_postgres::PgStore,), Box<dyn std::error::Error + Send + Sync>> {
    let cluster = factos_test_postgres::Cluster::shared()?;
    let (config, _) = cluster.fresh_schema().await?;
    let store = factos_postgres::PgStore::connect_with(config, factos_postgres::PoolOptions::new(16))?;
    store.migrate().await?;
    Ok((store,))
}

forget_cases!(fresh);
