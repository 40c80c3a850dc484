//! Who may do what (DOMAIN.md §7): roles, the signed-in principal, the password policy and
//! the masking of sensitive values.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::area::{AreaCode, Scope};
use crate::error::DomainError;

/// An account's role. Each account also has an area: it sees only that area's subtree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 坐席: command-center operator taking calls and reports.
    Operator,
    /// 派遣员
    Dispatcher,
    /// 值班长
    ShiftLead,
    /// 专业部门: sees what is dispatched to its department, wherever it is.
    DepartmentHandler,
    /// 街道工作人员
    StreetStaff,
    /// 社区工作人员
    CommunityStaff,
    /// 网格长
    GridLeader,
    /// 网格员
    GridWorker,
    /// 志愿者
    Volunteer,
    /// 审计员: reads the audit trail, changes nothing.
    Auditor,
    /// 系统管理员: manages accounts, never the audit trail.
    Admin,
    /// Another department's system, through tokens.
    ApiClient,
}

impl Role {
    pub const ALL: [Role; 12] = [
        Role::Operator,
        Role::Dispatcher,
        Role::ShiftLead,
        Role::DepartmentHandler,
        Role::StreetStaff,
        Role::CommunityStaff,
        Role::GridLeader,
        Role::GridWorker,
        Role::Volunteer,
        Role::Auditor,
        Role::Admin,
        Role::ApiClient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Dispatcher => "dispatcher",
            Role::ShiftLead => "shift_lead",
            Role::DepartmentHandler => "department_handler",
            Role::StreetStaff => "street_staff",
            Role::CommunityStaff => "community_staff",
            Role::GridLeader => "grid_leader",
            Role::GridWorker => "grid_worker",
            Role::Volunteer => "volunteer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::ApiClient => "api_client",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Role::Operator => "坐席员",
            Role::Dispatcher => "派遣员",
            Role::ShiftLead => "值班长",
            Role::DepartmentHandler => "专业部门处置人员",
            Role::StreetStaff => "街道工作人员",
            Role::CommunityStaff => "社区工作人员",
            Role::GridLeader => "网格长",
            Role::GridWorker => "网格员",
            Role::Volunteer => "志愿者",
            Role::Auditor => "审计员",
            Role::Admin => "系统管理员",
            Role::ApiClient => "接口客户端",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            Role::Operator => "Operator",
            Role::Dispatcher => "Dispatcher",
            Role::ShiftLead => "Shift lead",
            Role::DepartmentHandler => "Department handler",
            Role::StreetStaff => "Street staff",
            Role::CommunityStaff => "Community staff",
            Role::GridLeader => "Grid leader",
            Role::GridWorker => "Grid worker",
            Role::Volunteer => "Volunteer",
            Role::Auditor => "Auditor",
            Role::Admin => "Administrator",
            Role::ApiClient => "API client",
        }
    }

    /// May manage accounts (within its area).
    pub fn manages_accounts(self) -> bool {
        self == Role::Admin
    }

    /// May search the audit trail. Auditors are kept apart from admins.
    pub fn reads_audit(self) -> bool {
        self == Role::Auditor
    }

    /// May change a grid team's roster (within its area).
    pub fn edits_teams(self) -> bool {
        matches!(self, Role::StreetStaff | Role::CommunityStaff | Role::GridLeader)
    }

    /// May see a sensitive value in full, with a stated reason (within its area).
    pub fn may_unmask(self) -> bool {
        matches!(
            self,
            Role::Operator
                | Role::Dispatcher
                | Role::ShiftLead
                | Role::DepartmentHandler
                | Role::StreetStaff
                | Role::CommunityStaff
                | Role::GridLeader
                | Role::GridWorker
        )
    }

    /// May edit the work calendar (holidays, make-up workdays).
    pub fn edits_calendar(self) -> bool {
        matches!(self, Role::ShiftLead | Role::Admin)
    }

    /// Needs a department (professional departments are scoped by it).
    pub fn needs_department(self) -> bool {
        self == Role::DepartmentHandler
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| DomainError::InvalidRole(s.to_string()))
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A web session (its id in the store).
    Session(String),
    /// An API bearer token (its id in the store).
    Token(i64),
}

/// The signed-in account behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub area: AreaCode,
    pub department: Option<String>,
    pub credential: Credential,
    /// Must change the temporary password before doing anything else.
    pub must_change_password: bool,
}

impl Principal {
    pub fn scope(&self) -> Scope {
        Scope::under(self.area.clone())
    }
}

/// Why a password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must not be the username")]
    IsUsername,
    #[error("the password is on the list of common passwords")]
    Common,
    #[error("the two passwords differ")]
    Mismatch,
}

impl PasswordProblem {
    pub fn code(&self) -> &'static str {
        match self {
            PasswordProblem::TooShort => "password_too_short",
            PasswordProblem::IsUsername => "password_is_username",
            PasswordProblem::Common => "password_common",
            PasswordProblem::Mismatch => "password_mismatch",
        }
    }
}

