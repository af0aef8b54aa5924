//! How the nodes' shares of a cluster-wide answer combine into one reply.
//!
//! Every user lives on exactly one node, so everything counted *per user* partitions
//! cleanly: totals, per-type counts, distinct users, distinct (user, type) pairs and
//! per-second series add up ([`Sum`], [`SumEach`]), and the k largest users of the
//! cluster are among the k largest of each node, so merging the nodes' top-k lists
//! is exact ([`TopK`]). Event *types* are not partitioned — one type is seen by many
//! nodes — so a question about types needs each node's complete share: the count of
//! distinct types is the size of the union of every node's type list
//! ([`Distinct`]), and the top types are found by adding up every node's full list of
//! type counts ([`TopK`] adds the scores of an id met on several nodes), never from
//! each node's top k alone.
//!
//! A query plugs in with one [`Merge`] value (see `cmd/global.rs`).

use crate::protocol::{Reply, Resp};

/// Combines every node's share — this node's first, then the others' in map order —
/// into the cluster's answer, or says why the shares do not fit together.
pub trait Merge: Send + 'static {
    fn merge(&self, shares: Vec<Reply>) -> Result<Reply, String>;
}

/// Integers added: `EVT.TOTAL`, `EVT.TYPE`, `EVT.ACTIVE USERS|PAIRS`.
#[derive(Debug, Clone, Copy)]
pub struct Sum;

impl Merge for Sum {
    fn merge(&self, shares: Vec<Reply>) -> Result<Reply, String> {
        let mut total: i64 = 0;
        for s in &shares {
            total = total
                .checked_add(int(s)?)
                .ok_or("the shares add up past 2^63")?;
        }
        Ok(Reply::Int(total))
    }
}

/// Arrays of integers added element by element (`EVT.SERIES TOTAL|TYPE`: one count
/// per second, oldest first); every share has the same length.
#[derive(Debug, Clone, Copy)]
pub struct SumEach;

impl Merge for SumEach {
    fn merge(&self, shares: Vec<Reply>) -> Result<Reply, String> {
        let mut out: Option<Vec<i64>> = None;
        for s in &shares {
            let Reply::Array(items) = s else {
                return Err(format!("expected an array, got {}", shape(s)));
            };
            let acc = out.get_or_insert_with(|| vec![0; items.len()]);
            if acc.len() != items.len() {
                return Err(format!(
                    "series of {} and {} seconds",
                    acc.len(),
                    items.len()
                ));
            }
            for (a, item) in acc.iter_mut().zip(items) {
                *a = a
                    .checked_add(int(item)?)
                    .ok_or("the shares add up past 2^63")?;
            }
        }
        Ok(Reply::Array(
            out.unwrap_or_default()
                .into_iter()
                .map(Reply::Int)
                .collect(),
        ))
    }
}

/// The number of distinct members of every share (each an array of ids):
/// `EVT.ACTIVE TYPES`, whose shares are each node's list of active types.
#[derive(Debug, Clone, Copy)]
pub struct Distinct;

impl Merge for Distinct {
    fn merge(&self, shares: Vec<Reply>) -> Result<Reply, String> {
        let mut all: Vec<Vec<u8>> = Vec::new();
        for s in shares {
            match s {
                Reply::Array(items) | Reply::Set(items) => {
                    for item in items {
                        all.push(id(item)?);
                    }
                }
                other => return Err(format!("expected an array, got {}", shape(&other))),
            }
        }
        all.sort_unstable();
        all.dedup();
        Ok(Reply::Int(all.len() as i64))
    }
}

/// Every share the same value, which is the answer (`EVT.CLOCK SET` on every node
/// answers the same `now`).
#[derive(Debug, Clone, Copy)]
pub struct Same;

impl Merge for Same {
    fn merge(&self, shares: Vec<Reply>) -> Result<Reply, String> {
        let mut it = shares.into_iter();
        let first = it.next().unwrap_or(Reply::Null);
        for (i, s) in it.enumerate() {
            if s != first {
                return Err(format!(
                    "node #{} answered {s:?}, this one {first:?}",
                    i + 1
                ));
            }
        }
        Ok(first)
    }
}

/// The `k` largest (id, score) pairs of all shares: score descending, ties by id
/// ascending (bytewise); an id met on several nodes has its scores added. Shares may
/// be RESP3-shaped (`[[id, score], ...]`), RESP2-shaped (`id, score, ...`) or maps;
/// the answer takes the shape of `resp`, as `ZRANGE ... WITHSCORES` does. Scores are
/// integers (counts) or doubles (sums); doubles of one id are never added, as that
/// sum would not be exact.
#[derive(Debug, Clone, Copy)]
pub struct TopK {
    pub k: usize,
    pub resp: Resp,
    /// The scores are sums (`EVT.TOP SUM`): doubles, even those a RESP2 share wrote
    /// as whole numbers (`"10"`).
    pub sums: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Score {
    Int(i64),
    Float(f64),
}

impl Score {
    fn as_f64(self) -> f64 {
        match self {
            Score::Int(i) => i as f64,
            Score::Float(f) => f,
        }
    }

