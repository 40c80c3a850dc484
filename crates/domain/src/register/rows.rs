//! The check of one imported row (issue 5, point 3): every cell of a persons, houses or
//! organisations sheet parsed into its value, and every problem and change reported by
//! field and column, so that an import can list each bad row and lose nothing. The
//! import decides what to do with the row (all-or-nothing, `--partial`); this decides
//! only what is wrong with it.

use super::headers::{HeaderRow, HouseField, OrganisationField, PersonField};
use super::text::normalise_cell;
use super::{CitizenId, CreditCode, Gender, KnownAddressCodes, Note, Parsed, PersonTag, PopulationType, RegisterError, Relation, parse_mobile};
use crate::access::Phone;
use crate::calendar::Day;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The row cannot be imported as it is.
    Error,
    /// The row imports, but a person should look at the field.
    Warning,
    /// A harmless change was made (full-width digits converted …).
    Note,
}

/// One finding about one cell of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding<F> {
    pub field: F,
    /// The column (0-based) the cell is in; None when the sheet has no column for a
    /// required field.
    pub column: Option<usize>,
    pub severity: Severity,
    /// A stable code: a [`RegisterError::code`], a [`Note::code`], or one of the row's
    /// own (`gender_mismatch`, `birth_date_mismatch`, `unreadable`, `too_long`).
    pub code: &'static str,
    /// For operators, Chinese first.
    pub message: String,
}

/// A checked row: its value when it has no error, and everything found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCheck<T, F> {
    /// The row's number as the sheet shows it (1-based), for the report.
    pub row: usize,
    pub value: Option<T>,
    pub findings: Vec<Finding<F>>,
}

impl<T, F> RowCheck<T, F> {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// What a row check needs to know besides the row.
#[derive(Debug, Clone)]
pub struct RowContext<'a> {
    /// Birth dates after this day are refused.
    pub today: Day,
    /// When given, ID numbers with other address codes get a warning.
    pub known_codes: Option<&'a KnownAddressCodes>,
}

/// The longest text a name or a free-text cell may hold, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 50;

/// Collects the findings of one row.
struct Cells<'r, F, C> {
    header: &'r HeaderRow<F>,
    cells: &'r [C],
    findings: Vec<Finding<F>>,
}

impl<'r, F: super::HeaderFields, C: AsRef<str>> Cells<'r, F, C> {
    fn push(&mut self, field: F, column: usize, severity: Severity, code: &'static str, message: String) {
        self.findings.push(Finding { field, column: Some(column), severity, code, message });
    }

    /// A required field with no value: its cell is empty, or the sheet has no column.
    fn missing(&mut self, field: F) {
        let e = RegisterError::Empty;
        let column = self.header.column(field);
        self.findings.push(Finding { field, column, severity: Severity::Error, code: e.code(), message: e.to_string() });
    }

    fn notes(&mut self, field: F, column: usize, notes: &[Note]) {
        for n in notes {
            let severity = if n.is_warning() { Severity::Warning } else { Severity::Note };
            self.push(field, column, severity, n.code(), n.message());
        }
    }

    fn error(&mut self, field: F, column: usize, e: &RegisterError) {
        self.push(field, column, Severity::Error, e.code(), e.to_string());
    }

    /// The raw cell of a field: None when the sheet has no such column or the cell is
    /// empty after normalisation.
    fn raw(&self, field: F) -> Option<(usize, &'r str)> {
        let column = self.header.column(field)?;
        let cells: &'r [C] = self.cells;
        let raw = cells.get(column).map(AsRef::as_ref).unwrap_or("");
        (!normalise_cell(raw).text.trim().is_empty()).then_some((column, raw))
    }

    /// A free-text field, normalised with its changes noted; too long is an error.
    fn text(&mut self, field: F, max: usize) -> Option<String> {
        let (column, raw) = self.raw(field)?;
        let n = normalise_cell(raw);
        let notes = n.changes.notes();
        self.notes(field, column, &notes);
        if n.formula_like {
            self.push(field, column, Severity::Note, "kept_as_text", "以 = + - @ 开头的内容按文本保存 (kept as text, never a formula)".into());
        }
        let len = n.text.chars().count();
        if len > max {
            self.push(field, column, Severity::Error, "too_long", format!("内容过长：{len} 字，最多 {max} 字 (too long: {len} characters, at most {max})"));
            return None;
        }
        Some(n.text.into_owned())
    }

