//! Read models on the real server pass the projection cases fed three
//! ways: by the store in the same schema (advisory locks, and row locks,
//! whose followers read differently), and by KurrentDB (the in-process
//! test server, or a real one with `FACTOS_KURRENTDB_URL`).
//!
//! Child processes are this test binary run again with `--ignored --exact
//! child_process`; the environment says where the events and the read
//! model are.

use std::collections::BTreeMap;

use factos::{BoxError, EventStore, Follow};
use factos_conformance::projections::{ProjectionFixture, run_projector, tally_sql};
use factos_kurrentdb::KurrentStore;
use factos_postgres::{LockMode, PgStore};
use factos_test_postgres::Cluster;
mod common;

use common::Tally;

/// A read model in a fresh schema, fed by `S`.
struct PgReadModel<S> {
    events: S,
    /// What a child process needs to reach the events.
    events_env: Vec<(&'static str, String)>,
    read_models: PgStore,
    url: String,
    schema: String,
}

/// A migrated store in `schema`.
async fn open(url: &str, schema: &str, mode: LockMode) -> Result<PgStore, BoxError> {
    let store = PgStore::connect(url)?.with_schema(schema)?.with_lock_mode(mode);
    store.migrate().await?;
    Ok(store)
}

async fn fresh_schema() -> Result<(String, String), BoxError> {
    let cluster = Cluster::shared()?;
    let (_, schema) = cluster.fresh_schema().await?;
    Ok((cluster.connection_string(), schema))
}

/// Events and read model in one schema, written with `mode`.
async fn pg_events(mode: LockMode) -> Result<PgReadModel<PgStore>, BoxError> {
    let (url, schema) = fresh_schema().await?;
    let store = open(&url, &schema, mode).await?;
    let mode = if matches!(mode, LockMode::RowLocks) {
        "row"
    } else {
        "advisory"
    };
    Ok(PgReadModel {
        events: store.clone(),
        events_env: vec![("FACTOS_PROJECTION_LOCKS", mode.into())],
        read_models: store,
        url,
        schema,
    })
}

/// Events in KurrentDB, the read model in a fresh schema.
async fn kurrentdb_events() -> Result<PgReadModel<KurrentStore>, BoxError> {
    let (url, schema) = fresh_schema().await?;
    let (kurrentdb_url, prefix) = factos_test_kurrentdb::fresh_target().await?;
    let prefix = prefix.unwrap_or_default();
    Ok(PgReadModel {
        events: kurrentdb(&kurrentdb_url, &prefix)?,
        events_env: vec![
            ("FACTOS_PROJECTION_KURRENTDB", kurrentdb_url),
            ("FACTOS_PROJECTION_PREFIX", prefix),
        ],
        read_models: open(&url, &schema, LockMode::default()).await?,
        url,
        schema,
    })
}

/// A KurrentDB store on `url`, scoped to `prefix` unless it is empty.
fn kurrentdb(url: &str, prefix: &str) -> Result<KurrentStore, BoxError> {
    let store = KurrentStore::connect(url)?;
    Ok(if prefix.is_empty() {
        store
    } else {
        store.scoped(prefix)?
    })
}

impl<S: EventStore + Follow + Sync> ProjectionFixture for PgReadModel<S> {
    type Source = S;
    type ReadModels = PgStore;
    type Tally = Tally;

    fn source(&self) -> &S {
        &self.events
    }
    fn read_models(&self) -> &PgStore {
        &self.read_models
    }
    async fn reopen(&self) -> Result<PgStore, BoxError> {
        open(&self.url, &self.schema, LockMode::default()).await
    }
    fn tally(&self, refuse_poison: bool) -> Tally {
        Tally { refuse_poison }
    }
    async fn tallies(&self) -> Result<BTreeMap<String, i64>, BoxError> {
        let client = self.read_models.pool().get().await?;
        let table = format!("\"{}\".tallies", self.schema);
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await?
            .get(0);
        if !exists {
            return Ok(BTreeMap::new());
        }
        client
            .batch_execute(&format!("SET search_path TO \"{}\"", self.schema))
            .await?;
        let rows = client.query(tally_sql::SELECT, &[]).await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }
    fn spawn_projector(&self) -> std::io::Result<std::process::Child> {
        let mut env: Vec<(&str, &str)> = self.events_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend([
            ("FACTOS_PROJECTION_URL", self.url.as_str()),
            ("FACTOS_PROJECTION_SCHEMA", self.schema.as_str()),
        ]);
        factos_conformance::child::spawn_child_process(&env)
    }
}

mod with_advisory_locks {
    factos_conformance::projection_tests!(|| super::pg_events(factos_postgres::LockMode::default()));
}

mod with_row_locks {
    factos_conformance::projection_tests!(|| super::pg_events(factos_postgres::LockMode::RowLocks));
}

mod fed_by_kurrentdb {
    factos_conformance::projection_tests!(super::kurrentdb_events);
}

/// The entry point of child processes; does nothing unless started by a
/// projection case.
#[test]
#[ignore = "run as a child process by the projection cases"]
fn child_process() -> Result<(), BoxError> {
    let (Ok(url), Ok(schema)) = (
        std::env::var("FACTOS_PROJECTION_URL"),
        std::env::var("FACTOS_PROJECTION_SCHEMA"),
    ) else {
        return Ok(());
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        let tally = Tally { refuse_poison: false };
        if let Ok(kurrentdb_url) = std::env::var("FACTOS_PROJECTION_KURRENTDB") {
            let events = kurrentdb(&kurrentdb_url, &std::env::var("FACTOS_PROJECTION_PREFIX")?)?;
            let read_models = PgStore::connect(url)?.with_schema(&schema)?;
            run_projector(&events, &read_models, tally).await?;
        } else {
            let mode = match std::env::var("FACTOS_PROJECTION_LOCKS")?.as_str() {
                "row" => LockMode::RowLocks,
                _ => LockMode::default(),
            };
            let store = PgStore::connect(url)?.with_schema(&schema)?.with_lock_mode(mode);
            run_projector(&store, &store, tally).await?;
        }
        Ok(())
    })
}
