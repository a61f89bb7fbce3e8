//! Behind PgBouncer in `pool_mode = transaction`, where consecutive
//! transactions of one client connection run on different server
//! connections and nothing session-scoped survives: the conformance suite,
//! the capacity race and the positional checks, in row-lock mode and in
//! advisory mode (whose locks are all transaction-scoped, so they are as
//! correct here as on a direct connection).
//!
//! The harness starts the pooler itself when a `pgbouncer` binary is
//! installed (CI installs Debian's and sets `FACTOS_REQUIRE_PGBOUNCER`);
//! without one these tests say so and run against PostgreSQL directly.

use std::time::Duration;

use factos::{Dispatcher, EventStore, JsonCodec, ReadOptions, RetryPolicy};
use factos_conformance::cases::{
    consistency_with_seed, decisions_with_seed, monotonic_positions_with_seed, unrelated_writers_with_seed,
};
use factos_conformance::tickets::{Buy, SoldOut, box_office, concert_query, concert_stream};
use factos_postgres::{LockMode, PgStore, PoolOptions};
use factos_test_postgres::Cluster;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn behind_pgbouncer(
    mode: LockMode,
    connections: usize,
) -> Result<PgStore, Box<dyn std::error::Error + Send + Sync>> {
    let cluster = Cluster::shared()?;
    let (config, _) = match cluster.pgbouncer()? {
        Some(bouncer) => bouncer.fresh_schema().await?,
        None => {
            eprintln!("NOTE: no pgbouncer installed; running against PostgreSQL directly (apt-get install pgbouncer)");
            cluster.fresh_schema().await?
        }
    };
    let store = PgStore::connect_with(config, PoolOptions::new(connections))?
        .with_lock_mode(mode)
        .with_prepared_statements(false);
    store.migrate().await?;
    Ok(store)
}

async fn fresh_store(mode: LockMode) -> PgStore {
    match behind_pgbouncer(mode, 24).await {
        Ok(store) => store,
        Err(e) => panic!("a store behind PgBouncer: {e}"),
    }
}

mod row_locks {
    use super::*;
    factos_conformance::conformance_tests!(|| fresh_store(LockMode::RowLocks));
    factos_conformance::follow_tests!(|| fresh_store(LockMode::RowLocks));
}

mod advisory_locks {
    use super::*;
    factos_conformance::conformance_tests!(|| fresh_store(LockMode::Advisory));
    factos_conformance::follow_tests!(|| fresh_store(LockMode::Advisory));
}

async fn last_tickets_race(mode: LockMode, seed: u64) -> TestResult {
    use proptest::prelude::Rng;
    let (capacity, last) = (30u32, 4u32);
    let store = behind_pgbouncer(mode, 32).await?;
    let codec = JsonCodec::new();
    let dispatcher = Dispatcher::new(&store, codec);
    for buyer in 0..capacity - last {
        dispatcher
            .dispatch_context(
                &box_office(capacity),
                &Buy { concert: 1, buyer },
                &concert_query(1),
                &concert_stream(1),
            )
            .await?;
    }
    let mut rng = factos_conformance::rng(seed);
    let mut racers = Vec::new();
    for racer in 0..20u32 {
        let (store, pause) = (store.clone(), rng.random_range(0..3_000u64));
        racers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_micros(pause)).await;
            let buy = Buy {
                concert: 1,
                buyer: 1_000 + racer,
            };
            Dispatcher::new(&store, codec)
                .dispatch_context(&box_office(capacity), &buy, &concert_query(1), &concert_stream(1))
                .await
                .map(|c| c.len())
        }));
    }
    let mut others = Vec::new();
    for other in 0..12u32 {
        let store = store.clone();
        others.push(tokio::spawn(async move {
            let concert = 100 + other;
            Dispatcher::new(&store, codec)
                .with_retry(RetryPolicy::none())
                .dispatch_context(
                    &box_office(1),
                    &Buy { concert, buyer: 1 },
                    &concert_query(concert),
                    &concert_stream(concert),
                )
                .await
                .map(|c| c.len())
        }));
    }
    let (mut sold, mut sold_out) = (0, 0);
    for racer in racers {
        match racer.await? {
            Ok(n) => sold += n,
            Err(factos::Error::Domain(SoldOut)) => sold_out += 1,
            Err(other) => return Err(format!("{mode:?}, seed {seed}: a racer failed: {other}").into()),
        }
    }
    for other in others {
        assert_eq!(
            other.await?.map_err(|e| e.to_string())?,
            1,
            "{mode:?}, seed {seed}: an uncontended sale"
        );
    }
    assert_eq!(
        (sold, sold_out),
        (last as usize, 20 - last as usize),
        "{mode:?}, seed {seed}"
    );
    let stored = store.read(&concert_query(1), ReadOptions::forwards()).await?;
    assert_eq!(
        stored.len(),
        capacity as usize,
        "{mode:?}, seed {seed}: sold exactly to capacity"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racers_sell_exactly_the_last_tickets_behind_pgbouncer() -> TestResult {
    for seed in 0..3 {
        last_tickets_race(LockMode::RowLocks, seed).await?;
        last_tickets_race(LockMode::Advisory, seed).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn positional_checks_hold_behind_pgbouncer() -> TestResult {
    for mode in [LockMode::RowLocks, LockMode::Advisory] {
        for seed in 1..=3 {
            let what = |check: &str| format!("{check}, {mode:?}, seed {seed}");
            consistency_with_seed(&behind_pgbouncer(mode, 24).await?, seed)
                .await
                .map_err(|e| format!("{}: {e:?}", what("consistency")))?;
            decisions_with_seed(&behind_pgbouncer(mode, 24).await?, seed)
                .await
                .map_err(|e| format!("{}: {e:?}", what("decisions")))?;
            monotonic_positions_with_seed(&behind_pgbouncer(mode, 24).await?, seed, 16)
                .await
                .map_err(|e| format!("{}: {e:?}", what("monotonic positions")))?;
            unrelated_writers_with_seed(&behind_pgbouncer(mode, 24).await?, seed)
                .await
                .map_err(|e| format!("{}: {e:?}", what("unrelated writers")))?;
        }
    }
    Ok(())
}

/// The pooler really does hand one client's consecutive transactions to
/// different server connections here, so the tests above ran under the
/// conditions they claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_transactions_of_one_client_run_on_several_server_connections() -> TestResult {
    let cluster = Cluster::shared()?;
    let Some(bouncer) = cluster.pgbouncer()? else {
        eprintln!("NOTE: no pgbouncer installed; nothing to check");
        return Ok(());
    };
    let (config, _) = bouncer.fresh_schema().await?;
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    // A second client keeps server connections busy so the pool must move
    // the first one around.
    let (busy, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let mut pids = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let (mine, _) = tokio::join!(
            // Unnamed statements, as the store sends them: a named prepared
            // statement would not survive the move to another connection.
            client.query_typed("SELECT pg_backend_pid()", &[]),
            busy.batch_execute("SELECT pg_sleep(0.001)")
        );
        pids.extend(mine?.first().map(|row| row.get::<_, i32>(0)));
    }
    assert!(pids.len() > 1, "one client used only server connections {pids:?}");
    Ok(())
}
