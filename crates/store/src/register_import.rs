//! Importing the register from departments' spreadsheets (issue 5, point 3):
//! `civicgrid import persons|houses|organisations FILE`, and the upload page and API.
//!
//! **Two streaming passes, bounded memory.** [`RegisterDesk::import`]:
//! 1. checks the file ([`crate::sheet::inspect`]: content, not name; the zip-bomb guard);
//! 2. the *check pass* reads every row once, finds the header row below any merged title
//!    rows, checks each row (`domain::register::check_*_row`, then its grid and the import's
//!    own rules) and keeps only the report (capped, see [`MAX_LISTED_ROWS`]), a bitset of
//!    rows not to write, and one compact entry per ID number / credit code / address seen
//!    (a 64-bit key and a 64-bit digest of the row's values) to find duplicates in the file;
//! 3. without `partial`, any row with an error stops here: nothing is written;
//! 4. the *write pass* reads the file again on a blocking thread that checks each row again
//!    and hands batches of [`BATCH`] records to the writer, which writes them all inside
//!    ONE write transaction: a failure or a crash leaves nothing half-imported.
//!
//! **Duplicates.** In the file: a later row with the same key and the same values is merged
//! into the first (a note, written once); one with different values is an error row. Against
//! the register: a person (ID number) or organisation (credit code) already stored in the
//! importer's scope is *updated* with the row's non-empty values (a `register_history` row per
//! changed field, sensitive values masked); identical, it is left alone (a note). One stored
//! outside the importer's scope is an error row, which says no more than that. A house is
//! the same house when its grid and full address (address, building, unit, floor, room) are.
//!
//! **Where a row goes.** The row's 网格 column (a 15-digit grid code, or a grid's exact name)
//! when it has one, else the import's grid (`--grid`, or the upload page's field). A grid
//! outside the importer's scope is an error row. A new person whose 现住址 is exactly the
//! address of a house in their grid (as a houses import composes it: 学院路1号3栋2单元301室)
//! lives there (`house_id` and a `lives` link); otherwise the person is recorded in the grid
//! without a house. A stored person's house is not changed by an import (that is a move,
//! 迁入/迁出, made through the register's forms).
//!
//! **Organisations need a credit code.** The register keys organisations by their unified
//! social credit code (`credit_code NOT NULL UNIQUE`); a row without one is an error row
//! (record such a unit through the form once it has a code).
//!
//! **人口类型 and 标签** are stored (an unknown value is an error row: the register would be
//! wrong); without the column a new person is 户籍 without tags, a stored one keeps theirs.
//!
//! **Households** (`Writer::households`): after the persons, in the same transaction, rows
//! with 与户主关系 / 户主身份证号 are grouped by head. A person already in a household stays
//! there, and a member whose head is nowhere in scope is imported without one (warnings).
//!
//! Every created or updated entity gets one `import` history row (or one row per changed
//! field) and a change-log entry, so the search index sees it; the import leaves one audit
//! row. Cells are stored as text, never evaluated; the error report escapes them.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use domain::access::mask_phone;
use domain::calendar::Day;
use domain::register::{
    CitizenId, Finding, HeaderFields, HeaderRow, HouseField, KnownAddressCodes, OrganisationField, PersonField, PersonTag, PopulationType, Relation, Severity, check_house_row,
    check_organisation_row, check_person_row, escape_for_spreadsheet, find_header_row, normalise_cell, RowContext,
};
use domain::AreaCode;
use serde::Serialize;
use sqlx::Row;

use crate::audit;
use crate::changes::{self, Op};
use crate::db::Dialect;
use crate::register::{HouseUse, RegisterDesk};
use crate::sheet::{self, SheetFile};
use crate::StoreError;

/// Rows per write batch.
pub const BATCH: usize = 1_000;
/// Rows listed in a report, each list (rows with errors; rows with only warnings or notes).
/// Beyond it rows are counted, not listed.
pub const MAX_LISTED_ROWS: usize = 10_000;
/// The header row is looked for among the first rows.
const LOOK_AT: usize = 20;

/// What a sheet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    Persons,
    Houses,
    Organisations,
}

impl ImportKind {
    pub fn parse(s: &str) -> Option<ImportKind> {
        match s {
            "persons" => Some(ImportKind::Persons),
            "houses" => Some(ImportKind::Houses),
            "organisations" => Some(ImportKind::Organisations),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Persons => "persons",
            ImportKind::Houses => "houses",
            ImportKind::Organisations => "organisations",
        }
    }
    fn entity(self) -> &'static str {
        match self {
            ImportKind::Persons => "person",
            ImportKind::Houses => "house",
            ImportKind::Organisations => "organisation",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub kind: ImportKind,
    /// Import the good rows even when some are bad (else all or nothing).
    pub partial: bool,
    /// The grid of rows without a 网格 column.
    pub grid: Option<AreaCode>,
    /// The file's name, for the audit row.
    pub file_name: String,
}

/// Where an import is; shared with whoever shows its progress.
#[derive(Debug, Default)]
pub struct ImportProgress {
    phase: AtomicU8,
    /// Rows read in the current pass.
    pub rows_read: AtomicU64,
    /// Data rows in the file (known after the check pass).
    pub rows_total: AtomicU64,
    /// Rows written so far.
    pub rows_written: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Queued,
    Checking,
    Writing,
    Done,
}

impl ImportProgress {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            1 => Phase::Checking,
            2 => Phase::Writing,
            3 => Phase::Done,
            _ => Phase::Queued,
        }
    }
    fn set(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }
}

/// One finding about one cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportFinding {
    /// The column's header as the sheet writes it (Chinese), or the field's usual name
    /// when the sheet has no such column.
    pub column: String,
    /// The field's stable name (`citizen_id`).
    pub field: &'static str,
    /// `error`, `warning` or `note`.
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// A row with findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    /// The row's number as the sheet shows it.
    pub row: usize,
    pub error: bool,
    /// The row's cells as read (rows with errors only, for the error report).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<String>,
    pub findings: Vec<ReportFinding>,
}

/// What an import found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub kind: Option<ImportKind>,
    pub partial: bool,
    /// The header row's number and cells.
    pub header_row: usize,
    pub header: Vec<String>,
    /// Columns not imported: unknown headers, and fields the register does not hold.
    pub ignored_columns: Vec<String>,
    /// Data rows read (below the header, not blank).
    pub rows_read: u64,
    /// Rows without an error.
    pub rows_valid: u64,
    pub rows_with_errors: u64,
    pub rows_with_warnings: u64,
    /// Rows merged into an identical earlier row of the file.
    pub merged: u64,
    /// Entities created, updated, and found already identical in the register.
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Households created from the sheet's 与户主关系 / 户主身份证号 columns, and members
    /// added to households (new or already stored).
    pub households_created: u64,
    pub household_members_added: u64,
    /// Whether the write was committed (false: nothing was imported).
    pub committed: bool,
    /// Rows with errors first, then rows with warnings or notes, each in row order (capped).
    pub rows: Vec<ReportRow>,
    /// Rows with findings that the caps left out of `rows`.
    pub rows_not_listed: u64,
}

impl ImportReport {
    /// Entities written (created or updated); 0 unless committed.
    pub fn imported(&self) -> u64 {
        if self.committed { self.created + self.updated } else { 0 }
    }

    fn add(&mut self, r: ReportRow, listed: &mut (usize, usize)) {
        let slot = if r.error { &mut listed.0 } else { &mut listed.1 };
        if *slot < MAX_LISTED_ROWS {
            *slot += 1;
            self.rows.push(r);
        } else {
            self.rows_not_listed += 1;
        }
    }

    fn sort(&mut self) {
        self.rows.sort_by_key(|r| (!r.error, r.row));
    }
}

