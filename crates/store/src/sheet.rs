//! Reading departments' spreadsheets row by row, in bounded memory (issue 5, point 3).
//!
//! - The kind of file is read from its first bytes, never from its name: an .xlsx is a zip
//!   archive holding `xl/workbook.xml`; text is read as CSV; anything else (a PDF, an image,
//!   an old .xls, another archive, binary data) is refused with the reason.
//! - An .xlsx is checked before anything is decompressed for real: every entry's declared
//!   size and compression ratio, and the total, against fixed caps (a zip bomb is refused).
//!   Declared sizes can lie, so each entry is then inflated once into nothing, counting,
//!   and the reading stops at the cap or past the declared size.
//! - An .xlsx sheet is read with calamine's streaming cell reader, one cell at a time: only
//!   the shared strings and the current row are held, whatever the number of rows.
//!   Formulas are never evaluated: a cell gives its cached value, or its text.
//! - A .csv is UTF-8 (with or without a BOM) or GBK: a BOM means UTF-8, valid UTF-8 means
//!   UTF-8, anything else is decoded as GBK (GB 18030, its superset). It is parsed as RFC 4180
//!   (quoted fields may hold commas, quotes and line breaks), a chunk at a time.
//!
//! Row numbers are the ones a spreadsheet shows (1-based; for a CSV, the record's number).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// The largest uncompressed entry of an .xlsx archive.
pub const MAX_ENTRY_BYTES: u64 = 2 << 30;
/// The largest uncompressed total of an .xlsx archive.
pub const MAX_TOTAL_BYTES: u64 = 3 << 30;
/// The highest compression ratio of an entry larger than [`RATIO_FLOOR`]. Sheet XML
/// compresses about 5-20 times; a zip bomb thousands of times.
pub const MAX_RATIO: u64 = 200;
/// Entries below this size are not held to [`MAX_RATIO`] (tiny files compress oddly).
pub const RATIO_FLOOR: u64 = 1 << 20;
/// The most entries an .xlsx archive may hold.
pub const MAX_ENTRIES: usize = 10_000;
/// The longest cell, in characters (Excel's own limit is 32,767).
pub const MAX_CELL_CHARS: usize = 32_767;
/// The most columns a row may have.
pub const MAX_COLUMNS: usize = 1_000;

/// What a file holds, as its first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetFormat {
    Xlsx,
    /// Text, with the encoding found.
    Csv(TextEncoding),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Gbk,
}

/// A file that was found to be a spreadsheet and passed the archive checks.
#[derive(Debug, Clone)]
pub struct SheetFile {
    path: PathBuf,
    pub format: SheetFormat,
}

