//! The unified social credit code (统一社会信用代码, GB 32100-2015) of an organisation:
//! the registration authority (1 character), the organisation category (1), the
//! registering authority's area code (6), the organisation code (9, GB 11714) and a
//! check character, from an alphabet of 31 characters without I, O, Z, S and V.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::text::compact;
use super::{Note, Parsed, RegisterError};

const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character of the first 17 characters of a credit code, or None when
/// `body` is not 17 characters of the alphabet.
pub fn credit_check_character(body: &str) -> Option<char> {
    let b = body.as_bytes();
    if b.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (&c, w) in b.iter().zip(WEIGHTS) {
        sum += value(c)? * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(char::from(ALPHABET[check as usize]))
}

/// The check character of the first 8 characters of an organisation code (组织机构代码,
/// GB 11714: digits and uppercase letters, A = 10 … Z = 35), or None when they are not.
pub fn organisation_check_character(body: &str) -> Option<char> {
    let b = body.as_bytes();
    if b.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (&c, w) in b.iter().zip(ORG_WEIGHTS) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from(b'0' + n as u8),
    })
}

/// A valid unified social credit code, uppercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CreditCode(String);

impl CreditCode {
    /// Read a code as it comes from a form or a sheet: full-width characters,
    /// zero-width characters and spaces are dropped and lowercase letters made
    /// uppercase, each noted. The organisation code inside is checked too
    /// ([`CreditCode::organisation_code_valid`]); a failure is a warning, not an error.
    pub fn parse(raw: &str) -> Result<Parsed<CreditCode>, RegisterError> {
        let compact = compact(raw, |_| false);
        let mut notes = compact.notes(Note::SpacesTidied);
        let mut s = compact.text;
        if s.bytes().any(|b| b.is_ascii_lowercase()) {
            s.make_ascii_uppercase();
            notes.push(Note::CreditCodeUppercased);
        }
        if s.is_empty() {
            return Err(RegisterError::Empty);
        }
        let code = CreditCode::strict(&s)?;
        if !code.organisation_code_valid() {
            notes.push(Note::OrganisationCodeCheck);
        }
        Ok(Parsed { value: code, notes })
    }

