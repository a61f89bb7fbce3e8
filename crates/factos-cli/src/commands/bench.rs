//! `factos bench`: a quick measurement of what this store does on this
//! machine — appends and dispatches per second, alone and with concurrent
//! writers, without and with contention — printed like BENCHMARKS.md.
//!
//! It writes its own events (type `FactosBench`, tags `factos-bench:<run>`)
//! into the store, so it refuses a store that holds events unless given
//! `--force`: point it at a scratch database of the kind you run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use factos::{
    AppendRequest, Dispatcher, EventId, EventType, JsonCodec, JsonEvent, NewEvent, Query, QueryItem, ReadOptions,
    RetryPolicy, StreamId, Tag, decider,
};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cli::BenchArgs;
use crate::error::CliError;
use crate::output::{print_json, table};
use crate::store::CliStore;

/// One measurement's result.
#[derive(Debug, Clone)]
struct Measured {
    name: String,
    writers: usize,
    operations: u64,
    failed: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }
}

/// The benchmark's event: a sale in one of the run's contexts.
#[derive(Debug, Serialize, Deserialize)]
struct Sold {
    run: String,
    context: String,
}

impl JsonEvent for Sold {
    fn event_type(&self) -> &'static str {
        "FactosBench"
    }
    fn tags(&self) -> Vec<String> {
        vec![
            format!("factos-bench:{}", self.run),
            format!("factos-bench-context:{}", self.context),
        ]
    }
}

pub async fn run<S: CliStore>(store: &S, args: &BenchArgs) -> Result<(), CliError> {
    let held = store
        .read(&Query::all(), ReadOptions::forwards().limit(1))
        .await
        .map_err(CliError::store("cannot read the store"))?;
    if !held.is_empty() && !args.force {
        return Err(CliError::Invalid(
            "the store holds events and the benchmark would add its own: use a scratch store, or pass --force".into(),
        ));
    }
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(CliError::Invalid("--seconds must be between 0 and 3600".into()));
    }
    let run = EventId::random().as_uuid().simple().to_string()[..8].to_owned();
    let period = Duration::from_secs_f64(args.seconds);
    let writers = args.writers.clamp(1, 256);
    let plans: [(&str, usize, Workload); 5] = [
        ("append, 1 event", 1, Workload::Append),
        ("append, 1 event", writers, Workload::Append),
        ("dispatch, own context", 1, Workload::Dispatch { shared: false }),
        ("dispatch, own contexts", writers, Workload::Dispatch { shared: false }),
        (
            "dispatch, one shared context",
            writers,
            Workload::Dispatch { shared: true },
        ),
    ];
    let bar = crate::output::progress(Some(plans.len() as u64), "measuring");
    let mut results = Vec::new();
    for (name, concurrency, workload) in plans {
        bar.set_message(format!("measuring {name} × {concurrency}"));
        results.push(measure(store, &run, name, concurrency, workload, period, &bar).await?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    report(&results, args.json);
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Workload {
    /// Unconditional single-event appends, each writer to its own stream.
    Append,
    /// Decisions through the dispatcher: each writer on its own context, or
    /// all on one (then they conflict and retry).
    Dispatch { shared: bool },
}

async fn measure<S: CliStore>(
    store: &S,
    run: &str,
    name: &str,
    writers: usize,
    workload: Workload,
    period: Duration,
    bar: &ProgressBar,
) -> Result<Measured, CliError> {
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let (store, stop, run) = (store.clone(), Arc::clone(&stop), run.to_owned());
            tokio::spawn(async move { work(store, &run, writer, workload, &stop).await })
        })
        .collect();
    tokio::time::sleep(period).await;
    stop.store(true, Ordering::SeqCst);
    let mut measured = Measured {
        name: name.to_owned(),
        writers,
        operations: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (latencies, failed) = task
            .await
            .map_err(|e| CliError::Failed(format!("a benchmark writer stopped: {e}")))??;
        measured.operations += latencies.len() as u64;
        measured.failed += failed;
        measured.latencies.extend(latencies);
    }
    measured.elapsed = began.elapsed();
    bar.tick();
    Ok(measured)
}

