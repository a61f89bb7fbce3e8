//! A store on a Patroni cluster (three nodes, synchronous replication)
//! whose primary is killed with `SIGKILL` five times while 16 writers
//! dispatch, and switched over once: nothing acknowledged is lost or
//! written twice, no capacity is oversold, the writers go on by
//! themselves, and a subscription, a projection and an effect runner end
//! exactly where a recompute from the log says.
//!
//! Skipped, with the reason printed, where `patroni` or `etcd` is not
//! installed, unless `FACTOS_REQUIRE_PATRONI` is set (CI sets it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use factos::{
    BoxError, Decider, Dispatcher, EventId, EventStore, JsonCodec, JsonEvent, Projector, Query, ReadOptions, Recorded,
    StoredCodec, StoredEvent, StreamId, Subscription, Tag, decider, reactor,
};
use factos_conformance::tally_sql;
use factos_conformance::tickets::{Buy, TicketSold, box_office, concert_query, concert_stream};
use factos_effects::EffectRunner;
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::{HaCluster, HaOptions, longest_silence};
use serde::{Deserialize, Serialize};
mod common;

use common::Tally;

type TestResult = Result<(), BoxError>;

const WRITERS: u32 = 16;
const KILLS: usize = 5;
/// Seats of the shared concert: fewer than the writers try to buy.
const CAPACITY: u32 = 120;
const CONCERT: u32 = 1;

/// Writer `writer`'s `n`-th count: decided only right after its `n - 1`-th.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Counted {
    writer: u32,
    n: u32,
}

impl JsonEvent for Counted {
    fn event_type(&self) -> &'static str {
        "Counted"
    }
    fn tags(&self) -> Vec<String> {
        vec![format!("writer:{}", self.writer)]
    }
}

fn writer_query(writer: u32) -> Result<Query, BoxError> {
    Ok(Query::from(
        factos::QueryItem::types([factos::EventType::new("Counted")?])
            .with_tags([Tag::new(format!("writer:{writer}"))?]),
    ))
}

/// Counts on: refuses any `n` but the next one, so a count decided twice
/// (a lost commit taken for a failure and dispatched again) is refused,
/// and the writer reports it.
fn counter(writer: u32) -> impl Decider<Command = u32, State = u32, Event = Counted, Error = String> {
    decider(
        0u32,
        move |n: &u32, last: &u32| {
            if *n == last + 1 {
                Ok(vec![Counted { writer, n: *n }])
            } else {
                Err(format!("writer {writer} asked for count {n} after {last}"))
            }
        },
        |_: u32, counted: &Counted| counted.n,
    )
}

/// What the writers saw.
#[derive(Default)]
struct Acks {
    /// Every acknowledged dispatch, when it was acknowledged.
    at: Vec<Instant>,
    /// Acknowledged counts per writer.
    counts: HashMap<u32, u32>,
    /// Acknowledged sales.
    sales: HashSet<EventId>,
    /// Domain refusals that must not happen.
    wrong: Vec<String>,
    /// Failed dispatches (the cluster had no primary).
    failures: usize,
}

