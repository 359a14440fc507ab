//! Reading a price: from the field's text (a JSON string or number, never a binary float) to an
//! exact decimal that is stored and hashed as it was sent.

use std::borrow::Cow;

use rust_decimal::Decimal;

use crate::parse::error::{shorten, At, InvalidOrder};
use crate::parse::fields::{Fields, Value};

/// A price has at most this many decimal places...
pub const PRICE_SCALE_MAX: u32 = 8;
/// ...and is below 10^PRICE_DIGITS_MAX: every accepted price is stored and hashed exactly.
pub const PRICE_DIGITS_MAX: usize = 12;

/// A price as a JSON string ("999.99") or number (999.99), read from its text so it stays exact.
pub(super) fn unit_price(
    fields: &Fields<'_>,
    key: &str,
    at: At,
) -> Result<Option<Decimal>, InvalidOrder> {
    let Some(value) = fields.get(key) else {
        return Ok(None);
    };
    if value.is_null() {
        return Ok(None);
    }
    let literal = match value {
        Value::Json(number) if !number.starts_with('"') => Cow::Borrowed(number),
        string => string
            .text()
            .ok_or_else(|| InvalidOrder::new(at.path(key), "must be a decimal string or number"))?,
    };
    exact_price(literal.trim()).map(Some).map_err(|problem| {
        InvalidOrder::new(
            at.path(key),
            format!("{problem} (found {})", shorten(&value.json())),
        )
    })
}

/// An exact, non-negative decimal in JSON number syntax (`12`, `12.50`, `1.25e2`; no `+`, `_`,
/// spaces or hex), with at most [`PRICE_SCALE_MAX`] decimal places and below
/// 10^[`PRICE_DIGITS_MAX`] once trailing zeros are dropped: nothing accepted is rounded.
pub fn exact_price(literal: &str) -> Result<Decimal, String> {
    let PriceLiteral {
        negative,
        whole,
        fraction,
        exponent,
    } = price_literal(literal)?;
    // digits x 10^-scale, exactly: the digits are whole and fraction's without their leading
    // zeros, and without the trailing zeros a positive scale can drop.
    let digits = || whole.bytes().chain(fraction.bytes());
    let leading = digits().take_while(|b| *b == b'0').count();
    let mut len = whole.len() + fraction.len() - leading;
    if len == 0 {
        return Ok(Decimal::ZERO);
    }
    let mut scale = fraction.len() as i64 - exponent;
    if scale > 0 {
        let trailing = digits().rev().take_while(|b| *b == b'0').count();
        let dropped = (trailing as i64).min(scale);
        len -= dropped as usize;
        scale -= dropped;
    }
    if negative {
        return Err("must not be negative".into());
    }
    if scale > i64::from(PRICE_SCALE_MAX) {
        return Err(format!(
            "has more than {PRICE_SCALE_MAX} decimal places, which would be rounded"
        ));
    }
    let whole_digits = len as i64 - scale;
    if whole_digits > PRICE_DIGITS_MAX as i64 {
        return Err(format!("must be below 10^{PRICE_DIGITS_MAX}"));
    }
    // At most PRICE_DIGITS_MAX + PRICE_SCALE_MAX digits: an i128 holds them.
    let mut mantissa = digits()
        .skip(leading)
        .take(len)
        .fold(0i128, |m, b| m * 10 + i128::from(b - b'0'));
    if scale < 0 {
        mantissa *= 10i128.pow((-scale) as u32);
        scale = 0;
    }
    Ok(Decimal::from_i128_with_scale(mantissa, scale as u32))
}

/// A price literal taken apart by JSON's number syntax: sign, whole and fraction digits, exponent.
struct PriceLiteral<'a> {
    negative: bool,
    whole: &'a str,
    fraction: &'a str,
    exponent: i64,
}

/// Takes a price literal apart, or says it is not a decimal in JSON's number syntax.
fn price_literal(literal: &str) -> Result<PriceLiteral<'_>, String> {
    let syntax = || "must be a non-negative decimal like 12.50".to_string();
    let (negative, rest) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let (number, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(whole) || (number.contains('.') && !digits_only(fraction)) {
        return Err(syntax());
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if !digits_only(unsigned) || unsigned.len() > 4 {
                return Err(syntax());
            }
            e.parse().map_err(|_| syntax())?
        }
    };
    Ok(PriceLiteral {
        negative,
        whole,
        fraction,
        exponent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The price rule as first written, on the digits' text: the reference for [`exact_price`]'s
    /// value and limits (the syntax is [`price_literal`]'s for both).
    fn exact_price_by_text(literal: &str) -> Result<Decimal, String> {
        let PriceLiteral {
            negative,
            whole,
            fraction,
            exponent,
        } = price_literal(literal)?;
        let mut digits: String = whole
            .chars()
            .chain(fraction.chars())
            .skip_while(|c| *c == '0')
            .collect();
        let mut scale = fraction.len() as i64 - exponent;
        while scale > 0 && digits.ends_with('0') {
            digits.pop();
            scale -= 1;
        }
        if digits.is_empty() {
            return Ok(Decimal::ZERO);
        }
        if negative {
            return Err("must not be negative".into());
        }
        if scale > i64::from(PRICE_SCALE_MAX) {
            return Err(format!(
                "has more than {PRICE_SCALE_MAX} decimal places, which would be rounded"
            ));
        }
        if digits.len() as i64 - scale > PRICE_DIGITS_MAX as i64 {
            return Err(format!("must be below 10^{PRICE_DIGITS_MAX}"));
        }
        if scale < 0 {
            digits.push_str(&"0".repeat((-scale) as usize));
            scale = 0;
        }
        let mantissa: i128 = digits.parse().map_err(|e| format!("{e}"))?;
        Ok(Decimal::from_i128_with_scale(mantissa, scale as u32))
    }

    proptest! {
        /// Protects: the price read without building its digits' text accepts, refuses and
        /// values every literal as the text-based rule does (zeros leading and trailing,
        /// exponents either way, the scale and digit limits, negative zero).
        #[test]
        fn prices_are_read_as_the_text_based_rule_reads_them(
            literal in prop_oneof![
                "-?[0-9]{0,15}(\\.[0-9]{0,12})?([eE][+-]?[0-9]{1,5})?",
                "-?0{0,3}[1-9]{0,3}0{0,6}(\\.0{0,4}[0-9]{0,3}0{0,9})?([eE][+-]?[0-9]{1,2})?",
            ]
        ) {
            prop_assert_eq!(exact_price(&literal), exact_price_by_text(&literal), "{}", literal);
        }
    }
}