    fn of(r: &Reply) -> Result<Score, String> {
        match r {
            Reply::Int(i) => Ok(Score::Int(*i)),
            Reply::Double(d) => Ok(Score::Float(*d)),
            Reply::Bulk(b) => {
                let t = std::str::from_utf8(b).map_err(|_| "a score is not text".to_string())?;
                t.parse::<i64>()
                    .map(Score::Int)
                    .or_else(|_| t.parse::<f64>().map(Score::Float))
                    .map_err(|_| format!("'{t}' is not a score"))
            }
            other => Err(format!("a score is {}", shape(other))),
        }
    }
}

impl TopK {
    /// A share's (id, score) pairs.
    fn pairs(share: Reply) -> Result<Vec<(Vec<u8>, Score)>, String> {
        let flat = |items: Vec<Reply>| -> Result<Vec<(Vec<u8>, Score)>, String> {
            if !items.len().is_multiple_of(2) {
                return Err("a flat top-k share has an odd length".into());
            }
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(i), Some(s)) = (it.next(), it.next()) {
                let score = Score::of(&s)?;
                out.push((id(i)?, score));
            }
            Ok(out)
        };
        match share {
            Reply::Null => Ok(Vec::new()),
            Reply::Map(pairs) => pairs
                .into_iter()
                .map(|(i, s)| Ok((id(i)?, Score::of(&s)?)))
                .collect(),
            Reply::Array(items)
                if items
                    .iter()
                    .all(|r| matches!(r, Reply::Array(p) if p.len() == 2)) =>
            {
                flat(
                    items
                        .into_iter()
                        .flat_map(|r| match r {
                            Reply::Array(p) => p,
                            _ => Vec::new(),
                        })
                        .collect(),
                )
            }
            Reply::Array(items) => flat(items),
            other => Err(format!("expected a top-k array, got {}", shape(&other))),
        }
    }
}

