//! The demo district: a deterministic synthetic district shaped like the reference one
//! (大祥区, 430503): 12 streets and townships, 98 communities and villages, 628 basic grids
//! that tile them, 10 dedicated grids, and a team for every grid. `scale` multiplies the
//! communities, grids and dedicated grids (the district keeps its 12 streets).
//!
//! How the map is made: the district's footprint is cut into a lattice of cells, one cell
//! per basic grid. Lattice vertices and edge midpoints are jittered by a hash of their
//! position, so neighbouring cells share exactly the same boundary. The cells nearest the
//! centre (by a wavy, stretched distance) form the district; streets are angular sectors of
//! an inner core and an outer ring; communities are cut from streets by recursive
//! bisection; every boundary above a grid is traced along the cell edges, so a child lies
//! exactly inside its parent and grids tile their community without overlap.

use std::collections::{HashMap, HashSet};

use geo_types::{Coord, LineString, MultiPolygon, Polygon};

use crate::access::Phone;
use crate::area::{AreaCode, DedicatedKind, Level, TeamMember, TeamRole};
use crate::geometry::{AreaRecord, round7};
use crate::names::{any_person_name, chinese_ordinal, unique_place};
use crate::rng::{Rng, hash3, signed_unit};

pub const DISTRICT_CODE: &str = "430503";
pub const DISTRICT_NAME: &str = "大祥区";
/// The centre of the demo district (WGS-84).
pub const CENTRE_LAT: f64 = 27.24;
pub const CENTRE_LON: f64 = 111.46;
/// Footprint of the district in km².
const DISTRICT_KM2: f64 = 214.0;
pub const BASE_GRIDS: usize = 628;
pub const BASE_COMMUNITIES: usize = 98;
pub const BASE_DEDICATED: usize = 10;
pub const STREETS: usize = 12;
/// Largest `scale` the code space allows (communities per street stay within 3 digits).
pub const MAX_SCALE: u32 = 100;

