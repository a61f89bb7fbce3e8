//! Effect runners: retries, parking, redelivery with the same keys after a
//! crash; and SIGKILL at random moments during delivery on SQLite and
//! PostgreSQL, after which every effect reached the handler at least once
//! and repeats only ever repeat a key.
//!
//! Child processes are this test binary run again with `--ignored --exact
//! child_process`; the environment tells the child what to do.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use factos::{
    AppendRequest, Checkpoints, EffectKey, EventId, EventStore, EventType, Follow, MemoryStore, NewEvent, Query,
    ReadOptions, Recorded, StoredCodec, StoredEvent, StreamId, reactor,
};
use factos_effects::{EffectRunner, Retry};
use factos_postgres::{LockMode, PgStore};
use factos_sqlite::SqliteStore;
use factos_test_postgres::Cluster;
use proptest::prelude::Rng;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// One effect per event, two for events whose payload is `two`: the payload.
fn effects() -> impl factos::Reactor<Event = StoredEvent, Effect = Vec<u8>> {
    reactor(|event: &Recorded<StoredEvent>| {
        let count = if event.event.event == b"two" { 2 } else { 1 };
        vec![event.event.event.clone(); count]
    })
}

async fn append<S: EventStore>(store: &S, payload: &[u8]) -> TestResult {
    let event = NewEvent::new(EventId::random(), EventType::new("E")?, payload.to_vec());
    store
        .append(AppendRequest::new(StreamId::new("s")?, vec![event]))
        .await?;
    Ok(())
}

/// Every effect key the log calls for.
async fn expected_keys<S: EventStore>(store: &S) -> Result<BTreeSet<String>, factos::StoreError> {
    let mut keys = BTreeSet::new();
    for event in store.read(&Query::all(), ReadOptions::forwards()).await? {
        let count = if event.event == b"two" { 2 } else { 1 };
        for index in 0..count {
            keys.insert(EffectKey { event: event.id, index }.to_string());
        }
    }
    Ok(keys)
}

/// Appends one line with `key` to `journal`: what the kill tests' handler
/// does before it accepts an effect.
fn journal_line(journal: &Path, key: EffectKey) -> std::io::Result<()> {
    let line = format!("{key}\n");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(journal)?;
    std::io::Write::write_all(&mut file, line.as_bytes())
}

#[tokio::test]
async fn a_failing_effect_is_retried_then_delivered() -> TestResult {
    let store = MemoryStore::new();
    append(&store, b"one").await?;
    let runner = EffectRunner::new(&store, "retrying", Query::all(), effects(), StoredCodec)
        .with_retry(Retry::attempts(4).pauses(Duration::from_millis(1), Duration::from_millis(5)));
    let mut calls = 0;
    let report = runner
        .run_available(|_, _| {
            calls += 1;
            let outcome = if calls < 3 { Err("not yet") } else { Ok(()) };
            async move { outcome }
        })
        .await?;
    assert_eq!((report.delivered, report.parked, calls), (1, 0, 3));
    Ok(())
}

#[tokio::test]
async fn an_effect_that_keeps_failing_is_parked_and_the_rest_go_on() -> TestResult {
    let store = MemoryStore::new();
    append(&store, b"bad").await?;
    append(&store, b"good").await?;
    let runner = EffectRunner::new(&store, "parking", Query::all(), effects(), StoredCodec)
        .with_retry(Retry::attempts(3).pauses(Duration::from_millis(1), Duration::from_millis(2)));
    let mut delivered = Vec::new();
    let report = runner
        .run_available(|_, effect: Vec<u8>| {
            let outcome = if effect == b"bad" {
                Err("the mail server refused")
            } else {
                Ok(())
            };
            if outcome.is_ok() {
                delivered.push(effect);
            }
            async move { outcome }
        })
        .await?;
    assert_eq!((report.delivered, report.parked), (1, 1));
    assert_eq!(delivered, vec![b"good".to_vec()]);
    let parked = runner.parked().await?;
    assert_eq!(parked.len(), 1);
    assert_eq!(
        (parked[0].attempts, parked[0].error.as_str()),
        (3, "the mail server refused")
    );
    assert_eq!(parked[0].position().value(), 1);
    assert!(store.load_checkpoint("parking").await?.is_some(), "the runner moved on");
    Ok(())
}

