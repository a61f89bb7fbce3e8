//! Facts compose into one decision context: one read of the union of their
//! queries, events routed to the facts they match, one condition.

use std::sync::Mutex;

use factos::{
    AppendCondition, AppendRequest, Committed, DecisionScope, Dispatcher, EventStore, JsonCodec, JsonEvent,
    MemoryDecision, MemoryStore, Predicate, PredicateValue, Query, QueryItem, ReadOptions, Recorded, StoreError,
    StoredEvent, StreamId, StreamRevision, Tag, fact, facts, handler,
};
use serde::{Deserialize, Serialize};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Event {
    Opened { account: u32 },
    Deposited { account: u32, amount: i64 },
    Noted { text: String },
}

impl JsonEvent for Event {
    fn event_type(&self) -> &'static str {
        match self {
            Event::Opened { .. } => "Opened",
            Event::Deposited { .. } => "Deposited",
            Event::Noted { .. } => "Noted",
        }
    }
    fn tags(&self) -> Vec<String> {
        match self {
            Event::Opened { account } | Event::Deposited { account, .. } => vec![format!("account:{account}")],
            Event::Noted { .. } => vec!["notes".into()],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Ctx {
    opened: Vec<u32>,
    deposits_seen_by_balance_1: Vec<i64>,
    deposits_seen_by_balance_2: Vec<i64>,
}

fn account(n: u32, types: &[&str]) -> QueryItem {
    QueryItem::types(types.iter().map(|t| t.parse().expect("valid type")))
        .with_tags([Tag::new(format!("account:{n}")).expect("valid tag")])
}

/// Records what the dispatch flow asked the store for.
struct Recording {
    inner: MemoryStore,
    scopes: Mutex<Vec<DecisionScope>>,
    conditions: Mutex<Vec<Option<AppendCondition>>>,
}

impl EventStore for Recording {
    type Transaction = MemoryDecision;
    async fn read(&self, query: &Query, options: ReadOptions) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read(query, options).await
    }
    async fn read_stream(&self, stream: &StreamId, from: StreamRevision) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read_stream(stream, from).await
    }
    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from: StreamRevision,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read_stream_page(stream, from, limit).await
    }
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        self.inner.append(request).await
    }
    async fn begin_decision(&self, scope: &DecisionScope) -> Result<(MemoryDecision, Vec<StoredEvent>), StoreError> {
        self.scopes
            .lock()
            .map_err(|e| StoreError::backend(e.to_string()))?
            .push(scope.clone());
        self.inner.begin_decision(scope).await
    }
    async fn abandon_decision(&self, decision: MemoryDecision) {
        self.inner.abandon_decision(decision).await
    }
    async fn commit_decision(&self, decision: MemoryDecision, request: AppendRequest) -> Result<Committed, StoreError> {
        self.conditions
            .lock()
            .map_err(|e| StoreError::backend(e.to_string()))?
            .push(request.condition.clone());
        self.inner.commit_decision(decision, request).await
    }
}

