//! Concurrency on the real server: contention for the last tickets,
//! positional checks over many seeds, and unrelated writers overlapping in
//! time.

use std::time::Duration;

use factos::{
    AppendCondition, AppendRequest, DecisionScope, Dispatcher, EventId, EventStore, EventType, JsonCodec, NewEvent,
    Query, QueryItem, ReadOptions, RetryPolicy, StoreError, StreamId, Tag,
};
use factos_conformance::cases::{
    consistency_with_seed, decisions_with_seed, monotonic_positions_with_seed, unrelated_writers_with_seed,
};
use factos_conformance::tickets::{Buy, SoldOut, TicketSold, box_office, concert_query, concert_stream};
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::Cluster;
use proptest::prelude::Rng;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn fresh_store(connections: usize) -> Result<PgStore, Box<dyn std::error::Error + Send + Sync>> {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(connections))?;
    store.migrate().await?;
    Ok(store)
}

const SEEDS: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racers_sell_exactly_the_last_tickets_while_other_sales_never_conflict() -> TestResult {
    let (capacity, last) = (40u32, 5u32);
    for seed in 0..SEEDS {
        let store = fresh_store(48).await?;
        let codec = JsonCodec::<TicketSold>::new();
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
        let mut tasks = Vec::new();
        for racer in 0..24u32 {
            let (store, pause) = (store.clone(), rng.random_range(0..3_000u64));
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(pause)).await;
                let buy = Buy {
                    concert: 1,
                    buyer: 1_000 + racer,
                };
                let sold = Dispatcher::new(&store, codec)
                    .dispatch_context(&box_office(capacity), &buy, &concert_query(1), &concert_stream(1))
                    .await;
                (true, sold.map(|c| c.len()))
            }));
        }
        for other in 0..16u32 {
            let (store, pause) = (store.clone(), rng.random_range(0..3_000u64));
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(pause)).await;
                let concert = 100 + other;
                let sold = Dispatcher::new(&store, codec)
                    .with_retry(RetryPolicy::none())
                    .dispatch_context(
                        &box_office(1),
                        &Buy { concert, buyer: 1 },
                        &concert_query(concert),
                        &concert_stream(concert),
                    )
                    .await;
                (false, sold.map(|c| c.len()))
            }));
        }
        let (mut sold, mut sold_out) = (0, 0);
        for task in tasks {
            match task.await? {
                (true, Ok(n)) => sold += n,
                (true, Err(factos::Error::Domain(SoldOut))) => sold_out += 1,
                (true, Err(other)) => return Err(format!("seed {seed}: a racer failed: {other}").into()),
                (false, Ok(1)) => {}
                (false, other) => return Err(format!("seed {seed}: an uncontended sale failed: {other:?}").into()),
            }
        }
        assert_eq!((sold, sold_out), (last as usize, 24 - last as usize), "seed {seed}");
        let stored = store.read(&concert_query(1), ReadOptions::forwards()).await?;
        assert_eq!(
            stored.len(),
            capacity as usize,
            "seed {seed}: the concert must be sold exactly to capacity"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn positional_checks_hold_over_many_seeds_with_twenty_connections() -> TestResult {
    for seed in 1..=SEEDS {
        consistency_with_seed(&fresh_store(24).await?, seed)
            .await
            .map_err(|e| format!("consistency, seed {seed}: {e:?}"))?;
        decisions_with_seed(&fresh_store(24).await?, seed)
            .await
            .map_err(|e| format!("decisions, seed {seed}: {e:?}"))?;
        monotonic_positions_with_seed(&fresh_store(24).await?, seed, 16)
            .await
            .map_err(|e| format!("monotonic positions, seed {seed}: {e:?}"))?;
        unrelated_writers_with_seed(&fresh_store(24).await?, seed)
            .await
            .map_err(|e| format!("unrelated writers, seed {seed}: {e:?}"))?;
    }
    Ok(())
}

fn sale(concert: u32) -> Result<NewEvent, factos::InvalidName> {
    Ok(
        NewEvent::new(EventId::random(), EventType::new("TicketSold")?, b"{}".to_vec())
            .with_tags([Tag::new(format!("concert:{concert}"))?]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_holding_its_context_blocks_only_matching_writers() -> TestResult {
    let store = fresh_store(8).await?;
    let (decision, seen) = store.begin_decision(&DecisionScope::Query(concert_query(1))).await?;
    assert!(seen.is_empty());

    let unrelated = store.append(AppendRequest::new(StreamId::new("other")?, vec![sale(2)?]));
    let unrelated = tokio::time::timeout(Duration::from_secs(5), unrelated).await;
    assert!(
        matches!(unrelated, Ok(Ok(_))),
        "a writer of a non-matching event waited for the decision: {unrelated:?}"
    );

    let matching_store = store.clone();
    let matching = AppendRequest::new(StreamId::new("racer")?, vec![sale(1)?]);
    let matching = tokio::spawn(async move { matching_store.append(matching).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !matching.is_finished(),
        "a writer of a matching event got in while the decision held its context"
    );

    let condition = AppendCondition::new(concert_query(1), None);
    let decided = store
        .commit_decision(
            decision,
            AppendRequest::new(concert_stream(1), vec![sale(1)?]).condition(condition),
        )
        .await?;
    let racer = matching.await??;
    assert!(
        decided.records[0].position < racer.records[0].position,
        "the waiting writer must come after the decision"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossing_decisions_break_their_wait_cycle_quickly() -> TestResult {
    let store = fresh_store(8).await?;
    let on = |tag: &str| -> Result<Query, factos::InvalidName> { Ok(Query::from(QueryItem::tags([Tag::new(tag)?]))) };
    let tagged = |tag: &str| -> Result<NewEvent, factos::InvalidName> {
        Ok(NewEvent::new(EventId::random(), EventType::new("E")?, Vec::new()).with_tags([Tag::new(tag)?]))
    };
    // Each decision guards one tag and writes an event carrying the other.
    let (first, _) = store.begin_decision(&DecisionScope::Query(on("a")?)).await?;
    let (second, _) = store.begin_decision(&DecisionScope::Query(on("b")?)).await?;
    let first_request =
        AppendRequest::new(StreamId::new("one")?, vec![tagged("b")?]).condition(AppendCondition::new(on("a")?, None));
    let second_request =
        AppendRequest::new(StreamId::new("two")?, vec![tagged("a")?]).condition(AppendCondition::new(on("b")?, None));
    let started = std::time::Instant::now();
    let (first, second) = tokio::join!(
        store.commit_decision(first, first_request),
        store.commit_decision(second, second_request)
    );
    let elapsed = started.elapsed();
    let contention = [&first, &second]
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Contention(_))))
        .count();
    let committed = [&first, &second].iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        committed + contention,
        2,
        "each decision commits or is told to retry: {first:?} / {second:?}"
    );
    assert!(
        contention >= 1,
        "the wait cycle must be broken by telling a decision to retry"
    );
    assert!(
        elapsed < Duration::from_millis(900),
        "the cycle took {elapsed:?} to break"
    );
    assert_eq!(
        store.read(&Query::all(), ReadOptions::forwards()).await?.len(),
        committed,
        "a decision told to retry wrote nothing"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_whose_connection_dropped_is_sent_again_on_its_condition() -> TestResult {
    let cluster = Cluster::shared()?;
    let (mut config, _) = cluster.fresh_schema().await?;
    let name = format!("factos-drop-{}", std::process::id());
    config.application_name(&name);
    let store = PgStore::connect_with(config, PoolOptions::new(4))?;
    store.migrate().await?;
    let (admin, connection) = cluster.config().connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let terminate = async || {
        admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'",
                &[&name],
            )
            .await
            .map(|killed| killed.len())
    };

    // The decision's connection is gone before its commit: the request is
    // sent again on a new one, its condition checked there, and it holds.
    let (decision, _) = store.begin_decision(&DecisionScope::Query(concert_query(1))).await?;
    assert_eq!(terminate().await?, 1, "exactly the decision's connection is terminated");
    let request =
        AppendRequest::new(concert_stream(1), vec![sale(1)?]).condition(AppendCondition::new(concert_query(1), None));
    let committed = store.commit_decision(decision, request).await?;
    let stored = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(stored.len(), 1, "written once");
    assert_eq!(stored[0].id, committed.records[0].id);

    // Again, but a matching sale arrives meanwhile: the re-sent request's
    // condition fails, and nothing of it is written.
    let (decision, read) = store.begin_decision(&DecisionScope::Query(concert_query(1))).await?;
    assert_eq!(terminate().await?, 1);
    store
        .append(AppendRequest::new(concert_stream(2), vec![sale(1)?]))
        .await?;
    let after = read.last().map(|e| e.position);
    let request =
        AppendRequest::new(concert_stream(1), vec![sale(1)?]).condition(AppendCondition::new(concert_query(1), after));
    match store.commit_decision(decision, request).await {
        Err(StoreError::ConditionFailed(_)) => {}
        other => return Err(format!("expected the condition to fail, got {other:?}").into()),
    }
    assert_eq!(
        store.read(&Query::all(), ReadOptions::forwards()).await?.len(),
        2,
        "the other sale, and nothing of the refused decision"
    );
    Ok(())
}

/// One random operation of the mixed workload: a read with a random query
/// shape, a plain append of a small or a large batch (more keys than one
/// transaction locks one by one), a conditional append, or a dispatch.
async fn mixed_operation(store: &PgStore, rng: &mut proptest::test_runner::TestRng) -> Result<(), StoreError> {
    let tags = ["a", "b", "c", "d"];
    let types = ["X", "Y", "Z"];
    let random_item = |rng: &mut proptest::test_runner::TestRng| {
        let type_count = rng.random_range(0..3);
        let types: Vec<&str> = (0..type_count)
            .map(|_| types[rng.random_range(0..types.len())])
            .collect();
        let tag_count = rng.random_range(0..3);
        let tags: Vec<&str> = (0..tag_count).map(|_| tags[rng.random_range(0..tags.len())]).collect();
        QueryItem::types(types.into_iter().filter_map(|t| EventType::new(t).ok()))
            .with_tags(tags.into_iter().filter_map(|t| Tag::new(t).ok()))
    };
    let random_event = |rng: &mut proptest::test_runner::TestRng, extra_tags: usize| {
        let event_type = EventType::new(types[rng.random_range(0..types.len())]).map_err(StoreError::backend)?;
        let mut event_tags = vec![Tag::new(tags[rng.random_range(0..tags.len())]).map_err(StoreError::backend)?];
        for i in 0..extra_tags {
            event_tags.push(Tag::new(format!("bulk:{i}")).map_err(StoreError::backend)?);
        }
        Ok::<_, StoreError>(NewEvent::new(EventId::random(), event_type, b"{}".to_vec()).with_tags(event_tags))
    };
    let stream = StreamId::new(format!("s{}", rng.random_range(0..8))).map_err(StoreError::backend)?;
    match rng.random_range(0..4) {
        0 => {
            let query = Query::new((0..rng.random_range(1..3)).map(|_| random_item(rng)));
            store.read(&query, ReadOptions::forwards()).await.map(drop)
        }
        1 => {
            let extra = if rng.random_bool(0.3) { 40 } else { 0 };
            let events = (0..rng.random_range(1..4))
                .map(|_| random_event(rng, extra))
                .collect::<Result<_, _>>()?;
            store.append(AppendRequest::new(stream, events)).await.map(drop)
        }
        2 => {
            let query = Query::from(random_item(rng));
            let seen = store.read(&query, ReadOptions::backwards().limit(1)).await?;
            let request = AppendRequest::new(stream, vec![random_event(rng, 0)?])
                .condition(AppendCondition::new(query, seen.first().map(|e| e.position)));
            match store.append(request).await {
                Err(StoreError::ConditionFailed(_)) => Ok(()),
                other => other.map(drop),
            }
        }
        _ => {
            let query = Query::from(random_item(rng));
            let (decision, seen) = store.begin_decision(&DecisionScope::Query(query.clone())).await?;
            let extra = if rng.random_bool(0.3) { 40 } else { 0 };
            let events = (0..rng.random_range(1..3))
                .map(|_| random_event(rng, extra))
                .collect::<Result<_, _>>()?;
            let request = AppendRequest::new(stream, events)
                .condition(AppendCondition::new(query, seen.last().map(|e| e.position)));
            match store.commit_decision(decision, request).await {
                // The one operation a caller retries itself (the dispatch
                // flows do): the decision's read is void after a rollback.
                Err(StoreError::Contention(_)) => Ok(()),
                other => other.map(drop),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_query_shapes_and_large_batches_never_surface_contention_from_reads_or_appends() -> TestResult {
    for seed in 0..3 {
        // PostgreSQL's deadlock check runs after 5 ms instead of 1 s, before
        // a decision's 50 ms lock timeout: the server, not the decision,
        // picks which member of a cycle to abort, often a read or an append.
        let (mut config, schema) = Cluster::shared()?.fresh_schema().await?;
        config.options(format!("-c search_path={schema} -c deadlock_timeout=5ms"));
        let store = PgStore::connect_with(config, PoolOptions::new(20))?;
        store.migrate().await?;
        let workers = (0..16u64).map(|worker| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut rng = factos_conformance::rng(seed * 100 + worker);
                for step in 0..25 {
                    mixed_operation(&store, &mut rng)
                        .await
                        .map_err(|e| format!("seed {seed}, worker {worker}, step {step}: {e}"))?;
                }
                Ok::<_, String>(())
            })
        });
        for outcome in futures::future::join_all(workers).await {
            outcome??;
        }
    }
    Ok(())
}
