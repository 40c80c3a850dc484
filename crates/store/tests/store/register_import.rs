//! The register's import (issue 5, point 3) on both backends: the "Bad input" table,
//! all-or-nothing and `--partial`, duplicates, scope, the error report, bad files and a
//! zip bomb, a 1,000,000-row sheet, 人口类型 and 标签, and households from 与户主关系.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use domain::access::Role;
use domain::register::citizen_id::id_check_character;
use domain::AreaCode;
use store::register_import::{ImportKind, ImportOptions, ImportProgress, ImportReport, report_xlsx};
use store::{Db, Dialect, StoreError};

use super::reg;

store::on_both_backends!(
    import_bad_input_table,
    import_xlsx_with_title_rows_grids_and_scope,
    import_houses_and_organisations,
    import_refuses_bad_files,
    import_a_million_rows,
    import_population_type_and_tags,
    import_households_from_relations,
);

/// A valid ID number with this address code, birth date and sequence.
fn id_at(addr: &str, ymd: &str, seq: u32) -> String {
    let body = format!("{addr}{ymd}{seq:03}");
    format!("{body}{}", id_check_character(&body).expect("digits"))
}

fn id(ymd: &str, seq: u32) -> String {
    id_at("430503", ymd, seq)
}

/// An ID number whose check character is X.
fn id_with_x() -> String {
    (0..1000).map(|s| id("19800101", s)).find(|n| n.ends_with('X')).expect("one of them ends in X")
}

pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join("civicgrid-import-tests");
    std::fs::create_dir_all(&dir).expect("dir");
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let path = dir.join(format!("{}-{n}-{name}", std::process::id()));
    std::fs::write(&path, bytes).expect("write");
    path
}

fn opts(kind: ImportKind, partial: bool, grid: Option<&str>) -> ImportOptions {
    ImportOptions { kind, partial, grid: grid.map(|g| AreaCode::parse(g).expect("grid")), file_name: "test.csv".into() }
}

async fn import(db: &Db, role: Role, area: &str, path: &std::path::Path, o: ImportOptions) -> Result<ImportReport, StoreError> {
    let who = reg::who(7, role, area);
    let s = db.scoped(&who, reg::actor(&who));
    let desk = s.register().expect("desk");
    desk.import(path, &o, Arc::new(ImportProgress::default())).await
}

async fn persons(db: &Db) -> Vec<store::register::PersonView> {
    let who = reg::who(8, Role::StreetStaff, "430503");
    let s = db.scoped(&who, reg::actor(&who));
    s.register().expect("desk").persons(&reg::all()).await.expect("list")
}

fn codes_of(r: &ImportReport, row: usize) -> Vec<(&'static str, &'static str)> {
    r.rows.iter().filter(|x| x.row == row).flat_map(|x| x.findings.iter().map(|f| (f.code, f.severity))).collect()
}

/// The "Bad input" sheet: a title row, the header, and one row per case (row numbers as
/// the sheet shows them in the comments).
fn bad_input_csv() -> (String, Vec<String>) {
    let good = id("19900101", 11);
    let mut wrong = id("19900101", 12);
    let last = wrong.pop().expect("char");
    wrong.push(if last == '0' { '1' } else { '0' });
    let x = id_with_x();
    let full: String = id("19850505", 21).chars().map(|c| char::from_u32(c as u32 + 0xFEE0).expect("fw")).collect();
    let zw = id("19700707", 31);
    let zero_width = format!("{}\u{200B}{}", &zw[..9], &zw[9..]);
    let unknown = id_at("990101", "19600606", 41);
    let legacy18 = id("19550505", 51);
    let fifteen = format!("{}{}{}", &legacy18[..6], &legacy18[8..14], &legacy18[14..17]);
    let rows = [
        "大祥区XX社区实有人口登记表,,,,".to_string(),                                  // 1
        "序号,姓名,身份证号码,联系电话,民族".to_string(),                               // 2
        format!("1,张三,{good},13812345678,汉族"),                                    // 3 good
        format!("2,\"=HYPERLINK(\"\"http://x\"\",\"\"点\"\")\",{wrong},,汉族"),           // 4 wrong check character
        format!("3,王五,{},,汉族", id("19990230", 13)),                               // 5 impossible date
        format!("4,赵六,{},,汉族", id("20270101", 14)),                               // 6 born in the future
        format!("5,钱七,{},,", x.to_lowercase()),                                     // 7 lowercase x
        format!("6,孙八,{full},,"),                                                   // 8 full-width digits
        format!("7,周九,{zero_width},,"),                                             // 9 zero-width character
        format!("8,吴十,{unknown},,=2+3"),                                            // 10 unknown address code; formula-like
        format!("9,郑一,{fifteen},,"),                                                // 11 15 digits
        format!("10,张三,{good},13812345678,汉族"),                                   // 12 identical duplicate of 3
        format!("11,张叁,{good},13812345678,汉族"),                                   // 13 conflicting duplicate of 3
    ];
    (rows.join("\r\n"), vec![good, x, id("19850505", 21), zw, unknown, legacy18])
}

