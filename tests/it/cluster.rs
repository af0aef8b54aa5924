//! Cluster mode (issue 13) through real clients: three nodes on 127.0.0.1 sharing the
//! users by Redis Cluster's slots, driven by the `redis` crate's cluster client,
//! `redis-cli -c` and `redis-benchmark --cluster`, and compared with one node fed the
//! same events.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;
use redis::Value;

/// The manual clock's start: every node (and the single-node model) reads the same
/// `now`, moved only by the tests.
const T: i64 = 1_700_000_000;

/// A directory of its own under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sa-cluster-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Node names, in map order.
const NAMES: [&str; 3] = ["a", "b", "c"];

/// The slots of node `i` of `n`, split as `redis-cli --cluster create` (and
/// scripts/cluster) split them: 0-5460, 5461-10922, 10923-16383 for three.
fn slots_of(i: usize, n: usize) -> (usize, usize) {
    let per = 16384.0 / n as f64;
    let (mut first, mut cursor) = (0usize, 0.0f64);
    for k in 0..n {
        let last = if k + 1 == n {
            16383
        } else {
            ((cursor + per - 1.0).round() as usize).max(first)
        };
        if k == i {
            return (first, last);
        }
        first = last + 1;
        cursor += per;
    }
    (first, 16383)
}

/// A map file for nodes at `ports`.
fn write_map(path: &Path, ports: &[u16]) {
    let nodes: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (s, e) = slots_of(i, ports.len());
            format!(
                r#"{{"id": "{}", "host": "127.0.0.1", "port": {p}, "slots": [[{s}, {e}]]}}"#,
                NAMES[i]
            )
        })
        .collect();
    std::fs::write(
        path,
        format!("{{\"nodes\": [\n{}\n]}}\n", nodes.join(",\n")),
    )
    .expect("map");
}

/// In-process nodes of one cluster.
struct Nodes {
    servers: Vec<Option<TestServer>>,
    ports: Vec<u16>,
    map: String,
    flags: Vec<String>,
    _dir: TempDir,
}

impl Nodes {
    /// `n` nodes with the manual clock at [`T`] and `flags`.
    fn start(n: usize, flags: &[&str]) -> Nodes {
        let listeners: Vec<TcpListener> = (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        Nodes::start_on(listeners, flags)
    }

    /// [`Nodes::start`] on ports below the kernel's ephemeral range, so that a node
    /// can be stopped and started again on its port: a free port of that range may be
    /// taken meanwhile by any outgoing connection of the tests running alongside.
    fn start_restartable(n: usize, flags: &[&str]) -> Nodes {
        let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
            .unwrap_or(32768);
        let mut candidate = 10_000 + (std::process::id() % 5000) as u16 * 3;
        let mut listeners = Vec::new();
        while listeners.len() < n {
            assert!(candidate < low, "no free port below {low}");
            if let Ok(l) = TcpListener::bind(("127.0.0.1", candidate)) {
                listeners.push(l);
            }
            candidate += 1;
        }
        Nodes::start_on(listeners, flags)
    }

    fn start_on(listeners: Vec<TcpListener>, flags: &[&str]) -> Nodes {
        let dir = TempDir::new("nodes");
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        let map = dir.path("map.json");
        write_map(&map, &ports);
        let mut nodes = Nodes {
            servers: Vec::new(),
            ports,
            map: map.to_str().expect("utf-8 path").to_string(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            _dir: dir,
        };
        for (i, l) in listeners.into_iter().enumerate() {
            let server = nodes.serve(i, l);
            nodes.servers.push(Some(server));
        }
        nodes
    }

    fn serve(&self, i: usize, listener: TcpListener) -> TestServer {
        let start = T.to_string();
        let mut argv = vec![
            "--cluster-config",
            &self.map,
            "--cluster-node",
            NAMES[i],
            "--clock",
            "manual",
            "--clock-start",
            &start,
        ];
        argv.extend(self.flags.iter().map(String::as_str));
        TestServer::start_on(listener, &argv)
    }

    /// Starts node `i` again, on its port, with an empty window.
    fn restart(&mut self, i: usize) {
        self.stop(i);
        let listener = TcpListener::bind(("127.0.0.1", self.ports[i])).expect("rebind");
        self.servers[i] = Some(self.serve(i, listener));
    }

    fn node(&self, i: usize) -> &TestServer {
        self.servers[i].as_ref().expect("node running")
    }

    fn client(&self, i: usize) -> redis::Connection {
        self.node(i).client()
    }

    fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect()
    }

    fn cluster_client(&self) -> redis::cluster::ClusterConnection {
        redis::cluster::ClusterClient::new(self.urls())
            .and_then(|c| c.get_connection())
            .expect("cluster connection")
    }

    fn stop(&mut self, i: usize) {
        if let Some(s) = self.servers[i].take() {
            s.stop();
        }
    }

    /// Which node serves `user` (by CLUSTER KEYSLOT, asked of node 0).
    fn owner(&self, user: &str) -> usize {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(user)
            .query(&mut self.client(0))
            .expect("CLUSTER KEYSLOT");
        (0..self.ports.len())
            .find(|&i| {
                let (s, e) = slots_of(i, self.ports.len());
                (s as i64..=e as i64).contains(&slot)
            })
            .expect("an owner")
    }

    /// A user served by node `i`, named `<prefix>N`.
    fn user_on(&self, i: usize, prefix: &str) -> String {
        (0..)
            .map(|n| format!("{prefix}{n}"))
            .find(|u| self.owner(u) == i)
            .expect("some user lands on every node")
    }
}

fn int(con: &mut redis::Connection, args: &[&str]) -> i64 {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
        .unwrap_or_else(|e| panic!("{args:?}: {}", err_text(&e)))
}

fn event_json(user: &str, ty: &str, ts: i64, value: f64) -> String {
    event(user, ty, ts, value)
}

/// An event without `user_id`: the keyed `EVT.ADD <user> <json>` names the user.
fn keyless_json(ty: &str, ts: i64) -> String {
    format!(r#"{{"event_type":"{ty}","timestamp":{ts}}}"#)
}

// ---------------------------------------------------------------------------------
// The map
// ---------------------------------------------------------------------------------

#[test]
fn a_wrong_map_is_refused_at_start_with_a_line_saying_what() {
    let dir = TempDir::new("maps");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let good = format!(
        r#"{{"nodes": [
        {{"id": "a", "host": "127.0.0.1", "port": {port}, "slots": [[0, 8191]]}},
        {{"id": "b", "host": "127.0.0.1", "port": 1, "slots": [[8192, 16383]]}}]}}"#
    );
    let cases: Vec<(String, &str, Vec<&str>, &str)> = vec![
        (
            good.replace("[8192, 16383]", "[8193, 16383]"),
            "a",
            vec![],
            "slot 8192 is not served by any node",
        ),
        (
            good.replace("[8192, 16383]", "[8000, 16383]"),
            "a",
            vec![],
            "slot 8000 is given to two nodes, 'a' and 'b'",
        ),
        (
            good.clone(),
            "z",
            vec![],
            "--cluster-node 'z' is not one of its nodes (a, b)",
        ),
        (
            good.clone(),
            "b",
            vec![],
            "node 'b' is 127.0.0.1:1 in the map, but this server listens on port",
        ),
        (
            good.clone(),
            "a",
            vec!["--clock", "event"],
            "--clock event cannot be used in a cluster",
        ),
        ("{\"nodes\": [".to_string(), "a", vec![], "cluster config"),
    ];
    for (i, (text, node, extra, want)) in cases.into_iter().enumerate() {
        let path = dir.path(&format!("map{i}.json"));
        std::fs::write(&path, text).expect("write map");
        let port = port.to_string();
        let mut args = vec![
            "--port",
            &port,
            "--cluster-config",
            path.to_str().expect("path"),
            "--cluster-node",
            node,
        ];
        args.extend(extra);
        let (status, out) = run_binary(&args, Duration::from_secs(20));
        let status = status.expect("the server exits by itself");
        assert!(!status.success(), "case {i} started: {out}");
        assert!(out.contains(want), "case {i}: expected {want:?} in:\n{out}");
    }
    // A file that does not exist, and a node without its map.
    let (status, out) = run_binary(
        &[
            "--cluster-config",
            "/nonexistent/map.json",
            "--cluster-node",
            "a",
        ],
        Duration::from_secs(20),
    );
    assert!(!status.expect("exits").success());
    assert!(
        out.contains("cannot read the cluster config /nonexistent/map.json"),
        "{out}"
    );
    let (status, out) = run_binary(&["--cluster-node", "a"], Duration::from_secs(20));
    assert!(!status.expect("exits").success());
    assert!(out.contains("--cluster-config"), "{out}");
}

