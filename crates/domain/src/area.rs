//! Areas (区划与网格): the district → street/township → community/village → grid tree,
//! and the codes that name its nodes.
//!
//! A code's prefix is its ancestry, so the data scope of an account is "every code that
//! starts with mine" ([`Scope`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// The level of an area in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 区/县, 6 digits (GB/T 2260).
    District,
    /// 街道/乡/镇, 9 digits.
    Street,
    /// 社区/村, 12 digits.
    Community,
    /// 基础网格, 15 digits, last three 001-899.
    Grid,
    /// 专属网格 (school, hospital, market …), 15 digits, last three 900-999.
    Dedicated,
}

impl Level {
    pub const ALL: [Level; 5] =
        [Level::District, Level::Street, Level::Community, Level::Grid, Level::Dedicated];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::District => "district",
            Level::Street => "street",
            Level::Community => "community",
            Level::Grid => "grid",
            Level::Dedicated => "dedicated",
        }
    }

    /// The Chinese name of the level.
    pub fn name_zh(self) -> &'static str {
        match self {
            Level::District => "区县",
            Level::Street => "街道/乡镇",
            Level::Community => "社区/村",
            Level::Grid => "基础网格",
            Level::Dedicated => "专属网格",
        }
    }

    /// The number of digits a code of this level has.
    pub fn code_len(self) -> usize {
        match self {
            Level::District => 6,
            Level::Street => 9,
            Level::Community => 12,
            Level::Grid | Level::Dedicated => 15,
        }
    }

    /// The levels a parent of this level may have.
    pub fn parent_levels(self) -> &'static [Level] {
        match self {
            Level::District => &[],
            Level::Street => &[Level::District],
            Level::Community => &[Level::Street],
            Level::Grid => &[Level::Community],
            // A dedicated grid sits under the community or the street that holds it.
            Level::Dedicated => &[Level::Community, Level::Street],
        }
    }

    /// The level below this one in the basic tree (dedicated grids are off to the side).
    pub fn child(self) -> Option<Level> {
        match self {
            Level::District => Some(Level::Street),
            Level::Street => Some(Level::Community),
            Level::Community => Some(Level::Grid),
            Level::Grid | Level::Dedicated => None,
        }
    }

    pub fn is_grid(self) -> bool {
        matches!(self, Level::Grid | Level::Dedicated)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Level {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| DomainError::InvalidLevel(s.to_string()))
    }
}

/// An area code: 6, 9, 12 or 15 ASCII digits, no segment of zeros except where a
/// dedicated grid sits directly under a street.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AreaCode(String);

impl AreaCode {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        let ok_len = matches!(s.len(), 6 | 9 | 12 | 15);
        if !ok_len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::InvalidAreaCode(s.to_string()));
        }
        Ok(AreaCode(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last three-digit segment (for a district: its six digits), as a number.
    pub fn last_segment(&self) -> u32 {
        let start = if self.0.len() == 6 { 0 } else { self.0.len() - 3 };
        self.0[start..].parse().unwrap_or(0)
    }

    /// The code of the parent in the basic tree as implied by the digits alone.
    /// Dedicated grids under a street have `000` as their community segment.
    pub fn implied_parent(&self) -> Option<AreaCode> {
        match self.0.len() {
            6 => None,
            15 if &self.0[9..12] == "000" => Some(AreaCode(self.0[..9].to_string())),
            n => Some(AreaCode(self.0[..n - 3].to_string())),
        }
    }

    /// Codes of the ancestors, district first.
    pub fn ancestry(&self) -> Vec<AreaCode> {
        let mut out = Vec::new();
        let mut cur = self.implied_parent();
        while let Some(c) = cur {
            cur = c.implied_parent();
            out.push(c);
        }
        out.reverse();
        out
    }

    pub fn starts_with(&self, prefix: &AreaCode) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for AreaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AreaCode {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        AreaCode::parse(&s)
    }
}

impl From<AreaCode> for String {
    fn from(c: AreaCode) -> String {
        c.0
    }
}

impl FromStr for AreaCode {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AreaCode::parse(s)
    }
}

/// Check that `code` suits `level` and extends `parent` (of `parent_level`).
/// Returns every problem as an error; used by the import checks and by the store.
pub fn check_code(
    code: &AreaCode,
    level: Level,
    parent: Option<(&AreaCode, Level)>,
) -> Result<(), DomainError> {
    let s = code.as_str();
    if s.len() != level.code_len() {
        return Err(DomainError::CodeLevelMismatch {
            code: s.to_string(),
            level,
            expected: level.code_len(),
        });
    }
    let seg = code.last_segment();
    match level {
        Level::District if seg == 0 => return Err(DomainError::InvalidAreaCode(s.to_string())),
        Level::Street | Level::Community if seg == 0 => {
            return Err(DomainError::InvalidAreaCode(s.to_string()));
        }
        Level::Grid if !(1..=899).contains(&seg) => {
            return Err(DomainError::GridSegmentRange { code: s.to_string(), level });
        }
        Level::Dedicated if !(900..=999).contains(&seg) => {
            return Err(DomainError::GridSegmentRange { code: s.to_string(), level });
        }
        _ => {}
    }
    match (level, parent) {
        (Level::District, None) => Ok(()),
        (Level::District, Some((p, _))) => {
            Err(DomainError::UnexpectedParent { code: s.to_string(), parent: p.to_string() })
        }
        (_, None) => Err(DomainError::MissingParent(s.to_string())),
        (_, Some((p, plevel))) => {
            if !level.parent_levels().contains(&plevel) {
                return Err(DomainError::ParentLevelMismatch {
                    code: s.to_string(),
                    level,
                    parent: p.to_string(),
                    parent_level: plevel,
                });
            }
            let implied = code.implied_parent();
            if implied.as_ref() != Some(p) {
                return Err(DomainError::CodeNotUnderParent {
                    code: s.to_string(),
                    parent: p.to_string(),
                });
            }
            Ok(())
        }
    }
}

