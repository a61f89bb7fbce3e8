//! Section 13, PostgreSQL replicated by Patroni (three nodes, durable):
//! what synchronous replication costs the writers, what followers on a
//! replica save the primary, and how long a failover keeps writers out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use factos::{Dispatcher, Follow, JsonCodec, Query, Subscription};
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::{HaCluster, HaOptions, longest_silence};

use crate::durability::Durability;
use crate::stats::median;
use crate::workload::{Buy, TicketSold, box_office, concert_query, concert_stream, sell_until};
use crate::{Config, Report};

const WRITERS: u32 = 8;
const TAILERS: usize = 4;

/// Dispatches per second of [`WRITERS`] writers on disjoint contexts.
async fn rate(store: &PgStore, duration: Duration) -> anyhow::Result<f64> {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move { sell_until(&store, writer, writer * 1_000_000, deadline).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        let (sold, failed) = task.await?;
        anyhow::ensure!(failed == 0, "{failed} dispatches failed");
        accepted += sold;
    }
    Ok(accepted as f64 / started.elapsed().as_secs_f64())
}

/// A store on `url` in a schema of its own, with the commits waiting as
/// `synchronous_commit` says.
async fn store(url: &str, schema: &str, synchronous_commit: &str) -> anyhow::Result<PgStore> {
    let mut config: factos_postgres::Config = url.parse()?;
    config.options(format!("-c synchronous_commit={synchronous_commit}"));
    let store = PgStore::connect_with(config, PoolOptions::new(WRITERS as usize + TAILERS + 4))?
        .with_schema(schema)?
        .with_poll_interval(Duration::from_millis(50));
    store.migrate().await?;
    Ok(store)
}

