//! Wait cycles on the real server: whichever member PostgreSQL aborts, the
//! caller never sees it while the retry budget lasts.

use std::time::Duration;

use factos::{
    AppendCondition, AppendRequest, DecisionScope, Dispatcher, EventId, EventStore, EventType, JsonCodec, NewEvent,
    Query, QueryItem, ReadOptions, StreamId, Tag, decider,
};
use factos_test_postgres::Cluster;

use super::PgStore;
use crate::locks::Keys;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn item(event_type: &str, tag: &str) -> Result<QueryItem, factos::InvalidName> {
    Ok(QueryItem::types([EventType::new(event_type)?]).with_tags([Tag::new(tag)?]))
}

/// A reader that has waited longer than PostgreSQL's deadlock timeout when
/// a decision closes a cycle with it is the member the server aborts
/// (40P01), not the decision: the read must retry and succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_loses_a_deadlock_is_retried() -> TestResult {
    let (config, schema) = Cluster::shared()?.fresh_schema().await?;
    // The decision waits long enough for its second lock pass that the
    // server's deadlock check (after 1 s) picks the reader.
    let store =
        PgStore::connect_with(config, crate::PoolOptions::new(4))?.with_decision_lock_timeout(Duration::from_secs(10));
    store.migrate().await?;
    let keys = Keys::new(&schema);
    let guarded = item("Decided", "d")?;
    // A tag whose key sorts before the decision's guard, so the reader holds
    // it while it waits for the guard.
    let tag = (0..1_000)
        .map(|i| format!("r{i}"))
        .find(|t| {
            let reader = Query::from(item("Written", t).unwrap_or_default());
            keys.guarded(&reader)[0] < keys.guarded(&Query::from(guarded.clone()))[0]
        })
        .ok_or("no tag sorts first")?;

    let (decision, _) = store
        .begin_decision(&DecisionScope::Query(Query::from(guarded.clone())))
        .await?;
    let reader = {
        let store = store.clone();
        let query = Query::new([item("Written", &tag)?, guarded.clone()]);
        tokio::spawn(async move { store.read(&query, ReadOptions::forwards()).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The decision's event touches the key the reader holds: a cycle.
    let event = NewEvent::new(EventId::random(), EventType::new("Written")?, b"{}".to_vec())
        .with_tags([Tag::new(tag.as_str())?]);
    let request = AppendRequest::new(StreamId::new("s")?, vec![event])
        .condition(AppendCondition::new(Query::from(guarded), None));
    let committed = store.commit_decision(decision, request).await?;
    let read = reader.await??;
    assert_eq!(read, committed.records, "the retried read sees the decision's event");
    Ok(())
}

/// Decisions that append batches touching more keys than a transaction may
/// lock each need the bulk key exclusively while holding it shared: such
/// upgrades collide, one side times out and retries, and every dispatch
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_with_large_batches_all_succeed() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, crate::PoolOptions::new(8))?;
    store.migrate().await?;
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Tagged {
        tags: Vec<String>,
    }
    impl factos::JsonEvent for Tagged {
        fn event_type(&self) -> &'static str {
            "Tagged"
        }
        fn tags(&self) -> Vec<String> {
            self.tags.clone()
        }
    }
    let dispatches = (0..8u32).map(|owner| {
        let store = store.clone();
        tokio::spawn(async move {
            let large = decider(
                (),
                |owner: &u32, (): &()| {
                    Ok::<_, String>(
                        (0..10)
                            .map(|e| Tagged {
                                tags: (0..10).map(|t| format!("owner:{owner}:{e}:{t}")).collect(),
                            })
                            .collect(),
                    )
                },
                |(), _: &Tagged| (),
            );
            let query = Query::from(QueryItem::tags([Tag::new(format!("owner:{owner}"))?]));
            Dispatcher::new(&store, JsonCodec::new())
                .dispatch_context(&large, &owner, &query, &StreamId::new(format!("owner-{owner}"))?)
                .await
                .map(|committed| committed.len())
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.to_string().into() })
        })
    });
    for outcome in futures::future::join_all(dispatches).await {
        assert_eq!(outcome??, 10);
    }
    assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?.len(), 80);
    Ok(())
}
