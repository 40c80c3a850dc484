//! The register (实有人口、房屋、单位): the validated values a register row is made of, and
//! the rules for reading them from departments' spreadsheets.
//!
//! Every parser here takes the text of one imported cell and gives either a value that
//! can only be valid, with the [`Note`]s on what was changed or doubtful on the way
//! (full-width digits converted, a 15-digit ID upgraded, an unknown address code …), or
//! a [`RegisterError`] with a stable code. Nothing is altered silently: an import shows
//! the notes per row and field.
//!
//! - [`text`]: cell normalisation ([`normalise_cell`]) and spreadsheet escaping.
//! - [`citizen_id`]: [`CitizenId`] (公民身份号码, GB 11643).
//! - [`credit_code`]: [`CreditCode`] (统一社会信用代码, GB 32100, GB 11714).
//! - [`phone`]: mainland mobile numbers as people type them into sheets.
//! - [`headers`]: header aliases and the header-row finder.
//! - [`kind`]: [`PopulationType`] (户籍/常住/流动) and [`PersonTag`] (独居老人 …).
//! - [`relation`]: [`Relation`] to the head of household (与户主关系).
//! - [`rows`]: the check of one imported row of a persons, houses or organisations
//!   sheet, each finding by field, column and severity.

pub mod citizen_id;
pub mod credit_code;
pub mod headers;
pub mod kind;
pub mod phone;
pub mod relation;
pub mod rows;
pub mod text;

pub use citizen_id::{CitizenId, Gender, KnownAddressCodes};
pub use credit_code::CreditCode;
pub use headers::{HeaderFields, HeaderRow, HouseField, OrganisationField, PersonField, find_header_row, header_field};
pub use kind::{PersonTag, PopulationType};
pub use phone::parse_mobile;
pub use relation::Relation;
pub use rows::{
    Finding, HouseRow, OrganisationRow, PersonRow, RowCheck, RowContext, Severity, check_house_row, check_organisation_row, check_person_row,
    parse_area_cell, parse_date_cell,
};
pub use text::{CellChanges, Normalised, escape_for_spreadsheet, normalise_cell};

/// A value parsed from a cell, with what the parser noticed about the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub value: T,
    pub notes: Vec<Note>,
}

/// Something a parser changed or doubts, never fatal. An import reports each one with
/// the row and the field; a [`Note::is_warning`] deserves a person's look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Full-width digits, letters or punctuation (U+FF01–FF5E) were made ASCII.
    FullWidthConverted,
    /// Ideographic or no-break spaces were made ordinary spaces.
    WideSpaceConverted,
    /// Zero-width characters (U+200B–200D, U+2060, U+FEFF) were removed.
    ZeroWidthRemoved,
    /// Spaces at the ends were trimmed, or runs of spaces and line breaks inside were
    /// made one space.
    SpacesTidied,
    /// Spaces, hyphens or brackets inside a number were removed.
    SeparatorsRemoved,
    /// A lowercase `x` check character was made `X`.
    LowercaseX,
    /// A 15-digit (first-generation) ID number was upgraded to 18 digits.
    IdUpgraded,
    /// The ID number's address code is not among the known ones. Old numbers carry
    /// retired codes, so this is a warning only.
    UnknownAddressCode(String),
    /// Lowercase letters of a credit code were made uppercase.
    CreditCodeUppercased,
    /// The organisation code inside a credit code fails its GB 11714 check character.
    /// Some registrations (e.g. individual businesses) carry codes that never had one.
    OrganisationCodeCheck,
    /// A `+86`, `0086` or `86` prefix was removed from a mobile number.
    CountryCodeRemoved,
}