fn refuse(code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid { code, message: message.into() }
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    refuse("unreadable_file", format!("无法读取文件 (cannot read the file {}): {e}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()))
}

/// Known kinds of files that are not spreadsheets, by their first bytes.
const NOT_SHEETS: &[(&[u8], &str)] = &[
    (b"%PDF", "PDF 文档 (a PDF document)"),
    (b"\x89PNG", "PNG 图片 (a PNG image)"),
    (b"\xFF\xD8\xFF", "JPEG 图片 (a JPEG image)"),
    (b"GIF8", "GIF 图片 (a GIF image)"),
    (b"RIFF", "RIFF 媒体文件 (a media file)"),
    (b"\x1F\x8B", "gzip 压缩包 (a gzip archive)"),
    (b"7z\xBC\xAF", "7z 压缩包 (a 7z archive)"),
    (b"Rar!", "RAR 压缩包 (a RAR archive)"),
    (b"\x7FELF", "程序文件 (an executable)"),
    (b"MZ", "程序文件 (an executable)"),
];

/// Look at a file and say what it is; refuse an empty file, a file that is not a
/// spreadsheet, and an archive that would inflate beyond the caps.
pub fn inspect(path: &Path) -> Result<SheetFile, StoreError> {
    let mut f = File::open(path).map_err(|e| io(path, e))?;
    let mut head = Vec::with_capacity(8192);
    f.by_ref().take(8192).read_to_end(&mut head).map_err(|e| io(path, e))?;
    let meaningful = head.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(&head);
    if meaningful.iter().all(|b| b.is_ascii_whitespace()) && file_is_blank(path)? {
        return Err(refuse("empty_file", "文件为空 (the file is empty)"));
    }
    if head.starts_with(b"\xD0\xCF\x11\xE0") {
        return Err(refuse(
            "not_a_spreadsheet",
            "这是旧版 Excel（.xls）或其他 Office 文件，请另存为 .xlsx 或 .csv 后导入 (an old .xls or other Office file: save it as .xlsx or .csv)",
        ));
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        check_archive(path)?;
        return Ok(SheetFile { path: path.to_path_buf(), format: SheetFormat::Xlsx });
    }
    if let Some((_, what)) = NOT_SHEETS.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Err(refuse("not_a_spreadsheet", format!("文件不是表格，而是{what}；请上传 .xlsx 或 .csv (not a spreadsheet)")));
    }
    if head.contains(&0) {
        return Err(refuse("not_a_spreadsheet", "文件含有二进制数据，不是表格；请上传 .xlsx 或 .csv (binary data, not a spreadsheet)"));
    }
    Ok(SheetFile { path: path.to_path_buf(), format: SheetFormat::Csv(detect_encoding(path)?) })
}

fn file_is_blank(path: &Path) -> Result<bool, StoreError> {
    let mut f = BufReader::new(File::open(path).map_err(|e| io(path, e))?);
    let mut buf = [0u8; 65536];
    let mut first = true;
    loop {
        let n = f.read(&mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            return Ok(true);
        }
        let chunk = if first { buf[..n].strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(&buf[..n]) } else { &buf[..n] };
        first = false;
        if !chunk.iter().all(|b| b.is_ascii_whitespace() || *b == b',' || *b == b'"') {
            return Ok(false);
        }
    }
}

/// BOM → UTF-8; the whole file valid UTF-8 → UTF-8; else GBK.
fn detect_encoding(path: &Path) -> Result<TextEncoding, StoreError> {
    let mut f = BufReader::new(File::open(path).map_err(|e| io(path, e))?);
    let mut buf = vec![0u8; 1 << 16];
    let mut carry: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let n = f.read(&mut buf).map_err(|e| io(path, e))?;
        if first && buf[..n].starts_with(b"\xEF\xBB\xBF") {
            return Ok(TextEncoding::Utf8);
        }
        first = false;
        if n == 0 {
            return Ok(if carry.is_empty() { TextEncoding::Utf8 } else { TextEncoding::Gbk });
        }
        carry.extend_from_slice(&buf[..n]);
        match std::str::from_utf8(&carry) {
            Ok(_) => carry.clear(),
            // A character cut at the chunk's end: keep its bytes for the next chunk.
            Err(e) if e.error_len().is_none() => {
                let keep = carry.split_off(e.valid_up_to());
                carry = keep;
            }
            Err(_) => return Ok(TextEncoding::Gbk),
        }
    }
}