async fn import_bad_input_table(d: Dialect) {
    let Some((db, _clock)) = reg::store(d).await else { return };
    let (csv, expected) = bad_input_csv();
    let path = temp_file("bad.csv", csv.as_bytes());
    let seq0 = db.last_change_seq().await.expect("seq");

    // All or nothing: four bad rows, nothing stored, nothing logged.
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await.expect("report");
    assert!(!r.committed);
    assert_eq!(r.imported(), 0);
    assert_eq!((r.header_row, r.rows_read, r.rows_with_errors, r.merged), (2, 11, 4, 1));
    assert_eq!(codes_of(&r, 4), vec![("kept_as_text", "note"), ("id_check_character", "error")]);
    assert_eq!(codes_of(&r, 5), vec![("id_birth_date", "error")]);
    assert_eq!(codes_of(&r, 6), vec![("id_birth_future", "error")]);
    assert_eq!(codes_of(&r, 7), vec![("id_lowercase_x", "note")]);
    assert_eq!(codes_of(&r, 8), vec![("full_width_converted", "note")]);
    assert_eq!(codes_of(&r, 9), vec![("zero_width_removed", "note")]);
    assert_eq!(codes_of(&r, 10), vec![("id_unknown_address_code", "warning"), ("kept_as_text", "note")]);
    assert_eq!(codes_of(&r, 11), vec![("id_upgraded", "note")]);
    assert_eq!(codes_of(&r, 12), vec![("duplicate_merged", "note")]);
    assert_eq!(codes_of(&r, 13), vec![("duplicate_conflict", "error")]);
    // Each bad row is named by its row, its column as the sheet writes it, and a reason.
    let row4 = r.rows.iter().find(|x| x.row == 4).expect("row 4");
    assert!(row4.error);
    assert_eq!((row4.findings[1].column.as_str(), row4.findings[1].field), ("身份证号码", "citizen_id"));
    assert!(row4.findings[1].message.contains("校验位"), "{}", row4.findings[1].message);
    assert_eq!(row4.cells[1], "=HYPERLINK(\"http://x\",\"点\")", "the original cells are kept for the report");
    assert!(row4.cells[2].contains("********"), "ID numbers masked: {}", row4.cells[2]);
    assert!(r.rows.iter().take(4).all(|x| x.error), "errors are listed first");
    assert!(persons(&db).await.is_empty(), "all or nothing leaves the register unchanged");
    assert_eq!(db.last_change_seq().await.expect("seq"), seq0);

    // The error report: the header, the bad rows with their cells, and 错误原因; a cell
    // that looks like a formula is escaped.
    let xlsx = report_xlsx(&r).expect("report");
    let rows = read_xlsx(&xlsx);
    assert_eq!(rows[0], vec!["行号", "序号", "姓名", "身份证号码", "联系电话", "民族", "错误原因"]);
    assert_eq!(rows.len(), 5, "the header and the four bad rows: {rows:?}");
    assert_eq!(rows[1][0], "4");
    assert_eq!(rows[1][2], "'=HYPERLINK(\"http://x\",\"点\")");
    assert!(rows[1][6].starts_with("身份证号码："), "{}", rows[1][6]);
    assert_eq!(rows[4][0], "13");

    // --partial: exactly the good rows, each once.
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, true, Some(reg::GRID_A))).await.expect("report");
    assert!(r.committed);
    assert_eq!((r.created, r.updated, r.imported()), (6, 0, 6));
    let stored = persons(&db).await;
    assert_eq!(stored.len(), 6);
    let mut masked: Vec<String> = stored.iter().map(|p| p.citizen_id_masked.clone()).collect();
    masked.sort();
    let mut want: Vec<String> = expected.iter().map(|n| domain::access::mask_id_number(n)).collect();
    want.sort();
    assert_eq!(masked, want, "upper-cased X, ASCII digits, no zero-width character, 18 digits");
    assert!(stored.iter().all(|p| p.area == reg::GRID_A));
    let who = reg::who(7, Role::GridWorker, reg::GRID_A);
    let s = db.scoped(&who, reg::actor(&who));
    let desk = s.register().expect("desk");
    let zhang = stored.iter().find(|p| p.name == "张三").expect("张三");
    assert_eq!(zhang.phone_masked.as_deref(), Some("138****5678"));
    let wu = stored.iter().find(|p| p.name == "吴十").expect("吴十");
    assert_eq!(desk.person(wu.id).await.expect("read").ethnicity.as_deref(), Some("=2+3"), "stored as text, never evaluated");
    // One import history row per person, the number masked; one change-log entry each.
    let h = desk.history_of("person", zhang.id).await.expect("history");
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].action.as_str(), h[0].field.as_str()), ("person.import", "import"));
    assert_eq!(h[0].new_value.as_deref(), Some(format!("{} 张三", zhang.citizen_id_masked).as_str()));
    assert_eq!(h[0].actor_name, "u7");
    let changes = db.changes_since(seq0, 1000).await.expect("changes");
    let mut logged: Vec<String> = changes.iter().filter(|c| c.entity == "person").map(|c| c.key.clone()).collect();
    logged.sort();
    let mut ids: Vec<String> = stored.iter().map(|p| p.id.to_string()).collect();
    ids.sort();
    assert_eq!(logged, ids);
    let audit = db
        .audit_rows_for_tests(&store::audit::AuditQuery { action: Some("register.import".into()), limit: 10, ..Default::default() })
        .await
        .expect("audit");
    assert_eq!(audit.iter().map(|a| a.entry.outcome.as_str()).collect::<Vec<_>>(), vec!["ok", "rejected"]);

    // Importing the same file again stores nothing twice: identical rows are left alone.
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, true, Some(reg::GRID_A))).await.expect("report");
    assert_eq!((r.created, r.updated, r.unchanged), (0, 0, 6));
    assert_eq!(persons(&db).await.len(), 6);

    // A row that changes a stored person updates it, with its history.
    let csv = format!("姓名,身份证号码,联系电话\n张三,{},13900001111\n", expected[0]);
    let path2 = temp_file("update.csv", csv.as_bytes());
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path2, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await.expect("report");
    assert!(r.committed);
    assert_eq!((r.created, r.updated), (0, 1));
    let h = desk.history_of("person", zhang.id).await.expect("history");
    let last = h.last().expect("row");
    assert_eq!((last.field.as_str(), last.old_value.as_deref(), last.new_value.as_deref()), ("phone", Some("138****5678"), Some("139****1111")));
    assert_eq!(desk.person(zhang.id).await.expect("read").version, 2);
    for p in [path, path2] {
        let _ = std::fs::remove_file(p);
    }
}

