//! Section 5, followers on PostgreSQL: what tailing subscribers cost the
//! writers, and how far behind the commits they are.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use factos::{Dispatcher, EventStore, JsonCodec, Position, Query, ReadOptions, Subscription, Timestamp};
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::Cluster;

use crate::stats::{median, percentile_of};
use crate::workload::{Buy, TicketSold, box_office, concert_query, concert_stream};
use crate::{Config, Report};

/// How the followers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Followers {
    None,
    /// Catch-up subscriptions on the transaction-id horizon.
    Subscriptions,
    /// Plain reads of everything after the last position seen, which take
    /// the query's guard key `(*, *)` exclusively, as `read` does.
    LockingReads,
}

/// What one run measured.
struct Run {
    dispatches_per_second: f64,
    /// Commit-to-delivery lags, in milliseconds.
    lags: Vec<f64>,
    violations: u64,
}

async fn run_once(writers: u32, followers: Followers, count: usize, duration: Duration) -> anyhow::Result<Run> {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(writers as usize + count + 4))?
        .with_poll_interval(Duration::from_millis(50));
    store.migrate().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let tailers: Vec<_> = (0..if followers == Followers::None { 0 } else { count })
        .map(|_| {
            let (store, stop) = (store.clone(), Arc::clone(&stop));
            tokio::spawn(async move { tail(&store, followers, &stop).await })
        })
        .collect();
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let (query, stream) = (concert_query(writer), concert_stream(writer));
                let dispatcher = Dispatcher::new(&store, JsonCodec::<TicketSold>::new());
                let (mut accepted, mut failed) = (0u64, 0u64);
                let mut buyer = writer * 1_000_000;
                while Instant::now() < deadline {
                    buyer += 1;
                    let buy = Buy { concert: writer, buyer };
                    match dispatcher
                        .dispatch_context(&box_office(u32::MAX), &buy, &query, &stream)
                        .await
                    {
                        Ok(_) => accepted += 1,
                        Err(_) => failed += 1,
                    }
                }
                anyhow::Ok((accepted, failed))
            })
        })
        .collect();
    let (mut accepted, mut violations) = (0u64, 0u64);
    for task in tasks {
        let (ok, failed) = task.await??;
        accepted += ok;
        violations += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the followers drain what was committed, then stop them.
    let stored = store.read(&Query::all(), ReadOptions::forwards()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut lags = Vec::new();
    for tailer in tailers {
        let (seen, tail_lags) = tailer.await??;
        let unique: BTreeSet<Position> = seen.iter().copied().collect();
        if unique.len() != seen.len() || unique.len() != stored.len() {
            violations += 1;
        }
        lags.extend(tail_lags);
    }
    if stored.len() as u64 != accepted {
        violations += 1;
    }
    Ok(Run {
        dispatches_per_second: accepted as f64 / elapsed,
        lags,
        violations,
    })
}

/// Follows everything until `stop`; returns the positions seen and the lag
/// of each delivery (from the event's recorded time, taken at its insert).
async fn tail(store: &PgStore, followers: Followers, stop: &AtomicBool) -> anyhow::Result<(Vec<Position>, Vec<f64>)> {
    let (mut seen, mut lags) = (Vec::new(), Vec::new());
    let mut record = |events: Vec<factos::StoredEvent>| {
        let now = Timestamp::now().as_unix_micros();
        for event in events {
            lags.push((now - event.recorded_at.as_unix_micros()) as f64 / 1000.0);
            seen.push(event.position);
        }
    };
    match followers {
        Followers::None => {}
        Followers::Subscriptions => {
            let mut subscription = Subscription::new(store, Query::all(), None);
            while !stop.load(Ordering::SeqCst) {
                match tokio::time::timeout(Duration::from_millis(100), subscription.next_batch()).await {
                    Ok(batch) => record(batch?.into_iter().map(|d| d.record).collect()),
                    Err(_) => continue,
                }
            }
            record(subscription.catch_up().await?.into_iter().map(|d| d.record).collect());
        }
        Followers::LockingReads => {
            let mut next = Position::FIRST;
            while !stop.load(Ordering::SeqCst) {
                let events = store
                    .read(&Query::all(), ReadOptions::forwards().from(next).limit(256))
                    .await?;
                if let Some(last) = events.last() {
                    next = last.position.next();
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                record(events);
            }
        }
    }
    Ok((seen, lags))
}

/// Runs the section.
pub async fn run(config: &Config, report: &mut Report) -> anyhow::Result<()> {
    report.section(
        "9. Followers on PostgreSQL — durability off",
        "8 writers dispatch on disjoint contexts (the ticket workload) for a fixed time while 0 or 4 followers tail the whole \
         log. *subscriptions*: `Subscription` on the transaction-id horizon (LISTEN/NOTIFY wake-ups, 50 ms polling as the \
         safety net). *locking reads*: followers that poll `read(all events, from the next position)`, which takes the guard \
         key of everything exclusively, as every `read` does. Lag: from an event's `recorded_at` (taken at its insert, before \
         its commit) to its delivery. Violations: failed dispatches, stored events that disagree with accepted dispatches, \
         and followers that missed or repeated an event.",
        &["followers", "dispatches/s", "vs no followers", "lag p50 ms", "lag p99 ms", "violations"],
    );
    let writers = 8;
    let kinds = [
        (Followers::None, "none"),
        (Followers::Subscriptions, "4 subscriptions"),
        (Followers::LockingReads, "4 locking reads"),
    ];
    // Interleaved repeats, so that drift of the machine does not favour
    // whichever kind ran first.
    let mut results: Vec<(Vec<f64>, Vec<f64>, u64)> = kinds.iter().map(|_| (Vec::new(), Vec::new(), 0)).collect();
    for _ in 0..config.repeats.max(1) + 2 {
        for ((followers, _), (rates, lags, violations)) in kinds.iter().zip(results.iter_mut()) {
            let run = run_once(writers, *followers, 4, config.parallel_duration).await?;
            rates.push(run.dispatches_per_second);
            lags.extend(run.lags);
            *violations += run.violations;
        }
    }
    let baseline = median(&results[0].0);
    for ((_, label), (rates, lags, violations)) in kinds.iter().zip(&results) {
        let rate = median(rates);
        let lag = |p| {
            if lags.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.1}", percentile_of(lags, p))
            }
        };
        report.row(&[
            (*label).to_owned(),
            format!("{rate:.0}"),
            format!("{:.2}", rate / baseline.max(f64::EPSILON)),
            lag(50.0),
            lag(99.0),
            violations.to_string(),
        ]);
    }
    Ok(())
}