#[tokio::test]
async fn a_run_cut_short_before_its_checkpoint_hands_the_same_keys_again() -> TestResult {
    let store = MemoryStore::new();
    for payload in [b"a".as_slice(), b"two", b"c"] {
        append(&store, payload).await?;
    }
    let runner = EffectRunner::new(&store, "crashy", Query::all(), effects(), StoredCodec);
    let seen = Arc::new(Mutex::new(Vec::new()));
    // The first run is cut off (as by a crash) after handing over two
    // effects, before its checkpoint.
    let first = {
        let seen = seen.clone();
        runner.run_available(move |key, _| {
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.push(key);
            let stop = seen.len() == 2;
            async move {
                if stop {
                    std::future::pending::<()>().await;
                }
                Ok::<(), String>(())
            }
        })
    };
    assert!(tokio::time::timeout(Duration::from_millis(50), first).await.is_err());
    let second = {
        let seen = seen.clone();
        runner
            .run_available(move |key, _| {
                seen.lock().unwrap_or_else(|p| p.into_inner()).push(key);
                async { Ok::<(), String>(()) }
            })
            .await?
    };
    assert_eq!(second.delivered, 4);
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(seen[..2], seen[2..4], "the redelivered effects carry the same keys");
    let keys: BTreeSet<String> = seen.iter().map(|k| k.to_string()).collect();
    assert_eq!(keys, expected_keys(&store).await?);
    Ok(())
}

/// Runs the runner of `store` forever, writing each effect's key to
/// `journal` (one line per handler call) and taking a few milliseconds, as
/// a call to another system would, before accepting it: a kill lands in the
/// middle of a batch.
async fn deliver_forever<S>(store: &S, journal: &Path) -> TestResult
where
    S: Follow + Checkpoints + Sync,
{
    let runner = EffectRunner::new(store, "journal", Query::all(), effects(), StoredCodec).with_batch_size(4);
    runner
        .run(|key, _| {
            let written = journal_line(journal, key);
            async move {
                tokio::time::sleep(Duration::from_millis(3)).await;
                written
            }
        })
        .await?;
    Ok(())
}

/// The entry point of child processes; does nothing unless started by the
/// kill tests below.
#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn child_process() -> TestResult {
    let Ok(journal) = std::env::var("FACTOS_CHILD_JOURNAL") else {
        return Ok(());
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        if let Ok(db) = std::env::var("FACTOS_CHILD_DB") {
            deliver_forever(&SqliteStore::open(db)?, Path::new(&journal)).await
        } else {
            let url = std::env::var("FACTOS_CHILD_URL")?;
            let schema = std::env::var("FACTOS_CHILD_SCHEMA")?;
            deliver_forever(&PgStore::connect(url)?.with_schema(&schema)?, Path::new(&journal)).await
        }
    })
}

