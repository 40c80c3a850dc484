//! The register's one-box search (issue 5 point 5): a derived in-memory index of persons,
//! houses and organisations, built from the store and kept current from the change log,
//! like [`crate::index::GridFollower`]. Readers take an `Arc` snapshot and never wait for a
//! rebuild.
//!
//! **What it finds.** Persons by name (2 or more characters: exact, prefix, contains), by
//! full pinyin or pinyin initials (every reading of a polyphonic character: 单 dan/shan,
//! 曾 zeng/ceng, 解 jie/xie …), by the suffix of their citizen ID number (4 to 18
//! characters, `X` included; a full number, or a 15-digit one upgraded, is an exact
//! lookup), by the suffix of their phone (4 or more digits), or by a fragment of the
//! address of the house they live in; houses by a fragment of their address;
//! organisations by a fragment of their name or credit code.
//!
//! **Shape.** A snapshot is an immutable [`Base`] (loaded from the store at start, and
//! again when the overlay grows large) plus a small [`Delta`] overlay of the persons,
//! houses and organisations changed since, which a query scans. An id in the overlay hides
//! its base entry. In the base:
//! - grids are ordinals of the sorted area codes, so a caller's scope (a code prefix) is a
//!   range of ordinals;
//! - names are interned (a district has far fewer distinct names than people): a bigram
//!   index over the distinct names finds the names containing the query, a sorted list of
//!   each name's pinyin spellings and initials finds pinyin prefixes, and each name lists
//!   its people in id order (compressed sparse rows of `u32` ordinals);
//! - ID numbers and phones are `u64` keys of their reversed characters, sorted, so a
//!   suffix is one range found by binary search;
//! - addresses, organisation names and credit codes are text arenas with bigram posting
//!   lists (delta-encoded varints), searched by the rarest bigram of the query and verified
//!   against the text, so matches are exact;
//! - each house lists the people living in it.
//!
//! **Ranking.** Exact (name, pinyin, initials, ID number, address …) before prefix and
//! suffix matches before fragments (contains); within a class fewer extra characters first;
//! then by kind and id. The index proposes candidates; the store reads the rows of the
//! best ones, checks them again (scope, and that they still match) and computes the
//! highlight spans on what it read, so a stale index can hide a row for a moment but never
//! show one out of scope or a match that is no longer true.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use domain::access::{mask_id_number, mask_phone};
use domain::calendar::Day;
use domain::register::CitizenId;
use pinyin::ToPinyinMulti;
use serde::Serialize;
use sqlx::Row;

use crate::StoreError;
use crate::db::Db;
use crate::register::RegisterDesk;

/// The most hits one search returns.
pub const MAX_LIMIT: usize = 100;
/// The default number of hits.
pub const DEFAULT_LIMIT: usize = 20;
/// The longest query (characters).
pub const MAX_QUERY: usize = 64;
/// Above this many overlay entries, the base is rebuilt from the store (in the
/// follower's task; readers keep the old snapshot meanwhile).
pub const COMPACT_AFTER: usize = 50_000;

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchKind {
    Person,
    House,
    Organisation,
}

impl SearchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchKind::Person => "person",
            SearchKind::House => "house",
            SearchKind::Organisation => "organisation",
        }
    }
    pub fn parse(s: &str) -> Option<SearchKind> {
        [SearchKind::Person, SearchKind::House, SearchKind::Organisation].into_iter().find(|k| k.as_str() == s)
    }
}

/// Which field a hit matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Name,
    Pinyin,
    Initials,
    CitizenId,
    Phone,
    Address,
    CreditCode,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Pinyin => "pinyin",
            Field::Initials => "initials",
            Field::CitizenId => "citizen_id",
            Field::Phone => "phone",
            Field::Address => "address",
            Field::CreditCode => "credit_code",
        }
    }
}

/// A highlighted part of one of a hit's shown fields, in characters (`start..end`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Highlight {
    /// `title`, `subtitle`, `citizen_id_masked`, `phone_masked` or `credit_code`.
    pub field: &'static str,
    pub start: usize,
    pub end: usize,
}

/// One hit as it leaves the store: ID numbers and phones masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    pub kind: SearchKind,
    pub id: i64,
    /// A person's name, a house's address, an organisation's name.
    pub title: String,
    /// A person's address, a house's use, an organisation's address.
    pub subtitle: String,
    /// The grid (area code) it lies in.
    pub grid: String,
    /// The field that matched best.
    pub matched: Field,
    /// Persons: `430503********1234`.
    pub citizen_id_masked: Option<String>,
    /// Persons: `138****5678`.
    pub phone_masked: Option<String>,
    /// Organisations (not personal data).
    pub credit_code: Option<String>,
    pub highlights: Vec<Highlight>,
}

// ---------------------------------------------------------------------------------------
// Text helpers

/// Fold full-width ASCII to half-width, drop whitespace and zero-width characters, and
/// upper-case ASCII letters; `map[i]` is the index (in characters) in the original of
/// the i-th character kept.
fn norm_map(s: &str) -> (Vec<char>, Vec<usize>) {
    let mut out = Vec::with_capacity(s.len());
    let mut map = Vec::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        if c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}') {
            continue;
        }
        out.push(c.to_ascii_uppercase());
        map.push(i);
    }
    (out, map)
}

fn norm(s: &str) -> String {
    norm_map(s).0.into_iter().collect()
}

/// Where `q` first occurs in `text` (both as characters).
fn find_chars(text: &[char], q: &[char]) -> Option<usize> {
    if q.is_empty() || q.len() > text.len() {
        return None;
    }
    (0..=text.len() - q.len()).find(|&i| text[i..i + q.len()] == *q)
}

/// Match class: 0 exact, 1 prefix or suffix, 2 fragment.
fn class_of(text: &[char], q: &[char]) -> Option<(u8, u32)> {
    let at = find_chars(text, q)?;
    let extra = (text.len() - q.len()) as u32;
    Some((if extra == 0 { 0 } else if at == 0 { 1 } else { 2 }, extra))
}

fn bigram(a: char, b: char) -> u64 {
    (u64::from(a as u32) << 32) | u64::from(b as u32)
}

/// The pinyin readings of each character of a name (plain, lower case, at most four per
/// character); a character without a reading (`·`, a latin letter) reads as nothing.
pub fn readings(name: &str) -> Vec<Vec<&'static str>> {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c.to_pinyin_multi() {
            Some(m) => {
                let mut v: Vec<&'static str> = Vec::new();
                for p in m {
                    let r = p.plain();
                    if !v.contains(&r) && v.len() < 4 {
                        v.push(r);
                    }
                }
                v
            }
            None => Vec::new(),
        })
        .collect()
}

