//! Following the log on SQLite files: commits by another connection (as
//! another process would make them) wake a waiting subscriber through
//! `PRAGMA data_version`.

use std::time::Duration;

use factos::{AppendRequest, EventId, EventStore, EventType, NewEvent, Query, StreamId, Subscription};
use factos_sqlite::{SqliteOptions, SqliteStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_by_another_connection_wakes_a_waiting_subscriber() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.db");
    let options = SqliteOptions {
        poll_interval: Duration::from_millis(20),
        ..SqliteOptions::default()
    };
    let follower = SqliteStore::open_with(&path, options)?;
    follower.migrate().await?;
    // A second store on the same file shares nothing with the first, like
    // another process.
    let writer = SqliteStore::open(&path)?;
    writer.migrate().await?;

    let mut subscription = Subscription::new(&follower, Query::all(), None);
    let append = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let event = NewEvent::new(EventId::random(), EventType::new("Elsewhere")?, b"x".to_vec());
        writer
            .append(AppendRequest::new(StreamId::new("s")?, vec![event]))
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let waiting = tokio::time::timeout(Duration::from_secs(10), subscription.next_batch());
    let (woken, appended) = tokio::join!(waiting, append);
    appended?;
    let batch = woken.map_err(|_| "the subscriber never noticed the other connection's commit")??;
    assert_eq!(batch[0].record.event_type.as_str(), "Elsewhere");
    Ok(())
}