/// Read an .xlsx's first sheet as text (calamine, the whole range: the sheet is small).
pub fn read_xlsx(bytes: &[u8]) -> Vec<Vec<String>> {
    use calamine::{Data, Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("xlsx");
    let name = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&name).expect("sheet");
    range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

async fn import_xlsx_with_title_rows_grids_and_scope(d: Dialect) {
    use rust_xlsxwriter::{Format, Workbook};
    let Some((db, _clock)) = reg::store(d).await else { return };
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.merge_range(0, 0, 0, 3, "大祥区XX社区实有人口信息登记表", &Format::new()).expect("merge");
    for (c, h) in ["姓 名", "公民身份号码", "手机号", "所属网格"].iter().enumerate() {
        ws.write_string(1, c as u16, *h).expect("header");
    }
    let rows = [
        ["李雷", &id("19920202", 1), "13812340000", "430503001001001"],
        ["韩梅梅", &id("19930303", 2), "", "测试430503001001001"],
        ["越界", &id("19940404", 3), "", "430503001001002"],
        ["无此网格", &id("19950505", 4), "", "不存在的网格"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            ws.write_string(r as u32 + 2, c as u16, *v).expect("cell");
        }
    }
    // A phone typed as a number is read as the digits.
    ws.write_number(3, 2, 13912345678.0).expect("number");
    let path = temp_file("people.xlsx", &book.save_to_buffer().expect("xlsx"));

    // A grid worker of grid A: rows for grid B and an unknown grid are errors.
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, false, None)).await.expect("report");
    assert_eq!((r.header_row, r.rows_read, r.rows_with_errors, r.committed), (2, 4, 2, false));
    assert_eq!(codes_of(&r, 5), vec![("grid_out_of_scope", "error")]);
    assert_eq!(codes_of(&r, 6), vec![("unknown_grid", "error")]);
    assert_eq!(r.rows.iter().find(|x| x.row == 5).expect("row").findings[0].column, "所属网格");
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, true, None)).await.expect("report");
    assert_eq!((r.created, r.committed), (2, true));
    let stored = persons(&db).await;
    assert_eq!(stored.len(), 2);
    let han = stored.iter().find(|p| p.name == "韩梅梅").expect("by grid name");
    assert_eq!(han.phone_masked.as_deref(), Some("139****5678"));
    // Community staff hold both grids: the out-of-scope row now imports.
    let r = import(&db, Role::CommunityStaff, reg::COMMUNITY, &path, opts(ImportKind::Persons, true, None)).await.expect("report");
    assert_eq!((r.created, r.unchanged, r.rows_with_errors), (1, 2, 1));
    // Stored outside the importer's scope: an error row, which tells nothing more.
    let csv = format!("姓名,身份证号码\n越界,{}\n", id("19940404", 3));
    let path2 = temp_file("elsewhere.csv", csv.as_bytes());
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path2, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await.expect("report");
    assert_eq!((r.committed, r.rows_with_errors), (false, 1));
    assert_eq!(codes_of(&r, 2), vec![("registered_elsewhere", "error")]);
    // A grid given outside the caller's scope is denied as not found (and audited); a role
    // that does not write the register gets the same.
    let denied0 = reg::denied(&db, reg::GRID_B).await.len();
    let e = import(&db, Role::GridWorker, reg::GRID_A, &path2, opts(ImportKind::Persons, false, Some(reg::GRID_B))).await;
    assert!(matches!(e, Err(StoreError::NotFound(_))), "{e:?}");
    assert_eq!(reg::denied(&db, reg::GRID_B).await.len(), denied0 + 1);
    let e = import(&db, Role::Operator, "430503", &path2, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await;
    assert!(matches!(e, Err(StoreError::NotFound(_))), "{e:?}");
    assert_eq!(persons(&db).await.len(), 3);
    for p in [path, path2] {
        let _ = std::fs::remove_file(p);
    }
}

