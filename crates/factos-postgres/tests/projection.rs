//! Durable projections on the real server: catch-up, rebuild, a failing
//! handler, two projectors at once, and SIGKILL at random moments while
//! writers append.
//!
//! Child processes are this test binary run again with `--ignored --exact
//! child_process`; the environment tells the child what to do.

use std::collections::BTreeMap;
use std::time::Duration;

use factos::{AppendRequest, BoxError, Delivered, EventStore, Query, StoredCodec, StoredEvent, StreamId};
use factos_conformance::tally::{append_tagged, tag_counts, tagged};
use factos_postgres::{PgError, PgProjection, PgProjector, PgStore};
use factos_test_postgres::Cluster;
use proptest::prelude::Rng;
use tokio_postgres::Transaction;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Counts events per tag in a `tallies` table; fails on an event whose
/// payload is `poison` when asked to.
struct Tally {
    fail_on_poison: bool,
}

impl PgProjection for Tally {
    type Event = StoredEvent;
    fn name(&self) -> &str {
        "tally"
    }
    fn query(&self) -> Query {
        Query::all()
    }
    async fn apply(&mut self, tx: &Transaction<'_>, events: &[Delivered<StoredEvent>]) -> Result<(), BoxError> {
        tx.batch_execute("CREATE TABLE IF NOT EXISTS tallies (tag text PRIMARY KEY, n bigint NOT NULL)")
            .await?;
        for delivered in events {
            if self.fail_on_poison && delivered.record.event.event == b"poison" {
                return Err("poisoned event".into());
            }
            for tag in &delivered.record.tags {
                tx.execute(
                    "INSERT INTO tallies (tag, n) VALUES ($1, 1) ON CONFLICT (tag) DO UPDATE SET n = tallies.n + 1",
                    &[&tag.as_str()],
                )
                .await?;
            }
        }
        Ok(())
    }
    async fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), BoxError> {
        tx.batch_execute("DROP TABLE IF EXISTS tallies").await?;
        Ok(())
    }
}

async fn tallies(
    store: &PgStore,
    schema: &str,
) -> Result<BTreeMap<String, i64>, Box<dyn std::error::Error + Send + Sync>> {
    let client = store.pool().get().await?;
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("\"{schema}\".tallies")],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(BTreeMap::new());
    }
    let rows = client
        .query(&format!("SELECT tag, n FROM \"{schema}\".tallies"), &[])
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// A store in a schema of its own (reachable from child processes by name).
async fn fresh_store(label: &str) -> Result<(PgStore, String), Box<dyn std::error::Error + Send + Sync>> {
    let schema = format!("projection_{label}_{}", std::process::id());
    let store = PgStore::connect(Cluster::shared()?.connection_string())?.with_schema(&schema)?;
    store.migrate().await?;
    Ok((store, schema))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_projection_catches_up_and_a_rebuild_gives_the_same_read_model() -> TestResult {
    let (store, schema) = fresh_store("catch_up").await?;
    let mut rng = factos_conformance::rng(1);
    append_tagged(&store, &mut rng, 40).await?;
    let mut projector = PgProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec).with_batch_size(7);
    assert!(projector.catch_up().await? > 40);
    append_tagged(&store, &mut rng, 10).await?;
    projector.catch_up().await?;
    let expected = tag_counts(&store).await?;
    assert_eq!(tallies(&store, &schema).await?, expected);
    assert_eq!(projector.catch_up().await?, 0, "nothing new");
    projector.rebuild().await?;
    assert_eq!(
        tallies(&store, &schema).await?,
        expected,
        "a rebuild gives the same read model"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_projection_stops_and_keeps_its_checkpoint_before_the_failing_event() -> TestResult {
    let (store, schema) = fresh_store("failing").await?;
    let mut rng = factos_conformance::rng(2);
    append_tagged(&store, &mut rng, 5).await?;
    let before_poison = tag_counts(&store).await?;
    store
        .append(AppendRequest::new(
            StreamId::new("s")?,
            vec![tagged(&mut rng, b"poison")],
        ))
        .await?;
    append_tagged(&store, &mut rng, 5).await?;
    let mut failing = PgProjector::new(&store, Tally { fail_on_poison: true }, StoredCodec).with_batch_size(1);
    match failing.catch_up().await {
        Err(PgError::Projection(failed)) => assert_eq!(failed.name, "tally"),
        other => return Err(format!("expected the projection's error, got {other:?}").into()),
    }
    assert_eq!(tallies(&store, &schema).await?, before_poison);
    PgProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec)
        .catch_up()
        .await?;
    assert_eq!(tallies(&store, &schema).await?, tag_counts(&store).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_projectors_of_one_projection_never_both_apply_a_batch() -> TestResult {
    let (store, schema) = fresh_store("two").await?;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut rng = factos_conformance::rng(3);
            append_tagged(&store, &mut rng, 60).await.map_err(|e| e.to_string())
        })
    };
    let projectors = (0..2).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut projector =
                PgProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec).with_batch_size(3);
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
    PgProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec)
        .catch_up()
        .await?;
    assert_eq!(tallies(&store, &schema).await?, tag_counts(&store).await?);
    Ok(())
}

/// The entry point of child processes; does nothing unless started by the
/// kill test below.
#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn child_process() -> TestResult {
    let (Ok(url), Ok(schema)) = (std::env::var("FACTOS_CHILD_URL"), std::env::var("FACTOS_CHILD_SCHEMA")) else {
        return Ok(());
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = PgStore::connect(url)?.with_schema(&schema)?;
        let mut projector = PgProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec).with_batch_size(5);
        projector.run().await?;
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_killed_at_random_moments_agrees_with_a_full_recompute() -> TestResult {
    let (store, schema) = fresh_store("killed").await?;
    let url = Cluster::shared()?.connection_string();
    let mut rng = factos_conformance::rng(4);
    for round in 0..30 {
        let mut child = factos_conformance::child::spawn_child_process(&[
            ("FACTOS_CHILD_URL", &url),
            ("FACTOS_CHILD_SCHEMA", &schema),
        ])?;
        let count = rng.random_range(1..8);
        append_tagged(&store, &mut rng, count).await?;
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..150))).await;
        child.kill()?;
        let status = child.wait()?;
        assert!(!status.success(), "round {round}: the child must have been killed");
    }
    PgProjector::new(&store, Tally { fail_on_poison: false }, StoredCodec)
        .catch_up()
        .await?;
    assert_eq!(tallies(&store, &schema).await?, tag_counts(&store).await?);
    Ok(())
}
