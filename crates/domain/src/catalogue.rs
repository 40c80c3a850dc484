//! The incident catalogue (DOMAIN.md §3): departments, and two-level categories of 部件
//! (physical assets) and 事件 (events), each with a default department, a time limit per
//! step and whether a grid worker may handle it on the spot.
//!
//! Codes: `C` (component, 部件) or `E` (event, 事件), then two digits for the top level
//! and two more for the second: `C01` 公用设施, `C0101` 上水井盖.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::calendar::TimeLimit;
use crate::error::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryKind {
    /// 部件: a physical asset (manhole cover, street lamp …).
    Component,
    /// 事件: an event (illegal parking, a neighbour dispute …).
    Event,
}

impl CategoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CategoryKind::Component => "component",
            CategoryKind::Event => "event",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            CategoryKind::Component => "部件",
            CategoryKind::Event => "事件",
        }
    }
    fn letter(self) -> char {
        match self {
            CategoryKind::Component => 'C',
            CategoryKind::Event => 'E',
        }
    }
}

impl FromStr for CategoryKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "component" => Ok(CategoryKind::Component),
            "event" => Ok(CategoryKind::Event),
            _ => Err(DomainError::InvalidCategory(format!("unknown kind {s:?}"))),
        }
    }
}

impl TimeLimit {
    /// `4h` (working hours) or `3d` (working days).
    pub fn parse(s: &str) -> Result<TimeLimit, DomainError> {
        let s = s.trim();
        let bad = || DomainError::InvalidTimeLimit(s.to_string());
        let (n, unit) = s.split_at(s.len().checked_sub(1).ok_or_else(bad)?);
        let n: u32 = n.parse().map_err(|_| bad())?;
        if n == 0 || n > 10_000 {
            return Err(bad());
        }
        match unit {
            "h" => Ok(TimeLimit::WorkingHours(n)),
            "d" => Ok(TimeLimit::WorkingDays(n)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeLimit::WorkingHours(n) => write!(f, "{n}h"),
            TimeLimit::WorkingDays(n) => write!(f, "{n}d"),
        }
    }
}

/// Time limits of the steps of the loop, for one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLimits {
    /// 立案: from report to filing.
    pub file: TimeLimit,
    /// 派遣: from filing to dispatch.
    pub dispatch: TimeLimit,
    /// 处置: from dispatch to the handled report.
    pub handle: TimeLimit,
    /// 核查: from the handled report to the on-site check.
    pub verify: TimeLimit,
}

/// A category of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub code: String,
    pub name: String,
    pub kind: CategoryKind,
    /// The top-level category of a second-level one.
    pub parent: Option<String>,
    /// The department it goes to by default (second level only).
    pub department: Option<String>,
    /// Second level only.
    pub limits: Option<StepLimits>,
    /// A grid worker may handle it on the spot (自行处置).
    pub on_spot: bool,
}

/// Check a category code against its kind and parent.
pub fn check_category_code(code: &str, kind: CategoryKind, parent: Option<&str>) -> Result<(), DomainError> {
    let bad = |why: &str| DomainError::InvalidCategory(format!("{code}: {why}"));
    let mut chars = code.chars();
    if chars.next() != Some(kind.letter()) {
        return Err(bad(&format!("a {} code starts with {}", kind.as_str(), kind.letter())));
    }
    let digits = chars.as_str();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return Err(bad("two digits for a top-level category, four for a second-level one"));
    }
    match (digits.len(), parent) {
        (2, None) => Ok(()),
        (4, Some(p)) if code.starts_with(p) && p.len() == 3 => Ok(()),
        (2, Some(_)) => Err(bad("a top-level category has no parent")),
        _ => Err(bad("a second-level code extends its parent's code")),
    }
}

/// A department that handles dispatched incidents (专业部门).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub code: String,
    pub name: String,
}

/// The demo district's departments.
pub fn demo_departments() -> Vec<Department> {
    [
        ("cgj", "区城市管理和综合执法局"),
        ("zjj", "区住房和城乡建设局"),
        ("jtj", "区交通运输局"),
        ("ylj", "区园林绿化中心"),
        ("sthj", "市生态环境局大祥分局"),
        ("gaj", "市公安局大祥分局"),
        ("jgj", "区市场监督管理局"),
        ("yjj", "区应急管理局"),
        ("mzj", "区民政局"),
        ("sfj", "区司法局"),
        ("sw", "市自来水公司"),
        ("gd", "国网供电公司大祥供电部"),
        ("rq", "市燃气公司"),
        ("xfj", "区信访局"),
        ("jd", "街道办事处"),
    ]
    .into_iter()
    .map(|(code, name)| Department { code: code.into(), name: name.into() })
    .collect()
}