async fn import_houses_and_organisations(d: Dialect) {
    let Some((db, _clock)) = reg::store(d).await else { return };
    let csv = "房屋地址,栋,单元,房号,面积(㎡),用途\n学院路1号,3,2,301,85.5,住宅\n学院路1号,3,2,302,,门面\n学院路1号,3,2,301,85.5,住宅\n,,,,八十,\n";
    let path = temp_file("houses.csv", csv.as_bytes());
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Houses, true, Some(reg::GRID_A))).await.expect("report");
    assert_eq!((r.created, r.merged, r.rows_with_errors), (2, 1, 1));
    let who = reg::who(7, Role::GridWorker, reg::GRID_A);
    let s = db.scoped(&who, reg::actor(&who));
    let desk = s.register().expect("desk");
    let houses = desk.houses(&reg::all()).await.expect("houses");
    let mut got: Vec<(String, Option<f64>, &str)> = houses.iter().map(|h| (h.address.clone(), h.area_m2, h.house_use.as_str())).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, vec![("学院路1号3栋2单元301室".to_string(), Some(85.5), "residential"), ("学院路1号3栋2单元302室".to_string(), None, "shop")]);

    // A person whose 现住址 is exactly a house's address in the grid lives there; another
    // address leaves the person without a house.
    let seq0 = db.last_change_seq().await.expect("seq");
    let csv = format!("姓名,身份证号码,现住址\n房客甲,{},学院路1号3栋2单元301室\n房客乙,{},别处\n", id("19910101", 71), id("19910101", 72));
    let path3 = temp_file("tenants.csv", csv.as_bytes());
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path3, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await.expect("report");
    assert_eq!(r.created, 2);
    let room = houses.iter().find(|h| h.address.ends_with("301室")).expect("301");
    let people = persons(&db).await;
    assert_eq!(people.iter().find(|p| p.name == "房客甲").and_then(|p| p.house_id), Some(room.id));
    assert_eq!(people.iter().find(|p| p.name == "房客乙").and_then(|p| p.house_id), None);
    let f = store::register::RegisterFilter { house_id: Some(room.id), ..reg::all() };
    assert_eq!(desk.persons(&f).await.expect("residents").len(), 1);
    let changes = db.changes_since(seq0, 100).await.expect("changes");
    assert!(changes.iter().any(|c| c.entity == "house" && c.key == room.id.to_string()), "the house's residents changed");
    let _ = std::fs::remove_file(path3);

    // Organisations: a code is required to import; a duplicate code in the file that
    // differs is an error; GBK text is read.
    let good = "91350100M000100Y43";
    let text = format!("单位名称,统一社会信用代码,联系电话\n某某超市,{good},0739-5123456\n无码小店,,\n某某超市分店,{good},\n");
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    let path2 = temp_file("orgs.csv", &gbk);
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path2, opts(ImportKind::Organisations, true, Some(reg::GRID_A))).await.expect("report");
    assert_eq!((r.created, r.rows_with_errors), (1, 2));
    assert_eq!(codes_of(&r, 3), vec![("credit_code_required", "error")]);
    assert_eq!(codes_of(&r, 4), vec![("duplicate_conflict", "error")]);
    let orgs = desk.organisations(&reg::all()).await.expect("orgs");
    assert_eq!(orgs.len(), 1);
    assert_eq!((orgs[0].name.as_str(), orgs[0].credit_code.as_str()), ("某某超市", good));
    assert_eq!(desk.history_of("organisation", orgs[0].id).await.expect("history").len(), 1);
    for p in [path, path2] {
        let _ = std::fs::remove_file(p);
    }
}

