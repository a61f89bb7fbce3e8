//! Ticket sales on Cloudflare D1: the `tickets` example's decider in a Rust
//! worker, on `factos-d1`.
//!
//! * `POST /concerts/:id/buy` with `{"buyer": 7}`: `200 {"sold": true,
//!   "position": …}`, or `409 {"sold": false, "error": "the concert is sold
//!   out"}` once 100 tickets are sold. Concurrent buyers never oversell:
//!   each decision is appended only if no sale of the concert was committed
//!   after the sales it counted, atomically inside D1, and a buyer who lost
//!   that race decides again.
//! * `GET /concerts/:id`: `{"concert": …, "sold": …, "capacity": 100}`.
//!
//! Run it locally with `examples/d1-tickets/dev.sh`; deploy with
//! `wrangler deploy` (see `wrangler.toml`).

use std::cell::Cell;

use factos::{Dispatcher, Error, JsonCodec, LocalEventStore, Query, QueryItem, ReadOptions, StreamId, Tag};
use factos_d1::D1Store;
use serde_json::json;
use worker::{Context, Env, Request, Response, Result, RouteContext, Router, event};

#[path = "../../tickets/domain.rs"]
mod domain;

use domain::{Buy, box_office};

/// Tickets per concert.
const CAPACITY: u32 = 100;

thread_local! {
    /// Whether this isolate migrated the database already.
    static MIGRATED: Cell<bool> = const { Cell::new(false) };
}

async fn store(env: &Env) -> Result<D1Store> {
    let store = D1Store::new(env.d1("DB")?);
    if !MIGRATED.get() {
        store.migrate().await.map_err(|e| e.to_string())?;
        MIGRATED.set(true);
    }
    Ok(store)
}

fn concert(ctx: &RouteContext<()>) -> Result<u32> {
    ctx.param("id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| "the concert id is a number".into())
}

fn boundary(concert: u32) -> Result<(Query, StreamId)> {
    let invalid = |e: factos::InvalidName| worker::Error::from(e.to_string());
    let query = Query::from(
        QueryItem::types([factos::EventType::new("TicketSold").map_err(invalid)?])
            .with_tags([Tag::new(format!("concert:{concert}")).map_err(invalid)?]),
    );
    Ok((query, StreamId::new(format!("concert-{concert}")).map_err(invalid)?))
}

#[derive(serde::Deserialize)]
struct Buyer {
    buyer: u32,
}

async fn buy(mut request: Request, ctx: RouteContext<()>) -> Result<Response> {
    let concert = concert(&ctx)?;
    let Buyer { buyer } = request.json().await?;
    let store = store(&ctx.env).await?;
    let (query, stream) = boundary(concert)?;
    let sold = Dispatcher::new(&store, JsonCodec::new())
        .dispatch_context(&box_office(CAPACITY), &Buy { concert, buyer }, &query, &stream)
        .await;
    match sold {
        Ok(records) => Response::from_json(&json!({
            "sold": true,
            "position": records.first().map(|r| r.position.value()),
        })),
        Err(Error::Domain(sold_out)) => {
            Ok(Response::from_json(&json!({"sold": false, "error": sold_out.to_string()}))?.with_status(409))
        }
        Err(other) => Ok(Response::from_json(&json!({"error": other.to_string()}))?.with_status(500)),
    }
}

async fn count(_: Request, ctx: RouteContext<()>) -> Result<Response> {
    let concert = concert(&ctx)?;
    let (query, _) = boundary(concert)?;
    let sold = store(&ctx.env)
        .await?
        .read(&query, ReadOptions::forwards())
        .await
        .map_err(|e| e.to_string())?
        .len();
    Response::from_json(&json!({"concert": concert, "sold": sold, "capacity": CAPACITY}))
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .post_async("/concerts/:id/buy", buy)
        .get_async("/concerts/:id", count)
        .run(request, env)
        .await
}
