//! Area geometry: the GeoJSON the district exchanges (WGS-84, EPSG:4326), and the checks
//! an import must pass before anything is stored.
//!
//! The FeatureCollection's features carry `code`, `name`, `level`, `parent` and, for
//! dedicated grids, an optional `kind` in their properties. Geometry is a Polygon or a
//! MultiPolygon in longitude/latitude order.

use std::collections::{BTreeMap, HashMap, HashSet};

use geo::{Area, BooleanOps, BoundingRect, Intersects, Validation};
use geo_types::{Coord, LineString, MultiPolygon, Polygon, Rect};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::area::{AreaCode, DedicatedKind, Level, check_code};

/// Part of a child's area that may lie outside its parent, relative to the child's area,
/// before the import refuses it (0.1 %: surveyed boundaries rarely agree to the metre).
pub const WITHIN_TOLERANCE: f64 = 1e-3;
/// Overlap between two basic grids of one community, relative to the smaller grid, that
/// is still taken as a shared edge drawn twice (0.1 %).
pub const OVERLAP_TOLERANCE: f64 = 1e-3;

/// An area with its boundary, as imported, exported and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaRecord {
    pub code: AreaCode,
    pub name: String,
    pub level: Level,
    pub parent: Option<AreaCode>,
    pub kind: Option<DedicatedKind>,
    pub geometry: MultiPolygon<f64>,
}

impl AreaRecord {
    pub fn bbox(&self) -> Option<Rect<f64>> {
        self.geometry.bounding_rect()
    }

    /// The GeoJSON Feature of this area.
    pub fn to_feature(&self) -> Value {
        let mut props = Map::new();
        props.insert("code".into(), json!(self.code.as_str()));
        props.insert("name".into(), json!(self.name));
        props.insert("level".into(), json!(self.level.as_str()));
        props.insert("parent".into(), json!(self.parent.as_ref().map(|p| p.as_str())));
        if let Some(k) = self.kind {
            props.insert("kind".into(), json!(k.as_str()));
        }
        json!({"type": "Feature", "properties": props, "geometry": geometry_to_geojson(&self.geometry)})
    }
}

/// A FeatureCollection of areas.
pub fn feature_collection(areas: &[AreaRecord]) -> Value {
    json!({
        "type": "FeatureCollection",
        "features": areas.iter().map(AreaRecord::to_feature).collect::<Vec<_>>(),
    })
}

fn ring_to_json(ring: &LineString<f64>) -> Value {
    Value::Array(ring.0.iter().map(|c| json!([c.x, c.y])).collect())
}

fn polygon_to_json(p: &Polygon<f64>) -> Value {
    let mut rings = vec![ring_to_json(p.exterior())];
    rings.extend(p.interiors().iter().map(ring_to_json));
    Value::Array(rings)
}

/// GeoJSON geometry: a Polygon when there is one part, else a MultiPolygon.
pub fn geometry_to_geojson(mp: &MultiPolygon<f64>) -> Value {
    if mp.0.len() == 1 {
        json!({"type": "Polygon", "coordinates": polygon_to_json(&mp.0[0])})
    } else {
        json!({"type": "MultiPolygon", "coordinates": mp.0.iter().map(polygon_to_json).collect::<Vec<_>>()})
    }
}

/// Parse a GeoJSON Polygon or MultiPolygon geometry, checking that every ring is closed,
/// has at least four positions and only finite WGS-84 coordinates.
pub fn geometry_from_geojson(v: &Value) -> Result<MultiPolygon<f64>, String> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "type")]
        kind: String,
        coordinates: Value,
    }
    let raw: Raw = serde_json::from_value(v.clone())
        .map_err(|e| format!("geometry is not a GeoJSON geometry object: {e}"))?;
    let polys: Vec<Vec<Vec<Vec<f64>>>> = match raw.kind.as_str() {
        "Polygon" => vec![
            serde_json::from_value(raw.coordinates)
                .map_err(|e| format!("Polygon coordinates are malformed: {e}"))?,
        ],
        "MultiPolygon" => serde_json::from_value(raw.coordinates)
            .map_err(|e| format!("MultiPolygon coordinates are malformed: {e}"))?,
        other => return Err(format!("geometry type {other:?} is not a Polygon or MultiPolygon")),
    };
    if polys.is_empty() {
        return Err("geometry has no polygons".into());
    }
    let mut out = Vec::with_capacity(polys.len());
    for (pi, rings) in polys.into_iter().enumerate() {
        if rings.is_empty() {
            return Err(format!("polygon {pi} has no rings"));
        }
        let mut ls = Vec::with_capacity(rings.len());
        for (ri, ring) in rings.into_iter().enumerate() {
            let at = format!("polygon {pi} ring {ri}");
            if ring.len() < 4 {
                return Err(format!("{at} has {} positions; a ring needs at least 4", ring.len()));
            }
            let mut coords = Vec::with_capacity(ring.len());
            for (k, pos) in ring.iter().enumerate() {
                if pos.len() < 2 {
                    return Err(format!("{at} position {k} has fewer than 2 numbers"));
                }
                let (x, y) = (pos[0], pos[1]);
                if !x.is_finite() || !(-180.0..=180.0).contains(&x) {
                    return Err(format!("{at} position {k}: longitude {x} is out of range"));
                }
                if !y.is_finite() || !(-90.0..=90.0).contains(&y) {
                    return Err(format!("{at} position {k}: latitude {y} is out of range"));
                }
                coords.push(Coord { x, y });
            }
            if coords.first() != coords.last() {
                return Err(format!("{at} is not closed: its first and last positions differ"));
            }
            ls.push(LineString::new(coords));
        }
        let exterior = ls.remove(0);
        out.push(Polygon::new(exterior, ls));
    }
    Ok(MultiPolygon::new(out))
}