/// The demo catalogue: realistic two-level categories after CJJ/T 106 practice, and the
/// social-governance events grid workers report.
pub fn demo_categories() -> Vec<Category> {
    use CategoryKind::{Component as C, Event as E};
    let h = TimeLimit::WorkingHours;
    let d = TimeLimit::WorkingDays;
    // (top code, top name, kind, [(sub name, department, handle limit, on the spot)])
    type Sub = (&'static str, &'static str, TimeLimit, bool);
    let tree: Vec<(&str, &str, CategoryKind, Vec<Sub>)> = vec![
        ("C01", "公用设施", C, vec![
            ("上水井盖", "sw", h(4), false),
            ("污水井盖", "cgj", h(4), false),
            ("雨水箅子", "cgj", h(8), false),
            ("路灯", "cgj", d(2), false),
            ("消防栓", "yjj", d(1), false),
            ("电力设施", "gd", h(8), false),
            ("燃气设施", "rq", h(2), false),
        ]),
        ("C02", "道路交通", C, vec![
            ("交通标志牌", "jtj", d(3), false),
            ("道路护栏", "jtj", d(2), false),
            ("公交站亭", "jtj", d(3), false),
            ("人行道板", "zjj", d(5), false),
        ]),
        ("C03", "市容环境", C, vec![
            ("垃圾箱", "cgj", d(1), true),
            ("公共厕所", "cgj", d(2), false),
            ("户外广告设施", "cgj", d(3), false),
        ]),
        ("C04", "园林绿化", C, vec![
            ("行道树", "ylj", d(2), false),
            ("绿地护栏", "ylj", d(3), false),
            ("花坛", "ylj", d(3), false),
        ]),
        ("E01", "市容环境", E, vec![
            ("暴露垃圾", "cgj", h(4), true),
            ("积存垃圾渣土", "cgj", h(8), false),
            ("乱堆物堆料", "cgj", h(8), true),
            ("道路不洁", "cgj", h(4), true),
            ("乱张贴小广告", "cgj", h(8), true),
        ]),
        ("E02", "街面秩序", E, vec![
            ("占道经营", "cgj", h(2), true),
            ("店外经营", "cgj", h(4), true),
            ("无照经营游商", "jgj", h(4), false),
            ("机动车乱停放", "gaj", h(2), false),
            ("非机动车乱停放", "cgj", h(2), true),
        ]),
        ("E03", "施工管理", E, vec![
            ("施工扰民", "zjj", d(1), false),
            ("工地扬尘", "sthj", d(1), false),
            ("渣土车撒漏", "cgj", h(4), false),
            ("违法建设", "cgj", d(5), false),
        ]),
        ("E04", "突发事件", E, vec![
            ("路面塌陷", "zjj", h(4), false),
            ("自来水管爆裂", "sw", h(2), false),
            ("燃气泄漏", "rq", h(1), false),
            ("树木倒伏", "ylj", h(4), false),
        ]),
        ("E05", "矛盾纠纷", E, vec![
            ("邻里纠纷", "sfj", d(5), true),
            ("家庭纠纷", "sfj", d(5), true),
            ("劳资纠纷", "sfj", d(10), false),
            ("物业纠纷", "zjj", d(10), false),
        ]),
        ("E06", "安全隐患", E, vec![
            ("消防通道堵塞", "yjj", h(8), true),
            ("电动车违规充电", "yjj", h(8), true),
            ("危房隐患", "zjj", d(3), false),
            ("燃气使用隐患", "rq", d(1), false),
        ]),
        ("E07", "民生服务", E, vec![
            ("独居老人关爱", "mzj", d(3), true),
            ("困难群众救助", "mzj", d(5), false),
            ("噪声扰民", "sthj", d(1), false),
        ]),
    ];
    let mut out = Vec::new();
    for (code, name, kind, subs) in tree {
        out.push(Category { code: code.into(), name: name.into(), kind, parent: None, department: None, limits: None, on_spot: false });
        for (k, (sub, dept, handle, on_spot)) in subs.into_iter().enumerate() {
            let limits = StepLimits { file: h(1), dispatch: h(1), handle, verify: h(4) };
            out.push(Category {
                code: format!("{code}{:02}", k + 1),
                name: sub.into(),
                kind,
                parent: Some(code.into()),
                department: Some(dept.into()),
                limits: Some(limits),
                on_spot,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_catalogue_is_well_formed() {
        let cats = demo_categories();
        let depts: Vec<String> = demo_departments().into_iter().map(|d| d.code).collect();
        let subs: Vec<&Category> = cats.iter().filter(|c| c.parent.is_some()).collect();
        assert!(subs.len() >= 40, "at least 40 categories to report against: {}", subs.len());
        for c in &cats {
            check_category_code(&c.code, c.kind, c.parent.as_deref()).unwrap_or_else(|e| panic!("{e}"));
            if c.parent.is_some() {
                assert!(depts.contains(c.department.as_ref().expect("department")), "{} has a known department", c.code);
                assert!(c.limits.is_some());
            }
        }
        let mut codes: Vec<&str> = cats.iter().map(|c| c.code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), cats.len(), "codes are unique");
        assert!(cats.iter().any(|c| c.kind == CategoryKind::Component) && cats.iter().any(|c| c.kind == CategoryKind::Event));
    }

    #[test]
    fn codes_and_limits_parse() {
        assert!(check_category_code("C0101", CategoryKind::Component, Some("C01")).is_ok());
        assert!(check_category_code("E0101", CategoryKind::Component, Some("E01")).is_err());
        assert!(check_category_code("C0201", CategoryKind::Component, Some("C01")).is_err());
        assert!(check_category_code("C01", CategoryKind::Component, Some("C01")).is_err());
        assert_eq!(TimeLimit::parse("4h"), Ok(TimeLimit::WorkingHours(4)));
        assert_eq!(TimeLimit::parse("3d"), Ok(TimeLimit::WorkingDays(3)));
        for bad in ["", "h", "0h", "4x", "-1d", "4 h"] {
            assert!(TimeLimit::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(TimeLimit::WorkingDays(3).to_string(), "3d");
    }
}
