//! Storage behaviour, on SQLite and on PostgreSQL alike.

use domain::demo::{self, DemoOptions};
use domain::geometry::feature_collection;
use domain::{AreaCode, Level, TeamRole};
use store::index::GridFollower;
use store::testing::fresh;
use store::{AreaFilter, Db, Dialect, StoreError};

#[path = "store/register_import.rs"]
mod register_import;


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
    an_ended_processs_audit_spool_is_imported_once,
    unreadable_spool_lines_are_named_in_the_trail_and_the_others_land,
    a_live_processs_audit_spool_is_left_alone,
    a_cancelled_read_does_not_stall_the_audit_spool,
    audit_search_by_block_finds_what_a_full_scan_finds,
    a_nul_in_an_audit_row_is_stored_as_a_replacement_character,
    the_audit_spool_rotates_and_removes_imported_files,
    threads_append_through_their_own_spool_files,
    a_flush_fails_after_three_failed_imports_and_the_rows_land_later,
    the_catalogue_and_calendar_round_trip,
    reports_arriving_together_share_a_commit_and_fail_alone,
    register_household_with_members,
    register_refuses_bad_input_and_changes_nothing,
    register_refuses_a_stale_version,
    register_move_is_one_operation_with_both_sides_in_history,
    register_is_scoped_by_grid_and_role,
    register_masks_and_unmasks_with_a_reason,
    register_organisations_and_links,
    collection_progress_follows_visits_and_people,
    collection_is_scoped_and_refuses_bad_input,
    register_lists_filter_by_name_and_address_and_page,
    collection_demo_seed_works_with_or_without_houses,
    demo_population_is_plausible,
    register_lists_filter_persons,
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
    for t in tasks {
        t.await.expect("task").expect("audit");
    }
    let q = store::audit::AuditQuery { action: Some("read".into()), limit: 1000, ..Default::default() };
    let rows = db.audit_rows_for_tests(&q).await.expect("rows");
    let mut ids: Vec<i64> = rows.iter().map(|r| r.entry.object_id.parse().expect("id")).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..300).collect::<Vec<i64>>(), "every row landed once");
    let mut seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), 300, "every row got its own sequence number");
    assert_eq!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: 301 });
}

/// Every row of the trail, newest first, read page by page without the block index.
async fn whole_trail(db: &Db) -> Vec<store::audit::AuditRow> {
    let mut all = Vec::new();
    loop {
        let q = store::audit::AuditQuery { before_seq: all.last().map(|r: &store::audit::AuditRow| r.seq), limit: 1000, ..Default::default() };
        let page = db.audit_rows_for_tests(&q).await.expect("page");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

async fn audit_search_by_block_finds_what_a_full_scan_finds(d: Dialect) {
    use store::audit::AuditQuery;
    let Some(db) = store(d).await else { return };
    // 2,600 rows over three blocks of 1,024, with a rare actor on both sides of the first
    // block edge, on the second edge and on the last row.
    let actor_of = |i: usize| match i {
        1023 | 1024 | 2048 | 2600 => "c.rare",
        _ if i.is_multiple_of(5) => "a.one",
        _ => "b.two",
    };
    for i in 1..=2600usize {
        let actor = store::audit::Actor { kind: "user".into(), name: actor_of(i).into(), ..Default::default() };
        let action = if i % 2 == 0 { "person.read" } else { "house.read" };
        db.audit_as(&actor, action, "thing", &i.to_string(), "ok", "").await.expect("audit");
    }
    // Then a spool that an ended process left, with rows read long before: imported now,
    // they come after the others in the trail but are the oldest by time.
    let dir = db.audit_spool_dir().to_path_buf();
    let url = db.url().to_string();
    db.close_audit().await.expect("close");
    drop(db);
    let old: String = (0..30)
        .map(|k| {
            let e = domain::audit::AuditEntry {
                at: 1_600_000_000_000 + k,
                actor_kind: "user".into(),
                actor_name: if k % 2 == 0 { "d.late".into() } else { "b.two".into() },
                action: "person.read".into(),
                object_type: "thing".into(),
                object_id: format!("late-{k}"),
                outcome: "ok".into(),
                ..Default::default()
            };
            format!("{}\n", serde_json::to_string(&e).expect("json"))
        })
        .collect();
    std::fs::write(dir.join(format!("1600000000000-{}-late-1.spool", std::process::id())), old).expect("spool");
    let db = Db::open(&url).await.expect("reopen");
    let all = whole_trail(&db).await;
    assert_eq!(all.len(), 2630);
    assert_eq!((all[all.len() - 1].seq, all[0].seq), (1, 2630), "rows took the seq numbers in the order written");
    assert_eq!(all[all.len() - 1024].entry.actor_name, "c.rare", "seq 1024 opens the second block");
    let new_at = |seq: i64| all.iter().find(|r| r.seq == seq).expect("row").entry.at;
    let (t1500, t2000) = (new_at(1500), new_at(2000));

    let queries = [
        AuditQuery { actor: Some("c.rare".into()), ..Default::default() },
        AuditQuery { actor: Some("d.late".into()), ..Default::default() },
        AuditQuery { actor: Some("a.one".into()), action: Some("person.read".into()), ..Default::default() },
        AuditQuery { actor: Some("b.two".into()), before_seq: Some(1025), ..Default::default() },
        AuditQuery { actor: Some("b.two".into()), before_seq: Some(1024), ..Default::default() },
        AuditQuery { actor: Some("c.rare".into()), before_seq: Some(2048), ..Default::default() },
        AuditQuery { actor: Some("nobody".into()), ..Default::default() },
        AuditQuery { from_ms: Some(1_600_000_000_000), to_ms: Some(1_600_000_000_010), ..Default::default() },
        AuditQuery { from_ms: Some(t1500), to_ms: Some(t2000), ..Default::default() },
        AuditQuery { to_ms: Some(t1500), ..Default::default() },
        AuditQuery { from_ms: Some(t2000), actor: Some("b.two".into()), ..Default::default() },
        AuditQuery { to_ms: Some(t2000), actor: Some("b.two".into()), before_seq: Some(1030), ..Default::default() },
        AuditQuery { from_ms: Some(t1500), before_seq: Some(1), ..Default::default() },
    ];
    for q in queries {
        let matches = |r: &&store::audit::AuditRow| {
            let e = &r.entry;
            q.actor.as_ref().is_none_or(|a| &e.actor_name == a)
                && q.action.as_ref().is_none_or(|a| &e.action == a)
                && q.from_ms.is_none_or(|t| e.at >= t)
                && q.to_ms.is_none_or(|t| e.at < t)
                && q.before_seq.is_none_or(|s| r.seq < s)
        };
        let want: Vec<i64> = all.iter().filter(matches).map(|r| r.seq).collect();
        // One page of everything, then pages of 7 following the cursor across block edges.
        let got: Vec<i64> = db.audit_rows_for_tests(&AuditQuery { limit: 1000, ..q.clone() }).await.expect("search").iter().map(|r| r.seq).collect();
        assert_eq!(got, want.iter().copied().take(1000).collect::<Vec<_>>(), "{q:?}");
        let mut paged = Vec::new();
        let mut cursor = q.before_seq;
        loop {
            let page = db.audit_rows_for_tests(&AuditQuery { limit: 7, before_seq: cursor, ..q.clone() }).await.expect("page");
            let Some(last) = page.last() else { break };
            cursor = Some(last.seq);
            paged.extend(page.iter().map(|r| r.seq));
        }
        assert_eq!(paged, want, "paged {q:?}");
    }
    assert_eq!(db.audit_rows_for_tests(&AuditQuery { actor: Some("c.rare".into()), limit: 10, ..Default::default() }).await.expect("rare").len(), 4);

    // The index is checked with the chain: a row it does not list is named.
    assert_eq!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: 2630 });
    assert_eq!(db.drop_audit_index_entry_for_tests("c.rare", 1).await.expect("drop"), 1);
    match db.verify_audit().await.expect("verify") {
        store::audit::ChainCheck::Broken { seq, reason } => {
            assert_eq!(seq, 1024);
            assert!(reason.contains("search index"), "{reason}");
        }
        other => panic!("expected the missing index entry to be found, got {other:?}"),
    }
}

async fn a_nul_in_an_audit_row_is_stored_as_a_replacement_character(d: Dialect) {
    let Some(db) = store(d).await else { return };
    // A failed login records the name as typed, and a reason is free text: either can hold
    // a NUL, which PostgreSQL's text cannot. The row is kept, with U+FFFD in its place.
    let claimed = store::audit::Actor::anonymous("li\0na", "op-1", "10.0.0.9");
    db.audit_as(&claimed, "login", "account", "li\0na", "failed", "原因\0说明").await.expect("audit");
    db.audit_as(&claimed, "login", "account", "after", "failed", "").await.expect("audit after");
    let q = store::audit::AuditQuery { action: Some("login".into()), limit: 10, ..Default::default() };
    let rows = db.audit_rows_for_tests(&q).await.expect("rows");
    assert_eq!(rows.len(), 2, "the row and the one after it were both imported");
    let row = &rows[1].entry;
    assert_eq!((row.actor_name.as_str(), row.object_id.as_str(), row.detail.as_str()), ("li\u{FFFD}na", "li\u{FFFD}na", "原因\u{FFFD}说明"));
    let by_name = store::audit::AuditQuery { actor: Some("li\u{FFFD}na".into()), limit: 10, ..Default::default() };
    assert_eq!(db.audit_rows_for_tests(&by_name).await.expect("by name").len(), 2);
    assert_eq!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: 2 });
}