#[test]
fn cluster_commands_describe_the_map_as_redis_cluster_does() {
    let nodes = Nodes::start(3, &[]);
    let mut b = nodes.client(1);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            redis::cmd("CLUSTER")
                .arg("MYID")
                .query::<String>(&mut nodes.client(i))
                .expect("MYID")
        })
        .collect();
    // SHA-1 of the configured ids.
    assert_eq!(ids[0], "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8");
    assert!(ids.iter().all(|id| id.len() == 40));

    // CLUSTER SLOTS, byte for byte as Redis 7 sends it (RESP2).
    let mut raw = nodes.node(1).raw();
    let got = send_recv(&mut raw, &resp_str(&["CLUSTER", "SLOTS"]), 1);
    let mut want = String::from("*3\r\n");
    for (i, id) in ids.iter().enumerate() {
        let (s, e) = slots_of(i, 3);
        want.push_str(&format!(
            "*3\r\n:{s}\r\n:{e}\r\n*4\r\n$9\r\n127.0.0.1\r\n:{}\r\n$40\r\n{id}\r\n*0\r\n",
            nodes.ports[i]
        ));
    }
    let got = [got, read_n(&mut raw, want.len().saturating_sub(1))].concat();
    assert_eq!(String::from_utf8_lossy(&got), want);

    // CLUSTER NODES: one line each, this node flagged myself.
    let text: String = redis::cmd("CLUSTER").arg("NODES").query(&mut b).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (i, line) in lines.iter().enumerate() {
        let (s, e) = slots_of(i, 3);
        let flags = if i == 1 { "myself,master" } else { "master" };
        let port = nodes.ports[i];
        assert_eq!(
            *line,
            format!(
                "{} 127.0.0.1:{port}@{} {flags} - 0 0 {} connected {s}-{e}",
                ids[i],
                u32::from(port) + 10000,
                i + 1
            )
        );
    }

    // CLUSTER SHARDS: one shard per node, with its slots and the node's fields.
    let shards: Value = redis::cmd("CLUSTER").arg("SHARDS").query(&mut b).unwrap();
    let Value::Array(shards) = shards else {
        panic!("{shards:?}")
    };
    assert_eq!(shards.len(), 3);
    let Value::Array(first) = &shards[0] else {
        panic!()
    };
    assert_eq!(first[0], Value::BulkString(b"slots".to_vec()));
    assert_eq!(
        first[1],
        Value::Array(vec![Value::Int(0), Value::Int(5460)])
    );
    let Value::Array(members) = &first[3] else {
        panic!()
    };
    let Value::Array(fields) = &members[0] else {
        panic!()
    };
    let keys: Vec<String> = fields
        .iter()
        .step_by(2)
        .map(|k| match k {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "port",
            "ip",
            "endpoint",
            "role",
            "replication-offset",
            "health"
        ]
    );

    let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut b).unwrap();
    for line in [
        "cluster_state:ok",
        "cluster_slots_assigned:16384",
        "cluster_known_nodes:3",
        "cluster_size:3",
        "cluster_my_epoch:2",
    ] {
        assert!(info.contains(&format!("{line}\r\n")), "{line} in {info}");
    }
    assert_eq!(int(&mut b, &["CLUSTER", "KEYSLOT", "123456789"]), 12739);
    assert_eq!(int(&mut b, &["CLUSTER", "KEYSLOT", "user{42}"]), 8000);
    assert_eq!(
        redis::cmd("READONLY").query::<String>(&mut b).unwrap(),
        "OK"
    );
    assert_eq!(
        redis::cmd("READWRITE").query::<String>(&mut b).unwrap(),
        "OK"
    );
    assert!(info_field(&info_text(&mut b, "cluster"), "cluster_enabled") == Some("1".into()));
    assert_eq!(
        info_field(&info_text(&mut b, "server"), "redis_mode").as_deref(),
        Some("cluster")
    );
    let help: Vec<String> = redis::cmd("CLUSTER").arg("HELP").query(&mut b).unwrap();
    assert!(help.iter().any(|l| l == "KEYSLOT"), "{help:?}");
    let mut b3 = nodes.node(1).client3();
    let hello: Value = redis::cmd("HELLO").arg("3").query(&mut b3).unwrap();
    let Value::Map(hello) = hello else { panic!() };
    assert!(hello.contains(&(
        Value::BulkString(b"mode".to_vec()),
        Value::BulkString(b"cluster".to_vec())
    )));
}

