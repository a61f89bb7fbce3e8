//! Reads: options, streams, and byte-exact round trips.

use factos::{AppendRequest, LocalEventStore, Metadata, Position, Query, ReadOptions, StreamRevision};

use crate::fixtures::{CaseResult, event, item, query, rng, stream, tag, ty};

/// `from` (inclusive), `limit` and `Backwards` select the right events in
/// the right order, alone and together with a query.
pub async fn read_options_select_from_limit_and_direction<S: LocalEventStore>(store: &S) -> CaseResult {
    let mut rng = rng(10);
    let mut positions = Vec::new();
    for i in 0..10 {
        let event_type = if i % 2 == 0 { "A" } else { "B" };
        let committed = store
            .append(AppendRequest::new(
                stream("s"),
                vec![event(&mut rng, event_type, &[], b"")],
            ))
            .await?;
        positions.push(committed.records[0].position);
    }
    let read = |query: Query, options: ReadOptions| async move {
        store
            .read(&query, options)
            .await
            .map(|events| events.iter().map(|e| e.position).collect::<Vec<Position>>())
    };
    let p = &positions;
    assert_eq!(read(Query::all(), ReadOptions::forwards()).await?, p.clone());
    assert_eq!(
        read(Query::all(), ReadOptions::forwards().from(p[3])).await?,
        p[3..].to_vec()
    );
    assert_eq!(
        read(Query::all(), ReadOptions::forwards().from(p[3]).limit(2)).await?,
        p[3..5].to_vec()
    );
    let mut reversed = p.clone();
    reversed.reverse();
    assert_eq!(read(Query::all(), ReadOptions::backwards()).await?, reversed);
    assert_eq!(
        read(Query::all(), ReadOptions::backwards().from(p[5]).limit(3)).await?,
        vec![p[5], p[4], p[3]]
    );
    let only_a = query([item(&["A"], &[])]);
    assert_eq!(
        read(only_a.clone(), ReadOptions::backwards().limit(2)).await?,
        vec![p[8], p[6]]
    );
    assert_eq!(
        read(only_a.clone(), ReadOptions::forwards().from(p[1]).limit(2)).await?,
        vec![p[2], p[4]]
    );
    assert_eq!(
        read(Query::all(), ReadOptions::forwards().limit(0)).await?,
        Vec::<Position>::new()
    );
    let beyond = Position::new(p[9].value() + 1);
    assert_eq!(
        read(Query::all(), ReadOptions::forwards().from(beyond)).await?,
        Vec::<Position>::new()
    );
    assert_eq!(
        read(Query::all(), ReadOptions::backwards().from(beyond).limit(1)).await?,
        vec![p[9]]
    );
    Ok(())
}

