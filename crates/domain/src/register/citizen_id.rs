//! The citizen ID number (公民身份号码, GB 11643-1999): a 6-digit address code, the birth
//! date `YYYYMMDD`, a 3-digit sequence (odd for men, even for women) and a check
//! character by ISO 7064 MOD 11-2.
//!
//! A [`CitizenId`] can only hold a valid 18-character number with an uppercase `X`. It
//! never prints in full: `Debug` and `Display` show the masked form
//! (`430503********1234`); the store asks for the number with [`CitizenId::expose`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::text::compact;
use super::{Note, Parsed, RegisterError};
use crate::access::mask_id_number;
use crate::area::AreaCode;
use crate::calendar::Day;
use crate::error::DomainError;

/// The MOD 11-2 weights of the first 17 characters.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each remainder of the weighted sum mod 11.
const CHECK: [u8; 11] = *b"10X98765432";

/// The check character of 17 leading digits, or None when `body` is not 17 ASCII digits.
pub fn id_check_character(body: &str) -> Option<char> {
    let b = body.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = b.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    Some(char::from(CHECK[(sum % 11) as usize]))
}

/// Gender as the ID number's sequence says (odd male, even female).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
    /// 男 / 女.
    pub fn name_zh(self) -> &'static str {
        match self {
            Gender::Male => "男",
            Gender::Female => "女",
        }
    }
}

/// A valid 18-character citizen ID number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CitizenId(String);

impl CitizenId {
    /// Read an ID number as it comes from a form or a sheet, on the day `today`:
    /// full-width digits, zero-width characters and spaces are dropped (and noted), a
    /// lowercase `x` is made `X` (noted), and a 15-digit number is upgraded to 18
    /// (noted). Refused: a wrong length or character, a birth date that does not exist,
    /// lies after `today` or before 1900, and a wrong check character, in that order of
    /// checking (a typo in the date shows as the date's error, the more useful one).
    pub fn parse(raw: &str, today: Day) -> Result<Parsed<CitizenId>, RegisterError> {
        let compact = compact(raw, |_| false);
        let mut notes = compact.notes(Note::SpacesTidied);
        let mut s = compact.text;
        if s.is_empty() {
            return Err(RegisterError::Empty);
        }
        let id = match s.chars().count() {
            15 => {
                if let Some(pos) = s.bytes().position(|b| !b.is_ascii_digit()) {
                    return Err(RegisterError::IdCharacters(pos + 1));
                }
                let body = format!("{}19{}", &s[..6], &s[6..]);
                let check = id_check_character(&body).ok_or(RegisterError::IdCharacters(1))?;
                notes.push(Note::IdUpgraded);
                format!("{body}{check}")
            }
            18 => {
                if let Some(pos) = s.chars().take(17).position(|c| !c.is_ascii_digit()) {
                    return Err(RegisterError::IdCharacters(pos + 1));
                }
                match s.as_bytes()[17] {
                    b'x' => {
                        notes.push(Note::LowercaseX);
                        s.make_ascii_uppercase();
                    }
                    b'0'..=b'9' | b'X' => {}
                    _ => return Err(RegisterError::IdCharacters(18)),
                }
                s
            }
            n => return Err(RegisterError::IdLength(n)),
        };
        let id = CitizenId::checked(id)?;
        if id.birth_date() > today {
            return Err(RegisterError::IdBirthFuture);
        }
        Ok(Parsed { value: id, notes })
    }

