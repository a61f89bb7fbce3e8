//! Commit notifications on the real server: a follower in another process
//! (a store that polls only every 30 s) is woken by `NOTIFY`, at most once
//! per interval, and the commits between are announced too.
//!
//! In a binary of its own: it waits until a follower `LISTEN`s in the
//! database, which another test's follower would also satisfy.

use std::time::Duration;

use factos::{AppendRequest, EventId, EventStore, EventType, NewEvent, Query, StreamId, Subscription, Tag};
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::Cluster;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn event(name: &str) -> Result<NewEvent, factos::InvalidName> {
    Ok(NewEvent::new(EventId::random(), EventType::new("E")?, name.as_bytes().to_vec()).with_tags([Tag::new("t")?]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_notifications_are_an_interval_apart_and_the_commits_between_are_still_announced() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let interval = Duration::from_millis(1500);
    let writer =
        PgStore::connect_with(config.clone(), PoolOptions::new(4))?.with_commit_notification_interval(interval);
    writer.migrate().await?;
    // Another store on the schema stands for another process: only a
    // NOTIFY wakes it within the test (it polls every 30 s).
    let reader =
        PgStore::connect_with(config.clone(), PoolOptions::new(4))?.with_poll_interval(Duration::from_secs(30));
    reader.migrate().await?;
    let (delivered, mut deliveries) = tokio::sync::mpsc::unbounded_channel();
    let follower = tokio::spawn(async move {
        let mut subscription = Subscription::new(&reader, Query::all(), None);
        while let Ok(batch) = subscription.next_batch().await {
            for event in batch {
                let _ = delivered.send((event.record.id, std::time::Instant::now()));
            }
        }
    });
    // Wait until the follower's connection listens.
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let mut listening = false;
    for _ in 0..400 {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN factos_%' \
                 AND datname = current_database()",
                &[],
            )
            .await?;
        listening = row.get::<_, i64>(0) > 0;
        if listening {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(listening, "the follower never listened");
    let first = writer
        .append(AppendRequest::new(StreamId::new("s")?, vec![event("first")?]))
        .await?;
    let (id, first_at) = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
        .await?
        .ok_or("follower ended")?;
    assert_eq!(
        id, first.records[0].id,
        "a commit after a quiet interval is announced at once"
    );
    let second = writer
        .append(AppendRequest::new(StreamId::new("s")?, vec![event("second")?]))
        .await?;
    let (id, second_at) = tokio::time::timeout(Duration::from_secs(10), deliveries.recv())
        .await?
        .ok_or("follower ended")?;
    assert_eq!(
        id, second.records[0].id,
        "the commit within the interval is announced too"
    );
    let apart = second_at - first_at;
    assert!(
        apart >= Duration::from_millis(1000),
        "the second NOTIFY came {apart:?} after the first, sooner than the 1.5 s interval allows"
    );
    follower.abort();
    Ok(())
}
