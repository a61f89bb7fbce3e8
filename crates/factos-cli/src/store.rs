//! Choosing and opening a store: a SQLite file or a PostgreSQL URL.

use std::path::PathBuf;
use std::time::Duration;

use factos::admin::{Admin, SchemaVersion};
use factos::retag::TagHistory;
use factos::{Checkpoints, Follow, SharedStore};
use factos_postgres::tokio_postgres::Config as PgConfig;
use factos_postgres::{PgStore, PoolOptions};
use factos_sqlite::{SqliteOptions, SqliteStore};

use crate::cli::StoreArgs;
use crate::error::CliError;

/// What every command needs of a store; both backends have it.
pub trait CliStore: SharedStore + Admin + Follow + Checkpoints + TagHistory + Sync {}

impl<S> CliStore for S where S: SharedStore + Admin + Follow + Checkpoints + TagHistory + Sync {}

/// A store named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (or key-value string) and the store's schema.
    Postgres {
        /// The connection URL.
        url: String,
        /// The schema holding the store, if not the search path's.
        schema: Option<String>,
    },
}

/// How a command opens its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// The store must exist with the schema this tool writes.
    Existing,
    /// As [`Open::Existing`], for commands that only read: a SQLite file
    /// is opened read-only, so one the user cannot write can be read.
    ReadOnly,
    /// A store without a schema is created and migrated (import targets).
    Create,
    /// Any schema version, for `migrate` (which reports and upgrades it).
    AnyVersion,
}

/// An opened store of either backend; [`with_store!`](crate::with_store) runs code generic
/// over [`CliStore`] on it.
#[derive(Debug, Clone)]
pub enum Opened {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

/// Runs `$body` with `$store` bound to the opened store, whatever its
/// backend.
#[macro_export]
macro_rules! with_store {
    ($opened:expr, |$store:ident| $body:expr) => {
        match $opened {
            $crate::store::Opened::Sqlite($store) => $body,
            $crate::store::Opened::Postgres($store) => $body,
        }
    };
}

/// How long opening a PostgreSQL connection may take before the command
/// fails with the cause.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Target {
    /// The store the global flags name.
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] when none is named.
    pub fn from_args(args: &StoreArgs) -> Result<Self, CliError> {
        match (&args.database, &args.database_url) {
            (Some(path), _) => Ok(Target::Sqlite(path.clone())),
            (None, Some(url)) => Target::parse(url, args.schema.clone()),
            (None, None) => Err(CliError::Usage(
                "no store given: pass --database PATH or --database-url URL, or set FACTOS_DATABASE_URL".into(),
            )),
        }
    }

    /// A SQLite path, a `sqlite:` URL, a `postgres://` URL or a libpq
    /// key-value string (`host=db user=app password=… dbname=app`).
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] for an unknown URL scheme.
    pub fn parse(text: &str, schema: Option<String>) -> Result<Self, CliError> {
        if let Some(rest) = text.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(CliError::Usage(format!("{text}: the sqlite: URL names no file")));
            }
            return Ok(Target::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Target::Postgres {
                url: text.to_owned(),
                schema,
            });
        }
        if !text.contains("://") && text.contains('=') && text.parse::<PgConfig>().is_ok() {
            // A key-value string: only PostgreSQL's keys parse, so a file
            // name with `=` in it stays a SQLite path.
            return Ok(Target::Postgres {
                url: text.to_owned(),
                schema,
            });
        }
        match text.split_once("://") {
            Some((scheme, _)) => Err(CliError::Usage(format!(
                "unsupported store URL scheme {scheme:?}: use postgres://… or sqlite:PATH"
            ))),
            None => Ok(Target::Sqlite(PathBuf::from(text))),
        }
    }

    /// The store for messages: the path, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            Target::Sqlite(path) => path.display().to_string(),
            Target::Postgres { url, schema } => {
                let url = redact(url);
                match schema {
                    Some(schema) => format!("{url} (schema {schema})"),
                    None => url,
                }
            }
        }
    }

    /// Opens the store and checks its schema as `open` says.
    ///
    /// # Errors
    ///
    /// Why the store cannot be used: a missing file, an unreachable server
    /// (within a few seconds), a schema of another version.
    pub async fn open(&self, open: Open) -> Result<Opened, CliError> {
        let opened = match self {
            Target::Sqlite(path) => {
                if matches!(open, Open::Existing | Open::ReadOnly) && !path.exists() {
                    return Err(CliError::Invalid(format!(
                        "no database at {}: create one with `factos migrate`",
                        path.display()
                    )));
                }
                let options = SqliteOptions {
                    read_only: open == Open::ReadOnly,
                    ..SqliteOptions::default()
                };
                let store = SqliteStore::open_with(path, options).map_err(|source| CliError::OpenSqlite {
                    path: path.clone(),
                    source,
                })?;
                Opened::Sqlite(store)
            }
            Target::Postgres { url, schema } => {
                let pool = PoolOptions::new(32)
                    .connect_timeout(CONNECT_TIMEOUT)
                    .wait_timeout(Duration::from_secs(30));
                let failed = |source| CliError::OpenPostgres {
                    url: redact(url),
                    source,
                };
                let mut store = PgStore::connect_with(url.as_str(), pool).map_err(failed)?;
                if let Some(schema) = schema {
                    store = store.with_schema(schema).map_err(failed)?;
                }
                Opened::Postgres(store)
            }
        };
        let version = with_store!(&opened, |store| store.schema_version().await)
            .map_err(CliError::store(format!("cannot read the schema of {}", self.display())))?;
        match open {
            Open::AnyVersion => {}
            Open::Create if version.found == 0 => {
                with_store!(&opened, |store| Admin::migrate(store).await).map_err(CliError::store(format!(
                    "cannot create the schema in {}",
                    self.display()
                )))?;
                eprintln!("created the store's schema (version {})", version.supported);
            }
            Open::Create | Open::Existing | Open::ReadOnly => require_current(version)?,
        }
        Ok(opened)
    }
}

