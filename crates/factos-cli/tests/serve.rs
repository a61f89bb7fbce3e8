//! `factos serve` through real HTTP clients: the API's answers, its
//! refusals, and a capacity race that never oversells.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use serde_json::{Value, json};
use support::{Scratch, Server, TestResult, postgres_store, refs, sqlite_store};

fn encode(value: &Value) -> String {
    value
        .to_string()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Every page of the read at `path`, following each page's `Link` to the
/// next (at most 20 pages).
async fn pages(
    server: &Server,
    path: &str,
    token: Option<&str>,
) -> Result<Vec<Vec<Value>>, Box<dyn std::error::Error>> {
    let http = reqwest::Client::new();
    let mut url = server.url(path);
    let mut pages = Vec::new();
    for _ in 0..20 {
        let mut request = http.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        assert_eq!(response.status(), 200, "{url}");
        let next = match response.headers().get("link") {
            Some(link) => Some(link.to_str()?.to_owned()),
            None => None,
        };
        pages.push(response.json().await?);
        let Some(link) = next else { return Ok(pages) };
        let path = link
            .strip_prefix('<')
            .and_then(|rest| rest.split_once(">; rel=\"next\""))
            .map(|(path, _)| path)
            .ok_or_else(|| format!("malformed Link header {link:?}"))?;
        url = server.url(path);
    }
    Err(format!("more than 20 pages from {path}").into())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_is_read_a_page_at_a_time() -> TestResult {
    let scratch = Scratch::new()?;
    let store = sqlite_store(&scratch)?;
    let server = Server::start(&refs(&store), &["--max-read", "3", "--max-read-bytes", "600"])?;
    let http = reqwest::Client::new();
    for i in 0..10 {
        // Revision 7 alone is over the byte budget.
        let pad = if i == 7 { "x".repeat(1000) } else { String::new() };
        for (stream, kind) in [("seats", "Sold"), ("other", "Other")] {
            let body = json!({"events": [{"type": kind, "data": {"i": i, "pad": pad}}], "stream": stream});
            let appended = http.post(server.url("/append")).json(&body).send().await?;
            assert_eq!(appended.status(), 200);
        }
    }
    let pages = pages(&server, "/read?stream=seats", None).await?;
    let revisions: Vec<Vec<u64>> = pages
        .iter()
        .map(|page| page.iter().filter_map(|record| record["revision"].as_u64()).collect())
        .collect();
    assert_eq!(
        revisions,
        vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7], vec![8, 9]],
        "pages of --max-read events, one ended by --max-read-bytes at the large event"
    );
    assert!(pages.iter().flatten().all(|record| record["stream"] == "seats"));

    let from_eight: Vec<Value> = http
        .get(server.url("/read?stream=seats&revision=8"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        from_eight.iter().map(|r| r["revision"].clone()).collect::<Vec<_>>(),
        vec![json!(8), json!(9)]
    );
    let past_the_end: Vec<Value> = http
        .get(server.url("/read?stream=seats&revision=10"))
        .send()
        .await?
        .json()
        .await?;
    assert!(past_the_end.is_empty());
    for (path, problem) in [
        ("/read?stream=", "stream"),
        ("/read?stream=seats&revision=x", "revision"),
    ] {
        let refused = http.get(server.url(path)).send().await?;
        assert_eq!(refused.status(), 400, "{path}");
        let error: Value = refused.json().await?;
        assert!(
            error["error"].as_str().unwrap_or("").contains(problem),
            "{path}: {error}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_and_refuses_in_json() -> TestResult {
    let scratch = Scratch::new()?;
    let store = sqlite_store(&scratch)?;
    let server = Server::start(
        &refs(&store),
        &["--token", "s3cret", "--max-body", "2048", "--max-read", "3"],
    )?;
    let http = reqwest::Client::new();
    let authed = |request: reqwest::RequestBuilder| request.bearer_auth("s3cret");

    let health = http.get(server.url("/health")).send().await?;
    assert_eq!(health.status(), 200, "health needs no token");
    let denied = http.get(server.url("/read")).send().await?;
    assert_eq!(denied.status(), 401);
    assert!(denied.json::<Value>().await?["error"].is_string());
    let wrong = http.get(server.url("/read")).bearer_auth("guess").send().await?;
    assert_eq!(wrong.status(), 401);

    let body = json!({
        "events": [
            {"type": "Sold", "tags": ["course:c1"], "data": {"seat": 1}},
            {"type": "Sold", "tags": ["course:c2"], "dataBase64": "AAE="},
        ],
        "stream": "sales",
        "expected": "no-stream",
    });
    let appended: Value = authed(http.post(server.url("/append")).json(&body))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(appended["positions"], json!([1, 2]));
    assert_eq!(appended["appendConditionFailed"], false);
    assert!(appended["durationInMicroseconds"].as_u64().is_some());

    let again = authed(http.post(server.url("/append")).json(&body)).send().await?;
    assert_eq!(again.status(), 409, "a second no-stream append to the stream");

    let query = json!({"items": [{"types": ["Sold"], "tags": ["course:c2"]}]});
    let read: Vec<Value> = authed(http.get(server.url(&format!("/read?query={}", encode(&query)))))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(read.len(), 1);
    assert_eq!(
        (&read[0]["type"], &read[0]["position"], &read[0]["dataBase64"]),
        (&json!("Sold"), &json!(2), &json!("AAE="))
    );
    assert_eq!(read[0]["stream"], "sales");

    for _ in 0..3 {
        authed(
            http.post(server.url("/append"))
                .json(&json!({"events": [{"type": "Filler"}]})),
        )
        .send()
        .await?;
    }
    let options = json!({"backwards": true, "limit": 100});
    let page: Vec<Value> = authed(http.get(server.url(&format!("/read?options={}", encode(&options)))))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(page.len(), 3, "reads are bounded by --max-read");
    assert_eq!(page[0]["position"], 5);
    // A bounded page says where to continue; the last page says nothing.
    let pages = pages(&server, &format!("/read?options={}", encode(&options)), Some("s3cret")).await?;
    let positions: Vec<&Value> = pages.iter().flatten().map(|record| &record["position"]).collect();
    assert_eq!(positions, vec![&json!(5), &json!(4), &json!(3), &json!(2), &json!(1)]);

    for (path, problem) in [
        ("/read?query=nope", "query"),
        ("/read?query=%7B%22items%22%3A%5B%7B%22kinds%22%3A1%7D%5D%7D", "kinds"),
        ("/read?options=%7B%22limit%22%3A-1%7D", "options"),
        ("/subscribe?after=later", "after"),
    ] {
        let refused = authed(http.get(server.url(path))).send().await?;
        assert_eq!(refused.status(), 400, "{path}");
        let error: Value = refused.json().await?;
        assert!(
            error["error"].as_str().unwrap_or("").contains(problem),
            "{path}: {error}"
        );
    }
    for (body, problem) in [
        ("{\"events\": [", "EOF"),
        ("{\"events\": []}", "at least one event"),
        ("{\"events\": [{\"type\": \"\"}]}", "events[0]"),
        ("{\"events\": [{\"type\": \"A\", \"tags\": [\"\\u0001\"]}]}", "tag"),
        ("{\"events\": [{\"type\": \"A\"}], \"expected\": \"soon\"}", "soon"),
        ("[1, 2]", "invalid type"),
    ] {
        let refused = authed(http.post(server.url("/append")).body(body)).send().await?;
        assert_eq!(refused.status(), 400, "{body}");
        let error: Value = refused.json().await?;
        assert!(
            error["error"].as_str().unwrap_or("").contains(problem),
            "{body}: {error}"
        );
    }
    let huge = json!({"events": [{"type": "A", "data": "x".repeat(4096)}]});
    let refused = authed(http.post(server.url("/append")).json(&huge)).send().await?;
    assert_eq!(refused.status(), 413);
    assert!(refused.json::<Value>().await?["error"].is_string());
    let missing = authed(http.get(server.url("/nowhere"))).send().await?;
    assert_eq!(missing.status(), 404);
    assert!(missing.json::<Value>().await?["error"].is_string());
    let wrong_method = authed(http.delete(server.url("/read"))).send().await?;
    assert_eq!(wrong_method.status(), 405);
    assert!(wrong_method.json::<Value>().await?["error"].is_string());
    let long_target = authed(http.get(server.url(&format!("/read?query={}", "x".repeat(50_000)))))
        .send()
        .await?;
    assert_eq!(long_target.status(), 414);
    assert!(long_target.json::<Value>().await?["error"].is_string());
    let large_headers = authed(http.get(server.url("/health")).header("x-padding", "p".repeat(100_000)))
        .send()
        .await?;
    assert_eq!(large_headers.status(), 431);
    assert!(large_headers.json::<Value>().await?["error"].is_string());
    // A query over the store's limits is the client's doing: a 4xx naming
    // the limit, never a 503.
    let items: Vec<Value> = (0..10_001).map(|i| json!({"tags": [format!("t{i}")]})).collect();
    let roomy = Server::start(&refs(&store), &["--token", "s3cret"])?;
    let too_large = authed(http.post(roomy.url("/append")).json(&json!({
        "events": [{"type": "A"}],
        "condition": {"failIfEventsMatch": {"items": items}}
    })))
    .send()
    .await?;
    assert_eq!(too_large.status(), 400);
    let error: Value = too_large.json().await?;
    assert!(
        error["error"].as_str().unwrap_or("").contains("items per query"),
        "{error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribers_receive_new_events_as_server_sent_events() -> TestResult {
    let scratch = Scratch::new()?;
    let store = sqlite_store(&scratch)?;
    let server = Server::start(&refs(&store), &[])?;
    let http = reqwest::Client::new();
    let query = json!({"items": [{"types": ["Sold"]}]});
    let mut events = http
        .get(server.url(&format!("/subscribe?query={}", encode(&query))))
        .send()
        .await?;
    assert_eq!(events.status(), 200);
    let append = json!({"events": [{"type": "Other"}, {"type": "Sold", "data": {"seat": 7}}]});
    http.post(server.url("/append")).json(&append).send().await?;
    let mut received = String::new();
    while !received.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), events.chunk())
            .await??
            .ok_or("the stream ended")?;
        received.push_str(std::str::from_utf8(&chunk)?);
        received = received.trim_start_matches(":\n\n").to_owned();
    }
    assert!(received.contains("event: record"), "{received}");
    assert!(received.contains("id: 0:2"), "{received}");
    assert!(received.contains("\"data\":{\"seat\":7}"), "{received}");
    Ok(())
}

/// Clients that each read the course, and append a sale only if it is not
/// full, with the condition that nothing matching arrived since their read.
async fn capacity_race(server: &Server, clients: usize, capacity: usize) -> Result<(), Box<dyn std::error::Error>> {
    let query = json!({"items": [{"types": ["Sold"], "tags": ["course:c1"]}]});
    let read_url = server.url(&format!("/read?query={}", encode(&query)));
    let append_url = server.url("/append");
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (read_url, append_url, query) = (read_url.clone(), append_url.clone(), query.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut sold = 0usize;
                loop {
                    let seen: Vec<Value> = http.get(&read_url).send().await?.json().await?;
                    if seen.len() >= capacity {
                        return Ok::<_, reqwest::Error>(sold);
                    }
                    let after = seen.last().map(|e| e["position"].clone()).unwrap_or(Value::Null);
                    let mut condition = json!({"failIfEventsMatch": query});
                    if !after.is_null() {
                        condition["after"] = after;
                    }
                    let body = json!({
                        "events": [{"type": "Sold", "tags": ["course:c1", format!("client:{client}")], "data": {"client": client}}],
                        "condition": condition,
                    });
                    let answer: Value = http.post(&append_url).json(&body).send().await?.json().await?;
                    if answer["appendConditionFailed"] == false {
                        sold += 1;
                    }
                }
            })
        })
        .collect();
    let mut sold = 0;
    for task in tasks {
        sold += task.await??;
    }
    let http = reqwest::Client::new();
    let stored: Vec<Value> = http.get(&read_url).send().await?.json().await?;
    assert_eq!(sold, capacity, "sales acknowledged");
    assert_eq!(stored.len(), capacity, "sales stored");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_capacity_race_through_the_server_never_oversells_on_sqlite() -> TestResult {
    let scratch = Scratch::new()?;
    let store = sqlite_store(&scratch)?;
    let server = Server::start(&refs(&store), &[])?;
    capacity_race(&server, 16, 25).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_capacity_race_through_the_server_never_oversells_on_postgres() -> TestResult {
    let store = postgres_store()?;
    let server = Server::start(&refs(&store), &[])?;
    capacity_race(&server, 16, 25).await?;
    Ok(())
}

#[test]
fn listen_takes_a_host_name_and_an_empty_token_is_refused_at_start() -> TestResult {
    let scratch = Scratch::new()?;
    let store = sqlite_store(&scratch)?;
    let mut child = support::factos()
        .arg("serve")
        .args(refs(&store))
        .args(["--listen", "localhost:0"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line)?;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("listening on http://"), "{line:?}");

    for (flag, env) in [(Some(""), None), (None, Some("")), (Some("  "), None)] {
        let mut command = support::factos();
        command
            .arg("serve")
            .args(refs(&store))
            .args(["--listen", "127.0.0.1:0"]);
        if let Some(token) = flag {
            command.args(["--token", token]);
        }
        if let Some(token) = env {
            command.env("FACTOS_TOKEN", token);
        }
        let output = command.output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "an empty token must be refused: {stderr}"
        );
        assert!(stderr.contains("token is empty"), "{stderr}");
    }
    Ok(())
}

