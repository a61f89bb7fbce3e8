//! The KurrentDB store passes the shared conformance suite, declaring what
//! KurrentDB cannot enforce (query conditions, store-wide unique ids): those
//! cases check the typed refusals instead. Against the in-process fake by
//! default, a real server with `FACTOS_KURRENTDB_URL`.

mod support;

use support::fresh_store;

factos_conformance::conformance_tests!(fresh_store, factos_conformance::Capabilities::STREAMS_ONLY);
factos_conformance::follow_tests!(fresh_store);
