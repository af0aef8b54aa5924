//! Glob patterns as Redis matches them (`CONFIG GET`, `CLIENT KILL`...).

/// Redis's `stringmatchlen`: `*`, `?`, `[...]` (with `^` and ranges) and `\` escapes,
/// matched in O(pattern × text) time whatever the pattern: on a mismatch only the
/// last `*` is retried one byte further, because an earlier `*` can never do better
/// than the last one (it would only hand the last one less text).
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where to resume after the last `*`: its pattern position and the text position
    // it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let advanced = match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, t));
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class_match(pattern, p, text[t]),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == text[t]).then_some(p + 2),
            Some(&c) => (c == text[t]).then_some(p + 1),
            None => None,
        };
        match (advanced, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Matches `ch` against the class `[...]` starting at `pattern[start]`; the pattern
/// position after the class when it matches.
fn class_match(pattern: &[u8], start: usize, ch: u8) -> Option<usize> {
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            matched |= pattern[i + 1] == ch;
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            let (lo, hi) = (
                pattern[i].min(pattern[i + 2]),
                pattern[i].max(pattern[i + 2]),
            );
            matched |= (lo..=hi).contains(&ch);
            i += 3;
        } else {
            matched |= pattern[i] == ch;
            i += 1;
        }
    }
    (matched != negate).then_some((i + 1).min(pattern.len()))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_as_redis() {
        assert!(glob_match(b"*", b"port"));
        assert!(glob_match(b"max*", b"max-args"));
        assert!(!glob_match(b"max*", b"port"));
        assert!(glob_match(b"p?rt", b"port"));
        assert!(glob_match(b"[ps]ave", b"save"));
        assert!(!glob_match(b"[^s]ave", b"save"));
        assert!(glob_match(b"a[b-d]e", b"ace"));
        assert!(glob_match(b"save", b"save"));
        assert!(!glob_match(b"sav", b"save"));
        assert!(glob_match(b"*-*-*", b"client-query-buffer-limit"));
        assert!(!glob_match(b"*x*", b"client-query-buffer-limit"));
        assert!(glob_match(b"a\\*b", b"a*b"));
        assert!(!glob_match(b"a\\*b", b"axb"));
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"a"));
        assert!(glob_match(b"**", b""));
    }
}