    /// A required free-text field.
    fn required_text(&mut self, field: F, max: usize) -> Option<String> {
        if self.raw(field).is_none() {
            self.missing(field);
            return None;
        }
        self.text(field, max)
    }

    /// A typed field: parsed, notes kept; an error is recorded and gives None.
    fn typed<T>(&mut self, field: F, parse: impl FnOnce(&str) -> Result<Parsed<T>, RegisterError>) -> Option<T> {
        let (column, raw) = self.raw(field)?;
        match parse(raw) {
            Ok(p) => {
                self.notes(field, column, &p.notes);
                Some(p.value)
            }
            Err(e) => {
                self.error(field, column, &e);
                None
            }
        }
    }
}

/// A date as sheets write it: `1990-01-01`, `1990/1/1`, `1990.01.01`, `1990年1月1日`,
/// `19900101`. None when it is none of these or does not exist.
pub fn parse_date_cell(raw: &str) -> Option<Day> {
    let n = normalise_cell(raw);
    let groups: Vec<&str> = n.text.split(|c: char| !c.is_ascii_digit()).filter(|g| !g.is_empty()).collect();
    let (y, m, d) = match groups.as_slice() {
        [g] if g.len() == 8 => (&g[..4], &g[4..6], &g[6..]),
        [y, m, d] if y.len() == 4 && m.len() <= 2 && d.len() <= 2 => (*y, *m, *d),
        _ => return None,
    };
    // Only separators and the 年月日 marks may sit between the numbers.
    let rest_ok = n.text.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | '/' | '.' | '年' | '月' | '日' | ' '));
    if !rest_ok {
        return None;
    }
    Day::from_ymd(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// The gender a sheet's 性别 column writes.
fn parse_gender_cell(raw: &str) -> Option<Gender> {
    match normalise_cell(raw).text.trim().to_ascii_lowercase().as_str() {
        "男" | "男性" | "m" | "male" | "1" => Some(Gender::Male),
        "女" | "女性" | "f" | "female" | "2" => Some(Gender::Female),
        _ => None,
    }
}

/// A person as a row of a persons sheet gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub name: String,
    pub citizen_id: CitizenId,
    /// From the ID number (a 性别 column that disagrees is a warning).
    pub gender: Gender,
    /// From the ID number (a 出生日期 column that disagrees is a warning).
    pub birth_date: Day,
    pub phone: Option<Phone>,
    pub current_address: Option<String>,
    pub registered_address: Option<String>,
    pub ethnicity: Option<String>,
    pub relation: Option<Relation>,
    pub head_name: Option<String>,
    pub head_citizen_id: Option<CitizenId>,
    /// 人口类型, when the row has one (an unknown value is an error: the register would be wrong).
    pub population_type: Option<PopulationType>,
    /// 标签, when the row has any (an unknown tag is an error).
    pub tags: Option<Vec<PersonTag>>,
    /// Other columns kept as normalised text (户号, 网格, 备注, and a relation
    /// that was not understood), so nothing the sheet said is lost.
    pub other: Vec<(PersonField, String)>,
}

