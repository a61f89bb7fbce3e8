//! The inline store serves synchronous applications: no tokio runtime,
//! futures driven by a plain executor, several OS threads on one store.

use factos::{Dispatcher, EventStore, JsonCodec, ReadOptions};
use factos_conformance::tickets::{Buy, SoldOut, TicketSold, box_office, concert_query, concert_stream};
use factos_sqlite::SqliteStore;
use futures::executor::block_on;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[test]
fn threads_without_a_runtime_sell_exactly_the_capacity() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("events.db"))?.inline();
    block_on(store.migrate())?;
    let threads: Vec<_> = (0..4u32)
        .map(|thread| {
            let store = store.clone();
            std::thread::spawn(move || {
                let dispatcher = Dispatcher::new(&store, JsonCodec::<TicketSold>::new());
                let (mut sold, mut sold_out) = (0, 0);
                for i in 0..10 {
                    let buy = Buy {
                        concert: 1,
                        buyer: thread * 100 + i,
                    };
                    match block_on(dispatcher.dispatch_context(
                        &box_office(25),
                        &buy,
                        &concert_query(1),
                        &concert_stream(1),
                    )) {
                        Ok(_) => sold += 1,
                        Err(factos::Error::Domain(SoldOut)) => sold_out += 1,
                        Err(other) => return Err(other.to_string()),
                    }
                }
                Ok((sold, sold_out))
            })
        })
        .collect();
    let (mut sold, mut sold_out) = (0, 0);
    for thread in threads {
        let (s, o) = thread.join().map_err(|_| "a thread panicked")??;
        sold += s;
        sold_out += o;
    }
    assert_eq!((sold, sold_out), (25, 15));
    assert_eq!(
        block_on(store.read(&concert_query(1), ReadOptions::forwards()))?.len(),
        25
    );
    Ok(())
}
