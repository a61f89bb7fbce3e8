//! Moving records into a store in batches: what `import` and `copy` share.
//!
//! Each batch is one [`Admin::import`](factos::admin::Admin::import) transaction, so an interrupted
//! transfer leaves whole batches behind. Run again, it finds the target's
//! last event in its input (same position, same id), skips everything up
//! to it and carries on: no duplicates, nothing missing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use factos::{EventStore, Position, Query, ReadOptions, StoredEvent};
use indicatif::ProgressBar;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, Lines};
use xxhash_rust::xxh3::Xxh3;

use crate::error::CliError;
use crate::record::{RecordIn, RecordOut};
use crate::store::CliStore;

/// Records per batch (one transaction each).
pub const BATCH: usize = 10_000;

/// The most bytes of events read in one batch (plus one event), so large
/// events never make a batch large.
pub const BATCH_BYTES: usize = 32 * 1024 * 1024;

/// Where records come from, a batch at a time.
pub(crate) trait Source {
    /// The next records in position order; empty at the end.
    async fn next_batch(&mut self) -> Result<Vec<StoredEvent>, CliError>;
}

/// JSON Lines written by `export`.
#[derive(Debug)]
pub struct LinesSource<R> {
    lines: Lines<R>,
    number: u64,
}

impl<R: AsyncBufRead + Unpin> LinesSource<R> {
    /// Reads `input` line by line.
    pub fn new(input: R) -> Self {
        Self {
            lines: input.lines(),
            number: 0,
        }
    }
}

impl<R: AsyncBufRead + Unpin> Source for LinesSource<R> {
    async fn next_batch(&mut self) -> Result<Vec<StoredEvent>, CliError> {
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            let next = self
                .lines
                .next_line()
                .await
                .map_err(CliError::io(format!("cannot read line {}", self.number + 1)))?;
            let Some(line) = next else { break };
            self.number += 1;
            if line.trim().is_empty() {
                continue;
            }
            let record = RecordIn::parse(&line).map_err(|problem| CliError::BadLine {
                line: self.number,
                problem,
            })?;
            batch.push(record);
        }
        Ok(batch)
    }
}

/// Every event of a store, in position order.
#[derive(Debug)]
pub struct StoreSource<'s, S> {
    store: &'s S,
    next: Option<Position>,
}

impl<'s, S> StoreSource<'s, S> {
    /// Reads `store` from position `from` on (from the start when `None`).
    pub fn new(store: &'s S, from: Option<Position>) -> Self {
        Self { store, next: from }
    }
}

impl<S: EventStore> Source for StoreSource<'_, S> {
    async fn next_batch(&mut self) -> Result<Vec<StoredEvent>, CliError> {
        let mut options = ReadOptions::forwards().limit(BATCH).max_bytes(BATCH_BYTES);
        options.from = self.next;
        let page = self
            .store
            .read(&Query::all(), options)
            .await
            .map_err(CliError::store(format!(
                "cannot read the events from position {}",
                self.next.map_or(1, |p| p.value())
            )))?;
        if let Some(last) = page.last() {
            self.next = Some(last.position.next());
        }
        Ok(page)
    }
}

/// What a transfer did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Transferred {
    /// Records written.
    pub imported: u64,
    /// Records skipped because the target already held them (a resumed
    /// transfer).
    pub skipped: u64,
}

/// Set once Ctrl-C was pressed: transfers stop after the batch in flight.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            set.store(true, Ordering::SeqCst);
        }
    });
    flag
}

/// Imports everything `source` holds into `target`, batch by batch.
///
/// A target that already holds events is resumed (see the module docs);
/// with `append`, the records are added after its events instead (their
/// positions must come after its last one).
///
/// # Errors
///
/// A refused or failed batch (nothing of it written, earlier batches
/// kept); a target holding events that this input does not start with;
/// [`CliError::Interrupted`] after Ctrl-C.
pub async fn transfer<T: CliStore>(
    target: &T,
    source: &mut impl Source,
    append: bool,
    bar: &ProgressBar,
    interrupted: &AtomicBool,
) -> Result<Transferred, CliError> {
    let head = target
        .read(&Query::all(), ReadOptions::backwards().limit(1))
        .await
        .map_err(CliError::store("cannot read the target"))?
        .pop();
    let mut resume = head.filter(|_| !append);
    let mut done = Transferred::default();
    loop {
        if interrupted.load(Ordering::SeqCst) {
            return Err(CliError::Interrupted(format!(
                "{} imported; run the same command again to continue",
                crate::output::count(done.imported, "event")
            )));
        }
        let mut batch = source.next_batch().await?;
        if batch.is_empty() {
            break;
        }
        if let Some(head) = &resume {
            let seen = batch.len();
            let (kept, found) = skip_held(batch, head)?;
            let skipped = (seen - kept.len()) as u64;
            done.skipped += skipped;
            bar.inc(skipped);
            if found {
                resume = None;
            }
            batch = kept;
        }
        if batch.is_empty() {
            continue;
        }
        let (first, count) = (batch[0].position, batch.len() as u64);
        target.import(batch).await.map_err(CliError::store(format!(
            "cannot import the batch starting at position {first}"
        )))?;
        done.imported += count;
        bar.inc(count);
    }
    if let Some(head) = resume {
        return Err(CliError::Invalid(format!(
            "the target already holds events up to position {} that this input does not hold; \
             pass --append to add the input after them",
            head.position
        )));
    }
    Ok(done)
}

/// Drops the records the target already holds (up to and including its
/// last event `head`), checking that the input holds that very event at
/// its position; says whether it was found.
fn skip_held(batch: Vec<StoredEvent>, head: &StoredEvent) -> Result<(Vec<StoredEvent>, bool), CliError> {
    let mut found = false;
    let mut kept = Vec::new();
    for record in batch {
        if found {
            kept.push(record);
        } else if record.position < head.position {
            continue;
        } else if record.position == head.position && record.id == head.id {
            found = true;
        } else {
            return Err(CliError::Invalid(format!(
                "the target already holds events (up to position {}) that do not start this input \
                 (it differs at position {}); pass --append to add the input after them",
                head.position, record.position
            )));
        }
    }
    Ok((kept, found))
}

/// A count and a checksum of a log, record by record in position order
/// (over each record's JSON line, so equal digests mean equal exports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    /// How many records.
    pub count: u64,
    /// XXH3-128 of their JSON lines.
    pub checksum: u128,
}

/// The digest of every event of `store`.
///
/// # Errors
///
/// When the store cannot be read.
pub async fn digest<S: EventStore>(store: &S, bar: &ProgressBar) -> Result<Digest, CliError> {
    let mut source = StoreSource::new(store, None);
    let mut hasher = Xxh3::new();
    let mut count = 0u64;
    loop {
        let batch = source.next_batch().await?;
        if batch.is_empty() {
            break;
        }
        for record in &batch {
            hasher.update(RecordOut::new(record).line().as_bytes());
            hasher.update(b"\n");
        }
        count += batch.len() as u64;
        bar.inc(batch.len() as u64);
    }
    Ok(Digest {
        count,
        checksum: hasher.digest128(),
    })
}