async fn write(store: PgStore, writer: u32, stop: Arc<AtomicBool>, acks: Arc<Mutex<Acks>>) {
    let counts = Dispatcher::new(&store, JsonCodec::<Counted>::new());
    let sales = Dispatcher::new(&store, JsonCodec::<TicketSold>::new());
    let (Ok(query), Ok(stream)) = (writer_query(writer), StreamId::new(format!("writer-{writer}"))) else {
        return;
    };
    let mut n = 1;
    let mut sold_out = false;
    let mut step = 0u32;
    while !stop.load(Ordering::SeqCst) {
        step += 1;
        if step.is_multiple_of(4) && !sold_out {
            let buy = Buy {
                concert: CONCERT,
                buyer: writer * 100_000 + step,
            };
            let sold = sales
                .dispatch_context(
                    &box_office(CAPACITY),
                    &buy,
                    &concert_query(CONCERT),
                    &concert_stream(CONCERT),
                )
                .await;
            let mut acks = acks.lock().unwrap_or_else(|e| e.into_inner());
            match sold {
                Ok(events) => {
                    acks.at.push(Instant::now());
                    acks.sales.extend(events.iter().map(|e| e.id));
                }
                Err(factos::Error::Domain(_)) => sold_out = true,
                Err(_) => acks.failures += 1,
            }
            continue;
        }
        let outcome = counts.dispatch_context(&counter(writer), &n, &query, &stream).await;
        let failed = {
            let mut acks = acks.lock().unwrap_or_else(|e| e.into_inner());
            match outcome {
                Ok(_) => {
                    acks.at.push(Instant::now());
                    acks.counts.insert(writer, n);
                    n += 1;
                    false
                }
                Err(factos::Error::Domain(wrong)) => {
                    acks.wrong.push(wrong);
                    return;
                }
                Err(_) => {
                    acks.failures += 1;
                    true
                }
            }
        };
        if failed {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Delivers every event to `delivered`, going on after every failure.
async fn subscribe(store: PgStore, delivered: Arc<Mutex<Vec<EventId>>>) {
    let mut subscription = Subscription::new(&store, Query::all(), None);
    loop {
        match subscription.next_batch().await {
            Ok(batch) => delivered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(batch.iter().map(|d| d.record.id)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn project(store: PgStore) {
    loop {
        let mut projector = Projector::new(&store, &store, Tally { refuse_poison: false }, StoredCodec);
        if projector.run().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn react(store: PgStore, handled: Arc<Mutex<HashSet<EventId>>>) {
    let once = reactor(|event: &Recorded<StoredEvent>| vec![event.id]);
    loop {
        let runner = EffectRunner::new(&store, "receipts", Query::all(), &once, StoredCodec);
        let handled = handled.clone();
        let ran = runner
            .run(move |_, id: EventId| {
                handled.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
                async { Ok::<(), String>(()) }
            })
            .await;
        if ran.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_loses_no_acknowledged_event_and_writers_go_on() -> TestResult {
    let Some(cluster) = HaCluster::start(HaOptions::TEST)? else {
        return Ok(());
    };
    let options = PoolOptions::new(24).connect_timeout(Duration::from_secs(2));
    let store = PgStore::connect_with(cluster.primary_url(), options)?.with_resend_window(Duration::from_secs(60));
    store.migrate().await?;

    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(Acks::default()));
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let handled = Arc::new(Mutex::new(HashSet::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write(store.clone(), w, stop.clone(), acks.clone())))
        .collect();
    let followers = [
        tokio::spawn(subscribe(store.clone(), delivered.clone())),
        tokio::spawn(project(store.clone())),
        tokio::spawn(react(store.clone(), handled.clone())),
    ];

    // Five crashes at random moments, then a clean switchover.
    let mut outages = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1_500 + fastrand::u64(..2_500))).await;
        let primary = cluster.primary().await.ok_or("no primary")?;
        let killed = Instant::now();
        cluster.kill(primary)?;
        cluster.wait_for_new_primary(primary, Duration::from_secs(90)).await?;
        cluster.restart(primary)?;
        cluster.wait_ready(Duration::from_secs(90))?;
        outages.push(("kill -9", killed));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let primary = cluster.primary().await.ok_or("no primary")?;
    let switched = Instant::now();
    cluster.switchover(primary)?;
    cluster.wait_for_new_primary(primary, Duration::from_secs(90)).await?;
    cluster.wait_ready(Duration::from_secs(90))?;
    outages.push(("switchover", switched));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let stopped = Instant::now();
    for writer in writers {
        writer.await?;
    }

    let acks = std::mem::take(&mut *acks.lock().unwrap_or_else(|e| e.into_inner()));
    assert!(
        acks.wrong.is_empty(),
        "no count was decided twice or skipped: {:?}",
        acks.wrong
    );

    // Every acknowledged event is on the surviving primary, once.
    let log = store.read(&Query::all(), ReadOptions::forwards()).await?;
    let ids: HashSet<EventId> = log.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), log.len(), "no event is stored twice");
    assert!(
        log.windows(2).all(|w| w[0].position < w[1].position),
        "positions increase"
    );
    let mut counted: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut sales = HashSet::new();
    for event in &log {
        match event.event_type.as_str() {
            "Counted" => {
                let count: Counted = serde_json::from_slice(&event.event)?;
                counted.entry(count.writer).or_default().push(count.n);
            }
            "TicketSold" => {
                sales.insert(event.id);
            }
            other => return Err(format!("unexpected event type {other}").into()),
        }
    }
    for writer in 0..WRITERS {
        let acknowledged = acks.counts.get(&writer).copied().unwrap_or(0);
        let stored = counted.remove(&writer).unwrap_or_default();
        assert_eq!(
            stored,
            (1..=acknowledged).collect::<Vec<_>>(),
            "writer {writer}: each acknowledged count once, in order, nothing unacknowledged"
        );
        assert!(acknowledged > 0, "writer {writer} wrote");
    }
    assert_eq!(sales, acks.sales, "exactly the acknowledged sales are stored");
    assert!(
        sales.len() <= CAPACITY as usize,
        "no seat oversold: {} sold",
        sales.len()
    );
    let concert = store.read(&concert_query(CONCERT), ReadOptions::forwards()).await?;
    assert!(
        concert.windows(2).all(|w| w[0].revision < w[1].revision),
        "the concert's stream revisions follow its positions"
    );

    // The followers reach the log's end: exactly once, equal to a recompute.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = delivered.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let reacted = handled.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let tallied = tallies(&cluster).await.unwrap_or_default();
        let done = got.len() >= log.len() && reacted.len() >= ids.len() && tallied == recompute(&log);
        if done || Instant::now() > deadline {
            let unique: HashSet<EventId> = got.iter().copied().collect();
            assert_eq!(unique.len(), got.len(), "the subscription delivered no event twice");
            assert_eq!(unique, ids, "the subscription delivered every event");
            assert_eq!(reacted, ids, "every effect reached its handler");
            assert_eq!(tallied, recompute(&log), "the projection equals a recompute");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for follower in followers {
        follower.abort();
    }

    let ends: Vec<Instant> = outages.iter().skip(1).map(|(_, from)| *from).chain([stopped]).collect();
    let windows: Vec<(&str, Duration)> = outages
        .iter()
        .zip(ends)
        .map(|((what, from), until)| (*what, longest_silence(&acks.at, *from, until).unwrap_or(Duration::MAX)))
        .collect();
    let mut kills: Vec<Duration> = windows
        .iter()
        .filter(|(w, _)| *w == "kill -9")
        .map(|(_, d)| *d)
        .collect();
    kills.sort();
    eprintln!(
        "failover: {} events, {} sales, {} failed dispatches; unavailability per kill -9 {:?} \
         (p50 {:?}, max {:?}); switchover {:?}; leader ttl {:?}",
        log.len(),
        sales.len(),
        acks.failures,
        kills,
        kills[kills.len() / 2],
        kills[kills.len() - 1],
        windows.last().map(|(_, d)| *d),
        cluster.leader_ttl(),
    );
    assert!(
        kills[kills.len() - 1] < Duration::from_secs(60),
        "writers resumed after every failover by themselves"
    );
    Ok(())
}

/// The tally table on the primary.
async fn tallies(cluster: &HaCluster) -> Result<BTreeMap<String, i64>, BoxError> {
    let (client, connection) = tokio_postgres::connect(&cluster.primary_url(), tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let rows = client.query(tally_sql::SELECT, &[]).await?;
    drop(client);
    let _ = driver.await;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(Into::into)
}

/// What the tally must hold for `log`.
fn recompute(log: &[StoredEvent]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for event in log {
        for tag in &event.tags {
            *counts.entry(tag.to_string()).or_insert(0) += 1;
        }
    }
    counts
}
