//! The dispatch flow re-runs read → decide → append when its append loses a
//! race, up to the retry policy, and then reports the condition that failed.

mod racing;

use std::sync::atomic::AtomicU32;

use factos::{Error, EventStore, MemoryStore, Query, QueryItem, ReadOptions, RetryPolicy, Tag};
use racing::{Racing, sell};

#[tokio::test]
async fn retries_until_a_decision_survives() -> Result<(), Box<dyn std::error::Error>> {
    let store = Racing {
        inner: MemoryStore::new(),
        races: AtomicU32::new(3),
    };
    assert_eq!(sell(&store, RetryPolicy::attempts(4)).await?, 1);
    let all = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(all.len(), 4, "three racers and the one accepted sale");
    assert_eq!(all[3].stream.as_str(), "box-office");
    Ok(())
}

#[tokio::test]
async fn gives_up_with_the_failed_condition_after_the_last_attempt() -> Result<(), Box<dyn std::error::Error>> {
    let store = Racing {
        inner: MemoryStore::new(),
        races: AtomicU32::new(3),
    };
    match sell(&store, RetryPolicy::attempts(3)).await {
        Err(Error::AppendConditionFailed { source, attempts }) => {
            assert_eq!(attempts, 3);
            assert_eq!(
                source.condition.query,
                Query::from(QueryItem::tags([Tag::new("concert:1")?]))
            );
            assert_eq!(source.condition.after.map(|p| p.value()), Some(2));
            assert_eq!(source.conflicting.value(), 3);
        }
        other => panic!("expected AppendConditionFailed, got {other:?}"),
    }
    let all = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert!(all.iter().all(|e| e.stream.as_str() == "racer"), "no attempt may write");
    Ok(())
}