/// A data scope: the subtree of areas under one code (STYLE habit 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    root: AreaCode,
}

impl Scope {
    pub fn under(root: AreaCode) -> Self {
        Scope { root }
    }
    pub fn root(&self) -> &AreaCode {
        &self.root
    }
    /// The SQL `LIKE` pattern for codes in this scope (codes are digits: nothing to escape).
    pub fn like_pattern(&self) -> String {
        format!("{}%", self.root)
    }
    pub fn contains(&self, code: &AreaCode) -> bool {
        code.starts_with(&self.root)
    }
}

/// What kind of place a dedicated grid covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedicatedKind {
    School,
    Hospital,
    Market,
    EnterprisePark,
    ConstructionSite,
    Other,
}

impl DedicatedKind {
    pub const ALL: [DedicatedKind; 6] = [
        DedicatedKind::School,
        DedicatedKind::Hospital,
        DedicatedKind::Market,
        DedicatedKind::EnterprisePark,
        DedicatedKind::ConstructionSite,
        DedicatedKind::Other,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DedicatedKind::School => "school",
            DedicatedKind::Hospital => "hospital",
            DedicatedKind::Market => "market",
            DedicatedKind::EnterprisePark => "enterprise_park",
            DedicatedKind::ConstructionSite => "construction_site",
            DedicatedKind::Other => "other",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            DedicatedKind::School => "学校",
            DedicatedKind::Hospital => "医院",
            DedicatedKind::Market => "市场",
            DedicatedKind::EnterprisePark => "园区",
            DedicatedKind::ConstructionSite => "工地",
            DedicatedKind::Other => "其他",
        }
    }
}

impl FromStr for DedicatedKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DedicatedKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| DomainError::InvalidDedicatedKind(s.to_string()))
    }
}

/// A member's role in a grid team (网格队伍).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    /// 网格长
    GridLeader,
    /// 专职网格员
    FullTimeMember,
    /// 兼职网格员
    PartTimeMember,
    /// 网格民警
    GridPolice,
    /// 志愿者
    Volunteer,
}

impl TeamRole {
    pub const ALL: [TeamRole; 5] = [
        TeamRole::GridLeader,
        TeamRole::FullTimeMember,
        TeamRole::PartTimeMember,
        TeamRole::GridPolice,
        TeamRole::Volunteer,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::GridLeader => "grid_leader",
            TeamRole::FullTimeMember => "full_time_member",
            TeamRole::PartTimeMember => "part_time_member",
            TeamRole::GridPolice => "grid_police",
            TeamRole::Volunteer => "volunteer",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            TeamRole::GridLeader => "网格长",
            TeamRole::FullTimeMember => "专职网格员",
            TeamRole::PartTimeMember => "兼职网格员",
            TeamRole::GridPolice => "网格民警",
            TeamRole::Volunteer => "志愿者",
        }
    }
}

impl FromStr for TeamRole {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TeamRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| DomainError::InvalidTeamRole(s.to_string()))
    }
}

/// A member of a grid's team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    pub area: AreaCode,
    pub role: TeamRole,
    pub name: String,
    /// Work phone: sensitive, shown masked unless read with a reason.
    pub phone: Option<crate::access::Phone>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> AreaCode {
        AreaCode::parse(s).expect("a valid code")
    }

    #[test]
    fn ancestry_follows_the_digits() {
        let g = c("430503001001003");
        let anc: Vec<String> = g.ancestry().into_iter().map(String::from).collect();
        assert_eq!(anc, ["430503", "430503001", "430503001001"]);
        // A dedicated grid held by a street skips the community segment.
        assert_eq!(c("430503001000901").implied_parent(), Some(c("430503001")));
    }

    #[test]
    fn codes_must_suit_level_and_parent() {
        let d = c("430503");
        let s = c("430503001");
        assert!(check_code(&s, Level::Street, Some((&d, Level::District))).is_ok());
        let err = check_code(&c("430504001"), Level::Street, Some((&d, Level::District)));
        assert!(matches!(err, Err(DomainError::CodeNotUnderParent { .. })));
        let err = check_code(&s, Level::Community, Some((&d, Level::District)));
        assert!(matches!(err, Err(DomainError::CodeLevelMismatch { .. })));
        let comm = c("430503001001");
        assert!(check_code(&c("430503001001901"), Level::Dedicated, Some((&comm, Level::Community))).is_ok());
        let err = check_code(&c("430503001001901"), Level::Grid, Some((&comm, Level::Community)));
        assert!(matches!(err, Err(DomainError::GridSegmentRange { .. })));
        assert!(AreaCode::parse("43050a").is_err());
        assert!(AreaCode::parse("4305031").is_err());
    }
}