impl Merge for TopK {
    fn merge(&self, shares: Vec<Reply>) -> Result<Reply, String> {
        let mut all: Vec<(Vec<u8>, Score)> = Vec::new();
        for s in shares {
            all.extend(TopK::pairs(s)?);
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut merged: Vec<(Vec<u8>, Score)> = Vec::with_capacity(all.len());
        for (id, score) in all {
            match merged.last_mut() {
                Some((last, acc)) if *last == id => {
                    *acc = match (*acc, score) {
                        (Score::Int(a), Score::Int(b)) => {
                            Score::Int(a.checked_add(b).ok_or("scores add up past 2^63")?)
                        }
                        _ => {
                            return Err(format!(
                                "'{}' has a fractional score on two nodes",
                                String::from_utf8_lossy(&id)
                            ));
                        }
                    };
                }
                _ => merged.push((id, score)),
            }
        }
        let floats = self.sums || merged.iter().any(|(_, s)| matches!(s, Score::Float(_)));
        // Stable: ids are already ascending, so ties stay in id order.
        merged.sort_by(|a, b| b.1.as_f64().total_cmp(&a.1.as_f64()));
        merged.truncate(self.k);
        let score = |s: Score| match s {
            Score::Int(i) if !floats => Reply::Int(i),
            s => Reply::Double(s.as_f64()),
        };
        Ok(Reply::Array(match self.resp {
            Resp::V3 => merged
                .into_iter()
                .map(|(i, s)| Reply::Array(vec![Reply::Bulk(i), score(s)]))
                .collect(),
            Resp::V2 => merged
                .into_iter()
                .flat_map(|(i, s)| [Reply::Bulk(i), score(s)])
                .collect(),
        }))
    }
}

fn int(r: &Reply) -> Result<i64, String> {
    match r {
        Reply::Int(i) => Ok(*i),
        other => Err(format!("expected an integer, got {}", shape(other))),
    }
}

fn id(r: Reply) -> Result<Vec<u8>, String> {
    match r {
        Reply::Bulk(b) => Ok(b),
        Reply::Simple(s) => Ok(s.into_owned().into_bytes()),
        other => Err(format!("expected an id, got {}", shape(&other))),
    }
}

/// A reply's kind, for error messages (never its contents: they may be large).
fn shape(r: &Reply) -> &'static str {
    match r {
        Reply::Ok | Reply::Simple(_) => "a status",
        Reply::Error(_) => "an error",
        Reply::Int(_) => "an integer",
        Reply::Bulk(_) | Reply::Verbatim(_) => "a string",
        Reply::Null | Reply::NullArray => "null",
        Reply::Double(_) => "a double",
        Reply::Array(_) => "an array",
        Reply::Map(_) => "a map",
        Reply::Set(_) => "a set",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(id: &str, score: Reply) -> Reply {
        Reply::Array(vec![Reply::bulk(id), score])
    }

    #[test]
    fn sums_add_and_refuse_other_shapes() {
        let shares = vec![Reply::Int(3), Reply::Int(4), Reply::Int(0)];
        assert_eq!(Sum.merge(shares), Ok(Reply::Int(7)));
        assert!(Sum.merge(vec![Reply::Int(1), Reply::bulk("x")]).is_err());
        assert!(
            Sum.merge(vec![Reply::Int(i64::MAX), Reply::Int(1)])
                .is_err()
        );
        let series = |v: &[i64]| Reply::Array(v.iter().map(|&i| Reply::Int(i)).collect());
        assert_eq!(
            SumEach.merge(vec![series(&[1, 0, 2]), series(&[0, 5, 1])]),
            Ok(series(&[1, 5, 3]))
        );
        assert!(SumEach.merge(vec![series(&[1]), series(&[1, 2])]).is_err());
    }

    #[test]
    fn distinct_counts_the_union() {
        let list = |v: &[&str]| Reply::Array(v.iter().map(|s| Reply::bulk(*s)).collect());
        let shares = vec![list(&["click", "view"]), list(&["view", "buy"]), list(&[])];
        assert_eq!(Distinct.merge(shares), Ok(Reply::Int(3)));
    }

    #[test]
    fn same_needs_agreement() {
        assert_eq!(
            Same.merge(vec![Reply::Int(5), Reply::Int(5)]),
            Ok(Reply::Int(5))
        );
        assert!(Same.merge(vec![Reply::Int(5), Reply::Int(6)]).is_err());
    }

    #[test]
    fn top_k_of_partitioned_users_is_exact_with_ties_by_id() {
        // Node 1 answers in RESP3 shape, node 2 in RESP2 shape.
        let one = Reply::Array(vec![
            pair("u3", Reply::Int(9)),
            pair("u1", Reply::Int(4)),
            pair("u7", Reply::Int(2)),
        ]);
        let two = Reply::Array(vec![
            Reply::bulk("u2"),
            Reply::Int(9),
            Reply::bulk("u0"),
            Reply::Int(4),
        ]);
        let top = TopK {
            k: 3,
            resp: Resp::V3,
            sums: false,
        };
        assert_eq!(
            top.merge(vec![one.clone(), two.clone()]),
            Ok(Reply::Array(vec![
                pair("u2", Reply::Int(9)),
                pair("u3", Reply::Int(9)),
                pair("u0", Reply::Int(4)),
            ]))
        );
        let flat = TopK {
            k: 2,
            resp: Resp::V2,
            sums: false,
        };
        assert_eq!(
            flat.merge(vec![one, two]),
            Ok(Reply::Array(vec![
                Reply::bulk("u2"),
                Reply::Int(9),
                Reply::bulk("u3"),
                Reply::Int(9),
            ]))
        );
    }

    #[test]
    fn top_types_add_up_across_nodes_and_sums_stay_doubles() {
        let top = TopK {
            k: 10,
            resp: Resp::V3,
            sums: false,
        };
        let a = Reply::Array(vec![
            pair("click", Reply::Int(5)),
            pair("view", Reply::Int(1)),
        ]);
        let b = Reply::Array(vec![pair("view", Reply::Int(6))]);
        assert_eq!(
            top.merge(vec![a, b]),
            Ok(Reply::Array(vec![
                pair("view", Reply::Int(7)),
                pair("click", Reply::Int(5)),
            ]))
        );
        let sums = vec![
            Reply::Array(vec![pair("u1", Reply::Double(10.5))]),
            Reply::Array(vec![Reply::bulk("u2"), Reply::bulk("11.25")]),
        ];
        assert_eq!(
            top.merge(sums),
            Ok(Reply::Array(vec![
                pair("u2", Reply::Double(11.25)),
                pair("u1", Reply::Double(10.5)),
            ]))
        );
        let twice = vec![
            Reply::Array(vec![pair("u1", Reply::Double(1.5))]),
            Reply::Array(vec![pair("u1", Reply::Double(2.5))]),
        ];
        assert!(top.merge(twice).is_err());
        // Whole sums from RESP2 shares stay doubles.
        let sums = TopK { sums: true, ..top };
        let whole = vec![
            Reply::Array(vec![Reply::bulk("u1"), Reply::bulk("10")]),
            Reply::Array(vec![]),
        ];
        assert_eq!(
            sums.merge(whole),
            Ok(Reply::Array(vec![pair("u1", Reply::Double(10.0))]))
        );
    }
}
