//! Every command through the real binary on SQLite files.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{
    CORRUPTION, Scratch, TestResult, append_lines, assert_corruption_reported, export_lines, factos, fails, interrupt,
    ok, run, start,
};

fn migrated(scratch: &Scratch, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let db = scratch.db(name);
    ok(&["migrate", "--database", &db], "")?;
    Ok(db)
}

#[test]
fn migrate_creates_the_schema_then_has_nothing_to_do() -> TestResult {
    let scratch = Scratch::new()?;
    let db = scratch.db("events.db");
    let version = factos_sqlite::schema::SCHEMA_VERSION;
    assert!(ok(&["migrate", "--database", &db], "")?.contains(&format!("created the schema (version {version})")));
    let again = ok(&["migrate", "--json", "--database", &db], "")?;
    let again: serde_json::Value = serde_json::from_str(&again)?;
    assert_eq!(
        again,
        serde_json::json!({"found": version, "version": version, "changed": false})
    );
    let url = format!("sqlite:{db}");
    assert!(ok(&["migrate", "--database-url", &url], "")?.contains("nothing to do"));
    let from_env = factos().args(["migrate"]).env("FACTOS_DATABASE_URL", &url).output()?;
    assert!(String::from_utf8(from_env.stdout)?.contains("nothing to do"));
    let flag_wins = factos()
        .args(["migrate", "--database", &db])
        .env("FACTOS_DATABASE_URL", "postgres://nobody@127.0.0.1:1/x")
        .output()?;
    assert!(
        String::from_utf8(flag_wins.stdout)?.contains("nothing to do"),
        "--database wins over the environment"
    );
    Ok(())
}

#[test]
fn commands_on_a_missing_or_unsupported_store_fail_with_one_clear_line() -> TestResult {
    let scratch = Scratch::new()?;
    let missing = scratch.db("missing.db");
    assert!(fails(&["read", "--database", &missing], "")?.contains("no database at"));
    assert!(!scratch.path("missing.db").exists(), "reading created no file");
    assert!(fails(&["stats", "--database-url", "mysql://x/y"], "")?.contains("unsupported store URL scheme"));
    let output = run(&["stats"], "")?;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr)?.contains("no store given"));
    Ok(())
}

#[test]
fn a_database_of_a_newer_schema_is_refused_without_touching_it() -> TestResult {
    let scratch = Scratch::new()?;
    let db = migrated(&scratch, "events.db")?;
    rusqlite::Connection::open(&db)?.pragma_update(None, "user_version", 99)?;
    for command in ["read", "stats", "check", "export", "migrate"] {
        let error = fails(&[command, "--database", &db], "")?;
        assert!(error.contains("99"), "{command}: {error}");
    }
    let version: i64 = rusqlite::Connection::open(&db)?.pragma_query_value(None, "user_version", |r| r.get(0))?;
    assert_eq!(version, 99);
    Ok(())
}

#[test]
fn appended_events_are_read_by_query_by_stream_and_counted() -> TestResult {
    let scratch = Scratch::new()?;
    let db = migrated(&scratch, "events.db")?;
    let appended = ok(
        &["append", "--json", "--database", &db, "--stream", "orders"],
        &append_lines(6),
    )?;
    let appended: serde_json::Value = serde_json::from_str(&appended)?;
    assert_eq!(appended["positions"], serde_json::json!([1, 2, 3, 4, 5, 6]));
    assert_eq!(appended["revision"], 5);

    // Shipped OR (Placed AND order:1): positions 1, 4 (Shipped) and 2 (Placed, order:1).
    let read = ok(
        &[
            "read",
            "--json",
            "--database",
            &db,
            "--type",
            "Shipped",
            "--item",
            "--type",
            "Placed",
            "--tag",
            "order:1",
        ],
        "",
    )?;
    let positions: Vec<u64> = read
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).map(|r| r["position"].as_u64().unwrap_or(0)))
        .collect::<Result<_, _>>()?;
    assert_eq!(positions, vec![1, 2, 4]);

    let newest = ok(
        &["read", "--json", "--database", &db, "--backwards", "--limit", "2"],
        "",
    )?;
    assert_eq!(newest.lines().count(), 2);
    assert!(newest.starts_with("{\"position\":6,"), "{newest}");

    let table = ok(&["read", "--database", &db, "--from", "5"], "")?;
    assert!(table.contains("{\"i\":4}") && table.contains("2 events"), "{table}");

    let stream = ok(&["stream", "orders", "--json", "--database", &db, "--from", "4"], "")?;
    assert_eq!(stream.lines().count(), 2);
    assert!(stream.contains("\"revision\":5"));

    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", "--json", "--database", &db], "")?)?;
    assert_eq!(stats["events"], 6);
    assert_eq!(stats["streams"], 1);
    assert_eq!(
        stats["eventTypes"][0],
        serde_json::json!({"name": "Placed", "events": 4})
    );
    assert_eq!(stats["topTags"][0], serde_json::json!({"name": "batch:x", "events": 6}));
    assert_eq!(stats["last"]["position"], 6);
    assert!(stats["sizeBytes"].as_u64().unwrap_or(0) > 0);
    assert!(ok(&["stats", "--database", &db], "")?.contains("size on disk"));
    Ok(())
}

