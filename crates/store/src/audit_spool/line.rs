//! A spool line: one audit row as tab-separated fields in the trail's column order (`at`,
//! `actor_kind`, `actor_id`, `actor_name`, `action`, `object_type`, `object_id`, `outcome`,
//! `detail`, `operation_id`, `client_addr`), escaped as PostgreSQL's `COPY` text format
//! reads them: a backslash before `\`, tab, newline and carriage return, and `\N` for an
//! absent `actor_id`.
//!
//! So the request writes its row without a JSON encoder, the importer reads it back by
//! splitting on tabs (a field is copied only when it holds an escape), and on PostgreSQL
//! the line goes into `COPY` as it was written. A line that starts with `{` is the JSON
//! line of civicgrid before 2026-11-29 (a spool left by an older process) and is still read.

use std::borrow::Cow;

use domain::audit::AuditEntryRef;

/// A spool line as read back: the strings borrow from the line unless they hold escapes.
#[derive(serde::Deserialize)]
pub(super) struct SpoolLine<'a> {
    pub(super) at: i64,
    #[serde(borrow)]
    pub(super) actor_kind: Cow<'a, str>,
    pub(super) actor_id: Option<i64>,
    #[serde(borrow)]
    pub(super) actor_name: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) action: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) object_type: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) object_id: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) outcome: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) detail: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) operation_id: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) client_addr: Cow<'a, str>,
}

impl SpoolLine<'_> {
    pub(super) fn as_entry(&self) -> AuditEntryRef<'_> {
        AuditEntryRef {
            at: self.at,
            actor_kind: &self.actor_kind,
            actor_id: self.actor_id,
            actor_name: &self.actor_name,
            action: &self.action,
            object_type: &self.object_type,
            object_id: &self.object_id,
            outcome: &self.outcome,
            detail: &self.detail,
            operation_id: &self.operation_id,
            client_addr: &self.client_addr,
        }
    }
}

/// Append `e` as one line, newline included.
pub(super) fn write(out: &mut Vec<u8>, e: &AuditEntryRef<'_>) {
    let mut num = [0u8; 20];
    out.extend_from_slice(domain::audit::decimal(e.at, &mut num));
    for (k, field) in [e.actor_kind, "", e.actor_name, e.action, e.object_type, e.object_id, e.outcome, e.detail, e.operation_id, e.client_addr].into_iter().enumerate() {
        out.push(b'\t');
        if k == 1 {
            match e.actor_id {
                Some(id) => out.extend_from_slice(domain::audit::decimal(id, &mut num)),
                None => out.extend_from_slice(b"\\N"),
            }
        } else {
            escape(out, field.as_bytes());
        }
    }
    out.push(b'\n');
}

/// `text` with a backslash before each character COPY reserves.
pub(super) fn escape(out: &mut Vec<u8>, text: &[u8]) {
    let mut rest = text;
    while let Some(k) = rest.iter().position(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r')) {
        out.extend_from_slice(&rest[..k]);
        out.extend_from_slice(match rest[k] {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            _ => b"\\r",
        });
        rest = &rest[k + 1..];
    }
    out.extend_from_slice(rest);
}

/// Whether a line is in the tab-separated form (and so can go into `COPY` as written).
pub(super) fn is_tabbed(line: &[u8]) -> bool {
    line.first() != Some(&b'{')
}

/// Read one line (without its newline); None when it is not a well-formed row. Only the
/// escapes [`write`] makes are accepted, so a line read here means the same to `COPY`.
pub(super) fn parse(line: &[u8]) -> Option<SpoolLine<'_>> {
    parse_str(std::str::from_utf8(line).ok()?)
}