pub const MIN_PASSWORD_CHARS: usize = 10;

/// Common passwords of ten characters or more (shorter ones fail on length), lower case.
/// Drawn from the lists that leak every year, Chinese favourites included.
const COMMON_PASSWORDS: &[&str] = &[
    "1234567890", "0123456789", "0987654321", "9876543210", "12345678910", "123456789a",
    "a123456789", "a1234567890", "123456789q", "q123456789", "1234567890q", "qwertyuiop",
    "qwertyuiop1", "qwerty1234", "qwerty12345", "qwerty123456", "1qaz2wsx3edc", "1q2w3e4r5t",
    "1q2w3e4r5t6y", "q1w2e3r4t5", "zaq12wsxcde3", "1qazxsw23edc", "zxcvbnm123", "asdfghjkl1",
    "asdfghjkl;", "password12", "password123", "password1234", "password!", "passw0rd123",
    "p@ssw0rd123", "p@ssword123", "password@123", "password#1", "iloveyou123", "iloveyou1314",
    "woaini1314", "woaini520", "woaini5201314", "5201314520", "1314520520", "5201314000",
    "a5201314520", "wo5201314", "aa5201314", "qq123456789", "qq1234567890", "abc1234567",
    "abc123456789", "abcd123456", "abcd1234567", "abcdefghij", "abcdefg123", "admin12345",
    "admin123456", "administrator", "admin@1234", "root123456", "1111111111", "0000000000",
    "2222222222", "5555555555", "6666666666", "8888888888", "9999999999", "1234512345",
    "1234554321", "1122334455", "1212121212", "1231231231", "123123123123", "147258369",
    "1472583690", "1357924680", "7758521520", "7758258520", "5211314520", "1314521521",
    "welcome123", "welcome1234", "sunshine123", "princess123", "football123", "baseball123",
    "dragon12345", "monkey12345", "letmein123", "trustno1234", "superman123", "michael123",
    "shadow12345", "master12345", "zhang123456", "wang1234567", "li123456789", "liu123456789",
    "chen1234567", "huang123456", "zhao1234567", "changeme123", "changeme1234", "test123456",
    "test1234567", "guest12345", "user123456", "civicgrid123", "civicgrid2026", "wanggehua123",
    "wangge123456", "zhengfu123456", "shequ123456", "123qweasdzxc", "qweasdzxc123", "qazwsxedc123",
    "qazwsxedcrfv", "!qaz2wsx#edc", "1qaz@wsx3edc", "1qaz!qaz1qaz",
];

/// Check a new password against the policy: at least ten characters, not the username,
/// not a common password.
pub fn check_password(username: &str, password: &str) -> Result<(), PasswordProblem> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    let lower = password.to_lowercase();
    if lower == username.to_lowercase() || lower.contains(&username.to_lowercase()) && username.len() >= 6 {
        return Err(PasswordProblem::IsUsername);
    }
    // One character repeated is as weak as any listed password.
    let first = lower.chars().next();
    if COMMON_PASSWORDS.contains(&lower.as_str()) || lower.chars().all(|c| Some(c) == first) {
        return Err(PasswordProblem::Common);
    }
    Ok(())
}

/// A citizen ID number masked for display: `430503********1234`.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 10 {
        return "*".repeat(chars.len());
    }
    let keep_end = 4;
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - keep_end..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6 - keep_end))
}

/// A phone number masked for display: `138****5678`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// A mainland mobile number: 11 digits, `1[3-9]` first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn parse(s: &str) -> Result<Phone, DomainError> {
        let digits: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let b = digits.as_bytes();
        if b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit) {
            Ok(Phone(digits))
        } else {
            Err(DomainError::InvalidPhone(s.to_string()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Phone::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_policy() {
        assert_eq!(check_password("zhangwei", "short1!"), Err(PasswordProblem::TooShort));
        assert_eq!(check_password("zhangwei01", "ZhangWei01"), Err(PasswordProblem::IsUsername));
        assert_eq!(check_password("zhangwei", "Woaini1314"), Err(PasswordProblem::Common));
        assert_eq!(check_password("zhangwei", "aaaaaaaaaaaa"), Err(PasswordProblem::Common));
        assert_eq!(check_password("zhangwei", "网格化管理指挥中心值班"), Ok(()));
        assert_eq!(check_password("zhangwei", "grid-patrol-0425"), Ok(()));
    }

    #[test]
    fn masking() {
        assert_eq!(mask_id_number("430503199001011234"), "430503********1234");
        assert_eq!(mask_id_number("11010519491231002X"), "110105********002X");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(Phone::parse("138-1234-5678").map(|p| p.masked()), Ok("138****5678".to_string()));
        assert!(Phone::parse("12812345678").is_err());
        assert!(Phone::parse("1381234567").is_err());
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!(!Role::Admin.reads_audit() && !Role::Auditor.manages_accounts());
        assert!(!Role::Auditor.may_unmask() && !Role::Admin.may_unmask());
    }
}
