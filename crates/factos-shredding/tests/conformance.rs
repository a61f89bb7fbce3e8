//! A store under shredding passes the shared conformance, follow and
//! property cases: the wrapper changes nothing a store promises.
//!
//! The whole suite runs with personal data declared for a type the suite
//! does not write (the wrapper is transparent to everything else). The
//! dispatch, race, re-send and follow cases run again with the tickets'
//! buyer encrypted (subject: the concert tag), so they go through the
//! encryption; the suite's decode-failure case cannot, since it writes a
//! ticket whose payload is not JSON, which such a rule rightly refuses.

use factos::MemoryStore;
use factos_conformance::Capabilities;
use factos_shredding::{PersonalData, Shredding, SubjectFrom};

fn shredding(event_type: &str) -> Shredding<MemoryStore> {
    let personal = PersonalData::new()
        .event(event_type, SubjectFrom::TagPrefix("concert:".into()), &["/buyer"])
        .unwrap_or_else(|e| panic!("a valid rule: {e}"));
    let store = MemoryStore::new();
    Shredding::new(store.clone(), store, personal)
}

async fn fresh_store() -> Shredding<MemoryStore> {
    shredding("Registered")
}

factos_conformance::conformance_tests!(fresh_store);
factos_conformance::follow_tests!(fresh_store);

mod with_tickets_encrypted {
    use super::*;

    async fn fresh_store() -> Shredding<MemoryStore> {
        shredding("TicketSold")
    }

    factos_conformance::conformance_tests!(@cases fresh_store, factos_conformance::runnable;
        dispatch_stream_appends_at_loaded_revision,
        concurrent_stream_dispatches_lose_nothing,
        followers_get_every_matching_event_once_across_restarts,
        followers_deliver_streams_in_order_and_decisions_after_what_they_read
    );
    factos_conformance::conformance_tests!(@capable fresh_store, Capabilities::ALL, factos_conformance::runnable;
        identical_resend_returns_original_records,
        dispatch_returns_committed_records,
        concurrent_dispatches_accept_exactly_capacity,
        accepted_decisions_saw_their_whole_context
    );
}