/// The error report as an .xlsx: the header, then each row with an error with its original
/// cells (ID numbers and phones masked) and an 错误原因 column. Every text cell is escaped (`escape_for_spreadsheet`), so a
/// cell that looks like a formula stays text.
pub fn report_xlsx(report: &ImportReport) -> Result<Vec<u8>, StoreError> {
    use rust_xlsxwriter::{Format, Workbook};
    let fail = |e: rust_xlsxwriter::XlsxError| StoreError::Invalid { code: "report_failed", message: format!("cannot write the report: {e}") };
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("错误报告").map_err(fail)?;
    let bold = Format::new().set_bold();
    let width = report.header.len();
    sheet.write_string_with_format(0, 0, "行号", &bold).map_err(fail)?;
    for (i, h) in report.header.iter().enumerate() {
        sheet.write_string_with_format(0, (i + 1) as u16, escape_for_spreadsheet(h).as_ref(), &bold).map_err(fail)?;
    }
    sheet.write_string_with_format(0, (width + 1) as u16, "错误原因", &bold).map_err(fail)?;
    for (at, r) in (1u32..).zip(report.rows.iter().filter(|r| r.error)) {
        sheet.write_number(at, 0, r.row as f64).map_err(fail)?;
        for (i, c) in r.cells.iter().take(width.max(r.cells.len())).enumerate() {
            sheet.write_string(at, (i + 1) as u16, escape_for_spreadsheet(c).as_ref()).map_err(fail)?;
        }
        let reasons: Vec<String> =
            r.findings.iter().filter(|f| f.severity == "error").map(|f| format!("{}：{}", f.column, f.message)).collect();
        sheet.write_string(at, (width.max(r.cells.len()) + 1) as u16, escape_for_spreadsheet(&reasons.join("；")).as_ref()).map_err(fail)?;
    }
    book.save_to_buffer().map_err(fail)
}

// ---- the rows ----

/// The grids a row may name.
#[derive(Debug, Default)]
struct Grids {
    /// code → in the importer's scope
    by_code: HashMap<String, bool>,
    by_name: HashMap<String, Vec<String>>,
}

/// What every check of a row needs, owned so it can go to a blocking thread.
#[derive(Clone)]
struct Base {
    kind: ImportKind,
    today: Day,
    known: Arc<KnownAddressCodes>,
    grids: Arc<Grids>,
    default_grid: Option<String>,
}

enum Header {
    Persons(HeaderRow<PersonField>),
    Houses(HeaderRow<HouseField>),
    Organisations(HeaderRow<OrganisationField>),
}

/// Numbered rows of a sheet.
type Rows = Vec<(usize, Vec<String>)>;

/// Checks rows against a found header.
struct Checker {
    base: Base,
    header: Header,
    header_cells: Vec<String>,
    header_row: usize,
}

/// A row ready to write.
#[derive(Debug, Clone)]
enum Record {
    Person {
        row: usize,
        citizen_id: CitizenId,
        name: String,
        phone: Option<String>,
        ethnicity: Option<String>,
        area: String,
        address: Option<String>,
        /// None: no 人口类型 cell (a new person is 户籍, a stored one keeps theirs).
        population_type: Option<PopulationType>,
        /// None: no 标签 cell (a stored person keeps theirs).
        tags: Option<Vec<PersonTag>>,
        relation: Option<Relation>,
        head: Option<CitizenId>,
    },
    House { row: usize, address: String, area: String, area_m2: Option<f64>, house_use: Option<HouseUse> },
    Organisation { row: usize, credit_code: String, name: String, address: Option<String>, legal_rep: Option<String>, phone: Option<String>, area: String },
}

/// A record's identity in the file (for duplicates).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Id(u64),
    Text(Box<str>),
}

impl Record {
    fn row(&self) -> usize {
        match self {
            Record::Person { row, .. } | Record::House { row, .. } | Record::Organisation { row, .. } => *row,
        }
    }

    fn key(&self) -> Key {
        match self {
            // 17 digits fit a u64; the 18th is their check character.
            Record::Person { citizen_id, .. } => Key::Id(citizen_id.expose()[..17].parse().unwrap_or(u64::MAX)),
            Record::House { address, area, .. } => Key::Text(format!("{area}|{address}").into()),
            Record::Organisation { credit_code, .. } => Key::Text(credit_code.as_str().into()),
        }
    }

    /// A digest of the values a duplicate must share to be merged.
    fn digest(&self) -> u64 {
        let mut h = DefaultHasher::new();
        match self {
            Record::Person { name, phone, ethnicity, area, address, population_type, tags, relation, head, .. } => {
                (name, phone, ethnicity, area, address, population_type, tags, relation, head.as_ref().map(CitizenId::expose)).hash(&mut h)
            }
            Record::House { area_m2, house_use, .. } => (area_m2.map(f64::to_bits), house_use.map(HouseUse::as_str)).hash(&mut h),
            Record::Organisation { name, address, legal_rep, phone, area, .. } => (name, address, legal_rep, phone, area).hash(&mut h),
        }
        h.finish()
    }

    fn key_column(&self) -> (&'static str, &'static str) {
        match self {
            Record::Person { .. } => ("citizen_id", "身份证号码"),
            Record::House { .. } => ("address", "地址"),
            Record::Organisation { .. } => ("credit_code", "统一社会信用代码"),
        }
    }
}

