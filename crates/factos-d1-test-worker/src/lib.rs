//! The worker the `factos-d1` tests run under miniflare: each request is
//! one store-contract call (see `factos_test_d1::wire`) on the `factos-d1`
//! store of D1 binding `DB{n}`, answered as JSON.

mod tally;

use factos::{LocalCheckpoints, LocalEventStore, LocalFollow, ProjectionBatch, ReadModelStore, StoredCodec};
use factos_d1::D1Store;
use factos_test_d1::wire::{self, Answer, Call, Op, WireAppend, WireFailure, WireOutcome, WireParked, WireRecord};
use worker::{Context, D1Database, Env, Request, Response, Result, event};

use crate::tally::{Tally, tally_sql};

#[event(fetch)]
async fn fetch(mut request: Request, env: Env, _ctx: Context) -> Result<Response> {
    let call: Call = request.json().await?;
    let binding = format!("DB{}", call.db);
    let store = D1Store::new(env.d1(&binding)?);
    Response::from_json(&run(&store, &env.d1(&binding)?, call.op).await)
}

/// The tally's counts, read directly from D1.
async fn tallies(db: &D1Database) -> Answer {
    #[derive(serde::Deserialize)]
    struct Count {
        tag: String,
        n: i64,
    }
    let exists = db
        .prepare("SELECT name FROM sqlite_master WHERE name = 'tallies'")
        .first::<serde_json::Value>(None)
        .await;
    let counts = match exists {
        Ok(None) => Ok(Vec::new()),
        Ok(Some(_)) => match db.prepare(tally_sql::SELECT).all().await {
            Ok(result) => result.results::<Count>(),
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    match counts {
        Ok(counts) => Answer::Tallies {
            counts: counts.into_iter().map(|c| (c.tag, c.n)).collect(),
        },
        Err(error) => malformed(wire::WireError(format!("reading the tallies: {error}"))),
    }
}

fn projected(outcome: std::result::Result<factos::BatchOutcome, factos::StoreError>) -> Answer {
    match outcome {
        Ok(outcome) => Answer::Projected(WireOutcome::from_outcome(&outcome)),
        Err(error) => failed(&error),
    }
}

fn failed(error: &factos::StoreError) -> Answer {
    Answer::Failed(WireFailure::from_error(error))
}

fn changed(outcome: std::result::Result<bool, factos::StoreError>) -> Answer {
    match outcome {
        Ok(changed) => Answer::Changed { changed },
        Err(error) => failed(&error),
    }
}

fn malformed(error: wire::WireError) -> Answer {
    Answer::Failed(WireFailure::Backend {
        message: error.to_string(),
    })
}

fn events(result: std::result::Result<Vec<factos::StoredEvent>, factos::StoreError>) -> Answer {
    match result {
        Ok(events) => Answer::Events {
            events: events.iter().map(WireRecord::from_record).collect(),
        },
        Err(error) => failed(&error),
    }
}

async fn append(store: &D1Store, request: &WireAppend, decision: bool) -> Answer {
    let request = match request.to_request() {
        Ok(request) => request,
        Err(error) => return malformed(error),
    };
    let result = if decision {
        store.commit_decision((), request).await
    } else {
        store.append(request).await
    };
    match result {
        Ok(committed) => wire::committed(&committed),
        Err(error) => failed(&error),
    }
}

/// Runs `op` on `store`; `db` is its database, for reading the tally.
async fn run(store: &D1Store, db: &D1Database, op: Op) -> Answer {
    match op {
        Op::Migrate => match store.migrate().await {
            Ok(found) => Answer::Migrated { found },
            Err(error) => failed(&error.into()),
        },
        Op::Read {
            query,
            from,
            limit,
            backwards,
            max_bytes,
        } => match query.to_query() {
            Ok(query) => events(
                store
                    .read(&query, wire::options(from, limit, backwards, max_bytes))
                    .await,
            ),
            Err(error) => malformed(error),
        },
        Op::ReadStream { stream, from, limit } => match factos::StreamId::new(stream) {
            Ok(stream) => {
                let from = factos::StreamRevision::new(from);
                match limit {
                    // The worker is 32-bit wasm: a limit past its usize is
                    // no limit it could reach.
                    Some(limit) => {
                        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                        events(store.read_stream_page(&stream, from, limit).await)
                    }
                    None => events(store.read_stream(&stream, from).await),
                }
            }
            Err(error) => malformed(wire::WireError(error.to_string())),
        },
        Op::Append(request) => append(store, &request, false).await,
        Op::BeginDecision { query, stream } => match wire::scope(&query, &stream) {
            Ok(scope) => events(store.begin_decision(&scope).await.map(|((), events)| events)),
            Err(error) => malformed(error),
        },
        Op::CommitDecision(request) => append(store, &request, true).await,
        Op::LoadCheckpoint { name } => match store.load_checkpoint(&name).await {
            Ok(cursor) => Answer::Checkpoint {
                cursor: cursor.map(|c| c.to_string()),
            },
            Err(error) => failed(&error),
        },
        Op::SaveCheckpoint { name, cursor } => match wire::cursor(&Some(cursor)) {
            Ok(Some(cursor)) => match store.save_checkpoint(&name, cursor).await {
                Ok(()) => Answer::Done,
                Err(error) => failed(&error),
            },
            Ok(None) => malformed(wire::WireError("a cursor is required".into())),
            Err(error) => malformed(error),
        },
        Op::ParkEffect(parked) => match parked.to_parked() {
            Ok(parked) => match store.park_effect(parked).await {
                Ok(()) => Answer::Done,
                Err(error) => failed(&error),
            },
            Err(error) => malformed(error),
        },
        Op::ParkedEffects { runner } => match store.parked_effects(&runner).await {
            Ok(parked) => Answer::Parked {
                effects: parked.iter().map(WireParked::from_parked).collect(),
            },
            Err(error) => failed(&error),
        },
        Op::RetryParked(parked) => match parked.key() {
            Ok(key) => changed(store.retry_parked(&parked.runner, key).await),
            Err(error) => malformed(error),
        },
        Op::DiscardParked(parked) => match parked.key() {
            Ok(key) => changed(store.discard_parked(&parked.runner, key).await),
            Err(error) => malformed(error),
        },
        Op::ReadAfter { query, after, limit } => match (query.to_query(), wire::cursor(&after)) {
            (Ok(query), Ok(after)) => match store.read_after(&query, after, limit).await {
                Ok(batch) => wire::batch(&batch),
                Err(error) => failed(&error),
            },
            (Err(error), _) | (_, Err(error)) => malformed(error),
        },
        Op::ProjectTally {
            refuse_poison,
            after,
            end,
            events,
        } => {
            let batch = (|| {
                Ok::<_, wire::WireError>(ProjectionBatch {
                    after: wire::cursor(&after)?,
                    end: wire::cursor(&Some(end))?.ok_or_else(|| wire::WireError("an end cursor".into()))?,
                    events: factos::decode_delivered(&StoredCodec, wire::to_delivered(&events)?)
                        .map_err(|e| wire::WireError(e.to_string()))?,
                })
            })();
            match batch {
                Ok(batch) => projected(store.commit_batch(Tally { refuse_poison }, batch).await.1),
                Err(error) => malformed(error),
            }
        }
        Op::ResetTally => projected(store.reset_projection(Tally { refuse_poison: false }).await.1),
        Op::Tallies => tallies(db).await,
    }
}
