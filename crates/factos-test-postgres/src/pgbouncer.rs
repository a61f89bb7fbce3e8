//! A PgBouncer in transaction mode in front of the test cluster.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::{Config, NoTls};

use crate::{Cluster, ClusterError, as_user, at_exit, path, running_as_root, system_binary};

/// A running PgBouncer with `pool_mode = transaction`: every transaction
/// (and every statement outside one) may run on a different server
/// connection, so nothing that lives in a session survives between them.
/// That is what PgBouncer, RDS Proxy and similar poolers do in production.
#[derive(Debug)]
pub struct PgBouncer {
    dir: PathBuf,
    port: u16,
    cluster: &'static Cluster,
}

static BOUNCER: OnceLock<Result<Option<PgBouncer>, String>> = OnceLock::new();
static SCHEMAS: AtomicU64 = AtomicU64::new(0);

/// How many schemas (and roles) [`PgBouncer::fresh_schema`] hands out in
/// one test process.
pub const MAX_SCHEMAS: u64 = 1_000;

/// The role (and schema) name of the `n`-th fresh schema.
fn role(n: u64) -> String {
    format!("bouncer_{n}")
}

/// The port in the name of PgBouncer's unix socket (`.s.PGSQL.<port>`); it
/// listens on no TCP port.
const PORT: u16 = 6432;

impl Cluster {
    /// A PgBouncer in transaction mode in front of this cluster, started on
    /// first use; `None` when no `pgbouncer` binary is installed (Debian's
    /// `pgbouncer` package; `FACTOS_PGBOUNCER` names another binary) or the
    /// cluster is an external one (`FACTOS_TEST_DATABASE_URL`).
    ///
    /// # Errors
    ///
    /// [`ClusterError::NoPgBouncer`] when there is none but
    /// `FACTOS_REQUIRE_PGBOUNCER` is set (CI sets it, so the pooler tests
    /// cannot silently stop running); [`ClusterError`] when it cannot start.
    pub fn pgbouncer(&'static self) -> Result<Option<&'static PgBouncer>, ClusterError> {
        let started = BOUNCER.get_or_init(|| PgBouncer::start(self).map_err(|e| e.to_string()));
        match started {
            Ok(Some(bouncer)) => Ok(Some(bouncer)),
            Ok(None) if std::env::var_os("FACTOS_REQUIRE_PGBOUNCER").is_some() => Err(ClusterError::NoPgBouncer),
            Ok(None) => Ok(None),
            Err(e) => Err(ClusterError::Failed(e.clone())),
        }
    }
}

impl PgBouncer {
    fn start(cluster: &'static Cluster) -> Result<Option<PgBouncer>, ClusterError> {
        let (Some(binary), Some(cluster_dir)) = (find_binary(), cluster.dir()) else {
            return Ok(None);
        };
        let dir = cluster_dir.join("bouncer");
        std::fs::create_dir_all(&dir)?;
        // Each test logs in as its own role whose default `search_path`
        // ("$user") is its own schema: the only per-test setting that
        // survives a transaction-mode pooler. PgBouncer's trust mode wants
        // every user listed, so the roles are listed ahead of use.
        let users: String = std::iter::once("\"postgres\" \"\"\n".to_owned())
            .chain((0..MAX_SCHEMAS).map(|n| format!("\"{}\" \"\"\n", role(n))))
            .collect();
        std::fs::write(dir.join("userlist.txt"), users)?;
        // Server connections are capped well below the cluster's
        // max_connections and given back soon when idle.
        let ini = format!(
            "[databases]\n\
             * = host={cluster}\n\
             [pgbouncer]\n\
             listen_addr =\n\
             listen_port = {PORT}\n\
             unix_socket_dir = {dir}\n\
             auth_type = trust\n\
             auth_file = {dir}/userlist.txt\n\
             pool_mode = transaction\n\
             max_client_conn = 2000\n\
             default_pool_size = 30\n\
             max_db_connections = 300\n\
             server_idle_timeout = 5\n\
             server_reset_query =\n\
             logfile = {dir}/pgbouncer.log\n\
             pidfile = {dir}/pgbouncer.pid\n",
            cluster = path(cluster_dir)?,
            dir = path(&dir)?,
        );
        std::fs::write(dir.join("pgbouncer.ini"), ini)?;
        let as_postgres = running_as_root()?;
        if as_postgres {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()?;
            if !status.success() {
                return Err(ClusterError::Command {
                    command: "chown".into(),
                    output: status.to_string(),
                });
            }
        }
        let output = as_user(&binary, as_postgres)
            .arg("-d")
            .arg(dir.join("pgbouncer.ini"))
            .output()?;
        if !output.status.success() {
            return Err(ClusterError::Command {
                command: format!("{} -d", binary.display()),
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        let socket = dir.join(format!(".s.PGSQL.{PORT}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline {
                return Err(ClusterError::Command {
                    command: "pgbouncer".into(),
                    output: std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        at_exit(&format!("kill $(cat '{}/pgbouncer.pid') 2>/dev/null", path(&dir)?))?;
        Ok(Some(PgBouncer {
            dir,
            port: PORT,
            cluster,
        }))
    }

    /// Creates a new, empty schema and a role whose default `search_path`
    /// it is, and returns a config that reaches the cluster's `postgres`
    /// database through PgBouncer as that role, with the schema's name.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Postgres`] when the cluster cannot be reached;
    /// [`ClusterError::Failed`] after [`MAX_SCHEMAS`] schemas.
    pub async fn fresh_schema(&self) -> Result<(Config, String), ClusterError> {
        let n = SCHEMAS.fetch_add(1, Ordering::Relaxed);
        if n >= MAX_SCHEMAS {
            return Err(ClusterError::Failed(format!(
                "more than {MAX_SCHEMAS} schemas behind PgBouncer"
            )));
        }
        let name = role(n);
        let (client, connection) = self.cluster.config().connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "CREATE ROLE {name} LOGIN SUPERUSER; CREATE SCHEMA {name} AUTHORIZATION {name}"
            ))
            .await?;
        drop(client);
        let _ = driver.await;
        let mut config = Config::new();
        config
            .host_path(&self.dir)
            .port(self.port)
            .user(&name)
            .dbname("postgres");
        Ok((config, name))
    }

    /// The directory holding PgBouncer's socket, configuration and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn find_binary() -> Option<PathBuf> {
    if let Some(binary) = std::env::var_os("FACTOS_PGBOUNCER") {
        return Some(PathBuf::from(binary));
    }
    system_binary("pgbouncer")
}