#[test]
fn append_checks_every_line_before_writing_and_names_the_bad_one() -> TestResult {
    let scratch = Scratch::new()?;
    let db = migrated(&scratch, "events.db")?;
    let mut lines = append_lines(2);
    lines.push_str("{\"type\":\"Placed\",\"tags\":[\"\"]}\n");
    let error = fails(&["append", "--database", &db, "--stream", "orders"], &lines)?;
    assert!(error.contains("line 3"), "{error}");
    let error = fails(
        &["append", "--database", &db, "--stream", "orders"],
        "{\"type\":\"A\"}\nnot json\n",
    )?;
    assert!(error.contains("line 2"), "{error}");
    let id = "\"id\":\"6f1b9a52-0d6e-4a4b-9a5e-2c1d7f3e8a90\"";
    let twice = format!("{{\"type\":\"A\",{id}}}\n{{\"type\":\"B\",{id}}}\n");
    assert!(fails(&["append", "--database", &db, "--stream", "s"], &twice)?.contains("line 2"));
    assert_eq!(
        ok(&["read", "--json", "--database", &db], "")?,
        "",
        "nothing was written"
    );
    Ok(())
}

#[test]
fn append_honours_expected_revisions_and_conditions() -> TestResult {
    let scratch = Scratch::new()?;
    let db = migrated(&scratch, "events.db")?;
    let one = "{\"type\":\"Sold\",\"tags\":[\"course:c1\"],\"data\":1}\n";
    ok(
        &["append", "--database", &db, "--stream", "c1", "--expect", "no-stream"],
        one,
    )?;
    let error = fails(
        &["append", "--database", &db, "--stream", "c1", "--expect", "no-stream"],
        one,
    )?;
    assert!(error.contains("refused") && error.contains("c1"), "{error}");
    ok(&["append", "--database", &db, "--stream", "c1", "--expect", "0"], one)?;

    let condition = ["--fail-if-match", "--tag", "course:c1", "--after"];
    let mut args = vec!["append", "--database", &db, "--stream", "c2"];
    args.extend(condition);
    args.push("1");
    let error = fails(&args, one)?;
    assert!(
        error.contains("append condition failed") && error.contains("position 2"),
        "{error}"
    );
    args.pop();
    args.push("2");
    assert!(ok(&args, one)?.contains("at position 3"));
    let error = fails(&["append", "--database", &db, "--stream", "c3", "--tag", "x"], one)?;
    assert!(error.contains("--fail-if-match"), "{error}");
    Ok(())
}

