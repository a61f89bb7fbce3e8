//! Turning `--type`, `--tag` and `--item` flags into a [`Query`], in the
//! order they were given.

use clap::ArgMatches;
use factos::{EventType, Query, QueryItem, Tag};

use crate::error::CliError;

/// The query the flags of a subcommand give: `--type` and `--tag` belong to
/// the item begun by the last `--item` before them (or the first item).
/// No flag at all is the query of every event.
///
/// # Errors
///
/// [`CliError::Invalid`] for an invalid type or tag, or an item given no
/// type and no tag.
pub fn from_matches(matches: &ArgMatches) -> Result<Query, CliError> {
    let indexed = |id: &str| -> Vec<(usize, String)> {
        let indices = matches.indices_of(id).into_iter().flatten();
        let values = matches.get_many::<String>(id).into_iter().flatten().cloned();
        indices.zip(values).collect()
    };
    let types = indexed("types");
    let tags = indexed("tags");
    let mut starts: Vec<usize> = matches.indices_of("items").into_iter().flatten().collect();
    starts.sort_unstable();
    if types.is_empty() && tags.is_empty() {
        if starts.is_empty() {
            return Ok(Query::all());
        }
        return Err(CliError::Invalid("--item needs a --type or --tag after it".into()));
    }
    // Item k holds the flags after its --item (item 0: before any).
    let item_of = |index: usize| starts.iter().filter(|start| **start < index).count();
    let mut items: Vec<(Vec<EventType>, Vec<Tag>)> = vec![(Vec::new(), Vec::new()); starts.len() + 1];
    for (index, name) in types {
        let event_type =
            EventType::new(name.as_str()).map_err(|e| CliError::Invalid(format!("--type {name:?}: {e}")))?;
        items[item_of(index)].0.push(event_type);
    }
    for (index, name) in tags {
        let tag = Tag::new(name.as_str()).map_err(|e| CliError::Invalid(format!("--tag {name:?}: {e}")))?;
        items[item_of(index)].1.push(tag);
    }
    let mut query = Vec::new();
    for (number, (types, tags)) in items.into_iter().enumerate() {
        if types.is_empty() && tags.is_empty() {
            // Flags before the first --item are optional.
            if number == 0 {
                continue;
            }
            return Err(CliError::Invalid(format!(
                "query item {} has no --type or --tag",
                number + 1
            )));
        }
        query.push(QueryItem::types(types).with_tags(tags));
    }
    Ok(Query::new(query))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(args: &[&str]) -> Result<Query, CliError> {
        let mut argv = vec!["factos", "read"];
        argv.extend_from_slice(args);
        let matches = crate::cli::command()
            .try_get_matches_from(argv)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let (_, read) = matches
            .subcommand()
            .ok_or_else(|| CliError::Usage("no subcommand".into()))?;
        from_matches(read)
    }

    fn item(types: &[&str], tags: &[&str]) -> Result<QueryItem, Box<dyn std::error::Error>> {
        Ok(QueryItem::types(
            types
                .iter()
                .map(|t| EventType::new(*t))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .with_tags(tags.iter().map(|t| Tag::new(*t)).collect::<Result<Vec<_>, _>>()?))
    }

    #[test]
    fn flags_build_items_in_the_order_given() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(query(&[])?, Query::all());
        assert_eq!(
            query(&["--type", "A", "--tag", "x:1", "--type", "B", "--tag", "y:2"])?,
            Query::new([item(&["A", "B"], &["x:1", "y:2"])?])
        );
        assert_eq!(
            query(&[
                "--type", "A", "--item", "--tag", "x:1", "--item", "--type", "C", "--tag", "z"
            ])?,
            Query::new([item(&["A"], &[])?, item(&[], &["x:1"])?, item(&["C"], &["z"])?])
        );
        assert_eq!(
            query(&["--item", "--type", "A", "--item", "--type", "B"])?,
            Query::new([item(&["A"], &[])?, item(&["B"], &[])?])
        );
        Ok(())
    }

    #[test]
    fn empty_items_and_invalid_names_are_refused() {
        assert!(matches!(query(&["--type", "A", "--item"]), Err(CliError::Invalid(_))));
        assert!(matches!(query(&["--item"]), Err(CliError::Invalid(_))));
        assert!(matches!(query(&["--tag", ""]), Err(CliError::Invalid(_))));
    }
}
