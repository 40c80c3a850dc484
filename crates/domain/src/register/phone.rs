//! Mainland mobile numbers as people type them into sheets and forms. The value type is
//! [`Phone`] (access.rs: 11 digits, `1[3-9]` first); this reads the forms it comes in.

use super::text::compact;
use super::{Note, Parsed, RegisterError};
use crate::access::Phone;

/// Read a mainland mobile number from a cell: full-width digits are made ASCII,
/// zero-width characters dropped, spaces, hyphens and brackets removed (`138 1234 5678`,
/// `138-1234-5678`, `(+86)13812345678`), and a `+86`, `0086` or `86` country code
/// removed; each change is noted. What is left must be 11 digits starting `1[3-9]`.
/// Landlines are refused: the register's phone is a mobile.
pub fn parse_mobile(raw: &str) -> Result<Parsed<Phone>, RegisterError> {
    let compact = compact(raw, |c| matches!(c, '-' | '(' | ')'));
    let mut notes = compact.notes(Note::SeparatorsRemoved);
    let s = compact.text;
    if s.is_empty() {
        return Err(RegisterError::Empty);
    }
    let national = if let Some(rest) = s.strip_prefix("+86").or_else(|| s.strip_prefix("0086")) {
        notes.push(Note::CountryCodeRemoved);
        rest
    } else if let Some(rest) = s.strip_prefix("86").filter(|r| r.len() == 11) {
        notes.push(Note::CountryCodeRemoved);
        rest
    } else {
        &s
    };
    let phone = Phone::parse(national).map_err(|_| RegisterError::InvalidPhone)?;
    Ok(Parsed { value: phone, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(raw: &str) -> Result<String, &'static str> {
        parse_mobile(raw).map(|p| p.value.as_str().to_string()).map_err(|e| e.code())
    }

    #[test]
    fn plain_and_separated_numbers() {
        assert_eq!(parse_mobile("13812345678").expect("valid").notes, vec![]);
        for raw in ["13812345678", "138 1234 5678", "138-1234-5678", " 13812345678 ", "(138)12345678"] {
            assert_eq!(number(raw), Ok("13812345678".into()), "{raw:?}");
        }
        assert_eq!(parse_mobile("138-1234-5678").expect("valid").notes, vec![Note::SeparatorsRemoved]);
    }

    #[test]
    fn country_codes_are_removed_and_noted() {
        for raw in ["+8613812345678", "+86 138 1234 5678", "008613812345678", "8613812345678", "(+86)138-1234-5678"] {
            let p = parse_mobile(raw).expect(raw);
            assert_eq!(p.value.as_str(), "13812345678");
            assert!(p.notes.contains(&Note::CountryCodeRemoved), "{raw:?}");
        }
        // Too few digits after a country code, or another country's code.
        assert_eq!(number("861381234567"), Err("invalid_phone"));
        assert_eq!(number("+85213812345678"), Err("invalid_phone"));
    }

    #[test]
    fn full_width_and_zero_width_input() {
        let p = parse_mobile("１３８\u{3000}１２３４\u{200B}５６７８").expect("valid");
        assert_eq!(p.value.as_str(), "13812345678");
        assert_eq!(p.notes, vec![Note::FullWidthConverted, Note::ZeroWidthRemoved, Note::SeparatorsRemoved]);
        assert_eq!(number("＋８６１３８１２３４５６７８"), Ok("13812345678".into()));
        assert_eq!(number("138－1234－5678"), Ok("13812345678".into()));
    }

    #[test]
    fn what_is_not_a_mobile_is_refused() {
        for raw in ["12812345678", "1381234567", "138123456789", "0739-5123456", "23812345678", "1381234567a", "手机"] {
            assert_eq!(number(raw), Err("invalid_phone"), "{raw:?}");
        }
        for second in b'3'..=b'9' {
            assert!(number(&format!("1{}812345678", char::from(second))).is_ok());
        }
        assert_eq!(number(""), Err("empty"));
        assert_eq!(number(" - "), Err("empty"));
    }
}