fn info_text(con: &mut redis::Connection, section: &str) -> String {
    info(con, Some(section))
}

#[test]
fn outside_cluster_mode_cluster_commands_answer_as_a_standalone_redis() {
    let server = TestServer::start(&[]);
    let mut c = server.client();
    for args in [
        &["CLUSTER", "INFO"][..],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "SHARDS"],
        &["CLUSTER", "NODES"],
        &["CLUSTER", "MYID"],
        &["CLUSTER", "KEYSLOT", "foo"],
        &["CLUSTER", "HELP"],
        &["READONLY"],
        &["READWRITE"],
    ] {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        assert_eq!(
            query_err(&mut c, &cmd),
            "ERR This instance has cluster support disabled",
            "{args:?}"
        );
    }
    assert_eq!(
        query_err(&mut c, redis::cmd("CLUSTER").arg("NOSUCH")),
        "ERR unknown subcommand 'NOSUCH'. Try CLUSTER HELP."
    );
    assert_eq!(
        info_field(&info_text(&mut c, "cluster"), "cluster_enabled").as_deref(),
        Some("0")
    );
    // LOCAL is accepted and changes nothing: one node's share is the whole answer.
    add(&mut c, &bare_event("u", "click", system_now())).unwrap();
    assert_eq!(int(&mut c, &["EVT.TOTAL", "LOCAL"]), 1);
    assert_eq!(int(&mut c, &["EVT.TOTAL"]), 1);
}

// ---------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------

#[test]
fn command_info_declares_the_user_as_key_so_clients_route_by_it() {
    let nodes = Nodes::start(3, &[]);
    let mut c = nodes.client(0);
    for (name, first) in [
        ("evt.add", 1),
        ("evt.user", 1),
        ("evt.sum", 1),
        ("evt.total", 0),
        ("evt.type", 0),
        ("watch", 1),
    ] {
        let info: Value = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(name)
            .query(&mut c)
            .unwrap();
        let Value::Array(entries) = info else {
            panic!()
        };
        let Value::Array(fields) = &entries[0] else {
            panic!()
        };
        // WATCH's users run to the last argument (-1), as Redis declares it.
        let last = if name == "watch" { -1 } else { first };
        assert_eq!(
            fields[3..6],
            [Value::Int(first), Value::Int(last), Value::Int(first)],
            "{name}: first key, last key, step"
        );
        let Value::Array(specs) = &fields[8] else {
            panic!("{fields:?}")
        };
        assert_eq!(specs.len(), usize::from(first == 1), "{name}: key specs");
    }
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("EVT.ADD")
        .arg("u1")
        .arg("{}")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, ["u1"]);
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("WATCH")
        .arg("u1")
        .arg("u2")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, ["u1", "u2"]);
    assert_eq!(
        query_err(
            &mut c,
            redis::cmd("COMMAND")
                .arg("GETKEYS")
                .arg("EVT.TOTAL")
                .arg("WINDOW")
                .arg("5")
        ),
        "ERR The command has no key arguments"
    );
    assert_eq!(
        query_err(
            &mut c,
            redis::cmd("COMMAND").arg("GETKEYS").arg("NOSUCH").arg("x")
        ),
        "ERR Invalid command specified"
    );
    // Every entry encodes in RESP3 too (key specs are maps).
    let count = int(&mut c, &["COMMAND", "COUNT"]) as usize;
    let all: Value = redis::cmd("COMMAND")
        .query(&mut nodes.node(0).client3())
        .unwrap();
    assert!(
        matches!(all, Value::Array(ref v) if v.len() == count),
        "{all:?}"
    );
}

