//! Turns for decisions on a contended scope: one decision at a time per
//! scope in this process, waited for with a time limit.
//!
//! A scope whose optimistic decision lost a race is likely to lose again
//! while its racers keep deciding. Its next decisions take turns: each
//! holds the scope from its read to its append, so decisions on it in this
//! process cannot invalidate each other. Only decisions on the same scope
//! ever wait here; writes and other scopes' decisions never do.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use factos::DecisionScope;

use crate::error::SqliteError;

/// The scopes whose turn is taken.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    taken: Mutex<HashSet<DecisionScope>>,
    freed: Condvar,
}

/// A decision's turn on its scope, given back when dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    turns: Arc<Turns>,
    scope: DecisionScope,
}

impl Turns {
    /// Waits until no other decision holds `scope`, for at most `timeout`,
    /// then holds it. Blocks the calling thread.
    ///
    /// # Errors
    ///
    /// [`SqliteError::DecisionTimeout`] when the turn did not come in time.
    pub(crate) fn take(self: &Arc<Self>, scope: DecisionScope, timeout: Duration) -> Result<Turn, SqliteError> {
        let deadline = Instant::now() + timeout;
        let mut taken = self.taken();
        while taken.contains(&scope) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SqliteError::DecisionTimeout { after: timeout });
            }
            taken = self
                .freed
                .wait_timeout(taken, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        taken.insert(scope.clone());
        Ok(Turn {
            turns: Arc::clone(self),
            scope,
        })
    }

    fn taken(&self) -> MutexGuard<'_, HashSet<DecisionScope>> {
        // The set is consistent after every operation on it.
        self.taken.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.taken().remove(&self.scope);
        self.turns.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos::StreamId;

    #[test]
    fn a_turn_is_waited_for_until_given_back_or_the_time_limit() -> Result<(), Box<dyn std::error::Error>> {
        let turns = Arc::new(Turns::default());
        let scope = DecisionScope::Stream(StreamId::new("s")?);
        let other = DecisionScope::Stream(StreamId::new("t")?);
        let first = turns.take(scope.clone(), Duration::from_secs(1))?;
        // Another scope never waits.
        drop(turns.take(other, Duration::ZERO)?);
        let refused = turns.take(scope.clone(), Duration::from_millis(20));
        assert!(matches!(refused, Err(SqliteError::DecisionTimeout { .. })));
        let waiter = {
            let turns = Arc::clone(&turns);
            let scope = scope.clone();
            std::thread::spawn(move || turns.take(scope, Duration::from_secs(5)).map(drop))
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(first);
        waiter.join().map_err(|_| "the waiter panicked")??;
        Ok(())
    }
}
