//! A user or event-type id, kept inline when it is short.
//!
//! Ids up to [`INLINE_LEN`] bytes (`user000000012345`, `click`, most numeric ids) live
//! inside the record: no allocation, and the lookup that finds the record already has
//! the bytes to compare in the same cache lines. Longer ids (UUIDs) take one exact-size
//! heap allocation. The whole value is 24 bytes either way.

/// Longest id stored without an allocation.
pub const INLINE_LEN: usize = 22;

/// An id; see the module doc.
#[derive(Debug, Clone)]
pub enum Name {
    Inline { len: u8, bytes: [u8; INLINE_LEN] },
    Heap(Box<str>),
}

impl Name {
    /// Stores `s`.
    pub fn new(s: &str) -> Self {
        if s.len() <= INLINE_LEN {
            let mut bytes = [0; INLINE_LEN];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Name::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Name::Heap(s.into())
        }
    }

    /// Stores the id `b` (bytes of a stored id, so UTF-8; anything else is kept as
    /// its lossy text, which only an id this server never stored could be).
    pub fn from_bytes(b: &[u8]) -> Self {
        if b.len() <= INLINE_LEN {
            let mut bytes = [0; INLINE_LEN];
            bytes[..b.len()].copy_from_slice(b);
            return Name::Inline {
                len: b.len() as u8,
                bytes,
            };
        }
        match std::str::from_utf8(b) {
            Ok(s) => Name::new(s),
            Err(_) => Name::new(&String::from_utf8_lossy(b)),
        }
    }

    /// Whether `s` is stored without an allocation.
    pub fn is_inline(s: &str) -> bool {
        s.len() <= INLINE_LEN
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Name::Heap(s) => s.as_bytes(),
        }
    }
}

/// Ids compare by their bytes (the order of `EVT.TOP`'s ties).
impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::borrow::Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_inline_long_heap() {
        assert_eq!(std::mem::size_of::<Name>(), 24);
        let short = Name::new("user000000012345");
        assert!(matches!(short, Name::Inline { .. }));
        assert_eq!(short.as_bytes(), b"user000000012345");
        let edge = "x".repeat(INLINE_LEN);
        assert_eq!(Name::new(&edge).as_bytes(), edge.as_bytes());
        let long = "6f1c2a9e-2f4b-4c1e-9b7a-1d2e3f4a5b6c";
        let n = Name::new(long);
        assert!(matches!(n, Name::Heap(_)));
        assert_eq!(n.as_bytes(), long.as_bytes());
        assert_eq!(Name::new("").as_bytes(), b"");
    }
}
