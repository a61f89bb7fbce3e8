//! `factos retag`: add tags computed from stored JSON payloads to the tag
//! index with [`factos::retag::Retag`]. The tags come from templates such
//! as `customer:{/customer}`, each `{…}` a JSON pointer into the payload.

use factos::retag::{Retag, RetagError};
use factos::{StoredEvent, Tag};
use serde_json::json;

use crate::cli::RetagArgs;
use crate::error::CliError;
use crate::output::print_json;
use crate::store::CliStore;

pub async fn run<S: CliStore>(store: &S, args: &RetagArgs) -> Result<(), CliError> {
    let templates = args
        .tags
        .iter()
        .map(|text| Template::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    let tags_of = |event: &StoredEvent| -> Result<Vec<Tag>, String> {
        if !args.types.is_empty() && !args.types.iter().any(|t| t == event.event_type.as_str()) {
            return Ok(Vec::new());
        }
        let payload: serde_json::Value = match serde_json::from_slice(&event.event) {
            Ok(payload) => payload,
            Err(_) if args.skip_missing => return Ok(Vec::new()),
            Err(e) => return Err(format!("the payload is not JSON: {e}")),
        };
        let mut tags = Vec::with_capacity(templates.len());
        for template in &templates {
            match template.fill(&payload) {
                Ok(text) => tags.push(Tag::new(text).map_err(|e| e.to_string())?),
                Err(_) if args.skip_missing => return Ok(Vec::new()),
                Err(pointer) => return Err(format!("the payload has no {pointer}")),
            }
        }
        Ok(tags)
    };
    let report = Retag::new(args.name.clone(), tags_of)
        .batch(args.batch)
        .run(store)
        .await
        .map_err(|error| match error {
            RetagError::Store(source) => CliError::Store {
                what: format!("retag {} failed", args.name),
                source,
            },
            RetagError::Tags { position, source } => CliError::Failed(format!(
                "retag {}: cannot compute the tags of the event at position {position}: {source} \
                 (what was staged is kept; fix the templates or pass --skip-missing, and run it again)",
                args.name
            )),
            other => CliError::Failed(other.to_string()),
        })?;
    if args.json {
        print_json(&json!({"examined": report.examined, "staged": report.staged, "added": report.added}));
    } else {
        println!(
            "retag {}: examined {} events, staged {} tags, added {}",
            args.name, report.examined, report.staged, report.added
        );
    }
    Ok(())
}

/// A tag template: literal text and JSON pointers.
#[derive(Debug, PartialEq, Eq)]
struct Template(Vec<Part>);

#[derive(Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Pointer(String),
}

impl Template {
    fn parse(text: &str) -> Result<Self, CliError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|i| open + i)
                .ok_or_else(|| CliError::Usage(format!("--tag {text:?}: a {{ is not closed")))?;
            let pointer = &rest[open + 1..close];
            if !pointer.starts_with('/') {
                return Err(CliError::Usage(format!(
                    "--tag {text:?}: {{{pointer}}} is not a JSON pointer (they start with /)"
                )));
            }
            parts.push(Part::Text(rest[..open].to_owned()));
            parts.push(Part::Pointer(pointer.to_owned()));
            rest = &rest[close + 1..];
        }
        parts.push(Part::Text(rest.to_owned()));
        if !parts.iter().any(|part| matches!(part, Part::Pointer(_))) {
            return Err(CliError::Usage(format!(
                "--tag {text:?} names no payload field: write one as {{/field}}"
            )));
        }
        Ok(Self(parts))
    }

    /// The tag for `payload`, or the pointer it lacks. Strings are used as
    /// they are, other values as JSON text.
    fn fill<'t>(&'t self, payload: &serde_json::Value) -> Result<String, &'t str> {
        let mut text = String::new();
        for part in &self.0 {
            match part {
                Part::Text(literal) => text.push_str(literal),
                Part::Pointer(pointer) => match payload.pointer(pointer) {
                    Some(serde_json::Value::String(value)) => text.push_str(value),
                    Some(serde_json::Value::Null) | None => return Err(pointer),
                    Some(value) => text.push_str(&value.to_string()),
                },
            }
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_pointers_from_the_payload() -> Result<(), CliError> {
        let template = Template::parse("customer:{/customer/id}-{/region}")?;
        let payload = json!({"customer": {"id": 7}, "region": "eu"});
        assert_eq!(template.fill(&payload), Ok("customer:7-eu".to_owned()));
        assert_eq!(template.fill(&json!({"region": "eu"})), Err("/customer/id"));
        assert!(Template::parse("customer").is_err(), "a template without a field");
        assert!(Template::parse("customer:{customer}").is_err(), "not a pointer");
        assert!(Template::parse("customer:{/customer").is_err(), "not closed");
        Ok(())
    }
}