    /// A number as the store keeps it: exactly 18 characters, uppercase `X`, a real
    /// birth date from 1900 on and the right check character. Nothing is normalised.
    pub fn from_stored(s: &str) -> Result<CitizenId, RegisterError> {
        let b = s.as_bytes();
        if b.len() != 18 {
            return Err(RegisterError::IdLength(s.chars().count()));
        }
        if let Some(pos) = b[..17].iter().position(|c| !c.is_ascii_digit()) {
            return Err(RegisterError::IdCharacters(pos + 1));
        }
        if !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(RegisterError::IdCharacters(18));
        }
        CitizenId::checked(s.to_string())
    }

    /// `s` is 17 ASCII digits and a digit or `X`: check the date and the check character.
    fn checked(s: String) -> Result<CitizenId, RegisterError> {
        let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
        let (y, m, d) = (num(6..10), num(10..12), num(12..14));
        Day::from_ymd(i64::from(y), m, d).ok_or(RegisterError::IdBirthDate)?;
        if y < 1900 {
            return Err(RegisterError::IdBirthTooEarly);
        }
        let expected = id_check_character(&s[..17]).ok_or(RegisterError::IdCharacters(1))?;
        if s.as_bytes()[17] != expected as u8 {
            return Err(RegisterError::IdCheckCharacter { expected });
        }
        Ok(CitizenId(s))
    }

    /// The full number, for the store and for a role allowed to see it. Everything else
    /// shows [`CitizenId::masked`].
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `430503********1234`.
    pub fn masked(&self) -> String {
        mask_id_number(&self.0)
    }

    /// The 6-digit address code (where the number was first issued; it may be retired).
    pub fn address_code(&self) -> &str {
        &self.0[..6]
    }

    pub fn birth_date(&self) -> Day {
        let num = |r: std::ops::Range<usize>| self.0[r].parse::<u32>().unwrap_or(0);
        // Checked when the value was made.
        Day::from_ymd(i64::from(num(6..10)), num(10..12), num(12..14)).unwrap_or(Day(0))
    }

    /// Whole years of age on `day` (0 before the first birthday; someone born on
    /// 29 February turns a year older on 1 March in common years).
    pub fn age_on(&self, day: Day) -> u32 {
        let (by, bm, bd) = self.birth_date().ymd();
        let (y, m, d) = day.ymd();
        let years = y - by - i64::from((m, d) < (bm, bd));
        u32::try_from(years).unwrap_or(0)
    }

    /// From the 17th digit: odd male, even female.
    pub fn gender(&self) -> Gender {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 { Gender::Male } else { Gender::Female }
    }
}

impl fmt::Debug for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CitizenId({})", self.masked())
    }
}

impl fmt::Display for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.masked())
    }
}

/// Address codes an import knows to be current, given by the caller (the district's own
/// code and its parents, or a full GB/T 2260 list). Entries of 6 digits match exactly;
/// entries of 2 or 4 digits match every code under that province or city.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownAddressCodes(Vec<String>);