/// The zip-bomb guard: declared sizes and ratios first, then the real sizes, counted
/// while inflating into nothing and stopped at the caps.
fn check_archive(path: &Path) -> Result<(), StoreError> {
    let damaged = |e: &dyn std::fmt::Display| refuse("damaged_file", format!("文件已损坏，无法作为 .xlsx 读取 (a damaged .xlsx): {e}"));
    let file = File::open(path).map_err(|e| io(path, e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| damaged(&e))?;
    if zip.len() > MAX_ENTRIES {
        return Err(refuse("zip_bomb", format!("压缩包内文件过多（{} 个），拒绝解压 (too many entries in the archive)", zip.len())));
    }
    let mut total: u64 = 0;
    let mut workbook = false;
    for i in 0..zip.len() {
        let e = zip.by_index_raw(i).map_err(|e| damaged(&e))?;
        let (size, packed) = (e.size(), e.compressed_size());
        workbook |= e.name().is_ok_and(|n| n == "xl/workbook.xml");
        total = total.saturating_add(size);
        if size > MAX_ENTRY_BYTES || total > MAX_TOTAL_BYTES {
            return Err(bomb(size.max(total)));
        }
        if size > RATIO_FLOOR && size / packed.max(1) > MAX_RATIO {
            return Err(refuse(
                "zip_bomb",
                format!("压缩比异常（{} 倍），疑似压缩炸弹，拒绝解压 (compression ratio {}:1 is beyond {MAX_RATIO}:1: refused as a zip bomb)", size / packed.max(1), size / packed.max(1)),
            ));
        }
    }
    if !workbook {
        return Err(refuse("not_a_spreadsheet", "这是一个压缩包或其他 Office 文件，不是 Excel 工作簿 (a zip archive, not an .xlsx workbook)"));
    }
    // Declared sizes can lie: inflate each entry into nothing, never past its declared size
    // (nor the caps).
    let mut seen: u64 = 0;
    for i in 0..zip.len() {
        let e = zip.by_index(i).map_err(|e| damaged(&e))?;
        let declared = e.size();
        let limit = declared.min(MAX_ENTRY_BYTES).saturating_add(1);
        let liar = || refuse("zip_bomb", "压缩包内文件的实际大小超过其声明的大小，拒绝解压 (an entry inflates beyond its declared size: refused as a zip bomb)");
        // The zip reader itself stops an entry that runs past its declared size.
        let n = std::io::copy(&mut e.take(limit), &mut std::io::sink())
            .map_err(|e| if e.to_string().contains("larger than its declared") { liar() } else { damaged(&e) })?;
        seen = seen.saturating_add(n);
        if n > declared || seen > MAX_TOTAL_BYTES {
            return Err(liar());
        }
    }
    Ok(())
}

fn bomb(size: u64) -> StoreError {
    refuse(
        "zip_bomb",
        format!(
            "解压后大小 {} MB 超过上限 {} MB，拒绝解压 (it would inflate to {} MB, beyond the {} MB limit: refused as a zip bomb)",
            size >> 20,
            MAX_TOTAL_BYTES >> 20,
            size >> 20,
            MAX_TOTAL_BYTES >> 20
        ),
    )
}

impl SheetFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Call `each` with every non-empty row (its number as the sheet shows it, and its
    /// cells as text), in order; `each` returns false to stop.
    pub fn for_each_row(&self, each: &mut dyn FnMut(usize, Vec<String>) -> bool) -> Result<(), StoreError> {
        match self.format {
            SheetFormat::Xlsx => xlsx_rows(&self.path, each),
            SheetFormat::Csv(enc) => csv_rows(&self.path, enc, each),
        }
    }
}

fn xlsx_rows(path: &Path, each: &mut dyn FnMut(usize, Vec<String>) -> bool) -> Result<(), StoreError> {
    use calamine::{Reader, Xlsx};
    let damaged = |e: &dyn std::fmt::Display| refuse("damaged_file", format!("文件已损坏，无法作为 .xlsx 读取 (a damaged .xlsx): {e}"));
    let file = File::open(path).map_err(|e| io(path, e))?;
    let mut book: Xlsx<_> = Xlsx::new(BufReader::new(file)).map_err(|e| damaged(&e))?;
    let Some(name) = book.sheet_names().first().cloned() else {
        return Err(refuse("empty_file", "工作簿中没有工作表 (the workbook has no sheet)"));
    };
    let mut cells = book.worksheet_cells_reader(&name).map_err(|e| damaged(&e))?;
    let mut row: Option<u32> = None;
    let mut current: Vec<String> = Vec::new();
    let flush = |row: u32, current: &mut Vec<String>, each: &mut dyn FnMut(usize, Vec<String>) -> bool| -> bool {
        if current.iter().all(|c| c.trim().is_empty()) {
            current.clear();
            return true;
        }
        each(row as usize + 1, std::mem::take(current))
    };
    while let Some(cell) = cells.next_cell().map_err(|e| damaged(&e))? {
        let (r, c) = cell.get_position();
        if row != Some(r) {
            if let Some(prev) = row
                && !flush(prev, &mut current, each)
            {
                return Ok(());
            }
            row = Some(r);
        }
        let c = c as usize;
        if c >= MAX_COLUMNS {
            return Err(refuse("too_many_columns", format!("第 {} 行超过 {MAX_COLUMNS} 列 (row {} has more than {MAX_COLUMNS} columns)", r + 1, r + 1)));
        }
        let text = cell_text(cell.get_value());
        if text.is_empty() {
            continue;
        }
        if current.len() <= c {
            current.resize(c + 1, String::new());
        }
        current[c] = text;
    }
    if let Some(prev) = row {
        flush(prev, &mut current, each);
    }
    Ok(())
}

/// A cell's value as text. Numbers that are whole print without a fraction (a phone typed
/// as a number), dates as `YYYY-MM-DD`; formulas give their cached value, never evaluated.
fn cell_text(v: &calamine::DataRef<'_>) -> String {
    use calamine::DataRef;
    let text = match v {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => float_text(*f),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        DataRef::DateTime(d) => {
            let serial = d.as_f64();
            if d.is_datetime() && serial >= 1.0 {
                // Excel's day 25569 is 1970-01-01.
                domain::calendar::Day(serial.floor() as i64 - 25_569).to_string()
            } else {
                float_text(serial)
            }
        }
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => format!("#{e:?}"),
    };
    if text.chars().count() > MAX_CELL_CHARS { text.chars().take(MAX_CELL_CHARS).collect() } else { text }
}

fn float_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { f.to_string() }
}

