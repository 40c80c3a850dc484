//! Behaviour of the domain core: the demo district, import checks and the grid index.

use std::collections::HashMap;

use domain::demo::{self, DemoOptions};
use domain::geometry::{self, AreaRecord, check_import, parse_feature_collection};
use domain::locate::{Position, position_in};
use domain::{GridIndex, Level};
use geo::Validation;

fn base() -> demo::DemoDistrict {
    demo::generate(DemoOptions { scale: 1, seed: 1 }).expect("demo")
}

fn count(d: &demo::DemoDistrict, level: Level) -> usize {
    d.areas.iter().filter(|a| a.level == level).count()
}

#[test]
fn demo_has_the_reference_shape() {
    let d = base();
    assert_eq!(count(&d, Level::District), 1);
    assert_eq!(count(&d, Level::Street), 12);
    assert_eq!(count(&d, Level::Community), 98);
    assert_eq!(count(&d, Level::Grid), 628);
    assert_eq!(count(&d, Level::Dedicated), 10);
    assert_eq!(d.areas[0].code.as_str(), "430503");
    // Every grid has a leader and a full-time member, and names look Chinese.
    for g in d.areas.iter().filter(|a| a.level.is_grid()) {
        let roles: Vec<_> = d.team.iter().filter(|m| m.area == g.code).map(|m| m.role).collect();
        assert!(roles.contains(&domain::TeamRole::GridLeader), "{} has no leader", g.code);
        assert!(roles.contains(&domain::TeamRole::FullTimeMember), "{} has no member", g.code);
    }
    for m in d.team.iter().take(50) {
        let n = m.name.chars().count();
        assert!((2..=4).contains(&n), "odd name {:?}", m.name);
        assert!(m.name.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
    }
}

#[test]
fn demo_is_deterministic_and_seeded() {
    let a = base();
    let b = base();
    assert_eq!(a.areas, b.areas);
    assert_eq!(a.team, b.team);
    let c = demo::generate(DemoOptions { scale: 1, seed: 2 }).expect("demo");
    assert_ne!(a.areas[1].geometry, c.areas[1].geometry);
}

#[test]
fn demo_passes_every_import_check() {
    let d = base();
    for a in &d.areas {
        assert!(a.geometry.is_valid(), "{} invalid: {:?}", a.code, a.geometry.validation_errors());
    }
    let features: Vec<(usize, AreaRecord)> = d.areas.iter().cloned().enumerate().collect();
    let problems = check_import(&features, &HashMap::new());
    assert!(problems.is_empty(), "{problems:#?}");
    // And it round-trips through GeoJSON text exactly.
    let text = geometry::feature_collection(&d.areas).to_string();
    let (parsed, problems) = parse_feature_collection(&text).expect("parse");
    assert!(problems.is_empty());
    let back: Vec<AreaRecord> = parsed.into_iter().map(|(_, r)| r).collect();
    assert_eq!(back, d.areas);
}

#[test]
fn points_near_the_centre_fall_in_grids() {
    let d = base();
    let idx = GridIndex::build(&d.areas);
    let mut rng = domain::rng::Rng::new(7);
    for _ in 0..2000 {
        let lat = demo::CENTRE_LAT + rng.range_f64(-0.02, 0.02);
        let lon = demo::CENTRE_LON + rng.range_f64(-0.02, 0.02);
        let code = idx.locate_grid(lon, lat).unwrap_or_else(|| panic!("({lat}, {lon}) unassigned"));
        // The grid found really covers the point, and no other grid holds it inside.
        let grid = d.areas.iter().find(|a| &a.code == code).expect("grid");
        assert_ne!(position_in(&grid.geometry, lon, lat), Position::Outside);
    }
    // Far away: unassigned.
    assert!(idx.locate_grid(116.4, 39.9).is_none());
}

#[test]
fn index_agrees_with_a_brute_force_scan() {
    let d = demo::generate(DemoOptions { scale: 2, seed: 3 }).expect("demo");
    let idx = GridIndex::build(&d.areas);
    let grids: Vec<&AreaRecord> = d.areas.iter().filter(|a| a.level == Level::Grid).collect();
    let mut rng = domain::rng::Rng::new(11);
    let mut assigned = 0;
    for _ in 0..3000 {
        let lat = demo::CENTRE_LAT + rng.range_f64(-0.1, 0.1);
        let lon = demo::CENTRE_LON + rng.range_f64(-0.12, 0.12);
        let brute = grids
            .iter()
            .filter(|g| position_in(&g.geometry, lon, lat) != Position::Outside)
            .map(|g| &g.code)
            .min();
        assert_eq!(idx.locate_grid(lon, lat), brute, "at ({lat}, {lon})");
        assigned += usize::from(brute.is_some());
    }
    assert!(assigned > 1000 && assigned < 3000, "points should land both in and out: {assigned}");
    // A shared vertex of the lattice goes to the smallest code among its grids.
    let g = grids[grids.len() / 2];
    let v = g.geometry.0[0].exterior().0[0];
    let owners: Vec<_> = grids
        .iter()
        .filter(|o| position_in(&o.geometry, v.x, v.y) == Position::OnBoundary)
        .map(|o| &o.code)
        .collect();
    assert!(owners.len() >= 2, "a lattice vertex is shared");
    assert_eq!(idx.locate_grid(v.x, v.y), owners.iter().copied().min());
}

fn fc(features: &str) -> String {
    format!(r#"{{"type":"FeatureCollection","features":[{features}]}}"#)
}

fn square(code: &str, level: &str, parent: &str, x0: f64, y0: f64, x1: f64, y1: f64) -> String {
    let parent = if parent.is_empty() { "null".to_string() } else { format!("\"{parent}\"") };
    format!(
        r#"{{"type":"Feature","properties":{{"code":"{code}","name":"测试{code}","level":"{level}","parent":{parent}}},
        "geometry":{{"type":"Polygon","coordinates":[[[{x0},{y0}],[{x1},{y0}],[{x1},{y1}],[{x0},{y1}],[{x0},{y0}]]]}}}}"#
    )
}

