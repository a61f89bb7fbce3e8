//! The projection cases every read-model store passes, fed by every event
//! source: catch-up, rebuild equals recompute, a failing projection keeps
//! its checkpoint, two projectors never both apply a batch, and a
//! projector killed with SIGKILL at random moments loses and repeats
//! nothing.
//!
//! A backend describes one arrangement (where the events come from, where
//! the read model lives) as a [`ProjectionFixture`] and stamps the cases
//! with [`projection_tests!`](crate::projection_tests). The read model is
//! the same everywhere: the *tally*, a table `tallies (tag, n)` counting
//! the events that carry each tag, which [`tag_counts`] recomputes from the
//! log.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::Duration;

use factos::{
    AppendRequest, BoxError, Checkpoints, EventStore, Follow, Projection, ProjectionError, Projector, ReadModelStore,
    StoredCodec, StoredEvent,
};
use proptest::prelude::Rng;

use crate::CaseResult;
use crate::tally::{append_tagged, stream, tag_counts, tagged};

pub use crate::tally_sql::{self, POISON, tags_to_count};

/// One arrangement of an event source and a read-model store, with the
/// tally projection written for that store.
pub trait ProjectionFixture {
    /// Where the events come from.
    type Source: EventStore + Follow + Sync;
    /// Where the read model and its checkpoint live.
    type ReadModels: ReadModelStore<Self::Tally> + Checkpoints;
    /// The tally for that store: counts events per tag in table `tallies
    /// (tag, n)`, and when `refuse_poison` fails on an event whose payload
    /// is [`POISON`].
    type Tally: Projection<Event = StoredEvent> + Send;

    /// The event source.
    fn source(&self) -> &Self::Source;

    /// The read-model store.
    fn read_models(&self) -> &Self::ReadModels;

    /// The read-model database reached once more, as another process
    /// would.
    fn reopen(&self) -> impl Future<Output = Result<Self::ReadModels, BoxError>>;

    /// The tally projection.
    fn tally(&self, refuse_poison: bool) -> Self::Tally;

    /// The `tallies` table as it stands (empty when it does not exist).
    fn tallies(&self) -> impl Future<Output = Result<BTreeMap<String, i64>, BoxError>>;

    /// Starts a process that runs a projector of the (non-refusing) tally
    /// with batches of 5 events until it is killed.
    ///
    /// # Errors
    ///
    /// When the process cannot be started.
    fn spawn_projector(&self) -> std::io::Result<Child>;
}

fn projector<F: ProjectionFixture>(
    fixture: &F,
    refuse_poison: bool,
) -> Projector<'_, F::Source, F::ReadModels, F::Tally, StoredCodec> {
    Projector::new(
        fixture.source(),
        fixture.read_models(),
        fixture.tally(refuse_poison),
        StoredCodec,
    )
}

/// A new projection catches up from the first event in batches, later
/// events too, a second catch-up applies nothing, and a rebuild gives the
/// same read model as a recompute from the log.
pub async fn a_new_projection_catches_up_and_a_rebuild_gives_the_same_read_model<F: ProjectionFixture>(
    fixture: &F,
) -> CaseResult {
    let mut rng = crate::rng(1);
    append_tagged(fixture.source(), &mut rng, 40).await?;
    let mut tally = projector(fixture, false).with_batch_size(7);
    assert!(tally.catch_up().await? >= 40, "every event applied");
    append_tagged(fixture.source(), &mut rng, 10).await?;
    assert!(tally.catch_up().await? >= 10, "later events applied");
    let expected = tag_counts(fixture.source()).await?;
    assert_eq!(fixture.tallies().await?, expected, "the read model agrees with the log");
    assert_eq!(tally.catch_up().await?, 0, "nothing new");
    tally.rebuild().await?;
    assert_eq!(
        fixture.tallies().await?,
        expected,
        "a rebuild gives the same read model"
    );
    Ok(())
}