/// The writers' rate while [`TAILERS`] subscriptions tail everything on
/// `source`.
async fn rate_with_tailers<F: Follow + Clone + Send + Sync + 'static>(
    store: &PgStore,
    source: &F,
    duration: Duration,
) -> anyhow::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let tailers: Vec<_> = (0..TAILERS)
        .map(|_| {
            let (source, stop) = (source.clone(), stop.clone());
            tokio::spawn(async move {
                let mut subscription = Subscription::new(&source, Query::all(), None);
                while !stop.load(Ordering::SeqCst) {
                    if tokio::time::timeout(Duration::from_millis(200), subscription.next_batch())
                        .await
                        .is_ok_and(|batch| batch.is_err())
                    {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    let measured = rate(store, duration).await;
    stop.store(true, Ordering::SeqCst);
    for tailer in tailers {
        tailer.await?;
    }
    measured
}

/// How long writers got no answer after the primary was killed: the
/// longest gap between two acknowledged dispatches of [`WRITERS`] writers.
async fn failover_window(cluster: &HaCluster, store: &PgStore) -> anyhow::Result<Duration> {
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, stop, acks) = (store.clone(), stop.clone(), acks.clone());
            tokio::spawn(async move {
                let mut buyer = 500_000_000 + writer * 1_000_000;
                let concert = 1_000 + writer;
                let (query, stream) = (concert_query(concert), concert_stream(concert));
                let dispatcher = Dispatcher::new(&store, JsonCodec::<TicketSold>::new());
                while !stop.load(Ordering::SeqCst) {
                    buyer += 1;
                    let sold = dispatcher
                        .dispatch_context(&box_office(u32::MAX), &Buy { concert, buyer }, &query, &stream)
                        .await;
                    // A failure (no primary yet) waits a moment.
                    if sold.is_ok() {
                        acks.lock().unwrap_or_else(|e| e.into_inner()).push(Instant::now());
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let primary = cluster.primary().await.ok_or_else(|| anyhow::anyhow!("no primary"))?;
    let killed = Instant::now();
    cluster.kill(primary)?;
    cluster.wait_for_new_primary(primary, Duration::from_secs(90)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await?;
    }
    cluster.restart(primary)?;
    cluster.wait_ready(Duration::from_secs(120))?;
    let acknowledged = acks.lock().unwrap_or_else(|e| e.into_inner());
    longest_silence(&acknowledged, killed, Instant::now())
        .ok_or_else(|| anyhow::anyhow!("no dispatch acknowledged after the kill"))
}

/// Runs the section; skipped with a note where Patroni is not installed.
pub async fn run(config: &Config, report: &mut Report) -> anyhow::Result<()> {
    let options = HaOptions {
        synchronous: true,
        fsync: true,
    };
    let Some(cluster) = HaCluster::start(options)? else {
        report.note("Section 13 skipped: no patroni or etcd on this machine.");
        return Ok(());
    };
    let url = cluster.primary_url();
    report.section(
        "13. Replication — PostgreSQL durable (fsync=on, full_page_writes=on) on three Patroni nodes, synchronous_mode on",
        &format!(
            "{WRITERS} writers dispatching on disjoint contexts over TCP loopback, {} s per run, median of {} runs. \
             `synchronous_commit=on` waits for the synchronous standby's flush; `local` waits for the primary's own \
             flush only, so the standbys replicate asynchronously; the one-node row is the single durable cluster \
             (no standbys, unix socket). With {TAILERS} tailers: catch-up subscriptions of everything, on the \
             primary or on a standby (`PgReplica`).",
            config.parallel_duration.as_secs_f64(),
            config.repeats
        ),
        &["setup", "dispatches/s", "vs one node"],
    );
    let mut one_node = Vec::new();
    let mut synchronous = Vec::new();
    let mut asynchronous = Vec::new();
    for repeat in 0..config.repeats {
        let (single, _) = Durability::Durable.cluster()?.fresh_schema().await?;
        let single = PgStore::connect_with(single, PoolOptions::new(WRITERS as usize + 4))?;
        single.migrate().await?;
        one_node.push(rate(&single, config.parallel_duration).await?);
        let on = store(&url, &format!("sync_{repeat}"), "on").await?;
        synchronous.push(rate(&on, config.parallel_duration).await?);
        let local = store(&url, &format!("async_{repeat}"), "local").await?;
        asynchronous.push(rate(&local, config.parallel_duration).await?);
    }
    let base = median(&one_node);
    for (label, rates) in [
        ("one node (synchronous_commit=on, no standby)", &one_node),
        ("synchronous replication (synchronous_commit=on)", &synchronous),
        ("asynchronous replication (synchronous_commit=local)", &asynchronous),
    ] {
        let value = median(rates);
        report.row(&[label.into(), format!("{value:.0}"), format!("{:.2}×", value / base)]);
    }

    let standby = cluster.standby().await.ok_or_else(|| anyhow::anyhow!("no standby"))?;
    let mut on_primary = Vec::new();
    let mut on_replica = Vec::new();
    for repeat in 0..config.repeats {
        let primary_store = store(&url, &format!("tail_p_{repeat}"), "on").await?;
        on_primary.push(rate_with_tailers(&primary_store, &primary_store, config.parallel_duration).await?);
        let replica_store = store(&url, &format!("tail_r_{repeat}"), "on").await?;
        let replica = replica_store.replica_with(cluster.node_config(standby), PoolOptions::new(TAILERS + 2))?;
        on_replica.push(rate_with_tailers(&replica_store, &replica, config.parallel_duration).await?);
    }
    let base = median(&synchronous);
    for (label, rates) in [
        ("synchronous, 4 tailers on the primary", &on_primary),
        ("synchronous, 4 tailers on a standby", &on_replica),
    ] {
        let value = median(rates);
        report.row(&[
            label.into(),
            format!("{value:.0}"),
            format!("{:.2}× of synchronous alone", value / base),
        ]);
    }

    let failover = store(&url, "failover", "on")
        .await?
        .with_resend_window(Duration::from_secs(60));
    let mut windows = Vec::new();
    for _ in 0..config.repeats {
        windows.push(failover_window(&cluster, &failover).await?);
    }
    windows.sort();
    report.note(&format!(
        "Failover (kill -9 of the primary's Patroni and PostgreSQL, Patroni ttl {} s, loop_wait 1 s): longest gap \
         between acknowledged dispatches, {} kills: {}; median {:.1} s.",
        cluster.leader_ttl().as_secs(),
        windows.len(),
        windows
            .iter()
            .map(|w| format!("{:.1} s", w.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        windows[windows.len() / 2].as_secs_f64()
    ));
    Ok(())
}
