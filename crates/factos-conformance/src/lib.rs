//! The conformance suite every factos backend passes.
//!
//! Test support, not published API. A backend stamps the whole suite into
//! its tests with one macro call, naming an async function that returns a
//! fresh, empty store:
//!
//! ```
//! use factos::MemoryStore;
//!
//! async fn fresh_store() -> MemoryStore {
//!     MemoryStore::new()
//! }
//!
//! factos_conformance::conformance_tests!(fresh_store);
//! # fn main() {}
//! ```
//!
//! Each case becomes one `#[test]` named after the behaviour it checks, and
//! `model_based_property` runs random operation sequences against the
//! backend and the in-memory reference store side by side
//! (`PROPTEST_CASES` sets how many; 64 by default).
//!
//! The cases are generic over [`factos::LocalEventStore`], so they also
//! serve backends whose futures are not `Send`. Concurrent parties are
//! futures joined on one task, interleaved at every store call (see
//! [`Interleave`]).
#![deny(missing_docs)]

mod capabilities;
pub mod cases;
pub mod child;
pub mod effects;
mod fixtures;
mod interleave;
pub mod projections;
pub mod property;
pub mod tally;
pub mod tally_sql;
pub mod tickets;

use std::future::Future;

pub use capabilities::Capabilities;
pub use fixtures::{CaseResult, rng};
pub use interleave::Interleave;

/// The skip guard of backends that always run: `Ok`. A backend whose
/// tests need a toolchain that may be missing passes its own guard to
/// [`conformance_tests!`] (`unless_skipped: guard`); when it returns
/// `Err(why)`, every case prints `SKIPPED <case>: <why>` and passes.
///
/// # Errors
///
/// Never.
pub fn runnable() -> Result<(), String> {
    Ok(())
}

/// Runs `future` to completion on a fresh multi-threaded runtime.
///
/// # Panics
///
/// When the runtime cannot be built (no threads available): a test setup
/// failure.
pub fn block_on<F: Future>(future: F) -> F::Output {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(future),
        Err(e) => panic!("cannot start a tokio runtime for the conformance suite: {e}"),
    }
}

/// Runs the model-based property test: for every generated operation
/// sequence (of what a backend with `caps` enforces), a fresh store from
/// `new_store` and a fresh reference store must behave the same.
///
/// # Panics
///
/// With the shrunk failing sequence when the backend differs.
pub fn check_against_reference<S, F, Fut>(new_store: F, caps: Capabilities)
where
    S: factos::LocalEventStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => panic!("cannot start a tokio runtime for the property test: {e}"),
    };
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let result = runner.run(&property::ops(caps), |ops| {
        runtime.block_on(async {
            let store = new_store().await;
            property::run_against_reference(&store, &ops)
                .await
                .map_err(TestCaseError::fail)
        })
    });
    if let Err(failure) = result {
        panic!("the backend differs from the reference store: {failure}");
    }
}

/// Stamps the follow cases (catch-up subscriptions) for a store that
/// implements [`factos::Follow`], one `#[test]` each, like
/// [`conformance_tests!`].
#[macro_export]
macro_rules! follow_tests {
    ($new_store:expr) => {
        $crate::follow_tests!($new_store, unless_skipped: $crate::runnable);
    };
    ($new_store:expr, unless_skipped: $runnable:expr) => {
        $crate::conformance_tests!(@cases $new_store, $runnable;
            followers_get_every_matching_event_once_across_restarts,
            a_waiting_subscriber_wakes_up_on_a_commit,
            followers_move_past_events_they_do_not_match,
            followers_deliver_streams_in_order_and_decisions_after_what_they_read,
            events_stored_by_older_code_decode_through_every_path
        );
    };
}

/// Stamps the retag cases ([`factos::retag`]) for a store that
/// implements [`factos::retag::TagHistory`], [`factos::Follow`] and
/// [`factos::Checkpoints`], one `#[test]` each, like
/// [`conformance_tests!`]; `with_admin` adds the integrity check's case for
/// a store that also implements [`factos::admin::Admin`].
#[macro_export]
macro_rules! retag_tests {
    ($new_store:expr) => {
        $crate::conformance_tests!(@cases $new_store, $crate::runnable;
            tags_added_to_history_are_seen_by_every_read_path,
            a_retag_resumes_from_its_checkpoint_and_publishes_what_it_staged,
            a_decision_that_read_before_a_publish_never_commits_after_it,
            a_retag_under_concurrent_dispatches_is_seen_whole_or_not_at_all
        );
    };
    ($new_store:expr, with_admin) => {
        $crate::retag_tests!($new_store);
        $crate::conformance_tests!(@cases $new_store, $crate::runnable;
            the_integrity_check_covers_tags_added_to_history
        );
    };
}

/// Stamps the snapshot cases ([`factos::snapshot`]) for a store that
/// implements [`factos::snapshot::SnapshotStore`],
/// [`factos::retag::TagHistory`], [`factos::Follow`] and
/// [`factos::Checkpoints`], one `#[test]` each, like
/// [`conformance_tests!`].
#[macro_export]
macro_rules! snapshot_tests {
    ($new_store:expr) => {
        $crate::conformance_tests!(@cases $new_store, $crate::runnable;
            a_decision_from_a_snapshot_sees_what_a_full_fold_sees,
            a_snapshot_is_found_only_under_its_key_and_moves_only_forwards,
            tags_added_to_history_retire_every_snapshot,
            a_retag_under_snapshotted_dispatches_is_seen_whole_or_not_at_all,
            offered_snapshots_keep_concurrent_decisions_exact
        );
    };
}

