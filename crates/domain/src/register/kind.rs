//! What kind of resident a person is (人口类型) and the tags that mark people the grid
//! looks after (独居老人, 残疾人, 退役军人 …), as DOMAIN.md §2 lists them.

use serde::{Deserialize, Serialize};

/// Registered (户籍), resident (常住: registered elsewhere, living here for six months or
/// more) or floating (流动) population.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PopulationType {
    /// 户籍人口.
    #[default]
    Registered,
    /// 常住人口 (人户分离).
    Resident,
    /// 流动人口.
    Floating,
}

impl PopulationType {
    pub const ALL: [PopulationType; 3] = [PopulationType::Registered, PopulationType::Resident, PopulationType::Floating];

    pub fn as_str(self) -> &'static str {
        match self {
            PopulationType::Registered => "registered",
            PopulationType::Resident => "resident",
            PopulationType::Floating => "floating",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            PopulationType::Registered => "户籍",
            PopulationType::Resident => "常住",
            PopulationType::Floating => "流动",
        }
    }

    /// The code (`floating`) or the Chinese name (流动, 流动人口).
    pub fn parse(s: &str) -> Option<PopulationType> {
        let s = s.trim();
        PopulationType::ALL.into_iter().find(|p| p.as_str() == s || p.name_zh() == s || s.strip_suffix("人口") == Some(p.name_zh()))
    }
}

/// A mark on a person that the grid's care work follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonTag {
    /// 独居老人.
    ElderlyAlone,
    /// 残疾人.
    Disability,
    /// 退役军人.
    Veteran,
    /// 留守儿童.
    LeftBehindChild,
    /// 低保户.
    LowIncome,
}

impl PersonTag {
    pub const ALL: [PersonTag; 5] = [PersonTag::ElderlyAlone, PersonTag::Disability, PersonTag::Veteran, PersonTag::LeftBehindChild, PersonTag::LowIncome];

    pub fn as_str(self) -> &'static str {
        match self {
            PersonTag::ElderlyAlone => "elderly_alone",
            PersonTag::Disability => "disability",
            PersonTag::Veteran => "veteran",
            PersonTag::LeftBehindChild => "left_behind_child",
            PersonTag::LowIncome => "low_income",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            PersonTag::ElderlyAlone => "独居老人",
            PersonTag::Disability => "残疾人",
            PersonTag::Veteran => "退役军人",
            PersonTag::LeftBehindChild => "留守儿童",
            PersonTag::LowIncome => "低保户",
        }
    }

    /// The code or the Chinese name.
    pub fn parse(s: &str) -> Option<PersonTag> {
        let s = s.trim();
        PersonTag::ALL.into_iter().find(|t| t.as_str() == s || t.name_zh() == s)
    }

    /// Tags as stored: codes joined by commas, sorted, without duplicates.
    pub fn join(tags: &[PersonTag]) -> String {
        let mut t = tags.to_vec();
        t.sort_unstable();
        t.dedup();
        t.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Stored tags back; an unknown code is `Err` with that code.
    pub fn split(s: &str) -> Result<Vec<PersonTag>, String> {
        s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| PersonTag::parse(t).ok_or_else(|| t.to_string())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_tags_read_back() {
        assert_eq!(PopulationType::parse("流动人口"), Some(PopulationType::Floating));
        assert_eq!(PopulationType::parse("常住"), Some(PopulationType::Resident));
        assert_eq!(PopulationType::parse("外星"), None);
        let tags = [PersonTag::Veteran, PersonTag::ElderlyAlone, PersonTag::Veteran];
        let s = PersonTag::join(&tags);
        assert_eq!(s, "elderly_alone,veteran");
        assert_eq!(PersonTag::split(&s), Ok(vec![PersonTag::ElderlyAlone, PersonTag::Veteran]));
        assert_eq!(PersonTag::split(""), Ok(vec![]));
        assert_eq!(PersonTag::split("veteran,ghost"), Err("ghost".to_string()));
        assert_eq!(PersonTag::parse("残疾人"), Some(PersonTag::Disability));
    }
}