#[test]
fn users_of_other_nodes_are_redirected_with_moved() {
    let nodes = Nodes::start(3, &[]);
    let here = nodes.user_on(0, "here");
    let there = nodes.user_on(1, "there");
    let slot = int(&mut nodes.client(0), &["CLUSTER", "KEYSLOT", &there]);
    let moved = format!("MOVED {slot} 127.0.0.1:{}", nodes.ports[1]);
    let mut a = nodes.client(0);

    // Keyed commands, the unkeyed EVT.ADD by its JSON's user_id, and a pipeline of
    // events: each answered in order, the foreign ones redirected and not counted.
    assert_eq!(query_err(&mut a, redis::cmd("EVT.USER").arg(&there)), moved);
    assert_eq!(
        query_err(&mut a, redis::cmd("EVT.SUM").arg(&there).arg("click")),
        moved
    );
    let keyless = keyless_json("click", T);
    assert_eq!(
        query_err(&mut a, redis::cmd("EVT.ADD").arg(&there).arg(&keyless)),
        moved
    );
    assert_eq!(
        add(&mut a, &event_json(&there, "click", T, 1.0)),
        Err(moved.clone())
    );
    let mut raw = nodes.node(0).raw();
    let mut pipeline = Vec::new();
    for user in [&here, &there, &here] {
        pipeline.extend(resp_str(&["EVT.ADD", &event_json(user, "click", T, 1.0)]));
    }
    pipeline.extend(resp_str(&["EVT.ADD", &here, &keyless]));
    let want = format!("+OK\r\n-{moved}\r\n+OK\r\n+OK\r\n");
    let got = send_recv(&mut raw, &pipeline, want.len());
    assert_eq!(String::from_utf8_lossy(&got), want);
    assert_eq!(int(&mut a, &["EVT.USER", &here]), 3);
    assert_eq!(int(&mut a, &["EVT.TOTAL", "LOCAL"]), 3);

    // The keyed form checks the JSON's user.
    assert_eq!(
        query_err(
            &mut a,
            redis::cmd("EVT.ADD")
                .arg(&here)
                .arg(event_json("someone", "click", T, 1.0))
        ),
        "ERR invalid event: 'user_id' is not the user id given before the JSON"
    );

    // EVT.MADD: all-or-nothing, naming the first foreign user and its node.
    let before = int(&mut a, &["EVT.TOTAL"]);
    let err = query_err(
        &mut a,
        redis::cmd("EVT.MADD")
            .arg(event_json(&here, "click", T, 1.0))
            .arg(event_json(&there, "click", T, 1.0)),
    );
    assert_eq!(
        err,
        format!(
            "ERR EVT.MADD applied nothing: user '{there}' (slot {slot}) lives on node 'b' at \
             127.0.0.1:{}; send each user's events to its node (keyed EVT.ADD in a cluster pipeline)",
            nodes.ports[1]
        )
    );
    assert_eq!(int(&mut a, &["EVT.TOTAL"]), before, "nothing applied");
    let ok: Vec<String> = redis::cmd("EVT.MADD")
        .arg(event_json(&here, "click", T, 1.0))
        .arg(event_json(&here, "view", T, 2.0))
        .query(&mut a)
        .unwrap();
    assert_eq!(ok, ["OK", "OK"]);

    // WATCH names users: a foreign one is redirected, users of different slots are
    // refused as Redis Cluster refuses a multi-key command, and users sharing a slot
    // through a hash tag are watched here.
    assert_eq!(query_err(&mut a, redis::cmd("WATCH").arg(&there)), moved);
    assert_eq!(
        query_err(&mut a, redis::cmd("WATCH").arg(&here).arg(&there)),
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    let tagged = format!("{{{here}}}.other");
    redis::cmd("WATCH")
        .arg(&here)
        .arg(&tagged)
        .query::<()>(&mut a)
        .expect("users of one slot are watched");
    redis::cmd("UNWATCH").query::<()>(&mut a).unwrap();

    // In a transaction: a foreign key is redirected while queueing and aborts EXEC,
    // as in Redis Cluster; a cluster-wide query cannot wait inside EXEC.
    let mut raw = nodes.node(0).raw();
    let mut req = resp_str(&["MULTI"]);
    req.extend(resp_str(&["EVT.USER", &there]));
    req.extend(resp_str(&["EXEC"]));
    let want = format!(
        "+OK\r\n-{moved}\r\n-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&send_recv(&mut raw, &req, want.len())),
        want
    );
    let mut req = resp_str(&["MULTI"]);
    req.extend(resp_str(&["EVT.TOTAL"]));
    req.extend(resp_str(&["EVT.TOTAL", "LOCAL"]));
    req.extend(resp_str(&["EXEC"]));
    let local = int(&mut a, &["EVT.TOTAL", "LOCAL"]);
    let want = format!(
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-ERR EVT.TOTAL for the whole cluster cannot run \
         inside MULTI (the other nodes' shares would come later than the transaction's \
         instant); add LOCAL for this node's share\r\n:{local}\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&send_recv(&mut raw, &req, want.len())),
        want
    );
}

// ---------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------

/// What one node fed every event answers.
#[derive(Default)]
struct Model {
    /// (user, type) → (second, value) of each event.
    events: BTreeMap<(String, String), Vec<(i64, f64)>>,
}

impl Model {
    fn total(&self, now: i64, span: i64) -> i64 {
        self.events
            .values()
            .flatten()
            .filter(|(s, _)| *s > now - span && *s <= now)
            .count() as i64
    }
}

#[test]
fn the_cluster_client_sees_the_answers_of_one_node() {
    let nodes = Nodes::start(3, &[]);
    let single = TestServer::start(&["--clock", "manual", "--clock-start", &T.to_string()]);
    let mut one = single.client();
    let mut cc = nodes.cluster_client();
    let types = ["click", "view", "buy"];
    let mut model = Model::default();
    let mut users = BTreeSet::new();
    // 600 users, 1-3 types each, events over the last 50 seconds; sent as keyed
    // EVT.ADD through the cluster client's pipelines (and unkeyed to one node).
    let mut pipe = redis::cluster::cluster_pipe();
    let mut single_pipe = redis::pipe();
    for i in 0..600u32 {
        let user = format!("user{i}");
        for k in 0..=(i % 3) {
            let ty = types[((i + k) % 3) as usize];
            let ts = T - i64::from((i * 7 + k * 13) % 50);
            let value = f64::from(i % 17) * 0.5 + f64::from(k);
            let json = event_json(&user, ty, ts, value);
            if i % 2 == 0 {
                pipe.cmd("EVT.ADD").arg(&user).arg(&json).ignore();
            } else {
                // The keyed form may leave user_id out of the JSON.
                let json = format!(
                    r#"{{"event_type":"{ty}","timestamp":{ts},"attributes":{{"value":{value}}}}}"#
                );
                pipe.cmd("EVT.ADD").arg(&user).arg(json).ignore();
            }
            single_pipe.cmd("EVT.ADD").arg(&json).ignore();
            model
                .events
                .entry((user.clone(), ty.to_string()))
                .or_default()
                .push((ts, value));
        }
        users.insert(user);
    }
    pipe.exec(&mut cc).expect("cluster pipeline");
    single_pipe.exec(&mut one).expect("single pipeline");

    let check =
        |cc: &mut redis::cluster::ClusterConnection, one: &mut redis::Connection, now: i64| {
            for i in 0..3 {
                let mut node = nodes.client(i);
                for span in [None, Some(10), Some(60)] {
                    let mut args = vec!["EVT.TOTAL".to_string()];
                    if let Some(s) = span {
                        args.extend(["WINDOW".to_string(), s.to_string()]);
                    }
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let want = model.total(now, span.unwrap_or(60));
                    assert_eq!(int(&mut node, &args), want, "node {i} {args:?}");
                    assert_eq!(int(one, &args), want, "one node {args:?}");
                }
                for ty in types {
                    assert_eq!(
                        int(&mut node, &["EVT.TYPE", ty]),
                        int(one, &["EVT.TYPE", ty]),
                        "node {i} EVT.TYPE {ty}"
                    );
                }
            }
            let local: i64 = (0..3)
                .map(|i| int(&mut nodes.client(i), &["EVT.TOTAL", "LOCAL"]))
                .sum();
            assert_eq!(local, model.total(now, 60), "the LOCAL shares add up");
            for user in &users {
                let via: i64 = redis::cmd("EVT.USER").arg(user).query(cc).unwrap();
                assert_eq!(via, int(one, &["EVT.USER", user]), "EVT.USER {user}");
                for ty in types {
                    let a: f64 = redis::cmd("EVT.SUM").arg(user).arg(ty).query(cc).unwrap();
                    let b: f64 = redis::cmd("EVT.SUM").arg(user).arg(ty).query(one).unwrap();
                    assert_eq!(a.to_bits(), b.to_bits(), "EVT.SUM {user} {ty}");
                }
            }
            // Through the cluster client too (routed to any node).
            let t: i64 = redis::cmd("EVT.TOTAL").query(cc).unwrap();
            assert_eq!(t, model.total(now, 60));
        };
    assert!(model.total(T, 60) > 1000);
    for i in 0..3 {
        assert!(
            int(&mut nodes.client(i), &["EVT.TOTAL", "LOCAL"]) > 100,
            "node {i} has users"
        );
    }
    check(&mut cc, &mut one, T);

    // The manual clock moves cluster-wide from any node.
    let moved: i64 = redis::cmd("EVT.CLOCK")
        .arg("ADVANCE")
        .arg(25)
        .query(&mut nodes.client(1))
        .unwrap();
    assert_eq!(moved, T + 25);
    for i in 0..3 {
        assert_eq!(
            int(&mut nodes.client(i), &["EVT.CLOCK"]),
            T + 25,
            "node {i}"
        );
    }
    int(&mut one, &["EVT.CLOCK", "ADVANCE", "25"]);
    check(&mut cc, &mut one, T + 25);
    // LOCAL moves only this node.
    assert_eq!(
        int(
            &mut nodes.client(2),
            &["EVT.CLOCK", "SET", &(T + 30).to_string(), "LOCAL"]
        ),
        T + 30
    );
    assert_eq!(int(&mut nodes.client(0), &["EVT.CLOCK"]), T + 25);
}

/// A command's reply, as a value.
fn value(con: &mut impl redis::ConnectionLike, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
        .unwrap_or_else(|e| panic!("{args:?}: {}", err_text(&e)))
}

#[test]
fn the_analytics_of_any_node_are_those_of_one_node() {
    let nodes = Nodes::start(3, &[]);
    let single = TestServer::start(&["--clock", "manual", "--clock-start", &T.to_string()]);
    let mut one = single.client();
    let mut cc = nodes.cluster_client();
    let types = ["click", "view", "buy", "refund"];
    let mut pipe = redis::cluster::cluster_pipe();
    let mut single_pipe = redis::pipe();
    // 900 users, counts with many ties, types on every node, values that do not add
    // up exactly in floating point.
    for i in 0..900u32 {
        let user = format!("user{i}");
        for k in 0..(1 + i % 4) {
            let ty = types[((i / 3 + k) % 4) as usize];
            let ts = T - i64::from((i * 11 + k * 7) % 40);
            // Whole values for "refund": a RESP2 share writes those sums as "10".
            let value = if ty == "refund" {
                f64::from(i % 5)
            } else {
                0.1 * f64::from(1 + i % 9)
            };
            let json = event_json(&user, ty, ts, value);
            pipe.cmd("EVT.ADD").arg(&user).arg(&json).ignore();
            single_pipe.cmd("EVT.ADD").arg(&json).ignore();
        }
    }
    // A type whose only user lives on node 1, asked of node 0 below: node 0's share
    // is empty, node 1's a RESP2 "5", and the answer must still be a double.
    let giver = nodes.user_on(1, "giver");
    let json = event_json(&giver, "gift", T, 5.0);
    pipe.cmd("EVT.ADD").arg(&giver).arg(&json).ignore();
    single_pipe.cmd("EVT.ADD").arg(&json).ignore();
    pipe.exec(&mut cc).expect("cluster pipeline");
    single_pipe.exec(&mut one).expect("single pipeline");
    let global: Vec<Vec<&str>> = vec![
        vec!["EVT.TOP", "SUM", "gift"],
        vec!["EVT.TOP", "USERS"],
        vec!["EVT.TOP", "USERS", "COUNT", "1000"],
        vec!["EVT.TOP", "USERS", "COUNT", "7", "WINDOW", "10"],
        vec!["EVT.TOP", "TYPES"],
        vec!["EVT.TOP", "TYPES", "COUNT", "2", "WINDOW", "5"],
        vec!["EVT.TOP", "SUM", "buy", "COUNT", "25"],
        vec!["EVT.TOP", "SUM", "refund", "WINDOW", "20"],
        vec!["EVT.ACTIVE", "USERS"],
        vec!["EVT.ACTIVE", "TYPES"],
        vec!["EVT.ACTIVE", "TYPES", "WINDOW", "1"],
        vec!["EVT.ACTIVE", "PAIRS", "WINDOW", "30"],
        vec!["EVT.SERIES", "TOTAL"],
        vec!["EVT.SERIES", "TYPE", "view", "WINDOW", "12"],
    ];
    for i in 0..3 {
        let mut node = nodes.client(i);
        for args in &global {
            assert_eq!(
                value(&mut node, args),
                value(&mut one, args),
                "node {i} {args:?}"
            );
        }
        let mut node3 = nodes.node(i).client3();
        let mut one3 = single.client3();
        for args in [&global[0], &global[5]] {
            assert_eq!(
                value(&mut node3, args),
                value(&mut one3, args),
                "RESP3 node {i} {args:?}"
            );
        }
    }
    // The users' own series and profiles go to their node.
    for i in (0..900).step_by(37) {
        let user = format!("user{i}");
        for args in [
            vec!["EVT.SERIES", "USER", &user, "WINDOW", "40"],
            vec!["EVT.SERIES", "SUM", &user, "buy"],
            vec!["EVT.PROFILE", &user],
        ] {
            assert_eq!(value(&mut cc, &args), value(&mut one, &args), "{args:?}");
        }
    }
    // LOCAL shares: users are partitioned, so they add up; types are not.
    let local: i64 = (0..3)
        .map(|i| int(&mut nodes.client(i), &["EVT.ACTIVE", "USERS", "LOCAL"]))
        .sum();
    assert_eq!(local, int(&mut one, &["EVT.ACTIVE", "USERS"]));
    for i in 0..3 {
        let local = int(&mut nodes.client(i), &["EVT.ACTIVE", "TYPES", "LOCAL"]);
        assert_eq!(
            local,
            if i == 1 { 5 } else { 4 },
            "node {i}: each holds the four types"
        );
    }
    // Inside MULTI only LOCAL works.
    let mut node = nodes.client(0);
    let mut p = redis::pipe();
    p.atomic()
        .cmd("EVT.TOP")
        .arg("USERS")
        .cmd("EVT.ACTIVE")
        .arg("USERS")
        .arg("LOCAL");
    let text = match p.query::<redis::Value>(&mut node) {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("{e}"),
    };
    assert!(text.contains("cannot run inside MULTI"), "{text}");
}

#[test]
fn shares_are_read_at_the_asking_nodes_second_within_the_skew() {
    let nodes = Nodes::start(3, &[]);
    let mut a = nodes.client(0);
    let now = T.to_string();
    assert_eq!(int(&mut a, &["EVT.TOTAL", "LOCAL", "AT", &now]), 0);
    let far = (T + 5).to_string();
    assert_eq!(
        query_err(
            &mut a,
            redis::cmd("EVT.TOTAL").arg("LOCAL").arg("AT").arg(&far)
        ),
        format!(
            "ERR asked for the window at {far}, but this node's clock reads {T}: more than 1 s \
             apart (check the nodes' clocks, or EVT.CLOCK SET with the manual clock)"
        )
    );
    // A node whose clock has drifted makes the cluster-wide answer an error naming it.
    int(
        &mut nodes.client(2),
        &["EVT.CLOCK", "ADVANCE", "5", "LOCAL"],
    );
    let err = query_err(&mut a, &redis::cmd("EVT.TOTAL"));
    assert!(
        err.starts_with(&format!(
            "ERR EVT.TOTAL has no answer for the whole cluster: node 'c' at 127.0.0.1:{}: \
             answered ERR asked for the window at {T}",
            nodes.ports[2]
        )),
        "{err}"
    );
}

#[test]
fn a_stopped_node_makes_global_answers_an_error_naming_it_while_users_elsewhere_are_served() {
    let mut nodes = Nodes::start(3, &[]);
    let users: Vec<String> = (0..3).map(|i| nodes.user_on(i, "u")).collect();
    let mut cc = nodes.cluster_client();
    for u in &users {
        redis::cmd("EVT.ADD")
            .arg(u)
            .arg(keyless_json("click", T))
            .exec(&mut cc)
            .unwrap();
    }
    assert_eq!(int(&mut nodes.client(0), &["EVT.TOTAL"]), 3);
    let port_c = nodes.ports[2];
    nodes.stop(2);
    for (i, user) in users.iter().enumerate().take(2) {
        let mut node = nodes.client(i);
        let err = query_err(&mut node, &redis::cmd("EVT.TOTAL"));
        assert!(
            err.starts_with(&format!(
                "ERR EVT.TOTAL has no answer for the whole cluster: node 'c' at 127.0.0.1:{port_c}: "
            )) && err.ends_with("; add LOCAL for this node's share only"),
            "{err}"
        );
        let err = query_err(&mut node, redis::cmd("EVT.TYPE").arg("click"));
        assert!(err.contains("node 'c'"), "{err}");
        assert_eq!(int(&mut node, &["EVT.TOTAL", "LOCAL"]), 1);
        assert_eq!(int(&mut node, &["EVT.USER", user]), 1);
    }
    // The cluster client still reaches the users of the live nodes.
    for u in &users[..2] {
        let n: i64 = redis::cmd("EVT.USER").arg(u).query(&mut cc).unwrap();
        assert_eq!(n, 1, "{u}");
    }
}

#[test]
fn a_restarted_node_is_asked_again_on_a_fresh_connection() {
    let mut nodes = Nodes::start_restartable(3, &[]);
    let users: Vec<String> = (0..3).map(|i| nodes.user_on(i, "r")).collect();
    for (i, u) in users.iter().enumerate() {
        let mut c = nodes.client(i);
        redis::cmd("EVT.ADD")
            .arg(u)
            .arg(keyless_json("click", T))
            .exec(&mut c)
            .unwrap();
    }
    let mut a = nodes.client(0);
    // The links to b and c are open now.
    assert_eq!(int(&mut a, &["EVT.TOTAL"]), 3);
    nodes.restart(2);
    // c lost its window; the link's old connection is closed, and the share is asked
    // again on a new one.
    assert_eq!(int(&mut a, &["EVT.TOTAL"]), 2);
    assert_eq!(int(&mut a, &["EVT.TYPE", "click"]), 2);
}

#[test]
fn many_clients_asking_at_once_each_get_their_own_answer() {
    let nodes = Nodes::start(3, &[]);
    let mut cc = nodes.cluster_client();
    // One event in each of the last 60 seconds (T-59 .. T), users all over the map:
    // EVT.TOTAL WINDOW w is w, so a reply given to the wrong asker shows.
    for s in 0..60 {
        redis::cmd("EVT.ADD")
            .arg(format!("m{s}"))
            .arg(keyless_json("click", T - s))
            .exec(&mut cc)
            .unwrap();
    }
    let threads: Vec<_> = (1..=24)
        .map(|k| {
            let url = nodes.node(k % 3).url();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                for round in 0..40 {
                    let w = 1 + (k * 7 + round) % 60;
                    let got: i64 = redis::cmd("EVT.TOTAL")
                        .arg("WINDOW")
                        .arg(w)
                        .query(&mut c)
                        .unwrap();
                    assert_eq!(got as usize, w, "client {k} round {round}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client saw a wrong answer");
    }
}

#[test]
fn with_a_password_the_nodes_log_in_to_each_other() {
    let nodes = Nodes::start(3, &["--requirepass", "s3cret"]);
    let urls: Vec<String> = nodes
        .ports
        .iter()
        .map(|p| format!("redis://:s3cret@127.0.0.1:{p}/"))
        .collect();
    let mut cc = redis::cluster::ClusterClient::new(urls)
        .and_then(|c| c.get_connection())
        .expect("cluster connection with the password");
    for i in 0..30 {
        redis::cmd("EVT.ADD")
            .arg(format!("p{i}"))
            .arg(keyless_json("click", T))
            .exec(&mut cc)
            .unwrap();
    }
    let mut a = nodes.client(0);
    redis::cmd("AUTH").arg("s3cret").exec(&mut a).unwrap();
    assert_eq!(int(&mut a, &["EVT.TOTAL"]), 30);
}

/// A free port on 127.0.0.1 (bound, then released for a child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn a_node_that_does_not_answer_times_out_without_holding_up_its_askers_thread() {
    // Node c accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let ports = [
        free_port(),
        free_port(),
        silent.local_addr().unwrap().port(),
    ];
    let dir = TempDir::new("hung");
    let map = dir.path("map.json");
    write_map(&map, &ports);
    let map = map.to_str().unwrap().to_string();
    let spawn = |i: usize| {
        let port = ports[i].to_string();
        Spawned::start(&[
            "--port",
            &port,
            "--threads",
            "1",
            "--cluster-config",
            &map,
            "--cluster-node",
            NAMES[i],
            "--cluster-timeout",
            "400",
        ])
    };
    let a = spawn(0);
    let _b = spawn(1);
    let held = std::thread::spawn(move || {
        // Keep accepted sockets open without reading them.
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept() {
            open.push(s);
            if open.len() > 8 {
                break;
            }
        }
    });
    let mut asking = a.raw();
    let started = Instant::now();
    asking.write_all(&resp_str(&["EVT.TOTAL"])).unwrap();
    // While it waits, the same (only) serving thread answers another client at once.
    std::thread::sleep(Duration::from_millis(50));
    let mut other = a.raw();
    let t = Instant::now();
    assert_eq!(send_recv(&mut other, b"PING\r\n", 7), b"+PONG\r\n");
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    let got = read_until_suffix(&mut asking, b"\r\n");
    let took = started.elapsed();
    assert_eq!(
        String::from_utf8_lossy(&got),
        format!(
            "-ERR EVT.TOTAL has no answer for the whole cluster: node 'c' at 127.0.0.1:{}: did \
             not answer within 400 ms; add LOCAL for this node's share only\r\n",
            ports[2]
        )
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // The connection goes on with the next request.
    assert_eq!(send_recv(&mut asking, b"PING\r\n", 7), b"+PONG\r\n");
    drop(held);
}

// ---------------------------------------------------------------------------------
// External tools
// ---------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(have_redis_server),
    ignore = "needs redis-server (apt-get install redis-server)"
)]
fn slots_are_those_of_a_real_redis_cluster() {
    let dir = TempDir::new("redis");
    let port = free_port();
    let mut redis = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            dir.path("nodes.conf").to_str().unwrap(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.0.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server");
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut theirs = loop {
        match redis::Client::open(url.as_str()).and_then(|c| c.get_connection()) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("redis-server did not start: {e}"),
        }
    };
    let nodes = Nodes::start(1, &[]);
    let mut ours = nodes.client(0);
    let mut keys: Vec<Vec<u8>> = vec![b"".to_vec(), b"{}".to_vec(), b"{".to_vec(), b"}{".to_vec()];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..2000u32 {
        // A cheap generator: keys of 1-20 bytes, braces often.
        let len = 1 + (i % 20) as usize;
        let key: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match x % 8 {
                    0 => b'{',
                    1 => b'}',
                    _ => (x >> 8) as u8,
                }
            })
            .collect();
        keys.push(key);
    }
    let mut p1 = redis::pipe();
    let mut p2 = redis::pipe();
    for k in &keys {
        p1.cmd("CLUSTER").arg("KEYSLOT").arg(k.as_slice());
        p2.cmd("CLUSTER").arg("KEYSLOT").arg(k.as_slice());
    }
    let a: Vec<i64> = p1.query(&mut ours).unwrap();
    let b: Vec<i64> = p2.query(&mut theirs).unwrap();
    let _ = redis.kill();
    let _ = redis.wait();
    assert_eq!(a.len(), keys.len());
    for ((k, x), y) in keys.iter().zip(&a).zip(&b) {
        assert_eq!(x, y, "CLUSTER KEYSLOT {:?}", String::from_utf8_lossy(k));
    }
}

