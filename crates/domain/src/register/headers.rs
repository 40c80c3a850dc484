//! The header row of an imported sheet: the Chinese names departments give their columns
//! (and their many aliases), mapped to the register's fields, and the search for the
//! header row below merged title rows.

use std::fmt::Debug;

use super::text::normalise_cell;

/// A set of fields an imported sheet's columns map to.
pub trait HeaderFields: Copy + Eq + Debug + 'static {
    /// Header text (as [`header_key`] gives it) → field. Matching is exact: `户主姓名` is
    /// the head's name, not the person's, however much it contains `姓名`.
    const ALIASES: &'static [(&'static str, Self)];
    /// The stable name of the field (`citizen_id`).
    fn as_str(self) -> &'static str;
}

macro_rules! fields {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal: [$($alias:literal),+ $(,)?]),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl HeaderFields for $name {
            const ALIASES: &'static [(&'static str, Self)] = &[$($(($alias, $name::$variant)),+),+];
            fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
        }
    };
}

fields! {
    /// The columns of a persons sheet (实有人口).
    PersonField {
        Name = "name": ["姓名", "名字", "人员姓名", "居民姓名"],
        CitizenId = "citizen_id": ["身份证号", "身份证号码", "公民身份号码", "公民身份证号码", "身份证", "证件号码", "证件号"],
        Phone = "phone": ["联系电话", "手机号", "手机号码", "手机", "电话", "电话号码", "联系方式"],
        /// 现住址: where the person lives now.
        CurrentAddress = "current_address": ["现住址", "居住地址", "现居住地址", "住址", "现住地址", "现居住地", "居住地", "实际居住地址"],
        /// 户籍地址: where the person's household is registered.
        RegisteredAddress = "registered_address": ["户籍地址", "户籍地", "户籍所在地", "户口所在地", "户籍住址"],
        Gender = "gender": ["性别"],
        BirthDate = "birth_date": ["出生日期", "出生年月", "出生年月日", "生日"],
        Ethnicity = "ethnicity": ["民族"],
        RelationToHead = "relation_to_head": ["与户主关系", "与户主的关系", "家庭关系", "关系"],
        /// The head of household's name, on a member's row.
        HeadName = "head_name": ["户主姓名"],
        HeadCitizenId = "head_citizen_id": ["户主身份证号", "户主身份证号码", "户主公民身份号码"],
        HouseholdNumber = "household_number": ["户号", "户编号"],
        /// 户籍/常住/流动.
        PopulationKind = "population_kind": ["人口类型", "人员类型", "人口性质", "人员类别"],
        /// 独居老人、残疾人 … (several, separated by 、 , ，).
        Tags = "tags": ["标签", "关爱标记", "人员标签"],
        Grid = "grid": ["所属网格", "网格", "网格名称", "网格编码"],
        Remarks = "remarks": ["备注"],
    }
}

fields! {
    /// The columns of a houses sheet (实有房屋).
    HouseField {
        Address = "address": ["地址", "房屋地址", "门牌", "门牌号", "门牌地址", "详细地址", "房屋坐落", "坐落"],
        Building = "building": ["栋", "楼栋", "栋号", "幢", "楼号"],
        Unit = "unit": ["单元", "单元号"],
        Floor = "floor": ["楼层", "层"],
        Room = "room": ["房号", "房间号", "室", "户室号"],
        /// 建筑面积, square metres.
        Area = "area": ["面积", "建筑面积", "房屋面积"],
        Use = "use": ["用途", "房屋用途", "使用性质"],
        Occupancy = "occupancy": ["使用状态", "房屋状态", "居住情况", "是否出租", "出租情况"],
        Owner = "owner": ["产权人", "产权人姓名", "房主", "业主", "房屋所有人"],
        OwnerCitizenId = "owner_citizen_id": ["产权人身份证号", "产权人身份证号码", "房主身份证号"],
        OwnerPhone = "owner_phone": ["产权人电话", "产权人联系电话", "房主电话", "联系电话", "电话"],
        Grid = "grid": ["所属网格", "网格", "网格名称", "网格编码"],
        Remarks = "remarks": ["备注"],
    }
}

fields! {
    /// The columns of an organisations sheet (实有单位).
    OrganisationField {
        Name = "name": ["单位名称", "名称", "企业名称", "机构名称", "单位"],
        CreditCode = "credit_code": ["统一社会信用代码", "信用代码", "社会信用代码", "统一信用代码"],
        Kind = "kind": ["单位类型", "类型", "企业类型", "单位性质", "机构类型"],
        Address = "address": ["地址", "单位地址", "注册地址", "经营地址", "办公地址", "住所"],
        LegalRepresentative = "legal_representative": ["法定代表人", "法定代表人姓名", "法人", "法人代表", "负责人"],
        Phone = "phone": ["联系电话", "电话", "手机号", "手机号码", "联系方式"],
        Contact = "contact": ["联系人"],
        Grid = "grid": ["所属网格", "网格", "网格名称", "网格编码"],
        Remarks = "remarks": ["备注"],
    }
}