/// The same, for a line already known to be UTF-8.
pub(super) fn parse_str<'a>(line: &'a str) -> Option<SpoolLine<'a>> {
    if !is_tabbed(line.as_bytes()) {
        return serde_json::from_str(line).ok();
    }
    // Most lines hold no escape at all: one scan of the line instead of one per field.
    let plain = !line.as_bytes().contains(&b'\\');
    let text = |f: &'a str| if plain { Some(Cow::Borrowed(f)) } else { unescape(f) };
    let mut fields = line.split('\t');
    let mut next = || fields.next();
    let at = next()?.parse().ok()?;
    let actor_kind = text(next()?)?;
    let actor_id = match next()? {
        "\\N" => None,
        id => Some(id.parse().ok()?),
    };
    let row = SpoolLine {
        at,
        actor_kind,
        actor_id,
        actor_name: text(next()?)?,
        action: text(next()?)?,
        object_type: text(next()?)?,
        object_id: text(next()?)?,
        outcome: text(next()?)?,
        detail: text(next()?)?,
        operation_id: text(next()?)?,
        client_addr: text(next()?)?,
    };
    next().is_none().then_some(row)
}

fn unescape(field: &str) -> Option<Cow<'_, str>> {
    if !field.contains('\\') {
        return Some(Cow::Borrowed(field));
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(name: &'a str, detail: &'a str, actor_id: Option<i64>) -> AuditEntryRef<'a> {
        AuditEntryRef {
            at: 1_700_000_000_000,
            actor_kind: "user",
            actor_id,
            actor_name: name,
            action: "person.read_sensitive",
            object_type: "person",
            object_id: "42",
            outcome: "ok",
            detail,
            operation_id: "",
            client_addr: "127.0.0.1",
        }
    }

    #[test]
    fn a_line_reads_back_as_written_whatever_its_fields_hold() {
        for (name, detail, id) in [("张三", "理由：核实身份", Some(7)), ("a\tb", "line\nbreak\r\\N and \\ and \\t", None), ("", "", Some(-1)), ("\\", "\t\t", None)] {
            let e = entry(name, detail, id);
            let mut out = Vec::new();
            write(&mut out, &e);
            assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line, at its end");
            assert_eq!(out.iter().filter(|b| **b == b'\t').count(), 10, "eleven fields");
            let row = parse(&out[..out.len() - 1]).expect("reads back");
            let back = row.as_entry();
            assert_eq!((back.actor_name, back.detail, back.actor_id, back.at, back.client_addr), (name, detail, id, e.at, e.client_addr));
        }
    }

    #[test]
    fn lines_are_written_in_copy_text_format() {
        let mut out = Vec::new();
        write(&mut out, &entry("张三\tx", "a\\b\nc", None));
        assert_eq!(String::from_utf8(out).expect("utf-8"), "1700000000000\tuser\t\\N\t张三\\tx\tperson.read_sensitive\tperson\t42\tok\ta\\\\b\\nc\t\t127.0.0.1\n");
    }

    #[test]
    fn malformed_lines_are_refused() {
        let mut good = Vec::new();
        write(&mut good, &entry("n", "d", Some(1)));
        good.pop();
        assert!(parse(&good).is_some());
        let text = String::from_utf8(good).expect("utf-8");
        for bad in [
            text.replacen("\tn\t", "\tn\\x\t", 1),       // an escape COPY would read otherwise
            format!("{text}\textra"),                     // a twelfth field
            text.rsplit_once('\t').map(|(a, _)| a.to_string()).unwrap_or_default(), // ten fields
            text.replacen("1700000000000", "17e11", 1),  // a time that is no integer
            text.replacen("\t1\t", "\tone\t", 1),        // an actor id that is no integer
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(parse(b"\xff\xfe").is_none(), "not UTF-8");
    }

    #[test]
    fn json_lines_of_older_versions_still_read() {
        let line = br#"{"at":5,"actor_kind":"user","actor_id":null,"actor_name":"a\tb","action":"x","object_type":"t","object_id":"1","outcome":"ok","detail":"","operation_id":"","client_addr":""}"#;
        let row = parse(line).expect("json");
        assert_eq!((row.at, row.actor_name.as_ref(), row.actor_id), (5, "a\tb", None));
        assert!(!is_tabbed(line));
    }
}
