//! What [`crate::PgStore::connect`] accepts.

use tokio_postgres::Config;

use crate::error::PgError;

/// A connection target: a URL (`postgres://user:password@host/database`),
/// a key-value string (`host=localhost dbname=app`), or a [`Config`].
pub trait IntoConfig {
    /// The parsed configuration.
    ///
    /// # Errors
    ///
    /// [`PgError::InvalidConfig`] when a string cannot be parsed.
    fn into_config(self) -> Result<Config, PgError>;
}

impl IntoConfig for Config {
    fn into_config(self) -> Result<Config, PgError> {
        Ok(self)
    }
}

impl IntoConfig for &Config {
    fn into_config(self) -> Result<Config, PgError> {
        Ok(self.clone())
    }
}

impl IntoConfig for &str {
    fn into_config(self) -> Result<Config, PgError> {
        self.parse().map_err(PgError::InvalidConfig)
    }
}

impl IntoConfig for &String {
    fn into_config(self) -> Result<Config, PgError> {
        self.as_str().into_config()
    }
}

impl IntoConfig for String {
    fn into_config(self) -> Result<Config, PgError> {
        self.as_str().into_config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_key_value_strings_parse_and_bad_ones_are_typed_errors() -> Result<(), PgError> {
        let url = "postgres://app:secret@db.example:5433/events".into_config()?;
        assert_eq!(url.get_dbname(), Some("events"));
        assert_eq!(url.get_ports(), &[5433]);
        let key_value = "host=localhost user=app dbname=app".into_config()?;
        assert_eq!(key_value.get_user(), Some("app"));
        assert!(matches!("postgres://[".into_config(), Err(PgError::InvalidConfig(_))));
        Ok(())
    }
}
