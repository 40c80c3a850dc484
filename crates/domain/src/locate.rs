//! The point → grid index: an R-tree over the bounding boxes of grid polygons, with an
//! exact point-in-polygon test behind it.
//!
//! **The boundary rule.** A point belongs to the basic grid whose closed polygon (interior
//! plus boundary) covers it. A point on an edge or vertex shared by several basic grids
//! belongs to the one with the smallest code — because codes number grids west→east,
//! north→south, that is the western, then northern, neighbour. In PostGIS terms the answer
//! is `SELECT code FROM grids WHERE ST_Covers(geom, pt) ORDER BY code LIMIT 1`.
//! Dedicated grids may overlap basic grids; every one whose closed polygon covers the point
//! is listed, in code order.

use geo::{Kernel, Orientation, kernels::RobustKernel};
use geo_types::{Coord, MultiPolygon};
use rstar::{RTree, RTreeObject, AABB};

use crate::area::{AreaCode, DedicatedKind, Level};
use crate::geometry::AreaRecord;

/// Where a point lies relative to a polygon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Inside,
    OnBoundary,
    Outside,
}

/// A polygon prepared for fast point tests: rings as flat coordinate runs.
#[derive(Debug, Clone)]
struct PreparedPolygon {
    /// Each polygon: its rings (exterior first), each ring closed.
    parts: Vec<Vec<Vec<Coord<f64>>>>,
}

impl PreparedPolygon {
    fn new(mp: &MultiPolygon<f64>) -> Self {
        let parts = mp
            .0
            .iter()
            .map(|p| {
                let mut rings = vec![p.exterior().0.clone()];
                rings.extend(p.interiors().iter().map(|r| r.0.clone()));
                rings
            })
            .collect();
        PreparedPolygon { parts }
    }

    fn position(&self, p: Coord<f64>) -> Position {
        for rings in &self.parts {
            match ring_position(&rings[0], p) {
                Position::Outside => continue,
                Position::OnBoundary => return Position::OnBoundary,
                Position::Inside => {}
            }
            let mut in_hole = false;
            for hole in &rings[1..] {
                match ring_position(hole, p) {
                    Position::OnBoundary => return Position::OnBoundary,
                    Position::Inside => {
                        in_hole = true;
                        break;
                    }
                    Position::Outside => {}
                }
            }
            if !in_hole {
                return Position::Inside;
            }
        }
        Position::Outside
    }
}

/// Winding-number test of a point against one closed ring, with exact (robust) orientation
/// so that a point on an edge is found to be on it.
fn ring_position(ring: &[Coord<f64>], p: Coord<f64>) -> Position {
    let mut winding = 0i32;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (ylo, yhi) = if a.y <= b.y { (a.y, b.y) } else { (b.y, a.y) };
        if p.y < ylo || p.y > yhi {
            continue;
        }
        if a.y == b.y {
            // Horizontal edge at the point's latitude: only a boundary hit matters.
            if p.x >= a.x.min(b.x) && p.x <= a.x.max(b.x) {
                return Position::OnBoundary;
            }
            continue;
        }
        // Entirely to the left of the point: cannot be crossed by the eastward ray nor hold it.
        if p.x > a.x.max(b.x) {
            continue;
        }
        let o = RobustKernel::orient2d(a, b, p);
        if o == Orientation::Collinear {
            return Position::OnBoundary;
        }
        if a.y <= p.y && b.y > p.y && o == Orientation::CounterClockwise {
            winding += 1;
        } else if a.y > p.y && b.y <= p.y && o == Orientation::Clockwise {
            winding -= 1;
        }
    }
    if winding != 0 { Position::Inside } else { Position::Outside }
}

/// Where a point falls relative to any polygon (used by checks and tests).
pub fn position_in(mp: &MultiPolygon<f64>, lon: f64, lat: f64) -> Position {
    PreparedPolygon::new(mp).position(Coord { x: lon, y: lat })
}

#[derive(Debug, Clone)]
struct Entry {
    env: AABB<[f64; 2]>,
    slot: u32,
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

/// A grid held by the index.
#[derive(Debug, Clone)]
pub struct IndexedGrid {
    pub code: AreaCode,
    pub name: String,
    pub level: Level,
    pub kind: Option<DedicatedKind>,
    shape: PreparedPolygon,
}

/// The point → grid index over basic and dedicated grids.
#[derive(Debug, Default)]
pub struct GridIndex {
    grids: Vec<IndexedGrid>,
    basic: RTree<Entry>,
    dedicated: RTree<Entry>,
}

/// The answer for one point.
#[derive(Debug, Clone)]
pub struct Location<'a> {
    /// The basic grid, or None: "unassigned" (outside every basic grid).
    pub grid: Option<&'a IndexedGrid>,
    /// Dedicated grids that cover the point, in code order.
    pub dedicated: Vec<&'a IndexedGrid>,
}