/// A projection that fails stops with [`ProjectionError::Failed`] naming
/// itself; the read model holds everything before the failing batch and
/// nothing of it or after; fixed, it goes on from its checkpoint.
pub async fn a_failing_projection_stops_and_keeps_its_checkpoint_before_the_failing_event<F: ProjectionFixture>(
    fixture: &F,
) -> CaseResult {
    let mut rng = crate::rng(2);
    append_tagged(fixture.source(), &mut rng, 5).await?;
    let before_poison = tag_counts(fixture.source()).await?;
    let poison = tagged(&mut rng, POISON);
    fixture
        .source()
        .append(AppendRequest::new(stream(), vec![poison]))
        .await?;
    append_tagged(fixture.source(), &mut rng, 5).await?;

    let mut failing = projector(fixture, true).with_batch_size(1);
    match failing.catch_up().await {
        Err(ProjectionError::Failed(failed)) => {
            assert_eq!(failed.name, failing.projection().ok_or("the projection")?.name());
            assert!(failed.position.is_some(), "the failing batch's first position");
        }
        other => panic!("expected the projection's own error, got {other:?}"),
    }
    assert_eq!(
        fixture.tallies().await?,
        before_poison,
        "everything before the poison, nothing after"
    );
    projector(fixture, false).catch_up().await?;
    assert_eq!(fixture.tallies().await?, tag_counts(fixture.source()).await?);
    Ok(())
}

/// Two projectors of one projection, the second on the read-model
/// database reached again, catch up over and over while a writer appends:
/// the read model counts every event exactly once.
pub async fn two_projectors_of_one_projection_never_both_apply_a_batch<F: ProjectionFixture>(
    fixture: &F,
) -> CaseResult {
    let other = fixture.reopen().await?;
    let writer = async {
        let mut rng = crate::rng(3);
        for _ in 0..30 {
            append_tagged(fixture.source(), &mut rng, 2).await?;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok::<_, BoxError>(())
    };
    let first = async {
        let mut tally = projector(fixture, false).with_batch_size(3);
        for _ in 0..40 {
            tally.catch_up().await?;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok::<_, BoxError>(())
    };
    let second = async {
        let mut tally = Projector::new(fixture.source(), &other, fixture.tally(false), StoredCodec).with_batch_size(3);
        for _ in 0..40 {
            tally.catch_up().await?;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok::<_, BoxError>(())
    };
    let (written, first, second) = futures::join!(writer, first, second);
    written?;
    first?;
    second?;
    projector(fixture, false).catch_up().await?;
    assert_eq!(
        fixture.tallies().await?,
        tag_counts(fixture.source()).await?,
        "each event counted once"
    );
    Ok(())
}

/// A projector process is killed (SIGKILL) at random moments while events
/// are appended; after the last kill a catch-up makes the read model equal
/// a recompute from the log: no batch lost, none applied twice.
pub async fn a_projection_killed_at_random_moments_agrees_with_a_full_recompute<F: ProjectionFixture>(
    fixture: &F,
) -> CaseResult {
    let mut rng = crate::rng(4);
    for round in 0..20 {
        let mut child = fixture.spawn_projector()?;
        let count = rng.random_range(1..8);
        append_tagged(fixture.source(), &mut rng, count).await?;
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..150))).await;
        child.kill()?;
        let status = child.wait()?;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "round {round}: the projector must have run until it was killed, but it ended with {status}"
        );
    }
    projector(fixture, false).catch_up().await?;
    assert_eq!(
        fixture.tallies().await?,
        tag_counts(fixture.source()).await?,
        "the read model agrees with the log"
    );
    Ok(())
}

/// What a child process started by
/// [`ProjectionFixture::spawn_projector`] runs: the tally's projector, in
/// batches of 5, until it is killed.
///
/// # Errors
///
/// The projector's error.
pub async fn run_projector<S, M, P>(source: &S, read_models: &M, tally: P) -> Result<(), ProjectionError>
where
    S: Follow,
    M: ReadModelStore<P> + Checkpoints,
    P: Projection<Event = StoredEvent>,
{
    match Projector::new(source, read_models, tally, StoredCodec)
        .with_batch_size(5)
        .run()
        .await? {}
}
