//! What production meets in its first week, on the real server: abandoned
//! decisions, servers that never answer, hung deciders, connections the
//! server closed, schemas that were never migrated.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{Hook, Manager, ManagerConfig, Pool, RecyclingMethod};
use factos::{
    AppendRequest, DecisionScope, Dispatcher, ErrorChain, EventId, EventStore, EventType, JsonCodec, NewEvent, Query,
    ReadOptions, StoreError, StreamId, Tag, decider,
};
use factos_conformance::tickets::{Buy, TicketSold, box_office, concert_query, concert_stream};
use factos_postgres::{Limit, PgError, PgStore, PoolOptions};
use factos_test_postgres::Cluster;
use tokio_postgres::NoTls;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn sold(concert: u32, payload: &[u8]) -> Result<NewEvent, factos::InvalidName> {
    Ok(
        NewEvent::new(EventId::random(), EventType::new("TicketSold")?, payload.to_vec())
            .with_tags([Tag::new(format!("concert:{concert}"))?]),
    )
}

/// The PgError behind a store error, if there is one.
fn pg_error(error: &StoreError) -> Option<&PgError> {
    match error {
        StoreError::Backend(source) | StoreError::Contention(source) => source.downcast_ref::<PgError>(),
        _ => None,
    }
}

fn timed_out(error: &StoreError) -> Option<Limit> {
    match pg_error(error) {
        Some(PgError::Timeout { limit, .. }) => Some(*limit),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_decisions_return_their_connection_to_the_pool() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let created = Arc::new(AtomicUsize::new(0));
    let counter = created.clone();
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(4)
        .post_create(Hook::sync_fn(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
        .build()?;
    let store = PgStore::new(pool);
    store.migrate().await?;

    let codec = JsonCodec::<TicketSold>::new();
    let dispatcher = Dispatcher::new(&store, codec);
    // A sold-out concert: every dispatch is a domain rejection.
    dispatcher
        .dispatch_context(
            &box_office(1),
            &Buy { concert: 1, buyer: 0 },
            &concert_query(1),
            &concert_stream(1),
        )
        .await?;
    let rejections = (0..1_000u32).map(|buyer| {
        let dispatcher = Dispatcher::new(&store, codec);
        async move {
            dispatcher
                .dispatch_context(
                    &box_office(1),
                    &Buy { concert: 1, buyer },
                    &concert_query(1),
                    &concert_stream(1),
                )
                .await
        }
    });
    for outcome in futures::future::join_all(rejections).await {
        assert!(
            outcome.is_err_and(|e| e.is_domain()),
            "every purchase is refused as sold out"
        );
    }
    // Decisions that produce no events.
    let nothing = decider(
        (),
        |_: &(), _: &()| Ok::<Vec<TicketSold>, String>(Vec::new()),
        |(), _| (),
    );
    for _ in 0..50 {
        let committed = dispatcher
            .dispatch_context(&nothing, &(), &concert_query(1), &concert_stream(1))
            .await?;
        assert!(committed.is_empty());
    }
    // Decisions whose context does not decode.
    store
        .append(AppendRequest::new(concert_stream(2), vec![sold(2, b"not json")?]))
        .await?;
    for buyer in 0..50 {
        let undecodable = dispatcher
            .dispatch_context(
                &box_office(9),
                &Buy { concert: 2, buyer },
                &concert_query(2),
                &concert_stream(2),
            )
            .await;
        assert!(matches!(undecodable, Err(factos::Error::Decode(_))));
    }
    let opened = created.load(Ordering::SeqCst);
    assert!(
        opened <= 4,
        "1,100 abandoned decisions on a pool of 4 opened {opened} server sessions"
    );
    Ok(())
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_connect_timeout() -> TestResult {
    // A listener whose kernel accepts connections that nobody ever serves.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(silent.local_addr()?.port())
        .user("postgres")
        .dbname("postgres");
    let store = PgStore::connect_with(config, PoolOptions::new(2).connect_timeout(Duration::from_millis(300)))?;
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        store.read(&Query::all(), ReadOptions::forwards()),
    )
    .await
    .map_err(|_| "the read still hung after 10 s")?;
    let error = outcome.err().ok_or("a read from a silent server cannot succeed")?;
    assert_eq!(timed_out(&error), Some(Limit::Connect), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        ErrorChain(&error).to_string().contains("connecting to PostgreSQL"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn waiting_for_a_busy_pool_fails_within_the_wait_timeout() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(1).wait_timeout(Duration::from_millis(200)))?;
    store.migrate().await?;
    let (held, _) = store.begin_decision(&DecisionScope::Query(concert_query(1))).await?;
    let started = Instant::now();
    let error = store
        .read(&Query::all(), ReadOptions::forwards())
        .await
        .err()
        .ok_or("the only connection is taken")?;
    assert_eq!(timed_out(&error), Some(Limit::PoolWait), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
    store.abandon_decision(held).await;
    store.read(&Query::all(), ReadOptions::forwards()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_decider_releases_its_context_after_the_decision_timeout() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(4))?.with_decision_timeout(Duration::from_millis(400));
    store.migrate().await?;
    let (decision, _) = store.begin_decision(&DecisionScope::Query(concert_query(1))).await?;

    // A writer of a matching event waits for the decision's locks, but only
    // until the server ends the hung decision's session.
    let started = Instant::now();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(AppendRequest::new(concert_stream(1), vec![sold(1, b"{}")?]))
                .await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(900)).await; // the decider hangs
    let waited = writer.await??;
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(900),
        "the matching writer waited {waited:?}"
    );

    let late = AppendRequest::new(concert_stream(1), vec![sold(1, b"{}")?]);
    let error = store
        .commit_decision(decision, late)
        .await
        .err()
        .ok_or("a decision past its limit must not commit")?;
    assert_eq!(timed_out(&error), Some(Limit::Decision), "{error}");
    let stored = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(stored.len(), 1, "only the writer's event is stored");
    Ok(())
}

#[tokio::test]
async fn a_statement_blocked_past_the_statement_timeout_fails_typed() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store =
        PgStore::connect_with(config, PoolOptions::new(2))?.with_statement_timeout(Some(Duration::from_millis(200)));
    store.migrate().await?;
    // The application holds the table in its own transaction.
    let mut blocker = store.pool().get().await?;
    let transaction = blocker.transaction().await?;
    transaction
        .batch_execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await?;
    let started = Instant::now();
    let error = store
        .read(&Query::all(), ReadOptions::forwards())
        .await
        .err()
        .ok_or("the table is locked")?;
    assert_eq!(timed_out(&error), Some(Limit::Statement), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The message says what ran out; the chain keeps the server's words.
    assert_eq!(
        ErrorChain(&error).to_string(),
        "storage backend failed: a statement took longer than its limit of 200ms: \
         PostgreSQL failed: SQLSTATE 57014: canceling statement due to statement timeout"
    );
    let mut chain = Vec::new();
    let mut cause: Option<&dyn std::error::Error> = Some(&error);
    while let Some(c) = cause {
        chain.push(c.to_string());
        cause = c.source();
    }
    assert!(
        chain
            .iter()
            .any(|line| line.contains("SQLSTATE 57014: canceling statement due to statement timeout")),
        "{chain:#?}"
    );
    transaction.rollback().await?;
    Ok(())
}

#[tokio::test]
async fn an_append_blocked_past_the_statement_timeout_is_cancelled_and_fails_typed() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store =
        PgStore::connect_with(config, PoolOptions::new(2))?.with_statement_timeout(Some(Duration::from_millis(200)));
    store.migrate().await?;
    let stream = StreamId::new("s")?;
    store
        .append(AppendRequest::new(stream.clone(), vec![sold(1, b"before")?]))
        .await?;
    let mut blocker = store.pool().get().await?;
    let transaction = blocker.transaction().await?;
    transaction
        .batch_execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await?;
    // An append runs alone, outside a transaction that could carry the
    // server's statement_timeout: the store cancels it itself.
    let started = Instant::now();
    let error = store
        .append(AppendRequest::new(stream.clone(), vec![sold(1, b"blocked")?]))
        .await
        .err()
        .ok_or("the table is locked")?;
    assert_eq!(timed_out(&error), Some(Limit::Statement), "{}", ErrorChain(&error));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(
        ErrorChain(&error).to_string().contains("SQLSTATE 57014"),
        "{}",
        ErrorChain(&error)
    );
    transaction.rollback().await?;
    drop(blocker);
    // Nothing of the cancelled append was written, and the store goes on.
    store
        .append(AppendRequest::new(stream.clone(), vec![sold(1, b"after")?]))
        .await?;
    let payloads: Vec<Vec<u8>> = store
        .read_stream(&stream, factos::StreamRevision::FIRST)
        .await?
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(payloads, [b"before".to_vec(), b"after".to_vec()]);
    Ok(())
}

#[tokio::test]
async fn connections_defaulting_to_repeatable_read_still_append_at_read_committed() -> TestResult {
    let (mut config, schema) = Cluster::shared()?.fresh_schema().await?;
    config.options(format!(
        "-c search_path={schema} -c default_transaction_isolation=repeatable\\ read"
    ));
    let store = PgStore::connect_with(config, PoolOptions::new(4))?;
    store.migrate().await?;
    // The append alone refuses to run below READ COMMITTED; the store
    // falls back to a transaction that sets it, and capacity still holds.
    let handles = (0..8u32).map(|buyer| {
        let store = store.clone();
        tokio::spawn(async move {
            Dispatcher::new(&store, JsonCodec::<TicketSold>::new())
                .dispatch_context(
                    &box_office(3),
                    &Buy { concert: 1, buyer },
                    &concert_query(1),
                    &concert_stream(1),
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    });
    let accepted = futures::future::join_all(handles)
        .await
        .into_iter()
        .filter(|outcome| matches!(outcome, Ok(Ok(()))))
        .count();
    assert_eq!(accepted, 3, "exactly the capacity is sold");
    store
        .append(AppendRequest::new(StreamId::new("plain")?, vec![sold(2, b"{}")?]))
        .await?;
    assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?.len(), 4);
    Ok(())
}

#[tokio::test]
async fn connections_the_server_closed_are_replaced_without_an_error() -> TestResult {
    let (mut config, _) = Cluster::shared()?.fresh_schema().await?;
    let name = format!("stale-{}", std::process::id());
    config.application_name(&name);
    let admin = PgStore::connect_with(Cluster::shared()?.config(), PoolOptions::new(1))?;
    let store = PgStore::connect_with(config, PoolOptions::new(2))?;
    store.migrate().await?;
    let stream = StreamId::new("s")?;
    for round in 0..20 {
        // Both pooled connections exist and are idle.
        let (a, b) = tokio::join!(
            store.append(AppendRequest::new(stream.clone(), vec![sold(1, b"{}")?])),
            store.read_stream(&stream, factos::StreamRevision::FIRST),
        );
        a?;
        b?;
        let terminated = admin
            .pool()
            .get()
            .await?
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .await?
            .get::<_, i64>(0);
        assert!(terminated >= 1, "round {round}: nothing to terminate");
        store
            .append(AppendRequest::new(stream.clone(), vec![sold(1, b"{}")?]))
            .await
            .map_err(|e| format!("round {round}: append after termination: {e}"))?;
        store
            .read_stream(&stream, factos::StreamRevision::FIRST)
            .await
            .map_err(|e| format!("round {round}: read_stream after termination: {e}"))?;
    }
    Ok(())
}

#[tokio::test]
async fn an_unmigrated_schema_is_refused_typed_on_first_use() -> TestResult {
    let (config, schema) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config.clone(), PoolOptions::new(2))?;
    let append = store
        .append(AppendRequest::new(StreamId::new("s")?, vec![sold(1, b"{}")?]))
        .await;
    match append.as_ref().err().and_then(pg_error) {
        Some(PgError::NotMigrated {
            schema: found,
            found: 0,
            ..
        }) => assert_eq!(found, &schema),
        _ => return Err(format!("expected NotMigrated, got {append:?}").into()),
    }
    let read = store.read(&Query::all(), ReadOptions::forwards()).await;
    assert!(matches!(
        read.as_ref().err().and_then(pg_error),
        Some(PgError::NotMigrated { .. })
    ));
    // Migrating later makes the same store usable.
    store.migrate().await?;
    store.read(&Query::all(), ReadOptions::forwards()).await?;
    Ok(())
}

#[tokio::test]
async fn a_store_that_never_migrates_refuses_a_newer_schema() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let migrator = PgStore::connect_with(config.clone(), PoolOptions::new(1))?;
    migrator.migrate().await?;
    migrator
        .pool()
        .get()
        .await?
        .execute("INSERT INTO factos_schema_version (version) VALUES (99)", &[])
        .await?;
    let store = PgStore::connect_with(config, PoolOptions::new(2))?;
    for outcome in [
        store.read(&Query::all(), ReadOptions::forwards()).await.map(drop),
        store
            .append(AppendRequest::new(StreamId::new("s")?, vec![sold(1, b"{}")?]))
            .await
            .map(drop),
    ] {
        let error = outcome.err().ok_or("a newer schema must be refused")?;
        assert!(
            matches!(pg_error(&error), Some(PgError::SchemaTooNew { found: 99, .. })),
            "{error}"
        );
    }
    let events: i64 = migrator
        .pool()
        .get()
        .await?
        .query_one("SELECT count(*) FROM events", &[])
        .await?
        .get(0);
    assert_eq!(events, 0, "nothing was written to the newer schema");
    Ok(())
}