/// The header text of a field's column, or its first alias.
fn column_name<F: HeaderFields>(header: &HeaderRow<F>, cells: &[String], field: F, column: Option<usize>) -> String {
    column
        .or_else(|| header.column(field))
        .and_then(|c| cells.get(c))
        .map(|s| normalise_cell(s).text.into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| F::ALIASES.iter().find(|(_, f)| *f == field).map(|(a, _)| (*a).to_string()).unwrap_or_default())
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

fn findings_of<F: HeaderFields>(header: &HeaderRow<F>, cells: &[String], fs: Vec<Finding<F>>) -> Vec<ReportFinding> {
    fs.into_iter()
        .map(|f| ReportFinding {
            column: column_name(header, cells, f.field, f.column),
            field: f.field.as_str(),
            severity: severity(f.severity),
            code: f.code,
            message: f.message,
        })
        .collect()
}

fn error(column: impl Into<String>, field: &'static str, code: &'static str, message: impl Into<String>) -> ReportFinding {
    ReportFinding { column: column.into(), field, severity: "error", code, message: message.into() }
}

fn note(column: impl Into<String>, field: &'static str, code: &'static str, message: impl Into<String>) -> ReportFinding {
    ReportFinding { column: column.into(), field, severity: "note", code, message: message.into() }
}

/// A house's use as sheets write it.
fn house_use_of(text: &str) -> Option<HouseUse> {
    let t = text.trim();
    Some(if t.contains("商住") {
        HouseUse::Mixed
    } else if t.contains("住宅") || t.contains("居住") || t == "住" {
        HouseUse::Residential
    } else if t.contains("商") || t.contains("门面") || t.contains("店") {
        HouseUse::Shop
    } else if t.contains("办公") || t.contains("写字") {
        HouseUse::Office
    } else if t.contains("厂") || t.contains("仓") || t.contains("工业") {
        HouseUse::Factory
    } else if t.contains("其他") || t.contains("其它") {
        HouseUse::Other
    } else {
        return None;
    })
}

/// A number part of an address gets its unit (`3` → `3栋`); text is kept as written.
fn address_part(out: &mut String, part: Option<&str>, unit: &str) {
    if let Some(p) = part.map(str::trim).filter(|p| !p.is_empty()) {
        out.push_str(p);
        if p.chars().all(|c| c.is_ascii_alphanumeric()) && !p.ends_with(unit) {
            out.push_str(unit);
        }
    }
}

impl Checker {
    /// Find the header among the first rows; the rows after it are handed back.
    fn find(base: &Base, head: &mut Rows) -> Result<(Checker, Rows), StoreError> {
        let cells: Vec<&Vec<String>> = head.iter().map(|(_, c)| c).collect();
        let no_header = || StoreError::Invalid {
            code: "no_header_row",
            message: format!(
                "在前 {LOOK_AT} 行中找不到表头行（至少两个可识别的列名，如 姓名、身份证号码） (no header row among the first {LOOK_AT} rows: at least two known column names)"
            ),
        };
        let missing = |names: Vec<&'static str>| StoreError::Invalid {
            code: "missing_columns",
            message: format!("表中缺少必需的列：{} (the sheet lacks required columns)", names.join("、")),
        };
        fn first_alias<F: HeaderFields>(f: F) -> &'static str {
            F::ALIASES.iter().find(|(_, x)| *x == f).map(|(a, _)| *a).unwrap_or("")
        }
        let (header, at, unknown) = match base.kind {
            ImportKind::Persons => {
                let h = find_header_row::<PersonField, _, _>(cells.iter().map(|c| c.as_slice()), LOOK_AT).ok_or_else(no_header)?;
                let m = h.missing(&[PersonField::Name, PersonField::CitizenId]);
                if !m.is_empty() {
                    return Err(missing(m.into_iter().map(first_alias).collect()));
                }
                let (at, unknown) = (h.row, h.unknown.iter().map(|u| u.1.clone()).collect::<Vec<_>>());
                (Header::Persons(h), at, unknown)
            }
            ImportKind::Houses => {
                let h = find_header_row::<HouseField, _, _>(cells.iter().map(|c| c.as_slice()), LOOK_AT).ok_or_else(no_header)?;
                let m = h.missing(&[HouseField::Address]);
                if !m.is_empty() {
                    return Err(missing(m.into_iter().map(first_alias).collect()));
                }
                let (at, unknown) = (h.row, h.unknown.iter().map(|u| u.1.clone()).collect::<Vec<_>>());
                (Header::Houses(h), at, unknown)
            }
            ImportKind::Organisations => {
                let h = find_header_row::<OrganisationField, _, _>(cells.iter().map(|c| c.as_slice()), LOOK_AT).ok_or_else(no_header)?;
                let m = h.missing(&[OrganisationField::Name, OrganisationField::CreditCode]);
                if !m.is_empty() {
                    return Err(missing(m.into_iter().map(first_alias).collect()));
                }
                let (at, unknown) = (h.row, h.unknown.iter().map(|u| u.1.clone()).collect::<Vec<_>>());
                (Header::Organisations(h), at, unknown)
            }
        };
        let _ = unknown;
        let rest = head.split_off(at + 1);
        let (header_row, header_cells) = head.pop().unwrap_or_default();
        Ok((Checker { base: base.clone(), header, header_cells, header_row }, rest))
    }

    /// Columns the import does not store: unknown headers, and known fields the register
    /// has no place for.
    fn ignored_columns(&self) -> Vec<String> {
        fn of<F: HeaderFields>(h: &HeaderRow<F>, cells: &[String], stored: &[F]) -> Vec<String> {
            let mut out: Vec<(usize, String)> = h.unknown.clone();
            for (i, f) in &h.columns {
                if !stored.contains(f) {
                    out.push((*i, cells.get(*i).cloned().unwrap_or_default()));
                }
            }
            out.sort();
            out.into_iter().map(|(_, s)| s).collect()
        }
        use HouseField as H;
        use OrganisationField as O;
        use PersonField as P;
        match &self.header {
            Header::Persons(h) => {
                let stored = [
                    P::Name,
                    P::CitizenId,
                    P::Phone,
                    P::Ethnicity,
                    P::Grid,
                    P::Gender,
                    P::BirthDate,
                    P::CurrentAddress,
                    P::PopulationKind,
                    P::Tags,
                    P::RelationToHead,
                    P::HeadCitizenId,
                ];
                of(h, &self.header_cells, &stored)
            }
            Header::Houses(h) => of(h, &self.header_cells, &[H::Address, H::Building, H::Unit, H::Floor, H::Room, H::Area, H::Use, H::Grid]),
            Header::Organisations(h) => {
                of(h, &self.header_cells, &[O::Name, O::CreditCode, O::Address, O::LegalRepresentative, O::Phone, O::Grid])
            }
        }
    }

    /// The row's cells for the report: ID numbers and phones masked, like every other way
    /// out of the store (the row number leads back to the file the importer holds).
    fn masked_cells(&self, mut cells: Vec<String>) -> Vec<String> {
        use domain::access::mask_id_number;
        fn cols<F: HeaderFields>(h: &HeaderRow<F>, ids: &[F], phones: &[F]) -> (Vec<usize>, Vec<usize>) {
            (ids.iter().filter_map(|f| h.column(*f)).collect(), phones.iter().filter_map(|f| h.column(*f)).collect())
        }
        let (ids, phones) = match &self.header {
            Header::Persons(h) => cols(h, &[PersonField::CitizenId, PersonField::HeadCitizenId], &[PersonField::Phone]),
            Header::Houses(h) => cols(h, &[HouseField::OwnerCitizenId], &[HouseField::OwnerPhone]),
            Header::Organisations(h) => cols(h, &[], &[OrganisationField::Phone]),
        };
        for (list, mask) in [(ids, mask_id_number as fn(&str) -> String), (phones, mask_phone as fn(&str) -> String)] {
            for c in list {
                if let Some(cell) = cells.get_mut(c).filter(|v| !v.trim().is_empty()) {
                    *cell = mask(cell.trim());
                }
            }
        }
        cells
    }

    /// The grid of a row: its 网格 cell, else the import's grid.
    fn grid(&self, cell: Option<&str>, column: String) -> Result<String, ReportFinding> {
        let text = cell.map(|c| normalise_cell(c).text.trim().to_string()).filter(|t| !t.is_empty());
        let grids = &self.base.grids;
        let code = match text {
            None => {
                return self.base.default_grid.clone().ok_or_else(|| {
                    error(column, "grid", "grid_required", "未指定网格：请在表中填写“网格”列，或在导入时选择网格 (no grid: add a 网格 column or choose the import's grid)")
                });
            }
            Some(t) if grids.by_code.contains_key(&t) => t,
            Some(t) => match grids.by_name.get(&t).map(Vec::as_slice) {
                Some([one]) => one.clone(),
                Some([..]) => {
                    return Err(error(column, "grid", "ambiguous_grid", format!("有多个网格名为“{t}”，请填写网格编码 (several grids have this name: give the code)")));
                }
                None => return Err(error(column, "grid", "unknown_grid", format!("找不到网格“{t}” (no such basic grid)"))),
            },
        };
        if grids.by_code.get(&code) == Some(&true) {
            Ok(code)
        } else {
            Err(error(column, "grid", "grid_out_of_scope", format!("网格 {code} 不在您的管辖范围内 (grid {code} is outside your area)")))
        }
    }

    /// Check one data row: the record when it has no error, and every finding.
    fn check(&self, row: usize, cells: &[String]) -> (Option<Record>, Vec<ReportFinding>) {
        let ctx = RowContext { today: self.base.today, known_codes: Some(&self.base.known) };
        let hc = &self.header_cells;
        match &self.header {
            Header::Persons(h) => {
                let r = check_person_row(h, cells, row, &ctx);
                let mut findings = findings_of(h, hc, r.findings);
                let col = h.column(PersonField::Grid);
                let grid = self.grid(col.and_then(|c| cells.get(c)).map(String::as_str), column_name(h, hc, PersonField::Grid, col));
                let grid = grid.map_err(|f| findings.push(f)).ok();
                let ethnicity_ok = r.value.as_ref().and_then(|p| p.ethnicity.as_ref()).is_none_or(|e| e.chars().count() <= 20);
                if !ethnicity_ok {
                    findings.push(error(column_name(h, hc, PersonField::Ethnicity, None), "ethnicity", "too_long", "民族最多 20 字 (at most 20 characters)"));
                }
                let rec = match (r.value, grid) {
                    (Some(p), Some(area)) if ethnicity_ok => Some(Record::Person {
                        row,
                        name: p.name,
                        phone: p.phone.map(|x| x.as_str().to_string()),
                        ethnicity: p.ethnicity,
                        citizen_id: p.citizen_id,
                        area,
                        address: p.current_address,
                        population_type: p.population_type,
                        tags: p.tags,
                        relation: p.relation,
                        head: p.head_citizen_id,
                    }),
                    _ => None,
                };
                (rec, findings)
            }
            Header::Houses(h) => {
                let r = check_house_row(h, cells, row, &ctx);
                let mut findings = findings_of(h, hc, r.findings);
                let col = h.column(HouseField::Grid);
                let grid = self.grid(col.and_then(|c| cells.get(c)).map(String::as_str), column_name(h, hc, HouseField::Grid, col));
                let grid = grid.map_err(|f| findings.push(f)).ok();
                let Some(v) = r.value else { return (None, findings) };
                let mut address = v.address.clone();
                address_part(&mut address, v.building.as_deref(), "栋");
                address_part(&mut address, v.unit.as_deref(), "单元");
                if v.room.is_none() {
                    address_part(&mut address, v.floor.as_deref(), "层");
                }
                address_part(&mut address, v.room.as_deref(), "室");
                let use_text = v.other.iter().find(|(f, _)| *f == HouseField::Use).map(|(_, t)| t.as_str());
                let house_use = use_text.and_then(house_use_of);
                if let (Some(t), None) = (use_text, house_use) {
                    findings.push(ReportFinding {
                        column: column_name(h, hc, HouseField::Use, None),
                        field: "use",
                        severity: "warning",
                        code: "use_unknown",
                        message: format!("无法识别的房屋用途“{t}”，记为“其他” (unknown use, recorded as other)"),
                    });
                }
                if address.chars().count() > 200 {
                    findings.push(error(column_name(h, hc, HouseField::Address, None), "address", "too_long", "完整地址超过 200 字 (the full address is over 200 characters)"));
                    return (None, findings);
                }
                let rec = grid.map(|area| Record::House { row, address, area, area_m2: v.area, house_use: house_use.or(use_text.map(|_| HouseUse::Other)) });
                (rec, findings)
            }
            Header::Organisations(h) => {
                let r = check_organisation_row(h, cells, row);
                let mut findings = findings_of(h, hc, r.findings);
                let col = h.column(OrganisationField::Grid);
                let grid = self.grid(col.and_then(|c| cells.get(c)).map(String::as_str), column_name(h, hc, OrganisationField::Grid, col));
                let grid = grid.map_err(|f| findings.push(f)).ok();
                let Some(v) = r.value else { return (None, findings) };
                let Some(code) = v.credit_code else {
                    findings.push(error(
                        column_name(h, hc, OrganisationField::CreditCode, None),
                        "credit_code",
                        "credit_code_required",
                        "导入单位须有统一社会信用代码；无代码的单位请通过采集表单登记 (an imported organisation needs its credit code)",
                    ));
                    return (None, findings);
                };
                if v.name.chars().count() > 100 {
                    findings.push(error(column_name(h, hc, OrganisationField::Name, None), "name", "too_long", "单位名称最多 100 字 (at most 100 characters)"));
                    return (None, findings);
                }
                let rec = grid.map(|area| Record::Organisation {
                    row,
                    credit_code: code.as_str().to_string(),
                    name: v.name,
                    address: v.address,
                    legal_rep: v.legal_representative,
                    phone: v.phone,
                    area,
                });
                (rec, findings)
            }
        }
    }
}

