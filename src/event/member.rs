//! The raw JSON of one top-level member, already validated by serde_json: the
//! nesting bound every member obeys, and `value` found inside `attributes` by the
//! same walk.

use super::{EventError, MAX_JSON_DEPTH};

/// Containers a top-level member's value may hold: the member sits inside the
/// top-level object (depth 1), so its own outermost bracket is already depth 2.
const MEMBER_DEPTH_LIMIT: usize = MAX_JSON_DEPTH - 1;

/// Extracts `value` from the raw JSON of `attributes`, or `None` when it is
/// absent or not a finite number. Only nesting depth can make this fail.
pub(super) fn value_from_attributes(text: &str) -> Result<Option<f64>, EventError> {
    if !text.starts_with('{') {
        // `attributes` that is not an object carries no value, but must still
        // respect the depth limit.
        return check_member_depth(text).map(|()| None);
    }
    // One walk over the already-validated object both bounds its depth and
    // finds the last `value` member; this is cheaper than a second serde pass.
    let value_at = scan_member(text)?;
    Ok(value_at
        .and_then(|at| text.get(at..))
        .and_then(leading_finite_number))
}

/// Parses the JSON number at the start of `text` (after whitespace) as a
/// finite `f64`; `None` when a string, literal, array or object starts there,
/// or when the number is too large for `f64`.
fn leading_finite_number(text: &str) -> Option<f64> {
    let text = text.trim_start_matches([' ', '\t', '\n', '\r']);
    let len = text
        .bytes()
        .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .count();
    let number = text.get(..len)?;
    if !number.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        return None;
    }
    // Rust's parser accepts every JSON number spelling and rounds correctly;
    // out-of-range input becomes infinity, which is dropped.
    number.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Rejects the raw JSON (already validated) of a top-level member's value
/// when it nests deeper than [`MAX_JSON_DEPTH`] allows.
pub(super) fn check_member_depth(text: &str) -> Result<(), EventError> {
    // Nesting one level too deep takes at least that many opening brackets
    // and twice as many bytes, so nearly every value is cleared without a
    // real scan (counting brackets vectorizes; the scan does not).
    let too_deep = MEMBER_DEPTH_LIMIT + 1;
    if text.len() < 2 * too_deep
        || text.bytes().filter(|&b| b == b'[' || b == b'{').count() < too_deep
    {
        return Ok(());
    }
    scan_member(text).map(|_| ())
}

