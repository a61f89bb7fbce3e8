//! Forgetting on the in-memory reference store.

mod cases;

async fn fresh() -> Result<(factos::MemoryStore,), Box<dyn std::error::Error + Send + Sync>> {
    Ok((factos::MemoryStore::new(),))
}

forget_cases!(fresh);
