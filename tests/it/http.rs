//! The HTTP view (`--http-port`) through a real server: `/metrics` parsed by an
//! exposition-format parser and checked against INFO, `/api/window` against the
//! commands, the password on every path, and the live page in a real browser.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::{self, TestServer, add, bare_event, info, info_field, system_now};
use openmetrics_parser::{MetricNumber, PrometheusValue};

// ---------------------------------------------------------------------------------
// A small HTTP/1.1 client: one request per connection.
// ---------------------------------------------------------------------------------

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` with `headers`, `Connection: close`, the whole response read.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect to the HTTP port");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

fn http_addr(server: &TestServer) -> SocketAddr {
    server.handle.http_addr().expect("--http-port is on")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

// ---------------------------------------------------------------------------------
// An exposition, parsed, as plain values by (metric name, labels).
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Counter(f64),
    Gauge(f64),
    /// Sum, count, and (upper bound, cumulative count) per bucket, in order.
    Histogram(f64, u64, Vec<(f64, f64)>),
}

type Labels = BTreeMap<String, String>;

#[derive(Debug, Default)]
struct Scrape {
    /// Samples by family name (as the parser names it), then labels.
    families: HashMap<String, HashMap<Labels, Value>>,
}

fn number(n: &MetricNumber) -> f64 {
    n.as_f64()
}

/// The samples of a parsed exposition, whichever of the parser's two formats (their
/// types differ, their shapes do not).
macro_rules! scrape_of {
    ($parsed:expr, $value:ident) => {{
        let mut scrape = Scrape::default();
        for (name, family) in $parsed.families {
            let samples = scrape.families.entry(name).or_default();
            for s in family.iter_samples() {
                let labels: Labels = s
                    .get_labelset()
                    .expect("a sample of a family")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let v = match &s.value {
                    $value::Counter(c) => Value::Counter(number(&c.value)),
                    $value::Gauge(g) => Value::Gauge(number(g)),
                    $value::Histogram(h) => Value::Histogram(
                        h.sum.as_ref().map_or(f64::NAN, number),
                        h.count.unwrap_or(u64::MAX),
                        h.buckets
                            .iter()
                            .map(|b| (b.upper_bound, number(&b.count)))
                            .collect(),
                    ),
                    other => panic!("unexpected sample type {other:?}"),
                };
                samples.insert(labels, v);
            }
        }
        scrape
    }};
}

impl Scrape {
    /// The classic Prometheus text format (version 0.0.4).
    fn prometheus(text: &str) -> Scrape {
        let parsed = openmetrics_parser::prometheus::parse_prometheus(text)
            .unwrap_or_else(|e| panic!("not valid Prometheus text: {e:?}\n{text}"));
        scrape_of!(parsed, PrometheusValue)
    }

    /// OpenMetrics 1.0 text.
    fn openmetrics(text: &str) -> Scrape {
        use openmetrics_parser::OpenMetricsValue;
        let parsed = openmetrics_parser::openmetrics::parse_openmetrics(text)
            .unwrap_or_else(|e| panic!("not valid OpenMetrics text: {e:?}\n{text}"));
        scrape_of!(parsed, OpenMetricsValue)
    }

    fn value(&self, family: &str, labels: &[(&str, &str)]) -> Option<&Value> {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.families.get(family)?.get(&labels)
    }

    /// A counter or gauge's value; the test fails if it is missing.
    fn num(&self, family: &str, labels: &[(&str, &str)]) -> f64 {
        match self.value(family, labels) {
            Some(Value::Counter(v) | Value::Gauge(v)) => *v,
            other => panic!("{family}{labels:?}: {other:?}; families: {:?}", {
                let mut k: Vec<_> = self.families.keys().collect();
                k.sort();
                k
            }),
        }
    }
}

/// INFO commandstats as `name → (calls, rejected, failed)`.
fn commandstats(info: &str) -> HashMap<String, (u64, u64, u64)> {
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, fields) = l.trim().split_once(':')?;
            let field = |f: &str| -> u64 {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{f}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("cmdstat_{name} has no {f}"))
            };
            Some((
                name.to_string(),
                (
                    field("calls"),
                    field("rejected_calls"),
                    field("failed_calls"),
                ),
            ))
        })
        .collect()
}

fn info_u64(info: &str, field: &str) -> u64 {
    info_field(info, field)
        .unwrap_or_else(|| panic!("INFO has no {field}"))
        .parse()
        .unwrap_or_else(|_| panic!("INFO {field} is not a number"))
}

/// Traffic that moves every kind of figure: accepted, late, future and malformed
/// events, an unknown command, a wrong arity, and a few queries.
fn mixed_traffic(con: &mut redis::Connection) {
    let now = system_now();
    for i in 0..40 {
        add(
            con,
            &bare_event(&format!("u{}", i % 7), ["click", "view", "buy"][i % 3], now),
        )
        .expect("fresh event accepted");
    }
    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.cmd("EVT.ADD")
            .arg(bare_event(&format!("p{}", i % 13), "scroll", now));
    }
    pipe.query::<()>(con).expect("pipelined events accepted");
    assert!(add(con, &bare_event("old", "click", now - 3600)).is_err());
    assert!(add(con, &bare_event("ahead", "click", now + 3600)).is_err());
    assert!(add(con, "{not json").is_err());
    let _ = redis::cmd("NO.SUCH.COMMAND").query::<redis::Value>(con);
    let _ = redis::cmd("EVT.USER").query::<redis::Value>(con);
    let _: u64 = redis::cmd("EVT.TOTAL").query(con).expect("EVT.TOTAL");
    let _: u64 = redis::cmd("EVT.USER")
        .arg("u1")
        .query(con)
        .expect("EVT.USER");
}

#[test]
fn metrics_agree_with_info_in_both_text_formats() {
    let server = TestServer::start(&["--http-port", "0"]);
    let addr = http_addr(&server);
    let mut con = server.client();
    mixed_traffic(&mut con);
    // The events are fresh: the window holds them all for the rest of the test.
    let total: u64 = redis::cmd("EVT.TOTAL").query(&mut con).expect("EVT.TOTAL");

    let classic = get(addr, "/metrics", &[]);
    assert_eq!(classic.status, 200, "{}", classic.body);
    assert_eq!(
        classic.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let open = get(
        addr,
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
    );
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(
        open.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        open.headers
    );
    assert!(open.body.ends_with("# EOF\n"));
    // No command runs between the scrapes and this INFO, which does not count
    // itself before it answers.
    let info = info(&mut con, Some("everything"));

    for (scrape, counter) in [
        (Scrape::prometheus(&classic.body), "_total"),
        (Scrape::openmetrics(&open.body), ""),
    ] {
        let c = |name: &str, labels: &[(&str, &str)]| {
            scrape.num(&format!("scalable_analytics_{name}{counter}"), labels) as u64
        };
        let g = |name: &str| scrape.num(&format!("scalable_analytics_{name}"), &[]);
        for (metric, field) in [
            ("events_accepted", "events_accepted"),
            ("events_rejected", "events_rejected"),
            ("events_late", "events_late"),
            ("events_future", "events_future"),
            ("connections_received", "total_connections_received"),
            ("connections_rejected", "rejected_connections"),
            ("protocol_errors", "protocol_errors"),
        ] {
            assert_eq!(c(metric, &[]), info_u64(&info, field), "{metric}");
        }
        assert_eq!(c("events_accepted", &[]), 240);
        assert_eq!(c("events_late", &[]), 1);
        assert_eq!(c("events_future", &[]), 1);
        assert_eq!(g("window_events") as u64, total);
        assert_eq!(g("window_events") as u64, info_u64(&info, "window_events"));
        assert_eq!(g("active_users") as u64, info_u64(&info, "active_users"));
        assert_eq!(
            g("active_event_types") as u64,
            info_u64(&info, "active_event_types")
        );
        assert_eq!(
            g("active_pairs") as u64,
            info_u64(&info, "active_user_event_types")
        );
        assert_eq!(g("window_seconds"), 60.0);
        assert_eq!(
            g("connected_clients") as u64,
            info_u64(&info, "connected_clients")
        );
        assert_eq!(g("connected_clients"), 1.0);
        let (metric_mem, info_mem) = (
            g("used_memory_bytes"),
            info_u64(&info, "used_memory") as f64,
        );
        assert!(
            (metric_mem - info_mem).abs() <= info_mem * 0.2 + 4e6,
            "used_memory {metric_mem} against INFO {info_mem}"
        );

        // Errors by kind: every kind is there, and matches errorstats (absent = 0).
        for kind in ["ERR", "WRONGTYPE", "NOAUTH", "WRONGPASS", "OOM", "DENIED"] {
            let want = info
                .lines()
                .find_map(|l| l.strip_prefix(&format!("errorstat_{kind}:count=")))
                .map_or(0, |v| v.trim().parse().expect("a count"));
            assert_eq!(
                c("errors", &[("kind", kind)]),
                want,
                "errors of kind {kind}"
            );
        }
        assert!(c("errors", &[("kind", "ERR")]) >= 4);

        // Calls by command, against commandstats.
        let stats = commandstats(&info);
        assert!(stats.contains_key("evt.add") && stats.contains_key("evt.user"));
        for (name, (calls, rejected, failed)) in &stats {
            let l = [("command", name.as_str())];
            assert_eq!(c("commands", &l), *calls, "calls of {name}");
            assert_eq!(
                c("commands_rejected", &l),
                *rejected,
                "rejected calls of {name}"
            );
            assert_eq!(c("commands_failed", &l), *failed, "failed calls of {name}");
        }
        assert_eq!(stats["evt.add"].0, 243);

        // Latency: one histogram per command that ran, buckets cumulative, ending
        // at +Inf with the count, which is the command's calls.
        let hists = scrape
            .families
            .get("scalable_analytics_command_duration_seconds")
            .expect("the latency histograms");
        assert!(!hists.is_empty());
        for (labels, v) in hists {
            let name = &labels["command"];
            let Value::Histogram(sum, count, buckets) = v else {
                panic!("{name}: not a histogram: {v:?}");
            };
            let calls = stats.get(name.as_str()).map_or(0, |s| s.0);
            assert_eq!(*count, calls, "histogram count of {name}");
            assert!(*sum > 0.0 && sum.is_finite(), "{name}: sum {sum}");
            assert!(buckets.len() > 100, "{name}: {} buckets", buckets.len());
            assert!(
                buckets
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{name}: buckets not cumulative in increasing bounds"
            );
            let (last_bound, last_count) = buckets[buckets.len() - 1];
            assert!(last_bound.is_infinite());
            assert_eq!(last_count as u64, *count);
            assert_eq!(buckets[0].0, 256e-9, "first bound is 256 ns");
        }
        for (name, (calls, ..)) in &stats {
            if *calls > 0 {
                assert!(
                    hists.contains_key(&Labels::from([("command".to_string(), name.clone())])),
                    "no histogram for {name}"
                );
            }
        }
    }

    // Shutdown closes the HTTP port too.
    drop(con);
    server.stop();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

/// `GET path` answered 200, its body as JSON.
fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let r = get(addr, path, &[]);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
}

fn config_get(con: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(con)
        .expect("CONFIG GET");
    assert_eq!(v.len(), 2, "{name}: {v:?}");
    v[1].clone()
}

#[test]
fn api_window_is_the_window_second_by_second() {
    const START: i64 = 1_700_000_000;
    let server = TestServer::start(&[
        "--http-port",
        "0",
        "--clock",
        "manual",
        "--clock-start",
        "1700000000",
        "--window",
        "10",
    ]);
    let addr = http_addr(&server);
    let mut con = server.client();
    assert_eq!(config_get(&mut con, "http-port"), addr.port().to_string());
    assert_eq!(
        info_field(&info(&mut con, Some("server")), "http_port"),
        Some(addr.port().to_string())
    );
    for (user, ty, ago, n) in [
        ("a", "click", 9, 2),
        ("b", "click", 5, 1),
        ("c", "view", 1, 1),
        ("a", "click", 0, 3),
    ] {
        for _ in 0..n {
            add(&mut con, &bare_event(user, ty, START - ago)).expect("in the window");
        }
    }
    assert!(add(&mut con, &bare_event("z", "click", START - 10)).is_err());
    let _ = redis::cmd("NO.SUCH").query::<redis::Value>(&mut con);

    let w = get_json(addr, "/api/window");
    let total: u64 = redis::cmd("EVT.TOTAL").query(&mut con).expect("EVT.TOTAL");
    let text = info(&mut con, Some("everything"));
    assert_eq!(w["now"], START);
    assert_eq!(w["clock"], "manual");
    assert_eq!(w["window_seconds"], 10);
    assert_eq!(w["total"], 7);
    assert_eq!(w["total"], total);
    assert_eq!(
        w["per_second"],
        serde_json::json!([2, 0, 0, 0, 1, 0, 0, 0, 1, 3])
    );
    assert_eq!(w["active_users"], 3);
    assert_eq!(w["active_event_types"], 2);
    assert_eq!(w["active_pairs"], 3);
    assert_eq!(
        w["active_pairs"],
        info_u64(&text, "active_user_event_types")
    );
    assert_eq!(w["events"]["accepted"], 7);
    assert_eq!(w["events"]["late"], 1);
    assert_eq!(w["events"]["rejected"], info_u64(&text, "events_rejected"));
    assert_eq!(
        w["errors"]["ERR"], 2,
        "the late event and the unknown command"
    );
    assert_eq!(w["errors"]["OOM"], 0);
    assert_eq!(
        w["errors"].as_object().map(|o| o.len()),
        Some(13),
        "every error kind"
    );
    assert_eq!(w["connected_clients"], 1);
    assert!(w["used_memory"].as_u64().is_some_and(|m| m > 0));

    // Five seconds on, the two oldest occupied seconds have left the window.
    redis::cmd("EVT.CLOCK")
        .arg("ADVANCE")
        .arg(5)
        .query::<i64>(&mut con)
        .expect("EVT.CLOCK ADVANCE");
    // The sweep forgets users that left in the background, soon after the move.
    common::wait_info(&mut con, "active_users", "2", Duration::from_secs(5)).expect("users swept");
    let w = get_json(addr, "/api/window");
    assert_eq!(w["now"], START + 5);
    assert_eq!(
        w["per_second"],
        serde_json::json!([0, 0, 0, 1, 3, 0, 0, 0, 0, 0])
    );
    assert_eq!(w["total"], 4);
    assert_eq!(w["active_users"], 2);

    // Not found, and read-only: other methods are refused.
    assert_eq!(get(addr, "/api/nothing", &[]).status, 404);
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(
        b"POST /api/window HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read");
    assert!(reply.starts_with("HTTP/1.1 405"), "{reply}");
}

#[test]
fn api_top_is_what_evt_top_answers() {
    const START: i64 = 1_700_000_000;
    let server = TestServer::start(&[
        "--http-port",
        "0",
        "--clock",
        "manual",
        "--clock-start",
        "1700000000",
    ]);
    let addr = http_addr(&server);
    let mut con = server.client();
    for (user, ty, n) in [
        ("ann", "click", 4),
        ("bo", "view", 4),
        ("cy", "click", 9),
        ("di", "buy", 1),
    ] {
        for _ in 0..n {
            add(&mut con, &bare_event(user, ty, START)).expect("in the window");
        }
    }
    let t = get_json(addr, "/api/top");
    assert_eq!(t["now"], START);
    assert_eq!(t["window_seconds"], 60);
    assert_eq!(
        t["users"],
        serde_json::json!([
            {"id": "cy", "events": 9},
            {"id": "ann", "events": 4},
            {"id": "bo", "events": 4},
            {"id": "di", "events": 1},
        ])
    );
    assert_eq!(
        t["types"],
        serde_json::json!([
            {"id": "click", "events": 13},
            {"id": "view", "events": 4},
            {"id": "buy", "events": 1},
        ])
    );
    let top: Vec<(String, u64)> = redis::cmd("EVT.TOP")
        .arg("USERS")
        .arg("COUNT")
        .arg(2)
        .query(&mut con)
        .expect("EVT.TOP");
    let t = get_json(addr, "/api/top?count=2");
    let users: Vec<(String, u64)> = t["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["events"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(users, top);
    assert_eq!(t["types"].as_array().map(Vec::len), Some(2));
}

#[test]
fn the_http_view_is_off_by_default() {
    let server = TestServer::start(&[]);
    assert_eq!(server.handle.http_addr(), None);
    let mut con = server.client();
    assert_eq!(config_get(&mut con, "http-port"), "0");
    assert_eq!(
        info_field(&info(&mut con, Some("server")), "http_port").as_deref(),
        Some("0")
    );
    let refused = common::query_err(
        &mut con,
        redis::cmd("CONFIG").arg("SET").arg("http-port").arg("8080"),
    );
    assert!(refused.contains("immutable"), "{refused}");
}

/// The README's bound on HTTP connections served at once.
const MAX_HTTP_CONNECTIONS: usize = 64;

#[test]
fn connections_past_the_limit_are_closed_and_slots_come_back() {
    let server = TestServer::start(&["--http-port", "0"]);
    let addr = http_addr(&server);
    let held: Vec<TcpStream> = (0..MAX_HTTP_CONNECTIONS)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    // Let the server accept them all before the one too many.
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(addr).expect("connect");
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    extra
        .write_all(b"GET /api/window HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut reply = Vec::new();
    let outcome = extra.read_to_end(&mut reply);
    assert!(
        reply.is_empty(),
        "served past the limit: {}",
        String::from_utf8_lossy(&reply)
    );
    // Closed (end of stream, or a reset since our request was never read), not
    // left hanging.
    assert!(
        !matches!(&outcome, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "neither served nor closed: {outcome:?}"
    );
    // A held connection is still served.
    let mut first = held.into_iter();
    let mut one = first.next().expect("a held connection");
    one.write_all(b"GET /api/window HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut text = String::new();
    one.read_to_string(&mut text).expect("read");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // Once the others hang up, new clients are served again.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let _ = s.write_all(b"GET /api/window HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        if text.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "slots never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_path_needs_the_password_once_one_is_set() {
    let server = TestServer::start(&["--http-port", "0", "--requirepass", "s3cret"]);
    let addr = http_addr(&server);
    let paths = ["/", "/metrics", "/api/window", "/api/top", "/no/such/page"];
    for path in paths {
        let r = get(addr, path, &[]);
        assert_eq!(r.status, 401, "{path} without a password");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Basic ")),
            "{path}: {:?}",
            r.headers
        );
        for wrong in ["Bearer s3cre", "Bearer s3cret!", "Digest s3cret", "s3cret"] {
            assert_eq!(
                get(addr, path, &[("Authorization", wrong)]).status,
                401,
                "{path} with {wrong}"
            );
        }
    }
    let wrong_basic = basic("default", "nope");
    let r = get(addr, "/metrics", &[("Authorization", &wrong_basic)]);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());

    for (path, want) in [
        ("/", 200),
        ("/metrics", 200),
        ("/api/window", 200),
        ("/no/such/page", 404),
    ] {
        for auth in [
            basic("anyone", "s3cret"),
            basic("", "s3cret"),
            "Bearer s3cret".to_string(),
        ] {
            let r = get(addr, path, &[("Authorization", &auth)]);
            assert_eq!(r.status, want, "{path} with {auth}");
        }
    }

    // Wrong passwords (not missing ones) count as failed logins, as AUTH's do.
    let mut con = redis::Client::open(format!("redis://:s3cret@{}/", server.addr))
        .and_then(|c| c.get_connection())
        .expect("log in");
    let failed = info_u64(&info(&mut con, Some("stats")), "acl_access_denied_auth");
    // Each path got two wrong bearer tokens (the other two values carry no password
    // this server reads); the wrong basic credentials made one more.
    assert_eq!(failed, paths.len() as u64 * 2 + 1);

    // The password is read at every request: a new one applies at once.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("n3w")
        .query::<()>(&mut con)
        .expect("CONFIG SET requirepass");
    assert_eq!(
        get(addr, "/api/window", &[("Authorization", "Bearer s3cret")]).status,
        401
    );
    assert_eq!(
        get(addr, "/api/window", &[("Authorization", "Bearer n3w")]).status,
        200
    );
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("")
        .query::<()>(&mut con)
        .expect("CONFIG SET requirepass ''");
    assert_eq!(get(addr, "/api/window", &[]).status, 200);
}

// ---------------------------------------------------------------------------------
// The live page in a real browser.
// ---------------------------------------------------------------------------------

/// Flags Chromium needs here: headless as root, and no background connections (on a
/// machine without Internet access they are refused, many at a time).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
];

/// The page at `url` as the browser has built it after `budget_ms` of virtual time
/// (timers run ahead, network requests are waited for): the page polls once at
/// load and then every second.
fn dump_dom(url: &str, budget_ms: u32) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static RUN: AtomicU32 = AtomicU32::new(0);
    let profile = std::env::temp_dir().join(format!(
        "sa-http-chromium-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    let mut chromium = std::process::Command::new("chromium");
    chromium
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg("--dump-dom")
        .arg(url);
    let done = common::run_program(chromium, None, Duration::from_secs(90));
    let _ = std::fs::remove_dir_all(&profile);
    let status = done.status.expect("chromium did not finish within 90 s");
    assert!(
        status.success(),
        "chromium failed: {status}\n{}",
        done.stderr
    );
    done.stdout
}

/// The value of `attr` on the element whose `id` is `id`.
fn attr_of(dom: &str, id: &str, attr: &str) -> Option<String> {
    let at = dom.find(&format!(" id=\"{id}\""))?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    let tag = &dom[start..end];
    let key = format!(" {attr}=\"");
    let from = tag.find(&key)? + key.len();
    let len = tag[from..].find('"')?;
    Some(tag[from..from + len].to_string())
}

/// The number an element shows, from its `data-value`; the test fails without one.
fn shown(dom: &str, id: &str) -> u64 {
    let v = attr_of(dom, id, "data-value").unwrap_or_else(|| panic!("no #{id} in the page"));
    v.parse()
        .unwrap_or_else(|_| panic!("#{id} shows {v:?}, not a number (the page never rendered?)"))
}

/// The page's poll count, kept on `<body data-polls>`.
fn polls(dom: &str) -> u64 {
    let body = &dom[dom.find("<body").expect("a body")..];
    let key = "data-polls=\"";
    let from = body.find(key).expect("data-polls") + key.len();
    body[from..from + body[from..].find('"').expect("closing quote")]
        .parse()
        .expect("a poll count")
}

#[test]
#[cfg_attr(
    not(have_chromium),
    ignore = "needs Debian's chromium (CI installs it)"
)]
fn the_live_page_shows_what_the_commands_answer() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let server = TestServer::start(&["--http-port", "0"]);
    let url = format!("http://{}/", http_addr(&server));
    let mut con = server.client();
    let now = system_now();
    for i in 0..30 {
        add(
            &mut con,
            &bare_event(&format!("early{i}"), ["view", "click"][i % 2], now - 5),
        )
        .expect("in the window");
    }
    assert!(add(&mut con, &bare_event("late", "view", now - 3600)).is_err());
    let _ = redis::cmd("NO.SUCH.COMMAND").query::<redis::Value>(&mut con);

    // Events flow while the browser loads the page and polls.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut con = server.client();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut pipe = redis::pipe();
                for i in 0..50 {
                    pipe.cmd("EVT.ADD").arg(bare_event(
                        &format!("live{}", (sent + i) % 97),
                        "scroll",
                        system_now(),
                    ));
                }
                pipe.query::<()>(&mut con).expect("live events accepted");
                sent += 50;
                std::thread::sleep(Duration::from_millis(5));
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let total = |con: &mut redis::Connection| -> u64 {
        redis::cmd("EVT.TOTAL").query(con).expect("EVT.TOTAL")
    };
    let before = total(&mut con);
    let dom = dump_dom(&url, 3000);
    let after = total(&mut con);
    stop.store(true, Ordering::Relaxed);
    let sent = writer.join().expect("writer");
    assert!(
        sent > 0 && before < after,
        "events flowed: {before} then {after}"
    );
    let seen = shown(&dom, "total");
    assert!(
        (before..=after).contains(&seen),
        "the page shows {seen} events, EVT.TOTAL said {before} before and {after} after"
    );
    assert!(
        polls(&dom) >= 2,
        "the page refreshed: {} polls",
        polls(&dom)
    );

    // With the window still, the page shows exactly what the commands answer.
    let dom = dump_dom(&url, 1500);
    let text = info(&mut con, Some("everything"));
    let total_now = total(&mut con);
    assert_eq!(shown(&dom, "total"), total_now);
    assert_eq!(total_now, 30 + sent);
    assert_eq!(shown(&dom, "active-users"), info_u64(&text, "active_users"));
    assert_eq!(shown(&dom, "active-users"), 30 + 97.min(sent));
    assert_eq!(
        shown(&dom, "active-types"),
        info_u64(&text, "active_event_types")
    );
    assert_eq!(shown(&dom, "active-types"), 3);
    assert_eq!(
        shown(&dom, "active-pairs"),
        info_u64(&text, "active_user_event_types")
    );
    assert_eq!(
        shown(&dom, "events-accepted"),
        info_u64(&text, "events_accepted")
    );
    assert_eq!(shown(&dom, "events-late"), 1);
    let errors = text
        .lines()
        .find_map(|l| l.strip_prefix("errorstat_ERR:count="))
        .map(|v| v.trim().parse::<u64>().expect("a count"))
        .expect("errorstat_ERR");
    assert_eq!(shown(&dom, "error-ERR"), errors);
    assert_eq!(shown(&dom, "errors-total"), errors);
    // The chart: one bar per second of the window, adding up to the total.
    assert_eq!(attr_of(&dom, "chart", "data-bars").as_deref(), Some("60"));
    assert_eq!(
        attr_of(&dom, "chart", "data-sum"),
        Some(total_now.to_string())
    );
    assert_eq!(dom.matches("class=\"bar").count(), 60);
    // The top lists are EVT.TOP's, in its order.
    for (list, what) in [("top-users", "USERS"), ("top-types", "TYPES")] {
        assert!(
            attr_of(&dom, &format!("{list}-placeholder"), "hidden").is_some(),
            "{list}: the placeholder is hidden"
        );
        let top: Vec<(String, u64)> = redis::cmd("EVT.TOP")
            .arg(what)
            .query::<Vec<(String, u64)>>(&mut con)
            .expect("EVT.TOP");
        assert!(!top.is_empty());
        assert_eq!(listed(&dom, list), top, "{list}");
    }
}

/// The entries of the live page's top list `id`: (name, count).
fn listed(dom: &str, id: &str) -> Vec<(String, u64)> {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no list {id}"));
    let end = start + dom[start..].find("</ol>").expect("end of the list");
    let list = &dom[start..end];
    list.split("<li>")
        .skip(1)
        .map(|li| {
            let name = li
                .split("class=\"name\"")
                .nth(1)
                .and_then(|r| r.split('>').nth(1))
                .and_then(|r| r.split('<').next())
                .expect("a name")
                .to_string();
            let count = li
                .split("class=\"count\" data-value=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .and_then(|n| n.parse().ok())
                .expect("a count");
            (name, count)
        })
        .collect()
}
