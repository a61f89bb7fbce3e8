//! What a command can fail with: one line each, causes chained.

use std::path::PathBuf;

use factos::StoreError;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line is incomplete or contradictory.
    #[error("{0}")]
    Usage(String),
    /// The store refused or failed an operation.
    #[error("{what}")]
    Store {
        /// What was being done.
        what: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The SQLite store cannot be opened.
    #[error("cannot open SQLite database {path}")]
    OpenSqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: factos_sqlite::SqliteError,
    },
    /// The PostgreSQL store cannot be configured.
    #[error("cannot use PostgreSQL store {url}")]
    OpenPostgres {
        /// The URL, without its password.
        url: String,
        /// Why.
        #[source]
        source: factos_postgres::PgError,
    },
    /// The store's schema is not the one this tool writes.
    #[error("the store has schema version {found}; this factos uses version {supported}{advice}")]
    Schema {
        /// The version found.
        found: i64,
        /// The version this build writes.
        supported: i64,
        /// What to do about it.
        advice: &'static str,
    },
    /// A file or stream cannot be read or written.
    #[error("{what}")]
    Io {
        /// What was being read or written.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of JSON input is not what the command expects.
    #[error("line {line}: {problem}")]
    BadLine {
        /// The line number, from 1.
        line: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// A value on the command line or in a request is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The command ran and found something wrong (a failed check or
    /// verification); it already printed the details.
    #[error("{0}")]
    Failed(String),
    /// The command was interrupted (Ctrl-C); what it did is consistent.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

impl CliError {
    /// Wraps a store error with what was being done.
    pub fn store(what: impl Into<String>) -> impl FnOnce(StoreError) -> CliError {
        let what = what.into();
        move |source| CliError::Store { what, source }
    }

    /// Wraps an IO error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let what = what.into();
        move |source| CliError::Io { what, source }
    }

    /// The process exit code: 2 for usage errors, 130 for an interruption,
    /// 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Interrupted(_) => 130,
            _ => 1,
        }
    }
}

/// The error and its causes on one line: `what: cause: cause`.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    factos::ErrorChain(error).to_string().replace('\n', " ")
}