#[test]
#[cfg_attr(
    not(have_redis_cli),
    ignore = "needs redis-cli (apt-get install redis-tools)"
)]
fn redis_cli_follows_moved_to_the_users_node() {
    let nodes = Nodes::start(3, &[]);
    let user = nodes.user_on(2, "cli");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-c", "-p", &nodes.ports[0].to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(cli(&["EVT.ADD", &user, &keyless_json("click", T)]), "OK\n");
    assert_eq!(
        cli(&["EVT.ADD", &event_json(&user, "view", T, 2.5)]),
        "OK\n"
    );
    assert_eq!(cli(&["EVT.USER", &user]), "2\n");
    assert_eq!(cli(&["EVT.SUM", &user, "view"]), "2.5\n");
    assert_eq!(int(&mut nodes.client(2), &["EVT.TOTAL", "LOCAL"]), 2);
    assert_eq!(int(&mut nodes.client(0), &["EVT.TOTAL", "LOCAL"]), 0);
}

#[test]
#[cfg_attr(
    not(have_redis_benchmark),
    ignore = "needs redis-benchmark (apt-get install redis-tools)"
)]
fn redis_benchmark_in_cluster_mode_has_every_event_counted() {
    let nodes = Nodes::start(3, &[]);
    let n = 30_000;
    let json = keyless_json("click", T);
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "--cluster",
            "-h",
            "127.0.0.1",
            "-p",
            &nodes.ports[0].to_string(),
            "-n",
            &n.to_string(),
            "-c",
            "12",
            "-P",
            "16",
            "-r",
            "1000000",
            "-q",
            "EVT.ADD",
            "user{tag}__rand_int__",
            &json,
        ])
        .output()
        .expect("redis-benchmark");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut accepted = 0;
    for i in 0..3 {
        let mut c = nodes.client(i);
        assert_eq!(
            int(&mut c, &["EVT.TOTAL"]),
            n,
            "node {i} answers for the cluster"
        );
        accepted += info_i64(&mut c, "events_accepted");
        assert_eq!(info_i64(&mut c, "events_rejected"), 0, "node {i}");
        assert!(
            int(&mut c, &["EVT.TOTAL", "LOCAL"]) > 0,
            "node {i} got events"
        );
    }
    assert_eq!(accepted, n);
}

