//! The text of imported cells: what departments' sheets carry besides the data
//! (full-width digits typed with a Chinese input method, zero-width characters pasted
//! from web pages and chat, stray spaces), and the escaping of exported cells so that a
//! spreadsheet never takes data for a formula.

use std::borrow::Cow;

use super::Note;

/// What [`normalise_cell`] changed in a cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CellChanges {
    /// Full-width characters U+FF01–FF5E (`１２３`, `ＡＢＣ`, `（）`) made ASCII.
    pub full_width: bool,
    /// Ideographic (U+3000), no-break or other non-ASCII spaces made ordinary spaces.
    pub wide_space: bool,
    /// Zero-width characters (U+200B–200D, U+2060, U+FEFF) removed.
    pub zero_width: bool,
    /// Spaces trimmed at the ends, or runs of spaces, tabs and line breaks made one space.
    pub spaces: bool,
}

impl CellChanges {
    pub fn is_empty(&self) -> bool {
        *self == CellChanges::default()
    }

    /// The changes as notes, for an import's report.
    pub fn notes(&self) -> Vec<Note> {
        let mut out = Vec::new();
        if self.full_width {
            out.push(Note::FullWidthConverted);
        }
        if self.wide_space {
            out.push(Note::WideSpaceConverted);
        }
        if self.zero_width {
            out.push(Note::ZeroWidthRemoved);
        }
        if self.spaces {
            out.push(Note::SpacesTidied);
        }
        out
    }
}

/// A normalised cell: the text and what was changed to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised<'a> {
    pub text: Cow<'a, str>,
    pub changes: CellChanges,
    /// The cell starts with `=`, `+`, `-` or `@`. It is data, never a formula: it was
    /// kept verbatim (if the raw cell started so) and must be escaped on export.
    pub formula_like: bool,
}

/// Zero-width characters that sheets carry invisibly.
pub fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// The ASCII form of a full-width character (U+FF01–FF5E) or of the ideographic space
/// (U+3000); other characters unchanged.
pub fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// A number's cell with everything but the number removed: see [`compact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compact {
    pub text: String,
    pub full_width: bool,
    pub zero_width: bool,
    /// Spaces (or the separators `drop` named) were removed.
    pub removed: bool,
}

impl Compact {
    /// The changes as notes, the removal named by `removed`.
    pub fn notes(&self, removed: Note) -> Vec<Note> {
        let mut out = Vec::new();
        if self.full_width {
            out.push(Note::FullWidthConverted);
        }
        if self.zero_width {
            out.push(Note::ZeroWidthRemoved);
        }
        if self.removed {
            out.push(removed);
        }
        out
    }
}

/// The characters of a number's cell (an ID number, a code, a phone): full-width
/// characters folded, zero-width characters, every space and whatever `drop` names
/// (after folding) removed, each change recorded.
pub(crate) fn compact(raw: &str, drop: impl Fn(char) -> bool) -> Compact {
    let mut out = Compact { text: String::with_capacity(raw.len()), full_width: false, zero_width: false, removed: false };
    for c in raw.chars() {
        if is_zero_width(c) {
            out.zero_width = true;
            continue;
        }
        let f = fold_width(c);
        out.full_width |= f != c && !f.is_whitespace();
        if f.is_whitespace() || drop(f) {
            out.removed = true;
            continue;
        }
        out.text.push(f);
    }
    out
}