/// The full spellings (at most 8) and the initials (at most 8) of a name.
fn spellings(rs: &[Vec<&'static str>]) -> (Vec<String>, Vec<String>) {
    let mut full = vec![String::new()];
    let mut ini = vec![String::new()];
    for r in rs.iter().filter(|r| !r.is_empty()) {
        let mut nf = Vec::new();
        let mut ni = Vec::new();
        for base in &full {
            for x in r {
                if nf.len() < 8 {
                    nf.push(format!("{base}{x}"));
                }
            }
        }
        for base in &ini {
            for x in r {
                let s = format!("{base}{}", &x[..1]);
                if ni.len() < 8 && !ni.contains(&s) {
                    ni.push(s);
                }
            }
        }
        full = nf;
        ini = ni;
    }
    full.retain(|s| !s.is_empty());
    ini.retain(|s| !s.is_empty());
    (full, ini)
}

/// How a lower-case latin query matches a name's readings: (field, class, characters of
/// the name it covers from the start). Full pinyin wins over initials when both match.
pub fn pinyin_match(rs: &[Vec<&'static str>], q: &str) -> Option<(Field, u8, usize)> {
    fn full(rs: &[Vec<&'static str>], i: usize, q: &str) -> Option<(bool, usize)> {
        if q.is_empty() {
            return Some((i == rs.len(), i));
        }
        let r = rs.get(i)?;
        if r.is_empty() {
            return full(rs, i + 1, q);
        }
        let mut best: Option<(bool, usize)> = None;
        for x in r {
            let got = if let Some(rest) = q.strip_prefix(x) {
                full(rs, i + 1, rest)
            } else if x.starts_with(q) {
                Some((false, i + 1))
            } else {
                None
            };
            if let Some(g) = got
                && best.is_none_or(|b| (g.0 && !b.0) || (g.0 == b.0 && g.1 > b.1))
            {
                best = Some(g);
            }
        }
        best
    }
    if q.len() < 2 || !q.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    if let Some((exact, covered)) = full(rs, 0, q) {
        return Some((Field::Pinyin, if exact { 0 } else { 1 }, covered));
    }
    let chars: Vec<&Vec<&str>> = rs.iter().filter(|r| !r.is_empty()).collect();
    if q.len() > chars.len() {
        return None;
    }
    let ok = q.bytes().zip(&chars).all(|(b, r)| r.iter().any(|x| x.as_bytes()[0] == b));
    ok.then_some((Field::Initials, if q.len() == chars.len() { 0 } else { 1 }, q.len()))
}

/// A citizen ID number's characters reversed, as a base-11 number (X = 10) of 18 places:
/// numeric order is the order of the reversed strings, so a suffix is a key range.
fn reversed_key(s: &str, places: u32, base: u64) -> Option<u64> {
    let mut k: u64 = 0;
    let mut n = 0;
    for c in s.chars().rev() {
        let d = match c {
            '0'..='9' => u64::from(c as u32 - '0' as u32),
            'X' | 'x' if base == 11 => 10,
            _ => return None,
        };
        k = k.checked_mul(base)?.checked_add(d)?;
        n += 1;
    }
    if n > places {
        return None;
    }
    for _ in n..places {
        k = k.checked_mul(base)?;
    }
    Some(k)
}

/// The key range `lo..=hi` of the values ending in `suffix`.
fn suffix_range(suffix: &str, places: u32, base: u64) -> Option<(u64, u64)> {
    let lo = reversed_key(suffix, places, base)?;
    let n = suffix.chars().count() as u32;
    let span = base.checked_pow(places - n)?;
    Some((lo, lo + span - 1))
}

fn id_key(s: &str) -> Option<u64> {
    (s.len() == 18).then(|| reversed_key(s, 18, 11)).flatten()
}

fn phone_key(s: &str) -> Option<u64> {
    (s.len() == 11).then(|| reversed_key(s, 11, 10)).flatten()
}

// ---------------------------------------------------------------------------------------
// Building blocks

/// Texts in one arena, with a bigram posting list (delta-encoded varints) per pair of
/// adjacent characters.
#[derive(Default)]
struct TextIndex {
    arena: String,
    ends: Vec<u32>,
    grams: HashMap<u64, Posting>,
}

#[derive(Default)]
struct Posting {
    count: u32,
    last: u32,
    bytes: Vec<u8>,
}

impl Posting {
    fn push(&mut self, ord: u32) {
        let mut d = if self.count == 0 { ord } else { ord - self.last };
        loop {
            let b = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                self.bytes.push(b);
                break;
            }
            self.bytes.push(b | 0x80);
        }
        self.count += 1;
        self.last = ord;
    }
    fn for_each(&self, mut f: impl FnMut(u32)) {
        let mut cur: u32 = 0;
        let mut v: u32 = 0;
        let mut shift = 0;
        let mut first = true;
        for &b in &self.bytes {
            v |= u32::from(b & 0x7f) << shift;
            if b & 0x80 != 0 {
                shift += 7;
                continue;
            }
            cur = if first { v } else { cur + v };
            first = false;
            f(cur);
            v = 0;
            shift = 0;
        }
    }
}

impl TextIndex {
    /// Add the next text (already normalised); its ordinal is the number pushed before.
    fn push(&mut self, text: &str) {
        let ord = self.ends.len() as u32;
        self.arena.push_str(text);
        self.ends.push(self.arena.len() as u32);
        let chars: Vec<char> = text.chars().collect();
        let mut seen: Vec<u64> = chars.windows(2).map(|w| bigram(w[0], w[1])).collect();
        seen.sort_unstable();
        seen.dedup();
        for g in seen {
            self.grams.entry(g).or_default().push(ord);
        }
    }

    fn finish(&mut self) {
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
        for p in self.grams.values_mut() {
            p.bytes.shrink_to_fit();
        }
    }

    fn text(&self, ord: u32) -> &str {
        let end = self.ends[ord as usize] as usize;
        let start = if ord == 0 { 0 } else { self.ends[ord as usize - 1] as usize };
        &self.arena[start..end]
    }

    /// Every text containing `q` (2 characters or more): (ordinal, class, extra).
    fn find(&self, q: &[char], mut keep: impl FnMut(u32) -> bool, mut f: impl FnMut(u32, u8, u32)) {
        if q.len() < 2 {
            return;
        }
        let mut rarest: Option<&Posting> = None;
        for w in q.windows(2) {
            match self.grams.get(&bigram(w[0], w[1])) {
                None => return,
                Some(p) if rarest.is_none_or(|r| p.count < r.count) => rarest = Some(p),
                Some(_) => {}
            }
        }
        let Some(p) = rarest else { return };
        let qs: String = q.iter().collect();
        p.for_each(|ord| {
            if !keep(ord) {
                return;
            }
            let t = self.text(ord);
            if let Some(at) = t.find(&qs) {
                let extra = (t.chars().count() - q.len()) as u32;
                f(ord, if extra == 0 { 0 } else if at == 0 { 1 } else { 2 }, extra);
            }
        });
    }

    fn bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 4 + self.grams.values().map(|p| p.bytes.capacity() + 32).sum::<usize>()
    }
}

/// Compressed sparse rows: for each key, a list of `u32` ordinals.
#[derive(Default)]
struct Csr {
    offsets: Vec<u32>,
    items: Vec<u32>,
}

impl Csr {
    /// From (key, item) pairs given in item order; keys below `keys`.
    fn build(keys: usize, pairs: impl Iterator<Item = (u32, u32)> + Clone) -> Csr {
        let mut counts = vec![0u32; keys + 1];
        for (k, _) in pairs.clone() {
            counts[k as usize + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let mut fill = counts.clone();
        let mut items = vec![0u32; counts[keys] as usize];
        for (k, item) in pairs {
            items[fill[k as usize] as usize] = item;
            fill[k as usize] += 1;
        }
        Csr { offsets: counts, items }
    }
    fn get(&self, key: u32) -> &[u32] {
        let k = key as usize;
        if k + 1 >= self.offsets.len() {
            return &[];
        }
        &self.items[self.offsets[k] as usize..self.offsets[k + 1] as usize]
    }
}

const NONE: u32 = u32::MAX;

/// The immutable part of a snapshot.
#[derive(Default)]
pub struct Base {
    /// Every area code, sorted: a scope is a range of these ordinals.
    areas: Vec<String>,
    // persons
    p_ids: Vec<i64>,
    p_area: Vec<u32>,
    p_name: Vec<u32>,
    p_house: Vec<u32>,
    id_keys: Vec<u64>,
    id_ords: Vec<u32>,
    phone_keys: Vec<u64>,
    phone_ords: Vec<u32>,
    by_name: Csr,
    by_house: Csr,
    // distinct names
    names: TextIndex,
    name_ids: HashMap<String, u32>,
    /// (spelling, name id), sorted: full pinyin and initials.
    full: Vec<(Box<str>, u32)>,
    initials: Vec<(Box<str>, u32)>,
    // houses
    h_ids: Vec<i64>,
    h_area: Vec<u32>,
    addresses: TextIndex,
    // organisations
    o_ids: Vec<i64>,
    o_area: Vec<u32>,
    o_names: TextIndex,
    o_codes: TextIndex,
}

/// A person in the overlay.
#[derive(Clone)]
struct PDoc {
    name: Vec<char>,
    area: String,
    house_id: Option<i64>,
    citizen_id: String,
    phone: Option<String>,
    readings: Vec<Vec<&'static str>>,
}

#[derive(Clone)]
struct HDoc {
    address: Vec<char>,
    area: String,
}

#[derive(Clone)]
struct ODoc {
    name: Vec<char>,
    code: Vec<char>,
    area: String,
}

/// What changed since the base was built (`None`: deleted).
#[derive(Clone, Default)]
struct Delta {
    persons: HashMap<i64, Option<PDoc>>,
    houses: HashMap<i64, Option<HDoc>>,
    orgs: HashMap<i64, Option<ODoc>>,
}

impl Delta {
    fn len(&self) -> usize {
        self.persons.len() + self.houses.len() + self.orgs.len()
    }
}

/// One consistent view: the base and the overlay.
pub struct Snapshot {
    base: Arc<Base>,
    delta: Arc<Delta>,
    /// The change-log sequence number it reflects.
    pub seq: i64,
}

/// Sizes of the index, for the benchmark and the logs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IndexStats {
    pub persons: usize,
    pub houses: usize,
    pub organisations: usize,
    pub distinct_names: usize,
    pub overlay: usize,
    /// Approximate heap bytes of the base.
    pub bytes: usize,
}

// ---------------------------------------------------------------------------------------
// Loading

const PAGE: i64 = 50_000;

impl Base {
    /// Read every house, person and organisation of the store.
    pub async fn load(db: &Db) -> Result<Base, StoreError> {
        let mut b = Base::default();
        let rows = sqlx::query("SELECT code FROM areas ORDER BY code").fetch_all(&db.pool).await?;
        b.areas = rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?;
        b.areas.sort();
        // Houses.
        let mut after = 0i64;
        loop {
            let rows = sqlx::query("SELECT id, address, area_code FROM houses WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(PAGE)
                .fetch_all(&db.pool)
                .await?;
            for r in &rows {
                let id: i64 = r.try_get(0)?;
                let address: String = r.try_get(1)?;
                let area: String = r.try_get(2)?;
                b.h_ids.push(id);
                let a = b.area_ord(&area);
                b.h_area.push(a);
                b.addresses.push(&norm(&address));
                after = id;
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        b.addresses.finish();
        // Persons.
        let mut ids = Vec::new();
        let mut phones = Vec::new();
        let mut after = 0i64;
        loop {
            let rows = sqlx::query("SELECT id, citizen_id, name, phone, house_id, area_code FROM persons WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(PAGE)
                .fetch_all(&db.pool)
                .await?;
            for r in &rows {
                let id: i64 = r.try_get(0)?;
                let cid: String = r.try_get(1)?;
                let name: String = r.try_get(2)?;
                let phone: Option<String> = r.try_get(3)?;
                let house: Option<i64> = r.try_get(4)?;
                let area: String = r.try_get(5)?;
                let ord = b.p_ids.len() as u32;
                b.p_ids.push(id);
                let a = b.area_ord(&area);
                b.p_area.push(a);
                let name_id = b.intern(&norm(&name));
                b.p_name.push(name_id);
                b.p_house.push(house.and_then(|h| b.h_ids.binary_search(&h).ok()).map_or(NONE, |o| o as u32));
                if let Some(k) = id_key(&cid) {
                    ids.push((k, ord));
                }
                if let Some(k) = phone.as_deref().and_then(phone_key) {
                    phones.push((k, ord));
                }
                after = id;
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        ids.sort_unstable();
        phones.sort_unstable();
        (b.id_keys, b.id_ords) = ids.into_iter().unzip();
        (b.phone_keys, b.phone_ords) = phones.into_iter().unzip();
        b.by_name = Csr::build(b.names.ends.len(), b.p_name.iter().enumerate().map(|(i, &n)| (n, i as u32)));
        b.by_house = Csr::build(
            b.h_ids.len(),
            b.p_house.iter().enumerate().filter(|(_, h)| **h != NONE).map(|(i, &h)| (h, i as u32)),
        );
        b.names.finish();
        b.full.sort_unstable();
        b.initials.sort_unstable();
        b.full.shrink_to_fit();
        b.initials.shrink_to_fit();
        // Organisations.
        let rows = sqlx::query("SELECT id, name, credit_code, area_code FROM organisations ORDER BY id").fetch_all(&db.pool).await?;
        for r in &rows {
            let area: String = r.try_get(3)?;
            b.o_ids.push(r.try_get(0)?);
            let a = b.area_ord(&area);
            b.o_area.push(a);
            b.o_names.push(&norm(&r.try_get::<String, _>(1)?));
            b.o_codes.push(&norm(&r.try_get::<String, _>(2)?));
        }
        b.o_names.finish();
        b.o_codes.finish();
        Ok(b)
    }

    fn area_ord(&self, code: &str) -> u32 {
        match self.areas.binary_search_by(|a| a.as_str().cmp(code)) {
            Ok(i) => i as u32,
            // Every row's area exists (a foreign key); this keeps a stray one findable by
            // nobody rather than by the wrong scope.
            Err(_) => NONE,
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(name) {
            return id;
        }
        let id = self.names.ends.len() as u32;
        self.names.push(name);
        self.name_ids.insert(name.to_string(), id);
        let (full, ini) = spellings(&readings(name));
        for f in full {
            self.full.push((f.into_boxed_str(), id));
        }
        for i in ini {
            self.initials.push((i.into_boxed_str(), id));
        }
        id
    }

    /// The ordinals of the areas under `prefix`.
    fn scope(&self, prefix: &str) -> (u32, u32) {
        let lo = self.areas.partition_point(|a| a.as_str() < prefix);
        let hi = lo + self.areas[lo..].partition_point(|a| a.starts_with(prefix));
        (lo as u32, hi as u32)
    }

    fn stats(&self, overlay: usize) -> IndexStats {
        let bytes = self.p_ids.capacity() * 8
            + (self.p_area.capacity() + self.p_name.capacity() + self.p_house.capacity()) * 4
            + (self.id_keys.capacity() + self.phone_keys.capacity()) * 8
            + (self.id_ords.capacity() + self.phone_ords.capacity()) * 4
            + (self.by_name.items.capacity() + self.by_name.offsets.capacity()) * 4
            + (self.by_house.items.capacity() + self.by_house.offsets.capacity()) * 4
            + self.names.bytes()
            + self.name_ids.capacity() * 40
            + self.full.iter().chain(&self.initials).map(|(s, _)| s.len() + 24).sum::<usize>()
            + self.h_ids.capacity() * 8
            + self.h_area.capacity() * 4
            + self.addresses.bytes()
            + self.o_ids.capacity() * 12
            + self.o_names.bytes()
            + self.o_codes.bytes();
        IndexStats {
            persons: self.p_ids.len(),
            houses: self.h_ids.len(),
            organisations: self.o_ids.len(),
            distinct_names: self.names.ends.len(),
            overlay,
            bytes,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Queries

/// A query read from the box.
#[derive(Debug, Clone)]
pub struct Query {
    /// Normalised (see `norm`), as characters.
    chars: Vec<char>,
    /// Lower-case latin letters only: a pinyin query.
    pinyin: Option<String>,
    /// Digits (and a final X): an ID number suffix of 4 to 18 characters.
    id_suffix: Option<String>,
    /// Digits only, 4 to 11: a phone suffix.
    phone_suffix: Option<String>,
    /// Any non-ASCII character: a name query.
    cjk: bool,
    /// Only digits (and a final X): a number (ID or phone suffix, credit code), not an
    /// address or a name fragment.
    number: bool,
}

impl Query {
    /// Read a query: 2 to 64 characters once spaces are dropped. A 15-digit ID number is
    /// upgraded to its 18 characters.
    pub fn parse(raw: &str, today: Day) -> Result<Query, StoreError> {
        let (chars, _) = norm_map(raw);
        let n = chars.len();
        if n < 2 {
            return Err(StoreError::Invalid { code: "query_too_short", message: "a search needs at least 2 characters".into() });
        }
        if n > MAX_QUERY {
            return Err(StoreError::Invalid { code: "query_too_long", message: format!("a search has at most {MAX_QUERY} characters") });
        }
        let text: String = chars.iter().collect();
        let digits = chars.iter().all(char::is_ascii_digit);
        let id_like = chars[..n - 1].iter().all(char::is_ascii_digit) && (chars[n - 1].is_ascii_digit() || chars[n - 1] == 'X');
        let mut id_suffix = (id_like && (4..=18).contains(&n)).then(|| text.clone());
        if digits && n == 15
            && let Ok(p) = CitizenId::parse(&text, today)
        {
            id_suffix = Some(p.value.expose().to_string());
        }
        let phone_suffix = (digits && (4..=11).contains(&n)).then(|| text.clone());
        let pinyin = chars.iter().all(char::is_ascii_alphabetic).then(|| text.to_ascii_lowercase());
        let cjk = chars.iter().any(|c| !c.is_ascii());
        Ok(Query { chars, pinyin, id_suffix, phone_suffix, cjk, number: id_like })
    }

    /// The query as it may be written to the audit trail: a long run of digits (an ID
    /// number or phone, or most of one) keeps only its last four characters.
    pub fn audit_text(&self) -> String {
        let text: String = self.chars.iter().collect();
        let digits = self.chars.iter().filter(|c| c.is_ascii_digit()).count();
        if digits >= 7 {
            let n = self.chars.len();
            let tail: String = self.chars[n.saturating_sub(4)..].iter().collect();
            format!("{}{tail}", "*".repeat(n.saturating_sub(4)))
        } else {
            text
        }
    }
}

/// A candidate hit, before the row is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub class: u8,
    pub extra: u32,
    pub kind: SearchKind,
    pub id: i64,
    pub field: Field,
}

impl Candidate {
    fn key(&self) -> (u8, u32, SearchKind, i64) {
        (self.class, self.extra, self.kind, self.id)
    }
}

/// Take from groups of keys (each with its class and extra, sorted) the first `k`
/// ordinals in rank order; each key's list is in id order.
fn take_groups<'a>(
    mut groups: Vec<(u8, u32, u32)>,
    list: impl Fn(u32) -> &'a [u32],
    ok: impl Fn(u32) -> bool,
    k: usize,
    mut out: impl FnMut(u32, u8, u32),
) {
    // A key listed more than once (a name with several spellings) counts at its best.
    groups.sort_unstable_by_key(|g| (g.2, g.0, g.1));
    groups.dedup_by_key(|g| g.2);
    groups.sort_unstable();
    let mut taken = 0;
    let mut i = 0;
    while i < groups.len() && taken < k {
        let (class, extra) = (groups[i].0, groups[i].1);
        let mut j = i;
        let mut run: Vec<u32> = Vec::new();
        while j < groups.len() && groups[j].0 == class && groups[j].1 == extra {
            run.extend(list(groups[j].2).iter().copied().filter(|&o| ok(o)).take(k - taken));
            j += 1;
        }
        run.sort_unstable();
        for o in run.into_iter().take(k - taken) {
            out(o, class, extra);
            taken += 1;
        }
        i = j;
    }
}

impl Snapshot {
    pub fn stats(&self) -> IndexStats {
        self.base.stats(self.delta.len())
    }

    /// The best `k` candidates in the scope of `prefix` (an area code), of one kind or all.
    pub fn search(&self, q: &Query, prefix: &str, kind: Option<SearchKind>, k: usize) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = Vec::new();
        let want = |x: SearchKind| kind.is_none_or(|k| k == x);
        if want(SearchKind::Person) {
            self.persons(q, prefix, k, &mut out);
        }
        if want(SearchKind::House) {
            self.houses(q, prefix, k, &mut out);
        }
        if want(SearchKind::Organisation) {
            self.orgs(q, prefix, k, &mut out);
        }
        out.sort_unstable_by_key(Candidate::key);
        let mut seen = std::collections::HashSet::new();
        out.retain(|c| seen.insert((c.kind, c.id)));
        out.truncate(k);
        out
    }

    fn persons(&self, q: &Query, prefix: &str, k: usize, out: &mut Vec<Candidate>) {
        let b = &*self.base;
        let d = &*self.delta;
        let (lo, hi) = b.scope(prefix);
        let ok = |o: u32| {
            let a = b.p_area[o as usize];
            a >= lo && a < hi && !d.persons.contains_key(&b.p_ids[o as usize])
        };
        let push = |out: &mut Vec<Candidate>, o: u32, class: u8, extra: u32, field: Field| {
            out.push(Candidate { class, extra, kind: SearchKind::Person, id: b.p_ids[o as usize], field });
        };
        // Names.
        if q.cjk {
            let mut groups = Vec::new();
            b.names.find(&q.chars, |_| true, |name, class, extra| groups.push((class, extra, name)));
            take_groups(groups, |n| b.by_name.get(n), ok, k, |o, c, e| push(out, o, c, e, Field::Name));
        }
        // Pinyin.
        if let Some(p) = &q.pinyin {
            for (list, field) in [(&b.full, Field::Pinyin), (&b.initials, Field::Initials)] {
                let start = list.partition_point(|(s, _)| &**s < p.as_str());
                let mut groups = Vec::new();
                for (s, name) in list[start..].iter().take_while(|(s, _)| s.starts_with(p.as_str())) {
                    // Fewer letters beyond the query first.
                    groups.push((u8::from(s.len() != p.len()), (s.len() - p.len()) as u32, *name));
                }
                take_groups(groups, |n| b.by_name.get(n), ok, k, |o, c, e| push(out, o, c, e, field));
            }
        }
        // ID number and phone suffixes.
        let mut suffix = |keys: &[u64], ords: &[u32], s: &str, places: u32, base: u64, field: Field| {
            let Some((klo, khi)) = suffix_range(s, places, base) else { return };
            let from = keys.partition_point(|&x| x < klo);
            let to = keys.partition_point(|&x| x <= khi);
            let mut hits: Vec<u32> = ords[from..to].iter().copied().filter(|&o| ok(o)).collect();
            hits.sort_unstable();
            let n = s.chars().count() as u32;
            for o in hits.into_iter().take(k) {
                push(out, o, u8::from(n != places), places - n, field);
            }
        };
        if let Some(s) = &q.id_suffix {
            suffix(&b.id_keys, &b.id_ords, s, 18, 11, Field::CitizenId);
        }
        if let Some(s) = &q.phone_suffix {
            suffix(&b.phone_keys, &b.phone_ords, s, 11, 10, Field::Phone);
        }
        // Addresses: the houses that match, then the people living in them. A number
        // (digits only) is an ID or phone suffix, not an address fragment: digit pairs are
        // in nearly every address, and a search for one would scan them all.
        if q.number {
            self.overlay_persons(q, prefix, out);
            return;
        }
        let mut groups = Vec::new();
        b.addresses.find(&q.chars, |h| !d.houses.contains_key(&b.h_ids[h as usize]), |h, class, extra| groups.push((class, extra, h)));
        take_groups(groups, |h| b.by_house.get(h), ok, k, |o, c, e| push(out, o, c, e, Field::Address));
        // Base persons living in changed houses whose new address matches.
        for (hid, doc) in &d.houses {
            let Some(doc) = doc else { continue };
            let Some((class, extra)) = class_of(&doc.address, &q.chars) else { continue };
            if let Ok(h) = b.h_ids.binary_search(hid) {
                for &o in b.by_house.get(h as u32) {
                    if ok(o) {
                        push(out, o, class, extra, Field::Address);
                    }
                }
            }
        }
        self.overlay_persons(q, prefix, out);
    }

    /// The overlay's persons that match.
    fn overlay_persons(&self, q: &Query, prefix: &str, out: &mut Vec<Candidate>) {
        let d = &*self.delta;
        for (id, doc) in &d.persons {
            let Some(p) = doc else { continue };
            if !p.area.starts_with(prefix) {
                continue;
            }
            let mut best: Option<(u8, u32, Field)> = None;
            let mut offer = |c: u8, e: u32, f: Field| {
                if best.is_none_or(|b| (c, e) < (b.0, b.1)) {
                    best = Some((c, e, f));
                }
            };
            if q.cjk
                && let Some((c, e)) = class_of(&p.name, &q.chars)
            {
                offer(c, e, Field::Name);
            }
            if let Some(s) = &q.pinyin
                && let Some((f, c, cov)) = pinyin_match(&p.readings, s)
            {
                offer(c, (p.readings.iter().filter(|r| !r.is_empty()).count().saturating_sub(cov)) as u32, f);
            }
            if let Some(s) = &q.id_suffix
                && p.citizen_id.ends_with(s.as_str())
            {
                offer(u8::from(s.len() != 18), (18 - s.len()) as u32, Field::CitizenId);
            }
            if let Some(s) = &q.phone_suffix
                && p.phone.as_deref().is_some_and(|x| x.ends_with(s.as_str()))
            {
                offer(u8::from(s.len() != 11), (11 - s.len()) as u32, Field::Phone);
            }
            if !q.number
                && let Some(addr) = p.house_id.and_then(|h| self.address_of(h))
                && let Some((c, e)) = class_of(&addr, &q.chars)
            {
                offer(c, e, Field::Address);
            }
            if let Some((class, extra, field)) = best {
                out.push(Candidate { class, extra, kind: SearchKind::Person, id: *id, field });
            }
        }
    }

    /// The current address of a house (overlay first), normalised.
    fn address_of(&self, house: i64) -> Option<Vec<char>> {
        match self.delta.houses.get(&house) {
            Some(Some(h)) => Some(h.address.clone()),
            Some(None) => None,
            None => {
                let b = &*self.base;
                b.h_ids.binary_search(&house).ok().map(|o| b.addresses.text(o as u32).chars().collect())
            }
        }
    }

    fn houses(&self, q: &Query, prefix: &str, k: usize, out: &mut Vec<Candidate>) {
        if q.number {
            return;
        }
        let b = &*self.base;
        let d = &*self.delta;
        let (lo, hi) = b.scope(prefix);
        let mut found: Vec<Candidate> = Vec::new();
        b.addresses.find(
            &q.chars,
            |h| {
                let a = b.h_area[h as usize];
                a >= lo && a < hi && !d.houses.contains_key(&b.h_ids[h as usize])
            },
            |h, class, extra| found.push(Candidate { class, extra, kind: SearchKind::House, id: b.h_ids[h as usize], field: Field::Address }),
        );
        for (id, doc) in &d.houses {
            if let Some(h) = doc
                && h.area.starts_with(prefix)
                && let Some((class, extra)) = class_of(&h.address, &q.chars)
            {
                found.push(Candidate { class, extra, kind: SearchKind::House, id: *id, field: Field::Address });
            }
        }
        found.sort_unstable_by_key(Candidate::key);
        found.truncate(k);
        out.extend(found);
    }

    fn orgs(&self, q: &Query, prefix: &str, k: usize, out: &mut Vec<Candidate>) {
        let b = &*self.base;
        let d = &*self.delta;
        let (lo, hi) = b.scope(prefix);
        let ok = |o: u32| {
            let a = b.o_area[o as usize];
            a >= lo && a < hi && !d.orgs.contains_key(&b.o_ids[o as usize])
        };
        let mut found: Vec<Candidate> = Vec::new();
        for (index, field) in [(&b.o_names, Field::Name), (&b.o_codes, Field::CreditCode)] {
            if q.number && field == Field::Name {
                continue;
            }
            index.find(&q.chars, ok, |o, class, extra| {
                found.push(Candidate { class, extra, kind: SearchKind::Organisation, id: b.o_ids[o as usize], field });
            });
        }
        for (id, doc) in &d.orgs {
            let Some(o) = doc else { continue };
            if !o.area.starts_with(prefix) {
                continue;
            }
            for (text, field) in [(&o.name, Field::Name), (&o.code, Field::CreditCode)] {
                if q.number && field == Field::Name {
                    continue;
                }
                if let Some((class, extra)) = class_of(text, &q.chars) {
                    found.push(Candidate { class, extra, kind: SearchKind::Organisation, id: *id, field });
                }
            }
        }
        found.sort_unstable_by_key(Candidate::key);
        found.truncate(k);
        out.extend(found);
    }
}

// ---------------------------------------------------------------------------------------
// Following the change log

/// Follows the change log and keeps a [`Snapshot`] of the register for searching.
pub struct SearchIndex {
    state: tokio::sync::Mutex<i64>,
    current: RwLock<Arc<Snapshot>>,
    rebuilding: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SearchIndex({:?})", self.snapshot().stats())
    }
}

impl SearchIndex {
    /// Build from the store as it is now.
    pub async fn start(db: &Db) -> Result<SearchIndex, StoreError> {
        // The sequence first: a change that lands during the load is applied again.
        let seq = db.last_change_seq().await?;
        let base = Base::load(db).await?;
        Ok(SearchIndex {
            state: tokio::sync::Mutex::new(seq),
            current: RwLock::new(Arc::new(Snapshot { base: Arc::new(base), delta: Arc::new(Delta::default()), seq })),
            rebuilding: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The index as of the last refresh.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn publish(&self, s: Snapshot) {
        let s = Arc::new(s);
        match self.current.write() {
            Ok(mut g) => *g = s,
            Err(p) => *p.into_inner() = s,
        }
    }

    /// Apply every register change logged since the last refresh to the overlay. Returns
    /// how many entities were re-read. A backlog of more than [`BULK`] register changes
    /// (an import, a demo) rebuilds the base instead of re-reading rows one by one.
    pub async fn refresh(&self, db: &Db) -> Result<usize, StoreError> {
        let mut last = self.state.lock().await;
        let cur = self.snapshot();
        let mut delta: Option<Delta> = None;
        let mut applied = 0;
        loop {
            let batch = db.changes_since(*last, 5000).await?;
            let Some(end) = batch.last().map(|c| c.seq) else { break };
            let keys = register_keys(&batch);
            if keys.len() > BULK {
                drop(last);
                self.compact(db).await?;
                return Ok(applied + keys.len());
            }
            let d = delta.get_or_insert_with(|| (*cur.delta).clone());
            for (entity, id) in &keys {
                reload(db, d, entity, *id).await?;
            }
            applied += keys.len();
            *last = end;
        }
        if let Some(d) = delta {
            self.publish(Snapshot { base: cur.base.clone(), delta: Arc::new(d), seq: *last });
        } else if *last != cur.seq {
            self.publish(Snapshot { base: cur.base.clone(), delta: cur.delta.clone(), seq: *last });
        }
        Ok(applied)
    }

    /// Whether the base is being rebuilt (a search then answers from the snapshot it has).
    pub fn is_rebuilding(&self) -> bool {
        self.rebuilding.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether the overlay has grown enough that the base should be rebuilt.
    pub fn wants_compaction(&self) -> bool {
        self.snapshot().delta.len() > COMPACT_AFTER
    }

    /// Rebuild the base from the store without holding the follower's lock (readers and
    /// searches keep the old snapshot meanwhile), then re-read what changed during the
    /// rebuild into a fresh overlay. One rebuild at a time; a second caller returns at once.
    pub async fn compact(&self, db: &Db) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.rebuilding.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Ok(());
        }
        let r = self.compact_now(db).await;
        self.rebuilding.store(false, Ordering::Release);
        r
    }

    async fn compact_now(&self, db: &Db) -> Result<(), StoreError> {
        let seq = db.last_change_seq().await?;
        let base = Arc::new(Base::load(db).await?);
        let mut last = self.state.lock().await;
        let mut d = Delta::default();
        let mut from = seq;
        loop {
            let batch = db.changes_since(from, 5000).await?;
            let Some(end) = batch.last().map(|c| c.seq) else { break };
            for (entity, id) in register_keys(&batch) {
                reload(db, &mut d, entity, id).await?;
            }
            from = end;
        }
        *last = from.max(*last);
        self.publish(Snapshot { base, delta: Arc::new(d), seq: *last });
        Ok(())
    }
}

/// Above this many register changes in one batch of the log, the base is rebuilt.
pub const BULK: usize = 2_000;

/// The persons, houses and organisations a batch of changes names, each once.
fn register_keys(batch: &[crate::changes::Change]) -> Vec<(&'static str, i64)> {
    let mut keys: Vec<(&'static str, i64)> = batch
        .iter()
        .filter_map(|c| {
            let entity = match c.entity.as_str() {
                "person" => "person",
                "house" => "house",
                "organisation" => "organisation",
                _ => return None,
            };
            c.key.parse::<i64>().ok().map(|id| (entity, id))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Read one entity's current row into the overlay (`None` when it no longer exists).
async fn reload(db: &Db, d: &mut Delta, entity: &str, id: i64) -> Result<(), StoreError> {
    match entity {
        "person" => {
            let row = sqlx::query("SELECT citizen_id, name, phone, house_id, area_code FROM persons WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
            let doc = match row {
                Some(r) => {
                    let name: String = r.try_get(1)?;
                    Some(PDoc {
                        name: norm(&name).chars().collect(),
                        readings: readings(&norm(&name)),
                        citizen_id: r.try_get(0)?,
                        phone: r.try_get(2)?,
                        house_id: r.try_get(3)?,
                        area: r.try_get(4)?,
                    })
                }
                None => None,
            };
            d.persons.insert(id, doc);
        }
        "house" => {
            let row = sqlx::query("SELECT address, area_code FROM houses WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
            let doc = match row {
                Some(r) => Some(HDoc { address: norm(&r.try_get::<String, _>(0)?).chars().collect(), area: r.try_get(1)? }),
                None => None,
            };
            d.houses.insert(id, doc);
        }
        _ => {
            let row = sqlx::query("SELECT name, credit_code, area_code FROM organisations WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
            let doc = match row {
                Some(r) => Some(ODoc {
                    name: norm(&r.try_get::<String, _>(0)?).chars().collect(),
                    code: norm(&r.try_get::<String, _>(1)?).chars().collect(),
                    area: r.try_get(2)?,
                }),
                None => None,
            };
            d.orgs.insert(id, doc);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The desk's search

/// The span of `q` in `text`, mapped back to the original's characters.
fn span_in(original: &str, q: &[char]) -> Option<(usize, usize)> {
    let (chars, map) = norm_map(original);
    let at = find_chars(&chars, q)?;
    Some((map[at], map[at + q.len() - 1] + 1))
}

/// The visible characters of a masked value (`visible` ranges) that a suffix of `n` of
/// its `len` characters covers.
fn visible_spans(field: &'static str, len: usize, n: usize, visible: &[(usize, usize)]) -> Vec<Highlight> {
    let from = len.saturating_sub(n);
    visible
        .iter()
        .filter_map(|&(a, b)| {
            let s = a.max(from);
            (s < b).then_some(Highlight { field, start: s, end: b })
        })
        .collect()
}

impl RegisterDesk<'_> {
    /// Search the register in the caller's scope (see the module's documentation). The
    /// index is brought up to the change log first; the best candidates' rows are read
    /// from the store, checked again and masked. One audit row per search records the
    /// query (a long number masked) and how many hits it gave.
    pub async fn search(&self, index: &SearchIndex, raw: &str, kind: Option<SearchKind>, limit: usize) -> Result<Vec<SearchHit>, StoreError> {
        let db = self.scoped().db;
        let q = Query::parse(raw, Day::of_instant(db.now_ms()))?;
        let limit = if limit == 0 { DEFAULT_LIMIT } else { limit.min(MAX_LIMIT) };
        let prefix = self.scoped().principal().area.as_str().to_string();
        // The rows are read together with the change log's newest sequence number: when
        // the log has moved past the snapshot (a write of this or another server that the
        // follower has not applied yet), the index catches up and the search runs again.
        // So a write is found by the next search, at the cost of no extra query when
        // nothing changed.
        let mut attempt = 0;
        let hits = loop {
            let snap = index.snapshot();
            // A few more than asked: a candidate whose row changed since is dropped.
            let cands = snap.search(&q, &prefix, kind, limit + 5);
            let (hits, seq) = self.hits(&q, &cands, limit).await?;
            if seq <= snap.seq || attempt == 1 || index.is_rebuilding() {
                break hits;
            }
            index.refresh(db).await?;
            attempt += 1;
        };
        let detail = format!("q={} kind={} hits={}", q.audit_text(), kind.map_or("all", SearchKind::as_str), hits.len());
        self.audit_read("register.search", "register", "", &detail).await?;
        Ok(hits)
    }

    /// Read, check and mask the candidates' rows, in the candidates' order.
    async fn hits(&self, q: &Query, cands: &[Candidate], limit: usize) -> Result<(Vec<SearchHit>, i64), StoreError> {
        let db = self.scoped().db;
        let ids = |k: SearchKind| -> String {
            let v: Vec<String> = cands.iter().filter(|c| c.kind == k).map(|c| c.id.to_string()).collect();
            v.join(",")
        };
        // One query for every kind (one round trip): kind, id, title, subtitle, grid, then
        // the ID number, phone and credit code, and the change log's newest seq.
        const SEQ: &str = "(SELECT COALESCE(MAX(seq), 0) FROM change_log)";
        let mut parts: Vec<String> = Vec::new();
        let persons = ids(SearchKind::Person);
        if !persons.is_empty() {
            parts.push(format!(
                "SELECT 'person' AS kind, p.id, p.name AS title, COALESCE(h.address, '') AS subtitle, p.area_code AS grid, p.citizen_id AS cid, \
                 p.phone AS phone, CAST(NULL AS TEXT) AS code, {SEQ} AS log_seq FROM persons p LEFT JOIN houses h ON h.id = p.house_id WHERE p.id IN ({persons})"
            ));
        }
        let houses = ids(SearchKind::House);
        if !houses.is_empty() {
            parts.push(format!(
                "SELECT 'house' AS kind, id, address AS title, house_use AS subtitle, area_code AS grid, CAST(NULL AS TEXT) AS cid, \
                 CAST(NULL AS TEXT) AS phone, CAST(NULL AS TEXT) AS code, {SEQ} AS log_seq FROM houses WHERE id IN ({houses})"
            ));
        }
        let orgs = ids(SearchKind::Organisation);
        if !orgs.is_empty() {
            parts.push(format!(
                "SELECT 'organisation' AS kind, id, name AS title, COALESCE(address, '') AS subtitle, area_code AS grid, CAST(NULL AS TEXT) AS cid, \
                 CAST(NULL AS TEXT) AS phone, credit_code AS code, {SEQ} AS log_seq FROM organisations WHERE id IN ({orgs})"
            ));
        }
        let mut seq: Option<i64> = None;
        let mut rows: HashMap<(SearchKind, i64), SearchHit> = HashMap::new();
        if !parts.is_empty() {
            for r in sqlx::query(sqlx::AssertSqlSafe(parts.join(" UNION ALL "))).fetch_all(&db.pool).await? {
                let v: i64 = r.try_get("log_seq")?;
                seq = Some(seq.map_or(v, |s: i64| s.max(v)));
                let kind: String = r.try_get("kind")?;
                let kind = SearchKind::parse(&kind).ok_or_else(|| StoreError::Corrupt("search: kind".into()))?;
                let id: i64 = r.try_get("id")?;
                let title: String = r.try_get("title")?;
                let subtitle: String = r.try_get("subtitle")?;
                let grid: String = r.try_get("grid")?;
                let mut hit = SearchHit {
                    kind,
                    id,
                    title,
                    subtitle,
                    grid,
                    matched: Field::Name,
                    citizen_id_masked: None,
                    phone_masked: None,
                    credit_code: None,
                    highlights: Vec::new(),
                };
                match kind {
                    SearchKind::Person => {
                        // The full values stay here: they are checked against the query and
                        // never leave the store.
                        let cid: String = r.try_get("cid")?;
                        let phone: Option<String> = r.try_get("phone")?;
                        hit.highlights = person_match_spans(q, &cid, phone.as_deref(), &hit.title, &hit.subtitle);
                        hit.citizen_id_masked = Some(mask_id_number(&cid));
                        hit.phone_masked = phone.as_deref().map(mask_phone);
                    }
                    SearchKind::House => {
                        if !q.number
                            && let Some((s, e)) = span_in(&hit.title, &q.chars)
                        {
                            hit.highlights.push(Highlight { field: "title", start: s, end: e });
                        }
                    }
                    SearchKind::Organisation => {
                        let code: String = r.try_get::<Option<String>, _>("code")?.unwrap_or_default();
                        if !q.number
                            && let Some((s, e)) = span_in(&hit.title, &q.chars)
                        {
                            hit.highlights.push(Highlight { field: "title", start: s, end: e });
                        }
                        if let Some((s, e)) = span_in(&code, &q.chars) {
                            hit.highlights.push(Highlight { field: "credit_code", start: s, end: e });
                        }
                        hit.credit_code = Some(code);
                    }
                }
                rows.insert((kind, id), hit);
            }
        }
        // No rows read (or none found): ask the log alone.
        let seq = match seq {
            Some(s) => s,
            None => db.last_change_seq().await?,
        };
        let mut out = Vec::new();
        for c in cands {
            let Some(mut hit) = rows.remove(&(c.kind, c.id)) else { continue };
            // Checked again on the row as read: in scope, and it still matches.
            if !self.in_scope(&hit.grid) || !still_matches(c.field, &hit) {
                continue;
            }
            hit.matched = c.field;
            out.push(hit);
            if out.len() == limit {
                break;
            }
        }
        Ok((out, seq))
    }

}

/// Whether the row as read still matches where the index said it did.
fn still_matches(field: Field, hit: &SearchHit) -> bool {
    {
        let on = |f: &str| hit.highlights.iter().any(|h| h.field == f);
        match field {
            Field::Name | Field::Pinyin | Field::Initials => on("title"),
            Field::Address if hit.kind == SearchKind::Person => on("subtitle"),
            Field::Address => on("title"),
            Field::CitizenId => on("citizen_id_masked"),
            Field::Phone => on("phone_masked"),
            Field::CreditCode => on("credit_code"),
        }
    }
}

/// Which of a person's shown fields the query matches, as spans. ID numbers and phones
/// are matched in full here (suffixes) and highlighted only where the masked form shows
/// the characters (the first 6 and last 4 of an ID number, the first 3 and last 4 of a
/// phone). An empty result: the person no longer matches.
fn person_match_spans(q: &Query, cid: &str, phone: Option<&str>, name: &str, address: &str) -> Vec<Highlight> {
    let mut out = Vec::new();
    if q.cjk
        && let Some((s, e)) = span_in(name, &q.chars)
    {
        out.push(Highlight { field: "title", start: s, end: e });
    }
    if let Some(p) = &q.pinyin {
        let rs = readings(name);
        if let Some((_, _, covered)) = pinyin_match(&rs, p) {
            // `covered` counts characters with a reading; map back to the name's characters.
            let mut n = 0;
            let mut end = 0;
            for (i, (c, r)) in name.chars().filter(|c| !c.is_whitespace()).zip(&rs).enumerate() {
                let _ = c;
                if n == covered {
                    break;
                }
                if !r.is_empty() {
                    n += 1;
                }
                end = i + 1;
            }
            if end > 0 {
                out.push(Highlight { field: "title", start: 0, end });
            }
        }
    }
    if let Some(s) = &q.id_suffix
        && cid.ends_with(s.as_str())
    {
        let len = cid.chars().count();
        let spans = if s.len() == len { visible_spans("citizen_id_masked", len, len, &[(0, 6), (len - 4, len)]) } else { visible_spans("citizen_id_masked", len, s.len(), &[(len - 4, len)]) };
        out.extend(spans);
    }
    if let Some(s) = &q.phone_suffix
        && let Some(p) = phone
        && p.ends_with(s.as_str())
    {
        let len = p.chars().count();
        out.extend(visible_spans("phone_masked", len, s.len(), &[(len.saturating_sub(4), len)]));
    }
    if !q.number
        && let Some((s, e)) = span_in(address, &q.chars)
    {
        out.push(Highlight { field: "subtitle", start: s, end: e });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_keys_order_like_reversed_strings() {
        let a = id_key("11010519491231002X").expect("key");
        let (lo, hi) = suffix_range("002X", 18, 11).expect("range");
        assert!(lo <= a && a <= hi);
        let (lo, hi) = suffix_range("102X", 18, 11).expect("range");
        assert!(!(lo <= a && a <= hi));
        let p = phone_key("13812345678").expect("key");
        let (lo, hi) = suffix_range("5678", 11, 10).expect("range");
        assert!(lo <= p && p <= hi);
        let (lo, hi) = suffix_range("13812345678", 11, 10).expect("range");
        assert_eq!((lo, hi), (p, p));
    }

    #[test]
    fn pinyin_full_initials_and_polyphonic_surnames() {
        let rs = readings("张三");
        assert_eq!(pinyin_match(&rs, "zhangsan"), Some((Field::Pinyin, 0, 2)));
        assert_eq!(pinyin_match(&rs, "zs"), Some((Field::Initials, 0, 2)));
        assert_eq!(pinyin_match(&rs, "zhangs"), Some((Field::Pinyin, 1, 2)));
        assert_eq!(pinyin_match(&rs, "zhang"), Some((Field::Pinyin, 1, 1)));
        assert_eq!(pinyin_match(&rs, "lisi"), None);
        for (name, q) in [("单伟", "shanwei"), ("曾敏", "zengmin"), ("解放", "xiefang"), ("单伟", "sw")] {
            assert!(pinyin_match(&readings(name), q).is_some(), "{name} {q}");
        }
    }

    #[test]
    fn postings_round_trip() {
        let mut p = Posting::default();
        let v = [0u32, 1, 5, 200, 70_000, 70_001, 4_000_000_000];
        for x in v {
            p.push(x);
        }
        let mut got = Vec::new();
        p.for_each(|x| got.push(x));
        assert_eq!(got, v);
    }
}
