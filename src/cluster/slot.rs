//! Which of the 16384 hash slots a user lives in: `CRC16(key) mod 16384`, with `{…}`
//! hash tags, exactly as Redis Cluster computes it (`keyHashSlot` in Redis's
//! `cluster.c`, the CRC of `crc16.c`), so every cluster client library sends a user's
//! commands where we expect them.

/// Hash slots of a cluster, as in Redis.
pub const SLOTS: usize = 16384;

/// Redis's CRC16: CCITT polynomial 0x1021, initial value 0, no reflection, no final
/// XOR (the "XMODEM" variant). A table of the 256 byte remainders, built at compile
/// time, makes it one lookup per byte as in `crc16.c`.
const TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC16 of `bytes`, as Redis's `crc16()`.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from(((crc >> 8) as u8) ^ b)]
    })
}

/// The part of `key` that is hashed: what lies between the first `{` and the first
/// `}` after it, when that is not empty; the whole key otherwise (Redis's rule, so
/// `user{42}` and `order{42}` share a slot while `a{}b` hashes whole).
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = key.get(open + 1..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'}') {
        Some(close) if close > 0 => rest.get(..close).unwrap_or(key),
        _ => key,
    }
}

/// The slot of `key` (0 to 16383).
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS as u16 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_redis_crc16() {
        // The check value of CRC-16/XMODEM, quoted in Redis's crc16.c.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // Values printed by `CLUSTER KEYSLOT` of redis-server 7.0 in cluster mode.
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"user{42}"), 8000);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hash_tags_follow_redis_rules() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"user{42}"), key_slot(b"order{42}"));
        // Empty tag: the whole key.
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        // The first `}` after the first `{` closes the tag.
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        // No closing brace: the whole key.
        assert_eq!(hash_tag(b"foo{bar"), b"foo{bar");
        assert_eq!(hash_tag(b"}{x}"), b"x");
    }
}
