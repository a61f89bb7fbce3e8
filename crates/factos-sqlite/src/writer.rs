//! The store's writer thread: group commit.
//!
//! Every write of a store (appends, decisions, checkpoints of projections,
//! migrations) is a job sent to one dedicated thread. The thread takes every
//! job waiting in its queue, runs them one after another in one
//! `BEGIN IMMEDIATE` transaction, each in a savepoint of its own (a job that
//! is refused or fails rolls back alone), and commits once: under
//! `synchronous=FULL`, one WAL flush for all of them. A job learns its fate
//! only after that commit, so nothing is acknowledged before it is durable.
//!
//! Jobs run one at a time on the thread, so each append's checks and its
//! insert are isolated: no other job can write between them. A job never
//! waits for anything outside the thread (a decision decides before its
//! append is queued), so one caller can never hold up the others.

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::SqliteError;
use crate::pool::Pool;

/// The most jobs one transaction takes, so that a flood of writers still
/// sees commits at a steady pace.
const MAX_GROUP: usize = 512;

/// What a job tells the writer when it has run: whether to keep its writes,
/// and how to report once the group's commit is known.
pub(crate) struct Ran {
    keep: bool,
    report: Box<dyn FnOnce(Result<(), Arc<SqliteError>>) + Send>,
}

impl Ran {
    /// Keeps the job's writes; `report` gets the commit's outcome.
    pub(crate) fn keep(report: impl FnOnce(Result<(), Arc<SqliteError>>) + Send + 'static) -> Self {
        Self {
            keep: true,
            report: Box::new(report),
        }
    }

    /// What a job that came to `outcome` (whether to keep its writes, and
    /// its value) reports to `reply`: the value once the commit succeeded
    /// (a failed commit is its error), a discarded value or an error
    /// whatever the commit did.
    pub(crate) fn replying<T: Send + 'static>(
        outcome: Result<(bool, T), SqliteError>,
        reply: impl FnOnce(Result<T, SqliteError>) + Send + 'static,
    ) -> Self {
        match outcome {
            Ok((true, value)) => Ran::keep(move |committed| {
                reply(committed.map(|()| value).map_err(SqliteError::Group));
            }),
            Ok((false, value)) => Ran::discard(move || reply(Ok(value))),
            Err(error) => Ran::discard(move || reply(Err(error))),
        }
    }

    /// Rolls the job's writes back (it wrote nothing the contract keeps);
    /// `report` runs after the commit all the same.
    pub(crate) fn discard(report: impl FnOnce() + Send + 'static) -> Self {
        Self {
            keep: false,
            report: Box::new(move |_| report()),
        }
    }
}

/// A job of a group: given the connection inside the group's transaction,
/// or why the group could not run at all.
pub(crate) type GroupJob = Box<dyn FnOnce(Result<&Connection, Arc<SqliteError>>) -> Ran + Send>;
type AloneJob = Box<dyn FnOnce(&mut Connection) + Send>;

enum Job {
    /// Runs in a savepoint of the group's transaction.
    Group(GroupJob),
    /// Runs on its own, outside any transaction (it opens its own):
    /// migrations and projections.
    Alone(AloneJob),
}

/// The sending end of a store's writer thread; the thread ends when the
/// last clone of the store (which owns this) is dropped.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread of `pool`'s database.
    pub(crate) fn start(pool: Arc<Pool>) -> Result<Self, SqliteError> {
        let (jobs, queue) = mpsc::channel();
        thread::Builder::new()
            .name("factos-sqlite-writer".into())
            .spawn(move || run(&pool, &queue))
            .map_err(SqliteError::WriterThread)?;
        Ok(Self { jobs })
    }

    /// Runs `work` in the next group transaction. `work` returns whether to
    /// keep what it wrote, and its value; the value is handed back once the
    /// transaction has committed (a failed commit is the job's error).
    pub(crate) async fn group<T, F>(&self, work: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(bool, T), SqliteError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.group_then(work, move |outcome| {
            let _ = reply.send(outcome);
        })?;
        answer.await.unwrap_or(Err(SqliteError::WriterGone))
    }

    /// Runs `work` in the next group transaction like [`Writer::group`],
    /// without waiting: `done` gets its outcome on the writer thread.
    pub(crate) fn group_then<T, F, D>(&self, work: F, done: D) -> Result<(), SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(bool, T), SqliteError> + Send + 'static,
        D: FnOnce(Result<T, SqliteError>) + Send + 'static,
    {
        self.send(Job::Group(Box::new(move |conn| {
            Ran::replying(conn.map_err(SqliteError::Group).and_then(work), done)
        })))
    }

    /// Runs `work` on the writer's connection outside any group
    /// transaction: it opens and ends its own.
    pub(crate) async fn alone<T, F>(&self, work: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Alone(Box::new(move |conn| {
            let _ = reply.send(work(conn));
        })))?;
        answer.await.unwrap_or(Err(SqliteError::WriterGone))
    }

    fn send(&self, job: Job) -> Result<(), SqliteError> {
        self.jobs.send(job).map_err(|_| SqliteError::WriterGone)
    }
}