/// Waits up to `limit` for `child` to exit; its exit code, or `None`.
fn exit_within(child: &mut Child, limit: std::time::Duration) -> Result<Option<i32>, std::io::Error> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status.code());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(None)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_and_sigterm_end_event_streams_and_half_sent_requests_and_exit_0() -> TestResult {
    use std::io::Write;
    use tokio::io::AsyncReadExt;
    let scratch = Scratch::new()?;
    let store = sqlite_store(&scratch)?;
    for signal in ["-INT", "-TERM"] {
        // A long header timeout: the shutdown bound alone must end the
        // half-sent request.
        let mut server = Server::start(&refs(&store), &["--header-timeout", "60", "--shutdown-timeout", "2"])?;
        let http = reqwest::Client::new();
        let mut stream = http.get(server.url("/subscribe")).send().await?;
        assert_eq!(stream.status(), 200);
        let address = server.base.trim_start_matches("http://").to_owned();
        let mut half = std::net::TcpStream::connect(&address)?;
        half.write_all(b"GET /health HTTP/1.1\r\nHost: factos\r\n")?;
        let mut idle = tokio::net::TcpStream::connect(&address).await?;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;

        std::process::Command::new("kill")
            .args([signal, &server.child.id().to_string()])
            .status()?;
        let code = exit_within(&mut server.child, std::time::Duration::from_secs(6))?;
        assert_eq!(
            code,
            Some(0),
            "{signal}: the server must exit 0 within its shutdown bound"
        );
        // The event stream ended rather than being cut: no error reading it
        // to its end.
        let rest = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while stream.chunk().await?.is_some() {}
            Ok::<_, reqwest::Error>(())
        })
        .await;
        assert!(rest.is_ok(), "{signal}: the event stream did not end");
        let mut byte = [0u8; 1];
        assert_eq!(
            idle.read(&mut byte).await.unwrap_or(0),
            0,
            "{signal}: idle connections are closed"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_closed_after_the_header_timeout_and_health_keeps_answering() -> TestResult {
    use tokio::io::AsyncReadExt;
    let scratch = Scratch::new()?;
    let store = sqlite_store(&scratch)?;
    let server = Server::start(&refs(&store), &["--header-timeout", "1", "--max-connections", "32"])?;
    let address = server.base.trim_start_matches("http://").to_owned();
    // More idle connections than the server serves at once.
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(tokio::net::TcpStream::connect(&address).await?);
    }
    let started = std::time::Instant::now();
    let health = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        reqwest::Client::new().get(server.url("/health")).send(),
    )
    .await
    .map_err(|_| "/health did not answer beside idle connections")??;
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    // Every idle connection was closed by the server.
    for connection in &mut idle {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), connection.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "an idle connection stayed open");
    }
    Ok(())
}