async fn the_audit_spool_rotates_and_removes_imported_files(d: Dialect) {
    let Some(db) = store(d).await else { return };
    // Files close at 4 KB here instead of 64 MB: 300 rows fill a dozen of them.
    db.set_audit_spool_rotation_for_tests(4096);
    let actor = store::audit::Actor::cli("test");
    // In waves of ten at once (a file is closed between two rows).
    for wave in 0..30 {
        let mut tasks = Vec::new();
        for k in wave * 10..wave * 10 + 10 {
            let (db, actor) = (db.clone(), actor.clone());
            tasks.push(tokio::spawn(async move { db.audit(actor.entry("rotate.read", "thing", &k.to_string(), "ok", "")).await }));
        }
        for t in tasks {
            t.await.expect("task").expect("audit");
        }
    }
    let q = store::audit::AuditQuery { action: Some("rotate.read".into()), limit: 1000, ..Default::default() };
    let mut ids: Vec<i64> = db.audit_rows_for_tests(&q).await.expect("rows").iter().map(|r| r.entry.object_id.parse().expect("id")).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..300).collect::<Vec<i64>>(), "every row landed once");
    let progress = db.audit_spool_progress_for_tests().await.expect("progress");
    assert!(progress.len() >= 5, "the rows went to several files: {progress:?}");
    assert_eq!(progress.iter().map(|(_, n)| n).sum::<i64>(), 300);
    // A file closed for writing is removed once imported; the one being written stays.
    // (The last file to close may still wait for the importer's next round.)
    let spool_files = || {
        std::fs::read_dir(db.audit_spool_dir()).expect("dir").filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.ends_with(".spool")).count()
    };
    for _ in 0..200 {
        if spool_files() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(spool_files(), 1);
    assert_eq!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: 300 });
}

async fn threads_append_through_their_own_spool_files(d: Dialect) {
    let Some(db) = store(d).await else { return };
    // Four threads append at once, as the server's worker threads do. Each thread writes
    // through a writer (and a file) of its own, so they do not queue on one lock.
    let threads = 4;
    let per_thread = 50;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let db = db.clone();
            scope.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
                let actor = store::audit::Actor::cli(&format!("thread-{t}"));
                for k in 0..per_thread {
                    rt.block_on(db.audit(actor.entry("shard.read", "thing", &k.to_string(), "ok", ""))).expect("audit");
                }
            });
        }
    });
    let files = || {
        std::fs::read_dir(db.audit_spool_dir()).expect("dir").filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.ends_with(".spool")).count()
    };
    assert!(files() >= 2, "the threads wrote through several files");
    // Every row lands once, and each thread's rows keep the order it wrote them in.
    let q = store::audit::AuditQuery { action: Some("shard.read".into()), limit: 1000, ..Default::default() };
    let mut rows = db.audit_rows_for_tests(&q).await.expect("rows");
    rows.sort_by_key(|r| r.seq);
    assert_eq!(rows.len(), threads * per_thread);
    for t in 0..threads {
        let ids: Vec<i64> = rows.iter().filter(|r| r.entry.operation_id == format!("thread-{t}")).map(|r| r.entry.object_id.parse().expect("id")).collect();
        assert_eq!(ids, (0..per_thread as i64).collect::<Vec<_>>(), "thread {t}'s rows, in its order");
    }
    assert_eq!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: (threads * per_thread) as i64 });
    // A clean close removes every writer's file.
    db.close_audit().await.expect("close");
    assert_eq!(files(), 0, "no spool file is left after a clean close");
}

async fn a_flush_fails_after_three_failed_imports_and_the_rows_land_later(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let actor = store::audit::Actor::cli("test");
    db.audit(actor.entry("outage.read", "thing", "before", "ok", "")).await.expect("audit");
    db.flush_audit().await.expect("flush");
    // The trail's table is out of reach: rows are still taken (they are in the spool), but
    // a flush, which a search or verify needs, reports the import's error.
    db.hide_audit_log_for_tests(true).await.expect("hide");
    for k in 0..5 {
        db.audit(actor.entry("outage.read", "thing", &k.to_string(), "ok", "")).await.expect("audit while hidden");
    }
    let err = db.flush_audit().await.expect_err("the import fails");
    assert!(err.to_string().contains("could not be imported"), "{err}");
    db.hide_audit_log_for_tests(false).await.expect("restore");
    let q = store::audit::AuditQuery { action: Some("outage.read".into()), limit: 100, ..Default::default() };
    let ids: Vec<String> = db.audit_rows_for_tests(&q).await.expect("rows").into_iter().rev().map(|r| r.entry.object_id).collect();
    assert_eq!(ids, ["before", "0", "1", "2", "3", "4"], "each row once, in order");
    assert_eq!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: 6 });
}

/// Spool lines as a process writes them: one row a line, its fields tab-separated and
/// escaped as COPY's text format reads them; every fourth line (k % 4 == 2) is the JSON
/// line of earlier versions, which a spool left by an older process holds.
fn spool_lines(from: usize, to: usize) -> String {
    (from..to)
        .map(|k| {
            let e = domain::audit::AuditEntry {
                at: 1_795_000_000_000 + k as i64,
                actor_kind: "user".into(),
                actor_id: (k % 3 != 1).then_some(7),
                actor_name: "zhou.min".into(),
                action: "person.read".into(),
                object_type: "person".into(),
                object_id: k.to_string(),
                outcome: "ok".into(),
                // Escapes of every kind, none at all, and nothing.
                detail: ["走访核实 \"户籍\"\n\t\\ \u{1}😀", "", "入户走访"][k % 3].into(),
                operation_id: format!("op-{k}"),
                client_addr: "10.0.0.8".into(),
            };
            if k % 4 == 2 {
                return format!("{}\n", serde_json::to_string(&e).expect("json"));
            }
            let esc = |f: &str| f.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r");
            let id = e.actor_id.map_or("\\N".to_string(), |id| id.to_string());
            let fields = [e.at.to_string(), esc(&e.actor_kind), id, esc(&e.actor_name), esc(&e.action), esc(&e.object_type), esc(&e.object_id), esc(&e.outcome), esc(&e.detail), esc(&e.operation_id), esc(&e.client_addr)];
            format!("{}\n", fields.join("\t"))
        })
        .collect()
}

async fn read_rows(db: &Db) -> Vec<store::audit::AuditRow> {
    let q = store::audit::AuditQuery { action: Some("person.read".into()), limit: 1000, ..Default::default() };
    let mut rows = db.audit_rows_for_tests(&q).await.expect("rows");
    rows.reverse();
    rows
}

async fn an_ended_processs_audit_spool_is_imported_once(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let dir = db.audit_spool_dir().to_path_buf();
    let url = db.url().to_string();
    drop(db);
    // A process ended while 40 rows waited in its spool, the last one half written.
    let name = format!("1700000000000-{}-ended-1.spool", std::process::id());
    let torn = &spool_lines(40, 41)[..30];
    std::fs::write(dir.join(&name), format!("{}{torn}", spool_lines(0, 40))).expect("write spool");
    let db = Db::open(&url).await.expect("open");
    let rows = read_rows(&db).await;
    let ids: Vec<&str> = rows.iter().map(|r| r.entry.object_id.as_str()).collect();
    assert_eq!(ids, (0..40).map(|k| k.to_string()).collect::<Vec<_>>(), "every complete row, in order; the torn one dropped");
    assert_eq!(rows[3].entry.detail, "走访核实 \"户籍\"\n\t\\ \u{1}😀");
    assert_eq!((rows[4].entry.actor_id, rows[4].entry.detail.as_str()), (None, ""));
    assert_eq!((rows[5].entry.actor_id, rows[5].entry.detail.as_str()), (Some(7), "入户走访"));
    assert_eq!(rows[3].entry.at, 1_795_000_000_003, "the time of the read, not of the import");
    assert!(matches!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: 40 }));
    assert!(!dir.join(&name).exists(), "the imported spool is removed");
    // Had it stopped after the commit and before removing the file, the file's imported
    // bytes say where to go on: nothing is imported twice.
    // (The last line as another writer might put it: keys in another order, spaces, a key
    // we do not know, an escaped key.)
    let odd = "{ \"client_addr\": \"10.0.0.9\", \"outcome\":\"ok\", \"detail\":\"\", \"operation_id\":\"op-x\", \"object_id\":\"45\", \"object_type\":\"person\", \"action\":\"person.read\", \"actor_name\":\"zhou.min\", \"actor_kind\":\"user\", \"a\\u0074\":1795000000045, \"extra\":[1] }\n";
    std::fs::write(dir.join(&name), format!("{}{}{odd}", spool_lines(0, 40), spool_lines(40, 45))).expect("write spool");
    drop(db);
    let db = Db::open(&url).await.expect("reopen");
    let rows = read_rows(&db).await;
    assert_eq!(rows.len(), 46, "the six new rows, and the forty not again");
    assert_eq!(rows[44].entry.object_id, "44");
    assert_eq!((rows[45].entry.at, rows[45].entry.actor_id, rows[45].entry.client_addr.as_str()), (1_795_000_000_045, None, "10.0.0.9"));
    assert!(matches!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { .. }));
    // This store's own rows reach the trail before a search reads it.
    let actor = store::audit::Actor::cli("test");
    db.audit(actor.entry("person.read", "person", "own", "ok", "")).await.expect("audit");
    assert_eq!(read_rows(&db).await.last().map(|r| r.entry.object_id.clone()), Some("own".to_string()));
}

