//! A pooled connection inside a transaction that never goes back to the
//! pool half-done.

use std::fmt;

use deadpool_postgres::{Object, Pool};

use crate::error::PgError;

/// A transaction on a pooled connection.
///
/// If it is dropped before [`Session::finish`] completed (an abandoned
/// decision, a cancelled future, a failed commit), the connection is taken
/// out of the pool and closed, so the server rolls the transaction back and
/// no later user of the pool inherits it.
pub(crate) struct Session {
    object: Option<Object>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("open", &self.object.is_some()).finish()
    }
}

impl Session {
    /// Takes a connection and begins a READ COMMITTED transaction: every
    /// statement sees what was committed before it started, which is what
    /// makes a read after taking locks see every writer that held them.
    pub(crate) async fn begin(pool: &Pool) -> Result<Self, PgError> {
        let object = pool.get().await?;
        let session = Session { object: Some(object) };
        session
            .client()
            .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await?;
        Ok(session)
    }

    /// The connection.
    pub(crate) fn client(&self) -> &tokio_postgres::Client {
        match &self.object {
            Some(object) => object,
            // `object` is only taken by `finish` and `drop`, which consume
            // the session.
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
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(object) = self.object.take() {
            drop(Object::take(object));
        }
    }
}
