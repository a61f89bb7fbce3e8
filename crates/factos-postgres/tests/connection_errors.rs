//! What a refused connection says: the server's reason on top, in the
//! caller's terms, each cause once, no connection-pool jargon.

use factos::{EventStore, Query, ReadOptions};
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::Cluster;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// `error` and its causes, one per entry.
fn chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut texts = vec![error.to_string()];
    let mut cause = error.source();
    while let Some(inner) = cause {
        texts.push(inner.to_string());
        cause = inner.source();
    }
    texts
}

/// Opens a store on `config` and returns what `migrate` and `read` say.
async fn refusals(
    config: tokio_postgres::Config,
) -> Result<(String, Vec<String>), Box<dyn std::error::Error + Send + Sync>> {
    let store = PgStore::connect_with(config, PoolOptions::new(2))?;
    let migrate = store.migrate().await.err().ok_or("the connection must be refused")?;
    let read = store
        .read(&Query::all(), ReadOptions::forwards())
        .await
        .err()
        .ok_or("the connection must be refused")?;
    Ok((migrate.to_string(), chain(&read)))
}

fn assert_plain(top: &str, read: &[String], reason: &str) {
    assert!(top.contains(reason), "{top:?} must say {reason:?}");
    for jargon in ["pool", "object", "db error"] {
        assert!(!top.contains(jargon), "{top:?} must not say {jargon:?}");
    }
    let printed = read.join(": ");
    assert_eq!(printed.matches(reason).count(), 1, "each cause once: {read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_says_the_server_refused_it() -> TestResult {
    let mut config = Cluster::stock()?.config();
    config.password("not-the-password");
    let (top, read) = refusals(config).await?;
    assert_plain(&top, &read, r#"password authentication failed for user "postgres""#);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_database_says_it_does_not_exist() -> TestResult {
    let mut config = Cluster::shared()?.config();
    config.dbname("no_such_database");
    let (top, read) = refusals(config).await?;
    assert_plain(&top, &read, r#"database "no_such_database" does not exist"#);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_says_so() -> TestResult {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut config = tokio_postgres::Config::new();
    config.host("127.0.0.1").port(port).user("postgres").dbname("postgres");
    let (top, read) = refusals(config).await?;
    assert_plain(&top, &read, "Connection refused");
    Ok(())
}
