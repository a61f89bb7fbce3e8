//! Read models on SQLite files pass the projection cases fed three ways:
//! in the events' own database, in a database of their own fed by a store
//! in another file, and fed by KurrentDB (the in-process test server, or a
//! real one with `FACTOS_KURRENTDB_URL`).
//!
//! Child processes are this test binary run again with `--ignored --exact
//! child_process`; the environment says where the events and the read
//! model are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use factos::{BoxError, Delivered, EventStore, Follow, Projection, Query, StoredEvent};
use factos_conformance::projections::{ProjectionFixture, run_projector, tags_to_count, tally_sql};
use factos_kurrentdb::KurrentStore;
use factos_sqlite::{SqliteProjection, SqliteStore};
use rusqlite::Transaction;

/// The tally (see `factos_conformance::projections`) in SQLite.
struct Tally {
    refuse_poison: bool,
}

impl Projection for Tally {
    type Event = StoredEvent;
    fn name(&self) -> &str {
        "tally"
    }
    fn query(&self) -> Query {
        Query::all()
    }
}

impl SqliteProjection for Tally {
    fn apply(&mut self, tx: &Transaction<'_>, events: &[Delivered<StoredEvent>]) -> Result<(), BoxError> {
        tx.execute(tally_sql::CREATE, [])?;
        for tag in tags_to_count(events, self.refuse_poison)? {
            tx.execute(tally_sql::COUNT, [tag])?;
        }
        Ok(())
    }
    fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), BoxError> {
        tx.execute(tally_sql::DROP, [])?;
        Ok(())
    }
}