/// Kills a delivering child 30 times while events are appended, then lets
/// a last runner finish; checks the journal against the log.
async fn killed_thirty_times<S>(store: &S, child_env: &[(&str, String)], journal: &Path) -> TestResult
where
    S: EventStore + Follow + Checkpoints + Sync,
{
    let mut rng = factos_conformance::rng(7);
    for round in 0..30 {
        let journal_path = journal.display().to_string();
        let mut env: Vec<(&str, &str)> = child_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.push(("FACTOS_CHILD_JOURNAL", &journal_path));
        let mut child = factos_conformance::child::spawn_child_process(&env)?;
        for _ in 0..rng.random_range(3..12) {
            append(store, if rng.random_bool(0.3) { b"two" } else { b"one" }).await?;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(10..80))).await;
        child.kill()?;
        assert!(
            !child.wait()?.success(),
            "round {round}: the child must have been killed"
        );
    }
    let by_children = std::fs::read_to_string(journal).unwrap_or_default().lines().count();
    assert!(by_children > 0, "the killed children must have delivered some effects");
    let runner = EffectRunner::new(store, "journal", Query::all(), effects(), StoredCodec);
    runner
        .run_available(|key, _| {
            let written = journal_line(journal, key);
            async move { written }
        })
        .await?;
    let text = std::fs::read_to_string(journal)?;
    let lines: Vec<&str> = text.lines().collect();
    let handed: BTreeSet<String> = lines.iter().map(|l| l.to_string()).collect();
    let expected = expected_keys(store).await?;
    assert_eq!(
        handed, expected,
        "every effect at least once, and nothing but effects of the log"
    );
    assert!(lines.len() >= expected.len());
    eprintln!(
        "{} effects, {} handler calls ({by_children} by killed children)",
        expected.len(),
        lines.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_survive_sigkill_on_sqlite() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    let store = SqliteStore::open(&db)?;
    store.migrate().await?;
    let journal = dir.path().join("journal.txt");
    killed_thirty_times(&store, &[("FACTOS_CHILD_DB", db.display().to_string())], &journal).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_survive_sigkill_on_postgres() -> TestResult {
    let schema = format!("effects_{}", std::process::id());
    let url = Cluster::shared()?.connection_string();
    let store = PgStore::connect(url.as_str())?.with_schema(&schema)?;
    store.migrate().await?;
    let dir = tempfile::tempdir()?;
    let journal = dir.path().join("journal.txt");
    killed_thirty_times(
        &store,
        &[
            ("FACTOS_CHILD_URL", url.clone()),
            ("FACTOS_CHILD_SCHEMA", schema.clone()),
        ],
        &journal,
    )
    .await
}

#[tokio::test]
async fn runners_decode_events_stored_by_older_code_on_sqlite() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("events.db"))?;
    store.migrate().await?;
    factos_conformance::effects::runners_decode_events_stored_by_older_code(&store).await
}

#[tokio::test]
async fn runners_decode_events_stored_by_older_code_on_postgres() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect(config)?;
    store.migrate().await?;
    factos_conformance::effects::runners_decode_events_stored_by_older_code(&store).await
}

#[tokio::test]
async fn parked_effects_are_retried_or_discarded_on_request_in_memory() -> TestResult {
    factos_conformance::effects::parked_effects_are_retried_or_discarded_on_request(&MemoryStore::new()).await
}

#[tokio::test]
async fn parked_effects_are_retried_or_discarded_on_request_on_sqlite() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("events.db"))?;
    store.migrate().await?;
    factos_conformance::effects::parked_effects_are_retried_or_discarded_on_request(&store).await
}

#[tokio::test]
async fn parked_effects_are_retried_or_discarded_on_request_on_postgres() -> TestResult {
    for mode in [LockMode::Advisory, LockMode::RowLocks] {
        let (config, _) = Cluster::shared()?.fresh_schema().await?;
        let store = PgStore::connect(config)?.with_lock_mode(mode);
        store.migrate().await?;
        factos_conformance::effects::parked_effects_are_retried_or_discarded_on_request(&store).await?;
    }
    Ok(())
}

/// A runner that waits for events still looks for retry requests: the
/// operator's request reaches the handler without a new event.
#[tokio::test]
async fn a_waiting_runner_hands_over_a_retried_effect() -> TestResult {
    let store = MemoryStore::new();
    append(&store, b"bad").await?;
    let runner = EffectRunner::new(&store, "waiting", Query::all(), effects(), StoredCodec)
        .with_retry(Retry::attempts(1))
        .with_retry_poll(Duration::from_millis(20));
    let report = runner.run_available(|_, _| async { Err::<(), _>("refused") }).await?;
    assert_eq!(report.parked, 1);
    let key = runner.parked().await?[0].key;

    let (handed, mut received) = tokio::sync::mpsc::unbounded_channel();
    let delivering = runner.run(|key, effect: Vec<u8>| {
        let sent = handed.send((key, effect)).map_err(|e| e.to_string());
        async move { sent }
    });
    let asking = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(store.retry_parked("waiting", key).await?, "it is parked");
        let got = tokio::time::timeout(Duration::from_secs(10), received.recv()).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(got)
    };
    let got = tokio::select! {
        got = asking => got?,
        stopped = delivering => return Err(format!("the runner stopped: {stopped:?}").into()),
    };
    assert_eq!(got, Some((key, b"bad".to_vec())));
    Ok(())
}