#[tokio::test]
async fn one_read_of_the_union_routes_each_event_to_its_facts() -> TestResult {
    let store = Recording {
        inner: MemoryStore::new(),
        scopes: Mutex::new(Vec::new()),
        conditions: Mutex::new(Vec::new()),
    };
    let dispatcher = Dispatcher::new(&store, JsonCodec::<Event>::new());
    let stream = StreamId::new("s")?;
    for event in [
        Event::Opened { account: 1 },
        Event::Deposited { account: 1, amount: 5 },
        Event::Noted { text: "ignored".into() },
        Event::Opened { account: 2 },
        Event::Deposited { account: 2, amount: 7 },
        Event::Deposited { account: 1, amount: 3 },
    ] {
        let seed = handler(
            (),
            facts(fact(Query::all(), |_: &mut (), _: &Recorded<Event>| {})),
            move |_: &(), _: &()| Ok::<_, &str>(vec![event.clone()]),
        );
        dispatcher.dispatch_context(&seed, &(), &seed.query(), &stream).await?;
    }
    store.scopes.lock().map_err(|e| e.to_string())?.clear();
    store.conditions.lock().map_err(|e| e.to_string())?.clear();

    let opened = fact(
        Query::new([account(1, &["Opened"]), account(2, &["Opened"])]),
        |ctx: &mut Ctx, e: &Recorded<Event>| {
            if let Event::Opened { account } = e.event {
                ctx.opened.push(account);
            }
        },
    );
    let deposits = |n: u32, field: fn(&mut Ctx) -> &mut Vec<i64>| {
        fact(account(n, &["Deposited"]), move |ctx: &mut Ctx, e: &Recorded<Event>| {
            if let Event::Deposited { amount, .. } = e.event {
                field(ctx).push(amount);
            }
        })
    };
    let transfer = handler(
        Ctx::default(),
        facts(opened)
            .with(deposits(1, |c| &mut c.deposits_seen_by_balance_1))
            .with(deposits(2, |c| &mut c.deposits_seen_by_balance_2)),
        |_: &(), ctx: &Ctx| {
            Ok::<_, &str>(vec![Event::Noted {
                text: format!("{ctx:?}"),
            }])
        },
    );
    let context = dispatcher.read_context(&transfer, &transfer.query()).await?;
    assert_eq!(
        context.state,
        Ctx {
            opened: vec![1, 2],
            deposits_seen_by_balance_1: vec![5, 3],
            deposits_seen_by_balance_2: vec![7],
        }
    );
    assert_eq!(context.events.len(), 5, "the note matches no fact and is not read");

    dispatcher
        .dispatch_context(&transfer, &(), &transfer.query(), &stream)
        .await?;
    let scopes = store.scopes.lock().map_err(|e| e.to_string())?.clone();
    assert_eq!(
        scopes,
        vec![DecisionScope::Query(transfer.query())],
        "one read of the union"
    );
    assert_eq!(transfer.query().items().len(), 4);
    let conditions = store.conditions.lock().map_err(|e| e.to_string())?.clone();
    assert_eq!(
        conditions,
        vec![Some(AppendCondition::new(transfer.query(), context.position))]
    );
    Ok(())
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("already open")]
struct AlreadyOpen;

#[tokio::test]
async fn fact_handlers_dispatch_from_spawned_tasks() -> TestResult {
    let store = MemoryStore::new();
    // A domain error that borrows nothing: the spawned future must be
    // `'static`, and an error type with a lifetime (even `&'static str`)
    // trips a known limit of the compiler's `Send` check on closures.
    let count = fact(account(1, &[]), |n: &mut u32, _: &Recorded<Event>| *n += 1);
    let open = handler(0u32, facts(count), |_: &(), n: &u32| {
        if *n > 0 {
            Err(AlreadyOpen)
        } else {
            Ok(vec![Event::Opened { account: 1 }])
        }
    });
    let task = tokio::spawn(async move {
        let dispatcher = Dispatcher::new(&store, JsonCodec::new());
        let first = dispatcher
            .dispatch_context(&open, &(), &open.query(), &StreamId::new("a")?)
            .await?;
        let second = dispatcher
            .dispatch_context(&open, &(), &open.query(), &StreamId::new("a")?)
            .await;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((first.len(), second.err().and_then(|e| e.into_domain())))
    });
    assert_eq!(task.await??, (1, Some(AlreadyOpen)));
    Ok(())
}

#[tokio::test]
async fn the_memory_store_refuses_sql_predicates() -> TestResult {
    let store = MemoryStore::new();
    let with_predicate =
        Query::from(account(1, &[]).with_predicate(Predicate::new("1 = $1", [PredicateValue::Integer(1)])));
    assert!(matches!(
        store.read(&with_predicate, ReadOptions::forwards()).await,
        Err(StoreError::UnsupportedQuery(_))
    ));
    let event = factos::Codec::encode(&JsonCodec::<Event>::new(), &Event::Opened { account: 1 })?;
    let request =
        AppendRequest::new(StreamId::new("s")?, vec![event]).condition(AppendCondition::new(with_predicate, None));
    assert!(matches!(
        store.append(request).await,
        Err(StoreError::UnsupportedCondition(_))
    ));
    assert!(store.read(&Query::all(), ReadOptions::forwards()).await?.is_empty());
    Ok(())
}