/// A read model in a SQLite file, fed by `S`.
struct SqliteReadModel<S> {
    _dir: tempfile::TempDir,
    events: S,
    /// What a child process needs to reach the events.
    events_env: Vec<(&'static str, String)>,
    read_models: SqliteStore,
    read_model_path: PathBuf,
}

async fn open(path: &Path) -> Result<SqliteStore, BoxError> {
    let store = SqliteStore::open(path)?;
    store.migrate().await?;
    Ok(store)
}

/// Events in `events.db`, the read model in the same file or in another.
async fn sqlite_events(separate: bool) -> Result<SqliteReadModel<SqliteStore>, BoxError> {
    let dir = tempfile::tempdir()?;
    let events_path = dir.path().join("events.db");
    let read_model_path = dir.path().join(if separate { "read_model.db" } else { "events.db" });
    Ok(SqliteReadModel {
        events: open(&events_path).await?,
        events_env: vec![("FACTOS_PROJECTION_EVENTS", events_path.display().to_string())],
        read_models: open(&read_model_path).await?,
        _dir: dir,
        read_model_path,
    })
}

/// Events in KurrentDB, the read model in a SQLite file.
async fn kurrentdb_events() -> Result<SqliteReadModel<KurrentStore>, BoxError> {
    let dir = tempfile::tempdir()?;
    let read_model_path = dir.path().join("read_model.db");
    let (url, prefix) = factos_test_kurrentdb::fresh_target().await?;
    let prefix = prefix.unwrap_or_default();
    Ok(SqliteReadModel {
        events: kurrentdb(&url, &prefix)?,
        events_env: vec![
            ("FACTOS_PROJECTION_KURRENTDB", url),
            ("FACTOS_PROJECTION_PREFIX", prefix),
        ],
        read_models: open(&read_model_path).await?,
        _dir: dir,
        read_model_path,
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

impl<S: EventStore + Follow + Sync> ProjectionFixture for SqliteReadModel<S> {
    type Source = S;
    type ReadModels = SqliteStore;
    type Tally = Tally;

    fn source(&self) -> &S {
        &self.events
    }
    fn read_models(&self) -> &SqliteStore {
        &self.read_models
    }
    async fn reopen(&self) -> Result<SqliteStore, BoxError> {
        open(&self.read_model_path).await
    }
    fn tally(&self, refuse_poison: bool) -> Tally {
        Tally { refuse_poison }
    }
    async fn tallies(&self) -> Result<BTreeMap<String, i64>, BoxError> {
        let conn = rusqlite::Connection::open(&self.read_model_path)?;
        let exists: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'tallies'",
            [],
            |row| row.get(0),
        )?;
        if !exists {
            return Ok(BTreeMap::new());
        }
        let mut stmt = conn.prepare(tally_sql::SELECT)?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
    fn spawn_projector(&self) -> std::io::Result<std::process::Child> {
        let read_model = self.read_model_path.display().to_string();
        let mut env: Vec<(&str, &str)> = self.events_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.push(("FACTOS_PROJECTION_READ_MODEL", &read_model));
        factos_conformance::child::spawn_child_process(&env)
    }
}

mod in_the_events_database {
    factos_conformance::projection_tests!(|| super::sqlite_events(false));
}

mod in_a_database_of_its_own {
    factos_conformance::projection_tests!(|| super::sqlite_events(true));
}

mod fed_by_kurrentdb {
    factos_conformance::projection_tests!(super::kurrentdb_events);
}

/// The entry point of child processes; does nothing unless started by a
/// projection case.
#[test]
#[ignore = "run as a child process by the projection cases"]
fn child_process() -> Result<(), BoxError> {
    let Ok(read_model) = std::env::var("FACTOS_PROJECTION_READ_MODEL") else {
        return Ok(());
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        let read_models = SqliteStore::open(&read_model)?;
        let tally = Tally { refuse_poison: false };
        if let Ok(url) = std::env::var("FACTOS_PROJECTION_KURRENTDB") {
            let prefix = std::env::var("FACTOS_PROJECTION_PREFIX")?;
            run_projector(&kurrentdb(&url, &prefix)?, &read_models, tally).await?;
        } else {
            let events = SqliteStore::open(std::env::var("FACTOS_PROJECTION_EVENTS")?)?;
            run_projector(&events, &read_models, tally).await?;
        }
        Ok(())
    })
}

/// The buyers of concert 1, from `TicketSold` events decoded by today's
/// code.
struct Buyers;

impl Projection for Buyers {
    type Event = factos_conformance::tickets::TicketSold;
    fn name(&self) -> &str {
        "buyers"
    }
    fn query(&self) -> Query {
        factos_conformance::tickets::concert_query(1)
    }
}

impl SqliteProjection for Buyers {
    fn apply(&mut self, tx: &Transaction<'_>, events: &[Delivered<Self::Event>]) -> Result<(), BoxError> {
        tx.execute("CREATE TABLE IF NOT EXISTS buyers (buyer INTEGER NOT NULL)", [])?;
        for sold in events {
            tx.execute("INSERT INTO buyers (buyer) VALUES (?1)", [sold.record.event.buyer])?;
        }
        Ok(())
    }
    fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), BoxError> {
        tx.execute("DROP TABLE IF EXISTS buyers", [])?;
        Ok(())
    }
}

#[tokio::test]
async fn a_projection_decodes_events_stored_by_older_code() -> Result<(), BoxError> {
    use factos::upcast::Upcasting;
    use factos::{AppendRequest, JsonCodec, Projector};
    use factos_conformance::cases::sale_of_version_1;
    use factos_conformance::tickets::{TicketSold, concert_stream};

    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    let store = SqliteStore::open(&db)?;
    store.migrate().await?;
    let old = (0..3).map(|buyer| sale_of_version_1(1, buyer)).collect();
    store.append(AppendRequest::new(concert_stream(1), old)).await?;
    let codec = Upcasting::new(
        JsonCodec::<TicketSold>::new(),
        factos_conformance::cases::ticket_upcasters()?,
    );
    Projector::new(&store, &store, Buyers, codec).catch_up().await?;
    let buyers: Vec<u32> = rusqlite::Connection::open(&db)?
        .prepare("SELECT buyer FROM buyers ORDER BY rowid")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    assert_eq!(buyers, vec![0, 1, 2]);
    Ok(())
}
