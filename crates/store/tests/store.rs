//! Storage behaviour, on SQLite and on PostgreSQL alike.

use domain::demo::{self, DemoOptions};
use domain::geometry::feature_collection;
use domain::{AreaCode, Level, TeamRole};
use store::index::GridFollower;
use store::testing::fresh;
use store::{AreaFilter, Db, Dialect, StoreError};


store::on_both_backends!(
    demo_loads_and_reads_back,
    import_is_all_or_nothing,
    import_checks_against_the_stored_tree,
    follower_tracks_the_change_log,
    follower_reloads_after_a_bulk_load,
    export_round_trips,
    data_survives_reopening,
    audit_chain_catches_edits,
    concurrent_audit_rows_all_land_in_one_chain,
    the_catalogue_and_calendar_round_trip,
    reports_arriving_together_share_a_commit_and_fail_alone,
);

fn code(s: &str) -> AreaCode {
    AreaCode::parse(s).expect("code")
}

async fn store(d: Dialect) -> Option<Db> {
    fresh(d).await
}

async fn demo_loads_and_reads_back(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let district = demo::generate(DemoOptions::default()).expect("demo");
    let report = db.load_demo(&district).await.expect("load");
    assert_eq!(report.inserted, 1 + 12 + 98 + 628 + 10);
    let grids = db.list_areas(&AreaFilter { level: Some(Level::Grid), ..Default::default() }).await.expect("list");
    assert_eq!(grids.len(), 628);
    let streets = db.list_areas(&AreaFilter { parent: Some(code("430503")), ..Default::default() }).await.expect("list");
    assert_eq!(streets.len(), 12);
    assert!(streets.iter().all(|s| s.level == Level::Street));
    // Grid counts per street add up to the district's.
    let district_row = db.area(&code("430503")).await.expect("read").expect("district");
    let counts = db.grid_counts_by_child(&district_row).await.expect("counts");
    assert_eq!(counts.values().sum::<i64>(), 628);
    assert_eq!(counts.len(), 12);
    // A grid's team comes back leader first, as generated.
    let g = &grids[0];
    let team = db.team_view(&g.code).await.expect("team");
    assert_eq!(team[0].role, TeamRole::GridLeader);
    let expected: Vec<_> = district.team.iter().filter(|m| m.area == g.code).collect();
    assert_eq!(team.len(), expected.len());
    for (got, want) in team.iter().zip(&expected) {
        assert_eq!((got.role, &got.name), (want.role, &want.name));
        // Phones are masked on the way out of the store.
        assert_eq!(got.phone_masked, want.phone.as_ref().map(|p| p.masked()));
        assert!(got.phone_masked.as_ref().is_none_or(|p| p.contains("****")));
    }
    // A second demo into the same store is refused and changes nothing.
    assert!(matches!(db.load_demo(&district).await, Err(StoreError::NotEmpty(749))));
    assert_eq!(db.count_areas().await.expect("count"), 749);
    assert!(db.area(&code("430503999")).await.expect("read").is_none());
}

fn fc(features: &[String]) -> String {
    format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(","))
}

fn square(code: &str, level: &str, parent: Option<&str>, x0: f64, y0: f64, x1: f64, y1: f64) -> String {
    let parent = parent.map_or("null".to_string(), |p| format!("\"{p}\""));
    format!(
        r#"{{"type":"Feature","properties":{{"code":"{code}","name":"测试{code}","level":"{level}","parent":{parent}}},
        "geometry":{{"type":"Polygon","coordinates":[[[{x0},{y0}],[{x1},{y0}],[{x1},{y1}],[{x0},{y1}],[{x0},{y0}]]]}}}}"#
    )
}

fn small_tree() -> Vec<String> {
    vec![
        square("430503", "district", None, 111.0, 27.0, 112.0, 28.0),
        square("430503001", "street", Some("430503"), 111.0, 27.0, 111.5, 27.5),
        square("430503001001", "community", Some("430503001"), 111.0, 27.0, 111.2, 27.2),
        square("430503001001001", "grid", Some("430503001001"), 111.0, 27.0, 111.1, 27.2),
        square("430503001001002", "grid", Some("430503001001"), 111.1, 27.0, 111.2, 27.2),
    ]
}