impl KnownAddressCodes {
    pub fn new<I, S>(codes: I) -> Result<KnownAddressCodes, DomainError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for c in codes {
            let c = c.as_ref().trim();
            if !matches!(c.len(), 2 | 4 | 6) || !c.bytes().all(|b| b.is_ascii_digit()) {
                return Err(DomainError::InvalidAreaCode(c.to_string()));
            }
            out.push(c.to_string());
        }
        Ok(KnownAddressCodes(out))
    }

    /// A district's code and its city's and province's codes (430503, 430500, 430000).
    /// Only the first six digits of `area` are used.
    pub fn of_district(area: &AreaCode) -> KnownAddressCodes {
        let d = &area.as_str()[..6];
        KnownAddressCodes(vec![d.to_string(), format!("{}00", &d[..4]), format!("{}0000", &d[..2])])
    }

    pub fn contains(&self, address_code: &str) -> bool {
        address_code.len() == 6
            && self.0.iter().any(|k| if k.len() == 6 { k == address_code } else { address_code.starts_with(k.as_str()) })
    }

    /// A warning when the number's address code is not known; never an error, because
    /// old numbers keep the codes of areas that were renamed or merged since.
    pub fn check(&self, id: &CitizenId) -> Option<Note> {
        (!self.contains(id.address_code())).then(|| Note::UnknownAddressCode(id.address_code().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Day {
        Day::from_ymd(2026, 11, 25).expect("day")
    }

    /// A test number (never a real person's): the demo district, a birth date, a
    /// sequence, and the check character computed.
    fn make(birth: &str, seq: &str) -> String {
        let body = format!("430503{birth}{seq}");
        let check = id_check_character(&body).expect("17 digits");
        format!("{body}{check}")
    }

    fn parse(s: &str) -> Result<Parsed<CitizenId>, RegisterError> {
        CitizenId::parse(s, today())
    }

    fn code_of(s: &str) -> &'static str {
        parse(s).expect_err("refused").code()
    }

    #[test]
    fn the_standards_vectors() {
        // GB 11643's examples. The first is valid; the second has the right check
        // character but was born in 1880, and numbers before 1900 are refused here.
        let id = parse("11010519491231002X").expect("valid").value;
        assert_eq!(id.expose(), "11010519491231002X");
        assert_eq!(id.birth_date(), Day::from_ymd(1949, 12, 31).expect("day"));
        assert_eq!(id.gender(), Gender::Female);
        assert_eq!(id.address_code(), "110105");
        assert_eq!(id_check_character("44052418800101001"), Some('4'));
        assert_eq!(code_of("440524188001010014"), "id_birth_too_early");
    }

    #[test]
    fn every_check_character_against_independent_vectors() {
        // Computed outside this code (a separate script), one body per remainder, so a
        // wrong weight or a wrong mapping of remainders to characters shows here.
        for (body, check) in [
            ("43050319900101003", '0'),
            ("43050319900101008", '1'),
            ("43050319900101002", '2'),
            ("43050319900101007", '3'),
            ("43050319900101001", '4'),
            ("43050319900101006", '5'),
            ("43050319900101000", '6'),
            ("43050319900101005", '7'),
            ("43050319900101018", '8'),
            ("43050319900101004", '9'),
            ("43050319900101009", 'X'),
        ] {
            assert_eq!(id_check_character(body), Some(check), "{body}");
            assert!(parse(&format!("{body}{check}")).is_ok());
        }
        assert_eq!(id_check_character("4305031990010100"), None);
        assert_eq!(id_check_character("4305031990010100a"), None);
    }

    #[test]
    fn a_valid_number_gives_its_parts() {
        let s = make("19900101", "123");
        let p = parse(&s).expect("valid");
        assert!(p.notes.is_empty());
        let id = p.value;
        assert_eq!(id.expose(), s);
        assert_eq!(id.address_code(), "430503");
        assert_eq!(id.birth_date(), Day::from_ymd(1990, 1, 1).expect("day"));
        assert_eq!(id.gender(), Gender::Male);
        assert_eq!(parse(&make("19900101", "124")).expect("valid").value.gender(), Gender::Female);
        assert_eq!(id.age_on(today()), 36);
        assert_eq!(id.age_on(Day::from_ymd(2025, 12, 31).expect("day")), 35);
        assert_eq!(id.age_on(Day::from_ymd(2026, 1, 1).expect("day")), 36);
        assert_eq!(CitizenId::from_stored(&s), Ok(id));
        // Born on 29 February: a year older on 1 March in a common year.
        let leap = parse(&make("20000229", "124")).expect("valid").value;
        assert_eq!(leap.age_on(Day::from_ymd(2025, 2, 28).expect("day")), 24);
        assert_eq!(leap.age_on(Day::from_ymd(2025, 3, 1).expect("day")), 25);
        assert_eq!(leap.age_on(Day::from_ymd(1999, 1, 1).expect("day")), 0, "before birth");
    }

    #[test]
    fn it_never_prints_in_full() {
        let s = make("19900101", "123");
        let id = parse(&s).expect("valid").value;
        let masked = format!("430503********{}", &s[14..]);
        assert_eq!(id.masked(), masked);
        assert_eq!(id.to_string(), masked);
        assert_eq!(format!("{id:?}"), format!("CitizenId({masked})"));
        assert!(!format!("{id:?} {id} {:?}", Some(&id)).contains(&s[6..14]));
        // Errors do not repeat the number either.
        let mut wrong = s.clone();
        wrong.replace_range(17..18, if s.ends_with('0') { "1" } else { "0" });
        let err = parse(&wrong).expect_err("wrong check");
        assert!(!err.to_string().contains(&s[6..14]));
    }

    #[test]
    fn a_wrong_check_character_is_refused_with_the_expected_one() {
        let s = make("19900101", "123");
        let right = s.as_bytes()[17] as char;
        for c in "0123456789X".chars().filter(|&c| c != right) {
            let wrong = format!("{}{c}", &s[..17]);
            assert_eq!(parse(&wrong), Err(RegisterError::IdCheckCharacter { expected: right }));
            assert_eq!(CitizenId::from_stored(&wrong), Err(RegisterError::IdCheckCharacter { expected: right }));
        }
    }

    #[test]
    fn impossible_future_and_early_dates_are_refused() {
        // Check characters computed, so only the date is wrong.
        assert_eq!(code_of(&make("19990230", "123")), "id_birth_date");
        assert_eq!(code_of(&make("19991301", "123")), "id_birth_date");
        assert_eq!(code_of(&make("19990001", "123")), "id_birth_date");
        assert_eq!(code_of(&make("19900229", "123")), "id_birth_date");
        assert!(parse(&make("20000229", "123")).is_ok());
        assert_eq!(code_of(&make("20261126", "123")), "id_birth_future");
        assert!(parse(&make("20261125", "123")).is_ok(), "born today");
        assert_eq!(code_of(&make("18991231", "123")), "id_birth_too_early");
        assert!(parse(&make("19000101", "123")).is_ok());
        // The same number is fine on a later day: the future is relative to `today`.
        let later = Day::from_ymd(2027, 1, 1).expect("day");
        assert!(CitizenId::parse(&make("20261126", "123"), later).is_ok());
    }

    #[test]
    fn lowercase_x_is_accepted_and_noted() {
        // Find a sequence whose check character is X.
        let s = (0..1000)
            .map(|n| make("19850615", &format!("{n:03}")))
            .find(|s| s.ends_with('X'))
            .expect("one in eleven ends in X");
        let lower = s.to_lowercase();
        let p = parse(&lower).expect("accepted");
        assert_eq!(p.value.expose(), s);
        assert_eq!(p.notes, vec![Note::LowercaseX]);
        assert!(parse(&s).expect("valid").notes.is_empty());
        // The store's form is strict.
        assert_eq!(CitizenId::from_stored(&lower), Err(RegisterError::IdCharacters(18)));
    }

    #[test]
    fn full_width_zero_width_and_spaces_are_dropped_and_noted() {
        let s = make("19900101", "123");
        let full: String = s.chars().map(|c| char::from_u32(c as u32 + 0xFEE0).expect("fw")).collect();
        let p = parse(&full).expect("accepted");
        assert_eq!(p.value.expose(), s);
        assert_eq!(p.notes, vec![Note::FullWidthConverted]);

        let zw = format!("\u{FEFF}{}\u{200B}{}", &s[..6], &s[6..]);
        let p = parse(&zw).expect("accepted");
        assert_eq!(p.value.expose(), s);
        assert_eq!(p.notes, vec![Note::ZeroWidthRemoved]);

        let spaced = format!(" {} {} {}\u{3000}", &s[..6], &s[6..14], &s[14..]);
        let p = parse(&spaced).expect("accepted");
        assert_eq!(p.value.expose(), s);
        assert_eq!(p.notes, vec![Note::SpacesTidied]);
        assert!(CitizenId::from_stored(&spaced).is_err());
    }

    #[test]
    fn a_15_digit_number_is_upgraded() {
        // 430503 + 900101 + 123: born 1990-01-01, male.
        let p = parse("430503900101123").expect("upgraded");
        assert_eq!(p.notes, vec![Note::IdUpgraded]);
        assert_eq!(p.value.expose(), make("19900101", "123"));
        assert_eq!(p.value.birth_date(), Day::from_ymd(1990, 1, 1).expect("day"));
        assert_eq!(p.value.gender(), Gender::Male);
        assert_eq!(code_of("430503990230123"), "id_birth_date");
        assert_eq!(code_of("43050399023012X"), "id_characters");
    }

    #[test]
    fn lengths_and_characters() {
        assert_eq!(parse(""), Err(RegisterError::Empty));
        assert_eq!(parse(" \u{200B} "), Err(RegisterError::Empty));
        assert_eq!(parse("4305031990010112"), Err(RegisterError::IdLength(16)));
        assert_eq!(parse(&format!("{}0", make("19900101", "123"))), Err(RegisterError::IdLength(19)));
        assert_eq!(parse("43050319900101123"), Err(RegisterError::IdLength(17)));
        assert_eq!(parse("43050A199001011234"), Err(RegisterError::IdCharacters(6)));
        assert_eq!(parse("4305031990010112Y4"), Err(RegisterError::IdCharacters(17)));
        assert_eq!(parse("43050319900101123Y"), Err(RegisterError::IdCharacters(18)));
        assert_eq!(parse("43050319900101123X-"), Err(RegisterError::IdLength(19)));
        // Chinese characters count as characters, not bytes.
        assert_eq!(parse("四三零五零三19900101123"), Err(RegisterError::IdLength(17)));
        assert_eq!(code_of("43050319900101123"), "id_length");
        assert_eq!(code_of("43050A199001011234"), "id_characters");
    }

    #[test]
    fn every_prefix_has_exactly_one_check_character_and_single_errors_are_caught() {
        // A small deterministic walk over birth dates and sequences.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let day = Day(-25_000 + (x % 45_000) as i64);
            let (y, m, d) = day.ymd();
            let birth = format!("{y:04}{m:02}{d:02}");
            let seq = format!("{:03}", (x >> 20) % 1000);
            let body = format!("430503{birth}{seq}");
            let valid: Vec<char> = "0123456789X"
                .chars()
                .filter(|c| CitizenId::parse(&format!("{body}{c}"), today()).is_ok())
                .collect();
            assert_eq!(valid.len(), 1, "{body}");
            let good = format!("{body}{}", valid[0]);
            // MOD 11-2 catches every single substitution and every adjacent swap
            // among the first 17 digits (caught either as a bad check or a bad date).
            let b = good.as_bytes();
            for i in 0..17 {
                for digit in b'0'..=b'9' {
                    if digit == b[i] {
                        continue;
                    }
                    let mut v = b.to_vec();
                    v[i] = digit;
                    let s = String::from_utf8(v).expect("ascii");
                    assert!(CitizenId::parse(&s, Day(1_000_000)).is_err(), "{s}");
                }
                if i < 16 && b[i] != b[i + 1] {
                    let mut v = b.to_vec();
                    v.swap(i, i + 1);
                    let s = String::from_utf8(v).expect("ascii");
                    assert!(CitizenId::parse(&s, Day(1_000_000)).is_err(), "{s}");
                }
            }
        }
    }

    #[test]
    fn unknown_address_codes_are_a_warning() {
        let district = AreaCode::parse("430503001").expect("code");
        let known = KnownAddressCodes::of_district(&district);
        let own = parse(&make("19900101", "123")).expect("valid").value;
        assert_eq!(known.check(&own), None);
        let retired = {
            let body = "43050219900101123";
            let s = format!("{body}{}", id_check_character(body).expect("17"));
            parse(&s).expect("valid: an unknown code is not an error").value
        };
        let note = known.check(&retired).expect("warned");
        assert_eq!(note, Note::UnknownAddressCode("430502".into()));
        assert!(note.is_warning());
        assert_eq!(note.code(), "id_unknown_address_code");
        assert!(known.contains("430500") && known.contains("430000"));
        // Prefix entries cover a whole city or province.
        let city = KnownAddressCodes::new(["4305"]).expect("codes");
        assert_eq!(city.check(&retired), None);
        assert!(!city.contains("430600"));
        assert!(!city.contains("4305"));
        let province = KnownAddressCodes::new(["43", "110105"]).expect("codes");
        assert!(province.contains("439999") && province.contains("110105") && !province.contains("110106"));
        assert!(KnownAddressCodes::new(["43050"]).is_err());
        assert!(KnownAddressCodes::new(["4305a3"]).is_err());
    }
}
