//! A small connection pool that runs database calls on tokio's blocking
//! threads.
//!
//! Hand-written rather than taken from a pool crate: the published SQLite
//! pools pin other `rusqlite` versions than the one this workspace can
//! resolve, and what is needed is small: reuse connections, bound their
//! number, roll back whatever a dropped connection left open.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::SqliteError;

/// How hard SQLite works to make commits survive a power loss.
///
/// The default is [`Synchronous::Full`]: an acknowledged event should
/// survive a power cut. The store's writer commits every write waiting in
/// its queue together (group commit), so concurrent writers share each
/// flush; BENCHMARKS.md measures what FULL costs against NORMAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous = NORMAL`: in WAL mode a commit survives a crash of the
    /// process (SIGKILL included), but the last commits before a power loss
    /// or OS crash may be lost. The database is never corrupted. Flushes
    /// happen at checkpoints, not at every commit.
    Normal,
    /// `synchronous = FULL`: every commit is flushed to the WAL before it is
    /// acknowledged, so it also survives power loss; each commit (each
    /// group of writes) costs a flush. The default.
    #[default]
    Full,
}

/// How a [`crate::SqliteStore`] opens and uses its database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The durability level; see [`Synchronous`].
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by another connection or
    /// process before failing with a busy error (which dispatch retries).
    pub busy_timeout: Duration,
    /// The most connections open at once (readers run in parallel in WAL
    /// mode; writers take turns). An in-memory database always uses one.
    pub max_connections: usize,
    /// How often a waiting follower checks for commits by other processes
    /// (`PRAGMA data_version`, one cheap call); commits in this process wake
    /// followers at once.
    pub poll_interval: Duration,
    /// The most a query may ask for ([`factos::QueryLimits`]); a query
    /// over them is refused before anything runs.
    pub query_limits: factos::QueryLimits,
    /// How long a decision on a context that recently lost a race waits
    /// for the decision ahead of it on the same context (see the crate
    /// docs, "How it keeps decisions valid"); past it the decision fails
    /// with [`crate::SqliteError::DecisionTimeout`]. Nothing else ever
    /// waits for a decision.
    pub decision_timeout: Duration,
    /// Opens the database read-only: every write fails, nothing is created
    /// or changed on disk (no journal mode is set), so a copy the process
    /// cannot write (a backup) can be read. When SQLite cannot open the
    /// copy's write-ahead log beside it (a read-only directory without the
    /// `-wal` and `-shm` files), the file is opened as immutable: then
    /// nothing else may write it while it is open.
    pub read_only: bool,
    /// How many bytes of the database file each connection reads through
    /// memory-mapped I/O (`PRAGMA mmap_size`) instead of copying pages
    /// with a system call per page; 0 turns it off. Reads of small contexts
    /// in a large log touch pages spread over the file, and mapping them is
    /// what keeps those reads close to their speed on a small log (the
    /// benchmark harness, section 7). Pages of the write-ahead log are read
    /// as before, and writes never go through the map. An I/O error on a
    /// mapped page arrives as a signal rather than an error, which is why
    /// SQLite leaves the map off unless asked: set 0 for files on storage
    /// that may fail that way (network file systems).
    pub mmap_size: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            max_connections: 8,
            poll_interval: Duration::from_millis(100),
            query_limits: factos::QueryLimits::DEFAULT,
            decision_timeout: Duration::from_secs(5),
            read_only: false,
            mmap_size: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Target {
    File(PathBuf),
    Memory,
}