impl Note {
    /// The stable code of this note.
    pub fn code(&self) -> &'static str {
        match self {
            Note::FullWidthConverted => "full_width_converted",
            Note::WideSpaceConverted => "wide_space_converted",
            Note::ZeroWidthRemoved => "zero_width_removed",
            Note::SpacesTidied => "spaces_tidied",
            Note::SeparatorsRemoved => "separators_removed",
            Note::LowercaseX => "id_lowercase_x",
            Note::IdUpgraded => "id_upgraded",
            Note::UnknownAddressCode(_) => "id_unknown_address_code",
            Note::CreditCodeUppercased => "credit_code_uppercased",
            Note::OrganisationCodeCheck => "credit_code_organisation_check",
            Note::CountryCodeRemoved => "phone_country_code_removed",
        }
    }

    /// Whether a person should look at it (the value may be wrong), rather than a
    /// record of a harmless conversion.
    pub fn is_warning(&self) -> bool {
        matches!(self, Note::UnknownAddressCode(_) | Note::OrganisationCodeCheck)
    }

    /// The message for operators, Chinese first.
    pub fn message(&self) -> String {
        match self {
            Note::FullWidthConverted => "全角字符已转为半角 (full-width characters converted)".into(),
            Note::WideSpaceConverted => "全角空格已转为半角空格 (wide spaces converted)".into(),
            Note::ZeroWidthRemoved => "已删除不可见的零宽字符 (zero-width characters removed)".into(),
            Note::SpacesTidied => "已去除多余空格 (stray spaces removed)".into(),
            Note::SeparatorsRemoved => "已去除号码中的空格或分隔符 (separators removed)".into(),
            Note::LowercaseX => "校验位小写 x 已改为大写 X (lowercase x made X)".into(),
            Note::IdUpgraded => "15 位身份证号码已升级为 18 位 (15-digit ID number upgraded to 18)".into(),
            Note::UnknownAddressCode(code) => {
                format!("身份证号码的地址码 {code} 不在已知区划中，请核对 (unknown address code {code})")
            }
            Note::CreditCodeUppercased => "信用代码中的小写字母已改为大写 (letters made uppercase)".into(),
            Note::OrganisationCodeCheck => {
                "信用代码中的组织机构代码校验位不符，请核对 (organisation code check character fails)".into()
            }
            Note::CountryCodeRemoved => "已去除国际区号 +86 (country code removed)".into(),
        }
    }
}

/// Why a cell's value was refused. Messages never repeat the full input: an ID number
/// is personal data, and errors end up in logs and downloadable reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("空值 (empty)")]
    Empty,
    #[error("身份证号码应为 18 位（或 15 位旧号码），实为 {0} 位 (an ID number has 18 characters, or 15 digits)")]
    IdLength(usize),
    #[error("身份证号码第 {0} 位不是有效字符 (character {0} is not allowed: 17 digits, then a digit or X)")]
    IdCharacters(usize),
    #[error("身份证号码校验位错误，应为 {expected} (wrong check character, expected {expected})")]
    IdCheckCharacter { expected: char },
    #[error("身份证号码中的出生日期不存在 (the birth date in the number does not exist)")]
    IdBirthDate,
    #[error("身份证号码中的出生日期晚于今天 (the birth date is in the future)")]
    IdBirthFuture,
    #[error("身份证号码中的出生日期早于 1900 年 (the birth date is before 1900)")]
    IdBirthTooEarly,
    #[error("统一社会信用代码应为 18 位，实为 {0} 位 (a credit code has 18 characters)")]
    CreditCodeLength(usize),
    #[error("统一社会信用代码第 {0} 位不是有效字符 (character {0} is not allowed: digits and letters except I, O, Z, S, V)")]
    CreditCodeCharacters(usize),
    #[error("统一社会信用代码校验位错误，应为 {expected} (wrong check character, expected {expected})")]
    CreditCodeCheckCharacter { expected: char },
    #[error("不是有效的手机号码（11 位，以 13-19 开头） (not a mainland mobile number)")]
    InvalidPhone,
    #[error("房屋面积应为 0 到 100000 平方米之间的数 (an area is a number of square metres, above 0 and below 100000)")]
    HouseArea,
    #[error("无法识别的与户主关系：{0} (unknown relation to the head of household)")]
    RelationUnknown(String),
}

impl RegisterError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            RegisterError::Empty => "empty",
            RegisterError::IdLength(_) => "id_length",
            RegisterError::IdCharacters(_) => "id_characters",
            RegisterError::IdCheckCharacter { .. } => "id_check_character",
            RegisterError::IdBirthDate => "id_birth_date",
            RegisterError::IdBirthFuture => "id_birth_future",
            RegisterError::IdBirthTooEarly => "id_birth_too_early",
            RegisterError::CreditCodeLength(_) => "credit_code_length",
            RegisterError::CreditCodeCharacters(_) => "credit_code_characters",
            RegisterError::CreditCodeCheckCharacter { .. } => "credit_code_check_character",
            // The same code as `DomainError::InvalidPhone`: the same meaning.
            RegisterError::InvalidPhone => "invalid_phone",
            RegisterError::HouseArea => "house_area",
            RegisterError::RelationUnknown(_) => "relation_unknown",
        }
    }
}