/// `read_stream` returns one stream's events from a revision on, in order;
/// `read_stream_page` returns them a page at a time.
pub async fn read_stream_returns_stream_from_revision<S: LocalEventStore>(store: &S) -> CaseResult {
    let mut rng = rng(11);
    for i in 0..4 {
        store
            .append(AppendRequest::new(
                stream("s"),
                vec![event(&mut rng, "E", &[], format!("s{i}").as_bytes())],
            ))
            .await?;
        store
            .append(AppendRequest::new(stream("t"), vec![event(&mut rng, "E", &[], b"t")]))
            .await?;
    }
    let from_two = store.read_stream(&stream("s"), StreamRevision::new(2)).await?;
    let revisions: Vec<u64> = from_two.iter().map(|e| e.revision.value()).collect();
    assert_eq!(revisions, vec![2, 3]);
    assert_eq!(from_two[0].event, b"s2".to_vec());
    assert!(from_two.iter().all(|e| e.stream == stream("s")));
    assert_eq!(store.read_stream(&stream("s"), StreamRevision::FIRST).await?.len(), 4);
    assert!(
        store
            .read_stream(&stream("missing"), StreamRevision::FIRST)
            .await?
            .is_empty()
    );
    assert!(
        store
            .read_stream(&stream("s"), StreamRevision::new(4))
            .await?
            .is_empty()
    );

    // Page by page: each page starts after the last one's revision, and a
    // short page is the last.
    let mut pages = Vec::new();
    let mut from = StreamRevision::FIRST;
    loop {
        let page = store.read_stream_page(&stream("s"), from, 3).await?;
        assert!(page.iter().all(|e| e.stream == stream("s")));
        pages.push(page.iter().map(|e| e.revision.value()).collect::<Vec<_>>());
        match page.last() {
            Some(last) if page.len() == 3 => from = StreamRevision::new(last.revision.value() + 1),
            _ => break,
        }
    }
    assert_eq!(pages, vec![vec![0, 1, 2], vec![3]]);
    let middle = store.read_stream_page(&stream("s"), StreamRevision::new(1), 2).await?;
    assert_eq!(
        middle.iter().map(|e| e.revision.value()).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(middle[0].event, b"s1".to_vec());
    assert!(
        store
            .read_stream_page(&stream("s"), StreamRevision::FIRST, 0)
            .await?
            .is_empty()
    );
    assert!(
        store
            .read_stream_page(&stream("missing"), StreamRevision::FIRST, 5)
            .await?
            .is_empty()
    );
    Ok(())
}

/// Metadata, payload versions, empty payloads and 1 MiB payloads of every
/// byte value come back exactly as written.
pub async fn metadata_versions_and_payloads_round_trip<S: LocalEventStore>(store: &S) -> CaseResult {
    let mut rng = rng(12);
    let big: Vec<u8> = (0..(1 << 20))
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let metadata = Metadata::new()
        .with("correlation-id", "c-1")
        .with("causation-id", "ç-2 ✓")
        .with("empty", "")
        .with("sql", "'; DELETE FROM events; --");
    let written = vec![
        event(&mut rng, "Big", &["size:1MiB"], &big)
            .with_version(7)
            .with_metadata(metadata.clone()),
        event(&mut rng, "Empty", &[], b""),
        event(&mut rng, "Zeroes", &[], &[0, 0, 0, 255, 0]),
    ];
    let committed = store.append(AppendRequest::new(stream("s"), written.clone())).await?;
    let read = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(
        read, committed.records,
        "a read must return exactly what the append returned"
    );
    for (stored, new) in read.iter().zip(&written) {
        assert_eq!(stored.id, new.id);
        assert_eq!(stored.event_type, new.event_type);
        assert_eq!(stored.version, new.version);
        assert_eq!(stored.tags, new.tags);
        assert_eq!(stored.metadata, new.metadata);
        assert!(
            stored.event == new.data,
            "payload of {} changed in the store",
            new.event_type
        );
    }
    Ok(())
}

/// Unicode and SQL-shaped tags and types are data: they round-trip and match
/// only themselves (no LIKE wildcards, no quoting accidents).
pub async fn unicode_and_sql_shaped_names_round_trip<S: LocalEventStore>(store: &S) -> CaseResult {
    let mut rng = rng(13);
    let names = [
        "naïve:日本語",
        "'; DROP TABLE events; --",
        "emoji:🎟️",
        "quote\"back\\slash",
        "percent%",
        "under_score",
    ];
    for name in names {
        store
            .append(AppendRequest::new(
                stream(name),
                vec![event(&mut rng, name, &[name], name.as_bytes())],
            ))
            .await?;
    }
    store
        .append(AppendRequest::new(
            stream("plain"),
            vec![event(&mut rng, "percentX", &["percentX", "underXscore"], b"")],
        ))
        .await?;
    for name in names {
        let by_tag = store
            .read(&query([item(&[], &[name])]), ReadOptions::forwards())
            .await?;
        assert_eq!(by_tag.len(), 1, "tag {name:?} must match exactly its own event");
        assert!(by_tag[0].tags.contains(&tag(name)));
        assert_eq!(by_tag[0].event_type, ty(name));
        assert_eq!(by_tag[0].stream, stream(name));
        let by_type = store
            .read(&query([item(&[name], &[])]), ReadOptions::forwards())
            .await?;
        assert_eq!(by_type.len(), 1, "type {name:?} must match exactly its own event");
        assert_eq!(store.read_stream(&stream(name), StreamRevision::FIRST).await?.len(), 1);
    }
    Ok(())
}

/// A read with a byte budget ends its page at the event with which the
/// events' sizes reach the budget (always at least one event), and
/// [`ReadOptions::next_page`] continues from there: paging forwards and
/// backwards returns every event once, in order; a complete last page
/// says so.
pub async fn reads_end_a_page_at_the_byte_budget_and_say_where_to_continue<S: LocalEventStore>(
    store: &S,
) -> CaseResult {
    let mut rng = rng(33);
    for n in 0..10u8 {
        let payload = vec![n; 1_000 + usize::from(n) * 100];
        store
            .append(AppendRequest::new(
                stream("budget"),
                vec![event(&mut rng, "Big", &["b"], &payload)],
            ))
            .await?;
    }
    let everything = store.read(&Query::all(), ReadOptions::forwards()).await?;
    let sizes: Vec<usize> = everything.iter().map(factos::StoredEvent::byte_size).collect();
    let budget = sizes[0] + sizes[1] + 1;

    let first = store
        .read(&Query::all(), ReadOptions::forwards().max_bytes(budget))
        .await?;
    assert_eq!(first.len(), 3, "the page ends with the event that reaches the budget");
    for (direction, start) in [
        (ReadOptions::forwards(), everything.clone()),
        (ReadOptions::backwards(), {
            let mut reversed = everything.clone();
            reversed.reverse();
            reversed
        }),
    ] {
        let mut options = Some(direction.max_bytes(budget).limit(4));
        let mut paged = Vec::new();
        let mut pages = 0;
        while let Some(page_options) = options {
            let page = store.read(&Query::all(), page_options).await?;
            assert!(page.len() <= 4, "the limit still ends a page");
            options = page_options.next_page(&page);
            paged.extend(page);
            pages += 1;
            assert!(pages <= 20, "paging must end");
        }
        assert_eq!(
            paged.iter().map(|e| e.id).collect::<Vec<_>>(),
            start.iter().map(|e| e.id).collect::<Vec<_>>(),
            "pages return every event once, in order"
        );
    }
    let tiny = store.read(&Query::all(), ReadOptions::forwards().max_bytes(1)).await?;
    assert_eq!(tiny.len(), 1, "a page holds at least one event");
    let none = store.read(&Query::all(), ReadOptions::forwards().max_bytes(0)).await?;
    assert_eq!(none.len(), 1, "even a budget of 0 bytes: paging must move on");
    let all = ReadOptions::forwards().max_bytes(usize::MAX);
    assert_eq!(
        all.next_page(&store.read(&Query::all(), all).await?),
        None,
        "a complete read says so"
    );
    Ok(())
}