/// Fails unless the store has the schema this tool writes.
fn require_current(version: SchemaVersion) -> Result<(), CliError> {
    match version.is_current() {
        true => Ok(()),
        false => Err(schema_mismatch(version)),
    }
}

/// Why a store of `version` cannot be used as it is, and what to do.
pub fn schema_mismatch(version: SchemaVersion) -> CliError {
    CliError::Schema {
        found: version.found,
        supported: version.supported,
        advice: match version.found < version.supported {
            true => ": run `factos migrate`",
            false => ": it was written by a newer factos; use that one",
        },
    }
}

/// `url` with its password replaced by `***`; a key-value string is
/// shown by its host, port, user and database only.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.parse::<PgConfig>() {
            Ok(config) => describe_config(&config),
            Err(_) => "(a connection string that cannot be parsed)".to_owned(),
        };
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// A key-value string's parts that say which server and database, never
/// its password.
fn describe_config(config: &PgConfig) -> String {
    let mut parts = Vec::new();
    for host in config.get_hosts() {
        parts.push(match host {
            factos_postgres::tokio_postgres::config::Host::Tcp(name) => format!("host={name}"),
            factos_postgres::tokio_postgres::config::Host::Unix(path) => format!("host={}", path.display()),
        });
    }
    parts.extend(config.get_ports().iter().map(|port| format!("port={port}")));
    parts.extend(config.get_user().map(|user| format!("user={user}")));
    parts.extend(config.get_dbname().map(|db| format!("dbname={db}")));
    if config.get_password().is_some() {
        parts.push("password=***".to_owned());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_name_their_backend() -> Result<(), CliError> {
        assert_eq!(Target::parse("events.db", None)?, Target::Sqlite("events.db".into()));
        assert_eq!(Target::parse("sqlite:a/b.db", None)?, Target::Sqlite("a/b.db".into()));
        assert_eq!(
            Target::parse("sqlite:///tmp/x.db", None)?,
            Target::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(
            Target::parse("postgres://u@h/db", None)?,
            Target::Postgres { .. }
        ));
        assert!(matches!(Target::parse("mysql://h/db", None), Err(CliError::Usage(_))));
        assert!(matches!(Target::parse("sqlite:", None), Err(CliError::Usage(_))));
        Ok(())
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://app:secret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(
            redact("host=db user=app password='s e c r e t' dbname=app"),
            "host=db user=app dbname=app password=***"
        );
    }

    #[test]
    fn key_value_strings_are_postgresql_and_other_names_with_equals_stay_files() -> Result<(), CliError> {
        assert!(matches!(
            Target::parse("host=db password=secret dbname=app", None)?,
            Target::Postgres { .. }
        ));
        assert_eq!(Target::parse("run=3.db", None)?, Target::Sqlite("run=3.db".into()));
        Ok(())
    }
}