pub(crate) struct Pool {
    target: Target,
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.target)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool for `target`, with one connection opened right away so that
    /// opening problems surface at once.
    pub(crate) fn open(target: Target, options: SqliteOptions) -> Result<(Arc<Self>, Connection), SqliteError> {
        let size = match target {
            Target::File(_) => options.max_connections.max(1),
            Target::Memory => 1,
        };
        let pool = Arc::new(Pool {
            target,
            options,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size)),
        });
        let first = pool.connect()?;
        Ok((pool, first))
    }

    /// The database file, if it is one.
    pub(crate) fn path(&self) -> Option<&std::path::Path> {
        match &self.target {
            Target::File(path) => Some(path),
            Target::Memory => None,
        }
    }

    /// The options the pool was opened with.
    pub(crate) fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// A connection of its own, outside the pool, for a file database
    /// (`None` in memory, which only this process can reach).
    pub(crate) fn dedicated(&self) -> Result<Option<Connection>, SqliteError> {
        match self.target {
            Target::File(_) => self.connect().map(Some),
            Target::Memory => Ok(None),
        }
    }

    fn connect(&self) -> Result<Connection, SqliteError> {
        let conn = match &self.target {
            Target::File(path) if self.options.read_only => open_read_only(path)?,
            Target::File(path) => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
            Target::Memory => Connection::open_in_memory()?,
        };
        conn.busy_timeout(self.options.busy_timeout)?;
        if let Target::File(_) = self.target
            && !self.options.read_only
        {
            // WAL: readers never block the writer and the writer never blocks
            // readers; a commit is one append to the log.
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        let synchronous = match self.options.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        if let Target::File(_) = self.target {
            let mmap_size = i64::try_from(self.options.mmap_size).unwrap_or(i64::MAX);
            conn.pragma_update(None, "mmap_size", mmap_size)?;
        }
        Ok(conn)
    }

    /// Puts a connection opened outside the pool into it.
    pub(crate) fn give_back(&self, conn: Connection) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
    }

    /// Waits for a free connection slot.
    pub(crate) async fn get(self: &Arc<Self>) -> Pooled {
        let permit = match Arc::clone(&self.permits).acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is owned by this pool and never closed.
            Err(closed) => unreachable!("pool semaphore closed: {closed}"),
        };
        let conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        Pooled {
            conn,
            pool: Arc::clone(self),
            _permit: permit,
        }
    }
}

/// Opens `path` read-only; as immutable when its write-ahead log cannot be
/// opened beside it (see [`SqliteOptions::read_only`]).
fn open_read_only(path: &std::path::Path) -> Result<Connection, SqliteError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if !path.exists() {
        // Never create it, and say so in SQLite's words.
        return Ok(Connection::open_with_flags(path, flags)?);
    }
    let conn = Connection::open_with_flags(path, flags)?;
    // Opening is lazy: the first read finds out whether the log can be used.
    match conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())) {
        Ok(()) => Ok(conn),
        Err(_) => {
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Ok(Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)?)
        }
    }
}

/// `path` for a `file:` URI: `%`, `?` and `#` escaped.
fn uri_path(path: &std::path::Path) -> String {
    path.to_string_lossy()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23")
}

/// A connection slot; the connection itself is opened on first use, on a
/// blocking thread.
pub(crate) struct Pooled {
    conn: Option<Connection>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl fmt::Debug for Pooled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("open", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl Pooled {
    /// Runs `work` on this connection: on a tokio blocking thread, or on
    /// the calling thread when `inline`. On error the connection is returned
    /// to the pool after rolling back any open transaction.
    pub(crate) async fn run<T, F>(self, inline: bool, work: F) -> Result<(Self, T), SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        if inline {
            return self.run_here(work);
        }
        tokio::task::spawn_blocking(move || self.run_here(work)).await?
    }

    /// The connection, opened on first use (on the calling thread).
    pub(crate) fn connection(&mut self) -> Result<&mut Connection, SqliteError> {
        match self.conn {
            Some(ref mut conn) => Ok(conn),
            None => Ok(self.conn.insert(self.pool.connect()?)),
        }
    }

    fn run_here<T>(
        mut self,
        work: impl FnOnce(&mut Connection) -> Result<T, SqliteError>,
    ) -> Result<(Self, T), SqliteError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.pool.connect()?,
        };
        let value = work(self.conn.insert(conn))?;
        Ok((self, value))
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.is_autocommit()
                && let Err(error) = conn.execute_batch("ROLLBACK")
            {
                // A connection that cannot roll back is not reused.
                tracing::warn!(%error, "dropping a SQLite connection that failed to roll back");
                return;
            }
            self.pool.give_back(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mmap_size_of(options: SqliteOptions, dir: &tempfile::TempDir) -> i64 {
        let (_, conn) = Pool::open(Target::File(dir.path().join("events.db")), options).expect("open");
        conn.pragma_query_value(None, "mmap_size", |row| row.get(0))
            .expect("mmap_size")
    }

    #[test]
    fn file_connections_map_what_the_options_say() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(mmap_size_of(SqliteOptions::default(), &dir), 256 * 1024 * 1024);
        let off = SqliteOptions {
            mmap_size: 0,
            ..SqliteOptions::default()
        };
        assert_eq!(mmap_size_of(off, &dir), 0);
    }
}