/// A header cell as aliases are matched: normalised ([`normalise_cell`]), with every
/// space removed and the marks sheets add around a name (`*` for required, a trailing
/// colon) dropped.
pub fn header_key(cell: &str) -> String {
    normalise_cell(cell)
        .text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '*')
        .collect::<String>()
        .trim_end_matches([':', '：'])
        .to_string()
}

/// `key` without bracketed annotations: `联系电话(手机)` → `联系电话`, `面积【㎡】` → `面积`.
fn without_brackets(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut depth = 0usize;
    for c in key.chars() {
        match c {
            '(' | '【' | '〔' | '[' => depth += 1,
            ')' | '】' | '〕' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The field a header cell names, if any. Full-width text and spaces are ignored, and
/// so is a bracketed annotation (`身份证号（18位）`, `面积(㎡)`) when the whole text is not
/// itself an alias.
pub fn header_field<F: HeaderFields>(cell: &str) -> Option<F> {
    let key = header_key(cell);
    let find = |k: &str| F::ALIASES.iter().find(|(alias, _)| *alias == k).map(|(_, f)| *f);
    find(&key).or_else(|| find(&without_brackets(&key)))
}

/// A sheet's header row, as [`find_header_row`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRow<F> {
    /// The row's index among the rows given (0-based).
    pub row: usize,
    /// Column index (0-based) → field, first column first.
    pub columns: Vec<(usize, F)>,
    /// Columns whose header is not known (index, header as normalised). Reported, not
    /// fatal: their cells are not imported.
    pub unknown: Vec<(usize, String)>,
    /// Columns naming a field an earlier column already named. The first column wins.
    pub duplicates: Vec<(usize, F)>,
}

impl<F: HeaderFields> HeaderRow<F> {
    /// The column of a field.
    pub fn column(&self, field: F) -> Option<usize> {
        self.columns.iter().find(|(_, f)| *f == field).map(|(i, _)| *i)
    }

    /// The fields of `required` that no column names.
    pub fn missing(&self, required: &[F]) -> Vec<F> {
        required.iter().copied().filter(|f| self.column(*f).is_none()).collect()
    }

    fn of(row: usize, cells: &[impl AsRef<str>]) -> HeaderRow<F> {
        let mut out = HeaderRow { row, columns: Vec::new(), unknown: Vec::new(), duplicates: Vec::new() };
        for (i, cell) in cells.iter().enumerate() {
            let key = header_key(cell.as_ref());
            if key.is_empty() {
                continue;
            }
            match header_field::<F>(&key) {
                Some(f) if out.column(f).is_some() => out.duplicates.push((i, f)),
                Some(f) => out.columns.push((i, f)),
                None => out.unknown.push((i, key)),
            }
        }
        out
    }
}

/// Find the header row among the first `look_at` rows of a sheet: the first row in which
/// at least two different known headers appear. Title rows (a merged cell such as
/// "大祥区XX社区人口信息登记表", which a reader gives as one non-empty cell) and empty rows
/// are skipped, whatever their text. None when no row qualifies.
pub fn find_header_row<F, R, C>(rows: impl IntoIterator<Item = R>, look_at: usize) -> Option<HeaderRow<F>>
where
    F: HeaderFields,
    R: AsRef<[C]>,
    C: AsRef<str>,
{
    for (i, row) in rows.into_iter().take(look_at).enumerate() {
        // A title row (one non-empty cell) can never name two fields, so it is skipped
        // by the same rule, whatever its text.
        let header = HeaderRow::<F>::of(i, row.as_ref());
        if header.columns.len() >= 2 {
            return Some(header);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(cell: &str) -> Option<PersonField> {
        header_field(cell)
    }

    #[test]
    fn person_aliases() {
        use PersonField::*;
        for (cell, field) in [
            ("姓名", Name),
            ("名字", Name),
            ("身份证号", CitizenId),
            ("公民身份号码", CitizenId),
            ("身份证号码", CitizenId),
            ("证件号码", CitizenId),
            ("联系电话", Phone),
            ("手机号", Phone),
            ("手机号码", Phone),
            ("电话", Phone),
            ("现住址", CurrentAddress),
            ("居住地址", CurrentAddress),
            ("现居住地址", CurrentAddress),
            ("住址", CurrentAddress),
            ("户籍地址", RegisteredAddress),
            ("性别", Gender),
            ("出生日期", BirthDate),
            ("民族", Ethnicity),
            ("与户主关系", RelationToHead),
            ("户主姓名", HeadName),
            ("户主身份证号", HeadCitizenId),
            ("人口类型", PopulationKind),
            ("关爱标记", Tags),
            ("标签", Tags),
        ] {
            assert_eq!(person(cell), Some(field), "{cell}");
        }
    }

    #[test]
    fn containing_an_alias_is_not_matching_it() {
        // The head's name and ID on a member's row must not be read as the member's own.
        assert_eq!(person("户主姓名"), Some(PersonField::HeadName));
        assert_ne!(person("户主身份证号码"), Some(PersonField::CitizenId));
        // A bare 户主 column may hold the head's name or 是/否: not guessed.
        assert_eq!(person("户主"), None);
        assert_eq!(person("姓名拼音"), None);
        assert_eq!(person("紧急联系人电话"), None);
    }

    #[test]
    fn spaces_full_width_and_annotations_are_ignored() {
        assert_eq!(person(" 姓　名 "), Some(PersonField::Name));
        assert_eq!(person("身份证号（18位）"), Some(PersonField::CitizenId));
        assert_eq!(person("联系电话(手机)"), Some(PersonField::Phone));
        assert_eq!(person("*姓名"), Some(PersonField::Name));
        assert_eq!(person("姓名："), Some(PersonField::Name));
        assert_eq!(person("\u{FEFF}姓名"), Some(PersonField::Name));
        assert_eq!(header_field::<HouseField>("面积(㎡)"), Some(HouseField::Area));
        assert_eq!(header_field::<HouseField>("建筑面积【平方米】"), Some(HouseField::Area));
        assert_eq!(person(""), None);
        assert_eq!(person("（备用）"), None);
    }

    #[test]
    fn house_and_organisation_aliases() {
        for (cell, field) in [
            ("地址", HouseField::Address),
            ("房屋地址", HouseField::Address),
            ("门牌", HouseField::Address),
            ("面积", HouseField::Area),
            ("用途", HouseField::Use),
            ("产权人", HouseField::Owner),
            ("产权人身份证号", HouseField::OwnerCitizenId),
            ("单元", HouseField::Unit),
        ] {
            assert_eq!(header_field::<HouseField>(cell), Some(field), "{cell}");
        }
        for (cell, field) in [
            ("单位名称", OrganisationField::Name),
            ("名称", OrganisationField::Name),
            ("统一社会信用代码", OrganisationField::CreditCode),
            ("信用代码", OrganisationField::CreditCode),
            ("地址", OrganisationField::Address),
            ("法定代表人", OrganisationField::LegalRepresentative),
            ("联系电话", OrganisationField::Phone),
            ("联系人", OrganisationField::Contact),
        ] {
            assert_eq!(header_field::<OrganisationField>(cell), Some(field), "{cell}");
        }
        assert_eq!(header_field::<OrganisationField>("身份证号"), None);
    }

    #[test]
    fn every_alias_is_unique_within_its_sheet_kind_and_names_its_field() {
        fn check<F: HeaderFields>() {
            let mut seen = std::collections::HashSet::new();
            for (alias, field) in F::ALIASES {
                assert!(seen.insert(*alias), "{alias} listed twice");
                assert_eq!(header_key(alias), *alias, "{alias} is not in key form");
                assert_eq!(header_field::<F>(alias), Some(*field));
                assert!(!field.as_str().is_empty());
            }
        }
        check::<PersonField>();
        check::<HouseField>();
        check::<OrganisationField>();
    }

    #[test]
    fn the_header_row_is_found_below_title_rows() {
        let rows: Vec<Vec<&str>> = vec![
            vec!["大祥区XX社区人口信息登记表", "", "", ""],
            vec![],
            vec!["", "填报单位：XX社区", "", ""],
            vec!["序号", "姓 名", "身份证号码（18位）", "联系电话", "民族", "姓名", "爱好"],
            vec!["1", "张三", "430503199001011234", "13812345678", "汉", "张三", "钓鱼"],
        ];
        let h = find_header_row::<PersonField, _, _>(&rows, 10).expect("found");
        assert_eq!(h.row, 3);
        assert_eq!(
            h.columns,
            vec![
                (1, PersonField::Name),
                (2, PersonField::CitizenId),
                (3, PersonField::Phone),
                (4, PersonField::Ethnicity)
            ]
        );
        assert_eq!(h.unknown, vec![(0, "序号".to_string()), (6, "爱好".to_string())]);
        assert_eq!(h.duplicates, vec![(5, PersonField::Name)]);
        assert_eq!(h.column(PersonField::Phone), Some(3));
        assert_eq!(h.missing(&[PersonField::Name, PersonField::CurrentAddress]), vec![PersonField::CurrentAddress]);
    }

    #[test]
    fn a_title_naming_a_field_or_one_known_header_is_not_enough() {
        let rows = vec![
            // A title that happens to be an alias is still a title: one cell.
            vec!["姓名".to_string()],
            // Two cells but one known header.
            vec!["姓名".to_string(), "备用".to_string()],
            vec!["名字".to_string(), "手机号".to_string()],
        ];
        let h = find_header_row::<PersonField, _, _>(&rows, 10).expect("found");
        assert_eq!(h.row, 2);
        // A row naming one field twice is not a header row either.
        let rows = vec![vec!["姓名", "名字"], vec!["姓名", "电话"]];
        assert_eq!(find_header_row::<PersonField, _, _>(&rows, 10).map(|h| h.row), Some(1));
        // Only the first `look_at` rows are searched.
        assert_eq!(find_header_row::<PersonField, _, _>(&rows, 1), None);
        let data: Vec<Vec<&str>> = vec![vec!["张三", "430503199001011234"]; 5];
        assert_eq!(find_header_row::<PersonField, _, _>(&data, 10), None);
        assert_eq!(find_header_row::<PersonField, Vec<&str>, &str>(Vec::new(), 10), None);
    }
}
