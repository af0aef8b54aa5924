//! The cluster's map: which node serves which slots, read from the JSON file every
//! node is given (`--cluster-config`), and checked whole before the node starts.
//!
//! ```json
//! {"nodes": [
//!   {"id": "a", "host": "127.0.0.1", "port": 7001, "slots": [[0, 5460]]},
//!   {"id": "b", "host": "127.0.0.1", "port": 7002, "slots": [[5461, 10922]]},
//!   {"id": "c", "host": "127.0.0.1", "port": 7003, "slots": [[10923, 16383]]}
//! ]}
//! ```
//!
//! Every slot must be served by exactly one node: a slot left out, or given twice, is
//! refused with the slot and the nodes named. The map is the whole topology; nodes do
//! not gossip, so changing it means giving every node a new file (README: "Changing
//! the map").

use std::path::Path;

use serde::Deserialize;

use super::slot::SLOTS;

/// Most nodes one map may name: far beyond what a window of user activity needs, and
/// a bound on the fan-out of every cluster-wide query.
pub const MAX_NODES: usize = 1000;

/// The file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    nodes: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    host: String,
    port: u16,
    slots: Vec<[u32; 2]>,
}

/// One node of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The id the file gives it (`"a"`).
    pub name: String,
    /// Its id as Redis shows node ids: 40 hex characters, the SHA-1 of `name`, so
    /// every node derives the same id for it from the same file.
    pub id: String,
    pub host: String,
    pub port: u16,
    /// Its slot ranges, inclusive, in the order of the file.
    pub ranges: Vec<(u16, u16)>,
}

impl Node {
    /// `host:port`, as `-MOVED` names it.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A checked map: the nodes, and the owner of every slot.
#[derive(Debug, Clone)]
pub struct Map {
    pub nodes: Vec<Node>,
    /// `owner[slot]` is an index into `nodes`.
    owner: Box<[u16]>,
}

/// The 40-hex-character node id of the node called `name`.
pub fn node_id(name: &str) -> String {
    sha1_smol::Sha1::from(name.as_bytes()).digest().to_string()
}

impl Map {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Map, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the cluster config {}: {e}", path.display()))?;
        Map::parse(&text).map_err(|e| format!("cluster config {}: {e}", path.display()))
    }

    /// Parses and checks a map.
    pub fn parse(text: &str) -> Result<Map, String> {
        let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.nodes.is_empty() {
            return Err("no nodes".into());
        }
        if file.nodes.len() > MAX_NODES {
            return Err(format!("{} nodes; at most {MAX_NODES}", file.nodes.len()));
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(file.nodes.len());
        for e in file.nodes {
            if e.id.is_empty() || e.host.is_empty() || e.port == 0 {
                return Err(format!(
                    "node '{}': id, host and a port from 1 to 65535 are required",
                    e.id
                ));
            }
            if let Some(other) = nodes.iter().find(|n| n.name == e.id) {
                return Err(format!("two nodes are called '{}'", other.name));
            }
            if let Some(other) = nodes.iter().find(|n| n.host == e.host && n.port == e.port) {
                return Err(format!(
                    "nodes '{}' and '{}' both listen on {}:{}",
                    other.name, e.id, e.host, e.port
                ));
            }
            let mut ranges = Vec::with_capacity(e.slots.len());
            for [start, end] in e.slots {
                let last = SLOTS as u32 - 1;
                if start > end || end > last {
                    return Err(format!(
                        "node '{}': slot range [{start}, {end}] is not within 0 to {last} with start <= end",
                        e.id
                    ));
                }
                ranges.push((start as u16, end as u16));
            }
            nodes.push(Node {
                id: node_id(&e.id),
                name: e.id,
                host: e.host,
                port: e.port,
                ranges,
            });
        }
        let owner = owners(&nodes)?;
        Ok(Map { nodes, owner })
    }

    /// The index of the node called `name`, or why there is none.
    pub fn find(&self, name: &str) -> Result<usize, String> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
                format!(
                    "--cluster-node '{name}' is not one of its nodes ({})",
                    names.join(", ")
                )
            })
    }

    /// The index of the node serving `slot`.
    pub fn owner(&self, slot: u16) -> usize {
        usize::from(self.owner.get(usize::from(slot)).copied().unwrap_or(0))
    }
}