/// A minimal .xlsx archive whose sheet entry is `sheet` bytes of spaces.
fn xlsx_with_sheet_of(sheet_bytes: usize) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut out);
        let o = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        z.start_file("[Content_Types].xml", o).expect("entry");
        z.write_all(b"<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>").expect("write");
        z.start_file("xl/workbook.xml", o).expect("entry");
        z.write_all(b"<?xml version=\"1.0\"?><workbook/>").expect("write");
        z.start_file("xl/worksheets/sheet1.xml", o).expect("entry");
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..sheet_bytes >> 20 {
            z.write_all(&chunk).expect("write");
        }
        z.finish().expect("finish");
    }
    out.into_inner()
}

/// The bomb again, its sheet entry's declared size rewritten to 1,000 bytes in the local
/// header and the central directory: the declared ratio looks harmless, the data is not.
fn lying_bomb() -> Vec<u8> {
    let mut b = xlsx_with_sheet_of(64 << 20);
    let name: &[u8] = b"xl/worksheets/sheet1.xml";
    // A header with this signature whose file name follows within its fixed part.
    let find = |b: &[u8], sig: &[u8], from: usize| {
        (from..b.len() - 80).find(|&i| &b[i..i + 4] == sig && b[i + 26..i + 80].windows(name.len()).any(|w| w == name))
    };
    let local = find(&b, b"PK\x03\x04", 0).expect("local header");
    b[local + 22..local + 26].copy_from_slice(&1000u32.to_le_bytes());
    let central = find(&b, b"PK\x01\x02", local + 30).expect("central header");
    b[central + 24..central + 28].copy_from_slice(&1000u32.to_le_bytes());
    b
}