/// RFC 4180 records, fed a chunk of decoded text at a time.
struct CsvParser {
    field: String,
    record: Vec<String>,
    in_quotes: bool,
    quote_pending: bool,
    skip_lf: bool,
    /// The number of the record being read (1-based).
    number: usize,
    /// A cell or row over its limit, reported once the record ends.
    too_long: Option<&'static str>,
}

enum Flow {
    Go,
    Stop,
}

impl CsvParser {
    fn new() -> Self {
        CsvParser { field: String::new(), record: Vec::new(), in_quotes: false, quote_pending: false, skip_lf: false, number: 1, too_long: None }
    }

    fn push_char(&mut self, c: char) {
        if self.field.len() < MAX_CELL_CHARS * 4 {
            self.field.push(c);
        } else {
            self.too_long = Some("cell");
        }
    }

    fn end_field(&mut self) {
        if self.record.len() < MAX_COLUMNS {
            self.record.push(std::mem::take(&mut self.field));
        } else {
            self.field.clear();
            self.too_long = Some("row");
        }
    }

    fn end_record(&mut self, each: &mut dyn FnMut(usize, Vec<String>) -> bool) -> Result<Flow, StoreError> {
        self.end_field();
        let number = self.number;
        self.number += 1;
        if let Some(what) = self.too_long.take() {
            return Err(refuse(
                "too_long",
                if what == "cell" {
                    format!("第 {number} 行有超长的单元格（多于 {MAX_CELL_CHARS} 字），可能缺少右引号 (row {number} has a cell over {MAX_CELL_CHARS} characters: a missing closing quote?)")
                } else {
                    format!("第 {number} 行超过 {MAX_COLUMNS} 列 (row {number} has more than {MAX_COLUMNS} columns)")
                },
            ));
        }
        let record = std::mem::take(&mut self.record);
        if record.iter().all(|c| c.trim().is_empty()) {
            return Ok(Flow::Go);
        }
        Ok(if each(number, record) { Flow::Go } else { Flow::Stop })
    }