/// The writer thread: waits for jobs, runs what is queued, repeats until
/// the store is gone.
fn run(pool: &Arc<Pool>, queue: &mpsc::Receiver<Job>) {
    let mut waiting = None;
    loop {
        let first = match waiting.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut slot = block_on(pool.get());
        match first {
            Job::Alone(job) => match slot.connection() {
                Ok(conn) => job(conn),
                // The job's caller learns nothing better than that the
                // writer could not run it.
                Err(error) => tracing::warn!(%error, "the SQLite writer could not open its connection"),
            },
            Job::Group(job) => {
                let mut group = vec![job];
                while group.len() < MAX_GROUP {
                    match queue.try_recv() {
                        Ok(Job::Group(job)) => group.push(job),
                        Ok(alone) => {
                            waiting = Some(alone);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                match slot.connection() {
                    Ok(conn) => run_group(conn, group),
                    Err(error) => refuse(group, &Arc::new(error)),
                }
            }
        }
    }
}

/// Runs `group` in one transaction, each job in a savepoint (a job alone
/// needs none: the transaction is its own), commits once if any job kept
/// its writes, then reports to every job.
fn run_group(conn: &mut Connection, group: Vec<GroupJob>) {
    if let Err(error) = control(conn, "BEGIN IMMEDIATE") {
        refuse(group, &Arc::new(error.into()));
        return;
    }
    let alone = group.len() == 1;
    let mut kept = false;
    let mut reports = Vec::with_capacity(group.len());
    let mut broken: Option<Arc<SqliteError>> = None;
    for job in group {
        if let Some(error) = &broken {
            refuse(vec![job], error);
            continue;
        }
        if !alone && let Err(error) = control(conn, "SAVEPOINT job") {
            let error = Arc::new(SqliteError::from(error));
            refuse(vec![job], &error);
            broken = Some(error);
            continue;
        }
        let ran = job(Ok(conn));
        kept |= ran.keep;
        let closed = match (alone, ran.keep) {
            (true, _) => Ok(()),
            (false, true) => control(conn, "RELEASE job"),
            (false, false) => control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job")),
        };
        if let Err(error) = closed {
            // The transaction cannot be trusted past this point: all of it
            // rolls back, and every job hears so.
            broken = Some(Arc::new(error.into()));
        }
        reports.push(ran.report);
    }
    let committed = match broken {
        Some(error) => {
            let _ = control(conn, "ROLLBACK");
            Err(error)
        }
        // Nothing to keep: no job hears of this transaction again.
        None if !kept => control(conn, "ROLLBACK").map_err(|error| Arc::new(SqliteError::from(error))),
        None => control(conn, "COMMIT").map_err(|error| {
            let _ = control(conn, "ROLLBACK");
            Arc::new(SqliteError::from(error))
        }),
    };
    for report in reports {
        report(committed.clone());
    }
}

/// Runs one of the fixed transaction-control statements, prepared once per
/// connection.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Tells every job of `group` that it could not run, and why.
fn refuse(group: Vec<GroupJob>, error: &Arc<SqliteError>) {
    for job in group {
        (job(Err(Arc::clone(error))).report)(Err(Arc::clone(error)));
    }
}

/// Drives `future` to completion on this thread (the pool's slot
/// semaphore, from the writer thread, which has no async runtime).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(value) => return value,
            Poll::Pending => thread::park(),
        }
    }
}