/// Check one row of a persons sheet. 姓名 and 身份证号 are required; a bad ID number,
/// phone or head's ID number is an error; an unknown address code, a 性别 or 出生日期
/// column that disagrees with the ID number, or an unknown relation is a warning.
pub fn check_person_row<C: AsRef<str>>(
    header: &HeaderRow<PersonField>,
    cells: &[C],
    row: usize,
    ctx: &RowContext<'_>,
) -> RowCheck<PersonRow, PersonField> {
    use PersonField as P;
    let mut c = Cells { header, cells, findings: Vec::new() };
    let name = c.required_text(P::Name, MAX_NAME_CHARS);
    let id = if c.raw(P::CitizenId).is_none() {
        c.missing(P::CitizenId);
        None
    } else {
        c.typed(P::CitizenId, |s| CitizenId::parse(s, ctx.today))
    };
    if let (Some(id), Some(known), Some((column, _))) = (&id, ctx.known_codes, c.raw(P::CitizenId))
        && let Some(note) = known.check(id)
    {
        c.notes(P::CitizenId, column, &[note]);
    }
    if let (Some(id), Some((column, raw))) = (&id, c.raw(P::Gender)) {
        match parse_gender_cell(raw) {
            Some(g) if g == id.gender() => {}
            Some(g) => c.push(
                P::Gender,
                column,
                Severity::Warning,
                "gender_mismatch",
                format!("性别“{}”与身份证号码不符，按号码记为“{}” (gender disagrees with the ID number)", g.name_zh(), id.gender().name_zh()),
            ),
            None => c.push(P::Gender, column, Severity::Warning, "unreadable", "无法识别的性别，按身份证号码记录 (gender not understood; taken from the ID number)".into()),
        }
    }
    if let (Some(id), Some((column, raw))) = (&id, c.raw(P::BirthDate)) {
        match parse_date_cell(raw) {
            Some(d) if d == id.birth_date() => {}
            Some(_) => c.push(P::BirthDate, column, Severity::Warning, "birth_date_mismatch", "出生日期与身份证号码不符，按号码记录 (birth date disagrees with the ID number)".into()),
            None => c.push(P::BirthDate, column, Severity::Warning, "unreadable", "无法识别的出生日期，按身份证号码记录 (birth date not understood; taken from the ID number)".into()),
        }
    }
    let phone = c.typed(P::Phone, parse_mobile);
    let head_citizen_id = c.typed(P::HeadCitizenId, |s| CitizenId::parse(s, ctx.today));
    let mut other = Vec::new();
    let relation = match c.raw(P::RelationToHead) {
        None => None,
        Some((column, raw)) => match Relation::parse(raw) {
            Ok(r) => Some(r),
            Err(e) => {
                c.push(P::RelationToHead, column, Severity::Warning, e.code(), e.to_string());
                if let Some(t) = c.text(P::RelationToHead, MAX_TEXT_CHARS) {
                    other.push((P::RelationToHead, t));
                }
                None
            }
        },
    };
    let current_address = c.text(P::CurrentAddress, MAX_TEXT_CHARS);
    let registered_address = c.text(P::RegisteredAddress, MAX_TEXT_CHARS);
    let ethnicity = c.text(P::Ethnicity, MAX_TEXT_CHARS);
    let head_name = c.text(P::HeadName, MAX_NAME_CHARS);
    let population_type = c.raw(P::PopulationKind).and_then(|(column, raw)| {
        let text = normalise_cell(raw).text.trim().to_string();
        let p = PopulationType::parse(&text);
        if p.is_none() {
            c.push(
                P::PopulationKind,
                column,
                Severity::Error,
                "population_type_unknown",
                format!("无法识别的人口类型“{text}”，应为 户籍、常住 或 流动 (unknown population type)"),
            );
        }
        p
    });
    let tags = c.raw(P::Tags).and_then(|(column, raw)| {
        let text = normalise_cell(raw).text.into_owned();
        let (mut tags, mut unknown) = (Vec::new(), Vec::new());
        for t in text.split(['、', ',', '，']).map(str::trim).filter(|t| !t.is_empty()) {
            match PersonTag::parse(t) {
                Some(tag) => tags.push(tag),
                None => unknown.push(t.to_string()),
            }
        }
        if !unknown.is_empty() {
            let known: Vec<&str> = PersonTag::ALL.iter().map(|t| t.name_zh()).collect();
            c.push(
                P::Tags,
                column,
                Severity::Error,
                "tag_unknown",
                format!("无法识别的标签“{}”，可用：{} (unknown tag)", unknown.join("、"), known.join("、")),
            );
            return None;
        }
        tags.sort_unstable();
        tags.dedup();
        Some(tags)
    });
    for f in [P::HouseholdNumber, P::Grid, P::Remarks] {
        if let Some(t) = c.text(f, MAX_TEXT_CHARS) {
            other.push((f, t));
        }
    }
    let findings = c.findings;
    let ok = !findings.iter().any(|f| f.severity == Severity::Error);
    let value = match (name, id) {
        (Some(name), Some(citizen_id)) if ok => Some(PersonRow {
            name,
            gender: citizen_id.gender(),
            birth_date: citizen_id.birth_date(),
            citizen_id,
            phone,
            current_address,
            registered_address,
            ethnicity,
            relation,
            head_name,
            head_citizen_id,
            population_type,
            tags,
            other,
        }),
        _ => None,
    };
    RowCheck { row, value, findings }
}

