//! Cluster mode: several servers sharing the users by Redis Cluster's hash slots, so
//! the cluster clients of every Redis library route to them unchanged.
//!
//! ```text
//!   --cluster-config map.json --cluster-node b
//!        │
//!        ▼
//!   Map (map.rs) ── nodes [a, b, c], owner[16384 slots] → node
//!        │
//!   Cluster ── route(key) ─────────── here, or -MOVED <slot> <host:port>
//!        │                             (slot.rs: CRC16 with {hash tags})
//!        └── gather(Ask) ──► Pool (fanout.rs) ──HELLO 3 / share request──► a, c
//!                 ▲                                    │ replies (RESP3)
//!                 └── this node's share ──► Merge (merge.rs) ──► one reply
//! ```
//!
//! - **Topology** comes from the file, the same on every node, checked whole at start
//!   ([`map`]). There is no gossip and no failover: the map is what the operator wrote.
//! - **Routing**: a user lives in slot `CRC16(user_id) mod 16384` ([`slot`]). A command
//!   naming a user another node serves is answered `-MOVED`; the command layer asks
//!   [`Cluster::route`] before running it.
//! - **Cluster-wide answers**: the node a client asked computes its own share at its
//!   `now`, asks every other node for theirs *at that same `now`* (`... LOCAL AT <now>`)
//!   in parallel with a deadline, and merges ([`merge`]). The command layer builds the
//!   request and the share; this module only carries and combines them.
//!
//! The design stays open for moving slots (`ASK`): routing asks one function which node
//! serves a slot, so a slot in migration can answer `-ASK` from the same place.

pub mod fanout;
pub mod map;
pub mod merge;
pub mod slot;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::ClockMode;
use crate::config::Config;
use crate::error::{ErrorKind, ReplyError};
use crate::protocol::{Reply, encode_request};
use fanout::{Boxed, Failure, Pool, join_all};
pub use map::{Map, Node};
use merge::Merge;
pub use slot::key_slot;

/// This server's place in a cluster.
#[derive(Debug)]
pub struct Cluster {
    map: Map,
    me: usize,
    /// How long a cluster-wide query waits for the other nodes' shares.
    timeout: Duration,
    pool: Pool,
}

/// What a cluster-wide query asks of the other nodes.
pub struct Ask<M> {
    /// The command giving a node's share (with `LOCAL AT <now>`).
    pub request: Vec<Vec<u8>>,
    /// This node's share, already read.
    pub local: Reply,
    pub merge: M,
    /// The command's name, for errors.
    pub what: String,
    /// What the client may do instead, for errors.
    pub hint: &'static str,
}

/// The cluster this server is a node of, as its flags say; `None` outside cluster
/// mode. `port` is the port it listens on, which must be its port in the map.
pub fn from_config(config: &Config, port: u16) -> Result<Option<Arc<Cluster>>, String> {
    let (Some(path), Some(name)) = (&config.cluster_config, &config.cluster_node) else {
        return Ok(None);
    };
    if config.clock == ClockMode::Event {
        return Err(
            "--clock event cannot be used in a cluster: each node's event clock \
                    would follow only its own users' events, so the nodes would read the \
                    window at different seconds; use --clock wall or --clock manual"
                .into(),
        );
    }
    let map = Map::load(path)?;
    let timeout = Duration::from_millis(config.cluster_timeout);
    let cluster = Cluster::new(map, name, port, timeout)
        .map_err(|e| format!("cluster config {}: {e}", path.display()))?;
    Ok(Some(Arc::new(cluster)))
}

impl Cluster {
    /// This node, the one called `name` in `map`, listening on `port`.
    pub fn new(map: Map, name: &str, port: u16, timeout: Duration) -> Result<Cluster, String> {
        let me = map.find(name)?;
        let node = &map.nodes[me];
        if node.port != port {
            return Err(format!(
                "node '{name}' is {}:{} in the map, but this server listens on port {port}",
                node.host, node.port
            ));
        }
        let pool = Pool::default();
        Ok(Cluster {
            map,
            me,
            timeout,
            pool,
        })
    }

    /// Every node, in the map's order.
    pub fn nodes(&self) -> &[Node] {
        &self.map.nodes
    }

    /// This node's index in [`Cluster::nodes`].
    pub fn me(&self) -> usize {
        self.me
    }

    /// This node.
    pub fn myself(&self) -> &Node {
        &self.map.nodes[self.me]
    }

    /// Whether this node serves every slot (a cluster of one): nothing to fan out.
    pub fn alone(&self) -> bool {
        self.map.nodes.len() == 1
    }