/// The owner of every slot, or the first slot left out or given twice.
fn owners(nodes: &[Node]) -> Result<Box<[u16]>, String> {
    const NONE: u16 = u16::MAX;
    let mut owner = vec![NONE; SLOTS].into_boxed_slice();
    for (i, node) in nodes.iter().enumerate() {
        for &(start, end) in &node.ranges {
            for slot in start..=end {
                let cell = &mut owner[usize::from(slot)];
                if *cell != NONE {
                    let first = &nodes[usize::from(*cell)].name;
                    return Err(if usize::from(*cell) == i {
                        format!("slot {slot} is given twice to node '{first}'")
                    } else {
                        format!(
                            "slot {slot} is given to two nodes, '{first}' and '{}'",
                            node.name
                        )
                    });
                }
                *cell = i as u16;
            }
        }
    }
    if let Some(first) = owner.iter().position(|&o| o == NONE) {
        let last = owner
            .iter()
            .skip(first)
            .position(|&o| o != NONE)
            .map_or(SLOTS - 1, |n| first + n - 1);
        return Err(if first == last {
            format!("slot {first} is not served by any node")
        } else {
            format!("slots {first} to {last} are not served by any node")
        });
    }
    Ok(owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = r#"{"nodes": [
        {"id": "a", "host": "127.0.0.1", "port": 7001, "slots": [[0, 5460]]},
        {"id": "b", "host": "127.0.0.1", "port": 7002, "slots": [[5461, 10922]]},
        {"id": "c", "host": "127.0.0.1", "port": 7003, "slots": [[10923, 16383]]}
    ]}"#;

    #[test]
    fn a_full_map_is_read() {
        let m = Map::parse(THREE).unwrap();
        assert_eq!(m.nodes.len(), 3);
        assert_eq!(m.owner(0), 0);
        assert_eq!(m.owner(5460), 0);
        assert_eq!(m.owner(5461), 1);
        assert_eq!(m.owner(16383), 2);
        assert_eq!(m.find("b"), Ok(1));
        assert_eq!(m.nodes[2].endpoint(), "127.0.0.1:7003");
        // SHA-1 of "a".
        assert_eq!(m.nodes[0].id, "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8");
    }

    #[test]
    fn a_node_may_serve_several_ranges() {
        let m = Map::parse(
            r#"{"nodes": [
            {"id": "a", "host": "h", "port": 1, "slots": [[0, 99], [200, 16383]]},
            {"id": "b", "host": "h", "port": 2, "slots": [[100, 199]]}]}"#,
        )
        .unwrap();
        assert_eq!((m.owner(99), m.owner(100), m.owner(200)), (0, 1, 0));
    }

    #[test]
    fn bad_maps_say_what_is_wrong() {
        let err = |t: &str| Map::parse(t).unwrap_err();
        assert_eq!(
            err(&THREE.replace("[10923, 16383]", "[10924, 16383]")),
            "slot 10923 is not served by any node"
        );
        assert_eq!(
            err(&THREE.replace("[10923, 16383]", "[11000, 16000]")),
            "slots 10923 to 10999 are not served by any node"
        );
        assert_eq!(
            err(&THREE.replace("[5461, 10922]", "[5460, 10922]")),
            "slot 5460 is given to two nodes, 'a' and 'b'"
        );
        assert_eq!(
            err(&THREE.replace("[0, 5460]", "[0, 5460], [5000, 5001]")),
            "slot 5000 is given twice to node 'a'"
        );
        assert_eq!(
            err(&THREE.replace("16383", "16384")),
            "node 'c': slot range [10923, 16384] is not within 0 to 16383 with start <= end"
        );
        assert_eq!(
            err(&THREE.replace("\"b\"", "\"a\"")),
            "two nodes are called 'a'"
        );
        assert_eq!(
            err(&THREE.replace("7002", "7001")),
            "nodes 'a' and 'b' both listen on 127.0.0.1:7001"
        );
        assert_eq!(err(r#"{"nodes": []}"#), "no nodes");
        assert!(err(r#"{"nodes": [{"id": "a"}]}"#).contains("missing field"));
        assert!(err(r#"{"nodez": []}"#).contains("unknown field"));
        let m = Map::parse(THREE).unwrap();
        assert_eq!(
            m.find("d").unwrap_err(),
            "--cluster-node 'd' is not one of its nodes (a, b, c)"
        );
    }
}
