//! Key figures: exact figures after a handful of incidents go through the loop, by each
//! grouping; scope; bad input; the kept rollup against a rebuild after random transitions.

use axum::http::{Method, StatusCode};
use domain::rng::Rng;
use domain::{AreaCode, Level, Role};
use serde_json::{Value, json};
use store::Dialect;

use crate::incidents::{inside, with_catalogue};
use crate::{Req, TestApp, TestUser, on_both_backends};

on_both_backends!(figures_follow_the_loop_by_every_grouping, scope_and_bad_input, the_kept_rollup_equals_a_rebuild);

async fn handler(app: &TestApp, name: &str, dept: &str) -> TestUser {
    let u = app.user(name, Role::DepartmentHandler, "430503").await;
    let area = AreaCode::parse("430503").expect("code");
    app.db.update_account(&store::audit::Actor::cli("test"), u.id, Role::DepartmentHandler, &area, Some(dept)).await.expect("department");
    u
}

/// The state of the incidents the test drives: id and version.
struct Inc {
    id: i64,
    v: i64,
}

async fn report(app: &TestApp, who: &TestUser, lat: f64, lon: f64) -> (Inc, i64) {
    let r = app
        .send(Req::new(Method::POST, "/api/v1/incidents").token(&who.token).json(json!({
            "category": "C0102", "description": "污水井盖破损", "location": {"lat": lat, "lon": lon}
        })))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let j = r.json();
    (Inc { id: j["id"].as_i64().expect("id"), v: 1 }, j["created_at"].as_i64().expect("created_at"))
}

/// Take an action (the clock moves a minute first) and return the incident.
async fn step(app: &TestApp, who: &TestUser, inc: &mut Inc, mut body: Value) -> Value {
    app.clock.advance(60_000);
    body["version"] = json!(inc.v);
    let r = app.send(Req::new(Method::POST, &format!("/api/v1/incidents/{}/transitions", inc.id)).token(&who.token).json(body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.body);
    let j = r.json();
    inc.v = j["version"].as_i64().expect("version");
    j
}

async fn kpis(app: &TestApp, who: &TestUser, query: &str) -> Value {
    let r = app.send(Req::new(Method::GET, &format!("/api/v1/kpis?from=2026-11-25&to=2026-11-25&{query}")).token(&who.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
    r.json()
}

fn row<'a>(t: &'a Value, key: &str) -> &'a Value {
    t["rows"].as_array().expect("rows").iter().find(|r| r["key"] == key).unwrap_or_else(|| panic!("no row {key} in {t}"))
}

fn n(v: &Value, k: &str) -> i64 {
    v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}"))
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"))
}