/// A problem with one feature of an import file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportProblem {
    /// Index of the feature in the file's `features` array, from 0.
    pub index: usize,
    pub code: Option<String>,
    /// Stable snake_case reason code.
    pub reason: &'static str,
    pub message: String,
}

impl std::fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "feature {}", self.index)?;
        if let Some(c) = &self.code {
            write!(f, " ({c})")?;
        }
        write!(f, ": {}: {}", self.reason, self.message)
    }
}

/// Features that parsed, with their index in the file, and the problems of those that did not.
pub type Parsed = (Vec<(usize, AreaRecord)>, Vec<ImportProblem>);

/// Parse an import file into area records, with every problem found on the way.
/// Err is a problem with the file as a whole.
pub fn parse_feature_collection(text: &str) -> Result<Parsed, Vec<ImportProblem>> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        vec![ImportProblem {
            index: 0,
            code: None,
            reason: "malformed_json",
            message: format!("the file is not JSON: {e}"),
        }]
    })?;
    let file_problem = |message: &str| {
        vec![ImportProblem {
            index: 0,
            code: None,
            reason: "not_a_feature_collection",
            message: message.to_string(),
        }]
    };
    if root.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(file_problem("the file is not a GeoJSON FeatureCollection"));
    }
    let Some(features) = root.get("features").and_then(Value::as_array) else {
        return Err(file_problem("the FeatureCollection has no features array"));
    };
    if features.is_empty() {
        return Err(file_problem("the FeatureCollection has no features"));
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (index, f) in features.iter().enumerate() {
        match parse_feature(f) {
            Ok(r) => out.push((index, r)),
            Err((code, reason, message)) => {
                problems.push(ImportProblem { index, code, reason, message })
            }
        }
    }
    Ok((out, problems))
}

type FeatureErr = (Option<String>, &'static str, String);

fn parse_feature(f: &Value) -> Result<AreaRecord, FeatureErr> {
    let props = f.get("properties").and_then(Value::as_object);
    let text = |k: &str| props.and_then(|p| p.get(k)).and_then(value_as_text);
    let code_text = text("code");
    let err = |reason: &'static str, message: String| (code_text.clone(), reason, message);
    if f.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err(err("not_a_feature", "the item is not a GeoJSON Feature".into()));
    }
    let Some(code_s) = code_text.clone() else {
        return Err(err("missing_property", "properties.code is missing".into()));
    };
    let code = AreaCode::parse(&code_s).map_err(|e| err(e.code(), e.to_string()))?;
    let name = text("name").map(|n| n.trim().to_string()).unwrap_or_default();
    if name.is_empty() {
        return Err(err("missing_property", "properties.name is missing or empty".into()));
    }
    let Some(level_s) = text("level") else {
        return Err(err("missing_property", "properties.level is missing".into()));
    };
    let level: Level = level_s.parse().map_err(|e: crate::DomainError| err(e.code(), e.to_string()))?;
    let parent = match text("parent") {
        Some(p) if !p.trim().is_empty() => {
            Some(AreaCode::parse(&p).map_err(|e| err(e.code(), format!("parent: {e}")))?)
        }
        _ => None,
    };
    let kind = match text("kind") {
        Some(k) if level == Level::Dedicated => {
            Some(k.parse().map_err(|e: crate::DomainError| err(e.code(), e.to_string()))?)
        }
        _ => None,
    };
    let Some(g) = f.get("geometry").filter(|g| !g.is_null()) else {
        return Err(err("missing_geometry", "the feature has no geometry".into()));
    };
    let geometry = geometry_from_geojson(g).map_err(|m| err("invalid_geometry", m))?;
    if let Err(e) = geometry.check_validation() {
        return Err(err("invalid_geometry", format!("the polygon is not valid: {e}")));
    }
    Ok(AreaRecord { code, name, level, parent, kind, geometry })
}