/// Whether text starts with a character that a spreadsheet would take as the start of a
/// formula (`=`, `+`, `-`, `@`, and tab or carriage return, after OWASP's advice on CSV
/// injection).
pub fn is_formula_like(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// Normalise one imported cell:
/// - full-width characters U+FF01–FF5E become ASCII (`１３８` → `138`, `（` → `(`);
/// - U+3000 and other non-ASCII spaces, tabs and line breaks become a space;
/// - zero-width characters are removed;
/// - spaces are trimmed at the ends and runs of them inside become one space (a single
///   inner space is kept: `张 三` stays, because which spaces matter depends on the
///   field, and the field's parser decides; ID numbers and phones drop them all).
///
/// A raw cell that starts with `=`, `+`, `-` or `@` is kept verbatim: it is data that a
/// spreadsheet may have shown as text, and "repairing" it could change what it says.
/// The typed parsers ([`super::parse_mobile`] for `+86 …`) fold their own input.
///
/// Nothing is changed silently: [`Normalised::changes`] says what was done.
pub fn normalise_cell(raw: &str) -> Normalised<'_> {
    if raw.starts_with(['=', '+', '-', '@']) {
        return Normalised { text: Cow::Borrowed(raw), changes: CellChanges::default(), formula_like: true };
    }
    let clean = !raw.starts_with(char::is_whitespace)
        && !raw.ends_with(char::is_whitespace)
        && !raw.contains("  ")
        && !raw.chars().any(|c| {
            is_zero_width(c) || fold_width(c) != c || (c.is_whitespace() && c != ' ')
        });
    if clean {
        return Normalised { text: Cow::Borrowed(raw), changes: CellChanges::default(), formula_like: false };
    }
    let mut changes = CellChanges::default();
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.chars() {
        if is_zero_width(c) {
            changes.zero_width = true;
            continue;
        }
        let folded = fold_width(c);
        if folded != c && folded != ' ' {
            changes.full_width = true;
        }
        if folded.is_whitespace() {
            if !c.is_ascii() {
                changes.wide_space = true;
            } else if c != ' ' {
                changes.spaces = true;
            }
            if out.is_empty() || pending_space {
                changes.spaces = true;
            }
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(folded);
    }
    if pending_space {
        changes.spaces = true;
    }
    let formula_like = is_formula_like(&out);
    Normalised { text: Cow::Owned(out), changes, formula_like }
}

/// A cell's text for an exported sheet (.xlsx or .csv): text that a spreadsheet would
/// take for a formula gets a leading `'`, so it shows as the text it is. Numbers that
/// should stay numbers (an area, a count) are written as numbers, not through this.
pub fn escape_for_spreadsheet(s: &str) -> Cow<'_, str> {
    if is_formula_like(s) { Cow::Owned(format!("'{s}")) } else { Cow::Borrowed(s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> (String, CellChanges) {
        let n = normalise_cell(s);
        (n.text.into_owned(), n.changes)
    }

    #[test]
    fn clean_cells_are_borrowed_and_unchanged() {
        for s in ["", "张三", "张 三", "大祥区学院路 12 号", "430503199001011234"] {
            let n = normalise_cell(s);
            assert!(matches!(n.text, Cow::Borrowed(_)), "{s:?}");
            assert_eq!(n.text, s);
            assert!(n.changes.is_empty());
            assert!(n.changes.notes().is_empty());
            assert!(!n.formula_like);
        }
    }

    #[test]
    fn full_width_characters_become_ascii_and_are_reported() {
        let (t, c) = norm("１３８１２３４５６７８");
        assert_eq!(t, "13812345678");
        assert_eq!(c, CellChanges { full_width: true, ..Default::default() });
        assert_eq!(c.notes(), vec![Note::FullWidthConverted]);
        assert_eq!(norm("ＡＢｃ（１）！～").0, "ABc(1)!~");
        // Chinese characters and CJK punctuation outside the block are left alone.
        assert_eq!(norm("张三，１号").0, "张三,1号");
        assert_eq!(norm("张三、李四").0, "张三、李四");
    }

    #[test]
    fn every_full_width_character_folds_to_its_ascii_twin() {
        for u in 0xFF01..=0xFF5E_u32 {
            let c = char::from_u32(u).expect("in range");
            let folded = fold_width(c);
            assert!(folded.is_ascii_graphic(), "{u:X}");
            assert_eq!(folded as u32 + 0xFEE0, u);
        }
    }

    #[test]
    fn zero_width_characters_are_removed_and_reported() {
        let (t, c) = norm("\u{FEFF}4305\u{200B}03\u{200C}19\u{200D}90\u{2060}0101");
        assert_eq!(t, "43050319900101");
        assert_eq!(c, CellChanges { zero_width: true, ..Default::default() });
        assert_eq!(c.notes(), vec![Note::ZeroWidthRemoved]);
    }

    #[test]
    fn spaces_are_trimmed_and_runs_collapsed() {
        let (t, c) = norm("  张三  ");
        assert_eq!(t, "张三");
        assert_eq!(c, CellChanges { spaces: true, ..Default::default() });
        assert_eq!(norm("学院路   12号").0, "学院路 12号");
        assert_eq!(norm("学院路\t12号\r\n3栋").0, "学院路 12号 3栋");
        assert!(norm("学院路\t12号").1.spaces);
        let (t, c) = norm("\u{3000}张\u{3000}三\u{00A0}");
        assert_eq!(t, "张 三");
        assert_eq!(c, CellChanges { wide_space: true, spaces: true, ..Default::default() });
        let (t, c) = norm("张\u{3000}三");
        assert_eq!(t, "张 三");
        assert_eq!(c, CellChanges { wide_space: true, ..Default::default() });
        assert_eq!(norm("   ").0, "");
        assert_eq!(norm("\u{200B} \u{3000}").0, "");
    }

    #[test]
    fn formula_like_cells_are_kept_verbatim() {
        for s in ["=1+1", "+86 １３８１２３４５６７８", "-5", "@SUM(A1)", "=HYPERLINK(\"http://x\")\u{200B}  "] {
            let n = normalise_cell(s);
            assert_eq!(n.text, s);
            assert!(n.formula_like, "{s:?}");
            assert!(n.changes.is_empty());
        }
        // Normalising can make text formula-like (a full-width ＝, a space before =): it
        // is flagged so the export escapes it.
        let n = normalise_cell("＝1+1");
        assert_eq!(n.text, "=1+1");
        assert!(n.formula_like);
        assert!(normalise_cell(" =1").formula_like);
    }

    #[test]
    fn export_escapes_formula_like_text() {
        assert_eq!(escape_for_spreadsheet("=1+1"), "'=1+1");
        assert_eq!(escape_for_spreadsheet("+8613812345678"), "'+8613812345678");
        assert_eq!(escape_for_spreadsheet("-2"), "'-2");
        assert_eq!(escape_for_spreadsheet("@cmd"), "'@cmd");
        assert_eq!(escape_for_spreadsheet("\t=1"), "'\t=1");
        assert_eq!(escape_for_spreadsheet("\r=1"), "'\r=1");
        assert!(matches!(escape_for_spreadsheet("张三"), Cow::Borrowed("张三")));
        assert_eq!(escape_for_spreadsheet("a=1"), "a=1");
        assert_eq!(escape_for_spreadsheet(""), "");
    }
}