async fn import_refuses_bad_files(d: Dialect) {
    let Some((db, _clock)) = reg::store(d).await else { return };
    let seq0 = db.last_change_seq().await.expect("seq");
    let bomb = xlsx_with_sheet_of(64 << 20);
    assert!(bomb.len() < 1 << 20, "a small file: {} bytes", bomb.len());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", Vec::new(), "empty_file"),
        ("bom.csv", b"\xEF\xBB\xBF\r\n".to_vec(), "empty_file"),
        ("report.xlsx", b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj".to_vec(), "not_a_spreadsheet"),
        ("people.xlsx", vec![0x00, 0x01, 0x02, 0xFF, 0x10, 0x00, 0x7F], "not_a_spreadsheet"),
        ("old.xls", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0".to_vec(), "not_a_spreadsheet"),
        ("notes.csv", "今天开会\n明天下雨\n".as_bytes().to_vec(), "no_header_row"),
        ("names.csv", "姓名,联系电话\n张三,13812345678\n".as_bytes().to_vec(), "missing_columns"),
        ("bomb.xlsx", bomb, "zip_bomb"),
        ("liar.xlsx", lying_bomb(), "zip_bomb"),
    ];
    for (name, bytes, code) in cases {
        let path = temp_file(name, &bytes);
        match import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, true, Some(reg::GRID_A))).await {
            Err(StoreError::Invalid { code: c, message }) => {
                assert_eq!(c, code, "{name}: {message}");
                assert!(!message.is_empty());
            }
            other => panic!("{name}: expected {code}, got {other:?}"),
        }
        let _ = std::fs::remove_file(path);
    }
    assert!(persons(&db).await.is_empty());
    assert_eq!(db.last_change_seq().await.expect("seq"), seq0, "nothing stored, nothing logged");
}

/// A 1,000,000-row sheet is read in bounded memory: the check pass keeps a capped report.
/// Every row here has a wrong check character, so the import is refused as designed, with
/// 10,000 rows listed and the rest counted. (Memory is measured in the benchmark.)
async fn import_a_million_rows(d: Dialect) {
    let Some((db, _clock)) = reg::store(d).await else { return };
    let path = std::env::temp_dir().join(format!("civicgrid-import-tests/{}-million-{d:?}.csv", std::process::id()));
    std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        writeln!(f, "姓名,身份证号码").expect("write");
        for i in 0..1_000_000u32 {
            // 430503 19900101 + 3 digits, and a check character that is never right here.
            let body = format!("43050319900101{:03}", i % 1000);
            let right = id_check_character(&body).expect("digits");
            let wrong = if right == '0' { '1' } else { '0' };
            writeln!(f, "居民{i},{body}{wrong}").expect("write");
        }
    }
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await.expect("report");
    assert_eq!((r.rows_read, r.rows_with_errors, r.committed), (1_000_000, 1_000_000, false));
    assert_eq!(r.rows.len(), store::register_import::MAX_LISTED_ROWS);
    assert_eq!(r.rows_not_listed, 990_000);
    assert_eq!(r.rows.last().map(|x| x.row), Some(10_001));
    assert!(persons(&db).await.is_empty());
    let _ = std::fs::remove_file(path);
}