    fn feed(&mut self, text: &str, each: &mut dyn FnMut(usize, Vec<String>) -> bool) -> Result<Flow, StoreError> {
        for c in text.chars() {
            if self.skip_lf {
                self.skip_lf = false;
                if c == '\n' {
                    continue;
                }
            }
            if self.in_quotes {
                if self.quote_pending {
                    self.quote_pending = false;
                    if c == '"' {
                        self.push_char('"');
                        continue;
                    }
                    self.in_quotes = false;
                } else if c == '"' {
                    self.quote_pending = true;
                    continue;
                } else {
                    self.push_char(c);
                    continue;
                }
            }
            match c {
                '"' if self.field.is_empty() => self.in_quotes = true,
                ',' => self.end_field(),
                '\r' | '\n' => {
                    self.skip_lf = c == '\r';
                    if let Flow::Stop = self.end_record(each)? {
                        return Ok(Flow::Stop);
                    }
                }
                _ => self.push_char(c),
            }
        }
        Ok(Flow::Go)
    }

    fn finish(&mut self, each: &mut dyn FnMut(usize, Vec<String>) -> bool) -> Result<(), StoreError> {
        if !self.field.is_empty() || !self.record.is_empty() || self.in_quotes {
            self.end_record(each)?;
        }
        Ok(())
    }
}

fn csv_rows(path: &Path, enc: TextEncoding, each: &mut dyn FnMut(usize, Vec<String>) -> bool) -> Result<(), StoreError> {
    let mut f = BufReader::with_capacity(1 << 16, File::open(path).map_err(|e| io(path, e))?);
    let mut decoder = match enc {
        TextEncoding::Utf8 => encoding_rs::UTF_8.new_decoder_with_bom_removal(),
        TextEncoding::Gbk => encoding_rs::GB18030.new_decoder_without_bom_handling(),
    };
    let mut parser = CsvParser::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut text = String::with_capacity((1 << 16) * 3 + 16);
    loop {
        let n = f.read(&mut buf).map_err(|e| io(path, e))?;
        let last = n == 0;
        let mut input = &buf[..n];
        loop {
            text.clear();
            let (result, read, _) = decoder.decode_to_string(input, &mut text, last);
            input = &input[read..];
            if let Flow::Stop = parser.feed(&text, each)? {
                return Ok(());
            }
            if let encoding_rs::CoderResult::InputEmpty = result {
                break;
            }
        }
        if last {
            break;
        }
    }
    parser.finish(each)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(usize, Vec<String>)> {
        let mut out = Vec::new();
        let mut p = CsvParser::new();
        // Fed one character at a time: state must carry across chunks.
        for c in text.chars() {
            let mut s = [0u8; 4];
            let _ = p.feed(c.encode_utf8(&mut s), &mut |n, r| {
                out.push((n, r));
                true
            });
        }
        let _ = p.finish(&mut |n, r| {
            out.push((n, r));
            true
        });
        out
    }

    #[test]
    fn csv_records() {
        let got = parse("a,b\r\n\"x,1\",\"he said \"\"hi\"\"\"\n\n\"two\nlines\",=1+1\nlast");
        assert_eq!(
            got,
            vec![
                (1, vec!["a".to_string(), "b".to_string()]),
                (2, vec!["x,1".to_string(), "he said \"hi\"".to_string()]),
                (4, vec!["two\nlines".to_string(), "=1+1".to_string()]),
                (5, vec!["last".to_string()]),
            ]
        );
    }

    #[test]
    fn numbers_print_as_typed() {
        assert_eq!(float_text(13812345678.0), "13812345678");
        assert_eq!(float_text(85.5), "85.5");
    }
}