/// One writer's loop: latencies of its successful operations, and how many
/// failed (dispatches that ran out of retries).
async fn work<S: CliStore>(
    store: S,
    run: &str,
    writer: usize,
    workload: Workload,
    stop: &AtomicBool,
) -> Result<(Vec<Duration>, u64), CliError> {
    let invalid = |e: factos::InvalidName| CliError::Invalid(e.to_string());
    let stream = StreamId::new(format!("factos-bench-{run}-{writer}")).map_err(invalid)?;
    let context = match workload {
        Workload::Dispatch { shared: true } => "shared".to_owned(),
        Workload::Dispatch { shared: false } => format!("dispatch-{writer}"),
        Workload::Append => format!("append-{writer}"),
    };
    let query = Query::from(QueryItem::tags([
        Tag::new(format!("factos-bench-context:{context}")).map_err(invalid)?,
        Tag::new(format!("factos-bench:{run}")).map_err(invalid)?,
    ]));
    let event_type = EventType::new("FactosBench").map_err(invalid)?;
    let sell = decider(
        0u64,
        |sale: &Sold, _sold: &u64| {
            Ok::<_, std::convert::Infallible>(vec![Sold {
                run: sale.run.clone(),
                context: sale.context.clone(),
            }])
        },
        |sold, _: &Sold| sold + 1,
    );
    let dispatcher = Dispatcher::new(&store, JsonCodec::new()).with_retry(RetryPolicy::attempts(64));
    let sale = Sold {
        run: run.to_owned(),
        context,
    };
    let payload =
        serde_json::to_vec(&sale).map_err(|e| CliError::Failed(format!("cannot encode a benchmark event: {e}")))?;
    let mut latencies = Vec::new();
    let mut failed = 0;
    let mut first_failure = None;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let ok = match workload {
            Workload::Append => {
                let event = NewEvent::new(EventId::random(), event_type.clone(), payload.clone()).with_tags(
                    query
                        .items()
                        .iter()
                        .flat_map(|item| item.required_tags().iter().cloned()),
                );
                store
                    .append(AppendRequest::new(stream.clone(), vec![event]))
                    .await
                    .map_err(CliError::store("a benchmark append failed"))?;
                true
            }
            Workload::Dispatch { .. } => match dispatcher.dispatch_context(&sell, &sale, &query, &stream).await {
                Ok(_) => true,
                Err(failure) => {
                    first_failure.get_or_insert_with(|| crate::error::one_line(&failure));
                    false
                }
            },
        };
        match ok {
            true => latencies.push(started.elapsed()),
            false => failed += 1,
        }
    }
    if let Some(failure) = first_failure {
        warn_failures(writer, failed, &failure);
    }
    Ok((latencies, failed))
}

/// Says why dispatches failed (once per writer), above the table.
fn warn_failures(writer: usize, failed: u64, failure: &str) {
    eprintln!("writer {writer}: {failed} dispatches failed; the first: {failure}");
}

fn report(results: &[Measured], json: bool) {
    if json {
        let rows: Vec<_> = results
            .iter()
            .map(|m| {
                json!({
                    "measurement": m.name,
                    "writers": m.writers,
                    "operations": m.operations,
                    "failed": m.failed,
                    "perSecond": m.per_second(),
                    "p50Micros": m.percentile(0.5).as_micros() as u64,
                    "p99Micros": m.percentile(0.99).as_micros() as u64,
                })
            })
            .collect();
        print_json(&json!(rows));
        return;
    }
    let mut out = table(["measurement", "writers", "ops", "ops/s", "p50 ms", "p99 ms", "failed"]);
    for m in results {
        out.add_row([
            m.name.clone(),
            m.writers.to_string(),
            m.operations.to_string(),
            format!("{:.0}", m.per_second()),
            format!("{:.2}", m.percentile(0.5).as_secs_f64() * 1e3),
            format!("{:.2}", m.percentile(0.99).as_secs_f64() * 1e3),
            m.failed.to_string(),
        ]);
    }
    println!("{out}");
    println!("ops/s: completed operations per second of wall time; dispatches include their retries.");
}