/// The published document: `docs/http-api.openapi.json` at the workspace
/// root.
fn published_openapi() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/http-api.openapi.json")
}

/// The required properties of the JSON body documented for `status` of
/// `method path`, when it is an object schema.
fn documented_required(doc: &Value, path: &str, method: &str, status: u16) -> Option<Vec<String>> {
    let content = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"];
    let reference = content["schema"]["$ref"].as_str()?;
    let name = reference.rsplit('/').next()?;
    let required = doc["components"]["schemas"][name]["required"].as_array()?;
    Some(required.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_published_and_lists_exactly_the_answers_the_server_gives() -> TestResult {
    use std::collections::{BTreeMap, BTreeSet};
    let scratch = Scratch::new()?;
    let store = sqlite_store(&scratch)?;
    let server = Server::start(&refs(&store), &["--token", "t0ken", "--max-body", "4096"])?;
    let http = reqwest::Client::new();
    let doc: Value = http.get(server.url("/openapi.json")).send().await?.json().await?;
    assert_eq!(doc["openapi"], "3.1.0");
    let served = serde_json::to_string_pretty(&doc)?;
    if std::env::var_os("FACTOS_BLESS").is_some() {
        std::fs::write(published_openapi(), format!("{served}\n"))?;
    }
    let published: Value = serde_json::from_str(&std::fs::read_to_string(published_openapi())?)?;
    assert_eq!(
        published, doc,
        "docs/http-api.openapi.json is not what the server serves: run this test with FACTOS_BLESS=1 and commit it"
    );

    let long = format!("/read?query={}", "x".repeat(40_000));
    let big_header = "h".repeat(70_000);
    let token = |request: reqwest::RequestBuilder| request.bearer_auth("t0ken");
    let sold = json!({"events": [{"type": "Sold", "tags": ["seat:1"]}], "stream": "s"});
    let parked = json!({"runner": "mailer", "effect": "00000000-0000-0000-0000-000000000000/0"});
    // Each request with the endpoint it exercises.
    let mut requests: Vec<(&str, &str, reqwest::RequestBuilder)> = vec![
        ("/read", "get", token(http.get(server.url("/read")))),
        ("/read", "get", token(http.get(server.url("/read?query=nope")))),
        ("/read", "get", http.get(server.url("/read"))),
        ("/read", "get", token(http.delete(server.url("/read")))),
        ("/read", "get", token(http.get(server.url(&long)))),
        (
            "/read",
            "get",
            token(http.get(server.url("/read")).header("x-big", &big_header)),
        ),
        ("/append", "post", token(http.post(server.url("/append")).json(&sold))),
        ("/append", "post", token(http.post(server.url("/append")).body("{"))),
        ("/append", "post", http.post(server.url("/append")).json(&sold)),
        ("/append", "post", token(http.get(server.url("/append")))),
        (
            "/append",
            "post",
            token(
                http.post(server.url("/append"))
                    .json(&json!({"events": [{"type": "Sold"}], "stream": "s", "expected": 7})),
            ),
        ),
        (
            "/append",
            "post",
            token(
                http.post(server.url("/append"))
                    .json(&json!({"events": [{"type": "A", "data": "x".repeat(5000)}]})),
            ),
        ),
        (
            "/append",
            "post",
            token(http.post(server.url(&long.replace("/read", "/append")))),
        ),
        (
            "/append",
            "post",
            token(http.post(server.url("/append")).header("x-big", &big_header)),
        ),
        (
            "/subscribe",
            "get",
            token(http.get(server.url("/subscribe?after=later"))),
        ),
        ("/subscribe", "get", http.get(server.url("/subscribe"))),
        ("/subscribe", "get", token(http.post(server.url("/subscribe")))),
        (
            "/subscribe",
            "get",
            token(http.get(server.url(&long.replace("/read", "/subscribe")))),
        ),
        (
            "/subscribe",
            "get",
            token(http.get(server.url("/subscribe")).header("x-big", &big_header)),
        ),
        ("/stats", "get", token(http.get(server.url("/stats")))),
        ("/stats", "get", http.get(server.url("/stats"))),
        ("/stats", "get", token(http.post(server.url("/stats")))),
        (
            "/stats",
            "get",
            token(http.get(server.url(&long.replace("/read", "/stats")))),
        ),
        (
            "/stats",
            "get",
            token(http.get(server.url("/stats")).header("x-big", &big_header)),
        ),
        ("/health", "get", http.get(server.url("/health"))),
        ("/health", "get", http.post(server.url("/health"))),
        (
            "/health",
            "get",
            http.get(server.url(&long.replace("/read", "/health"))),
        ),
        (
            "/health",
            "get",
            http.get(server.url("/health")).header("x-big", &big_header),
        ),
        ("/openapi.json", "get", http.get(server.url("/openapi.json"))),
        ("/openapi.json", "get", http.post(server.url("/openapi.json"))),
        (
            "/openapi.json",
            "get",
            http.get(server.url(&long.replace("/read", "/openapi.json"))),
        ),
        (
            "/openapi.json",
            "get",
            http.get(server.url("/openapi.json")).header("x-big", &big_header),
        ),
    ];
    // The two actions on a parked effect take the same requests.
    for path in ["/parked/discard", "/parked/retry"] {
        requests.extend([
            (path, "post", token(http.post(server.url(path)).json(&parked))),
            (path, "post", token(http.post(server.url(path)).body("{"))),
            (path, "post", http.post(server.url(path)).json(&parked)),
            (path, "post", token(http.get(server.url(path)))),
            (path, "post", token(http.post(server.url(path)).body("x".repeat(5000)))),
            (path, "post", token(http.post(server.url(&long.replace("/read", path))))),
            (
                path,
                "post",
                token(http.post(server.url(path)).header("x-big", &big_header)),
            ),
        ]);
    }
    let mut seen: BTreeMap<(&str, &str), BTreeSet<u16>> = BTreeMap::new();
    let mut check = |path, method, status: u16, body: Option<Value>| -> TestResult {
        seen.entry((path, method)).or_default().insert(status);
        if let (Some(required), Some(body)) = (documented_required(&doc, path, method, status), body) {
            for field in required {
                assert!(
                    body.get(&field).is_some(),
                    "{method} {path} {status}: {body} lacks {field}"
                );
            }
        }
        Ok(())
    };
    let subscribed = token(http.get(server.url("/subscribe"))).send().await?;
    check("/subscribe", "get", subscribed.status().as_u16(), None)?;
    drop(subscribed);
    for (path, method, request) in requests.drain(..) {
        let response = request.send().await?;
        let status = response.status().as_u16();
        check(path, method, status, response.json::<Value>().await.ok())?;
    }
    // The store stops answering: its tables are gone, its schema is not
    // the one the server writes.
    let db = store[1].clone();
    let conn = rusqlite::Connection::open(&db)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF; DROP TABLE event_tags; DROP TABLE events; DROP TABLE factos_parked_effects; PRAGMA user_version = 99;",
    )?;
    for (path, method, request) in [
        ("/read", "get", token(http.get(server.url("/read")))),
        ("/append", "post", token(http.post(server.url("/append")).json(&sold))),
        ("/subscribe", "get", token(http.get(server.url("/subscribe")))),
        ("/stats", "get", token(http.get(server.url("/stats")))),
        (
            "/parked/discard",
            "post",
            token(http.post(server.url("/parked/discard")).json(&parked)),
        ),
        (
            "/parked/retry",
            "post",
            token(http.post(server.url("/parked/retry")).json(&parked)),
        ),
        ("/health", "get", http.get(server.url("/health"))),
    ] {
        let response = request.send().await?;
        let status = response.status().as_u16();
        check(path, method, status, response.json::<Value>().await.ok())?;
    }
    let documented: BTreeMap<(&str, &str), BTreeSet<u16>> = seen
        .keys()
        .map(|(path, method)| {
            let statuses = doc["paths"][*path][*method]["responses"]
                .as_object()
                .map(|responses| responses.keys().filter_map(|s| s.parse().ok()).collect())
                .unwrap_or_default();
            ((*path, *method), statuses)
        })
        .collect();
    assert_eq!(
        seen, documented,
        "every status answered is documented, and every documented one was answered"
    );
    assert_eq!(
        doc["paths"].as_object().map(|p| p.len()),
        Some(seen.len()),
        "every endpoint was exercised"
    );
    Ok(())
}