#[test]
fn export_then_import_then_export_gives_identical_bytes() -> TestResult {
    let scratch = Scratch::new()?;
    let source = migrated(&scratch, "source.db")?;
    ok(&["append", "--database", &source, "--stream", "a"], &append_lines(30))?;
    let binary = "{\"type\":\"Blob\",\"dataBase64\":\"AP8Q\",\"version\":3,\"metadata\":{\"k\":\"v\\n✓\"}}\n";
    ok(&["append", "--database", &source, "--stream", "b"], binary)?;
    let pretty = "{\"type\":\"Pretty\",\"data\":{\"b\": 1,  \"a\": [1, 2]}}\n";
    ok(&["append", "--database", &source, "--stream", "b"], pretty)?;
    let exported = ok(&["export", "--database", &source], "")?;
    assert_eq!(exported.lines().count(), 32);
    assert!(
        exported.contains("\"data\":{\"b\": 1,  \"a\": [1, 2]}"),
        "JSON payloads byte for byte"
    );

    let file = scratch.path("export.jsonl");
    ok(
        &["export", "--database", &source, "--output", &file.display().to_string()],
        "",
    )?;
    assert_eq!(std::fs::read_to_string(&file)?, exported);

    let target = scratch.db("target.db");
    let imported = ok(
        &["import", "--database", &target, "--input", &file.display().to_string()],
        "",
    )?;
    assert!(imported.contains("imported 32 events"), "{imported}");
    assert_eq!(ok(&["export", "--database", &target], "")?, exported);
    Ok(())
}

#[test]
fn import_refuses_a_store_holding_other_events_unless_appending_after_them() -> TestResult {
    let scratch = Scratch::new()?;
    let all = export_lines(10, 3);
    let lines: Vec<&str> = all.lines().collect();
    let (first, rest) = lines.split_at(6);
    let target = migrated(&scratch, "target.db")?;
    ok(
        &["append", "--database", &target, "--stream", "other"],
        &append_lines(1),
    )?;
    let error = fails(&["import", "--database", &target], &all)?;
    assert!(error.contains("--append"), "{error}");

    let fresh = scratch.db("fresh.db");
    ok(&["import", "--database", &fresh], &(first.join("\n") + "\n"))?;
    let error = fails(&["import", "--database", &fresh, "--append"], &all)?;
    assert!(
        error.contains("position 1"),
        "the first record is not after the store's last: {error}"
    );
    assert!(ok(&["import", "--database", &fresh, "--append"], &(rest.join("\n") + "\n"))?.contains("imported 4"));
    assert_eq!(ok(&["export", "--database", &fresh], "")?, all);
    Ok(())
}

#[test]
fn an_interrupted_import_is_completed_by_running_it_again() -> TestResult {
    let scratch = Scratch::new()?;
    let all = export_lines(60_000, 7);
    let file = scratch.path("all.jsonl");
    std::fs::write(&file, &all)?;
    let file = file.display().to_string();

    // A cut-off input (as a crash mid-file would leave) then the whole file.
    let partial: String = all.lines().take(2_500).map(|l| format!("{l}\n")).collect();
    let target = scratch.db("target.db");
    ok(&["import", "--database", &target], &partial)?;

    // Ctrl-C while the rest is being imported.
    let child = factos()
        .args(["import", "--database", &target, "--input", &file])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(700));
    interrupt(&child)?;
    let output = child.wait_with_output()?;
    let stderr = String::from_utf8(output.stderr)?;
    // Importing 60,000 events takes seconds in a debug build: the signal
    // arrives mid-way, and the import stops after the batch in flight.
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");

    let resumed = ok(&["import", "--json", "--database", &target, "--input", &file], "")?;
    let resumed: serde_json::Value = serde_json::from_str(&resumed)?;
    assert_eq!(
        resumed["imported"].as_u64().unwrap_or(0) + resumed["skipped"].as_u64().unwrap_or(0),
        60_000,
        "{resumed}"
    );
    assert_eq!(ok(&["export", "--database", &target], "")?, all);
    assert!(ok(&["check", "--database", &target], "")?.contains("checked 60000 events: no problems found"));
    Ok(())
}

#[test]
fn import_names_the_line_of_a_malformed_record() -> TestResult {
    let scratch = Scratch::new()?;
    let target = scratch.db("target.db");
    let mut lines = export_lines(3, 1);
    lines.push_str("{\"position\":4}\n");
    let error = fails(&["import", "--database", &target], &lines)?;
    assert!(error.contains("line 4"), "{error}");
    let error = fails(&["import", "--database", &target], "{\"position\": \"one\"}\n")?;
    assert!(error.contains("line 1"), "{error}");
    Ok(())
}