async fn figures_follow_the_loop_by_every_grouping(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let grids = app.demo.areas.iter().filter(|a| a.level == Level::Grid).count();
    let (lat_a, lon_a, a) = inside(&app, 0);
    let (lat_b, lon_b, b) = inside(&app, grids - 1);
    assert_ne!(a[..9], b[..9], "the two grids lie in different streets");
    let worker_a = app.user("k.worker.a", Role::GridWorker, &a).await;
    let worker_b = app.user("k.worker.b", Role::GridWorker, &b).await;
    let operator = app.user("k.operator", Role::Operator, "430503").await;
    let dispatcher = app.user("k.dispatcher", Role::Dispatcher, "430503").await;
    let cgj = handler(&app, "k.cgj", "cgj").await;
    let sw = handler(&app, "k.sw", "sw").await;

    let (mut i1, r1) = report(&app, &worker_a, lat_a, lon_a).await;
    let (mut i2, r2) = report(&app, &worker_a, lat_a, lon_a).await;
    let (mut i3, _) = report(&app, &worker_b, lat_b, lon_b).await;
    let (mut i4, _) = report(&app, &worker_b, lat_b, lon_b).await;
    // 1: one rework, closed in time, rated 5.
    step(&app, &operator, &mut i1, json!({"action": "file"})).await;
    step(&app, &dispatcher, &mut i1, json!({"action": "dispatch", "department": "cgj"})).await;
    step(&app, &cgj, &mut i1, json!({"action": "accept"})).await;
    step(&app, &cgj, &mut i1, json!({"action": "handle", "note": "已更换"})).await;
    step(&app, &worker_a, &mut i1, json!({"action": "fail_verification", "note": "未固定"})).await;
    step(&app, &cgj, &mut i1, json!({"action": "handle", "note": "已固定"})).await;
    step(&app, &worker_a, &mut i1, json!({"action": "verify"})).await;
    let c1 = n(&step(&app, &dispatcher, &mut i1, json!({"action": "close"})).await, "closed_at");
    step(&app, &operator, &mut i1, json!({"action": "evaluate", "rating": 5})).await;
    // 2: sent to the wrong department and returned; checked a month late; rated 2.
    step(&app, &operator, &mut i2, json!({"action": "file"})).await;
    step(&app, &dispatcher, &mut i2, json!({"action": "dispatch", "department": "sw"})).await;
    step(&app, &sw, &mut i2, json!({"action": "return", "note": "非本单位职责"})).await;
    step(&app, &dispatcher, &mut i2, json!({"action": "dispatch", "department": "cgj"})).await;
    step(&app, &cgj, &mut i2, json!({"action": "accept"})).await;
    step(&app, &cgj, &mut i2, json!({"action": "handle"})).await;
    // 3: dispatched and left open; 4: rejected.
    step(&app, &operator, &mut i3, json!({"action": "file"})).await;
    step(&app, &dispatcher, &mut i3, json!({"action": "dispatch", "department": "cgj"})).await;
    step(&app, &operator, &mut i4, json!({"action": "reject", "note": "不属于受理范围"})).await;
    app.clock.advance(30 * 86_400_000);
    step(&app, &worker_a, &mut i2, json!({"action": "verify"})).await;
    let c2 = n(&step(&app, &dispatcher, &mut i2, json!({"action": "close"})).await, "closed_at");
    let j = step(&app, &operator, &mut i2, json!({"action": "evaluate", "rating": 2})).await;
    assert_eq!(j["late"], true);

    // The district, by street.
    let t = kpis(&app, &app.operator, "by=street&area=430503").await;
    let total = &t["total"];
    assert_eq!((n(total, "reported"), n(total, "filed"), n(total, "closed"), n(total, "closed_on_time")), (4, 3, 2, 1));
    assert_eq!((f(total, "closure_rate"), f(total, "on_time_closure_rate")), (2.0 / 3.0, 1.0 / 3.0));
    // Overdue: 2 is late; 3's handling step is past its limit now (the watcher has not run).
    assert_eq!((n(total, "overdue"), n(total, "late")), (2, 1));
    assert_eq!((n(total, "returns"), n(total, "returned"), n(total, "reworks"), n(total, "reworked")), (1, 1, 1, 1));
    assert_eq!(f(total, "rework_rate"), 1.0 / 3.0);
    assert_eq!(n(total, "mean_handling_ms"), ((c1 - r1) + (c2 - r2)) / 2);
    assert_eq!((n(total, "rated"), f(total, "mean_rating"), f(total, "satisfied_share")), (2, 3.5, 0.5));
    assert!(total["verifications"].is_null());
    let (sa, sb) = (row(&t, &a[..9]), row(&t, &b[..9]));
    assert_eq!((n(sa, "reported"), n(sa, "filed"), n(sa, "closed"), n(sa, "overdue")), (2, 2, 2, 1));
    assert_eq!((n(sb, "reported"), n(sb, "filed"), n(sb, "closed"), n(sb, "overdue")), (2, 1, 0, 1));
    assert_eq!(sb["closure_rate"], 0.0);
    assert_eq!(t["rows"].as_array().map(Vec::len), Some(12), "every street has a row");
    assert!(t["rows"].as_array().expect("rows").iter().filter(|r| r["key"] != a[..9] && r["key"] != b[..9]).all(|r| r["reported"] == 0 && r["closure_rate"].is_null()));
    // By community and grid, under a street.
    let t = kpis(&app, &app.operator, &format!("by=community&area={}", &a[..9])).await;
    assert_eq!((n(row(&t, &a[..12]), "reported"), n(&t["total"], "reported")), (2, 2));
    let t = kpis(&app, &app.operator, &format!("by=grid&area={}", &b[..12])).await;
    let g = row(&t, &b);
    assert_eq!((n(g, "reported"), n(g, "filed"), n(g, "overdue")), (2, 1, 1));
    assert!(g["closure_rate"] == 0.0 && g["mean_rating"].is_null());
    // By department: the department each incident is dispatched to now ("" none).
    let t = kpis(&app, &app.operator, "by=department&area=430503").await;
    let (dc, ds, none) = (row(&t, "cgj"), row(&t, "sw"), row(&t, ""));
    assert_eq!((n(dc, "reported"), n(dc, "filed"), n(dc, "closed"), n(dc, "returns"), n(dc, "overdue")), (3, 3, 2, 1, 2));
    assert_eq!((n(ds, "reported"), n(none, "reported"), n(none, "filed")), (0, 1, 0));
    assert_eq!(n(&t["total"], "reported"), 4);
    // By person: reports, and checks on site (2 of worker A's 3 within the limit).
    let t = kpis(&app, &app.operator, "by=person&area=430503").await;
    let (pa, pb) = (row(&t, &worker_a.id.to_string()), row(&t, &worker_b.id.to_string()));
    assert_eq!((n(pa, "reported"), n(pa, "closed"), n(pa, "verifications"), n(pa, "verifications_on_time")), (2, 2, 3, 2));
    assert_eq!((n(pb, "reported"), n(pb, "filed"), n(pb, "verifications")), (2, 1, 0));
    assert_eq!((pa["role"].as_str(), pa["name"].as_str()), (Some("grid_worker"), Some("测试k.worker.a")));
    assert_eq!((n(&t["total"], "reported"), n(&t["total"], "verifications")), (4, 3));
    // Another range holds nothing.
    let r = app.send(Req::new(Method::GET, "/api/v1/kpis?from=2026-11-26&to=2026-12-31&by=street&area=430503").token(&app.operator.token)).await;
    assert_eq!(n(&r.json()["total"], "reported"), 0);

    // The watcher marks 3 late (and escalates it): overdue stays 2, now both marked.
    assert_eq!(app.db.watch_time_limits().await.expect("watch"), vec![i3.id]);
    let t = kpis(&app, &app.operator, "by=street&area=430503").await;
    assert_eq!((n(&t["total"], "overdue"), n(&t["total"], "late")), (2, 2));
    assert_eq!(n(row(&t, &b[..9]), "reported"), 2, "an escalated incident still counts where it happened");

    // A department handler sees its department's figures only.
    let t = kpis(&app, &cgj, "by=street").await;
    assert_eq!((n(&t["total"], "reported"), n(row(&t, &a[..9]), "reported"), n(row(&t, &b[..9]), "reported")), (3, 2, 1));
    let t = kpis(&app, &cgj, "by=department").await;
    assert_eq!(t["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(n(row(&t, "cgj"), "reported"), 3);
    assert_eq!(n(&kpis(&app, &sw, "by=street").await["total"], "reported"), 0);

    // The rollup kept through every change equals one rebuilt from the incidents.
    let kept = app.db.kpi_rollup_rows().await.expect("rows");
    assert!(!kept.is_empty());
    app.db.rebuild_kpis().await.expect("rebuild");
    assert_eq!(app.db.kpi_rollup_rows().await.expect("rows"), kept);

    // The page: Chinese by default, English on request, a totals row, rates as percentages.
    let r = app.page("/kpis?from=2026-11-25&to=2026-11-25&by=street&area=430503", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("结案率") && r.body.contains("合计") && r.body.contains("66.7%") && r.body.contains("33.3%"), "{}", r.body);
    assert!(!r.body.contains("核查次数"), "the columns about people show only by person");
    let r = app.page("/kpis?from=2026-11-25&to=2026-11-25&by=street&area=430503", Some("lang=en")).await;
    assert!(r.body.contains("Closure rate") && r.body.contains("Total"));
    let r = app.page("/kpis?from=2026-11-25&to=2026-11-25&by=person&area=430503", None).await;
    assert!(r.body.contains("核查次数") && r.body.contains("网格员") && r.body.contains("测试k.worker.a"), "{}", r.body);
    let r = app.page("/kpis.csv?from=2026-11-25&to=2026-11-25&by=department&area=430503", None).await;
    assert!(r.content_type().starts_with("text/csv"));
    assert!(r.body.lines().any(|l| l.starts_with("cgj,") && l.contains(",3,3,2,66.7%,")), "{}", r.body);
    let _ = i4;
}

async fn scope_and_bad_input(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, a) = inside(&app, 0);
    let (lat_b, lon_b, b) = inside(&app, 1);
    let worker_a = app.user("s.worker.a", Role::GridWorker, &a).await;
    let worker_b = app.user("s.worker.b", Role::GridWorker, &b).await;
    report(&app, &worker_a, lat, lon).await;
    report(&app, &worker_b, lat_b, lon_b).await;
    let community = app.user("s.community", Role::CommunityStaff, &a[..12]).await;
    // A community's staff see their own subtree, by grid, by default.
    let t = kpis(&app, &community, "").await;
    assert_eq!((t["by"].as_str(), t["area"].as_str()), (Some("grid"), Some(&a[..12])));
    let in_community = usize::from(a[..12] == b[..12]) + 1;
    assert_eq!(n(&t["total"], "reported"), in_community as i64);
    assert!(t["rows"].as_array().expect("rows").iter().all(|r| r["key"].as_str().is_some_and(|k| k.starts_with(&a[..12]))));
    // Above their area, or another grid: not found, and the attempt is audited.
    let before = app.audit_count("s.community", "denied").await;
    let r = app.send(Req::new(Method::GET, "/api/v1/kpis?area=430503").token(&community.token)).await;
    r.assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(app.audit_count("s.community", "denied").await, before + 1);
    let r = app.send(Req::new(Method::GET, &format!("/api/v1/kpis?area={b}&by=person")).token(&worker_a.token)).await;
    r.assert_problem(StatusCode::NOT_FOUND, "not_found");
    let t = kpis(&app, &worker_a, "").await;
    assert_eq!((t["by"].as_str(), n(&t["total"], "reported")), (Some("person"), 1));
    assert_eq!(t["rows"].as_array().map(Vec::len), Some(1));
    // Auditors and admins do not read incident figures.
    let auditor = app.user("s.auditor", Role::Auditor, "430503").await;
    app.send(Req::new(Method::GET, "/api/v1/kpis").token(&auditor.token)).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    let session = app.db.create_session(auditor.id, "test").await.expect("session");
    let page = app.send(Req::new(Method::GET, "/kpis").header("cookie", &format!("cg_session={}", session.id))).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // A bad query on the page: the form again, with the reason, and no table.
    let page = app.page("/kpis?from=2026-11-26&to=2026-11-25", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("is after") && !page.body.contains("<tfoot>"), "{}", page.body);
    app.send(Req::new(Method::GET, "/api/v1/kpis")).await.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    // Bad input.
    for (q, code) in [
        ("from=2026-11-26&to=2026-11-25", "invalid_range"),
        ("from=2026-02-30", "invalid_date"),
        ("to=yesterday", "invalid_date"),
        ("by=village", "invalid_grouping"),
        ("by=street&area=430503001", "invalid_grouping"),
        ("area=43050", "invalid_area_code"),
        ("from=2000-01-01&to=2026-01-01", "invalid_range"),
    ] {
        app.get(&format!("/api/v1/kpis?{q}")).await.assert_problem(StatusCode::BAD_REQUEST, code);
    }
}

/// Random walks through the loop (random actors, actions, clock moves, watcher runs): the
/// rollup kept by every change equals the one rebuilt from the incidents.
async fn the_kept_rollup_equals_a_rebuild(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let mut rng = Rng::new(20261125);
    let lead = app.user("r.lead", Role::ShiftLead, "430503").await;
    let cgj = handler(&app, "r.cgj", "cgj").await;
    let sw = handler(&app, "r.sw", "sw").await;
    let mut workers = Vec::new();
    let mut open: Vec<(i64, usize)> = Vec::new();
    for k in 0..4 {
        let (lat, lon, g) = inside(&app, k * 150);
        let w = app.user(&format!("r.worker{k}"), Role::GridWorker, &g).await;
        workers.push((w, lat, lon));
    }
    let mut moves = 0;
    for round in 0..300 {
        if round % 10 == 0 || open.is_empty() {
            let k = rng.below(workers.len());
            let (w, lat, lon) = &workers[k];
            let (inc, _) = report(&app, w, *lat, *lon).await;
            open.push((inc.id, k));
        }
        let (id, k) = *rng.pick(&open);
        // Ask the actors in a random order; the first with something to do acts.
        let mut actors: Vec<&TestUser> = vec![&lead, &cgj, &sw, &workers[k].0];
        for i in (1..actors.len()).rev() {
            actors.swap(i, rng.below(i + 1));
        }
        let mut chosen = None;
        for who in actors {
            let r = app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{id}")).token(&who.token)).await;
            if r.status != StatusCode::OK {
                continue;
            }
            let j = r.json();
            let allowed: Vec<String> = j["allowed_actions"].as_array().expect("allowed").iter().filter_map(|a| a.as_str().map(String::from)).collect();
            // Merges need a second incident; rejecting, voiding and escalating (out of the
            // grid worker's sight) end a walk early, so they are rare.
            let rare = rng.below(8) != 0;
            let allowed: Vec<&String> = allowed.iter().filter(|a| *a != "merge" && !(rare && ["void", "reject", "escalate"].contains(&a.as_str()))).collect();
            if allowed.is_empty() {
                continue;
            }
            // Mostly forward through the loop, sometimes anything else allowed.
            const FORWARD: [&str; 9] = ["file", "dispatch", "accept", "handle", "handle_on_spot", "verify", "fail_verification", "close", "evaluate"];
            let forward: Vec<&&String> = allowed.iter().filter(|a| FORWARD.contains(&a.as_str())).collect();
            let action = if !forward.is_empty() && rng.below(4) != 0 { (*forward[rng.below(forward.len())]).clone() } else { allowed[rng.below(allowed.len())].clone() };
            chosen = Some((who, j, action));
            break;
        }
        let Some((who, j, action)) = chosen else { continue };
        let mut body = json!({"action": action, "version": j["version"], "note": "随机"});
        match action.as_str() {
            "dispatch" => body["department"] = json!(if rng.below(2) == 0 { "cgj" } else { "sw" }),
            "evaluate" => body["rating"] = json!(1 + rng.below(5)),
            "request_extension" => body["extension_hours"] = json!(4),
            _ => {}
        }
        app.clock.advance(60_000 * (1 + rng.below(90)) as i64);
        let r = app.send(Req::new(Method::POST, &format!("/api/v1/incidents/{id}/transitions")).token(&who.token).json(body)).await;
        if r.status == StatusCode::OK {
            moves += 1;
            // Most rated incidents stay done (the rest may be reopened).
            if action == "evaluate" && rng.below(4) != 0 {
                open.retain(|(x, _)| *x != id);
            }
        }
        if round % 20 == 19 {
            app.db.watch_time_limits().await.expect("watch");
        }
    }
    assert!(moves > 100, "the walk moved incidents ({moves} transitions)");
    let kept = app.db.kpi_rollup_rows().await.expect("rows");
    app.db.rebuild_kpis().await.expect("rebuild");
    let rebuilt = app.db.kpi_rollup_rows().await.expect("rows");
    assert_eq!(kept.len(), rebuilt.len());
    for (x, y) in kept.iter().zip(&rebuilt) {
        assert_eq!(x, y);
    }
    let t = app.get("/api/v1/kpis?from=2026-11-25&to=2027-12-31&by=department&area=430503").await.json();
    assert!(n(&t["total"], "closed") > 0 && n(&t["total"], "returns") > 0, "{}", t["total"]);
}