fn problems_of(text: &str) -> Vec<geometry::ImportProblem> {
    match parse_feature_collection(text) {
        Err(p) => p,
        Ok((f, mut problems)) => {
            problems.extend(check_import(&f, &HashMap::new()));
            problems.sort_by_key(|p| p.index);
            problems
        }
    }
}

#[test]
fn import_checks_report_every_bad_feature() {
    let good = [
        square("430503", "district", "", 0.0, 0.0, 10.0, 10.0),
        square("430503001", "street", "430503", 0.0, 0.0, 5.0, 5.0),
        square("430503001001", "community", "430503001", 0.0, 0.0, 2.0, 2.0),
        square("430503001001001", "grid", "430503001001", 0.0, 0.0, 1.0, 2.0),
        square("430503001001002", "grid", "430503001001", 1.0, 0.0, 2.0, 2.0),
    ];
    assert!(problems_of(&fc(&good.join(","))).is_empty());

    let mut bad = good.to_vec();
    // 5: code does not extend its parent.
    bad.push(square("430503002001003", "grid", "430503001001", 0.0, 0.0, 1.0, 1.0));
    // 6: overlaps grid 001.
    bad.push(square("430503001001003", "grid", "430503001001", 0.5, 0.5, 1.5, 1.5));
    // 7: lies outside its parent.
    bad.push(square("430503001002", "community", "430503001", 4.0, 4.0, 7.0, 7.0));
    // 8: wrong length for its level.
    bad.push(square("4305030010", "street", "430503", 0.0, 0.0, 1.0, 1.0));
    let p = problems_of(&fc(&bad.join(",")));
    let got: Vec<(usize, &str)> = p.iter().map(|p| (p.index, p.reason)).collect();
    assert_eq!(
        got,
        [
            // 003 overlaps both 001 and 002: each pair is reported on both sides.
            (3, "grids_overlap"),
            (4, "grids_overlap"),
            (5, "code_not_under_parent"),
            (6, "grids_overlap"),
            (6, "grids_overlap"),
            (7, "outside_parent"),
            (8, "invalid_area_code")
        ]
    );
}

#[test]
fn import_refuses_malformed_geometry() {
    let unclosed = r#"{"type":"Feature","properties":{"code":"430503","name":"区","level":"district","parent":null},
        "geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}}"#;
    let bowtie = r#"{"type":"Feature","properties":{"code":"430504","name":"区","level":"district","parent":null},
        "geometry":{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}}"#;
    let point = r#"{"type":"Feature","properties":{"code":"430505","name":"区","level":"district","parent":null},
        "geometry":{"type":"Point","coordinates":[0,0]}}"#;
    let p = problems_of(&fc(&[unclosed, bowtie, point].join(",")));
    let got: Vec<(usize, &str)> = p.iter().map(|p| (p.index, p.reason)).collect();
    assert_eq!(got, [(0, "invalid_geometry"), (1, "invalid_geometry"), (2, "invalid_geometry")]);
    assert!(p[0].message.contains("not closed"), "{}", p[0].message);
    assert!(p[1].message.contains("not valid"), "{}", p[1].message);
    assert_eq!(problems_of("{not json")[0].reason, "malformed_json");
    assert_eq!(problems_of(r#"{"type":"Feature"}"#)[0].reason, "not_a_feature_collection");
}

#[test]
fn demo_scales_with_unique_codes_and_names() {
    let d = demo::generate(DemoOptions { scale: 100, seed: 1 }).expect("demo");
    assert_eq!(count(&d, Level::Street), 12);
    assert_eq!(count(&d, Level::Community), 9_800);
    assert_eq!(count(&d, Level::Grid), 62_800);
    assert_eq!(count(&d, Level::Dedicated), 1_000);
    let codes: std::collections::HashSet<_> = d.areas.iter().map(|a| &a.code).collect();
    assert_eq!(codes.len(), d.areas.len());
    let communities: std::collections::HashSet<_> =
        d.areas.iter().filter(|a| a.level == Level::Community).map(|a| &a.name).collect();
    assert_eq!(communities.len(), 9_800, "community names are unique");
    assert!(matches!(demo::generate(DemoOptions { scale: 101, seed: 1 }), Err(demo::DemoError::Scale(101))));
}