/// Read a sheet's rows, find the header among the first ones, and hand each data row to
/// `each` with the checker. Errors: no rows, no header, missing columns, unreadable file.
fn scan(file: &SheetFile, base: &Base, each: &mut dyn FnMut(&Checker, usize, Vec<String>) -> bool) -> Result<Checker, StoreError> {
    let mut head: Vec<(usize, Vec<String>)> = Vec::new();
    let mut checker: Option<Checker> = None;
    let mut failed: Option<StoreError> = None;
    file.for_each_row(&mut |n, cells| {
        if let Some(c) = &checker {
            return each(c, n, cells);
        }
        head.push((n, cells));
        if head.len() < LOOK_AT {
            return true;
        }
        match Checker::find(base, &mut head) {
            Ok((c, rest)) => {
                let go = rest.into_iter().all(|(n, cells)| each(&c, n, cells));
                checker = Some(c);
                go
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    match checker {
        Some(c) => Ok(c),
        None if head.is_empty() => Err(StoreError::Invalid { code: "empty_file", message: "表中没有任何内容 (the sheet has no rows)".into() }),
        None => {
            let (c, rest) = Checker::find(base, &mut head)?;
            for (n, cells) in rest {
                if !each(&c, n, cells) {
                    break;
                }
            }
            Ok(c)
        }
    }
}

/// Rows not to write, by row number.
#[derive(Debug, Default)]
struct RowSet(Vec<u64>);

impl RowSet {
    fn insert(&mut self, row: usize) {
        let (w, b) = (row / 64, row % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }
    fn contains(&self, row: usize) -> bool {
        self.0.get(row / 64).is_some_and(|w| w & (1 << (row % 64)) != 0)
    }
}

struct CheckPass {
    report: ImportReport,
    skip: RowSet,
    to_write: u64,
}

/// The check pass: the report, the rows not to write, duplicates within the file.
fn check_pass(file: &SheetFile, base: &Base, progress: &ImportProgress) -> Result<CheckPass, StoreError> {
    let mut report = ImportReport { kind: Some(base.kind), ..ImportReport::default() };
    let mut skip = RowSet::default();
    let mut seen: HashMap<Key, (u64, u32)> = HashMap::new();
    let mut listed = (0usize, 0usize);
    let mut to_write = 0u64;
    let checker = scan(file, base, &mut |c, row, cells| {
        report.rows_read += 1;
        progress.rows_read.fetch_add(1, Ordering::Relaxed);
        let (rec, mut findings) = c.check(row, &cells);
        let mut ok = !findings.iter().any(|f| f.severity == "error");
        if let Some(rec) = rec.filter(|_| ok) {
            let digest = rec.digest();
            let (field, column) = rec.key_column();
            match seen.get(&rec.key()) {
                Some((d, first)) if *d == digest => {
                    report.merged += 1;
                    skip.insert(row);
                    findings.push(note(column, field, "duplicate_merged", format!("与第 {first} 行完全相同，已合并 (the same as row {first}: merged)")));
                }
                Some((_, first)) => {
                    ok = false;
                    findings.push(error(column, field, "duplicate_conflict", format!("与第 {first} 行重复但内容不同 (the same key as row {first} with other values)")));
                }
                None => {
                    seen.insert(rec.key(), (digest, row as u32));
                    to_write += 1;
                }
            }
        }
        if ok {
            report.rows_valid += 1;
        } else {
            report.rows_with_errors += 1;
            skip.insert(row);
        }
        if ok && findings.iter().any(|f| f.severity == "warning") {
            report.rows_with_warnings += 1;
        }
        if !findings.is_empty() {
            let cells = if ok { Vec::new() } else { c.masked_cells(cells) };
            report.add(ReportRow { row, error: !ok, cells, findings }, &mut listed);
        }
        true
    })?;
    report.header_row = checker.header_row;
    report.header = checker.header_cells.clone();
    report.ignored_columns = checker.ignored_columns();
    Ok(CheckPass { report, skip, to_write })
}

// ---- the write ----

const FIND_PERSONS_SQLITE: &str = "SELECT id, citizen_id, name, phone, ethnicity, area_code, population_type, tags FROM persons WHERE citizen_id IN (SELECT value FROM json_each($1))";
const FIND_PERSONS_POSTGRES: &str = "SELECT id, citizen_id, name, phone, ethnicity, area_code, population_type, tags FROM persons WHERE citizen_id IN (SELECT jsonb_array_elements_text($1::jsonb))";
const INSERT_PERSONS_SQLITE: &str = "INSERT INTO persons (citizen_id, name, gender, birth_day, phone, ethnicity, area_code, house_id, population_type, tags, created_at, updated_at, version) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8, value ->> 9, $2, $2, 1 FROM json_each($1) ORDER BY key";
const INSERT_PERSONS_POSTGRES: &str = "INSERT INTO persons (citizen_id, name, gender, birth_day, phone, ethnicity, area_code, house_id, population_type, tags, created_at, updated_at, version) \
     SELECT r ->> 0, r ->> 1, r ->> 2, (r ->> 3)::bigint, r ->> 4, r ->> 5, r ->> 6, (r ->> 7)::bigint, r ->> 8, r ->> 9, $2, $2, 1 FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS b(r, n) ORDER BY n";

const FIND_ORGS_SQLITE: &str = "SELECT id, credit_code, name, address, legal_rep, phone, area_code FROM organisations WHERE credit_code IN (SELECT value FROM json_each($1))";
const FIND_ORGS_POSTGRES: &str = "SELECT id, credit_code, name, address, legal_rep, phone, area_code FROM organisations WHERE credit_code IN (SELECT jsonb_array_elements_text($1::jsonb))";
const INSERT_ORGS_SQLITE: &str = "INSERT INTO organisations (credit_code, name, address, legal_rep, phone, area_code, created_at, updated_at, version) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, $2, $2, 1 FROM json_each($1) ORDER BY key";
const INSERT_ORGS_POSTGRES: &str = "INSERT INTO organisations (credit_code, name, address, legal_rep, phone, area_code, created_at, updated_at, version) \
     SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4, r ->> 5, $2, $2, 1 FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS b(r, n) ORDER BY n";

const FIND_HOUSES_SQLITE: &str = "SELECT h.id, h.area_code, h.address, h.area_m2, h.house_use FROM json_each($1) j \
     JOIN houses h ON h.area_code = j.value ->> 0 AND h.address = j.value ->> 1 ORDER BY h.id";
const FIND_HOUSES_POSTGRES: &str = "SELECT h.id, h.area_code, h.address, h.area_m2, h.house_use FROM jsonb_array_elements($1::jsonb) AS j(r) \
     JOIN houses h ON h.area_code = j.r ->> 0 AND h.address = j.r ->> 1 ORDER BY h.id";
const INSERT_HOUSES_SQLITE: &str = "INSERT INTO houses (area_code, address, area_m2, house_use, created_at, updated_at, version) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, $2, $2, 1 FROM json_each($1) ORDER BY key";
const INSERT_HOUSES_POSTGRES: &str = "INSERT INTO houses (area_code, address, area_m2, house_use, created_at, updated_at, version) \
     SELECT r ->> 0, r ->> 1, (r ->> 2)::float8, r ->> 3, $2, $2, 1 FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS b(r, n) ORDER BY n";

const FIND_MEMBERSHIP_SQLITE: &str = "SELECT p.id, p.citizen_id, p.area_code, p.house_id, m.household_id, m.relation FROM persons p \
     LEFT JOIN household_members m ON m.person_id = p.id WHERE p.citizen_id IN (SELECT value FROM json_each($1))";
const FIND_MEMBERSHIP_POSTGRES: &str = "SELECT p.id, p.citizen_id, p.area_code, p.house_id, m.household_id, m.relation FROM persons p \
     LEFT JOIN household_members m ON m.person_id = p.id WHERE p.citizen_id IN (SELECT jsonb_array_elements_text($1::jsonb))";

/// A person a household row names, as stored.
struct Member {
    id: i64,
    area: String,
    house: Option<i64>,
    /// Their household and relation in it.
    household: Option<(i64, Relation)>,
}

/// What the writer of one import keeps between batches.
struct Writer<'d, 's> {
    desk: &'d RegisterDesk<'s>,
    pg: bool,
    now: i64,
    report: ImportReport,
    listed: (usize, usize),
    /// Rows refused at write time (a duplicate stored outside the importer's scope).
    late_errors: u64,
    /// Rows written (or found identical) that name a household: 与户主关系 or 户主身份证号.
    /// Kept until the persons are all written, then `Writer::households` groups them.
    family: Vec<FamilyRow>,
    /// Row number → its entry in the report, built when the households' warnings start.
    listed_at: Option<std::collections::HashMap<usize, usize>>,
}

/// A person row's household columns.
struct FamilyRow {
    row: usize,
    citizen_id: CitizenId,
    relation: Option<Relation>,
    head: Option<CitizenId>,
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

impl Writer<'_, '_> {
    fn late_error(&mut self, rec: &Record, code: &'static str, message: String) {
        let (field, column) = rec.key_column();
        self.late_errors += 1;
        self.report.rows_with_errors += 1;
        self.report.rows_valid = self.report.rows_valid.saturating_sub(1);
        let r = ReportRow { row: rec.row(), error: true, cells: Vec::new(), findings: vec![error(column, field, code, message)] };
        self.report.add(r, &mut self.listed);
    }

    fn unchanged(&mut self, rec: &Record) {
        let (field, column) = rec.key_column();
        self.report.unchanged += 1;
        let r = ReportRow {
            row: rec.row(),
            error: false,
            cells: Vec::new(),
            findings: vec![note(column, field, "already_registered", "登记簿中已有相同记录，未作改动 (already in the register, unchanged)")],
        };
        self.report.add(r, &mut self.listed);
    }

    async fn history(&self, tx: &mut Tx, entity: &str, id: i64, field: &str, old: Option<&str>, new: Option<&str>) -> Result<(), StoreError> {
        let action = format!("{entity}.import");
        crate::register::History::new(self.desk.s.db, self.desk.s.actor(), &action).row(tx, entity, id, field, old, new).await
    }

    /// One `import` history row and one change-log entry for every row of `entity` with an
    /// id above `after` (the rows this batch created; the write lock keeps others out).
    /// Answers the highest id. The range is bounded on both sides: PostgreSQL's generic plan
    /// for `id > $1` alone guesses a third of the table and scans all of it.
    async fn created_since(&mut self, tx: &mut Tx, entity: &str, table: &str, after: i64, summary: &str) -> Result<i64, StoreError> {
        let upto = self.max_id(tx, table).await?;
        let a = self.desk.s.actor();
        let sql = format!(
            "INSERT INTO register_history (at, actor_kind, actor_id, actor_name, operation_id, action, entity, entity_id, field, old_value, new_value) \
             SELECT $1, $2, $3, $4, $5, $6, $7, id, 'import', NULL, {summary} FROM {table} WHERE id > $8 AND id <= $9 ORDER BY id"
        );
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.now)
            .bind(&a.kind)
            .bind(a.id)
            .bind(&a.name)
            .bind(&a.operation_id)
            .bind(format!("{entity}.import"))
            .bind(entity)
            .bind(after)
            .bind(upto)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        let sql = format!("INSERT INTO change_log (entity, key, op, at) SELECT $1, CAST(id AS TEXT), 'upsert', $2 FROM {table} WHERE id > $3 AND id <= $4 ORDER BY id");
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(entity).bind(self.now).bind(after).bind(upto).execute(&mut **tx).await?;
        self.report.created += n;
        Ok(upto)
    }

    async fn max_id(&self, tx: &mut Tx, table: &str) -> Result<i64, StoreError> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COALESCE(MAX(id), 0) FROM {table}"))).fetch_one(&mut **tx).await?;
        Ok(r.try_get(0)?)
    }

    async fn write(&mut self, tx: &mut Tx, batch: Vec<Record>) -> Result<(), StoreError> {
        match batch.first() {
            Some(Record::Person { .. }) => self.persons(tx, batch).await,
            Some(Record::House { .. }) => self.houses(tx, batch).await,
            Some(Record::Organisation { .. }) => self.organisations(tx, batch).await,
            None => Ok(()),
        }
    }

    async fn persons(&mut self, tx: &mut Tx, batch: Vec<Record>) -> Result<(), StoreError> {
        let ids: Vec<&str> = batch.iter().filter_map(|r| if let Record::Person { citizen_id, .. } = r { Some(citizen_id.expose()) } else { None }).collect();
        let sql = if self.pg { FIND_PERSONS_POSTGRES } else { FIND_PERSONS_SQLITE };
        type Stored = (i64, String, Option<String>, Option<String>, String, String, String);
        let mut stored: HashMap<String, Stored> = HashMap::new();
        for r in sqlx::query(sql).bind(serde_json::to_string(&ids).unwrap_or_default()).fetch_all(&mut **tx).await? {
            stored.insert(
                r.try_get("citizen_id")?,
                (
                    r.try_get("id")?,
                    r.try_get("name")?,
                    r.try_get("phone")?,
                    r.try_get("ethnicity")?,
                    r.try_get("area_code")?,
                    r.try_get("population_type")?,
                    r.try_get("tags")?,
                ),
            );
        }
        // New persons whose 现住址 is exactly a house's address in their grid live there.
        let places: Vec<serde_json::Value> = batch
            .iter()
            .filter_map(|r| match r {
                Record::Person { citizen_id, area, address: Some(a), .. } if !stored.contains_key(citizen_id.expose()) => Some(serde_json::json!([area, a])),
                _ => None,
            })
            .collect();
        let mut houses: HashMap<(String, String), i64> = HashMap::new();
        if !places.is_empty() {
            let sql = if self.pg { FIND_HOUSES_POSTGRES } else { FIND_HOUSES_SQLITE };
            for r in sqlx::query(sql).bind(serde_json::Value::Array(places).to_string()).fetch_all(&mut **tx).await? {
                houses.entry((r.try_get("area_code")?, r.try_get("address")?)).or_insert(r.try_get("id")?);
            }
        }
        let mut new = Vec::new();
        for rec in &batch {
            let Record::Person { row, citizen_id, name, phone, ethnicity, area, address, population_type, tags, relation, head } = rec else { continue };
            let family = (relation.is_some() || head.is_some())
                .then(|| FamilyRow { row: *row, citizen_id: citizen_id.clone(), relation: *relation, head: head.clone() });
            let Some((id, s_name, s_phone, s_eth, s_area, s_kind, s_tags)) = stored.get(citizen_id.expose()) else {
                self.family.extend(family);
                let house = address.as_ref().and_then(|a| houses.get(&(area.clone(), a.clone())));
                new.push(serde_json::json!([
                    citizen_id.expose(),
                    name,
                    citizen_id.gender().as_str(),
                    citizen_id.birth_date().0,
                    phone,
                    ethnicity,
                    area,
                    house,
                    population_type.unwrap_or_default().as_str(),
                    tags.as_deref().map(PersonTag::join).unwrap_or_default()
                ]));
                continue;
            };
            if !AreaCode::parse(s_area).is_ok_and(|c| self.desk.s.in_scope(&c)) {
                self.late_error(rec, "registered_elsewhere", "该身份证号码已登记在您管辖范围以外的网格 (this ID number is registered outside your area)".into());
                continue;
            }
            self.family.extend(family);
            // Merge: the row's non-empty values replace the stored ones.
            let n_phone = phone.clone().or_else(|| s_phone.clone());
            let n_eth = ethnicity.clone().or_else(|| s_eth.clone());
            let n_kind = population_type.map(|p| p.as_str().to_string()).unwrap_or_else(|| s_kind.clone());
            let n_tags = tags.as_deref().map(PersonTag::join).unwrap_or_else(|| s_tags.clone());
            if (name, &n_phone, &n_eth, &n_kind, &n_tags) == (s_name, s_phone, s_eth, s_kind, s_tags) {
                self.unchanged(rec);
                continue;
            }
            let id = *id;
            sqlx::query(
                "UPDATE persons SET name = $1, phone = $2, ethnicity = $3, population_type = $4, tags = $5, updated_at = $6, version = version + 1 WHERE id = $7",
            )
            .bind(name)
            .bind(&n_phone)
            .bind(&n_eth)
            .bind(&n_kind)
            .bind(&n_tags)
            .bind(self.now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            if name != s_name {
                self.history(tx, "person", id, "name", Some(s_name), Some(name)).await?;
            }
            if n_phone != *s_phone {
                self.history(tx, "person", id, "phone", s_phone.as_deref().map(mask_phone).as_deref(), n_phone.as_deref().map(mask_phone).as_deref()).await?;
            }
            if n_eth != *s_eth {
                self.history(tx, "person", id, "ethnicity", s_eth.as_deref(), n_eth.as_deref()).await?;
            }
            if n_kind != *s_kind {
                self.history(tx, "person", id, "population_type", Some(s_kind), Some(&n_kind)).await?;
            }
            if n_tags != *s_tags {
                let some = |t: &str| Some(t.to_string()).filter(|t| !t.is_empty());
                self.history(tx, "person", id, "tags", some(s_tags).as_deref(), some(&n_tags).as_deref()).await?;
            }
            changes::append(self.desk.s.db, tx, "person", &id.to_string(), Op::Upsert).await?;
            self.report.updated += 1;
        }
        if !new.is_empty() {
            let after = self.max_id(tx, "persons").await?;
            let sql = if self.pg { INSERT_PERSONS_POSTGRES } else { INSERT_PERSONS_SQLITE };
            sqlx::query(sql).bind(serde_json::Value::Array(new).to_string()).bind(self.now).execute(&mut **tx).await?;
            // The history shows the number masked, as everywhere.
            let upto = self.created_since(tx, "person", "persons", after, "substr(citizen_id, 1, 6) || '********' || substr(citizen_id, 15, 4) || ' ' || name").await?;
            if !houses.is_empty() {
                // Their `lives` links, and the houses' change-log entries (a house shows its residents).
                sqlx::query(
                    "INSERT INTO person_houses (person_id, house_id, kind, since) SELECT id, house_id, 'lives', $1 FROM persons \
                     WHERE id > $2 AND id <= $3 AND house_id IS NOT NULL",
                )
                .bind(self.now)
                .bind(after)
                .bind(upto)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO change_log (entity, key, op, at) SELECT 'house', CAST(house_id AS TEXT), 'upsert', $1 \
                     FROM (SELECT DISTINCT house_id FROM persons WHERE id > $2 AND id <= $3 AND house_id IS NOT NULL) h ORDER BY house_id",
                )
                .bind(self.now)
                .bind(after)
                .bind(upto)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }

    /// A warning found after the check pass (a household's): added to the row's entry in
    /// the report when the row is listed already, so a row is listed and counted once.
    fn warn(&mut self, row: usize, column: &str, field: &'static str, code: &'static str, message: String) {
        let f = ReportFinding { column: column.into(), field, severity: "warning", code, message };
        let report = &mut self.report;
        let at = self.listed_at.get_or_insert_with(|| report.rows.iter().enumerate().map(|(i, r)| (r.row, i)).collect());
        if let Some(listed) = at.get(&row).and_then(|&i| report.rows.get_mut(i)) {
            if !listed.findings.iter().any(|x| x.severity == "warning") {
                report.rows_with_warnings += 1;
            }
            listed.findings.push(f);
            return;
        }
        report.rows_with_warnings += 1;
        let before = report.rows.len();
        report.add(ReportRow { row, error: false, cells: Vec::new(), findings: vec![f] }, &mut self.listed);
        if report.rows.len() > before {
            at.insert(row, before);
        }
    }

    /// The households the file describes (after every person is written, in the same
    /// transaction). Rows are grouped by their head's ID number: a row whose relation is
    /// 户主/本人 (or that names itself as head) is a head. A head found among the persons in
    /// scope gets a household (the one they already head is reused; a new one lies at the
    /// head's house and in the head's grid), and each member row not yet in a household is
    /// added with its relation. A person already in a household stays there (a warning); a
    /// member whose head is not found is imported without a household (a warning).
    async fn households(&mut self, tx: &mut Tx) -> Result<(), StoreError> {
        use domain::access::mask_id_number;
        const RELATION: (&str, &str) = ("与户主关系", "relation_to_head");
        const HEAD: (&str, &str) = ("户主身份证号", "head_citizen_id");
        let family = std::mem::take(&mut self.family);
        // Head's ID number → (row, ID number, relation) of each row of the household.
        type Rows = Vec<(usize, String, Relation)>;
        let mut groups: std::collections::BTreeMap<String, Rows> = Default::default();
        for f in family {
            let own = f.citizen_id.expose();
            let head = f.head.as_ref().map(CitizenId::expose);
            let (head, relation) = match (f.relation, head) {
                (Some(Relation::Head), h) => {
                    if h.is_some_and(|h| h != own) {
                        self.warn(f.row, HEAD.0, HEAD.1, "head_is_self", "与户主关系为户主，按本人为户主建户，户主身份证号一列未用 (the row is a head: the head's ID number is not used)".into());
                    }
                    (own, Relation::Head)
                }
                (None, Some(h)) if h == own => (own, Relation::Head),
                (Some(r), Some(h)) if h != own => (h, r),
                (Some(r), Some(_)) => {
                    let m = format!("与户主关系为“{}”，户主身份证号却是本人：未建户 (the relation and the head's ID number disagree)", r.name_zh());
                    self.warn(f.row, RELATION.0, RELATION.1, "relation_conflict", m);
                    continue;
                }
                (Some(_), None) => {
                    self.warn(f.row, HEAD.0, HEAD.1, "head_missing", "未填户主身份证号：已导入此人，未入户 (no head's ID number: imported without a household)".into());
                    continue;
                }
                (None, _) => {
                    self.warn(f.row, RELATION.0, RELATION.1, "relation_missing", "未填或无法识别与户主关系：已导入此人，未入户 (no relation to the head: imported without a household)".into());
                    continue;
                }
            };
            groups.entry(head.to_string()).or_default().push((f.row, own.to_string(), relation));
        }
        let groups: Vec<(String, Rows)> = groups.into_iter().collect();
        let h = self.desk.history("household.import");
        for chunk in groups.chunks(BATCH / 2) {
            // Everyone the chunk names, with their household if any.
            let ids: Vec<&str> = chunk.iter().flat_map(|(head, m)| std::iter::once(head.as_str()).chain(m.iter().map(|x| x.1.as_str()))).collect();
            let sql = if self.pg { FIND_MEMBERSHIP_POSTGRES } else { FIND_MEMBERSHIP_SQLITE };
            let mut people: HashMap<String, Member> = HashMap::new();
            for r in sqlx::query(sql).bind(serde_json::to_string(&ids).unwrap_or_default()).fetch_all(&mut **tx).await? {
                let area: String = r.try_get("area_code")?;
                if !self.desk.in_scope(&area) {
                    continue;
                }
                let household: Option<i64> = r.try_get("household_id")?;
                let relation: Option<String> = r.try_get("relation")?;
                let relation = relation.and_then(|s| Relation::ALL.into_iter().find(|x| x.as_str() == s)).unwrap_or(Relation::Other);
                people.insert(
                    r.try_get("citizen_id")?,
                    Member { id: r.try_get("id")?, area, house: r.try_get("house_id")?, household: household.map(|x| (x, relation)) },
                );
            }
            for (head, members) in chunk {
                let Some(hp) = people.get(head) else {
                    for (row, _, _) in members {
                        let m = format!(
                            "户主（{}）既不在本表也不在您管辖范围的登记簿中：已导入此人，未入户 (the head is neither in the file nor in the register in your area)",
                            mask_id_number(head)
                        );
                        self.warn(*row, HEAD.0, HEAD.1, "head_not_found", m);
                    }
                    continue;
                };
                let mut add: Vec<(i64, Relation)> = Vec::new();
                let (household, created) = match hp.household {
                    Some((id, Relation::Head)) => (id, false),
                    Some((id, _)) => {
                        for (row, _, _) in members {
                            let m = format!("户主已是另一户（{id}）的成员：已导入此人，未入户 (the head is a member of another household)");
                            self.warn(*row, HEAD.0, HEAD.1, "head_in_other_household", m);
                        }
                        continue;
                    }
                    None => {
                        let id = RegisterDesk::insert_household(tx, &h, hp.house, None, &hp.area).await?;
                        add.push((hp.id, Relation::Head));
                        (id, true)
                    }
                };
                for (row, cid, relation) in members {
                    if cid == head {
                        continue;
                    }
                    let Some(p) = people.get(cid) else { continue };
                    match p.household {
                        None => add.push((p.id, *relation)),
                        Some((x, r)) if x == household && r == *relation => {}
                        Some((x, r)) if x == household => {
                            let m = format!("已在此户，关系为“{}”，未改动 (already in this household with another relation: unchanged)", r.name_zh());
                            self.warn(*row, RELATION.0, RELATION.1, "relation_differs", m);
                        }
                        Some((x, _)) => {
                            let m = format!("此人已属于另一户（{x}），未移动 (already in another household: left there)");
                            self.warn(*row, HEAD.0, HEAD.1, "already_in_household", m);
                        }
                    }
                }
                if add.is_empty() {
                    continue;
                }
                self.desk.write_members(tx, &h, household, &[], &add).await.map_err(|e| match e {
                    crate::register::Fail::Store(e) => e,
                    crate::register::Fail::Deny(t, id) => StoreError::NotFound(format!("{t} {id}")),
                })?;
                if !created {
                    sqlx::query("UPDATE households SET version = version + 1, updated_at = $1 WHERE id = $2").bind(self.now).bind(household).execute(&mut **tx).await?;
                }
                changes::append(self.desk.s.db, tx, "household", &household.to_string(), Op::Upsert).await?;
                self.report.households_created += u64::from(created);
                self.report.household_members_added += add.len() as u64;
                // Later heads of this chunk see who is now in a household.
                for (p, r) in add {
                    if let Some(m) = people.values_mut().find(|m| m.id == p) {
                        m.household = Some((household, r));
                    }
                }
            }
        }
        Ok(())
    }

    async fn houses(&mut self, tx: &mut Tx, batch: Vec<Record>) -> Result<(), StoreError> {
        let keys: Vec<serde_json::Value> =
            batch.iter().filter_map(|r| if let Record::House { address, area, .. } = r { Some(serde_json::json!([area, address])) } else { None }).collect();
        let sql = if self.pg { FIND_HOUSES_POSTGRES } else { FIND_HOUSES_SQLITE };
        let mut stored: HashMap<(String, String), (i64, Option<f64>, String)> = HashMap::new();
        for r in sqlx::query(sql).bind(serde_json::Value::Array(keys).to_string()).fetch_all(&mut **tx).await? {
            let key = (r.try_get::<String, _>("area_code")?, r.try_get::<String, _>("address")?);
            let v = (r.try_get("id")?, r.try_get("area_m2")?, r.try_get("house_use")?);
            stored.entry(key).or_insert(v);
        }
        let mut new = Vec::new();
        for rec in &batch {
            let Record::House { address, area, area_m2, house_use, .. } = rec else { continue };
            let Some((id, s_m2, s_use)) = stored.get(&(area.clone(), address.clone())) else {
                new.push(serde_json::json!([area, address, area_m2, house_use.unwrap_or(HouseUse::Residential).as_str()]));
                continue;
            };
            let n_m2 = area_m2.or(*s_m2);
            let n_use = house_use.map(HouseUse::as_str).unwrap_or(s_use.as_str()).to_string();
            if n_m2 == *s_m2 && n_use == *s_use {
                self.unchanged(rec);
                continue;
            }
            let id = *id;
            // A float is bound only when present (never a NULL float through the Any driver).
            match n_m2 {
                Some(m2) => {
                    sqlx::query("UPDATE houses SET area_m2 = $1, house_use = $2, updated_at = $3, version = version + 1 WHERE id = $4")
                        .bind(m2)
                        .bind(&n_use)
                        .bind(self.now)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                }
                None => {
                    sqlx::query("UPDATE houses SET house_use = $1, updated_at = $2, version = version + 1 WHERE id = $3")
                        .bind(&n_use)
                        .bind(self.now)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                }
            }
            if n_m2 != *s_m2 {
                self.history(tx, "house", id, "area_m2", s_m2.map(|v| v.to_string()).as_deref(), n_m2.map(|v| v.to_string()).as_deref()).await?;
            }
            if n_use != *s_use {
                self.history(tx, "house", id, "house_use", Some(s_use), Some(&n_use)).await?;
            }
            changes::append(self.desk.s.db, tx, "house", &id.to_string(), Op::Upsert).await?;
            self.report.updated += 1;
        }
        if !new.is_empty() {
            let after = self.max_id(tx, "houses").await?;
            let sql = if self.pg { INSERT_HOUSES_POSTGRES } else { INSERT_HOUSES_SQLITE };
            sqlx::query(sql).bind(serde_json::Value::Array(new).to_string()).bind(self.now).execute(&mut **tx).await?;
            self.created_since(tx, "house", "houses", after, "address").await?;
        }
        Ok(())
    }

    async fn organisations(&mut self, tx: &mut Tx, batch: Vec<Record>) -> Result<(), StoreError> {
        let codes: Vec<&str> =
            batch.iter().filter_map(|r| if let Record::Organisation { credit_code, .. } = r { Some(credit_code.as_str()) } else { None }).collect();
        let sql = if self.pg { FIND_ORGS_POSTGRES } else { FIND_ORGS_SQLITE };
        type Stored = (i64, String, Option<String>, Option<String>, Option<String>, String);
        let mut stored: HashMap<String, Stored> = HashMap::new();
        for r in sqlx::query(sql).bind(serde_json::to_string(&codes).unwrap_or_default()).fetch_all(&mut **tx).await? {
            stored.insert(
                r.try_get("credit_code")?,
                (r.try_get("id")?, r.try_get("name")?, r.try_get("address")?, r.try_get("legal_rep")?, r.try_get("phone")?, r.try_get("area_code")?),
            );
        }
        let mut new = Vec::new();
        for rec in &batch {
            let Record::Organisation { credit_code, name, address, legal_rep, phone, area, .. } = rec else { continue };
            let Some((id, s_name, s_addr, s_rep, s_phone, s_area)) = stored.get(credit_code) else {
                new.push(serde_json::json!([credit_code, name, address, legal_rep, phone, area]));
                continue;
            };
            if !AreaCode::parse(s_area).is_ok_and(|c| self.desk.s.in_scope(&c)) {
                self.late_error(rec, "registered_elsewhere", "该信用代码已登记在您管辖范围以外的网格 (this credit code is registered outside your area)".into());
                continue;
            }
            let n_addr = address.clone().or_else(|| s_addr.clone());
            let n_rep = legal_rep.clone().or_else(|| s_rep.clone());
            let n_phone = phone.clone().or_else(|| s_phone.clone());
            if (name, &n_addr, &n_rep, &n_phone) == (s_name, s_addr, s_rep, s_phone) {
                self.unchanged(rec);
                continue;
            }
            let id = *id;
            sqlx::query("UPDATE organisations SET name = $1, address = $2, legal_rep = $3, phone = $4, updated_at = $5, version = version + 1 WHERE id = $6")
                .bind(name)
                .bind(&n_addr)
                .bind(&n_rep)
                .bind(&n_phone)
                .bind(self.now)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            let e = "organisation";
            if name != s_name {
                self.history(tx, e, id, "name", Some(s_name), Some(name)).await?;
            }
            if n_addr != *s_addr {
                self.history(tx, e, id, "address", s_addr.as_deref(), n_addr.as_deref()).await?;
            }
            if n_rep != *s_rep {
                self.history(tx, e, id, "legal_rep", s_rep.as_deref(), n_rep.as_deref()).await?;
            }
            if n_phone != *s_phone {
                self.history(tx, e, id, "phone", s_phone.as_deref().map(mask_phone).as_deref(), n_phone.as_deref().map(mask_phone).as_deref()).await?;
            }
            changes::append(self.desk.s.db, tx, e, &id.to_string(), Op::Upsert).await?;
            self.report.updated += 1;
        }
        if !new.is_empty() {
            let after = self.max_id(tx, "organisations").await?;
            let sql = if self.pg { INSERT_ORGS_POSTGRES } else { INSERT_ORGS_SQLITE };
            sqlx::query(sql).bind(serde_json::Value::Array(new).to_string()).bind(self.now).execute(&mut **tx).await?;
            self.created_since(tx, "organisation", "organisations", after, "credit_code || ' ' || name").await?;
        }
        Ok(())
    }
}

/// Province-level prefixes of GB/T 2260 address codes: an ID number whose first two digits
/// are none of these carries an unknown address code (a warning). Finer codes are not
/// checked: old numbers keep the codes of counties renamed or merged since.
const PROVINCES: [&str; 34] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53",
    "54", "61", "62", "63", "64", "65", "71", "81", "82",
];

fn blocking_failed(e: tokio::task::JoinError) -> StoreError {
    StoreError::Corrupt(format!("the import's reader stopped: {e}"))
}

impl RegisterDesk<'_> {
    /// Import a spreadsheet of persons, houses or organisations into the caller's scope
    /// (see the module's documentation). Errors are file-level (unreadable, not a
    /// spreadsheet, a zip bomb, no header row, missing columns) or a grid given that is
    /// not a basic grid in scope (denied as not found); row-level problems are in the
    /// report, and without `partial` any of them means nothing is written.
    pub async fn import(&self, path: &Path, opts: &ImportOptions, progress: Arc<ImportProgress>) -> Result<ImportReport, StoreError> {
        let action = "register.import";
        if !self.writes {
            return Err(self.s.deny(action, opts.kind.entity(), &opts.file_name).await);
        }
        let db = self.s.db;
        // The grids rows may name, and which of them the caller may write.
        let mut grids = Grids::default();
        for r in sqlx::query("SELECT code, name FROM areas WHERE level = 'grid'").fetch_all(&db.pool).await? {
            let code: String = r.try_get("code")?;
            let name: String = r.try_get("name")?;
            let in_scope = AreaCode::parse(&code).is_ok_and(|c| self.s.in_scope(&c));
            grids.by_name.entry(name).or_default().push(code.clone());
            grids.by_code.insert(code, in_scope);
        }
        if let Some(g) = &opts.grid
            && grids.by_code.get(g.as_str()) != Some(&true)
        {
            return Err(self.s.deny(action, "area", g.as_str()).await);
        }
        let base = Base {
            kind: opts.kind,
            today: Day::of_instant(db.now_ms()),
            known: Arc::new(KnownAddressCodes::new(PROVINCES).map_err(|e| StoreError::Corrupt(e.to_string()))?),
            grids: Arc::new(grids),
            default_grid: opts.grid.as_ref().map(|g| g.to_string()),
        };
        progress.set(Phase::Checking);
        let path = path.to_path_buf();
        let (file, checked) = {
            let (base, progress) = (base.clone(), progress.clone());
            tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                let file = sheet::inspect(&path)?;
                let checked = check_pass(&file, &base, &progress)?;
                Ok((file, checked))
            })
            .await
            .map_err(blocking_failed)??
        };
        let CheckPass { mut report, skip, to_write } = checked;
        report.partial = opts.partial;
        progress.rows_total.store(to_write, Ordering::Relaxed);
        let detail = |r: &ImportReport| {
            format!(
                "{} {}: {} rows read, {} with errors, {} created, {} updated, {} unchanged, {} merged{}",
                opts.kind.as_str(),
                opts.file_name,
                r.rows_read,
                r.rows_with_errors,
                r.created,
                r.updated,
                r.unchanged,
                r.merged,
                if opts.partial { " (partial)" } else { "" }
            )
        };
        if report.rows_with_errors > 0 && !opts.partial {
            report.sort();
            progress.set(Phase::Done);
            db.audit(self.s.actor().entry(action, opts.kind.entity(), &opts.file_name, "rejected", &detail(&report))).await?;
            return Ok(report);
        }
        progress.set(Phase::Writing);
        progress.rows_read.store(0, Ordering::Relaxed);
        // The reader checks the rows again on its own thread and hands over batches.
        let (tx_batches, mut rx) = tokio::sync::mpsc::channel::<Vec<Record>>(4);
        let reader = {
            let progress = progress.clone();
            tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
                let mut batch = Vec::with_capacity(BATCH);
                let mut open = true;
                scan(&file, &base, &mut |c, row, cells| {
                    progress.rows_read.fetch_add(1, Ordering::Relaxed);
                    if skip.contains(row) {
                        return true;
                    }
                    if let (Some(rec), _) = c.check(row, &cells) {
                        batch.push(rec);
                    }
                    if batch.len() >= BATCH {
                        open = tx_batches.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_ok();
                    }
                    open
                })?;
                if open && !batch.is_empty() {
                    let _ = tx_batches.blocking_send(batch);
                }
                Ok(())
            })
        };
        let mut tx = db.write_tx().await?;
        let mut w =
            Writer { desk: self, pg: db.dialect == Dialect::Postgres, now: db.now_ms(), report, listed: (0, 0), late_errors: 0, family: Vec::new(), listed_at: None };
        w.listed = (w.report.rows.iter().filter(|r| r.error).count(), w.report.rows.iter().filter(|r| !r.error).count());
        let mut written: Result<(), StoreError> = Ok(());
        while let Some(batch) = rx.recv().await {
            let n = batch.len() as u64;
            if let Err(e) = w.write(&mut tx, batch).await {
                written = Err(e);
                break;
            }
            progress.rows_written.fetch_add(n, Ordering::Relaxed);
        }
        drop(rx);
        let read = reader.await.map_err(blocking_failed)?;
        written?;
        read?;
        // Households last, in the same transaction: every person of the file is stored by now.
        if w.late_errors == 0 || opts.partial {
            w.households(&mut tx).await?;
        }
        let mut report = w.report;
        report.sort();
        if w.late_errors > 0 && !opts.partial {
            drop(tx);
            report.created = 0;
            report.updated = 0;
            progress.set(Phase::Done);
            db.audit(self.s.actor().entry(action, opts.kind.entity(), &opts.file_name, "rejected", &detail(&report))).await?;
            return Ok(report);
        }
        audit::append(db, &mut tx, self.s.actor().entry(action, opts.kind.entity(), &opts.file_name, "ok", &detail(&report))).await?;
        tx.commit().await?;
        report.committed = true;
        progress.set(Phase::Done);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_sets() {
        let mut s = RowSet::default();
        for r in [0, 63, 64, 1_000_000] {
            s.insert(r);
        }
        assert!(s.contains(63) && s.contains(64) && s.contains(1_000_000));
        assert!(!s.contains(62) && !s.contains(65) && !s.contains(2_000_000));
    }

    #[test]
    fn addresses_and_uses() {
        let mut a = "学院路1号".to_string();
        address_part(&mut a, Some("3"), "栋");
        address_part(&mut a, Some("2单元"), "单元");
        address_part(&mut a, Some("301"), "室");
        assert_eq!(a, "学院路1号3栋2单元301室");
        assert_eq!(house_use_of("住宅"), Some(HouseUse::Residential));
        assert_eq!(house_use_of("商住两用"), Some(HouseUse::Mixed));
        assert_eq!(house_use_of("门面"), Some(HouseUse::Shop));
        assert_eq!(house_use_of("鸡舍"), None);
    }
}