async fn unreadable_spool_lines_are_named_in_the_trail_and_the_others_land(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let dir = db.audit_spool_dir().to_path_buf();
    let url = db.url().to_string();
    drop(db);
    // Two ended processes left spools with lines that are not rows: one file has a line
    // that is not UTF-8 (and a line with an escape COPY does not know), the other only a
    // line with a field too many.
    let mut first = spool_lines(0, 3).into_bytes();
    first.extend_from_slice(b"1795000000099\tuser\t7\tzhou.min\t\xff\xfe\tperson\t99\tok\t\top\t10.0.0.8\n");
    first.extend_from_slice(spool_lines(3, 5).as_bytes());
    first.extend_from_slice(b"1795000000098\tuser\t7\tzhou.min\tperson.read\tperson\t98\tok\t\\q\top\t10.0.0.8\n");
    first.extend_from_slice(spool_lines(5, 6).as_bytes());
    std::fs::write(dir.join(format!("1700000000000-{}-bad-1.spool", std::process::id())), first).expect("spool");
    let second = format!("{}1795000000097\tuser\t7\tzhou.min\tperson.read\tperson\t97\tok\t\top\t10.0.0.8\textra\n{}", spool_lines(6, 8), spool_lines(8, 9));
    std::fs::write(dir.join(format!("1700000000000-{}-bad-2.spool", std::process::id())), second).expect("spool");
    let db = Db::open(&url).await.expect("open");
    let mut rows = db.audit_rows_for_tests(&store::audit::AuditQuery { limit: 1000, ..Default::default() }).await.expect("rows");
    rows.reverse();
    let ids: Vec<&str> = rows.iter().map(|r| r.entry.object_id.as_str()).collect();
    let bad_1 = format!("1700000000000-{}-bad-1.spool", std::process::id());
    let bad_2 = format!("1700000000000-{}-bad-2.spool", std::process::id());
    let expected: Vec<String> = (0..6).map(|k| k.to_string()).chain([bad_1.clone()]).chain((6..9).map(|k| k.to_string())).chain([bad_2.clone()]).collect();
    assert_eq!(ids, expected, "every readable row in order, then a row naming each file's unreadable lines");
    let note = |name: &str| rows.iter().find(|r| r.entry.object_id == name).expect("note").entry.clone();
    let (n1, n2) = (note(&bad_1), note(&bad_2));
    assert_eq!((n1.action.as_str(), n1.outcome.as_str()), ("audit.spool_unreadable", "failed"));
    assert!(n1.detail.starts_with("2 unreadable rows"), "{}", n1.detail);
    assert!(n2.detail.starts_with("1 unreadable rows"), "{}", n2.detail);
    assert_eq!(rows[3].entry.detail, "走访核实 \"户籍\"\n\t\\ \u{1}😀", "escapes read on the line-by-line path too");
    assert!(matches!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { rows: 11 }));
}

async fn a_cancelled_read_does_not_stall_the_audit_spool(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let actor = store::audit::Actor::cli("test");
    // A request whose client hangs up is dropped at its first await. The row's append has
    // none: its first poll writes the line and returns, so a request is never cut off
    // between its row and the file.
    let mut first = Box::pin(db.audit(actor.entry("person.read", "person", "cancelled", "ok", "")));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(first.as_mut().poll(&mut cx).is_ready(), "the row is written on the append's first poll");
    drop(first);
    // The next read's row is written too, and does not wait on anything the first left.
    tokio::time::timeout(std::time::Duration::from_secs(10), db.audit(actor.entry("person.read", "person", "next", "ok", "")))
        .await
        .expect("the next append returns")
        .expect("and succeeds");
    let ids: Vec<String> = read_rows(&db).await.into_iter().map(|r| r.entry.object_id).collect();
    assert_eq!(ids, ["cancelled", "next"], "both rows reached the trail, in order");
}

