//! A dispatch inside a transaction the application controls commits or rolls
//! back together with the application's own writes.

use factos::{Dispatcher, EventStore, JsonCodec, Query, ReadOptions, RetryPolicy};
use factos_conformance::tickets::{Buy, TicketSold, box_office, concert_query, concert_stream};
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::Cluster;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn sell_and_count(store: &PgStore, client: &mut tokio_postgres::Client, buyer: u32, commit: bool) -> TestResult {
    let transaction = client.transaction().await?;
    let in_tx = store.in_transaction(&transaction).await?;
    let sold = Dispatcher::new(&in_tx, JsonCodec::<TicketSold>::new())
        .with_retry(RetryPolicy::none())
        .dispatch_context(
            &box_office(10),
            &Buy { concert: 1, buyer },
            &concert_query(1),
            &concert_stream(1),
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO sales_per_concert (concert, sold) VALUES (1, $1) \
             ON CONFLICT (concert) DO UPDATE SET sold = sales_per_concert.sold + $1",
            &[&(sold.len() as i64)],
        )
        .await?;
    if commit {
        transaction.commit().await?
    } else {
        transaction.rollback().await?
    }
    Ok(())
}

async fn read_model(client: &tokio_postgres::Client) -> Result<Option<i64>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT sold FROM sales_per_concert WHERE concert = 1", &[])
        .await?;
    Ok(rows.first().map(|r| r.get::<_, i64>(0)))
}

#[tokio::test]
async fn events_and_read_model_commit_or_roll_back_together() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config.clone(), PoolOptions::new(4))?;
    store.migrate().await?;
    let (mut client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE sales_per_concert (concert int PRIMARY KEY, sold bigint NOT NULL)")
        .await?;
    sell_and_count(&store, &mut client, 1, false).await?;
    assert!(
        store.read(&Query::all(), ReadOptions::forwards()).await?.is_empty(),
        "rolled back: no event"
    );
    assert_eq!(read_model(&client).await?, None, "rolled back: no read model row");

    sell_and_count(&store, &mut client, 2, true).await?;
    sell_and_count(&store, &mut client, 3, true).await?;
    assert_eq!(store.read(&concert_query(1), ReadOptions::forwards()).await?.len(), 2);
    assert_eq!(read_model(&client).await?, Some(2));
    Ok(())
}
