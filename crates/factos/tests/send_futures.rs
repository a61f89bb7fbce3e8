//! The dispatch flows over an `EventStore` produce `Send` futures, both for a
//! concrete store and inside code generic over `EventStore`, so they can be
//! spawned on a multi-threaded runtime.

use factos::snapshot::{JsonState, SnapshotStore, Snapshotting};
use factos::{
    Decider, Dispatcher, EventStore, JsonCodec, JsonEvent, MemoryStore, Query, QueryItem, Recorded, StreamId, Tag,
    decider,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sold {
    concert: u32,
}

impl JsonEvent for Sold {
    fn event_type(&self) -> &'static str {
        "Sold"
    }
    fn tags(&self) -> Vec<String> {
        vec![format!("concert:{}", self.concert)]
    }
}

fn tickets(
    capacity: u32,
) -> impl Decider<Command = u32, State = u32, Event = Sold, Error = &'static str> + Send + Sync {
    decider(
        0u32,
        move |concert: &u32, sold: &u32| {
            if *sold < capacity {
                Ok(vec![Sold { concert: *concert }])
            } else {
                Err("sold out")
            }
        },
        |sold: u32, _: &Sold| sold + 1,
    )
}

async fn sell_in_generic_code<S: EventStore + Sync>(
    store: &S,
) -> Result<Vec<Recorded<Sold>>, factos::Error<&'static str>> {
    let query = Query::from(QueryItem::tags([Tag::new("concert:1")?]));
    let stream = StreamId::new("concert-1")?;
    Dispatcher::new(store, JsonCodec::new())
        .dispatch_context(&tickets(3), &1, &query, &stream)
        .await
}

async fn sell_with_snapshots_in_generic_code<S: SnapshotStore + Sync>(
    store: &S,
) -> Result<Vec<Recorded<Sold>>, factos::Error<&'static str>> {
    let query = Query::from(QueryItem::tags([Tag::new("concert:1")?]));
    let stream = StreamId::new("concert-1")?;
    let tickets = Snapshotting::new(tickets(3), "tickets", 1, JsonState).every(1);
    Dispatcher::new(store, JsonCodec::new())
        .dispatch_context_snapshotted(&tickets, &1, &query, &stream)
        .await
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_can_be_spawned() -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::new();
    let mut handles = Vec::new();
    for _ in 0..5 {
        let store = store.clone();
        handles.push(tokio::spawn(async move { sell_in_generic_code(&store).await.is_ok() }));
    }
    let mut accepted = 0;
    for handle in handles {
        accepted += usize::from(handle.await?);
    }
    assert_eq!(accepted, 3);
    let generic = assert_send(sell_in_generic_code(&store));
    assert_eq!(generic.await.err().and_then(|e| e.into_domain()), Some("sold out"));
    let snapshotted = assert_send(sell_with_snapshots_in_generic_code(&store));
    assert_eq!(snapshotted.await.err().and_then(|e| e.into_domain()), Some("sold out"));
    Ok(())
}