#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    pub scale: u32,
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions { scale: 1, seed: 1 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DemoError {
    #[error("--scale must be from 1 to {MAX_SCALE}, got {0}")]
    Scale(u32),
}

/// The generated district, parents before children.
#[derive(Debug, Clone)]
pub struct DemoDistrict {
    pub areas: Vec<AreaRecord>,
    pub team: Vec<TeamMember>,
}

type Cell = (i32, i32);

struct Lattice {
    seed: u64,
    half: f64,
    /// km per cell side
    side_km: f64,
    km_per_deg_lon: f64,
    km_per_deg_lat: f64,
}

impl Lattice {
    /// Jittered position of lattice vertex (i, j), in cell units.
    fn vertex(&self, i: i32, j: i32) -> (f64, f64) {
        let h1 = hash3(self.seed, i as u64, (j as u64) << 1);
        let h2 = hash3(self.seed, i as u64, ((j as u64) << 1) | 1);
        (f64::from(i) - self.half + 0.12 * signed_unit(h1), f64::from(j) - self.half + 0.12 * signed_unit(h2))
    }

    /// Midpoint of the lattice edge from `a` to the next vertex in direction `d`,
    /// pushed sideways by a hash of the edge (the same for both cells that share it).
    fn midpoint(&self, a: Cell, d: Dir) -> (f64, f64) {
        let b = d.step(a);
        let (lo, horizontal) = match d {
            Dir::E | Dir::W => ((a.0.min(b.0), a.1), true),
            Dir::N | Dir::S => ((a.0, a.1.min(b.1)), false),
        };
        let (ax, ay) = self.vertex(a.0, a.1);
        let (bx, by) = self.vertex(b.0, b.1);
        let h = hash3(self.seed ^ 0x5EED, lo.0 as u64, ((lo.1 as u64) << 1) | u64::from(horizontal));
        let off = 0.10 * signed_unit(h);
        let (mx, my) = ((ax + bx) / 2.0, (ay + by) / 2.0);
        if horizontal { (mx, my + off) } else { (mx + off, my) }
    }

    fn to_lonlat(&self, (x, y): (f64, f64)) -> Coord<f64> {
        Coord {
            x: round7(CENTRE_LON + x * self.side_km / self.km_per_deg_lon),
            y: round7(CENTRE_LAT + y * self.side_km / self.km_per_deg_lat),
        }
    }

    /// Cell centre in cell units.
    fn centre(&self, c: Cell) -> (f64, f64) {
        (f64::from(c.0) + 0.5 - self.half, f64::from(c.1) + 0.5 - self.half)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dir {
    E,
    N,
    W,
    S,
}

impl Dir {
    fn step(self, (i, j): Cell) -> Cell {
        match self {
            Dir::E => (i + 1, j),
            Dir::N => (i, j + 1),
            Dir::W => (i - 1, j),
            Dir::S => (i, j - 1),
        }
    }
    fn left(self) -> Dir {
        match self {
            Dir::E => Dir::N,
            Dir::N => Dir::W,
            Dir::W => Dir::S,
            Dir::S => Dir::E,
        }
    }
    fn right(self) -> Dir {
        self.left().left().left()
    }
}

/// Trace the outline of a set of cells into a valid (Multi)Polygon, counter-clockwise
/// exteriors and clockwise holes, following the jittered shared edges.
fn outline(lat: &Lattice, cells: &HashSet<Cell>) -> MultiPolygon<f64> {
    let mut out: HashMap<Cell, Vec<Dir>> = HashMap::new();
    let mut edges = 0usize;
    for &(i, j) in cells {
        let sides = [
            ((i, j - 1), (i, j), Dir::E),
            ((i + 1, j), (i + 1, j), Dir::N),
            ((i, j + 1), (i + 1, j + 1), Dir::W),
            ((i - 1, j), (i, j + 1), Dir::S),
        ];
        for (neighbour, start, dir) in sides {
            if !cells.contains(&neighbour) {
                out.entry(start).or_default().push(dir);
                edges += 1;
            }
        }
    }
    let mut starts: Vec<Cell> = out.keys().copied().collect();
    starts.sort_unstable();
    let mut rings: Vec<Vec<(Cell, Dir)>> = Vec::new();
    let mut used = 0usize;
    for s in starts {
        while let Some(first) = out.get_mut(&s).and_then(Vec::pop) {
            let mut ring = vec![(s, first)];
            used += 1;
            let mut at = first.step(s);
            let mut heading = first;
            while at != s {
                let options = out.get_mut(&at).map(std::mem::take).unwrap_or_default();
                // Prefer the left turn so that rings touching at a point stay apart.
                let pick = [heading.left(), heading, heading.right()]
                    .into_iter()
                    .find(|d| options.contains(d));
                let Some(d) = pick else { break };
                let rest: Vec<Dir> = options.into_iter().filter(|x| *x != d).collect();
                out.insert(at, rest);
                ring.push((at, d));
                used += 1;
                at = d.step(at);
                heading = d;
            }
            rings.push(ring);
        }
    }
    debug_assert_eq!(used, edges, "every boundary edge is used once");
    let to_coords = |ring: &[(Cell, Dir)]| -> LineString<f64> {
        let mut pts = Vec::with_capacity(ring.len() * 2 + 1);
        for &(v, d) in ring {
            pts.push(lat.to_lonlat(lat.vertex(v.0, v.1)));
            pts.push(lat.to_lonlat(lat.midpoint(v, d)));
        }
        pts.push(pts[0]);
        LineString::new(pts)
    };
    let signed = |ring: &[(Cell, Dir)]| -> i64 {
        let n = ring.len();
        (0..n)
            .map(|k| {
                let (a, b) = (ring[k].0, ring[(k + 1) % n].0);
                i64::from(a.0) * i64::from(b.1) - i64::from(b.0) * i64::from(a.1)
            })
            .sum()
    };
    let (exteriors, holes): (Vec<_>, Vec<_>) = rings.into_iter().partition(|r| signed(r) > 0);
    // Each exterior ring with the holes found inside it.
    type WithHoles = (Vec<(Cell, Dir)>, Vec<LineString<f64>>);
    let mut polys: Vec<WithHoles> =
        exteriors.into_iter().map(|r| (r, Vec::new())).collect();
    for hole in holes {
        // The midpoint of the hole's first lattice edge lies on no exterior ring.
        let (v, d) = hole[0];
        let w = d.step(v);
        let p = ((f64::from(v.0) + f64::from(w.0)) / 2.0, (f64::from(v.1) + f64::from(w.1)) / 2.0);
        let owner = polys.iter_mut().find(|(ext, _)| lattice_ring_contains(ext, p));
        if let Some((_, hs)) = owner {
            hs.push(to_coords(&hole));
        }
    }
    MultiPolygon::new(polys.into_iter().map(|(ext, hs)| Polygon::new(to_coords(&ext), hs)).collect())
}

fn lattice_ring_contains(ring: &[(Cell, Dir)], (px, py): (f64, f64)) -> bool {
    let n = ring.len();
    let mut inside = false;
    for k in 0..n {
        let (a, b) = (ring[k].0, ring[(k + 1) % n].0);
        let (ax, ay, bx, by) = (f64::from(a.0), f64::from(a.1), f64::from(b.0), f64::from(b.1));
        if (ay > py) != (by > py) && px < ax + (py - ay) * (bx - ax) / (by - ay) {
            inside = !inside;
        }
    }
    inside
}

/// Split cells into `parts` compact groups of near-equal size by recursive bisection.
fn bisect(cells: &mut [Cell], parts: usize, out: &mut Vec<Vec<Cell>>) {
    if parts <= 1 || cells.len() <= 1 {
        out.push(cells.to_vec());
        return;
    }
    let (mut imin, mut imax, mut jmin, mut jmax) = (i32::MAX, i32::MIN, i32::MAX, i32::MIN);
    for &(i, j) in cells.iter() {
        imin = imin.min(i);
        imax = imax.max(i);
        jmin = jmin.min(j);
        jmax = jmax.max(j);
    }
    if imax - imin >= jmax - jmin {
        cells.sort_unstable_by_key(|&(i, j)| (i, j));
    } else {
        cells.sort_unstable_by_key(|&(i, j)| (j, i));
    }
    let first = parts / 2;
    let cut = (cells.len() * first / parts).clamp(1, cells.len() - 1);
    let (a, b) = cells.split_at_mut(cut);
    bisect(a, first, out);
    bisect(b, parts - first, out);
}

/// Share `total` among weights by the largest remainder, each share at least 1.
fn apportion(total: usize, weights: &[usize]) -> Vec<usize> {
    let sum: usize = weights.iter().sum();
    let n = weights.len();
    let spare = total.saturating_sub(n);
    let exact: Vec<f64> = weights.iter().map(|&w| spare as f64 * w as f64 / sum.max(1) as f64).collect();
    let mut shares: Vec<usize> = exact.iter().map(|e| 1 + e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    let mut left = total - shares.iter().sum::<usize>();
    for k in order {
        if left == 0 {
            break;
        }
        shares[k] += 1;
        left -= 1;
    }
    shares
}

/// Move shares above `cap` (codes have three digits) to the shares with the most room.
fn capped(mut shares: Vec<usize>, cap: usize) -> Vec<usize> {
    let mut excess: usize = shares.iter().map(|s| s.saturating_sub(cap)).sum();
    for s in shares.iter_mut() {
        *s = (*s).min(cap);
    }
    while excess > 0 {
        let Some(k) = (0..shares.len()).filter(|&k| shares[k] < cap).min_by_key(|&k| shares[k]) else { break };
        shares[k] += 1;
        excess -= 1;
    }
    shares
}

#[derive(Clone, Copy, PartialEq)]
enum StreetKind {
    Urban,
    Town,
    Township,
}

/// Generate the demo district.
pub fn generate(opts: DemoOptions) -> Result<DemoDistrict, DemoError> {
    if opts.scale == 0 || opts.scale > MAX_SCALE {
        return Err(DemoError::Scale(opts.scale));
    }
    let scale = opts.scale as usize;
    let n_cells = BASE_GRIDS * scale;
    let n_comm = BASE_COMMUNITIES * scale;
    let n_dedicated = BASE_DEDICATED * scale;
    let mut rng = Rng::new(opts.seed);
    let side = (n_cells as f64).sqrt();
    let l = (side * 2.0).ceil() as i32 + 6;
    let lat = Lattice {
        seed: opts.seed,
        half: f64::from(l) / 2.0,
        side_km: (DISTRICT_KM2 / n_cells as f64).sqrt(),
        km_per_deg_lon: 111.320 * CENTRE_LAT.to_radians().cos(),
        km_per_deg_lat: 110.574,
    };

    // 1. The district: the cells with the smallest wavy distance from the centre.
    let phase: Vec<f64> = (0..3).map(|_| rng.range_f64(0.0, std::f64::consts::TAU)).collect();
    let wavy = |c: Cell| -> (f64, f64) {
        let (x, y) = lat.centre(c);
        let (xs, ys) = (x / 1.25, y);
        let theta = ys.atan2(xs);
        let r = 1.0 + 0.16 * (3.0 * theta + phase[0]).sin() + 0.09 * (5.0 * theta + phase[1]).cos()
            + 0.05 * (7.0 * theta + phase[2]).sin();
        (xs.hypot(ys) / r, y.atan2(x))
    };
    let mut ranked: Vec<(f64, f64, Cell)> = (1..l - 1)
        .flat_map(|i| (1..l - 1).map(move |j| (i, j)))
        .map(|c| {
            let (d, angle) = wavy(c);
            (d, angle, c)
        })
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
    ranked.truncate(n_cells);

    // 2. Streets: four urban streets in the core, five towns and three townships around it.
    let core = n_cells * 2 / 5;
    let turn = rng.range_f64(0.0, std::f64::consts::TAU);
    let sector = |angle: f64, k: usize| -> usize {
        let a = (angle - turn).rem_euclid(std::f64::consts::TAU);
        ((a / std::f64::consts::TAU * k as f64) as usize).min(k - 1)
    };
    let mut street_cells: Vec<Vec<Cell>> = vec![Vec::new(); STREETS];
    for (rank, &(_, angle, c)) in ranked.iter().enumerate() {
        let s = if rank < core { sector(angle, 4) } else { 4 + sector(angle, 8) };
        street_cells[s].push(c);
    }
    let kinds: Vec<(StreetKind, u32)> = (0..STREETS)
        .map(|s| match s {
            0..=3 => (StreetKind::Urban, s as u32 + 1),
            4..=8 => (StreetKind::Town, 101 + (s as u32 - 4)),
            _ => (StreetKind::Township, 201 + (s as u32 - 9)),
        })
        .collect();

    let mut used_names: HashSet<String> = HashSet::new();
    let district_code = AreaCode::parse(DISTRICT_CODE).unwrap_or_else(|_| unreachable!());
    let all: HashSet<Cell> = ranked.iter().map(|r| r.2).collect();
    let mut areas = vec![AreaRecord {
        code: district_code.clone(),
        name: DISTRICT_NAME.to_string(),
        level: Level::District,
        parent: None,
        kind: None,
        geometry: outline(&lat, &all),
    }];
    let mut team = Vec::new();
    let comm_shares = capped(apportion(n_comm, &street_cells.iter().map(Vec::len).collect::<Vec<_>>()), 999);
    let mut communities: Vec<(AreaCode, String, Vec<Cell>)> = Vec::new();

    for (s, cells) in street_cells.iter_mut().enumerate() {
        let (kind, seg) = kinds[s];
        let root = unique_place(&mut rng, &mut used_names);
        let suffix = match kind {
            StreetKind::Urban => "街道",
            StreetKind::Town => "镇",
            StreetKind::Township => "乡",
        };
        let street_code = AreaCode::parse(&format!("{DISTRICT_CODE}{seg:03}")).unwrap_or_else(|_| unreachable!());
        let set: HashSet<Cell> = cells.iter().copied().collect();
        areas.push(AreaRecord {
            code: street_code.clone(),
            name: format!("{root}{suffix}"),
            level: Level::Street,
            parent: Some(district_code.clone()),
            kind: None,
            geometry: outline(&lat, &set),
        });
        let mut parts = Vec::new();
        bisect(cells, comm_shares[s], &mut parts);
        // Number communities north→south, west→east by their centre.
        let centre = |p: &Vec<Cell>| -> (i64, i64) {
            let n = p.len().max(1) as i64;
            let (si, sj) = p.iter().fold((0i64, 0i64), |(a, b), c| (a + i64::from(c.0), b + i64::from(c.1)));
            (-(sj * 4 / n), si * 4 / n)
        };
        parts.sort_by_key(centre);
        let villages = match kind {
            StreetKind::Urban => 0,
            StreetKind::Town => parts.len().saturating_sub(1),
            StreetKind::Township => parts.len(),
        };
        let communities_here = parts.len() - villages;
        let village_base = if villages <= 799 && communities_here < 200 { 200 } else { communities_here };
        for (k, p) in parts.into_iter().enumerate() {
            let is_village = k >= communities_here;
            let seg = if is_village { village_base + (k - communities_here) + 1 } else { k + 1 };
            let code = AreaCode::parse(&format!("{street_code}{seg:03}")).unwrap_or_else(|_| unreachable!());
            let name = format!("{}{}", unique_place(&mut rng, &mut used_names), if is_village { "村" } else { "社区" });
            communities.push((code, name, p));
        }
    }

    let dedicated_every = (n_comm / n_dedicated.max(1)).max(1);
    let ded_kinds = [
        DedicatedKind::School,
        DedicatedKind::Hospital,
        DedicatedKind::Market,
        DedicatedKind::School,
        DedicatedKind::EnterprisePark,
        DedicatedKind::School,
        DedicatedKind::Market,
        DedicatedKind::ConstructionSite,
        DedicatedKind::Hospital,
        DedicatedKind::School,
    ];
    let mut placed_dedicated = 0usize;
    for (ci, (code, name, cells)) in communities.into_iter().enumerate() {
        let street = code.implied_parent().unwrap_or_else(|| district_code.clone());
        let set: HashSet<Cell> = cells.iter().copied().collect();
        areas.push(AreaRecord {
            code: code.clone(),
            name: name.clone(),
            level: Level::Community,
            parent: Some(street),
            kind: None,
            geometry: outline(&lat, &set),
        });
        let police = (any_person_name(&mut rng), mobile(&mut rng));
        let mut sorted = cells.clone();
        sorted.sort_unstable_by_key(|&(i, j)| (-j, i));
        for (g, cell) in sorted.iter().enumerate() {
            let gcode = AreaCode::parse(&format!("{code}{:03}", g + 1)).unwrap_or_else(|_| unreachable!());
            let one: HashSet<Cell> = [*cell].into_iter().collect();
            areas.push(AreaRecord {
                code: gcode.clone(),
                name: format!("{name}第{}网格", chinese_ordinal(g + 1)),
                level: Level::Grid,
                parent: Some(code.clone()),
                kind: None,
                geometry: outline(&lat, &one),
            });
            grid_team(&mut rng, &gcode, &police, &mut team);
        }
        if placed_dedicated < n_dedicated && ci % dedicated_every == dedicated_every / 2 {
            let kind = ded_kinds[placed_dedicated % ded_kinds.len()];
            let (cx, cy) = lat.centre(sorted[sorted.len() / 2]);
            let r = 0.2;
            let ring: Vec<Coord<f64>> = (0..=8)
                .map(|k| {
                    let a = std::f64::consts::TAU * f64::from(k % 8) / 8.0 + std::f64::consts::FRAC_PI_8;
                    lat.to_lonlat((cx + r * a.cos(), cy + r * a.sin()))
                })
                .collect();
            let dcode = AreaCode::parse(&format!("{code}901")).unwrap_or_else(|_| unreachable!());
            let root = name.trim_end_matches(['社', '区', '村']);
            let place = match kind {
                DedicatedKind::School => format!("{root}中学"),
                DedicatedKind::Hospital => format!("{root}人民医院"),
                DedicatedKind::Market => format!("{root}农贸市场"),
                DedicatedKind::EnterprisePark => format!("{root}工业园"),
                DedicatedKind::ConstructionSite => format!("{root}安置房工地"),
                DedicatedKind::Other => root.to_string(),
            };
            areas.push(AreaRecord {
                code: dcode.clone(),
                name: format!("{place}专属网格"),
                level: Level::Dedicated,
                parent: Some(code.clone()),
                kind: Some(kind),
                geometry: MultiPolygon::new(vec![Polygon::new(LineString::new(ring), vec![])]),
            });
            for role in [TeamRole::GridLeader, TeamRole::FullTimeMember] {
                let name = any_person_name(&mut rng);
                team.push(TeamMember { area: dcode.clone(), role, name, phone: Some(mobile(&mut rng)) });
            }
            placed_dedicated += 1;
        }
    }
    Ok(DemoDistrict { areas, team })
}

/// A plausible mainland mobile number (synthetic).
pub fn mobile(rng: &mut Rng) -> Phone {
    const PREFIXES: [&str; 12] = ["130", "131", "133", "135", "136", "137", "138", "139", "150", "151", "158", "188"];
    let number = format!("{}{:08}", rng.pick(&PREFIXES), rng.below(100_000_000));
    Phone::parse(&number).unwrap_or_else(|_| unreachable!("always 11 digits starting 13-18"))
}

fn grid_team(rng: &mut Rng, grid: &AreaCode, police: &(String, Phone), team: &mut Vec<TeamMember>) {
    let part_time = rng.below(3);
    let volunteers = rng.below(4);
    let mut roles = vec![TeamRole::GridLeader, TeamRole::FullTimeMember];
    roles.extend(std::iter::repeat_n(TeamRole::PartTimeMember, part_time));
    for role in roles {
        team.push(TeamMember { area: grid.clone(), role, name: any_person_name(rng), phone: Some(mobile(rng)) });
    }
    team.push(TeamMember { area: grid.clone(), role: TeamRole::GridPolice, name: police.0.to_string(), phone: Some(police.1.clone()) });
    for _ in 0..volunteers {
        team.push(TeamMember { area: grid.clone(), role: TeamRole::Volunteer, name: any_person_name(rng), phone: None });
    }
}