#[test]
#[cfg_attr(
    not(have_redis_cli),
    ignore = "needs redis-cli (apt-get install redis-tools)"
)]
fn the_readmes_cluster_example_prints_what_the_readme_shows() {
    // The block after `<!-- readme-cluster-test: <flags> -->`: commands after a
    // `127.0.0.1:<port>> ` prompt, each followed by what `redis-cli -c` prints. The
    // README's nodes are on 7001-7003; ours are on free ports, put in their place.
    const MARK: &str = "<!-- readme-cluster-test:";
    let readme = include_str!("../../README.md");
    let mut lines = readme.lines().skip_while(|l| !l.starts_with(MARK));
    let flags: Vec<&str> = lines
        .next()
        .expect("the README's cluster example")
        .trim_start_matches(MARK)
        .trim_end_matches("-->")
        .split_whitespace()
        .collect();
    assert_eq!(lines.next(), Some("```text"));
    let (mut commands, mut expected) = (Vec::new(), String::new());
    for line in lines.take_while(|l| *l != "```") {
        let prompt = line
            .strip_prefix("127.0.0.1:")
            .and_then(|rest| rest.split_once("> "))
            .filter(|(port, _)| port.parse::<u16>().is_ok());
        match prompt {
            Some((_, cmd)) => commands.push(cmd.to_string()),
            None => {
                expected.push_str(line);
                expected.push('\n');
            }
        }
    }
    assert!(commands.len() >= 8, "{commands:?}");
    let nodes = Nodes::start(3, &flags);
    for (i, port) in nodes.ports.iter().enumerate() {
        expected = expected.replace(
            &format!("127.0.0.1:{}", 7001 + i),
            &format!("127.0.0.1:{port}"),
        );
    }
    let mut child = std::process::Command::new("redis-cli")
        .args(["-c", "-p", &nodes.ports[0].to_string(), "--no-raw"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all((commands.join("\n") + "\n").as_bytes())
        .expect("commands to redis-cli");
    let out = child.wait_with_output().expect("redis-cli output");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

/// Three consecutive free ports (for scripts/cluster, which numbers its nodes' ports
/// from its first).
fn free_ports_in_a_row() -> u16 {
    for _ in 0..100 {
        let base = free_port();
        if base < 65000
            && (1..3).all(|k| TcpListener::bind(("127.0.0.1", base + k)).is_ok())
            && TcpListener::bind(("127.0.0.1", base)).is_ok()
        {
            return base;
        }
    }
    panic!("no three free ports in a row");
}

#[test]
#[cfg_attr(not(have_python3), ignore = "needs python3")]
fn scripts_cluster_starts_three_nodes_and_stops_them() {
    let dir = TempDir::new("script");
    let base = free_ports_in_a_row();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("python3")
            .arg(script)
            .arg("--dir")
            .arg(&dir.0)
            .args(args)
            .output()
            .expect("python3 scripts/cluster");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let base_s = base.to_string();
    let (ok, out) = run(&[
        "start",
        "3",
        "--bin",
        env!("CARGO_BIN_EXE_scalable-analytics"),
        "--port",
        &base_s,
        "--",
        "--clock",
        "manual",
        "--clock-start",
        "1700000000",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("redis-cli -c -p {base}")), "{out}");
    assert!(
        out.contains(&format!("c  127.0.0.1:{}  slots 10923-16383", base + 2)),
        "{out}"
    );
    let map: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("cluster.json")).expect("map"))
            .expect("the map is JSON");
    assert_eq!(map["nodes"][1]["slots"], serde_json::json!([[5461, 10922]]));
    assert_eq!(map["nodes"][1]["port"], serde_json::json!(base + 1));
    let url = |k: u16| format!("redis://127.0.0.1:{}/", base + k);
    let mut cc = redis::cluster::ClusterClient::new((0..3).map(url).collect::<Vec<_>>())
        .and_then(|c| c.get_connection())
        .expect("cluster client");
    for u in ["alice", "bob", "user42"] {
        redis::cmd("EVT.ADD")
            .arg(u)
            .arg(keyless_json("click", T))
            .exec(&mut cc)
            .unwrap();
    }
    let mut c = redis::Client::open(url(2))
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(int(&mut c, &["EVT.TOTAL"]), 3);
    drop(c);
    drop(cc);
    let (ok, again) = run(&["start", "3", "--port", &base_s]);
    assert!(!ok && again.contains("already running"), "{again}");
    let (ok, out) = run(&["stop"]);
    assert!(ok && out.contains("stopped 3 node(s)"), "{out}");
    for k in 0..3 {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", base + k)).is_err(),
            "node {k} still listens"
        );
    }
}
