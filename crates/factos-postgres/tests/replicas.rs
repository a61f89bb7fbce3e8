//! Readers on a hot standby of a Patroni cluster (three nodes, synchronous
//! replication), the standby lagging behind its primary
//! (`recovery_min_apply_delay`): a subscription there delivers exactly
//! what one on the primary does, once each and in the same order, while
//! writers hold transactions open on the primary; reads there are stale
//! while it replays nothing and until the replica is asked to catch up
//! with the primary; a decision built from a stale read of a stream on the
//! replica is refused on the primary, never accepted.
//!
//! Skipped, with the reason printed, where `patroni` or `etcd` is not
//! installed, unless `FACTOS_REQUIRE_PATRONI` is set (CI sets it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use factos::{
    AppendRequest, BoxError, Cursor, EventId, EventStore, EventType, ExpectedRevision, NewEvent, Query, ReadOptions,
    StoreError, StreamId, StreamRevision, Subscription, Tag,
};
use factos_postgres::{PgReplica, PgStore, PoolOptions};
use factos_test_postgres::{HaCluster, HaOptions};
use tokio_postgres::NoTls;

type TestResult = Result<(), BoxError>;

/// How far the standby lags: it applies each commit this long after it
/// arrived.
const APPLY_DELAY: &str = "300ms";

fn event(n: u32) -> Result<NewEvent, BoxError> {
    Ok(
        NewEvent::new(EventId::random(), EventType::new("Noted")?, n.to_le_bytes().to_vec())
            .with_tags([Tag::new(format!("batch:{}", n % 7))?]),
    )
}

/// The tests take turns: each starts a cluster of its own, and two at
/// once would share two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A cluster, a store on its primary and a replica on a standby that
/// applies commits [`APPLY_DELAY`] late.
async fn lagging() -> Result<Option<(HaCluster, PgStore, PgReplica, usize)>, BoxError> {
    let Some(cluster) = HaCluster::start(HaOptions::TEST)? else {
        return Ok(None);
    };
    let store = PgStore::connect_with(cluster.primary_url(), PoolOptions::new(16))?;
    store.migrate().await?;
    let standby = cluster.standby().await.ok_or("no standby")?;
    let (client, connection) = cluster.node_config(standby).connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    client
        .batch_execute(&format!("ALTER SYSTEM SET recovery_min_apply_delay = '{APPLY_DELAY}'"))
        .await?;
    client.batch_execute("SELECT pg_reload_conf()").await?;
    drop(client);
    let _ = driver.await;
    let replica = store.replica_with(cluster.node_config(standby), PoolOptions::new(4))?;
    Ok(Some((cluster, store, replica, standby)))
}

/// Follows `source` until it delivered `count` events or `stop` is set
/// after it had nothing new for a second.
async fn deliveries<S: factos::Follow>(source: &S, count: usize) -> Result<Vec<(Cursor, EventId)>, StoreError> {
    let mut subscription = Subscription::new(source, Query::all(), None);
    let mut delivered = Vec::new();
    while delivered.len() < count {
        let batch = tokio::time::timeout(Duration::from_secs(30), subscription.next_batch())
            .await
            .map_err(|_| StoreError::backend("no new events within 30 s"))??;
        delivered.extend(batch.iter().map(|d| (d.cursor, d.record.id)));
    }
    Ok(delivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_on_a_lagging_standby_delivers_what_one_on_the_primary_does() -> TestResult {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some((cluster, store, replica, _)) = lagging().await? else {
        return Ok(());
    };
    let stop = Arc::new(AtomicBool::new(false));
    // Four writers appending on their own streams, and two that append
    // inside transactions held open for a while: transactions that took
    // their ids first commit last, which the horizon must wait for.
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let (store, stop) = (store.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let request = AppendRequest::new(StreamId::new(format!("plain-{w}"))?, vec![event(n)?, event(n + 1)?]);
                store.append(request).await?;
                n += 2;
            }
            Ok::<u32, BoxError>(n)
        }));
    }
    for w in 0..2u32 {
        let (store, stop, url) = (store.clone(), stop.clone(), cluster.primary_url());
        writers.push(tokio::spawn(async move {
            let (mut client, connection) = tokio_postgres::connect(&url, NoTls).await?;
            tokio::spawn(connection);
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let transaction = client.transaction().await?;
                let in_tx = store.in_transaction(&transaction).await?;
                in_tx
                    .append(AppendRequest::new(StreamId::new(format!("held-{w}"))?, vec![event(n)?]))
                    .await?;
                tokio::time::sleep(Duration::from_millis(150)).await;
                transaction.commit().await?;
                n += 1;
            }
            Ok::<u32, BoxError>(n)
        }));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    let mut written = 0;
    for writer in writers {
        written += writer.await?? as usize;
    }

    let on_primary = deliveries(&store, written).await?;
    let on_replica = deliveries(&replica, written).await?;
    assert_eq!(
        on_primary.len(),
        written,
        "the primary's subscription delivered each event once"
    );
    assert_eq!(
        on_replica, on_primary,
        "the replica's subscription delivered the same events in the same order"
    );
    let log = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(log.len(), written);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_reads_are_stale_until_asked_to_catch_up_and_stale_decisions_are_refused() -> TestResult {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some((cluster, store, replica, standby)) = lagging().await? else {
        return Ok(());
    };
    let stream = StreamId::new("account-1")?;
    store
        .append(AppendRequest::new(stream.clone(), vec![event(0)?]).expect(ExpectedRevision::NoStream))
        .await?;
    replica.wait_for_primary(Duration::from_secs(10)).await?;
    assert_eq!(replica.read(&Query::all(), ReadOptions::forwards()).await?.len(), 1);

    // The standby stops replaying (as a lagging one would, for as long as
    // it lags); a second append is acknowledged on the primary meanwhile.
    let (client, connection) = cluster.node_config(standby).connect(NoTls).await?;
    tokio::spawn(connection);
    client.batch_execute("SELECT pg_wal_replay_pause()").await?;
    store
        .append(
            AppendRequest::new(stream.clone(), vec![event(1)?]).expect(ExpectedRevision::Exact(StreamRevision::new(0))),
        )
        .await?;
    let stale = replica.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(stale.len(), 1, "the replica has not applied the second append yet");

    // A decision built from the stale read expects revision 0: refused.
    let from_stale =
        AppendRequest::new(stream.clone(), vec![event(2)?]).expect(ExpectedRevision::Exact(stale[0].revision));
    let refused = store.append(from_stale).await;
    assert!(
        matches!(refused, Err(StoreError::RevisionMismatch(_))),
        "a decision on a stale read is refused: {refused:?}"
    );

    // Read your writes: once caught up, the replica shows the append.
    client.batch_execute("SELECT pg_wal_replay_resume()").await?;
    replica.wait_for_primary(Duration::from_secs(10)).await?;
    let fresh = replica.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(fresh.len(), 2);
    let decided = AppendRequest::new(stream, vec![event(2)?]).expect(ExpectedRevision::Exact(fresh[1].revision));
    store.append(decided).await?;

    // A replica never writes: its checkpoints are the primary's.
    factos::Checkpoints::save_checkpoint(&replica, "views", Cursor::new(1, fresh[1].position)).await?;
    assert_eq!(
        factos::Checkpoints::load_checkpoint(replica.primary(), "views").await?,
        Some(Cursor::new(1, fresh[1].position))
    );
    Ok(())
}