/// Walks the raw JSON of a top-level member's value, which serde_json has
/// already validated, failing if it nests deeper than allowed.
///
/// When the value is an object, also returns the byte offset just after the
/// `:` of its last member named `value` (the last occurrence wins).
fn scan_member(text: &str) -> Result<Option<usize>, EventError> {
    let bytes = text.as_bytes();
    let mut depth = 0_usize;
    // The last string (quotes included) that closed at depth 1. In valid JSON
    // a `:` at depth 1 follows its key directly, so this is that key.
    let mut last_string = 0..0;
    let mut value_at = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                let start = i;
                i = string_end(bytes, i + 1);
                if depth == 1 {
                    last_string = start..i.saturating_add(1);
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MEMBER_DEPTH_LIMIT {
                    return Err(EventError::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 1 && text.get(last_string.clone()).is_some_and(is_value_key) => {
                value_at = Some(i + 1);
            }
            _ => {}
        }
        i += 1;
    }
    Ok(value_at)
}

/// Index of the `"` that closes a string whose contents start at `i`, or the
/// input length if there is none (impossible in validated JSON).
fn string_end(bytes: &[u8], mut i: usize) -> usize {
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return i,
            // Skip the escaped byte so `\"` does not end the string.
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Whether a raw JSON key (quotes included) names `value`, escapes decoded.
fn is_value_key(raw_key: &str) -> bool {
    if raw_key == "\"value\"" {
        return true;
    }
    // Rare: an escaped spelling such as "val\u0075e" (at most 6 bytes per
    // character plus quotes, so longer keys cannot be it).
    raw_key.contains('\\')
        && raw_key.len() <= 32
        && serde_json::from_str::<String>(raw_key).is_ok_and(|key| key == "value")
}

#[cfg(test)]
mod tests {
    use crate::event::tests::{err, ok, with_attrs, with_extra, with_ts};
    use crate::event::{DEFAULT_MAX_ID_LEN, EventError, MAX_JSON_DEPTH, parse_event};
    use proptest::prelude::*;

    /// `depth` nested arrays around a `1`.
    fn nested_arrays(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// `depth` nested objects `{"k":{"k":...1}}`.
    fn nested_objects(depth: usize) -> String {
        format!("{}1{}", r#"{"k":"#.repeat(depth), "}".repeat(depth))
    }

    fn value_of(attrs: &str) -> Option<f64> {
        ok(&with_attrs(attrs)).value
    }

    #[test]
    fn ignored_values_are_none_not_errors() {
        for attrs in [
            r#"{"value":"10.5"}"#,
            r#"{"value":null}"#,
            r#"{"value":true}"#,
            r#"{"value":false}"#,
            r#"{"value":[10.5]}"#,
            r#"{"value":{"x":10.5}}"#,
            r#"{"item_id":"item456"}"#,
            r#"{}"#,
            r#""attrs""#,
            "10.5",
            "[10.5]",
            "[]",
            "null",
            "true",
            r#"{"value":1e400}"#,
            r#"{"value":-1e400}"#,
            "1e400",
        ] {
            assert_eq!(value_of(attrs), None, "attributes {attrs}");
        }
        // No attributes at all.
        assert_eq!(ok(&with_ts("1")).value, None);
    }

    #[test]
    fn numeric_values() {
        assert_eq!(value_of(r#"{"value":10}"#), Some(10.0));
        assert_eq!(value_of(r#"{"value":-3.25}"#), Some(-3.25));
        assert_eq!(value_of(r#"{"value":1.5e3}"#), Some(1500.0));
        assert_eq!(value_of(r#"{"value":2E-2}"#), Some(0.02));
        assert_eq!(value_of(r#"{"value":1e308}"#), Some(1e308));
        assert_eq!(value_of(r#"{"value":0}"#), Some(0.0));
        let neg_zero = value_of(r#"{"value":-0}"#);
        assert_eq!(neg_zero, Some(0.0));
        assert!(neg_zero.is_some_and(f64::is_sign_negative));
        // Other members, including ones that overflow f64, are skipped.
        assert_eq!(
            value_of(r#"{"a":1e400,"b":[{"c":null}],"value":7,"d":"x"}"#),
            Some(7.0)
        );
    }

    #[test]
    fn duplicate_value_last_wins() {
        assert_eq!(value_of(r#"{"value":1,"value":2}"#), Some(2.0));
        assert_eq!(value_of(r#"{"value":1,"value":"x"}"#), None);
        assert_eq!(value_of(r#"{"value":"x","value":3}"#), Some(3.0));
        assert_eq!(value_of(r#"{"value":1,"val\u0075e":4}"#), Some(4.0));
    }

    #[test]
    fn only_the_direct_value_member_counts() {
        // Whitespace around the member is fine.
        assert_eq!(value_of("{ \"value\" :\n 10.5 , \"x\":1}"), Some(10.5));
        assert_eq!(value_of("{\"value\":\t-2\r\n}"), Some(-2.0));
        // `value` nested deeper, or appearing as a string, is not attributes.value.
        assert_eq!(value_of(r#"{"a":{"value":1}}"#), None);
        assert_eq!(value_of(r#"{"a":[{"value":1}]}"#), None);
        assert_eq!(value_of(r#"{"a":"value","b":2}"#), None);
        assert_eq!(value_of(r#"{"value":1,"a":{"value":"x"}}"#), Some(1.0));
        assert_eq!(value_of(r#"[{"value":1}]"#), None);
        // Keys that merely resemble `value`.
        assert_eq!(value_of(r#"{"\"value\"":1}"#), None);
        assert_eq!(value_of(r#"{"value\u0000":1}"#), None);
        assert_eq!(value_of(r#"{"Value":1}"#), None);
        assert_eq!(value_of(r#"{"values":1}"#), None);
        // Strings with brackets, colons and escaped quotes do not confuse it.
        assert_eq!(
            value_of(r#"{"a":"[{\":","b\\":"}]","value":3,"c":":"}"#),
            Some(3.0)
        );
    }

    #[test]
    fn nesting_limit_in_unknown_field() {
        // The top-level object is depth 1, so the member may add 31 levels.
        assert_eq!(
            ok(&with_extra(&nested_arrays(MAX_JSON_DEPTH - 1))).timestamp,
            1
        );
        assert_eq!(
            ok(&with_extra(&nested_objects(MAX_JSON_DEPTH - 1))).timestamp,
            1
        );
        assert_eq!(
            err(&with_extra(&nested_arrays(MAX_JSON_DEPTH))),
            "nested deeper than 32 levels"
        );
        assert_eq!(
            err(&with_extra(&nested_objects(MAX_JSON_DEPTH))),
            "nested deeper than 32 levels"
        );
        // Far beyond serde_json's own recursion limit: still our error, no
        // stack overflow.
        assert_eq!(
            err(&with_extra(&nested_arrays(100_000))),
            "nested deeper than 32 levels"
        );
        // The shortest spellings of 31 and 32 extra levels (`[[]]`-style).
        let shortest = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        assert_eq!(ok(&with_extra(&shortest(MAX_JSON_DEPTH - 1))).timestamp, 1);
        assert_eq!(
            err(&with_extra(&shortest(MAX_JSON_DEPTH))),
            "nested deeper than 32 levels"
        );
        // Brackets inside strings do not count.
        let in_string = format!(r#"["{}"]"#, "[".repeat(100));
        assert_eq!(ok(&with_extra(&in_string)).timestamp, 1);
    }

    #[test]
    fn nesting_limit_inside_attributes() {
        // attributes (depth 2) + member container levels (30) = 32.
        let allowed = format!(r#"{{"other":{}}}"#, nested_arrays(MAX_JSON_DEPTH - 2));
        assert_eq!(value_of(&allowed), None);
        let too_deep = format!(r#"{{"other":{}}}"#, nested_arrays(MAX_JSON_DEPTH - 1));
        assert_eq!(err(&with_attrs(&too_deep)), "nested deeper than 32 levels");
        // attributes itself as deep arrays.
        assert_eq!(value_of(&nested_arrays(MAX_JSON_DEPTH - 1)), None);
        assert_eq!(
            err(&with_attrs(&nested_arrays(MAX_JSON_DEPTH))),
            "nested deeper than 32 levels"
        );
    }

    #[test]
    fn nesting_limit_inside_attributes_value() {
        let allowed = format!(r#"{{"value":{}}}"#, nested_objects(MAX_JSON_DEPTH - 2));
        assert_eq!(value_of(&allowed), None);
        let too_deep = format!(r#"{{"value":{}}}"#, nested_objects(MAX_JSON_DEPTH - 1));
        assert_eq!(err(&with_attrs(&too_deep)), "nested deeper than 32 levels");
    }

    /// A container nested `depth` levels deep (arrays and objects mixed as
    /// `shape` says), with a string full of brackets at the bottom.
    fn nested_mixed(depth: usize, shape: &[bool]) -> String {
        let mut open = String::new();
        let mut close = String::new();
        for level in 0..depth {
            if shape.get(level).copied().unwrap_or(false) {
                open.push_str(r#"{"k\"[":"#);
                close.insert(0, '}');
            } else {
                open.push_str("[0,");
                close.insert(0, ']');
            }
        }
        format!(r#"{open}"]]}}{{[\\"{close}"#)
    }

    proptest! {
        #[test]
        fn depth_limit_is_exact(depth in 1..40_usize, shape in prop::collection::vec(any::<bool>(), 40)) {
            let nested = nested_mixed(depth, &shape);
            // As an unknown member: the top-level object adds one level.
            let json = with_extra(&nested);
            let result = parse_event(json.as_bytes(), DEFAULT_MAX_ID_LEN);
            prop_assert_eq!(result.is_ok(), depth < MAX_JSON_DEPTH, "{}", nested);
            // As attributes.value: the top-level object and attributes add two.
            let attrs = format!(r#"{{"value":{nested}}}"#);
            let json = with_attrs(&attrs);
            let result = parse_event(json.as_bytes(), DEFAULT_MAX_ID_LEN);
            prop_assert_eq!(result.is_ok(), depth < MAX_JSON_DEPTH - 1, "{}", attrs);
            if let Err(e) = result {
                prop_assert_eq!(e, EventError::TooDeep);
            }
        }
    }
}
