//! The audit trail's rows and their hash chain. Each row carries the hash of the row
//! before it, so an edited, removed or reordered row breaks the chain at that point.

use sha2::{Digest, Sha256};

/// The hash the first row chains from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, by whom, to what, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the epoch, UTC.
    pub at: i64,
    /// `user`, `token`, `system` or `anonymous`.
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    /// The username (or the name tried, for failed logins).
    pub actor_name: String,
    /// A stable verb, e.g. `login`, `read_sensitive`, `account.create`.
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    /// The stated reason (sensitive reads) or a short note.
    pub detail: String,
    pub operation_id: String,
    pub client_addr: String,
}

/// An audit row borrowed from its parts, written as the same JSON as [`AuditEntry`] (the
/// audit spool's line) without copying each field first.
#[derive(Debug, serde::Serialize)]
pub struct AuditEntryRef<'a> {
    pub at: i64,
    pub actor_kind: &'a str,
    pub actor_id: Option<i64>,
    pub actor_name: &'a str,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
    pub operation_id: &'a str,
    pub client_addr: &'a str,
}

impl AuditEntryRef<'_> {
    /// The row as the trail can store it, when that differs from this one: PostgreSQL's
    /// text cannot hold a NUL character, so each becomes U+FFFD on both backends (a row
    /// must read, and hash, the same wherever it is stored).
    pub fn to_storable(&self) -> Option<AuditEntry> {
        let fields = [self.actor_kind, self.actor_name, self.action, self.object_type, self.object_id, self.outcome, self.detail, self.operation_id, self.client_addr];
        if !fields.iter().any(|f| f.contains('\0')) {
            return None;
        }
        let clean = |f: &str| f.replace('\0', "\u{FFFD}");
        Some(AuditEntry {
            at: self.at,
            actor_kind: clean(self.actor_kind),
            actor_id: self.actor_id,
            actor_name: clean(self.actor_name),
            action: clean(self.action),
            object_type: clean(self.object_type),
            object_id: clean(self.object_id),
            outcome: clean(self.outcome),
            detail: clean(self.detail),
            operation_id: clean(self.operation_id),
            client_addr: clean(self.client_addr),
        })
    }
}

impl AuditEntry {
    /// The same row, borrowed.
    pub fn as_ref(&self) -> AuditEntryRef<'_> {
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

    /// The hash of this row chained to `prev`.
    pub fn chain_hash(&self, seq: i64, prev: &str) -> String {
        self.as_ref().chain_hash(seq, prev)
    }
}

impl AuditEntryRef<'_> {
    /// The hash of this row chained to `prev`: SHA-256 over the length-prefixed fields, so
    /// no choice of field contents can collide with another.
    pub fn chain_hash(&self, seq: i64, prev: &str) -> String {
        let mut out = [0u8; 64];
        self.chain_hash_into(seq, prev, &mut out);
        // Hex digits are ASCII.
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The same, as 64 lower-case hex digits written into `out` (no allocation; the audit
    /// importer hashes every row it moves).
    pub fn chain_hash_into(&self, seq: i64, prev: &str, out: &mut [u8; 64]) {
        let mut h = Sha256::new();
        let mut field = |f: &[u8]| {
            h.update((f.len() as u64).to_be_bytes());
            h.update(f);
        };
        let mut num = [0u8; 20];
        field(prev.as_bytes());
        field(decimal(seq, &mut num));
        field(decimal(self.at, &mut num));
        field(self.actor_kind.as_bytes());
        match self.actor_id {
            Some(id) => field(decimal(id, &mut num)),
            None => field(b""),
        }
        for f in [self.actor_name, self.action, self.object_type, self.object_id, self.outcome, self.detail, self.operation_id, self.client_addr] {
            field(f.as_bytes());
        }
        const D: &[u8; 16] = b"0123456789abcdef";
        for (k, b) in h.finalize().iter().enumerate() {
            out[2 * k] = D[(b >> 4) as usize];
            out[2 * k + 1] = D[(b & 15) as usize];
        }
    }
}

/// `n` in decimal, as `to_string` writes it, in `buf`.
pub fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// SHA-256 of a secret (session ids, API tokens), stored instead of the secret itself.
pub fn secret_digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_changes_the_hash() {
        let e = AuditEntry { at: 1, actor_kind: "user".into(), action: "login".into(), outcome: "ok".into(), ..Default::default() };
        let h = e.chain_hash(1, GENESIS);
        assert_eq!(h.len(), 64);
        assert_eq!(h, e.chain_hash(1, GENESIS), "deterministic");
        assert_ne!(h, e.chain_hash(2, GENESIS), "the sequence number is covered");
        let mut f = e.clone();
        f.outcome = "denied".into();
        assert_ne!(h, f.chain_hash(1, GENESIS));
        let mut g = e.clone();
        g.actor_name = "user".into();
        g.actor_kind = String::new();
        assert_ne!(h, g.chain_hash(1, GENESIS), "fields cannot slide into each other");
    }

    #[test]
    fn a_nul_is_replaced_and_nothing_else_changes() {
        let clean = AuditEntry { actor_name: "li.na".into(), detail: "走访\n说明".into(), ..Default::default() };
        assert!(clean.as_ref().to_storable().is_none());
        let with_nul = AuditEntry { at: 5, actor_id: Some(3), actor_name: "li\0na".into(), detail: "\0走访\0".into(), ..Default::default() };
        let stored = with_nul.as_ref().to_storable().expect("changed");
        assert_eq!(stored, AuditEntry { actor_name: "li\u{FFFD}na".into(), detail: "\u{FFFD}走访\u{FFFD}".into(), ..with_nul.clone() });
    }

    #[test]
    fn the_hash_of_stored_rows_never_changes() {
        // Trails already written were hashed this way: a change of the formula would make
        // `audit verify` report every one of their rows as broken.
        let e = AuditEntry {
            at: 1_795_936_808_492,
            actor_kind: "token".into(),
            actor_id: Some(-7),
            actor_name: "管理员".into(),
            action: "account.read".into(),
            object_type: "account".into(),
            object_id: "5".into(),
            outcome: "ok".into(),
            detail: "原因：核查 \"户籍\"\n".into(),
            operation_id: "5d3a0526-000eeb1f".into(),
            client_addr: "127.0.0.1".into(),
        };
        assert_eq!(e.chain_hash(i64::MIN, GENESIS), "7edd2a50f831052f3fd2e197d3745bfeeab98a612abf8e460ef0060cc604dd86");
        let s = AuditEntry { actor_kind: "system".into(), action: "audit.spool_unreadable".into(), object_type: "audit_spool".into(), object_id: "f".into(), outcome: "failed".into(), ..Default::default() };
        assert_eq!(s.as_ref().chain_hash(1, GENESIS), "3cf0be36f912d35cee7313fcc69e4c636302f8555deae225de49e23283f64875");
    }
}
