//! Durable projections on SQLite files: catch-up, rebuild, a failing
//! handler, two projectors at once, and SIGKILL at random moments while
//! writers append.
//!
//! Child processes are this test binary run again with `--ignored --exact
//! child_process`; the environment tells the child what to do.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use factos::{AppendRequest, BoxError, Delivered, EventStore, Query, StoredCodec, StoredEvent, StreamId};
use factos_conformance::tally::{append_tagged, tag_counts, tagged};
use factos_sqlite::{SqliteError, SqliteProjection, SqliteProjector, SqliteStore};
use proptest::prelude::Rng;
use rusqlite::Transaction;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Counts events per tag in a `tallies` table; fails on an event whose
/// payload is `fail` when asked to.
struct Tally {
    fail_on_poison: bool,
}

impl SqliteProjection for Tally {
    type Event = StoredEvent;
    fn name(&self) -> &str {
        "tally"
    }
    fn query(&self) -> Query {
        Query::all()
    }
    fn apply(&mut self, tx: &Transaction<'_>, events: &[Delivered<StoredEvent>]) -> Result<(), BoxError> {
        tx.execute(
            "CREATE TABLE IF NOT EXISTS tallies (tag TEXT PRIMARY KEY, n INTEGER NOT NULL)",
            [],
        )?;
        for delivered in events {
            if self.fail_on_poison && delivered.record.event.event == b"poison" {
                return Err("poisoned event".into());
            }
            for tag in &delivered.record.tags {
                tx.execute(
                    "INSERT INTO tallies (tag, n) VALUES (?1, 1) ON CONFLICT (tag) DO UPDATE SET n = n + 1",
                    [tag.as_str()],
                )?;
            }
        }
        Ok(())
    }
    fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), BoxError> {
        tx.execute("DROP TABLE IF EXISTS tallies", [])?;
        Ok(())
    }
}

fn tallies(db: &Path) -> rusqlite::Result<BTreeMap<String, i64>> {
    let conn = rusqlite::Connection::open(db)?;
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'tallies'",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(BTreeMap::new());
    }
    let mut stmt = conn.prepare("SELECT tag, n FROM tallies")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_projection_catches_up_and_a_rebuild_gives_the_same_read_model() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    let store = SqliteStore::open(&db)?;
    store.migrate().await?;
    let mut rng = factos_conformance::rng(1);
    append_tagged(&store, &mut rng, 40).await?;
    let mut projector = SqliteProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec).with_batch_size(7);
    assert!(projector.catch_up().await? > 40);
    append_tagged(&store, &mut rng, 10).await?;
    projector.catch_up().await?;
    let expected = tag_counts(&store).await?;
    assert_eq!(tallies(&db)?, expected);
    assert_eq!(projector.catch_up().await?, 0, "nothing new");
    projector.rebuild().await?;
    assert_eq!(tallies(&db)?, expected, "a rebuild gives the same read model");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_projection_stops_and_keeps_its_checkpoint_before_the_failing_event() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    let store = SqliteStore::open(&db)?;
    store.migrate().await?;
    let mut rng = factos_conformance::rng(2);
    append_tagged(&store, &mut rng, 5).await?;
    let before_poison = tag_counts(&store).await?;
    let poison = tagged(&mut rng, b"poison");
    store
        .append(AppendRequest::new(StreamId::new("s")?, vec![poison]))
        .await?;
    append_tagged(&store, &mut rng, 5).await?;

    let mut failing = SqliteProjector::new(&store, Tally { fail_on_poison: true }, StoredCodec).with_batch_size(1);
    match failing.catch_up().await {
        Err(SqliteError::Projection(failed)) => assert_eq!(failed.name, "tally"),
        other => panic!("expected the projection's error, got {other:?}"),
    }
    assert_eq!(
        tallies(&db)?,
        before_poison,
        "everything before the poison, nothing after"
    );
    // Fixed, it goes on from its checkpoint.
    let mut fixed = SqliteProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec);
    fixed.catch_up().await?;
    assert_eq!(tallies(&db)?, tag_counts(&store).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_projectors_of_one_projection_never_both_apply_a_batch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    let store = SqliteStore::open(&db)?;
    store.migrate().await?;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut rng = factos_conformance::rng(3);
            append_tagged(&store, &mut rng, 60).await.map_err(|e| e.to_string())
        })
    };
    // Two stores on one file: as two processes would be.
    let projectors = (0..2).map(|_| {
        let db = db.clone();
        tokio::spawn(async move {
            let store = SqliteStore::open(&db).map_err(|e| e.to_string())?;
            let mut projector =
                SqliteProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec).with_batch_size(3);
            for _ in 0..40 {
                projector.catch_up().await.map_err(|e| e.to_string())?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok::<_, String>(())
        })
    });
    writer.await??;
    for projector in futures::future::join_all(projectors).await {
        projector??;
    }
    SqliteProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec)
        .catch_up()
        .await?;
    assert_eq!(tallies(&db)?, tag_counts(&store).await?);
    Ok(())
}

/// The entry point of child processes; does nothing unless started by the
/// kill test below.
#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn child_process() -> TestResult {
    let Ok(db) = std::env::var("FACTOS_PROJECTION_DB") else {
        return Ok(());
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = SqliteStore::open(&db)?;
        let mut projector =
            SqliteProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec).with_batch_size(5);
        projector.run().await?;
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_killed_at_random_moments_agrees_with_a_full_recompute() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    let store = SqliteStore::open(&db)?;
    store.migrate().await?;
    let mut rng = factos_conformance::rng(4);
    for round in 0..30 {
        let db_path = db.display().to_string();
        let mut child = factos_conformance::child::spawn_child_process(&[("FACTOS_PROJECTION_DB", &db_path)])?;
        // Writers append while the projector runs; the kill lands anywhere.
        let count = rng.random_range(1..8);
        append_tagged(&store, &mut rng, count).await?;
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..150))).await;
        child.kill()?;
        let status = child.wait()?;
        assert!(!status.success(), "round {round}: the child must have been killed");
    }
    SqliteProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec)
        .catch_up()
        .await?;
    assert_eq!(
        tallies(&db)?,
        tag_counts(&store).await?,
        "the read model agrees with the log"
    );
    Ok(())
}