async fn a_live_processs_audit_spool_is_left_alone(d: Dialect) {
    let Some(db) = store(d).await else { return };
    let dir = db.audit_spool_dir().to_path_buf();
    let url = db.url().to_string();
    // Another process is alive and holds its spool locked.
    let path = dir.join(format!("1700000000000-{}-live-1.spool", std::process::id()));
    std::fs::write(&path, spool_lines(0, 5)).expect("write spool");
    let held = std::fs::File::open(&path).expect("open");
    held.lock().expect("lock");
    let other = Db::open(&url).await.expect("open another");
    assert!(read_rows(&other).await.is_empty(), "a live process's rows are its own to import");
    assert!(path.exists());
    drop(held);
    let third = Db::open(&url).await.expect("open a third");
    assert_eq!(read_rows(&third).await.len(), 5, "once it has ended, the next store to open imports them");
    assert!(!path.exists());
    drop(db);
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

// ---- the register (issue 5) ----

mod reg {
    use std::sync::Arc;

    use domain::access::{Credential, Principal, Role};
    use domain::calendar::Day;
    use domain::clock::FakeClock;
    use domain::register::citizen_id::id_check_character;
    use domain::register::{CitizenId, Relation};
    use domain::{AreaCode, Phone};
    use store::audit::{Actor, AuditQuery};
    use store::register::{HouseInput, HouseUse, NewHousehold, NewPerson, PersonEdit, RegisterFilter};
    use store::{Db, Dialect};

    pub const GRID_A: &str = "430503001001001";
    pub const GRID_B: &str = "430503001001002";
    pub const COMMUNITY: &str = "430503001001";
    /// 2026-01-01 08:00 Shanghai.
    pub const T0: i64 = 1_767_225_600_000;

    pub async fn store(d: Dialect) -> Option<(Db, Arc<FakeClock>)> {
        let clock = Arc::new(FakeClock::at(T0));
        let db = store::testing::fresh_with_clock(d, clock.clone()).await?;
        db.import_areas(&super::fc(&super::small_tree())).await.expect("areas");
        Some((db, clock))
    }

    pub fn who(id: i64, role: Role, area: &str) -> Principal {
        Principal {
            account_id: id,
            username: format!("u{id}"),
            display_name: format!("User {id}"),
            role,
            area: AreaCode::parse(area).expect("area"),
            department: None,
            credential: Credential::Token(id),
            must_change_password: false,
        }
    }

    pub fn actor(p: &Principal) -> Actor {
        Actor::of(p, &format!("op-{}", p.account_id), "127.0.0.1")
    }

    /// A valid ID number born on `ymd` (YYYYMMDD) with sequence `seq`.
    pub fn cid(ymd: &str, seq: u32) -> CitizenId {
        let body = format!("430503{ymd}{seq:03}");
        let check = id_check_character(&body).expect("digits");
        CitizenId::from_stored(&format!("{body}{check}")).expect("valid")
    }

    pub fn today() -> Day {
        Day::from_ymd(2026, 1, 1).expect("day")
    }

    pub fn person(id: CitizenId, name: &str, house: Option<i64>, area: Option<&str>) -> NewPerson {
        NewPerson {
            citizen_id: id,
            name: name.into(),
            phone: Some(Phone::parse("13812345678").expect("phone")),
            ethnicity: Some("汉族".into()),
            house_id: house,
            area: area.map(|a| AreaCode::parse(a).expect("area")),
            population_type: Default::default(),
            tags: Vec::new(),
        }
    }

    pub fn house(address: &str, grid: &str) -> HouseInput {
        HouseInput {
            address: address.into(),
            area: AreaCode::parse(grid).expect("grid"),
            point: Some((27.1, 111.05)),
            area_m2: None,
            house_use: HouseUse::Residential,
        }
    }

    pub fn edit(id: CitizenId, name: &str) -> PersonEdit {
        PersonEdit { citizen_id: id, name: name.into(), phone: None, ethnicity: None, population_type: Default::default(), tags: Vec::new() }
    }

    pub fn household(house: i64, members: &[(i64, Relation)]) -> NewHousehold {
        NewHousehold { house_id: Some(house), address: None, area: None, members: members.to_vec() }
    }

    pub fn all() -> RegisterFilter {
        RegisterFilter { limit: 500, ..Default::default() }
    }

    pub async fn denied(db: &Db, object_id: &str) -> Vec<store::audit::AuditRow> {
        db.audit_rows_for_tests(&AuditQuery { outcome: Some("denied".into()), object_id: Some(object_id.into()), limit: 100, ..Default::default() })
            .await
            .expect("audit")
    }
}

async fn register_household_with_members(d: Dialect) {
    use domain::access::Role;
    use domain::register::Relation;
    let Some((db, _clock)) = reg::store(d).await else { return };
    let p = reg::who(1, Role::GridWorker, reg::GRID_A);
    let s = db.scoped(&p, reg::actor(&p));
    let desk = s.register().expect("a grid worker has the register");
    let h = desk.create_house(reg::house("红旗路 12 号 3 栋 1 单元 201", reg::GRID_A)).await.expect("house");
    assert_eq!((h.area.as_str(), h.lat, h.area_m2), (reg::GRID_A, Some(27.1), None));
    let father = desk.create_person(reg::person(reg::cid("19700101", 11), "张建国", Some(h.id), None)).await.expect("father");
    let mother = desk.create_person(reg::person(reg::cid("19720305", 22), "李秀英", Some(h.id), None)).await.expect("mother");
    let child = desk.create_person(reg::person(reg::cid("20000101", 33), "张伟", Some(h.id), None)).await.expect("child");
    // Gender and birth date come from the number; the person takes the house's grid.
    assert_eq!((father.gender.as_str(), mother.gender.as_str()), ("male", "female"));
    assert_eq!(child.birth_date, domain::calendar::Day::from_ymd(2000, 1, 1).expect("day"));
    assert_eq!((father.area.as_str(), father.house_id), (reg::GRID_A, Some(h.id)));

    let seq0 = db.last_change_seq().await.expect("seq");
    // Two heads, or none, are refused and store nothing.
    for members in [
        vec![(father.id, Relation::Head), (mother.id, Relation::Head)],
        vec![(father.id, Relation::Spouse), (child.id, Relation::Son)],
    ] {
        match desk.create_household(reg::household(h.id, &members)).await {
            Err(StoreError::Invalid { code: "household_head", .. }) => {}
            other => panic!("expected household_head, got {other:?}"),
        }
    }
    assert_eq!(db.last_change_seq().await.expect("seq"), seq0, "a refused household logs nothing");
    let hh = desk
        .create_household(reg::household(h.id, &[(child.id, Relation::Son), (father.id, Relation::Head), (mother.id, Relation::Spouse)]))
        .await
        .expect("household");
    let got: Vec<_> = hh.members.iter().map(|m| (m.person_id, m.name.as_str(), m.relation)).collect();
    assert_eq!(got, [(father.id, "张建国", Relation::Head), (mother.id, "李秀英", Relation::Spouse), (child.id, "张伟", Relation::Son)]);
    assert_eq!((hh.area.as_str(), hh.house_id), (reg::GRID_A, Some(h.id)));
    assert_eq!(desk.household(hh.id).await.expect("read"), hh);
    assert_eq!(desk.households(&reg::all()).await.expect("list"), std::slice::from_ref(&hh));
    let b = reg::who(2, Role::GridWorker, reg::GRID_B);
    let bs = db.scoped(&b, reg::actor(&b));
    assert!(bs.register().expect("desk").households(&reg::all()).await.expect("list").is_empty(), "grid B sees no household of grid A");
    assert!(matches!(bs.register().expect("desk").household(hh.id).await, Err(StoreError::NotFound(_))));
    let changes = db.changes_since(seq0, 100).await.expect("changes");
    assert!(changes.iter().any(|c| c.entity == "household" && c.key == hh.id.to_string()), "{changes:?}");
    // A member of one household cannot join a second.
    match desk.create_household(reg::household(h.id, &[(child.id, Relation::Head)])).await {
        Err(StoreError::Conflict { code: "already_in_household", .. }) => {}
        other => panic!("expected already_in_household, got {other:?}"),
    }
    // A new relation is written in the history of the household and of the person.
    let hh2 = desk
        .set_household_members(hh.id, hh.version, vec![(father.id, Relation::Head), (mother.id, Relation::Spouse), (child.id, Relation::Child)])
        .await
        .expect("members");
    assert_eq!(hh2.version, hh.version + 1);
    let hist = desk.history_of("household", hh.id).await.expect("history");
    let change = hist.iter().find(|r| r.action == "household.update").expect("update row");
    assert_eq!(
        (change.field.clone(), change.old_value.as_deref(), change.new_value.as_deref()),
        (format!("member.{}", child.id), Some("son"), Some("child"))
    );
    // The house lists its people; the list pages by id.
    let people = desk.persons(&store::register::RegisterFilter { house_id: Some(h.id), limit: 2, ..Default::default() }).await.expect("list");
    assert_eq!(people.iter().map(|p| p.id).collect::<Vec<_>>(), [father.id, mother.id]);
    let rest = desk
        .persons(&store::register::RegisterFilter { house_id: Some(h.id), limit: 2, after: Some(mother.id), ..Default::default() })
        .await
        .expect("list");
    assert_eq!(rest.iter().map(|p| p.id).collect::<Vec<_>>(), [child.id]);
}

async fn register_refuses_bad_input_and_changes_nothing(d: Dialect) {
    use domain::access::Role;
    let Some((db, _clock)) = reg::store(d).await else { return };
    let p = reg::who(1, Role::CommunityStaff, reg::COMMUNITY);
    let s = db.scoped(&p, reg::actor(&p));
    let desk = s.register().expect("desk");
    let h = desk.create_house(reg::house("建设路 1 号", reg::GRID_A)).await.expect("house");
    let first = desk.create_person(reg::person(reg::cid("19491231", 2), "王芳", Some(h.id), None)).await.expect("person");
    let seq0 = db.last_change_seq().await.expect("seq");
    let count = |v: Vec<store::register::PersonView>| v.len();
    let before = count(desk.persons(&reg::all()).await.expect("list"));

    // The same number again, whatever the name: a conflict, nothing stored.
    match desk.create_person(reg::person(reg::cid("19491231", 2), "另一人", Some(h.id), None)).await {
        Err(e @ StoreError::Conflict { code: "duplicate_citizen_id", .. }) => {
            assert!(!e.to_string().contains(&reg::cid("19491231", 2).expose()[6..14]), "the message shows the number masked: {e}");
        }
        other => panic!("expected duplicate_citizen_id, got {other:?}"),
    }
    // An edit that would take another person's number is refused too.
    let second = desk.create_person(reg::person(reg::cid("19800101", 5), "刘洋", None, Some(reg::GRID_B))).await.expect("second");
    let seq1 = db.last_change_seq().await.expect("seq");
    match desk.update_person(second.id, second.version, reg::edit(reg::cid("19491231", 2), "刘洋")).await {
        Err(StoreError::Conflict { code: "duplicate_citizen_id", .. }) => {}
        other => panic!("expected duplicate_citizen_id, got {other:?}"),
    }
    // Malformed numbers never reach the store.
    for bad in ["11010519491231002Y", "110105199902300021", "1101051949123100"] {
        assert!(matches!(store::register::parse_citizen_id(bad, reg::today()), Err(StoreError::Invalid { .. })), "{bad}");
        assert!(matches!(desk.person_by_citizen_id(bad).await, Err(StoreError::Invalid { .. })), "{bad}");
    }
    // An unknown area, an area that is not a grid, a house in another grid than the one named.
    for (area, code) in [("430503001001009", "unknown_area"), (reg::COMMUNITY, "not_a_grid")] {
        match desk.create_person(reg::person(reg::cid("19900101", 7), "赵磊", None, Some(area))).await {
            Err(StoreError::Invalid { code: c, .. }) => assert_eq!(c, code),
            other => panic!("expected {code}, got {other:?}"),
        }
    }
    match desk.create_person(reg::person(reg::cid("19900101", 7), "赵磊", Some(h.id), Some(reg::GRID_B))).await {
        Err(StoreError::Invalid { code: "house_in_other_grid", .. }) => {}
        other => panic!("expected house_in_other_grid, got {other:?}"),
    }
    match desk.create_person(reg::person(reg::cid("19900101", 7), "  ", Some(h.id), None)).await {
        Err(StoreError::Invalid { code: "field_required", .. }) => {}
        other => panic!("expected field_required, got {other:?}"),
    }
    let mut bad_house = reg::house("x", reg::GRID_A);
    bad_house.point = Some((127.0, 111.0));
    assert!(matches!(desk.create_house(bad_house).await, Err(StoreError::Invalid { code: "invalid_point", .. })));
    assert_eq!(db.last_change_seq().await.expect("seq"), seq1, "refused writes log nothing");
    assert_eq!(count(desk.persons(&reg::all()).await.expect("list")), before + 1);
    assert_eq!(seq1, seq0 + 1, "the one accepted person logged one change");
    let again = desk.person(first.id).await.expect("read");
    assert_eq!(again, first, "the first person is unchanged");
    assert_eq!(desk.person(second.id).await.expect("read").citizen_id_masked, second.citizen_id_masked);
}

async fn register_refuses_a_stale_version(d: Dialect) {
    use domain::access::Role;
    let Some((db, clock)) = reg::store(d).await else { return };
    let p = reg::who(7, Role::GridWorker, reg::GRID_A);
    let s = db.scoped(&p, reg::actor(&p));
    let desk = s.register().expect("desk");
    let h = desk.create_house(reg::house("人民路 8 号", reg::GRID_A)).await.expect("house");
    let v1 = desk.create_person(reg::person(reg::cid("19850512", 41), "陈静", Some(h.id), None)).await.expect("person");
    assert_eq!(v1.version, 1);
    clock.advance(60_000);
    let v2 = desk.update_person(v1.id, 1, reg::edit(reg::cid("19850512", 41), "陈晶")).await.expect("update");
    assert_eq!((v2.version, v2.name.as_str(), v2.phone_masked.as_deref()), (2, "陈晶", None));
    // A second editor who read version 1 loses, and changes nothing.
    match desk.update_person(v1.id, 1, reg::edit(reg::cid("19850512", 41), "陈菁")).await {
        Err(StoreError::Conflict { code: "stale_version", .. }) => {}
        other => panic!("expected stale_version, got {other:?}"),
    }
    assert_eq!(desk.person(v1.id).await.expect("read"), v2);
    // Houses are versioned the same way.
    let h2 = desk.update_house(h.id, h.version, reg::house("人民路 8 号附 1", reg::GRID_A)).await.expect("house update");
    assert!(matches!(desk.update_house(h.id, h.version, reg::house("y", reg::GRID_A)).await, Err(StoreError::Conflict { code: "stale_version", .. })));
    // Two editors at once, both at version 2: exactly one wins.
    let (x, y) = tokio::join!(
        desk.update_person(v1.id, 2, reg::edit(reg::cid("19850512", 41), "甲")),
        desk.update_person(v1.id, 2, reg::edit(reg::cid("19850512", 41), "乙"))
    );
    let winner = match (&x, &y) {
        (Ok(w), Err(StoreError::Conflict { code: "stale_version", .. })) | (Err(StoreError::Conflict { code: "stale_version", .. }), Ok(w)) => w.clone(),
        other => panic!("expected one winner, got {other:?}"),
    };
    assert_eq!(winner.version, 3);
    let v2 = desk.update_person(v1.id, 3, reg::edit(reg::cid("19850512", 41), "陈晶")).await.expect("back");
    assert_eq!(v2.version, 4);
    assert_eq!(desk.house(h.id).await.expect("read"), h2);

    // The history carries who, when, the old and the new values; the phone only masked.
    let hist = desk.history_of("person", v1.id).await.expect("history");
    let name = hist.iter().find(|r| r.field == "name" && r.action == "person.update").expect("name row");
    assert_eq!(hist.iter().filter(|r| r.field == "name" && r.action == "person.update").count(), 3, "the loser wrote nothing");
    assert_eq!((name.old_value.as_deref(), name.new_value.as_deref()), (Some("陈静"), Some("陈晶")));
    assert_eq!((name.actor_kind.as_str(), name.actor_id, name.actor_name.as_str(), name.operation_id.as_str()), ("token", Some(7), "u7", "op-7"));
    assert_eq!(name.at, reg::T0 + 60_000);
    let phone = hist.iter().find(|r| r.field == "phone" && r.action == "person.update").expect("phone row");
    assert_eq!((phone.old_value.as_deref(), phone.new_value.as_deref()), (Some("138****5678"), None));
    let created = hist.iter().find(|r| r.field == "citizen_id").expect("id row");
    assert_eq!((created.at, created.old_value.as_deref()), (reg::T0, None));
    assert!(created.new_value.as_deref().is_some_and(|v| v.contains("****") && !v.contains("19850512")), "{created:?}");
    assert!(hist.iter().all(|r| r.new_value.as_deref() != Some("13812345678") && r.old_value.as_deref() != Some("13812345678")));
    // Nobody rewrites the history, not even with database access.
    let (update, delete) = db.try_rewrite_register_history_for_tests().await;
    assert!(update.is_err() && delete.is_err(), "{update:?} {delete:?}");
    assert_eq!(desk.history_of("person", v1.id).await.expect("history"), hist);
}

async fn register_move_is_one_operation_with_both_sides_in_history(d: Dialect) {
    use domain::access::Role;
    use store::register::Tenure;
    let Some((db, _clock)) = reg::store(d).await else { return };
    let staff = reg::who(2, Role::CommunityStaff, reg::COMMUNITY);
    let s = db.scoped(&staff, reg::actor(&staff));
    let desk = s.register().expect("desk");
    let from = desk.create_house(reg::house("东风路 3 号", reg::GRID_A)).await.expect("house A");
    let to = desk.create_house(reg::house("西湖路 9 号", reg::GRID_B)).await.expect("house B");
    let p = desk.create_person(reg::person(reg::cid("19600808", 17), "周强", Some(from.id), None)).await.expect("person");
    desk.link_person_house(p.id, from.id, Tenure::Owns).await.expect("owns");

    // A grid-A worker cannot move someone into a house of grid B: not found, denied, nothing changed.
    let worker = reg::who(3, Role::GridWorker, reg::GRID_A);
    let ws = db.scoped(&worker, reg::actor(&worker));
    let seq0 = db.last_change_seq().await.expect("seq");
    assert!(matches!(ws.register().expect("desk").move_person(p.id, p.version, to.id).await, Err(StoreError::NotFound(_))));
    assert!(!reg::denied(&db, &to.id.to_string()).await.is_empty(), "the attempt is audited as denied");
    assert_eq!(db.last_change_seq().await.expect("seq"), seq0);

    let seq0 = db.last_change_seq().await.expect("seq");
    let moved = desk.move_person(p.id, p.version, to.id).await.expect("move");
    assert_eq!((moved.house_id, moved.area.as_str(), moved.version), (Some(to.id), reg::GRID_B, p.version + 1));
    // Lives in the new house only; still owns the old one.
    assert_eq!(desk.person_houses(p.id).await.expect("links"), [(from.id, Tenure::Owns), (to.id, Tenure::Lives)]);
    // The person's history keeps the creation and shows the move: old and new house and grid.
    let hist = desk.history_of("person", p.id).await.expect("history");
    assert!(hist.iter().any(|r| r.action == "person.create" && r.field == "name"));
    let row = |field: &str| hist.iter().find(|r| r.action == "person.move" && r.field == field).map(|r| (r.old_value.clone(), r.new_value.clone()));
    assert_eq!(row("house_id"), Some((Some(from.id.to_string()), Some(to.id.to_string()))));
    assert_eq!(row("area_code"), Some((Some(reg::GRID_A.to_string()), Some(reg::GRID_B.to_string()))));
    // Both houses show their side.
    let out = desk.history_of("house", from.id).await.expect("history");
    assert!(out.iter().any(|r| r.action == "person.move" && r.field == "resident" && r.old_value == Some(p.id.to_string()) && r.new_value.is_none()), "{out:?}");
    let inn = desk.history_of("house", to.id).await.expect("history");
    assert!(inn.iter().any(|r| r.action == "person.move" && r.field == "person.lives" && r.new_value == Some(p.id.to_string())), "{inn:?}");
    // One audit row, and the change log names the person and both houses.
    let audit = db.audit_rows_for_tests(&AuditQueryExt::action("person.move")).await.expect("audit");
    assert_eq!(audit.iter().filter(|r| r.entry.outcome == "ok").count(), 1);
    let keys: Vec<_> = db.changes_since(seq0, 100).await.expect("changes").into_iter().map(|c| (c.entity, c.key)).collect();
    for k in [("person".to_string(), p.id.to_string()), ("house".into(), from.id.to_string()), ("house".into(), to.id.to_string())] {
        assert!(keys.contains(&k), "{k:?} in {keys:?}");
    }
    // Moving again at the old version is refused.
    assert!(matches!(desk.move_person(p.id, p.version, from.id).await, Err(StoreError::Conflict { code: "stale_version", .. })));
    // The grid-A worker no longer sees the person.
    assert!(matches!(ws.register().expect("desk").person(p.id).await, Err(StoreError::NotFound(_))));
}

struct AuditQueryExt;
impl AuditQueryExt {
    fn action(a: &str) -> store::audit::AuditQuery {
        store::audit::AuditQuery { action: Some(a.into()), limit: 100, ..Default::default() }
    }
}

async fn register_is_scoped_by_grid_and_role(d: Dialect) {
    use domain::access::Role;
    let Some((db, _clock)) = reg::store(d).await else { return };
    let b = reg::who(4, Role::GridWorker, reg::GRID_B);
    let bs = db.scoped(&b, reg::actor(&b));
    let bdesk = bs.register().expect("desk");
    let hb = bdesk.create_house(reg::house("解放路 5 号", reg::GRID_B)).await.expect("house");
    let pb = bdesk.create_person(reg::person(reg::cid("19750303", 51), "黄敏", Some(hb.id), None)).await.expect("person");

    let a = reg::who(5, Role::GridWorker, reg::GRID_A);
    let as_ = db.scoped(&a, reg::actor(&a));
    let adesk = as_.register().expect("desk");
    // Nothing of grid B in grid A's lists.
    assert!(adesk.persons(&reg::all()).await.expect("list").is_empty());
    assert!(adesk.houses(&reg::all()).await.expect("list").is_empty());
    // Reads, lookups, writes and history of a grid-B person answer not found, each audited as denied.
    let id = pb.id.to_string();
    let n0 = reg::denied(&db, &id).await.len();
    assert!(matches!(adesk.person(pb.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(adesk.update_person(pb.id, pb.version, reg::edit(reg::cid("19750303", 51), "改名")).await, Err(StoreError::NotFound(_))));
    assert!(matches!(adesk.history_of("person", pb.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(adesk.unmask_person(pb.id, store::register::Sensitive::CitizenId, "核实身份").await, Err(StoreError::NotFound(_))));
    let rows = reg::denied(&db, &id).await;
    assert_eq!(rows.len(), n0 + 4, "{rows:?}");
    assert!(rows.iter().all(|r| r.entry.actor_id == Some(5)));
    assert!(matches!(adesk.person_by_citizen_id(reg::cid("19750303", 51).expose()).await, Err(StoreError::NotFound(_))));
    assert!(!reg::denied(&db, &reg::cid("19750303", 51).masked()).await.is_empty());
    // A house in grid B cannot be written from grid A, nor used for a new person there.
    assert!(matches!(adesk.update_house(hb.id, hb.version, reg::house("z", reg::GRID_B)).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        adesk.create_person(reg::person(reg::cid("19990909", 61), "吴刚", Some(hb.id), None)).await,
        Err(StoreError::NotFound(_))
    ));
    match adesk.create_house(reg::house("越界", reg::GRID_B)).await {
        Err(StoreError::Invalid { code: "area_out_of_scope", .. }) => {}
        other => panic!("expected area_out_of_scope, got {other:?}"),
    }
    // The list of another grid's area is denied too.
    let f = store::register::RegisterFilter { area: Some(AreaCode::parse(reg::GRID_B).expect("code")), ..Default::default() };
    assert!(matches!(adesk.persons(&f).await, Err(StoreError::NotFound(_))));
    assert_eq!(bdesk.person(pb.id).await.expect("read").name, "黄敏", "nothing changed");

    // The command centre reads (its subtree) but does not write.
    let op = reg::who(6, Role::Operator, "430503");
    let os = db.scoped(&op, reg::actor(&op));
    let odesk = os.register().expect("operators read the register");
    assert!(!odesk.may_write());
    assert_eq!(odesk.person(pb.id).await.expect("read").id, pb.id);
    assert!(matches!(odesk.update_person(pb.id, pb.version, reg::edit(reg::cid("19750303", 51), "改名")).await, Err(StoreError::NotFound(_))));
    assert!(matches!(odesk.create_house(reg::house("x", reg::GRID_B)).await, Err(StoreError::NotFound(_))));
    // Roles with no business in the register get no desk at all.
    for role in [Role::Volunteer, Role::Auditor, Role::Admin, Role::DepartmentHandler, Role::ApiClient] {
        let p = reg::who(9, role, "430503");
        assert!(db.scoped(&p, reg::actor(&p)).register().is_none(), "{role}");
    }
}

async fn register_masks_and_unmasks_with_a_reason(d: Dialect) {
    use domain::access::Role;
    use store::register::Sensitive;
    let Some((db, _clock)) = reg::store(d).await else { return };
    let w = reg::who(8, Role::GridLeader, reg::GRID_A);
    let s = db.scoped(&w, reg::actor(&w));
    let desk = s.register().expect("desk");
    let id = reg::cid("19880808", 88);
    let p = desk.create_person(reg::person(id.clone(), "孙丽", None, Some(reg::GRID_A))).await.expect("person");
    // Every read shows the number and the phone masked.
    let read = desk.person(p.id).await.expect("read");
    let by_id = desk.person_by_citizen_id(&format!(" {} ", id.expose().to_lowercase())).await.expect("lookup");
    let listed = desk.persons(&reg::all()).await.expect("list");
    for v in [&read, &by_id, &listed[0]] {
        assert_eq!(v.citizen_id_masked, id.masked());
        assert!(v.citizen_id_masked.contains("****") && v.citizen_id_masked != id.expose());
        assert_eq!(v.phone_masked.as_deref(), Some("138****5678"));
    }
    // Reads of persons are audited.
    let reads = db.audit_rows_for_tests(&AuditQueryExt::action("person.read")).await.expect("audit");
    assert!(reads.iter().any(|r| r.entry.object_id == p.id.to_string() && r.entry.outcome == "ok"));
    // Unmasking needs a reason, and leaves a row with it.
    assert!(matches!(desk.unmask_person(p.id, Sensitive::CitizenId, " ").await, Err(StoreError::Invalid { code: "reason_required", .. })));
    assert_eq!(desk.unmask_person(p.id, Sensitive::CitizenId, "核对低保申请").await.expect("unmask").as_deref(), Some(id.expose()));
    assert_eq!(desk.unmask_person(p.id, Sensitive::Phone, "上门走访联系").await.expect("unmask").as_deref(), Some("13812345678"));
    let rows = db.audit_rows_for_tests(&AuditQueryExt::action("read_sensitive")).await.expect("audit");
    let mut got: Vec<_> = rows.iter().filter(|r| r.entry.outcome == "ok").map(|r| (r.entry.object_type.as_str(), r.entry.detail.as_str())).collect();
    got.sort_unstable();
    assert_eq!(got, [("person.citizen_id", "核对低保申请"), ("person.phone", "上门走访联系")]);
    // The full number appears nowhere in the trail.
    let all = db.audit_rows_for_tests(&store::audit::AuditQuery { limit: 1000, ..Default::default() }).await.expect("audit");
    assert!(all.iter().all(|r| !r.entry.detail.contains(id.expose()) && !r.entry.object_id.contains(id.expose())));
    assert!(matches!(db.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { .. }), "the chain holds");
}

async fn register_organisations_and_links(d: Dialect) {
    use domain::access::Role;
    use domain::register::CreditCode;
    use domain::register::credit_code::credit_check_character;
    use store::register::{OrganisationInput, Tenure};
    let code_of = |body: &str| {
        let check = credit_check_character(body).expect("body");
        CreditCode::parse(&format!("{body}{check}")).expect("valid").value
    };
    let Some((db, _clock)) = reg::store(d).await else { return };
    let w = reg::who(10, Role::GridWorker, reg::GRID_A);
    let s = db.scoped(&w, reg::actor(&w));
    let desk = s.register().expect("desk");
    let shop = desk.create_house(HouseInputExt::shop("红旗路 20 号门面")).await.expect("house");
    let org = |name: &str, code: &CreditCode| OrganisationInput {
        name: name.into(),
        credit_code: code.clone(),
        address: Some("红旗路 20 号".into()),
        house_id: Some(shop.id),
        area: None,
        legal_rep: Some("张建国".into()),
        phone: Some(domain::Phone::parse("13900001111").expect("phone")),
    };
    let code = code_of("91430503MA4L00001");
    let o = desk.create_organisation(org("大祥区红旗便利店", &code)).await.expect("organisation");
    assert_eq!((o.area.as_str(), o.house_id, o.phone_masked.as_deref()), (reg::GRID_A, Some(shop.id), Some("139****1111")));
    // The same credit code again is a conflict, and nothing is stored.
    let seq0 = db.last_change_seq().await.expect("seq");
    match desk.create_organisation(org("另一家", &code)).await {
        Err(StoreError::Conflict { code: "duplicate_credit_code", .. }) => {}
        other => panic!("expected duplicate_credit_code, got {other:?}"),
    }
    assert_eq!(db.last_change_seq().await.expect("seq"), seq0);
    assert_eq!(desk.organisations(&reg::all()).await.expect("list").len(), 1);
    // Stale versions are refused; a phone change is in the history, masked.
    let mut edit = org("大祥区红旗便利店（新）", &code);
    edit.phone = Some(domain::Phone::parse("13900002111").expect("phone"));
    let o2 = desk.update_organisation(o.id, o.version, edit.clone()).await.expect("update");
    assert!(matches!(desk.update_organisation(o.id, o.version, edit).await, Err(StoreError::Conflict { code: "stale_version", .. })));
    let hist = desk.history_of("organisation", o.id).await.expect("history");
    let phone = hist.iter().find(|r| r.action == "organisation.update" && r.field == "phone").expect("phone row");
    assert_eq!((phone.old_value.as_deref(), phone.new_value.as_deref()), (Some("139****1111"), Some("139****2111")));
    assert_eq!(desk.organisation(o.id).await.expect("read"), o2);
    // Links: an organisation uses a second house; a person owns and rents; unlinking ends them.
    let store_room = desk.create_house(HouseInputExt::shop("红旗路 22 号仓库")).await.expect("house");
    desk.link_organisation_house(o.id, store_room.id).await.expect("link");
    assert!(matches!(desk.link_organisation_house(o.id, store_room.id).await, Err(StoreError::Conflict { code: "already_linked", .. })));
    desk.unlink_organisation_house(o.id, store_room.id).await.expect("unlink");
    assert!(matches!(desk.unlink_organisation_house(o.id, store_room.id).await, Err(StoreError::NotFound(_))));
    let h = desk.history_of("house", store_room.id).await.expect("history");
    let sides: Vec<_> = h.iter().filter(|r| r.field == "organisation").map(|r| (r.old_value.clone(), r.new_value.clone())).collect();
    assert_eq!(sides, [(None, Some(o.id.to_string())), (Some(o.id.to_string()), None)]);
    let p = desk.create_person(reg::person(reg::cid("19700101", 11), "张建国", None, Some(reg::GRID_A))).await.expect("person");
    desk.link_person_house(p.id, shop.id, Tenure::Owns).await.expect("owns");
    desk.link_person_house(p.id, store_room.id, Tenure::Rents).await.expect("rents");
    desk.unlink_person_house(p.id, shop.id, Tenure::Owns).await.expect("unlink");
    assert_eq!(desk.person_houses(p.id).await.expect("links"), [(store_room.id, Tenure::Rents)]);
    // Grid B sees none of it.
    let b = reg::who(11, Role::GridWorker, reg::GRID_B);
    let bs = db.scoped(&b, reg::actor(&b));
    let bdesk = bs.register().expect("desk");
    assert!(bdesk.organisations(&reg::all()).await.expect("list").is_empty());
    assert!(matches!(bdesk.organisation(o.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(bdesk.link_person_house(p.id, store_room.id, Tenure::Lives).await, Err(StoreError::NotFound(_))));
}

struct HouseInputExt;
impl HouseInputExt {
    fn shop(address: &str) -> store::register::HouseInput {
        store::register::HouseInput {
            address: address.into(),
            area: AreaCode::parse(reg::GRID_A).expect("grid"),
            point: None,
            area_m2: Some(35.5),
            house_use: store::register::HouseUse::Shop,
        }
    }
}

// ---- door-to-door collection (issue 5 point 2) ----

fn task(grid: &str, title: &str) -> store::collection::NewTask {
    use domain::calendar::Day;
    // The fake clock starts on 2026-01-01 (Shanghai).
    store::collection::NewTask { grid: code(grid), title: title.into(), start: Day::from_ymd(2026, 1, 1).expect("day"), end: Day::from_ymd(2026, 1, 31).expect("day") }
}

async fn collection_progress_follows_visits_and_people(d: Dialect) {
    use domain::access::Role;
    use store::collection::Outcome;
    let Some((db, clock)) = reg::store(d).await else { return };
    let p = reg::who(1, Role::GridWorker, reg::GRID_A);
    let s = db.scoped(&p, reg::actor(&p));
    let desk = s.register().expect("desk");
    let collect = s.collection().expect("a grid worker collects");
    let h1 = desk.create_house(reg::house("红旗路 1 号", reg::GRID_A)).await.expect("house");
    let h2 = desk.create_house(reg::house("红旗路 2 号", reg::GRID_A)).await.expect("house");
    let h3 = desk.create_house(reg::house("红旗路 3 号", reg::GRID_A)).await.expect("house");
    let t = collect.create_task(task(reg::GRID_A, "一月入户采集")).await.expect("task");
    assert_eq!((t.houses_total, t.houses_visited, t.people_recorded, t.percent(), t.state.as_str()), (3, 0, 0, 0, "open"));
    clock.advance(3_600_000);
    // Nobody home, then recorded: one house visited, two visits.
    collect.record_visit(t.id, h1.id, Outcome::NobodyHome, "").await.expect("visit");
    let v = collect.record_visit(t.id, h1.id, Outcome::Recorded, "户主在家").await.expect("visit");
    assert_eq!((v.outcome, v.note.as_deref(), v.actor_name.as_str()), (Outcome::Recorded, Some("户主在家"), "u1"));
    desk.create_person(reg::person(reg::cid("19800101", 11), "张三", Some(h1.id), None)).await.expect("person");
    let now = collect.task(t.id).await.expect("task");
    assert_eq!((now.houses_visited, now.visits, now.people_recorded, now.percent()), (1, 2, 1, 33));
    collect.record_visit(t.id, h2.id, Outcome::Vacant, "").await.expect("visit");
    assert_eq!(collect.task(t.id).await.expect("task").percent(), 66);
    // The latest visit per house; the house's history shows the visits.
    let last = collect.last_visits(t.id).await.expect("visits");
    assert_eq!((last[&h1.id].outcome, last[&h2.id].outcome, last.get(&h3.id)), (Outcome::Recorded, Outcome::Vacant, None));
    let hist = desk.history_of("house", h1.id).await.expect("history");
    let visits: Vec<_> = hist.iter().filter(|r| r.field == "visit").map(|r| r.new_value.clone().unwrap_or_default()).collect();
    assert_eq!(visits, ["nobody_home", "recorded (户主在家)"]);
    // A person changed after the period is not counted in it.
    clock.advance(40 * 86_400_000);
    desk.create_person(reg::person(reg::cid("19810101", 22), "李四", Some(h2.id), None)).await.expect("person");
    assert_eq!(collect.task(t.id).await.expect("task").people_recorded, 1);
    // Closing stops visits; a second close at the old version is stale.
    let closed = collect.close_task(t.id, t.version).await.expect("close");
    assert_eq!(closed.state, "closed");
    match collect.record_visit(t.id, h3.id, Outcome::Recorded, "").await {
        Err(StoreError::Conflict { code: "task_closed", .. }) => {}
        other => panic!("expected task_closed, got {other:?}"),
    }
    match collect.close_task(t.id, t.version).await {
        Err(StoreError::Conflict { code: "stale_version", .. }) => {}
        other => panic!("expected stale_version, got {other:?}"),
    }
    assert_eq!(collect.task(t.id).await.expect("task").visits, 3);
    // The list: open only leaves it out.
    assert!(collect.tasks(None, true).await.expect("tasks").is_empty());
    assert_eq!(collect.tasks(None, false).await.expect("tasks").len(), 1);
}

async fn collection_is_scoped_and_refuses_bad_input(d: Dialect) {
    use domain::access::Role;
    use store::collection::Outcome;
    let Some((db, _clock)) = reg::store(d).await else { return };
    let c = reg::who(1, Role::CommunityStaff, reg::COMMUNITY);
    let cs = db.scoped(&c, reg::actor(&c));
    let ha = cs.register().expect("desk").create_house(reg::house("红旗路 1 号", reg::GRID_A)).await.expect("house");
    let hb = cs.register().expect("desk").create_house(reg::house("人民路 9 号", reg::GRID_B)).await.expect("house");
    let collect = cs.collection().expect("community staff collect");
    let ta = collect.create_task(task(reg::GRID_A, "A")).await.expect("task A");
    let tb = collect.create_task(task(reg::GRID_B, "B")).await.expect("task B");
    let seq0 = db.last_change_seq().await.expect("seq");
    // Bad input: a community is not a grid, an empty title, a period ending before it starts,
    // a house of another grid.
    let mut backwards = task(reg::GRID_A, "倒序");
    std::mem::swap(&mut backwards.start, &mut backwards.end);
    for (t, want) in [(task(reg::COMMUNITY, "x"), "not_a_grid"), (task(reg::GRID_A, "  "), "field_required"), (backwards, "invalid_period")] {
        match collect.create_task(t).await {
            Err(StoreError::Invalid { code, .. }) => assert_eq!(code, want),
            other => panic!("expected {want}, got {other:?}"),
        }
    }
    match collect.record_visit(ta.id, hb.id, Outcome::Recorded, "").await {
        Err(StoreError::Invalid { code: "house_in_other_grid", .. }) => {}
        other => panic!("expected house_in_other_grid, got {other:?}"),
    }
    assert_eq!(db.last_change_seq().await.expect("seq"), seq0, "nothing refused is logged");
    assert_eq!(collect.tasks(None, false).await.expect("tasks").len(), 2);

    // A grid worker of A: B's task and house are not found, and each attempt is audited.
    let w = reg::who(2, Role::GridWorker, reg::GRID_A);
    let ws = db.scoped(&w, reg::actor(&w));
    let wc = ws.collection().expect("desk");
    assert_eq!(wc.tasks(None, false).await.expect("tasks").iter().map(|t| t.id).collect::<Vec<_>>(), [ta.id]);
    assert!(matches!(wc.task(tb.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(wc.record_visit(tb.id, hb.id, Outcome::Recorded, "").await, Err(StoreError::NotFound(_))));
    assert!(matches!(wc.record_visit(ta.id, hb.id, Outcome::Recorded, "").await, Err(StoreError::NotFound(_))));
    assert!(matches!(wc.house_visits(hb.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(wc.create_task(task(reg::GRID_B, "越界")).await, Err(StoreError::Invalid { code: "area_out_of_scope", .. })));
    assert!(!reg::denied(&db, &tb.id.to_string()).await.is_empty());
    assert!(!reg::denied(&db, &hb.id.to_string()).await.is_empty());
    // The command centre reads and may not write; a volunteer gets no desk.
    let op = reg::who(3, Role::Operator, "430503");
    let os = db.scoped(&op, reg::actor(&op));
    let oc = os.collection().expect("operators read");
    assert!(!oc.may_write());
    assert_eq!(oc.task(ta.id).await.expect("read").id, ta.id);
    assert!(matches!(oc.record_visit(ta.id, ha.id, Outcome::Recorded, "").await, Err(StoreError::NotFound(_))));
    assert_eq!(oc.task(ta.id).await.expect("read").visits, 0);
    let v = reg::who(4, Role::Volunteer, reg::GRID_A);
    assert!(db.scoped(&v, reg::actor(&v)).collection().is_none());
}

async fn register_lists_filter_by_name_and_address_and_page(d: Dialect) {
    use domain::access::Role;
    use store::register::RegisterQuery;
    let Some((db, _clock)) = reg::store(d).await else { return };
    let c = reg::who(1, Role::CommunityStaff, reg::COMMUNITY);
    let cs = db.scoped(&c, reg::actor(&c));
    let desk = cs.register().expect("desk");
    let ha = desk.create_house(reg::house("红旗路 12 号", reg::GRID_A)).await.expect("house");
    let hb = desk.create_house(reg::house("人民路 100% 号", reg::GRID_B)).await.expect("house");
    let mut ids = Vec::new();
    for (i, (name, h)) in [("张伟", ha.id), ("张伟强", ha.id), ("李娜", hb.id), ("王张", hb.id)].into_iter().enumerate() {
        ids.push(desk.create_person(reg::person(reg::cid("19900101", 10 + i as u32), name, Some(h), None)).await.expect("person").id);
    }
    let q = |name: &str, address: &str| RegisterQuery { name: name.into(), address: address.into(), ..Default::default() };
    let names = |v: Vec<store::register::PersonListRow>| v.into_iter().map(|r| r.person.name).collect::<Vec<_>>();
    assert_eq!(names(desk.find_persons(&q("张", "")).await.expect("list")), ["张伟", "张伟强", "王张"]);
    assert_eq!(names(desk.find_persons(&q("张", "红旗")).await.expect("list")), ["张伟", "张伟强"]);
    // Wildcards are taken literally.
    assert_eq!(names(desk.find_persons(&q("", "100%")).await.expect("list")), ["李娜", "王张"]);
    assert!(desk.find_persons(&q("%", "")).await.expect("list").is_empty());
    // The list shows masked values and the address.
    let first = desk.find_persons(&q("张伟", "")).await.expect("list").remove(0);
    assert_eq!((first.address.as_deref(), first.person.phone_masked.as_deref()), (Some("红旗路 12 号"), Some("138****5678")));
    assert!(first.person.citizen_id_masked.contains("****"));
    // Area and paging.
    let in_b = RegisterQuery { area: Some(code(reg::GRID_B)), ..Default::default() };
    assert_eq!(names(desk.find_persons(&in_b).await.expect("list")), ["李娜", "王张"]);
    let page = RegisterQuery { limit: 2, ..Default::default() };
    assert_eq!(names(desk.find_persons(&page).await.expect("list")), ["张伟", "张伟强"]);
    let next = RegisterQuery { limit: 2, after: Some(ids[1]), ..Default::default() };
    assert_eq!(names(desk.find_persons(&next).await.expect("list")), ["李娜", "王张"]);
    assert_eq!(desk.find_houses(&q("", "人民")).await.expect("houses").iter().map(|h| h.id).collect::<Vec<_>>(), [hb.id]);
    // A house's people, by link.
    let people = desk.house_people(ha.id).await.expect("people");
    assert_eq!(people.iter().map(|(p, t)| (p.name.as_str(), t.as_str())).collect::<Vec<_>>(), [("张伟", "lives"), ("张伟强", "lives")]);
    // A grid worker of A: B's rows never show, B as an area is denied.
    let w = reg::who(2, Role::GridWorker, reg::GRID_A);
    let ws = db.scoped(&w, reg::actor(&w));
    let wd = ws.register().expect("desk");
    assert_eq!(names(wd.find_persons(&q("", "")).await.expect("list")), ["张伟", "张伟强"]);
    assert!(matches!(wd.find_persons(&in_b).await, Err(StoreError::NotFound(_))));
    assert!(matches!(wd.house_people(hb.id).await, Err(StoreError::NotFound(_))));
}

async fn collection_demo_seed_works_with_or_without_houses(d: Dialect) {
    use domain::access::Role;
    let Some((db, _clock)) = reg::store(d).await else { return };
    // No account: nothing is made.
    assert!(matches!(store::collection::seed_demo(&db, "gridworker").await, Err(StoreError::NotFound(_))));
    let account = store::auth::NewAccount {
        username: "gridworker".into(),
        display_name: "网格员".into(),
        role: Role::GridWorker,
        area: code(reg::GRID_A),
        department: None,
        password: "grid-patrol-0425".into(),
        temporary: false,
    };
    db.create_account(&store::audit::Actor::cli("test"), account).await.expect("account");
    // Grid B already holds six houses; grid A none.
    let c = reg::who(9, Role::CommunityStaff, reg::COMMUNITY);
    let cs = db.scoped(&c, reg::actor(&c));
    for i in 0..6 {
        cs.register().expect("desk").create_house(reg::house(&format!("人民路 {i} 号"), reg::GRID_B)).await.expect("house");
    }
    let report = store::collection::seed_demo(&db, "gridworker").await.expect("seed");
    // One task per basic grid; every third house of B visited, plus the worker's first house.
    assert_eq!((report.tasks, report.houses_made, report.people_made), (2, 3, 4));
    assert_eq!(report.visits, 2 + 1);
    let tasks = cs.collection().expect("desk").tasks(None, true).await.expect("tasks");
    let by_grid = |g: &str| tasks.iter().find(|t| t.area == g).cloned().expect("task");
    let (a, b) = (by_grid(reg::GRID_A), by_grid(reg::GRID_B));
    assert_eq!((a.houses_total, a.houses_visited, a.people_recorded), (3, 1, 4));
    assert_eq!((b.houses_total, b.houses_visited, b.people_recorded), (6, 2, 0));
}

/// The demo register at a small share: every ID number valid and unique, its birth date and
/// gender the person's; each household one head; a plausible number of people per house;
/// ages spread over the pyramid; one history row and one change-log entry per record.
async fn demo_population_is_plausible(d: Dialect) {
    use domain::access::{Credential, Principal, Role};
    use domain::calendar::Day;
    use domain::population::Population;
    use domain::register::{CitizenId, PopulationType, Relation};
    use std::collections::{HashMap, HashSet};
    let Some(db) = store(d).await else { return };
    let district = demo::generate(DemoOptions::default()).expect("demo");
    db.load_demo(&district).await.expect("load");
    let today = Day::of_instant(db.now_ms());
    let pop = Population::plan(&district, 7, 0.02, today);
    assert_eq!(pop.grids().next(), Population::plan(&district, 7, 0.02, today).grids().next(), "deterministic per seed");
    let seq0 = db.last_change_seq().await.expect("seq");
    let report = db.load_population(&pop).await.expect("population");
    // 2 % of 270,000 people, 110,000 houses and 90,000 households.
    assert!((4_500..=6_500).contains(&report.persons), "{report:?}");
    assert!((2_000..=2_400).contains(&report.houses), "{report:?}");
    assert!((1_500..=2_100).contains(&report.households), "{report:?}");
    assert!(report.organisations >= 20, "{report:?}");
    let records = report.persons + report.houses + report.households + report.organisations;
    assert_eq!((db.last_change_seq().await.expect("seq") - seq0) as u64, records, "one change-log entry per record");

    // What was generated: valid, unique numbers matching the person.
    let mut ids = HashSet::new();
    let mut floating_outside = 0;
    let mut ages = [0usize; 3];
    let mut per_house: HashMap<(String, usize), usize> = HashMap::new();
    for g in pop.grids() {
        for p in &g.persons {
            let id = CitizenId::from_stored(&p.citizen_id).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert!(ids.insert(p.citizen_id.clone()), "ID numbers are unique");
            assert_eq!(id.birth_date(), p.birth);
            assert_eq!(id.gender().as_str(), if p.female { "female" } else { "male" });
            if p.population == PopulationType::Floating && !p.citizen_id.starts_with("43") {
                floating_outside += 1;
            }
            if p.population == PopulationType::Registered {
                assert!(p.citizen_id.starts_with("4305"), "registered people carry the city's codes");
            }
            let age = id.age_on(today);
            ages[if age < 18 { 0 } else if age < 60 { 1 } else { 2 }] += 1;
            assert!(age <= 100);
            *per_house.entry((g.grid.to_string(), p.house)).or_default() += 1;
            assert!(p.phone.is_none() || age >= 16, "phones for people of 16 and over");
        }
        for h in &g.households {
            assert_eq!(h.members.iter().filter(|m| m.1 == Relation::Head).count(), 1);
        }
    }
    assert!(floating_outside > 100, "floating people from other provinces: {floating_outside}");
    let n = ids.len();
    assert_eq!(n as u64, report.persons);
    assert!(ages.iter().all(|&a| a * 10 > n), "children, adults and elderly each over 10 %: {ages:?}");
    assert!(per_house.values().all(|&k| (1..=8).contains(&k)), "1 to 8 people per occupied house");

    // What the store holds, through the district operator's desk: the same people, masked.
    let who = Principal {
        account_id: 1,
        username: "op".into(),
        display_name: "坐席".into(),
        role: Role::Operator,
        area: code("430503"),
        department: None,
        credential: Credential::Token(1),
        must_change_password: false,
    };
    let s = db.scoped(&who, store::audit::Actor::of(&who, "op-1", "127.0.0.1"));
    let desk = s.register().expect("operators read the register");
    let mut after = None;
    let mut seen = 0usize;
    let mut first = None;
    loop {
        let page = desk.persons(&store::register::RegisterFilter { after, limit: 500, ..Default::default() }).await.expect("persons");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for p in &page {
            assert!(p.citizen_id_masked.contains("********"), "masked");
            first.get_or_insert(p.id);
        }
        seen += page.len();
    }
    assert_eq!(seen, n);
    let mut heads_ok = 0;
    let households = desk.households(&store::register::RegisterFilter { limit: 500, ..Default::default() }).await.expect("households");
    for h in &households {
        assert_eq!(h.members.iter().filter(|m| m.relation == Relation::Head).count(), 1, "household {}", h.id);
        assert_eq!(h.members[0].relation, Relation::Head);
        heads_ok += 1;
    }
    assert_eq!(heads_ok, 500.min(report.households as usize));
    let history = desk.history_of("person", first.expect("a person")).await.expect("history");
    assert_eq!(history.iter().map(|h| (h.action.as_str(), h.field.as_str())).collect::<Vec<_>>(), [("demo", "record")]);
    // The person's links: lives in the house, and an owner or renter is linked as such.
    let links = desk.person_houses(first.expect("a person")).await.expect("links");
    assert!(links.iter().any(|l| l.1 == store::register::Tenure::Lives));
}

/// The persons list narrows by name, gender, age (birth days), population type and tag.
async fn register_lists_filter_persons(d: Dialect) {
    use domain::access::Role;
    use domain::register::{PersonTag, PopulationType};
    use store::register::RegisterFilter;
    let Some((db, _clock)) = reg::store(d).await else { return };
    let p = reg::who(1, Role::GridWorker, reg::GRID_A);
    let s = db.scoped(&p, reg::actor(&p));
    let desk = s.register().expect("desk");
    let h = desk.create_house(reg::house("红旗路 12 号", reg::GRID_A)).await.expect("house");
    let old = desk.create_person(reg::person(reg::cid("19400101", 11), "张桂英", Some(h.id), None)).await.expect("old");
    let mut young = reg::person(reg::cid("20000101", 33), "张伟", Some(h.id), None);
    young.population_type = PopulationType::Floating;
    young.tags = vec![PersonTag::Veteran];
    let young = desk.create_person(young).await.expect("young");
    assert_eq!((young.population_type, young.tags.as_slice()), (PopulationType::Floating, &[PersonTag::Veteran][..]));
    let other = desk.create_person(reg::person(reg::cid("19800101", 22), "李_娜%", Some(h.id), None)).await.expect("other");
    let ids = |v: Vec<store::register::PersonView>| v.iter().map(|p| p.id).collect::<Vec<_>>();
    let q = |f: RegisterFilter| RegisterFilter { limit: 100, ..f };
    assert_eq!(ids(desk.persons(&q(RegisterFilter { name: Some("张".into()), ..Default::default() })).await.expect("list")), [old.id, young.id]);
    // LIKE wildcards in the text are plain characters.
    assert_eq!(ids(desk.persons(&q(RegisterFilter { name: Some("_娜%".into()), ..Default::default() })).await.expect("list")), [other.id]);
    assert!(desk.persons(&q(RegisterFilter { name: Some("%".into()), gender: Some("female".into()), ..Default::default() })).await.expect("list").iter().all(|p| p.id == other.id));
    let born = |y| domain::calendar::Day::from_ymd(y, 1, 1);
    assert_eq!(ids(desk.persons(&q(RegisterFilter { born_from: born(1970), born_to: born(1990), ..Default::default() })).await.expect("list")), [other.id]);
    assert_eq!(ids(desk.persons(&q(RegisterFilter { population_type: Some(PopulationType::Floating), ..Default::default() })).await.expect("list")), [young.id]);
    assert_eq!(ids(desk.persons(&q(RegisterFilter { tag: Some(PersonTag::Veteran), ..Default::default() })).await.expect("list")), [young.id]);
    assert_eq!(ids(desk.persons(&q(RegisterFilter { gender: Some("male".into()), ..Default::default() })).await.expect("list")), [old.id, young.id]);
    // An update changes the kind and tags, with history.
    let e = store::register::PersonEdit { population_type: PopulationType::Resident, tags: vec![PersonTag::ElderlyAlone], ..reg::edit(reg::cid("19400101", 11), "张桂英") };
    let v = desk.update_person(old.id, old.version, e).await.expect("update");
    assert_eq!((v.population_type, v.tags.as_slice()), (PopulationType::Resident, &[PersonTag::ElderlyAlone][..]));
    let hist = desk.history_of("person", old.id).await.expect("history");
    assert!(hist.iter().any(|r| r.field == "tags" && r.new_value.as_deref() == Some("elderly_alone")));
    assert!(hist.iter().any(|r| r.field == "population_type" && r.old_value.as_deref() == Some("registered") && r.new_value.as_deref() == Some("resident")));
}
