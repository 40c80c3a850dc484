//! The relation of a household member to the head of household (与户主关系), in the
//! common terms of household registers (after GB/T 4761's groups).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::RegisterError;
use super::text::normalise_cell;

/// A member's relation to the head of household.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// 户主 / 本人.
    Head,
    /// 配偶 / 妻 / 夫.
    Spouse,
    /// 子 / 儿子 (长子, 次子 …).
    Son,
    /// 女 / 女儿 (长女, 次女 …).
    Daughter,
    /// 子女, when the sheet does not say which.
    Child,
    /// 父亲.
    Father,
    /// 母亲.
    Mother,
    /// 父母, when the sheet does not say which.
    Parent,
    /// 孙子 / 外孙子.
    Grandson,
    /// 孙女 / 外孙女.
    Granddaughter,
    /// 兄弟姐妹 (兄, 弟, 姐, 妹 …).
    Sibling,
    /// 其他: any other relative (儿媳, 女婿, 祖父母 …) or none (非亲属).
    Other,
}

impl Relation {
    pub const ALL: [Relation; 12] = [
        Relation::Head,
        Relation::Spouse,
        Relation::Son,
        Relation::Daughter,
        Relation::Child,
        Relation::Father,
        Relation::Mother,
        Relation::Parent,
        Relation::Grandson,
        Relation::Granddaughter,
        Relation::Sibling,
        Relation::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Head => "head",
            Relation::Spouse => "spouse",
            Relation::Son => "son",
            Relation::Daughter => "daughter",
            Relation::Child => "child",
            Relation::Father => "father",
            Relation::Mother => "mother",
            Relation::Parent => "parent",
            Relation::Grandson => "grandson",
            Relation::Granddaughter => "granddaughter",
            Relation::Sibling => "sibling",
            Relation::Other => "other",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Relation::Head => "户主",
            Relation::Spouse => "配偶",
            Relation::Son => "子",
            Relation::Daughter => "女",
            Relation::Child => "子女",
            Relation::Father => "父亲",
            Relation::Mother => "母亲",
            Relation::Parent => "父母",
            Relation::Grandson => "孙子",
            Relation::Granddaughter => "孙女",
            Relation::Sibling => "兄弟姐妹",
            Relation::Other => "其他",
        }
    }

    /// Read a relation leniently: spaces and full-width text are ignored, and so are a
    /// leading "户主之"/"户主的"/"之" and the birth-order words before 子/女 (长子, 次女,
    /// 独生子, 三女 …). A term outside the list is an error (`relation_unknown`) that
    /// names it, so an import can report it; it is never guessed into 其他.
    pub fn parse(raw: &str) -> Result<Relation, RegisterError> {
        let key: String = normalise_cell(raw).text.chars().filter(|c| !c.is_whitespace()).collect();
        if key.is_empty() {
            return Err(RegisterError::Empty);
        }
        let mut k = key.as_str();
        for prefix in ["户主之", "户主的", "之"] {
            if let Some(rest) = k.strip_prefix(prefix).filter(|r| !r.is_empty()) {
                k = rest;
                break;
            }
        }
        if let Some(r) = Relation::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(k)) {
            return Ok(r);
        }
        // Birth order: 长子, 次女, 独生子, 二儿子, 小女儿 …
        let ordered = ["独生", "长", "次", "大", "二", "三", "四", "五", "六", "七", "八", "九", "小", "幼"]
            .iter()
            .find_map(|p| k.strip_prefix(p).filter(|r| matches!(*r, "子" | "女" | "儿子" | "女儿")));
        let k = ordered.unwrap_or(k);
        Ok(match k {
            "户主" | "本人" | "本身" => Relation::Head,
            "配偶" | "妻" | "妻子" | "夫" | "丈夫" | "爱人" | "老伴" => Relation::Spouse,
            "子" | "儿子" | "儿" => Relation::Son,
            "女" | "女儿" => Relation::Daughter,
            "子女" | "养子女" | "继子女" => Relation::Child,
            "父" | "父亲" | "爸爸" => Relation::Father,
            "母" | "母亲" | "妈妈" => Relation::Mother,
            "父母" => Relation::Parent,
            "孙子" | "孙" | "外孙" | "外孙子" => Relation::Grandson,
            "孙女" | "外孙女" => Relation::Granddaughter,
            "兄弟姐妹" | "兄弟" | "姐妹" | "兄" | "弟" | "姐" | "妹" | "哥哥" | "弟弟" | "姐姐" | "妹妹" | "兄妹"
            | "姐弟" => Relation::Sibling,
            "其他" | "其它" | "儿媳" | "媳妇" | "女婿" | "祖父" | "祖母" | "外祖父" | "外祖母" | "公公" | "婆婆"
            | "岳父" | "岳母" | "孙媳妇" | "侄子" | "侄女" | "外甥" | "外甥女" | "其他亲属" | "非亲属"
            | "保姆" => Relation::Other,
            _ => return Err(RegisterError::RelationUnknown(key)),
        })
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name_zh())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_terms() {
        use Relation::*;
        for (raw, rel) in [
            ("户主", Head),
            ("本人", Head),
            ("配偶", Spouse),
            ("妻", Spouse),
            ("夫", Spouse),
            ("子", Son),
            ("儿子", Son),
            ("女", Daughter),
            ("女儿", Daughter),
            ("父亲", Father),
            ("母亲", Mother),
            ("父母", Parent),
            ("孙子", Grandson),
            ("孙女", Granddaughter),
            ("兄弟姐妹", Sibling),
            ("弟", Sibling),
            ("其他", Other),
            ("儿媳", Other),
            ("子女", Child),
        ] {
            assert_eq!(Relation::parse(raw), Ok(rel), "{raw}");
        }
    }

    #[test]
    fn lenient_forms() {
        assert_eq!(Relation::parse(" 长 子 "), Ok(Relation::Son));
        assert_eq!(Relation::parse("次女"), Ok(Relation::Daughter));
        assert_eq!(Relation::parse("独生子"), Ok(Relation::Son));
        assert_eq!(Relation::parse("小女儿"), Ok(Relation::Daughter));
        assert_eq!(Relation::parse("户主之妻"), Ok(Relation::Spouse));
        assert_eq!(Relation::parse("之子"), Ok(Relation::Son));
        assert_eq!(Relation::parse("\u{200B}配偶\u{3000}"), Ok(Relation::Spouse));
        // The stable names read back too (a round trip through an export).
        for r in Relation::ALL {
            assert_eq!(Relation::parse(r.as_str()), Ok(r));
            assert_eq!(Relation::parse(r.name_zh()), Ok(r), "{r}");
        }
        // Birth order only before 子 and 女: 长辈 is not a child.
        assert_eq!(Relation::parse("长辈").expect_err("unknown").code(), "relation_unknown");
    }

    #[test]
    fn unknown_terms_are_reported_not_guessed() {
        assert_eq!(Relation::parse("邻居"), Err(RegisterError::RelationUnknown("邻居".into())));
        assert_eq!(Relation::parse("户主之"), Err(RegisterError::RelationUnknown("户主之".into())));
        assert_eq!(Relation::parse("02"), Err(RegisterError::RelationUnknown("02".into())));
        assert_eq!(Relation::parse("  "), Err(RegisterError::Empty));
        let e = Relation::parse("邻 居").expect_err("unknown");
        assert!(e.to_string().contains("邻居"));
    }
}
