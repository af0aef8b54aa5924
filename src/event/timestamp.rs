//! The `timestamp` member: a JSON number floored to whole Unix seconds, exactly.

use super::{EventError, MAX_TIMESTAMP};

/// Converts the raw JSON of `timestamp` to whole seconds, exactly.
///
/// The decimal digits are floored directly instead of going through `f64`, so
/// there is no rounding at the edges (`4294967295.9999999999` is accepted as
/// `u32::MAX`, `0.99999999999999999999` is 0) and no float overflow (`1e400`
/// is simply out of range).
pub(super) fn timestamp_from_raw(text: &str) -> Result<u32, EventError> {
    let bytes = text.as_bytes();
    // Fast path for the form nearly every client sends: a plain integer of at
    // most 10 digits, which cannot overflow the u64 accumulator.
    if !bytes.is_empty() && bytes.len() <= 10 && bytes.iter().all(u8::is_ascii_digit) {
        let seconds = bytes
            .iter()
            .fold(0_u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        return u32::try_from(seconds).map_err(|_| EventError::TimestampOutOfRange);
    }
    let (negative, unsigned) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((first, _)) if first.is_ascii_digit() => (false, bytes),
        _ => return Err(EventError::TimestampNotANumber),
    };

    // JSON number grammar: int [. frac] [e|E [+|-] exp]. serde_json has already
    // validated it, the checks below only keep this function total.
    let (int_digits, rest) = split_digits(unsigned);
    let (frac_digits, rest) = match rest.split_first() {
        Some((b'.', after_point)) => split_digits(after_point),
        _ => (&[][..], rest),
    };
    let exponent = match rest.split_first() {
        None => 0,
        Some((b'e' | b'E', after_e)) => {
            let (exp_negative, exp_text) = match after_e.split_first() {
                Some((b'-', r)) => (true, r),
                Some((b'+', r)) => (false, r),
                _ => (false, after_e),
            };
            let (exp_digits, rest) = split_digits(exp_text);
            if exp_digits.is_empty() || !rest.is_empty() {
                return Err(EventError::TimestampNotANumber);
            }
            // Saturating keeps absurd exponents meaningful: huge means out of
            // range, hugely negative means zero.
            let magnitude = exp_digits.iter().fold(0_i64, |acc, d| {
                acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
            });
            if exp_negative { -magnitude } else { magnitude }
        }
        Some(_) => return Err(EventError::TimestampNotANumber),
    };
    if int_digits.is_empty() {
        return Err(EventError::TimestampNotANumber);
    }

    let digits = int_digits.iter().chain(frac_digits).copied();
    if digits.clone().all(|d| d == b'0') {
        // Any spelling of zero, including `-0`, `-0.0` and `0e99`.
        return Ok(0);
    }
    if negative {
        return Err(EventError::TimestampNegative);
    }

    // The decimal point sits after `point` digits of int ++ frac; the integer
    // part is those digits, padded with zeros when the exponent moves the point
    // past the end.
    let point = i64::try_from(int_digits.len())
        .unwrap_or(i64::MAX)
        .saturating_add(exponent);
    let Ok(point) = usize::try_from(point) else {
        // Point before the first digit: 0.000ddd floors to zero.
        return Ok(0);
    };
    let mut seconds: u64 = 0;
    for d in digits.chain(std::iter::repeat(b'0')).take(point) {
        // Stays tiny: we stop as soon as it passes MAX_TIMESTAMP, so leading
        // zeros aside this runs at most 11 times however large `point` is.
        seconds = seconds * 10 + u64::from(d - b'0');
        if seconds > MAX_TIMESTAMP {
            return Err(EventError::TimestampOutOfRange);
        }
    }
    u32::try_from(seconds).map_err(|_| EventError::TimestampOutOfRange)
}

/// Splits off the leading ASCII digits.
fn split_digits(bytes: &[u8]) -> (&[u8], &[u8]) {
    let n = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    bytes.split_at(n)
}