/// 人口类型 and 标签 are stored; an unknown value is an error row naming its column, and
/// without `partial` nothing is imported. A later sheet without the columns keeps them.
async fn import_population_type_and_tags(d: Dialect) {
    use domain::register::{PersonTag, PopulationType};
    let Some((db, _clock)) = reg::store(d).await else { return };
    let (a, b, c, bad1, bad2) = (id("19400101", 1), id("19900101", 2), id("19800101", 3), id("19700101", 4), id("19600101", 5));
    let csv = format!(
        "姓名,身份证号码,人口类型,关爱标记\n甲,{a},流动人口,独居老人、退役军人\n乙,{b},常住,\n丙,{c},,残疾人，低保户\n丁,{bad1},外星,\n戊,{bad2},户籍,\"独居老人, 超人\"\n"
    );
    let path = temp_file("kinds.csv", csv.as_bytes());
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await.expect("report");
    assert!(!r.committed);
    assert_eq!(r.rows_with_errors, 2);
    assert!(persons(&db).await.is_empty(), "all or nothing");
    let row5 = r.rows.iter().find(|x| x.row == 5).expect("row 5");
    assert_eq!((row5.findings[0].column.as_str(), row5.findings[0].code), ("人口类型", "population_type_unknown"));
    assert!(row5.findings[0].message.contains("外星"), "{}", row5.findings[0].message);
    let row6 = r.rows.iter().find(|x| x.row == 6).expect("row 6");
    assert_eq!((row6.findings[0].column.as_str(), row6.findings[0].code), ("关爱标记", "tag_unknown"));
    assert!(row6.findings[0].message.contains("超人"), "{}", row6.findings[0].message);
    assert!(!r.ignored_columns.iter().any(|c| c == "人口类型" || c == "关爱标记"), "{:?}", r.ignored_columns);

    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, true, Some(reg::GRID_A))).await.expect("report");
    assert_eq!((r.committed, r.created), (true, 3));
    let stored = persons(&db).await;
    let of = |name: &str| stored.iter().find(|p| p.name == name).cloned().expect("stored");
    assert_eq!((of("甲").population_type, of("甲").tags), (PopulationType::Floating, vec![PersonTag::ElderlyAlone, PersonTag::Veteran]));
    assert_eq!((of("乙").population_type, of("乙").tags), (PopulationType::Resident, vec![]));
    assert_eq!((of("丙").population_type, of("丙").tags), (PopulationType::Registered, vec![PersonTag::Disability, PersonTag::LowIncome]));

    // A sheet without the columns keeps what is stored; one that changes them updates, with history.
    let csv = format!("姓名,身份证号码,人口类型\n甲,{a},户籍\n乙,{b},\n");
    let path2 = temp_file("kinds2.csv", csv.as_bytes());
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path2, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await.expect("report");
    assert_eq!((r.committed, r.updated, r.unchanged), (true, 1, 1));
    let stored = persons(&db).await;
    let jia = stored.iter().find(|p| p.name == "甲").expect("甲");
    assert_eq!((jia.population_type, jia.tags.len()), (PopulationType::Registered, 2), "tags kept without a 标签 column");
    assert_eq!(stored.iter().find(|p| p.name == "乙").expect("乙").population_type, PopulationType::Resident);
    let who = reg::who(7, Role::GridWorker, reg::GRID_A);
    let s = db.scoped(&who, reg::actor(&who));
    let h = s.register().expect("desk").history_of("person", jia.id).await.expect("history");
    let last = h.last().expect("row");
    assert_eq!((last.field.as_str(), last.old_value.as_deref(), last.new_value.as_deref()), ("population_type", Some("floating"), Some("registered")));
    for p in [path, path2] {
        let _ = std::fs::remove_file(p);
    }
}

