//! SQL predicates, parsed before they are spliced into a query.
//!
//! A predicate is trusted SQL, but it lands inside a generated statement as
//! `AND (predicate)`, next to the item's type, tag and position filters. A
//! text like `1=1) OR (1=1` would close that parenthesis and escape them,
//! silently widening a read and, worse, an append condition. So every
//! predicate is parsed with the backend's SQL dialect and must be exactly
//! one expression; its `$k` parameters must be the ones it binds; comments
//! are dropped (a trailing `--` would swallow the closing parenthesis). What
//! is spliced is the predicate's own text, token by token, with only the
//! placeholders renumbered, so the database sees what the application wrote.

use factos::{InvalidPredicate, Predicate};
use sqlparser::dialect::{PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::Dialect;

/// `predicate`'s SQL with its parameter `$k` written as `placeholder(k)`.
///
/// # Errors
///
/// [`InvalidPredicate`] when the SQL does not tokenize or parse as one
/// expression of `dialect`, or uses a placeholder other than `$1` to
/// `$n` for its `n` parameters.
pub(crate) fn render(
    predicate: &Predicate,
    dialect: Dialect,
    mut placeholder: impl FnMut(usize) -> String,
) -> Result<String, InvalidPredicate> {
    let sql = predicate.sql();
    let invalid = |reason: String, source: Option<factos::BoxError>| InvalidPredicate {
        sql: sql.to_owned(),
        reason,
        source,
    };
    let (postgres, sqlite) = (PostgreSqlDialect {}, SQLiteDialect {});
    let parser_dialect: &dyn sqlparser::dialect::Dialect = match dialect {
        Dialect::Postgres => &postgres,
        Dialect::Sqlite => &sqlite,
    };
    let tokens = Tokenizer::new(parser_dialect, sql)
        .tokenize_with_location()
        .map_err(|e| invalid("it does not tokenize".into(), Some(e.into())))?;

    let mut parser = Parser::new(parser_dialect).with_tokens_with_locations(tokens.clone());
    parser
        .parse_expr()
        .map_err(|e| invalid("it is not a SQL expression".into(), Some(e.into())))?;
    let rest = parser.peek_token();
    if rest.token != Token::EOF {
        return Err(invalid(
            format!(
                "it must be exactly one expression, but `{}` follows one at line {} column {}",
                rest.token, rest.span.start.line, rest.span.start.column
            ),
            None,
        ));
    }

    let count = predicate.params().len();
    let offsets = Offsets::new(sql);
    let mut out = String::with_capacity(sql.len() + 8);
    for (i, TokenWithSpan { token, span }) in tokens.iter().enumerate() {
        let start = offsets.byte(span.start);
        let end = tokens
            .get(i + 1)
            .map_or(sql.len(), |next| offsets.byte(next.span.start));
        match token {
            Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => out.push(' '),
            Token::Placeholder(name) => {
                let number = name.strip_prefix('$').and_then(|digits| digits.parse::<usize>().ok());
                match number {
                    Some(k) if (1..=count).contains(&k) => out.push_str(&placeholder(k)),
                    _ => {
                        return Err(invalid(
                            format!(
                                "placeholder `{name}` is not one of its parameters ($1 to ${count}; {count} bound)"
                            ),
                            None,
                        ));
                    }
                }
            }
            Token::EOF => {}
            _ => out.push_str(sql.get(start..end).unwrap_or_default()),
        }
    }
    Ok(out)
}

/// Turns the tokenizer's (line, column) locations, columns counted in
/// characters from 1, back into byte offsets of the source.
struct Offsets {
    /// The byte offset where each line starts, line 1 first.
    lines: Vec<usize>,
    source: String,
}

impl Offsets {
    fn new(source: &str) -> Self {
        let mut lines = vec![0];
        lines.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            lines,
            source: source.to_owned(),
        }
    }

    fn byte(&self, at: Location) -> usize {
        let line_start = usize::try_from(at.line)
            .ok()
            .and_then(|line| self.lines.get(line.checked_sub(1)?))
            .copied()
            .unwrap_or(self.source.len());
        let column = usize::try_from(at.column.saturating_sub(1)).unwrap_or(usize::MAX);
        self.source[line_start..]
            .char_indices()
            .nth(column)
            .map_or(self.source.len(), |(offset, _)| line_start + offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos::PredicateValue;

    fn render_sqlite(sql: &str, params: usize) -> Result<String, InvalidPredicate> {
        let predicate = Predicate::new(sql, (0..params).map(|i| PredicateValue::Integer(i as i64)));
        render(&predicate, Dialect::Sqlite, |k| format!("?{}", k + 10))
    }

    #[test]
    fn a_predicate_that_closes_its_parenthesis_is_refused() {
        for escaping in [
            "1=1) OR (1=1",
            "1=1); DROP TABLE events; --",
            "x = 1) UNION SELECT position FROM events --",
        ] {
            let error = render_sqlite(escaping, 0).expect_err(escaping);
            assert_eq!(error.sql, escaping);
        }
    }

    #[test]
    fn comments_are_dropped_so_they_cannot_swallow_the_closing_parenthesis() -> Result<(), InvalidPredicate> {
        assert_eq!(render_sqlite("version = $1 -- note", 1)?, "version = ?11  ");
        assert_eq!(render_sqlite("version /* v */ = 2", 0)?, "version   = 2");
        Ok(())
    }

    #[test]
    fn placeholders_are_renumbered_and_string_contents_left_alone() -> Result<(), InvalidPredicate> {
        assert_eq!(
            render_sqlite("json_extract(data, '$.day') = $2 AND note <> '$1' AND $1 > 0", 2)?,
            "json_extract(data, '$.day') = ?12 AND note <> '$1' AND ?11 > 0"
        );
        assert_eq!(
            render_sqlite("note = 'it''s ünïcode' AND $1 = 1", 1)?,
            "note = 'it''s ünïcode' AND ?11 = 1"
        );
        let postgres = Predicate::new(
            "(convert_from(data, 'UTF8')::jsonb ->> 'day')::bigint = $1",
            [PredicateValue::Integer(1)],
        );
        assert_eq!(
            render(&postgres, Dialect::Postgres, |k| format!("${}", k + 3))?,
            "(convert_from(data, 'UTF8')::jsonb ->> 'day')::bigint = $4"
        );
        Ok(())
    }

    #[test]
    fn placeholders_the_predicate_does_not_bind_are_refused() {
        assert!(render_sqlite("version = $3", 2).is_err());
        assert!(render_sqlite("version = $0", 2).is_err());
        assert!(render_sqlite("version = ?", 2).is_err());
    }

    #[test]
    fn multi_line_predicates_keep_their_text() -> Result<(), InvalidPredicate> {
        assert_eq!(
            render_sqlite("version = $1\n  AND é = 'ü'", 1)?,
            "version = ?11\n  AND é = 'ü'"
        );
        Ok(())
    }
}