impl GridIndex {
    /// Build from areas; only grids (basic and dedicated) are taken.
    pub fn build<'a>(areas: impl IntoIterator<Item = &'a AreaRecord>) -> Self {
        let mut grids = Vec::new();
        let mut basic = Vec::new();
        let mut dedicated = Vec::new();
        for a in areas {
            if !a.level.is_grid() {
                continue;
            }
            let Some(rect) = a.bbox() else { continue };
            let slot = grids.len() as u32;
            let env = AABB::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]);
            grids.push(IndexedGrid {
                code: a.code.clone(),
                name: a.name.clone(),
                level: a.level,
                kind: a.kind,
                shape: PreparedPolygon::new(&a.geometry),
            });
            if a.level == Level::Grid {
                basic.push(Entry { env, slot });
            } else {
                dedicated.push(Entry { env, slot });
            }
        }
        GridIndex { grids, basic: RTree::bulk_load(basic), dedicated: RTree::bulk_load(dedicated) }
    }

    pub fn len(&self) -> usize {
        self.grids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grids.is_empty()
    }

    pub fn grids(&self) -> impl Iterator<Item = &IndexedGrid> {
        self.grids.iter()
    }

    /// The basic grid for a point (longitude, latitude in WGS-84), by the boundary rule
    /// in this module's documentation; None when the point is unassigned.
    pub fn locate_grid(&self, lon: f64, lat: f64) -> Option<&AreaCode> {
        self.basic_grid_at(lon, lat).map(|g| &g.code)
    }

    /// The basic grid for a point, with its name.
    pub fn basic_grid_at(&self, lon: f64, lat: f64) -> Option<&IndexedGrid> {
        let p = Coord { x: lon, y: lat };
        let mut best: Option<&IndexedGrid> = None;
        for e in self.basic.locate_in_envelope_intersecting(&AABB::from_point([lon, lat])) {
            let g = &self.grids[e.slot as usize];
            match g.shape.position(p) {
                // Basic grids do not overlap, so an interior hit is the only answer.
                Position::Inside => return Some(g),
                Position::OnBoundary => {
                    if best.is_none_or(|b| g.code < b.code) {
                        best = Some(g);
                    }
                }
                Position::Outside => {}
            }
        }
        best
    }

    /// Dedicated grids covering a point, in code order.
    pub fn dedicated_at(&self, lon: f64, lat: f64) -> Vec<&IndexedGrid> {
        let p = Coord { x: lon, y: lat };
        let mut out: Vec<&IndexedGrid> = self
            .dedicated
            .locate_in_envelope_intersecting(&AABB::from_point([lon, lat]))
            .map(|e| &self.grids[e.slot as usize])
            .filter(|g| g.shape.position(p) != Position::Outside)
            .collect();
        out.sort_by(|a, b| a.code.cmp(&b.code));
        out
    }

    pub fn locate(&self, lon: f64, lat: f64) -> Location<'_> {
        Location { grid: self.basic_grid_at(lon, lat), dedicated: self.dedicated_at(lon, lat) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{LineString, Polygon};

    fn square(code: &str, x0: f64, y0: f64, x1: f64, y1: f64, level: Level) -> AreaRecord {
        let ring = LineString::from(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]);
        AreaRecord {
            code: AreaCode::parse(code).expect("a valid code"),
            name: code.to_string(),
            level,
            parent: None,
            kind: None,
            geometry: MultiPolygon::new(vec![Polygon::new(ring, vec![])]),
        }
    }

    #[test]
    fn shared_edges_go_to_the_smallest_code() {
        let west = square("430503001001001", 0.0, 0.0, 1.0, 1.0, Level::Grid);
        let east = square("430503001001002", 1.0, 0.0, 2.0, 1.0, Level::Grid);
        let south = square("430503001001003", 0.0, -1.0, 1.0, 0.0, Level::Grid);
        let school = square("430503001001901", 0.5, 0.5, 1.5, 0.9, Level::Dedicated);
        let idx = GridIndex::build([&east, &west, &south, &school]);
        let code = |lon, lat| idx.locate_grid(lon, lat).map(|c| c.as_str().to_string());
        assert_eq!(code(0.5, 0.5).as_deref(), Some("430503001001001"));
        assert_eq!(code(1.5, 0.5).as_deref(), Some("430503001001002"));
        // On the shared edge and at the shared corner: the smallest code wins.
        assert_eq!(code(1.0, 0.5).as_deref(), Some("430503001001001"));
        assert_eq!(code(1.0, 0.0).as_deref(), Some("430503001001001"));
        assert_eq!(code(0.5, 0.0).as_deref(), Some("430503001001001"));
        // The outer boundary still belongs to the grid.
        assert_eq!(code(2.0, 0.5).as_deref(), Some("430503001001002"));
        assert_eq!(code(3.0, 0.5), None);
        let ded: Vec<_> = idx.dedicated_at(1.2, 0.7).into_iter().map(|g| g.code.to_string()).collect();
        assert_eq!(ded, ["430503001001901"]);
        assert!(idx.dedicated_at(0.2, 0.2).is_empty());
    }

    #[test]
    fn holes_are_outside() {
        let outer = LineString::from(vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)]);
        let hole = LineString::from(vec![(1.0, 1.0), (1.0, 3.0), (3.0, 3.0), (3.0, 1.0), (1.0, 1.0)]);
        let mp = MultiPolygon::new(vec![Polygon::new(outer, vec![hole])]);
        assert_eq!(position_in(&mp, 0.5, 0.5), Position::Inside);
        assert_eq!(position_in(&mp, 2.0, 2.0), Position::Outside);
        assert_eq!(position_in(&mp, 1.0, 2.0), Position::OnBoundary);
        assert_eq!(position_in(&mp, 5.0, 2.0), Position::Outside);
    }
}