#[cfg(test)]
mod tests {
    use crate::event::tests::with_ts;
    use crate::event::{DEFAULT_MAX_ID_LEN, parse_event};
    use proptest::prelude::*;

    fn timestamp_of(ts: &str) -> Result<u32, String> {
        parse_event(with_ts(ts).as_bytes(), DEFAULT_MAX_ID_LEN)
            .map(|e| e.timestamp)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn timestamp_forms() {
        assert_eq!(timestamp_of("1678886400"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("1678886400.9"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("1678886400.0"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("1.6788864e9"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("1.6788864E+9"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("16788864009e-1"), Ok(1_678_886_400));
        assert_eq!(timestamp_of("0.0000000001e19"), Ok(1_000_000_000));
        assert_eq!(timestamp_of("0"), Ok(0));
        assert_eq!(timestamp_of("0.5"), Ok(0));
        assert_eq!(timestamp_of("0.99999999999999999999"), Ok(0));
        assert_eq!(timestamp_of("1e-400"), Ok(0));
        assert_eq!(timestamp_of("5e-99999999999999999999999"), Ok(0));
        assert_eq!(timestamp_of("0e99999999999999999999999"), Ok(0));
        assert_eq!(timestamp_of("-0"), Ok(0));
        assert_eq!(timestamp_of("-0.0"), Ok(0));
        assert_eq!(timestamp_of("-0e5"), Ok(0));
        assert_eq!(timestamp_of("4294967295"), Ok(u32::MAX));
        assert_eq!(timestamp_of("4294967295.9999999999"), Ok(u32::MAX));
        assert_eq!(timestamp_of("4.294967295e9"), Ok(u32::MAX));
    }

    #[test]
    fn timestamp_rejections() {
        let out = Err("'timestamp' is out of range".to_owned());
        assert_eq!(timestamp_of("4294967296"), out);
        assert_eq!(timestamp_of("4.294967296e9"), out);
        assert_eq!(timestamp_of("1e10"), out);
        assert_eq!(timestamp_of("12345678901234567890123"), out);
        assert_eq!(timestamp_of("1e400"), out);
        assert_eq!(timestamp_of("1e99999999999999999999999"), out);
        let negative = Err("'timestamp' must not be negative".to_owned());
        assert_eq!(timestamp_of("-1"), negative);
        assert_eq!(timestamp_of("-0.5"), negative);
        assert_eq!(timestamp_of("-1e400"), negative);
        assert_eq!(timestamp_of("-1678886400"), negative);
        let not_number = Err("'timestamp' must be a number".to_owned());
        for bad in [
            r#""1678886400""#,
            "null",
            "true",
            "false",
            "[1]",
            r#"{"s":1}"#,
        ] {
            assert_eq!(timestamp_of(bad), not_number, "timestamp {bad}");
        }
    }

    proptest! {
        #[test]
        fn timestamps_floor_like_exact_arithmetic(secs in any::<u32>(), frac in "[0-9]{0,12}", shift in 0..12_u32) {
            // secs.frac written as (secs.frac * 10^shift)e-shift.
            let frac_part = if frac.is_empty() { String::new() } else { format!(".{frac}") };
            let plain = format!("{secs}{frac_part}");
            prop_assert_eq!(timestamp_of(&plain), Ok(secs));
            let mut digits = format!("{secs}{frac}");
            let point = secs.to_string().len() + shift as usize;
            while digits.len() < point {
                digits.push('0');
            }
            let (int, rest) = digits.split_at(point);
            // JSON forbids leading zeros ("05e-1").
            let int = match int.trim_start_matches('0') {
                "" => "0",
                trimmed => trimmed,
            };
            let rest = if rest.is_empty() { String::new() } else { format!(".{rest}") };
            let shifted = format!("{int}{rest}e-{shift}");
            prop_assert_eq!(timestamp_of(&shifted), Ok(secs), "{}", shifted);
        }
    }
}