async fn import_is_all_or_nothing(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let seq0 = db.last_change_seq().await.expect("seq");
    let mut bad = small_tree();
    // A grid whose code does not extend its parent's code: the whole file is refused.
    bad.push(square("430503002001001", "grid", Some("430503001001"), 111.0, 27.0, 111.05, 27.05));
    match db.import_areas(&fc(&bad)).await {
        Err(StoreError::Import(problems)) => {
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!((problems[0].index, problems[0].reason), (5, "code_not_under_parent"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(db.count_areas().await.expect("count"), 0, "nothing of a bad file is stored");
    assert_eq!(db.last_change_seq().await.expect("seq"), seq0, "nothing logged");

    let report = db.import_areas(&fc(&small_tree())).await.expect("import");
    assert_eq!((report.inserted, report.updated), (5, 0));
    // Importing again updates in place; a renamed grid keeps its code.
    let mut again = small_tree();
    again[4] = again[4].replace("测试430503001001002", "改名网格");
    let report = db.import_areas(&fc(&again)).await.expect("reimport");
    assert_eq!((report.inserted, report.updated), (0, 5));
    let g = db.area(&code("430503001001002")).await.expect("read").expect("grid");
    assert_eq!(g.name, "改名网格");
    assert_eq!(g.parent, Some(code("430503001001")));
    assert_eq!(db.last_change_seq().await.expect("seq"), seq0 + 10);

    // Malformed JSON is refused with a reason.
    match db.import_areas("{\"type\": \"FeatureCollection\", ").await {
        Err(StoreError::Import(p)) => assert_eq!(p[0].reason, "malformed_json"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(db.count_areas().await.expect("count"), 5);
}

async fn import_checks_against_the_stored_tree(d: Dialect) {
    let Some(db) = store(d).await else { return };
    db.import_areas(&fc(&small_tree())).await.expect("import");
    // A new grid overlapping a stored grid of the same community is refused.
    let overlapping = square("430503001001003", "grid", Some("430503001001"), 111.05, 27.05, 111.15, 27.15);
    match db.import_areas(&fc(&[overlapping])).await {
        Err(StoreError::Import(p)) => {
            let reasons: Vec<_> = p.iter().map(|p| (p.index, p.reason)).collect();
            assert_eq!(reasons, [(0, "grids_overlap"), (0, "grids_overlap")]);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A parent that is neither in the file nor stored.
    let orphan = square("430503009001", "community", Some("430503009"), 111.0, 27.0, 111.1, 27.1);
    match db.import_areas(&fc(&[orphan])).await {
        Err(StoreError::Import(p)) => assert_eq!(p[0].reason, "unknown_parent"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A new grid that fits beside the stored ones is accepted on its own.
    db.import_areas(&fc(&small_tree()[..2].iter().cloned().chain([square(
        "430503001002",
        "community",
        Some("430503001"),
        111.2,
        27.0,
        111.4,
        27.2,
    )]).collect::<Vec<_>>()))
    .await
    .expect("sibling community");
    assert_eq!(db.count_areas().await.expect("count"), 6);
}

async fn follower_tracks_the_change_log(d: Dialect) {
    let Some(db) = store(d).await else { return };
    db.import_areas(&fc(&small_tree())).await.expect("import");
    let follower = GridFollower::start(&db).await.expect("start");
    assert_eq!(follower.snapshot().len(), 2);
    assert_eq!(follower.snapshot().locate_grid(111.15, 27.1).map(|c| c.to_string()).as_deref(), Some("430503001001002"));
    assert_eq!(follower.refresh(&db).await.expect("refresh"), 0, "nothing new");
    // Another writer (another process, in production) adds a community with a grid.
    let more = vec![
        square("430503001002", "community", Some("430503001"), 111.2, 27.0, 111.4, 27.2),
        square("430503001002001", "grid", Some("430503001002"), 111.2, 27.0, 111.4, 27.2),
    ];
    let before = follower.snapshot();
    db.import_areas(&fc(&more)).await.expect("import");
    assert!(before.locate_grid(111.3, 27.1).is_none(), "a snapshot does not change under its reader");
    assert_eq!(follower.refresh(&db).await.expect("refresh"), 2);
    assert_eq!(follower.snapshot().locate_grid(111.3, 27.1).map(|c| c.to_string()).as_deref(), Some("430503001002001"));
    assert_eq!(follower.snapshot().len(), 3);
    assert_eq!(follower.last_seq().await, db.last_change_seq().await.expect("seq"));
    // Sequence numbers only grow.
    let changes = db.changes_since(0, 100).await.expect("changes");
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(changes.len(), 7);
}

async fn follower_reloads_after_a_bulk_load(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let follower = GridFollower::start(&db).await.expect("start");
    assert!(follower.snapshot().is_empty());
    // 749 changes in one batch: the follower reloads every grid in one query.
    let district = demo::generate(DemoOptions::default()).expect("demo");
    db.load_demo(&district).await.expect("load");
    assert_eq!(follower.refresh(&db).await.expect("refresh"), 749);
    let index = follower.snapshot();
    assert_eq!(index.len(), 638);
    let fresh_index = domain::GridIndex::build(&district.areas);
    let mut rng = domain::rng::Rng::new(3);
    for _ in 0..500 {
        let lat = demo::CENTRE_LAT + rng.range_f64(-0.08, 0.08);
        let lon = demo::CENTRE_LON + rng.range_f64(-0.1, 0.1);
        assert_eq!(index.locate_grid(lon, lat), fresh_index.locate_grid(lon, lat));
    }
}

async fn export_round_trips(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let district = demo::generate(DemoOptions { scale: 1, seed: 5 }).expect("demo");
    db.load_demo(&district).await.expect("load");
    let all = db.area_records(&AreaFilter::default()).await.expect("records");
    assert_eq!(all.len(), district.areas.len());
    let text = feature_collection(&all).to_string();
    let Some(other) = store(d).await else { return };
    let report = other.import_areas(&text).await.expect("import the export");
    assert_eq!(report.inserted, district.areas.len());
    let back = other.area_records(&AreaFilter::default()).await.expect("records");
    assert_eq!(back, all, "geometry and properties survive export → import exactly");
    let streets = other
        .area_records(&AreaFilter { level: Some(Level::Street), within: Some(code("430503")), ..Default::default() })
        .await
        .expect("records");
    assert_eq!(streets.len(), 12);
}

async fn data_survives_reopening(d: Dialect) {
    let Some(url) = store::testing::fresh_url(d).await else { return };
    {
        let db = Db::open(&url).await.expect("open");
        db.import_areas(&fc(&small_tree())).await.expect("import");
        db.close().await;
    }
    // Reopening runs the migrations again (a no-op) and finds everything.
    let db = Db::open(&url).await.expect("reopen");
    assert_eq!(db.count_areas().await.expect("count"), 5);
    assert_eq!(db.last_change_seq().await.expect("seq"), 5);
}

#[tokio::test]
async fn unknown_schemes_and_unreachable_servers_are_refused() {
    let err = Db::open("mysql://root@127.0.0.1/test").await.expect_err("refused");
    assert_eq!(err.code(), "unknown_db_scheme");
    assert!(err.to_string().contains("sqlite://"), "{err}");
    let err = Db::open("postgres://postgres@127.0.0.1:1/test").await.expect_err("refused");
    assert_eq!(err.code(), "db_unreachable");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

async fn audit_chain_catches_edits(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let actor = store::audit::Actor::cli("test");
    for k in 0..5 {
        db.audit(actor.entry("test.action", "thing", &k.to_string(), "ok", "")).await.expect("audit");
    }
    assert_eq!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: 5 });
    // The trail refuses changes outright…
    assert!(db.try_update_audit_for_tests().await.is_err());
    assert!(db.try_delete_audit_for_tests().await.is_err());
    assert_eq!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: 5 });
    // …and an edit made around the triggers is found, at its row.
    db.tamper_audit_for_tests(4, "edited").await.expect("tamper");
    match db.verify_audit().await.expect("verify") {
        store::audit::ChainCheck::Broken { seq, reason } => {
            assert_eq!(seq, 4);
            assert!(reason.contains("do not match"), "{reason}");
        }
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

async fn concurrent_audit_rows_all_land_in_one_chain(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let actor = store::audit::Actor::cli("test");
    db.import_areas(&fc(&small_tree())).await.expect("import");
    // Many writers at once, mixed with a change that writes its row in its own
    // transaction: every row lands, once, and the chain stays whole.
    let mut tasks = Vec::new();
    for k in 0..300 {
        let (db, actor) = (db.clone(), actor.clone());
        tasks.push(tokio::spawn(async move { db.audit(actor.entry("read", "thing", &k.to_string(), "ok", "")).await }));
    }
    let account = store::auth::NewAccount {
        username: "zhou.min".into(),
        display_name: "周敏".into(),
        role: domain::Role::GridWorker,
        area: code("430503001001001"),
        department: None,
        password: "patrol-route-77".into(),
        temporary: false,
    };
    db.create_account(&actor, account).await.expect("account");
    let mut seqs: Vec<i64> = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("task").expect("audit"));
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 300, "every row got its own sequence number");
    assert_eq!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: 301 });
}

async fn the_catalogue_and_calendar_round_trip(d: Dialect) {
    use domain::calendar::{Day, TimeLimit};
    let Some(db) = store(d).await else { return };
    let actor = store::audit::Actor::cli("test");
    let (depts, cats) = (domain::catalogue::demo_departments(), domain::catalogue::demo_categories());
    db.load_catalogue(&actor, &depts, &cats, &store::catalogue::demo_calendar()).await.expect("load");
    assert_eq!(db.categories().await.expect("categories"), {
        let mut c = cats.clone();
        c.sort_by(|a, b| a.code.cmp(&b.code));
        c
    });
    assert_eq!(db.departments().await.expect("departments").len(), depts.len());
    // Loading again replaces, never duplicates.
    db.load_catalogue(&actor, &depts, &cats, &store::catalogue::demo_calendar()).await.expect("reload");
    assert_eq!(db.categories().await.expect("categories").len(), cats.len());
    // The stored calendar drives deadlines: 国庆 holidays, then the make-up Saturday.
    let cal = db.work_calendar().await.expect("calendar");
    let at = |m: u32, day: u32, hh: u32| Day::from_ymd(2026, m, day).expect("day").at_minute(hh * 60);
    assert_eq!(cal.deadline(at(9, 30, 17), TimeLimit::WorkingHours(1)), at(10, 8, 9));
    let oct = db.calendar_days(Day::from_ymd(2026, 10, 1).expect("d"), Day::from_ymd(2026, 10, 31).expect("d")).await.expect("days");
    assert_eq!(oct.len(), 8, "seven days of 国庆 and one make-up Saturday");
    // A bad category code is refused and nothing changes.
    let mut bad = cats[1].clone();
    bad.code = "X0101".into();
    assert!(db.load_catalogue(&actor, &[], &[bad], &[]).await.is_err());
    assert_eq!(db.categories().await.expect("categories").len(), cats.len());
}

async fn reports_arriving_together_share_a_commit_and_fail_alone(d: Dialect) {
    use store::incidents::{NewIncident, Source};
    let Some(db) = store(d).await else { return };
    let actor = store::audit::Actor::cli("test");
    let district = demo::generate(DemoOptions::default()).expect("demo");
    db.load_demo(&district).await.expect("load");
    db.load_catalogue(&actor, &domain::catalogue::demo_departments(), &domain::catalogue::demo_categories(), &[]).await.expect("catalogue");
    let grids: Vec<AreaCode> = district.areas.iter().filter(|a| a.level == Level::Grid).map(|a| a.code.clone()).take(20).collect();
    let account = store::auth::NewAccount {
        username: "li.wei".into(),
        display_name: "李伟".into(),
        role: domain::Role::GridWorker,
        area: code("430503"),
        department: None,
        password: "patrol-route-77".into(),
        temporary: false,
    };
    let worker = db.create_account(&actor, account).await.expect("account").id;
    // 200 reports at once. Every fourth carries an Idempotency-Key that another report
    // repeats (a flaky network's retry); one names a grid the store does not hold, so its
    // batch fails and is written again report by report.
    let bad = 137;
    let mut tasks = Vec::new();
    for k in 0..200usize {
        let (db, actor) = (db.clone(), actor.clone());
        let grid = if k == bad { code("430503001001999") } else { grids[k % grids.len()].clone() };
        let key = (k % 4 == 0).then(|| format!("retry-{}", k % 40));
        let point = (27.2 + k as f64 * 1.234_567_890_123e-7, 111.45 + k as f64 * 9.876_543_21e-8);
        let new = NewIncident {
            category: "C0101".into(),
            description: format!("井盖缺失 #{k}"),
            point: Some(point),
            address: None,
            source: Source::GridPatrol,
            grid: Some(grid),
            reporter_phone: None,
        };
        tasks.push(tokio::spawn(async move { (k, point, db.create_incident(&actor, Some(worker), new, key.as_deref()).await) }));
    }
    let mut by_key: std::collections::HashMap<usize, i64> = std::collections::HashMap::new();
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (k, point, r) = t.await.expect("task");
        if k == bad {
            assert!(r.is_err(), "a report naming an unknown grid is refused");
            continue;
        }
        let (inc, _) = r.unwrap_or_else(|e| panic!("report {k}: {e}"));
        ids.insert(inc.id);
        if k % 4 == 0 {
            let first = *by_key.entry(k % 40).or_insert(inc.id);
            assert_eq!(first, inc.id, "a retried key returns the first incident");
        } else {
            assert_eq!((inc.lat, inc.lon), (Some(point.0), Some(point.1)), "the point comes back exactly");
            assert_eq!(inc.description, format!("井盖缺失 #{k}"));
            // What the report answered is what the store holds.
            assert_eq!(db.incident(inc.id).await.expect("read").as_ref(), Some(&inc), "report {k} reads back as answered");
        }
    }
    // 150 unkeyed minus the bad one, plus 10 distinct keys.
    assert_eq!(ids.len(), 149 + 10);
    let mut stored = 0;
    for id in &ids {
        let inc = db.incident(*id).await.expect("read").expect("stored");
        assert!(inc.clock.is_some(), "the filing step's clock is stored");
        let timeline = db.timeline(*id).await.expect("timeline");
        assert_eq!(timeline.iter().map(|t| t.action.as_str()).collect::<Vec<_>>(), ["report"]);
        stored += 1;
    }
    assert_eq!(stored, ids.len());
    assert!(db.incident(ids.last().expect("last") + 1).await.expect("read").is_none(), "nothing else was stored");
    // An address-only report with a phone reads back as answered too (the district owns it,
    // the phone masked).
    let new = NewIncident {
        category: "E0201".into(),
        description: " 占道经营 ".into(),
        point: None,
        address: Some(" 红旗路 12 号 ".into()),
        source: Source::Hotline,
        grid: None,
        reporter_phone: Some(domain::Phone::parse("13812345678").expect("phone")),
    };
    let (inc, created) = db.create_incident(&actor, Some(worker), new, None).await.expect("report");
    assert!(created);
    assert_eq!((inc.area.as_str(), inc.address.as_deref(), inc.description.as_str()), ("430503", Some("红旗路 12 号"), "占道经营"));
    assert_eq!(inc.reporter_phone_masked.as_deref(), Some("138****5678"));
    assert_eq!(db.incident(inc.id).await.expect("read"), Some(inc));
}