/// An organisation as a row of an organisations sheet gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganisationRow {
    pub name: String,
    /// Optional: small units often have none. A code that is there must be valid.
    pub credit_code: Option<CreditCode>,
    pub address: Option<String>,
    pub legal_representative: Option<String>,
    /// Kept as text: a unit's number is often a landline.
    pub phone: Option<String>,
    /// Other columns kept as normalised text (类型, 联系人, 网格, 备注).
    pub other: Vec<(OrganisationField, String)>,
}

/// Check one row of an organisations sheet: 单位名称 is required; a credit code that is
/// present must be valid (its organisation code failing GB 11714 is a warning).
pub fn check_organisation_row<C: AsRef<str>>(
    header: &HeaderRow<OrganisationField>,
    cells: &[C],
    row: usize,
) -> RowCheck<OrganisationRow, OrganisationField> {
    use OrganisationField as O;
    let mut c = Cells { header, cells, findings: Vec::new() };
    let name = c.required_text(O::Name, MAX_TEXT_CHARS);
    let credit_code = c.typed(O::CreditCode, CreditCode::parse);
    let address = c.text(O::Address, MAX_TEXT_CHARS);
    let legal_representative = c.text(O::LegalRepresentative, MAX_NAME_CHARS);
    let phone = c.text(O::Phone, MAX_TEXT_CHARS);
    let mut other = Vec::new();
    for f in [O::Kind, O::Contact, O::Grid, O::Remarks] {
        if let Some(t) = c.text(f, MAX_TEXT_CHARS) {
            other.push((f, t));
        }
    }
    let findings = c.findings;
    let ok = !findings.iter().any(|f| f.severity == Severity::Error);
    let value = name.filter(|_| ok).map(|name| OrganisationRow { name, credit_code, address, legal_representative, phone, other });
    RowCheck { row, value, findings }
}

/// A floor area in square metres as sheets write it: `85.5`, `85.5㎡`, `85.5平方米`,
/// `85.5 平米`, `85.5m2`. Above 0 and below 100,000; None otherwise.
pub fn parse_area_cell(raw: &str) -> Option<f64> {
    let n = normalise_cell(raw);
    let t = n.text.trim();
    let number = ["平方米", "平米", "㎡", "m2", "M2", "m²"]
        .iter()
        .find_map(|u| t.strip_suffix(u))
        .unwrap_or(t)
        .trim();
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    number.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0 && *v < 100_000.0)
}

/// A house as a row of a houses sheet gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseRow {
    pub address: String,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub floor: Option<String>,
    pub room: Option<String>,
    /// Square metres.
    pub area: Option<f64>,
    pub owner: Option<String>,
    pub owner_citizen_id: Option<CitizenId>,
    /// Kept as text: an owner's number may be a landline.
    pub owner_phone: Option<String>,
    /// Other columns kept as normalised text (用途, 使用状态, 网格, 备注): their
    /// vocabularies are the house model's to define.
    pub other: Vec<(HouseField, String)>,
}