#[test]
fn retag_adds_tags_from_payload_fields_that_reads_and_check_then_see() -> TestResult {
    let scratch = Scratch::new()?;
    let db = migrated(&scratch, "events.db")?;
    // `i` from 0 to 5; Shipped at 0 and 3, Placed at the others.
    ok(&["append", "--database", &db, "--stream", "orders"], &append_lines(6))?;
    let bad = fails(
        &["retag", "--database", &db, "--name", "n", "--tag", "n:{/missing}"],
        "",
    )?;
    assert!(bad.contains("position 1") && bad.contains("/missing"), "{bad}");

    let retag = |name: &str| {
        let args = [
            "retag",
            "--json",
            "--database",
            &db,
            "--name",
            name,
            "--type",
            "Placed",
            "--tag",
            "i:{/i}",
            "--batch",
            "4",
        ];
        ok(&args, "").map(|out| serde_json::from_str::<serde_json::Value>(&out))
    };
    assert_eq!(
        retag("i")??,
        serde_json::json!({"examined": 6, "staged": 4, "added": 4})
    );
    let read = ok(&["read", "--json", "--database", &db, "--tag", "i:4"], "")?;
    let found: serde_json::Value = serde_json::from_str(read.trim())?;
    assert_eq!(found["position"], 5);
    assert_eq!(found["tags"], serde_json::json!(["batch:x", "i:4", "order:4"]));
    let shipped = ok(&["read", "--json", "--database", &db, "--tag", "i:3"], "")?;
    assert!(shipped.trim().is_empty(), "Shipped was skipped: {shipped}");
    assert!(ok(&["check", "--database", &db], "")?.contains("checked 6 events: no problems found"));
    // A second run finds nothing left to do.
    assert_eq!(
        retag("i")??,
        serde_json::json!({"examined": 0, "staged": 0, "added": 0})
    );

    // An added tag whose index row is lost is a problem the check reports.
    rusqlite::Connection::open(&db)?.execute_batch("DELETE FROM event_tags WHERE tag = 'i:4'")?;
    let report = String::from_utf8(run(&["check", "--database", &db], "")?.stdout)?;
    assert!(
        report.contains("position 5: tag \"i:4\" has no row in the tag index"),
        "{report}"
    );
    Ok(())
}