    /// A code exactly as stored: 18 characters of the alphabet, the right check character.
    pub fn strict(s: &str) -> Result<CreditCode, RegisterError> {
        let n = s.chars().count();
        if n != 18 {
            return Err(RegisterError::CreditCodeLength(n));
        }
        if let Some(pos) = s.bytes().position(|c| value(c).is_none()) {
            return Err(RegisterError::CreditCodeCharacters(pos + 1));
        }
        let expected = credit_check_character(&s[..17]).ok_or(RegisterError::CreditCodeCharacters(1))?;
        if s.as_bytes()[17] != expected as u8 {
            return Err(RegisterError::CreditCodeCheckCharacter { expected });
        }
        Ok(CreditCode(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// 登记管理部门代码: 1 机构编制, 5 民政, 9 市场监管 (工商), Y 其他 ….
    pub fn registration_authority(&self) -> char {
        char::from(self.0.as_bytes()[0])
    }

    /// 机构类别代码, meaningful with the authority (e.g. 91 企业, 92 个体工商户, 93 农民专业合作社).
    pub fn category(&self) -> char {
        char::from(self.0.as_bytes()[1])
    }

    /// The first two characters: authority and category (`91`).
    pub fn authority_and_category(&self) -> &str {
        &self.0[..2]
    }

    /// 登记管理机关行政区划码: the area code of the registering authority (6 digits).
    pub fn registration_area(&self) -> &str {
        &self.0[2..8]
    }

    /// 主体标识码: the 9-character organisation code (positions 9-17).
    pub fn organisation_code(&self) -> &str {
        &self.0[8..17]
    }

    /// Whether the organisation code's last character is its GB 11714 check character.
    /// Codes of individual businesses and some others were never organisation codes,
    /// so a failure is a warning only.
    pub fn organisation_code_valid(&self) -> bool {
        let org = self.organisation_code();
        organisation_check_character(&org[..8]).is_some_and(|c| org.ends_with(c))
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl TryFrom<String> for CreditCode {
    type Error = RegisterError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CreditCode::strict(&s)
    }
}

impl From<CreditCode> for String {
    fn from(c: CreditCode) -> String {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test code: authority and category, the demo district, an 8-character
    /// organisation body with its GB 11714 check character, and the GB 32100 check.
    fn make(head: &str, org8: &str) -> String {
        let org = format!("{org8}{}", organisation_check_character(org8).expect("org body"));
        let body = format!("{head}430503{org}");
        format!("{body}{}", credit_check_character(&body).expect("body"))
    }

    #[test]
    fn the_published_example_validates() {
        // The example printed with GB 32100 explanations; it passes both checks.
        let p = CreditCode::parse("91350100M000100Y43").expect("valid");
        assert!(p.notes.is_empty());
        let c = p.value;
        assert_eq!(c.registration_authority(), '9');
        assert_eq!(c.category(), '1');
        assert_eq!(c.authority_and_category(), "91");
        assert_eq!(c.registration_area(), "350100");
        assert_eq!(c.organisation_code(), "M000100Y4");
        assert!(c.organisation_code_valid());
        assert_eq!(organisation_check_character("M000100Y"), Some('4'));
    }

    #[test]
    fn built_codes_validate_and_expose_their_parts() {
        let s = make("91", "MA4L0001");
        let c = CreditCode::parse(&s).expect("valid").value;
        assert_eq!(c.as_str(), s);
        assert_eq!(c.registration_area(), "430503");
        assert_eq!(&c.organisation_code()[..8], "MA4L0001");
        assert!(c.organisation_code_valid());
        assert_eq!(c.to_string(), s);
        let json = serde_json::to_string(&c).expect("json");
        assert_eq!(serde_json::from_str::<CreditCode>(&json).expect("back"), c);
        assert!(serde_json::from_str::<CreditCode>("\"91350100M000100Y44\"").is_err());
    }

    #[test]
    fn check_characters_map_10_to_x_and_11_to_0() {
        // Find bodies for each special remainder and confirm what the standard says.
        let bodies: Vec<String> = (0..2000).map(|n| format!("{n:08}")).collect();
        let x = bodies.iter().find(|b| organisation_check_character(b) == Some('X')).expect("some X");
        let sum: u32 = x.bytes().zip(ORG_WEIGHTS).map(|(c, w)| u32::from(c - b'0') * w).sum();
        assert_eq!(sum % 11, 1);
        let zero = bodies.iter().find(|b| organisation_check_character(b) == Some('0')).expect("some 0");
        let sum: u32 = zero.bytes().zip(ORG_WEIGHTS).map(|(c, w)| u32::from(c - b'0') * w).sum();
        assert_eq!(sum % 11, 0);
        // GB 32100: a sum divisible by 31 gives check 0, not 31.
        assert_eq!(credit_check_character("00000000000000000"), Some('0'));
        assert_eq!(credit_check_character("10000000000000000"), Some('Y'));
    }

    #[test]
    fn every_body_has_exactly_one_check_character() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..300 {
            let body: String = (0..17)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(ALPHABET[(x % 31) as usize])
                })
                .collect();
            let valid: Vec<char> = ALPHABET
                .iter()
                .map(|&c| char::from(c))
                .filter(|c| CreditCode::strict(&format!("{body}{c}")).is_ok())
                .collect();
            assert_eq!(valid.len(), 1, "{body}");
            // Every single substitution among the 17 is caught (31 is prime).
            let good = format!("{body}{}", valid[0]);
            for i in 0..17 {
                for &a in ALPHABET.iter().filter(|&&a| a != good.as_bytes()[i]) {
                    let mut v = good.as_bytes().to_vec();
                    v[i] = a;
                    assert!(CreditCode::strict(&String::from_utf8(v).expect("ascii")).is_err());
                }
            }
        }
    }

    #[test]
    fn bad_codes_are_refused_with_stable_codes() {
        let s = make("91", "MA4L0001");
        let right = s.as_bytes()[17];
        let wrong_char = ALPHABET.iter().find(|&&a| a != right).copied().expect("another");
        let wrong = format!("{}{}", &s[..17], char::from(wrong_char));
        assert_eq!(
            CreditCode::parse(&wrong),
            Err(RegisterError::CreditCodeCheckCharacter { expected: char::from(right) })
        );
        assert_eq!(CreditCode::parse(&wrong).expect_err("bad").code(), "credit_code_check_character");
        assert_eq!(CreditCode::parse(&s[..17]).expect_err("short").code(), "credit_code_length");
        for (i, bad) in ["I", "O", "Z", "S", "V", "-", "中"].iter().enumerate() {
            let mut v = s.clone();
            v.replace_range(2 + i..3 + i, bad);
            let err = CreditCode::parse(&v).expect_err("bad character");
            assert_eq!(err, RegisterError::CreditCodeCharacters(3 + i), "{bad}");
        }
        assert_eq!(CreditCode::parse("  "), Err(RegisterError::Empty));
    }

    #[test]
    fn sheet_input_is_tidied_and_noted() {
        let s = make("91", "MA4L0001");
        let p = CreditCode::parse(&s.to_lowercase()).expect("accepted");
        assert_eq!(p.value.as_str(), s);
        assert_eq!(p.notes, vec![Note::CreditCodeUppercased]);
        let full: String = s.chars().map(|c| char::from_u32(c as u32 + 0xFEE0).expect("fw")).collect();
        let p = CreditCode::parse(&format!(" {full}\u{200B}")).expect("accepted");
        assert_eq!(p.value.as_str(), s);
        assert_eq!(p.notes, vec![Note::FullWidthConverted, Note::ZeroWidthRemoved, Note::SpacesTidied]);
        // Lowercase letters that are not in the alphabet stay refused.
        let mut v = s.clone();
        v.replace_range(8..9, "o");
        assert_eq!(CreditCode::parse(&v), Err(RegisterError::CreditCodeCharacters(9)));
    }

    #[test]
    fn a_failing_organisation_code_is_a_warning() {
        // An individual business (92) whose 9 characters were never an organisation code.
        let body = "92430503MA4L00017";
        let org8 = &body[8..16];
        assert_ne!(organisation_check_character(org8), Some('7'), "test premise");
        let s = format!("{body}{}", credit_check_character(body).expect("body"));
        let p = CreditCode::parse(&s).expect("valid code");
        assert!(!p.value.organisation_code_valid());
        assert_eq!(p.notes, vec![Note::OrganisationCodeCheck]);
        assert!(p.notes[0].is_warning());
    }
}