    /// `Ok` when this node serves `key`'s slot; else the `-MOVED` to send.
    #[inline]
    pub fn route(&self, key: &[u8]) -> Result<(), ReplyError> {
        match self.foreign(key) {
            None => Ok(()),
            Some((slot, owner)) => Err(self.moved(slot, owner)),
        }
    }

    /// The node serving `key`, when it is not this one: its slot and index.
    #[inline]
    pub fn foreign(&self, key: &[u8]) -> Option<(u16, usize)> {
        let slot = key_slot(key);
        let owner = self.map.owner(slot);
        (owner != self.me).then_some((slot, owner))
    }

    /// `-MOVED <slot> <host>:<port>`, as Redis Cluster redirects.
    pub fn moved(&self, slot: u16, owner: usize) -> ReplyError {
        let node = &self.map.nodes[owner];
        ReplyError::new(ErrorKind::Moved, format!("{slot} {}", node.endpoint()))
    }

    /// Asks every other node for its share (in parallel, within the timeout) and
    /// merges them with this node's. A node that refuses, errs or is late makes the
    /// whole answer an error naming it.
    pub fn gather<M: Merge>(
        self: &Arc<Self>,
        ask: Ask<M>,
        password: Option<String>,
    ) -> Boxed<'static, Result<Reply, ReplyError>> {
        let cluster = self.clone();
        Box::pin(async move {
            let request: Arc<[u8]> = encode_request(&ask.request).into();
            let password: Option<Arc<str>> = password.map(Into::into);
            let deadline = tokio::time::Instant::now() + cluster.timeout;
            let peers: Vec<usize> = (0..cluster.map.nodes.len())
                .filter(|&i| i != cluster.me)
                .collect();
            let calls: Vec<Boxed<'_, Result<Reply, Failure>>> = peers
                .iter()
                .map(|&i| {
                    let fut = cluster.pool.ask(
                        i,
                        &cluster.map.nodes[i],
                        password.clone(),
                        request.clone(),
                        deadline,
                        cluster.timeout,
                    );
                    Box::pin(fut) as Boxed<'_, _>
                })
                .collect();
            let answers = join_all(calls).await;
            let mut shares = Vec::with_capacity(answers.len() + 1);
            shares.push(ask.local);
            let mut failed = Vec::new();
            for (&i, answer) in peers.iter().zip(answers) {
                let node = &cluster.map.nodes[i];
                let why = match answer {
                    Ok(Reply::Error(e)) => format!("answered {e}"),
                    Ok(share) => {
                        shares.push(share);
                        continue;
                    }
                    Err(f) => f.to_string(),
                };
                failed.push(format!(
                    "node '{}' at {}: {why}",
                    node.name,
                    node.endpoint()
                ));
            }
            if !failed.is_empty() {
                return Err(ReplyError::err(format!(
                    "{} has no answer for the whole cluster: {}; {}",
                    ask.what,
                    failed.join("; "),
                    ask.hint
                )));
            }
            ask.merge.merge(shares).map_err(|why| {
                ReplyError::err(format!(
                    "{}: the nodes' shares do not merge: {why}",
                    ask.what
                ))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Map {
        Map::parse(
            r#"{"nodes": [
            {"id": "a", "host": "127.0.0.1", "port": 7001, "slots": [[0, 5460]]},
            {"id": "b", "host": "127.0.0.1", "port": 7002, "slots": [[5461, 10922]]},
            {"id": "c", "host": "127.0.0.1", "port": 7003, "slots": [[10923, 16383]]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn routes_by_slot_and_names_the_owner() {
        let c = Cluster::new(three(), "a", 7001, Duration::from_secs(1)).unwrap();
        // "bar" is slot 5061 (node a), "foo" slot 12182 (node c).
        assert_eq!(c.route(b"bar"), Ok(()));
        assert_eq!(
            c.route(b"foo").unwrap_err().text(),
            "MOVED 12182 127.0.0.1:7003"
        );
        assert_eq!(c.foreign(b"foo"), Some((12182, 2)));
        assert_eq!(c.foreign(b"x{bar}"), None);
        assert!(!c.alone());
    }

    #[test]
    fn this_node_must_be_in_the_map_at_its_port() {
        let e = Cluster::new(three(), "b", 7005, Duration::from_secs(1)).unwrap_err();
        assert_eq!(
            e,
            "node 'b' is 127.0.0.1:7002 in the map, but this server listens on port 7005"
        );
        assert!(Cluster::new(three(), "z", 7001, Duration::from_secs(1)).is_err());
    }
}