/// Check one row of a houses sheet: 地址 is required; an area must be a number of square
/// metres and an owner's ID number must be valid.
pub fn check_house_row<C: AsRef<str>>(
    header: &HeaderRow<HouseField>,
    cells: &[C],
    row: usize,
    ctx: &RowContext<'_>,
) -> RowCheck<HouseRow, HouseField> {
    use HouseField as H;
    let mut c = Cells { header, cells, findings: Vec::new() };
    let address = c.required_text(H::Address, MAX_TEXT_CHARS);
    let building = c.text(H::Building, MAX_TEXT_CHARS);
    let unit = c.text(H::Unit, MAX_TEXT_CHARS);
    let floor = c.text(H::Floor, MAX_TEXT_CHARS);
    let room = c.text(H::Room, MAX_TEXT_CHARS);
    let area = c.typed(H::Area, |s| {
        parse_area_cell(s).map(|value| Parsed { value, notes: Vec::new() }).ok_or(RegisterError::HouseArea)
    });
    let owner = c.text(H::Owner, MAX_NAME_CHARS);
    let owner_citizen_id = c.typed(H::OwnerCitizenId, |s| CitizenId::parse(s, ctx.today));
    let owner_phone = c.text(H::OwnerPhone, MAX_TEXT_CHARS);
    let mut other = Vec::new();
    for f in [H::Use, H::Occupancy, H::Grid, H::Remarks] {
        if let Some(t) = c.text(f, MAX_TEXT_CHARS) {
            other.push((f, t));
        }
    }
    let findings = c.findings;
    let ok = !findings.iter().any(|f| f.severity == Severity::Error);
    let value = address.filter(|_| ok).map(|address| HouseRow {
        address,
        building,
        unit,
        floor,
        room,
        area,
        owner,
        owner_citizen_id,
        owner_phone,
        other,
    });
    RowCheck { row, value, findings }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::citizen_id::id_check_character;
    use crate::register::find_header_row;

    fn id(birth: &str, seq: &str) -> String {
        let body = format!("430503{birth}{seq}");
        format!("{body}{}", id_check_character(&body).expect("17 digits"))
    }

    fn today() -> Day {
        Day::from_ymd(2026, 11, 25).expect("day")
    }

    const HEADERS: [&str; 9] = ["序号", "姓名", "身份证号码", "性别", "出生日期", "联系电话", "与户主关系", "现住址", "备注"];

    fn check(cells: &[&str], known: Option<&KnownAddressCodes>) -> RowCheck<PersonRow, PersonField> {
        let header = find_header_row::<PersonField, _, _>([HEADERS], 5).expect("header");
        check_person_row(&header, cells, 4, &RowContext { today: today(), known_codes: known })
    }

    fn codes<T, F>(r: &RowCheck<T, F>) -> Vec<(&'static str, Severity)> {
        r.findings.iter().map(|f| (f.code, f.severity)).collect()
    }

    #[test]
    fn a_good_row() {
        let n = id("19900101", "123");
        let r = check(&["1", "张三", &n, "男", "1990-01-01", "13812345678", "户主", "学院路1号", "网格员核实"], None);
        assert_eq!(r.findings, vec![]);
        let p = r.value.expect("imported");
        assert_eq!(p.name, "张三");
        assert_eq!(p.citizen_id.expose(), n);
        assert_eq!(p.gender, Gender::Male);
        assert_eq!(p.birth_date, Day::from_ymd(1990, 1, 1).expect("day"));
        assert_eq!(p.phone.map(|p| p.as_str().to_string()), Some("13812345678".into()));
        assert_eq!(p.relation, Some(Relation::Head));
        assert_eq!(p.current_address.as_deref(), Some("学院路1号"));
        assert_eq!(p.other, vec![(PersonField::Remarks, "网格员核实".to_string())]);
        assert_eq!(r.row, 4);
    }

    #[test]
    fn messy_but_valid_cells_are_imported_with_notes() {
        let n = id("19900101", "124");
        let full: String = n.chars().map(|c| char::from_u32(c as u32 + 0xFEE0).expect("fw")).collect();
        let fifteen = format!("430503{}{}", &n[8..14], &n[14..17]);
        let r = check(&["", " 李四 ", &full, "", "", "+86 138-1234-5678", "长女", "", ""], None);
        assert_eq!(
            codes(&r),
            vec![
                ("spaces_tidied", Severity::Note),
                ("full_width_converted", Severity::Note),
                ("separators_removed", Severity::Note),
                ("phone_country_code_removed", Severity::Note),
            ]
        );
        assert_eq!(r.findings[1].field, PersonField::CitizenId);
        assert_eq!(r.findings[1].column, Some(2));
        let p = r.value.expect("imported");
        assert_eq!(p.name, "李四");
        assert_eq!(p.citizen_id.expose(), n);
        assert_eq!(p.relation, Some(Relation::Daughter));
        let r = check(&["", "王五", &fifteen, "", "", "", "", "", ""], None);
        assert_eq!(codes(&r), vec![("id_upgraded", Severity::Note)]);
        assert_eq!(r.value.expect("imported").citizen_id.expose(), n);
    }

    #[test]
    fn bad_cells_are_errors_by_field_and_column() {
        let n = id("19900101", "123");
        let mut wrong = n.clone();
        wrong.replace_range(17..18, if n.ends_with('0') { "1" } else { "0" });
        let r = check(&["", "", &wrong, "", "", "1381234567", "", "", ""], None);
        assert!(r.value.is_none());
        assert!(r.has_errors());
        let got: Vec<_> = r.findings.iter().map(|f| (f.field, f.column, f.code)).collect();
        assert_eq!(
            got,
            vec![
                (PersonField::Name, Some(1), "empty"),
                (PersonField::CitizenId, Some(2), "id_check_character"),
                (PersonField::Phone, Some(5), "invalid_phone"),
            ]
        );
        assert!(r.findings.iter().all(|f| f.severity == Severity::Error));
        // Each bad-input case of issue 5 gets its own code.
        for (cell, code) in [
            (id("19990230", "123"), "id_birth_date"),
            (id("20270101", "123"), "id_birth_future"),
            (String::new(), "empty"),
            ("4305031990".to_string(), "id_length"),
        ] {
            let r = check(&["", "张三", &cell, "", "", "", "", "", ""], None);
            assert_eq!(codes(&r), vec![(code, Severity::Error)], "{cell}");
            assert!(r.value.is_none());
        }
        // A sheet without an ID column: every row says so, with no column.
        let header = find_header_row::<PersonField, _, _>([["姓名", "电话"]], 5).expect("header");
        let r = check_person_row(&header, &["张三", "13812345678"], 2, &RowContext { today: today(), known_codes: None });
        assert_eq!(
            r.findings.iter().map(|f| (f.field, f.column, f.code)).collect::<Vec<_>>(),
            vec![(PersonField::CitizenId, None, "empty")]
        );
        // One bad optional cell stops the row, however good the rest.
        let r = check(&["", "张三", &n, "", "", "0739-5123456", "", "", ""], None);
        assert_eq!(codes(&r), vec![("invalid_phone", Severity::Error)]);
        assert!(r.value.is_none());
        let long_address = "路".repeat(MAX_TEXT_CHARS + 1);
        let r = check(&["", "张三", &n, "", "", "", "", &long_address, ""], None);
        assert_eq!(codes(&r), vec![("too_long", Severity::Error)]);
        assert!(r.value.is_none());
        // Too long a name.
        let long = "张".repeat(MAX_NAME_CHARS + 1);
        let r = check(&["", &long, &n, "", "", "", "", "", ""], None);
        assert_eq!(codes(&r), vec![("too_long", Severity::Error)]);
        assert!(r.value.is_none());
    }

    #[test]
    fn disagreements_and_unknowns_are_warnings() {
        let n = id("19900101", "123");
        let retired = {
            let body = "43050219900101123";
            format!("{body}{}", id_check_character(body).expect("17"))
        };
        let known = KnownAddressCodes::new(["430503"]).expect("codes");
        let r = check(&["", "张三", &retired, "女", "1990/1/2", "", "邻居", "", ""], Some(&known));
        assert_eq!(
            codes(&r),
            vec![
                ("id_unknown_address_code", Severity::Warning),
                ("gender_mismatch", Severity::Warning),
                ("birth_date_mismatch", Severity::Warning),
                ("relation_unknown", Severity::Warning),
            ]
        );
        let p = r.value.expect("warnings do not stop a row");
        assert_eq!(p.gender, Gender::Male, "the number decides");
        assert_eq!(p.relation, None);
        assert_eq!(p.other, vec![(PersonField::RelationToHead, "邻居".to_string())], "nothing is lost");
        let r = check(&["", "张三", &n, "未知", "去年", "", "", "", ""], Some(&known));
        assert_eq!(codes(&r), vec![("unreadable", Severity::Warning), ("unreadable", Severity::Warning)]);
        let r = check(&["", "张三", &n, "男性", "1990年1月1日", "", "", "", ""], Some(&known));
        assert_eq!(codes(&r), vec![]);
    }

    #[test]
    fn formula_like_text_is_kept_and_noted() {
        let n = id("19900101", "123");
        let r = check(&["", "张三", &n, "", "", "", "", "=HYPERLINK(\"http://x\",\"点\")", "@备注"], None);
        assert_eq!(codes(&r), vec![("kept_as_text", Severity::Note), ("kept_as_text", Severity::Note)]);
        let p = r.value.expect("imported");
        assert_eq!(p.current_address.as_deref(), Some("=HYPERLINK(\"http://x\",\"点\")"));
        assert_eq!(p.other, vec![(PersonField::Remarks, "@备注".to_string())]);
    }

    #[test]
    fn dates_as_sheets_write_them() {
        let d = Day::from_ymd(1990, 1, 2).expect("day");
        for raw in ["1990-01-02", "1990/1/2", "1990.01.02", "1990年1月2日", "19900102", " １９９０－０１－０２ "] {
            assert_eq!(parse_date_cell(raw), Some(d), "{raw:?}");
        }
        for raw in ["1990-02-30", "90-1-2", "1990-1", "199001021", "1990-01-02x", "2 Jan 1990", ""] {
            assert_eq!(parse_date_cell(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn organisation_rows() {
        let rows = [
            vec!["大祥区XX社区单位信息登记表"],
            vec!["单位名称", "统一社会信用代码", "地址", "法定代表人", "联系电话", "类型"],
        ];
        let header = find_header_row::<OrganisationField, _, _>(&rows, 5).expect("header");
        assert_eq!(header.row, 1);
        let good = ["某某超市", "91350100m000100y43", "学院路1号", "赵六", "0739-5123456", "个体"];
        let r = check_organisation_row(&header, &good, 3);
        assert_eq!(codes(&r), vec![("credit_code_uppercased", Severity::Note)]);
        let o = r.value.expect("imported");
        assert_eq!(o.credit_code.map(|c| c.as_str().to_string()), Some("91350100M000100Y43".into()));
        assert_eq!(o.phone.as_deref(), Some("0739-5123456"), "landlines kept as text");
        assert_eq!(o.other, vec![(OrganisationField::Kind, "个体".to_string())]);
        // No code is fine; a wrong one is an error; no name is an error.
        let r = check_organisation_row(&header, &["某某店", "", "", "", "", ""], 4);
        assert!(r.findings.is_empty() && r.value.expect("imported").credit_code.is_none());
        let r = check_organisation_row(&header, &["", "91350100M000100Y44"], 5);
        assert_eq!(
            r.findings.iter().map(|f| (f.field, f.code)).collect::<Vec<_>>(),
            vec![(OrganisationField::Name, "empty"), (OrganisationField::CreditCode, "credit_code_check_character")]
        );
        assert!(r.value.is_none());
    }

    #[test]
    fn areas_as_sheets_write_them() {
        for (raw, v) in [("85.5", 85.5), ("85.5㎡", 85.5), ("85.5平方米", 85.5), ("85.5 平米", 85.5), ("１２０", 120.0), ("60m2", 60.0)] {
            assert_eq!(parse_area_cell(raw), Some(v), "{raw:?}");
        }
        for raw in ["", "0", "-5", "八十", "1e3", "NaN", "inf", "100000", "85.5亩", "约80"] {
            assert_eq!(parse_area_cell(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn house_rows() {
        let rows = [
            vec!["大祥区XX社区房屋信息登记表"],
            vec!["房屋地址", "栋", "单元", "房号", "面积(㎡)", "用途", "产权人", "产权人身份证号", "联系电话"],
        ];
        let header = find_header_row::<HouseField, _, _>(&rows, 5).expect("header");
        let ctx = RowContext { today: today(), known_codes: None };
        let n = id("19700101", "123");
        let r = check_house_row(&header, &["学院路1号", "3", "2", "301", "85.5", "住宅", "赵六", &n, "0739-5123456"], 3, &ctx);
        assert_eq!(r.findings, vec![]);
        let h = r.value.expect("imported");
        assert_eq!(h.address, "学院路1号");
        assert_eq!((h.building.as_deref(), h.unit.as_deref(), h.room.as_deref()), (Some("3"), Some("2"), Some("301")));
        assert_eq!(h.area, Some(85.5));
        assert_eq!(h.owner_citizen_id.map(|i| i.expose().to_string()), Some(n.clone()));
        assert_eq!(h.owner_phone.as_deref(), Some("0739-5123456"));
        assert_eq!(h.other, vec![(HouseField::Use, "住宅".to_string())]);
        let r = check_house_row(&header, &["", "", "", "", "八十平", "", "", "43050319700101123", ""], 4, &ctx);
        assert_eq!(
            r.findings.iter().map(|f| (f.field, f.column, f.code)).collect::<Vec<_>>(),
            vec![
                (HouseField::Address, Some(0), "empty"),
                (HouseField::Area, Some(4), "house_area"),
                (HouseField::OwnerCitizenId, Some(7), "id_length"),
            ]
        );
        assert!(r.value.is_none());
        let r = check_house_row(&header, &["学院路1号", "", "", "", "-1"], 5, &ctx);
        assert_eq!(codes(&r), vec![("house_area", Severity::Error)]);
        assert!(r.value.is_none());
    }
}