/// Stamps the projection cases ([`projections`]) for one arrangement of an
/// event source and a read-model store, one `#[test]` each. The argument
/// is an async function returning `Result<impl ProjectionFixture, _>` on
/// fresh, empty databases; an optional `unless_skipped: guard` as for
/// [`conformance_tests!`]. The calling test binary must also have an
/// `#[ignore]`d `child_process` test that runs
/// [`projections::run_projector`] for what
/// [`ProjectionFixture::spawn_projector`](projections::ProjectionFixture::spawn_projector)
/// put in the environment (see [`child`]).
#[macro_export]
macro_rules! projection_tests {
    ($fixture:expr) => {
        $crate::projection_tests!($fixture, unless_skipped: $crate::runnable);
    };
    ($fixture:expr, unless_skipped: $runnable:expr) => {
        $crate::projection_tests!(@cases $fixture, $runnable;
            a_new_projection_catches_up_and_a_rebuild_gives_the_same_read_model,
            a_failing_projection_stops_and_keeps_its_checkpoint_before_the_failing_event,
            two_projectors_of_one_projection_never_both_apply_a_batch,
            a_projection_killed_at_random_moments_agrees_with_a_full_recompute
        );
    };
    (@cases $fixture:expr, $runnable:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() -> $crate::CaseResult {
                if let Err(why) = ($runnable)() {
                    eprintln!("SKIPPED {}: {why}", stringify!($case));
                    return Ok(());
                }
                $crate::block_on(async {
                    let fixture = ($fixture)().await?;
                    $crate::projections::$case(&fixture).await
                })
            }
        )*
    };
}

/// Stamps the admin cases (imports, stats, the tag index, the schema
/// version) for a store that implements [`factos::admin::Admin`], one
/// `#[test]` each, like [`conformance_tests!`].
#[macro_export]
macro_rules! admin_tests {
    ($new_store:expr) => {
        $crate::admin_tests!($new_store, unless_skipped: $crate::runnable);
    };
    ($new_store:expr, unless_skipped: $runnable:expr) => {
        $crate::conformance_tests!(@cases $new_store, $runnable;
            imported_records_read_back_as_they_were,
            imports_refuse_what_would_break_the_log,
            a_migrated_store_reports_its_schema_version_as_current
        );
    };
}

/// Stamps one `#[test]` per conformance case, plus `model_based_property`,
/// into the calling module. The first argument is an async function (or
/// closure) returning a fresh, empty store; the optional second one the
/// backend's [`Capabilities`] (default [`Capabilities::ALL`]); an optional
/// third, `unless_skipped: guard`, a function returning `Err(why)` when the
/// backend cannot run on this machine (see [`runnable`]).
#[macro_export]
macro_rules! conformance_tests {
    ($new_store:expr) => {
        $crate::conformance_tests!($new_store, $crate::Capabilities::ALL);
    };
    ($new_store:expr, $caps:expr) => {
        $crate::conformance_tests!($new_store, $caps, unless_skipped: $crate::runnable);
    };
    ($new_store:expr, $caps:expr, unless_skipped: $runnable:expr) => {
        $crate::conformance_tests!(@cases $new_store, $runnable;
            query_empty_matches_every_event,
            query_items_are_or_combined,
            query_types_in_item_are_or_combined,
            query_tags_in_item_are_and_combined,
            query_item_without_types_matches_any_type,
            query_item_without_tags_matches_any_tags,
            positions_strictly_increase_and_are_returned_on_append,
            expected_revision_any,
            expected_revision_no_stream,
            expected_revision_stream_exists,
            expected_revision_exact,
            invalid_metadata_is_refused_alike_everywhere,
            read_options_select_from_limit_and_direction,
            reads_end_a_page_at_the_byte_budget_and_say_where_to_continue,
            read_stream_returns_stream_from_revision,
            metadata_versions_and_payloads_round_trip,
            unicode_and_sql_shaped_names_round_trip,
            dispatch_stream_appends_at_loaded_revision,
            concurrent_stream_dispatches_lose_nothing,
            readers_never_see_positions_appear_below_seen_ones
        );
        $crate::conformance_tests!(@capable $new_store, $caps, $runnable;
            condition_fails_when_matching_event_arrived_after,
            condition_passes_when_only_non_matching_events_arrived,
            condition_without_position_fails_on_any_match,
            failed_batch_writes_nothing,
            duplicate_event_id_is_rejected,
            identical_resend_returns_original_records,
            decode_failures_surface_as_decode_errors,
            dispatch_returns_committed_records,
            concurrent_dispatches_accept_exactly_capacity,
            accepted_conditional_appends_saw_their_whole_context,
            accepted_decisions_saw_their_whole_context,
            unrelated_conditional_appends_never_conflict,
            queries_at_the_limits_work_alike_everywhere,
            queries_over_the_limits_are_refused_naming_the_limit
        );

        #[test]
        fn model_based_property() {
            if let Err(why) = ($runnable)() {
                eprintln!("SKIPPED model_based_property: {why}");
                return;
            }
            $crate::check_against_reference(|| async { ($new_store)().await }, $caps);
        }
    };
    (@cases $new_store:expr, $runnable:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() -> $crate::CaseResult {
                if let Err(why) = ($runnable)() {
                    eprintln!("SKIPPED {}: {why}", stringify!($case));
                    return Ok(());
                }
                $crate::block_on(async {
                    let store = ($new_store)().await;
                    $crate::cases::$case(&store).await
                })
            }
        )*
    };
    (@capable $new_store:expr, $caps:expr, $runnable:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() -> $crate::CaseResult {
                if let Err(why) = ($runnable)() {
                    eprintln!("SKIPPED {}: {why}", stringify!($case));
                    return Ok(());
                }
                $crate::block_on(async {
                    let store = ($new_store)().await;
                    $crate::cases::$case(&store, $caps).await
                })
            }
        )*
    };
}