/// Codes may arrive as JSON numbers from spreadsheets turned into GeoJSON; accept those
/// that are whole numbers.
fn value_as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// Check a set of parsed features against each other and against what the store already
/// holds (`existing`: the parents the features name and the basic grids that share a
/// community with any imported grid). A feature whose code is already stored replaces it.
pub fn check_import(
    features: &[(usize, AreaRecord)],
    existing: &HashMap<AreaCode, AreaRecord>,
) -> Vec<ImportProblem> {
    let mut problems = Vec::new();
    let mut seen: HashMap<&AreaCode, usize> = HashMap::new();
    let by_code: HashMap<&AreaCode, &AreaRecord> = features.iter().map(|(_, r)| (&r.code, r)).collect();
    for (index, r) in features {
        let mut push = |reason: &'static str, message: String| {
            problems.push(ImportProblem {
                index: *index,
                code: Some(r.code.to_string()),
                reason,
                message,
            })
        };
        if let Some(first) = seen.insert(&r.code, *index) {
            push("duplicate_code", format!("code {} also appears in feature {first}", r.code));
            continue;
        }
        let parent = match &r.parent {
            None => None,
            Some(p) => match by_code.get(p).copied().or_else(|| existing.get(p)) {
                Some(rec) => Some(rec),
                None => {
                    push("unknown_parent", format!("parent {p} is neither in the file nor stored"));
                    continue;
                }
            },
        };
        if let Err(e) = check_code(&r.code, r.level, parent.map(|p| (&p.code, p.level))) {
            push(e.code(), e.to_string());
            continue;
        }
        if let Some(p) = parent {
            let child_area = r.geometry.unsigned_area();
            let outside = r.geometry.difference(&p.geometry).unsigned_area();
            if outside > child_area * WITHIN_TOLERANCE {
                push(
                    "outside_parent",
                    format!(
                        "{:.2}% of the area lies outside its parent {} (tolerance {:.1}%)",
                        100.0 * outside / child_area,
                        p.code,
                        100.0 * WITHIN_TOLERANCE
                    ),
                );
            }
        }
    }
    let failed: HashSet<usize> = problems.iter().map(|p| p.index).collect();
    let sound: Vec<(usize, AreaRecord)> =
        features.iter().filter(|(i, _)| !failed.contains(i)).cloned().collect();
    problems.extend(check_grid_overlaps(&sound, existing));
    problems.sort_by_key(|p| p.index);
    problems
}

/// Basic grids of one community must not overlap (shared edges are fine).
fn check_grid_overlaps(
    features: &[(usize, AreaRecord)],
    existing: &HashMap<AreaCode, AreaRecord>,
) -> Vec<ImportProblem> {
    let imported: HashSet<&AreaCode> = features.iter().map(|(_, r)| &r.code).collect();
    // community → [(feature index or None for stored, record)]
    let mut by_community: BTreeMap<&AreaCode, Vec<(Option<usize>, &AreaRecord)>> = BTreeMap::new();
    for (i, r) in features {
        if let (Level::Grid, Some(p)) = (r.level, &r.parent) {
            by_community.entry(p).or_default().push((Some(*i), r));
        }
    }
    for r in existing.values() {
        if r.level != Level::Grid || imported.contains(&r.code) {
            continue;
        }
        if let Some(list) = r.parent.as_ref().and_then(|p| by_community.get_mut(p)) {
            list.push((None, r));
        }
    }
    let mut problems = Vec::new();
    for grids in by_community.values() {
        let boxes: Vec<Option<Rect<f64>>> = grids.iter().map(|(_, r)| r.bbox()).collect();
        for a in 0..grids.len() {
            for b in (a + 1)..grids.len() {
                let (ia, ra) = grids[a];
                let (ib, rb) = grids[b];
                if ia.is_none() && ib.is_none() {
                    continue;
                }
                let (Some(ba), Some(bb)) = (boxes[a], boxes[b]) else { continue };
                if !ba.intersects(&bb) {
                    continue;
                }
                let shared = ra.geometry.intersection(&rb.geometry).unsigned_area();
                let smaller = ra.geometry.unsigned_area().min(rb.geometry.unsigned_area());
                if shared > smaller * OVERLAP_TOLERANCE {
                    for (index, this, other) in [(ia, ra, rb), (ib, rb, ra)] {
                        let Some(index) = index else { continue };
                        problems.push(ImportProblem {
                            index,
                            code: Some(this.code.to_string()),
                            reason: "grids_overlap",
                            message: format!(
                                "overlaps basic grid {} of the same community by {:.2}% of the smaller grid",
                                other.code,
                                100.0 * shared / smaller
                            ),
                        });
                    }
                }
            }
        }
    }
    problems
}

/// Round a coordinate to 1e-7° (about a centimetre), so that stored geometry round-trips
/// through text exactly.
pub fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}
