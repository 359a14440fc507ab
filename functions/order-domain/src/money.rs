//! Money: an ISO 4217 currency with its minor unit, and amounts exact in that unit.
//!
//! Every charge has a currency, and every amount is written with exactly the currency's minor
//! unit digits ("39.80 USD", "1000 JPY", "1.250 KWD"). A price finer than the minor unit (9.999
//! USD) is refused where it enters (the catalogue load, the inventory stage), never rounded.

use rust_decimal::Decimal;

/// A currency that can be charged: an ISO 4217 code with a minor unit (`XAU` has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    iso: iso_currency::Currency,
    exponent: u32,
}

impl Currency {
    /// The currency of an ISO 4217 code, upper or lower case; the error says what is wrong.
    pub fn from_code(code: &str) -> Result<Self, String> {
        let upper = code.to_ascii_uppercase();
        let iso = iso_currency::Currency::from_code(&upper)
            .ok_or_else(|| format!("{code:?} is not an ISO 4217 currency code"))?;
        let exponent = iso.exponent().ok_or_else(|| {
            format!("{upper} has no minor unit in ISO 4217 (a fund or metal): it cannot be charged")
        })?;
        Ok(Self {
            iso,
            exponent: u32::from(exponent),
        })
    }

    /// The three-letter code, upper case.
    pub fn code(&self) -> &'static str {
        self.iso.code()
    }

    /// Digits after the decimal point of the minor unit: USD 2, JPY 0, KWD 3.
    pub fn exponent(&self) -> u32 {
        self.exponent
    }

    /// `amount` with exactly the minor unit's digits ("39.8" USD → "39.80"); an error when it
    /// is finer than the minor unit or negative.
    pub fn amount(&self, amount: Decimal) -> Result<String, String> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(format!("{amount} {} is negative", self.code()));
        }
        if amount.round_dp(self.exponent) != amount {
            return Err(format!(
                "{amount} is finer than the minor unit of {} ({} decimal places)",
                self.code(),
                self.exponent
            ));
        }
        let mut exact = amount;
        exact.rescale(self.exponent);
        Ok(exact.to_string())
    }

    /// An exact decimal string as an amount of this currency (see [`Currency::amount`]).
    pub fn parse_amount(&self, text: &str) -> Result<String, String> {
        let amount = text
            .trim()
            .parse::<Decimal>()
            .map_err(|_| format!("{text:?} is not an exact decimal amount"))?;
        self.amount(amount)
    }
}

/// An amount as a customer and an operator read it: "39.80 USD". Amounts without a currency
/// (orders stored before every order had one) are shown as they are.
pub fn display_amount(amount: &str, currency: Option<&str>) -> String {
    match currency {
        Some(code) => {
            let exact = Currency::from_code(code)
                .ok()
                .and_then(|c| c.parse_amount(amount).ok());
            format!("{} {code}", exact.as_deref().unwrap_or(amount))
        }
        None => amount.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: amounts carry exactly the currency's minor unit (ISO 4217 exponent).
    #[test]
    fn amounts_have_the_minor_unit_of_their_currency() {
        let usd = Currency::from_code("usd").unwrap();
        assert_eq!(usd.code(), "USD");
        assert_eq!(usd.parse_amount("39.8").unwrap(), "39.80");
        assert_eq!(usd.parse_amount("25").unwrap(), "25.00");
        assert_eq!(usd.parse_amount("1008.490").unwrap(), "1008.49");
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(jpy.exponent(), 0);
        assert_eq!(jpy.parse_amount("1000").unwrap(), "1000");
        let kwd = Currency::from_code("KWD").unwrap();
        assert_eq!(kwd.parse_amount("1.25").unwrap(), "1.250");
        assert_eq!(display_amount("39.8", Some("USD")), "39.80 USD");
    }

    /// Protects: a price finer than the minor unit, a negative amount, an unknown code and a
    /// currency without a minor unit are refused, never rounded or guessed.
    #[test]
    fn finer_than_the_minor_unit_unknown_codes_and_metals_are_refused() {
        let usd = Currency::from_code("USD").unwrap();
        assert!(usd
            .parse_amount("9.999")
            .unwrap_err()
            .contains("finer than"));
        assert!(usd.parse_amount("-1").unwrap_err().contains("negative"));
        assert!(Currency::from_code("JPY")
            .unwrap()
            .parse_amount("10.5")
            .is_err());
        assert!(Currency::from_code("ABC")
            .unwrap_err()
            .contains("not an ISO 4217"));
        assert!(Currency::from_code("XAU")
            .unwrap_err()
            .contains("no minor unit"));
    }
}