/// A family sheet makes one household with one head and the members' relations, at the
/// head's house; a member whose head is nowhere is imported without one (a warning); a
/// person already in another household stays there; a re-import adds nothing.
async fn import_households_from_relations(d: Dialect) {
    use domain::register::Relation;
    let Some((db, _clock)) = reg::store(d).await else { return };
    let who = reg::who(7, Role::GridWorker, reg::GRID_A);
    let s = db.scoped(&who, reg::actor(&who));
    let desk = s.register().expect("desk");
    let house = desk.create_house(reg::house("学院路9号", reg::GRID_A)).await.expect("house");
    // Someone already in a household of their own.
    let other = desk.create_person(reg::person(reg::cid("19500505", 9), "外人", Some(house.id), None)).await.expect("person");
    let theirs = desk.create_household(reg::household(house.id, &[(other.id, Relation::Head)])).await.expect("household");

    let (head, spouse, child, orphan, nowhere) = (id("19700101", 1), id("19720202", 2), id("20000303", 3), id("20100404", 4), id("19650505", 5));
    let other_id = reg::cid("19500505", 9).expose().to_string();
    let csv = format!(
        "姓名,身份证号码,与户主关系,户主身份证号,现住址\n王父,{head},户主,,{addr}\n王妻,{spouse},配偶,{head},\n王子,{child},子女,{head},\n\
         无依,{orphan},子,{nowhere},\n外人,{other_id},父亲,{head},\n",
        addr = house.address
    );
    let path = temp_file("family.csv", csv.as_bytes());
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await.expect("report");
    assert!(r.committed, "{:?}", r.rows);
    assert_eq!((r.created, r.households_created, r.household_members_added), (4, 1, 3));
    assert_eq!(codes_of(&r, 5), vec![("head_not_found", "warning")]);
    assert_eq!(codes_of(&r, 6), vec![("already_registered", "note"), ("already_in_household", "warning")]);
    assert_eq!(r.rows.iter().filter(|x| x.row == 6).count(), 1, "a row is listed once, with all its findings");
    assert_eq!(r.rows_with_warnings, 2, "rows 5 and 6");
    assert!(!r.ignored_columns.iter().any(|c| c == "与户主关系" || c == "户主身份证号"), "{:?}", r.ignored_columns);

    let stored = persons(&db).await;
    let of = |name: &str| stored.iter().find(|p| p.name == name).map(|p| p.id).expect("stored");
    let hh = desk.household_of(of("王父")).await.expect("read").expect("a household");
    assert_eq!(hh.house_id, Some(house.id), "at the head's house");
    let got: Vec<(i64, Relation)> = hh.members.iter().map(|m| (m.person_id, m.relation)).collect();
    assert_eq!(got, vec![(of("王父"), Relation::Head), (of("王妻"), Relation::Spouse), (of("王子"), Relation::Child)]);
    assert!(desk.household_of(of("无依")).await.expect("read").is_none(), "imported without a household");
    assert_eq!(desk.household_of(other.id).await.expect("read").map(|h| h.id), Some(theirs.id), "left where they were");
    let history = desk.history_of("household", hh.id).await.expect("history");
    assert!(history.iter().any(|h| h.action == "household.import" && h.field == format!("member.{}", of("王妻")) && h.new_value.as_deref() == Some("spouse")));
    assert_eq!(desk.households(&reg::all()).await.expect("list").len(), 2);

    // Again: no second household, no member added twice.
    let seq = db.last_change_seq().await.expect("seq");
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await.expect("report");
    assert_eq!((r.committed, r.created, r.households_created, r.household_members_added), (true, 0, 0, 0));
    assert_eq!(desk.households(&reg::all()).await.expect("list").len(), 2);
    assert_eq!(desk.household_of(of("王父")).await.expect("read").expect("household").members.len(), 3);
    assert!(db.changes_since(seq, 100).await.expect("changes").iter().all(|c| c.entity != "household"));

    // A later sheet adds a member to the existing household.
    let csv = format!("姓名,身份证号码,与户主关系,户主身份证号\n王女,{},女,{head}\n", id("20050606", 6));
    let path2 = temp_file("family2.csv", csv.as_bytes());
    let r = import(&db, Role::GridWorker, reg::GRID_A, &path2, opts(ImportKind::Persons, false, Some(reg::GRID_A))).await.expect("report");
    assert_eq!((r.households_created, r.household_members_added), (0, 1));
    let after = desk.household(hh.id).await.expect("read");
    assert_eq!((after.members.len(), after.version), (4, hh.version + 1));
    assert_eq!(after.members.last().map(|m| m.relation), Some(Relation::Daughter));
    for p in [path, path2] {
        let _ = std::fs::remove_file(p);
    }
}
