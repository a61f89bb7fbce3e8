//! A pooled connection inside a transaction that never goes back to the
//! pool half-done.

use std::fmt;

use deadpool_postgres::{Object, Pool, PoolError, TimeoutType};

use crate::error::{Limit, PgError};

/// A transaction on a pooled connection.
///
/// It ends in one of three ways: [`Session::finish`] commits or rolls back
/// and returns the connection to the pool; [`Session::abandon`] rolls back
/// and returns it (the connection is closed instead if the rollback fails);
/// dropping it unfinished (a cancelled future) takes the connection out of
/// the pool and closes it, since a statement may still be in flight on it;
/// the server then rolls the transaction back.
pub(crate) struct Session {
    object: Option<Object>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("open", &self.object.is_some()).finish()
    }
}

impl Session {
    /// Takes a connection and runs `begin` (a `BEGIN` and the transaction's
    /// `SET LOCAL` settings, one round trip).
    ///
    /// A pooled connection that the server closed while it sat idle (a
    /// terminated backend, an idle-session timeout, a restart) is only
    /// noticed when it is used. If `begin`, the first statement, finds it
    /// gone, nothing has run, so the connection is discarded and the next
    /// one tried: up to one more than the pool holds.
    pub(crate) async fn begin(pool: &Pool, begin: &str) -> Result<Self, PgError> {
        let mut tries = retries(pool);
        loop {
            let object = get(pool).await?;
            match object.batch_execute(begin).await {
                Ok(()) => return Ok(Session { object: Some(object) }),
                Err(error) => {
                    drop(Object::take(object));
                    let error = PgError::from(error);
                    tries -= 1;
                    if !error.is_connection_lost() || tries == 0 {
                        return Err(error);
                    }
                    tracing::debug!(%error, "replacing a pooled connection the server had closed");
                }
            }
        }
    }

    /// Takes a connection and sends nothing yet: the caller sends its own
    /// `BEGIN`, pipelined with the statements that follow it.
    pub(crate) async fn connect(pool: &Pool) -> Result<Self, PgError> {
        Ok(Session {
            object: Some(get(pool).await?),
        })
    }

    /// The pooled connection, with its statement cache.
    pub(crate) fn object(&self) -> &Object {
        match &self.object {
            Some(object) => object,
            None => unreachable!("a finished session was used"),
        }
    }

    /// The connection.
    pub(crate) fn client(&self) -> &tokio_postgres::Client {
        match &self.object {
            Some(object) => object,
            // `object` is only taken by `finish`, `abandon` and `drop`,
            // which consume the session.
            None => unreachable!("a finished session was used"),
        }
    }

    /// Commits (or rolls back) and returns the connection to the pool.
    pub(crate) async fn finish(mut self, commit: bool) -> Result<(), PgError> {
        self.client()
            .batch_execute(if commit { "COMMIT" } else { "ROLLBACK" })
            .await?;
        // Back to the pool only after the server confirmed the end.
        drop(self.object.take());
        Ok(())
    }

    /// Returns the connection to the pool once the server has confirmed
    /// that its transaction ended (a `COMMIT` sent in the same pipeline).
    pub(crate) fn release(mut self) {
        drop(self.object.take());
    }

    /// Rolls back and returns the connection to the pool; a connection
    /// that cannot roll back is closed instead (see the type docs).
    pub(crate) async fn abandon(mut self) {
        let client = self.client();
        if !client.is_closed() && client.batch_execute("ROLLBACK").await.is_ok() {
            drop(self.object.take());
        }
    }

    /// Commits `outcome`'s work if it is a success, abandons it otherwise.
    pub(crate) async fn end<T>(self, outcome: Result<T, PgError>) -> Result<T, PgError> {
        match outcome {
            Ok(value) => {
                self.finish(true).await?;
                Ok(value)
            }
            Err(error) => {
                self.abandon().await;
                Err(error)
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(object) = self.object.take() {
            drop(Object::take(object));
        }
    }
}

/// How many connections to try before giving up on finding a live one: one
/// more than the pool holds, since each may have been closed while idle.
pub(crate) fn retries(pool: &Pool) -> usize {
    pool.status().max_size + 1
}

/// A connection from the pool, with the pool's time limits as typed errors.
pub(crate) async fn get(pool: &Pool) -> Result<Object, PgError> {
    pool.get().await.map_err(|error| {
        let (limit, after) = match &error {
            PoolError::Timeout(TimeoutType::Wait) => (Limit::PoolWait, pool.timeouts().wait),
            PoolError::Timeout(TimeoutType::Create) => (Limit::Connect, pool.timeouts().create),
            _ => return PgError::Pool(error),
        };
        match after {
            Some(after) => PgError::Timeout {
                limit,
                after,
                source: Some(Box::new(error)),
            },
            None => PgError::Pool(error),
        }
    })
}
