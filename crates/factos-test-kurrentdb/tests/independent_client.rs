//! The server driven by an independent client: the Python
//! `kurrentdbclient` (its authors run its tests against a real KurrentDB),
//! so the server keeps speaking the protocol as more than one client reads
//! it. The Python interpreter with the client installed is named by
//! `FACTOS_KURRENTDB_PYTHON` (`.ci/run` makes a virtualenv); without it the
//! test says so and passes, unless `FACTOS_REQUIRE_KURRENTDB_PYTHON` is set.

use std::path::Path;
use std::process::Command;

use factos_test_kurrentdb::FakeKurrentDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_kurrentdbclient_appends_reads_filters_and_subscribes() -> Result<(), Box<dyn std::error::Error>> {
    let Some(python) = std::env::var_os("FACTOS_KURRENTDB_PYTHON") else {
        if std::env::var_os("FACTOS_REQUIRE_KURRENTDB_PYTHON").is_some() {
            return Err(
                "FACTOS_REQUIRE_KURRENTDB_PYTHON is set but FACTOS_KURRENTDB_PYTHON names no interpreter".into(),
            );
        }
        eprintln!("SKIPPED: set FACTOS_KURRENTDB_PYTHON to a Python with kurrentdbclient installed");
        return Ok(());
    };
    let server = FakeKurrentDb::start().await?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/independent_client.py");
    let url = server.connection_string();
    let output = tokio::task::spawn_blocking(move || Command::new(python).arg(script).arg(url).output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the independent client failed checks:\n{stdout}"
    );
    assert!(
        stdout.lines().last().is_some_and(|l| l.ends_with(" 0 failed")),
        "{stdout}"
    );
    Ok(())
}