#[test]
fn a_retag_killed_mid_way_is_completed_by_running_it_again() -> TestResult {
    let scratch = Scratch::new()?;
    let db = scratch.db("events.db");
    ok(&["import", "--database", &db], &export_lines(20_000, 7))?;
    let args = [
        "retag",
        "--json",
        "--database",
        &db,
        "--name",
        "n",
        "--tag",
        "n:{/n}",
        "--skip-missing",
        "--batch",
        "50",
    ];
    let mut child = factos()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Kill it once it has staged some batches.
    let conn = rusqlite::Connection::open(&db)?;
    let staged = || {
        conn.query_row("SELECT count(*) FROM factos_staged_tags", [], |row| {
            row.get::<_, i64>(0)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while staged().unwrap_or(0) < 500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill()?;
    assert!(
        !child.wait()?.success(),
        "the retag finished before it was killed: make the log longer"
    );
    let added: i64 = conn.query_row("SELECT count(*) FROM factos_added_tags", [], |row| row.get(0))?;
    assert!(staged()? >= 500 && added == 0, "killed while staging");

    let resumed: serde_json::Value = serde_json::from_str(&ok(&args, "")?)?;
    assert!(
        resumed["examined"].as_u64() < Some(20_000),
        "resumed from its checkpoint: {resumed}"
    );
    // Every fourth payload is binary: 15,000 events have the field.
    assert_eq!(resumed["added"], 15_000, "{resumed}");
    assert!(ok(&["check", "--database", &db], "")?.contains("checked 20000 events: no problems found"));
    let found = ok(&["read", "--json", "--database", &db, "--tag", "n:19999"], "")?;
    assert_eq!(found.lines().count(), 1);
    Ok(())
}

#[test]
fn check_passes_a_healthy_store_and_reports_each_corrupted_row() -> TestResult {
    let scratch = Scratch::new()?;
    let db = scratch.db("events.db");
    ok(&["import", "--database", &db], &export_lines(40, 4))?;
    assert!(ok(&["check", "--database", &db], "")?.contains("checked 40 events: no problems found"));

    rusqlite::Connection::open(&db)?.execute_batch(CORRUPTION)?;
    assert_corruption_reported(&run(&["check", "--database", &db], "")?)?;

    let json = run(&["check", "--json", "--database", &db], "")?;
    let lines: Vec<serde_json::Value> = String::from_utf8(json.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.last(), Some(&serde_json::json!({"events": 39, "problems": 3})));
    Ok(())
}

#[test]
fn copy_between_sqlite_files_verifies_and_resumes() -> TestResult {
    let scratch = Scratch::new()?;
    let source = scratch.db("source.db");
    ok(&["import", "--database", &source], &export_lines(2_345, 9))?;
    let target = format!("sqlite:{}", scratch.db("target.db"));
    let copied = ok(&["copy", "--from", &source, "--to", &target], "")?;
    assert!(
        copied.contains("copied 2345 events") && copied.contains("verified: 2345 events"),
        "{copied}"
    );
    let again: serde_json::Value =
        serde_json::from_str(&ok(&["copy", "--json", "--from", &source, "--to", &target], "")?)?;
    assert_eq!(
        (again["copied"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(2345))
    );
    assert_eq!(again["verified"], true);
    let same = run(&["copy", "--from", &source, "--to", &source], "")?;
    assert_eq!(same.status.code(), Some(2));
    assert!(String::from_utf8(same.stderr)?.contains("the same store"));
    Ok(())
}

#[test]
fn tail_prints_events_as_they_commit_until_interrupted() -> TestResult {
    let scratch = Scratch::new()?;
    let db = migrated(&scratch, "events.db")?;
    ok(
        &["append", "--database", &db, "--stream", "old"],
        "{\"type\":\"Sold\",\"data\":0}\n",
    )?;
    let mut tail = start(&["tail", "--json", "--database", &db, "--type", "Sold"])?;
    std::thread::sleep(Duration::from_millis(500));
    ok(
        &["append", "--database", &db, "--stream", "new"],
        "{\"type\":\"Other\"}\n{\"type\":\"Sold\",\"data\":1}\n",
    )?;
    let line = tail.lines.recv_timeout(Duration::from_secs(10))?;
    let record: serde_json::Value = serde_json::from_str(&line)?;
    assert_eq!(
        (record["position"].as_u64(), record["data"].as_u64()),
        (Some(3), Some(1)),
        "{line}"
    );
    assert_eq!(record["cursor"], "0:3");
    interrupt(&tail.child)?;
    let started = Instant::now();
    let status = tail.child.wait()?;
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        tail.lines.try_recv().is_err(),
        "the old event and the other type were not printed"
    );

    let mut history = start(&["tail", "--json", "--database", &db, "--from-start", "--type", "Sold"])?;
    std::thread::sleep(Duration::from_millis(800));
    interrupt(&history.child)?;
    assert!(history.child.wait()?.success());
    assert_eq!(history.lines.iter().count(), 2, "both sales, then the end of output");
    Ok(())
}

#[test]
fn completions_are_printed_for_each_shell() -> TestResult {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completions", shell], "")?;
        assert!(script.contains("factos") && script.contains("export"), "{shell}");
    }
    Ok(())
}

#[test]
fn bench_measures_a_scratch_store_and_refuses_a_used_one() -> TestResult {
    let scratch = Scratch::new()?;
    // A new file: bench creates the store, as import and copy do.
    let db = scratch.db("bench.db");
    let report = ok(
        &[
            "bench",
            "--json",
            "--database",
            &db,
            "--seconds",
            "0.3",
            "--writers",
            "2",
        ],
        "",
    )?;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&report)?;
    assert_eq!(rows.len(), 5);
    for row in &rows {
        assert!(row["operations"].as_u64().unwrap_or(0) > 0, "{row}");
        assert_eq!(row["failed"], 0, "{row}");
    }
    assert!(fails(&["bench", "--database", &db], "")?.contains("--force"));
    assert!(ok(&["check", "--database", &db], "")?.contains("no problems found"));
    Ok(())
}

#[test]
fn reading_commands_work_on_a_copy_the_user_cannot_write() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new()?;
    let db = migrated(&scratch, "live.db")?;
    ok(&["append", "--database", &db, "--stream", "orders"], &append_lines(20))?;
    // The backup: the database file alone, in a directory nobody may
    // write (no -wal or -shm beside it, and none can be created).
    let backup_dir = scratch.path("backup");
    std::fs::create_dir(&backup_dir)?;
    let backup = backup_dir.join("copy.db");
    // A consistent backup, as `sqlite3 .backup` makes one: one file.
    rusqlite::Connection::open(&db)?.execute("VACUUM INTO ?1", [backup.display().to_string()])?;
    std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o444))?;
    std::fs::set_permissions(&backup_dir, std::fs::Permissions::from_mode(0o555))?;
    std::fs::set_permissions(scratch.dir(), std::fs::Permissions::from_mode(0o755))?;
    // Root may write anything: run the tool as `nobody` then.
    let as_root = std::process::Command::new("id").arg("-u").output()?.stdout == b"0\n";
    let backup_arg = backup.display().to_string();
    let reading: [&[&str]; 6] = [
        &["stats", "--json"],
        &["read", "--json"],
        &["stream", "orders", "--json"],
        &["export"],
        &["check"],
        &["read", "--type", "Placed"],
    ];
    for command in reading {
        let mut run = match as_root {
            true => {
                let mut run = std::process::Command::new("setpriv");
                run.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                    .arg(support::factos().get_program());
                run
            }
            false => std::process::Command::new(support::factos().get_program()),
        };
        let output = run
            .args(command)
            .args(["--database", &backup_arg])
            .env_remove("FACTOS_DATABASE_URL")
            .stdin(Stdio::null())
            .output()?;
        assert!(
            output.status.success(),
            "factos {command:?} on a read-only copy: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let names: Vec<_> = std::fs::read_dir(&backup_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "nothing was created beside the copy: {names:?}");
    // Let the scratch directory be removed.
    std::fs::set_permissions(&backup_dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[test]
fn read_pages_with_a_default_limit_and_says_how_to_get_more() -> TestResult {
    let scratch = Scratch::new()?;
    let db = migrated(&scratch, "paged.db")?;
    ok(
        &["append", "--database", &db, "--stream", "orders"],
        &append_lines(1_200),
    )?;
    let output = run(&["read", "--database", &db], "")?;
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout)?;
    let stderr = String::from_utf8(output.stderr)?;
    assert!(
        table.trim_end().ends_with("1000 events"),
        "{}",
        &table[table.len().saturating_sub(200)..]
    );
    assert!(stderr.contains("--from 1001") && stderr.contains("--all"), "{stderr}");
    let everything = ok(&["read", "--json", "--all", "--database", &db], "")?;
    assert_eq!(everything.lines().count(), 1_200);
    let rest = run(&["read", "--json", "--from", "1001", "--database", &db], "")?;
    assert_eq!(String::from_utf8(rest.stdout)?.lines().count(), 200);
    assert!(
        String::from_utf8(rest.stderr)?.is_empty(),
        "a complete read says nothing more"
    );
    Ok(())
}

#[test]
fn small_things_say_what_they_mean() -> TestResult {
    let scratch = Scratch::new()?;
    let db = migrated(&scratch, "small.db")?;
    // A stream that does not exist is an error, not an empty table.
    assert!(fails(&["stream", "no-such-stream", "--database", &db], "")?.contains("does not exist"));
    // A bad --expect is a usage error (exit 2), like every other one.
    let bad = run(
        &["append", "--database", &db, "--stream", "s", "--expect", "banana"],
        "",
    )?;
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    // One event is one event; an empty payload says so.
    let appended = ok(
        &["append", "--database", &db, "--stream", "s"],
        "{\"type\": \"Empty\"}\n",
    )?;
    assert!(appended.contains("appended 1 event "), "{appended}");
    let table = ok(&["stream", "s", "--database", &db], "")?;
    assert!(table.contains("(empty)") && !table.contains("base64:"), "{table}");
    assert!(table.trim_end().ends_with("1 event"), "{table}");
    Ok(())
}
