//! Incidents: reporting, the loop, versions, scope, and the resident's receipt.

use axum::http::{Method, StatusCode};
use domain::{Level, Role};
use serde_json::{Value, json};
use store::Dialect;

use crate::{Req, TestApp, TestUser, on_both_backends};

on_both_backends!(
    the_loop_from_report_to_evaluation,
    scope_and_bad_input,
    time_limits_run_on_the_work_calendar,
    duplicates_are_suggested_and_merged,
    inboxes_and_the_time_limit_watcher,
    photos_are_typed_by_content_and_lose_their_location,
);

pub(crate) async fn with_catalogue(d: Dialect) -> Option<TestApp> {
    let app = TestApp::with_demo(d).await?;
    app.db
        .load_catalogue(
            &store::audit::Actor::cli("test"),
            &domain::catalogue::demo_departments(),
            &domain::catalogue::demo_categories(),
            &store::catalogue::demo_calendar(),
        )
        .await
        .expect("catalogue");
    Some(app)
}

/// A point inside a grid, and the grid's code.
pub(crate) fn inside(app: &TestApp, k: usize) -> (f64, f64, String) {
    let index = domain::GridIndex::build(&app.demo.areas);
    let grid = app.demo.areas.iter().filter(|a| a.level == Level::Grid).nth(k).expect("grid");
    let b = grid.bbox().expect("bbox");
    let (lat, lon) = ((b.min().y + b.max().y) / 2.0, (b.min().x + b.max().x) / 2.0);
    assert_eq!(index.locate_grid(lon, lat), Some(&grid.code), "the middle of a demo cell lies in it");
    (lat, lon, grid.code.to_string())
}

pub(crate) async fn act(app: &TestApp, who: &TestUser, id: i64, body: Value) -> crate::Reply {
    app.send(Req::new(Method::POST, &format!("/api/v1/incidents/{id}/transitions")).token(&who.token).json(body)).await
}

pub(crate) fn version(r: &crate::Reply) -> i64 {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["version"].as_i64().expect("version")
}

async fn the_loop_from_report_to_evaluation(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, grid) = inside(&app, 0);
    let worker = app.user("inc.worker", Role::GridWorker, &grid).await;
    let report = || {
        Req::new(Method::POST, "/api/v1/incidents").token(&worker.token).header("idempotency-key", "patrol-0001").json(json!({
            "category": "C0101", "description": "井盖缺失，行人有坠落危险", "location": {"lat": lat, "lon": lon},
            "reporter_phone": "13812345678"
        }))
    };
    let r = app.send(report()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let inc = r.json();
    let id = inc["id"].as_i64().expect("id");
    assert_eq!((inc["state"].as_str(), inc["grid"].as_str(), inc["version"].as_i64()), (Some("reported"), Some(grid.as_str()), Some(1)));
    assert_eq!(inc["source"], "grid_patrol");
    assert_eq!(inc["reporter_phone_masked"], "138****5678");
    let receipt = inc["receipt"].as_str().expect("receipt").to_string();
    // A flaky network retries: the same key returns the same incident.
    let again = app.send(report()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["id"], id);

    let operator = app.user("inc.operator", Role::Operator, "430503").await;
    let dispatcher = app.user("inc.dispatcher", Role::Dispatcher, "430503").await;
    let lead = app.user("inc.lead", Role::ShiftLead, "430503").await;
    let v = version(&act(&app, &operator, id, json!({"action": "file", "version": 1})).await);
    // Closing now is not allowed: the answer lists what is.
    let r = act(&app, &dispatcher, id, json!({"action": "close", "version": v})).await;
    r.assert_problem(StatusCode::CONFLICT, "transition_not_allowed");
    let allowed: Vec<String> = r.json()["errors"]["allowed"].as_array().expect("allowed").iter().filter_map(|a| a.as_str().map(String::from)).collect();
    assert!(allowed.contains(&"dispatch".to_string()) && !allowed.contains(&"close".to_string()), "{allowed:?}");
    // Two dispatchers at once: one wins, the other is told the incident changed.
    let (a, b) = tokio::join!(
        act(&app, &dispatcher, id, json!({"action": "dispatch", "version": v, "department": "sw"})),
        act(&app, &lead, id, json!({"action": "dispatch", "version": v, "department": "cgj"})),
    );
    let (win, lose) = if a.status == StatusCode::OK { (a, b) } else { (b, a) };
    let v = version(&win);
    lose.assert_problem(StatusCode::CONFLICT, "stale_version");
    let dept = win.json()["department"].as_str().expect("department").to_string();
    // The department it went to sees it; another department does not.
    let handler = app.user("inc.handler", Role::DepartmentHandler, "430503").await;
    app.db.update_account(&store::audit::Actor::cli("test"), handler.id, Role::DepartmentHandler, &domain::AreaCode::parse("430503").expect("code"), Some(&dept)).await.expect("dept");
    let other_dept = if dept == "sw" { "cgj" } else { "sw" };
    let stranger = app.user("inc.stranger", Role::DepartmentHandler, "430503").await;
    app.db.update_account(&store::audit::Actor::cli("test"), stranger.id, Role::DepartmentHandler, &domain::AreaCode::parse("430503").expect("code"), Some(other_dept)).await.expect("dept");
    let mine = app.send(Req::new(Method::GET, "/api/v1/incidents").token(&handler.token)).await.json();
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));
    let theirs = app.send(Req::new(Method::GET, "/api/v1/incidents").token(&stranger.token)).await.json();
    assert_eq!(theirs["items"].as_array().map(Vec::len), Some(0));
    app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{id}")).token(&stranger.token)).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    act(&app, &stranger, id, json!({"action": "accept", "version": v})).await.assert_problem(StatusCode::NOT_FOUND, "not_found");

    // The grid's own worker sees it, but the work went to the department: only its handlers take it.
    let r = act(&app, &worker, id, json!({"action": "accept", "version": v})).await;
    r.assert_problem(StatusCode::CONFLICT, "transition_forbidden");
    let v = version(&act(&app, &handler, id, json!({"action": "accept", "version": v})).await);
    let v = version(&act(&app, &handler, id, json!({"action": "handle", "version": v, "note": "已补装井盖"})).await);
    // The grid worker finds it not done: rework.
    let v = version(&act(&app, &worker, id, json!({"action": "fail_verification", "version": v, "note": "井盖未固定"})).await);
    let v = version(&act(&app, &handler, id, json!({"action": "handle", "version": v, "note": "已固定"})).await);
    let v = version(&act(&app, &worker, id, json!({"action": "verify", "version": v})).await);
    let v = version(&act(&app, &dispatcher, id, json!({"action": "close", "version": v})).await);
    act(&app, &operator, id, json!({"action": "evaluate", "version": v, "rating": 9})).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_rating");
    let r = act(&app, &operator, id, json!({"action": "evaluate", "version": v, "rating": 5})).await;
    assert_eq!(r.json()["state"], "evaluated");
    assert_eq!((r.json()["reworks"].as_i64(), r.json()["rating"].as_i64()), (Some(1), Some(5)));

    // The timeline records who did what, from which state, and why.
    let detail = app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{id}")).token(&worker.token)).await.json();
    let steps: Vec<(&str, &str)> = detail["timeline"].as_array().expect("timeline").iter().map(|t| (t["action"].as_str().unwrap_or(""), t["actor_name"].as_str().unwrap_or(""))).collect();
    assert_eq!(steps[0], ("report", "inc.worker"));
    assert_eq!(steps.len(), 10);
    assert!(detail["timeline"].as_array().expect("timeline").iter().any(|t| t["note"] == "井盖未固定" && t["from_state"] == "handled" && t["to_state"] == "in_progress"));

    // The resident's receipt page: no login, no personal data.
    let r = app.send(Req::new(Method::GET, &format!("/api/v1/public/receipts/{}", receipt.to_lowercase()))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!((v["state"].as_str(), v["state_name"].as_str()), (Some("evaluated"), Some("已评价")));
    for private in ["13812345678", "138****5678", "井盖缺失", "inc.worker", "inc.handler"] {
        assert!(!r.body.contains(private), "the receipt page shows {private}");
    }
    app.send(Req::new(Method::GET, "/api/v1/public/receipts/20261125-XXXXXX")).await.assert_problem(StatusCode::NOT_FOUND, "receipt_not_found");
}

async fn scope_and_bad_input(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, grid_a) = inside(&app, 0);
    let (_, _, grid_b) = inside(&app, 1);
    let a = app.user("a.worker", Role::GridWorker, &grid_a).await;
    let b = app.user("b.worker", Role::GridWorker, &grid_b).await;
    let post = |t: &TestUser, body: Value| app.send(Req::new(Method::POST, "/api/v1/incidents").token(&t.token).json(body));
    let r = post(&a, json!({"category": "E0201", "description": "占道经营", "location": {"lat": lat, "lon": lon}})).await;
    let id = r.json()["id"].as_i64().expect("id");
    // Another grid's worker neither sees nor moves it; each attempt leaves a denied row.
    let before = app.audit_count("b.worker", "denied").await;
    app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{id}")).token(&b.token)).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    act(&app, &b, id, json!({"action": "handle_on_spot", "version": 1})).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(app.audit_count("b.worker", "denied").await, before + 2);
    assert_eq!(app.send(Req::new(Method::GET, "/api/v1/incidents").token(&b.token)).await.json()["items"].as_array().map(Vec::len), Some(0));
    // Its own worker may handle it on the spot (the category allows it).
    assert_eq!(act(&app, &a, id, json!({"action": "handle_on_spot", "version": 1, "note": "已劝离"})).await.json()["state"], "handled");
    // An address-only report waits at the district, for the centre to place.
    let r = post(&a, json!({"category": "E0201", "description": "占道经营", "address": "红旗路 12 号"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.json()["grid"].is_null());
    assert_eq!(r.json()["area"], "430503");
    // So does a point outside every grid: accepted, into the unassigned queue, not refused.
    let r = post(&a, json!({"category": "E0201", "description": "占道经营", "location": {"lat": 28.9, "lon": 112.9}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.json()["grid"].is_null(), r.json()["area"].as_str(), r.json()["lat"].as_f64()), (true, Some("430503"), Some(28.9)));
    // Bad input: a clear problem, and nothing stored.
    let count = app.send(Req::new(Method::GET, "/api/v1/incidents").token(&app.operator.token)).await.json()["items"].as_array().map(Vec::len);
    for (body, code) in [
        (json!({"category": "C0101", "description": " ", "address": "y"}), "invalid_description"),
        (json!({"category": "C0101", "description": "x"}), "location_required"),
        (json!({"category": "C0101", "description": "x", "location": {"lat": 95.0, "lon": 111.0}}), "invalid_latitude"),
        (json!({"category": "C0101", "description": "x", "address": "y", "reporter_phone": "12345"}), "invalid_phone"),
        (json!({"category": "C0101", "description": "x", "address": "y", "source": "rumour"}), "invalid_source"),
        (json!({"category": "C0101"}), "invalid_body"),
    ] {
        post(&a, body).await.assert_problem(StatusCode::BAD_REQUEST, code);
    }
    // Well formed, but naming no category or too long: 422.
    for (body, code) in [
        (json!({"category": "X9999", "description": "x", "address": "y"}), "unknown_category"),
        (json!({"category": "C01", "description": "x", "address": "y"}), "unknown_category"),
        (json!({"category": "C0101", "description": "井".repeat(4001), "address": "y"}), "description_too_long"),
    ] {
        post(&a, body).await.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    assert_eq!(post(&a, json!({"category": "C0101", "description": "井".repeat(4000), "address": "y"})).await.status, StatusCode::CREATED, "4,000 characters are fine");
    let after = app.send(Req::new(Method::GET, "/api/v1/incidents").token(&app.operator.token)).await.json()["items"].as_array().map(Vec::len);
    assert_eq!(count.map(|n| n + 1), after, "only the good report was stored");
    act(&app, &a, id, json!({"action": "fly", "version": 2})).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_action");
    // Auditors and admins do not work incidents.
    let auditor = app.user("inc.aud", Role::Auditor, "430503").await;
    app.send(Req::new(Method::GET, "/api/v1/incidents").token(&auditor.token)).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
}

async fn time_limits_run_on_the_work_calendar(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, grid) = inside(&app, 2);
    let worker = app.user("tl.worker", Role::GridWorker, &grid).await;
    // The test clock stands at Wednesday 2026-11-25 17:24:58 in Shanghai. Filing (1 working
    // hour) has 5 minutes left today and the rest on Thursday morning.
    let r = app
        .send(Req::new(Method::POST, "/api/v1/incidents").token(&worker.token).json(json!({
            "category": "C0101", "description": "井盖破损", "location": {"lat": lat, "lon": lon}
        })))
        .await;
    let inc = r.json();
    let id = inc["id"].as_i64().expect("id");
    let thursday_0925 = domain::calendar::Day::parse("2026-11-26").expect("day").at_minute(9 * 60 + 24) + 58_000;
    assert_eq!((inc["step"].as_str(), inc["deadline"].as_i64(), inc["warning"].as_str()), (Some("file"), Some(thursday_0925), Some("green")));
    let get = || app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{id}")).token(&worker.token));
    // Overnight nothing runs: at Thursday 08:30 it is still green.
    app.clock.advance(15 * 3_600_000 + 5 * 60_000 + 2_000);
    assert_eq!(get().await.json()["warning"], "green");
    // At the deadline the whole hour is used (yellow); a minute later it is overdue (red).
    app.clock.advance(54 * 60_000 + 58_000);
    assert_eq!(get().await.json()["warning"], "yellow");
    app.clock.advance(60_000);
    assert_eq!(get().await.json()["warning"], "red");
    let list = app.send(Req::new(Method::GET, "/api/v1/incidents").token(&worker.token)).await.json();
    assert_eq!(list["items"][0]["warning"], "red");
    // Filing starts the dispatch step's own clock.
    let operator = app.user("tl.operator", Role::Operator, "430503").await;
    let r = act(&app, &operator, id, json!({"action": "file", "version": 1})).await;
    assert_eq!((r.json()["step"].as_str(), r.json()["warning"].as_str()), (Some("dispatch"), Some("green")));
    assert_eq!(r.json()["late"], true, "filing finished past its limit");
    // The board's colour filters.
    let ids = async |q: &str| {
        let r = app.send(Req::new(Method::GET, &format!("/api/v1/incidents?{q}")).token(&operator.token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.json()["items"].as_array().expect("items").iter().filter_map(|i| i["id"].as_i64()).collect::<Vec<_>>()
    };
    assert_eq!(ids("warning=green").await, [id]);
    assert!(ids("warning=red").await.is_empty());
    app.send(Req::new(Method::GET, "/api/v1/incidents?warning=purple").token(&operator.token)).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_warning");

    // Dispatched and accepted, the handling step asks for more time: the approved working
    // hours move its deadline by exactly that much working time.
    let dispatcher = app.user("tl.dispatcher", Role::Dispatcher, "430503").await;
    let lead = app.user("tl.lead", Role::ShiftLead, "430503").await;
    let handler = app.user("tl.handler", Role::DepartmentHandler, "430503").await;
    app.db.update_account(&store::audit::Actor::cli("test"), handler.id, Role::DepartmentHandler, &domain::AreaCode::parse("430503").expect("c"), Some("cgj")).await.expect("dept");
    let v = version(&r);
    let v = version(&act(&app, &dispatcher, id, json!({"action": "dispatch", "version": v, "department": "cgj"})).await);
    let r = act(&app, &handler, id, json!({"action": "accept", "version": v})).await;
    let (v, handle_deadline) = (version(&r), r.json()["deadline"].as_i64().expect("deadline"));
    act(&app, &handler, id, json!({"action": "request_extension", "version": v})).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_extension");
    act(&app, &handler, id, json!({"action": "request_extension", "version": v, "extension_hours": 1000})).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_extension");
    let r = act(&app, &handler, id, json!({"action": "request_extension", "version": v, "extension_hours": 8, "note": "需采购配件"})).await;
    assert_eq!((r.json()["extension_pending"].as_bool(), r.json()["extension_requested_hours"].as_i64()), (Some(true), Some(8)));
    assert_eq!(r.json()["deadline"], handle_deadline, "asking moves nothing");
    let r = act(&app, &lead, id, json!({"action": "approve_extension", "version": version(&r)})).await;
    let calendar = app.db.timing().await.expect("timing").calendar.clone();
    let extended = calendar.add_working(handle_deadline, 8 * 3_600_000);
    assert_eq!((r.json()["deadline"].as_i64(), r.json()["extension_granted_hours"].as_i64()), (Some(extended), Some(8)));
    // A holiday declared on the deadline's day moves it again, at once.
    let day = domain::calendar::Day::of_instant(extended);
    let put = app.send(Req::new(Method::PUT, &format!("/api/v1/calendar/{day}")).token(&lead.token).json(json!({"kind": "holiday", "name": "临时停工"}))).await;
    assert!(put.status.is_success(), "{}", put.body);
    let moved = app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{id}")).token(&handler.token)).await.json()["deadline"].as_i64().expect("deadline");
    let calendar = app.db.timing().await.expect("timing").calendar.clone();
    assert!(calendar.holidays.contains(&day));
    assert!(moved > extended && !calendar.is_working_day(day) && domain::calendar::Day::of_instant(moved) > day, "{moved} after the holiday");
}

async fn duplicates_are_suggested_and_merged(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, _) = inside(&app, 3);
    let operator = app.user("dup.operator", Role::Operator, "430503").await;
    let report = |category: &str, dlat: f64| {
        app.send(Req::new(Method::POST, "/api/v1/incidents").token(&operator.token).json(json!({
            "category": category, "description": "路灯不亮", "location": {"lat": lat + dlat, "lon": lon}
        })))
    };
    let first = report("C0104", 0.0).await.json();
    let near = report("C0104", 0.00018).await.json(); // about 20 m north
    let far = report("C0104", 0.0018).await.json(); // about 200 m north
    let other = report("C0105", 0.0).await.json(); // another category, same spot
    let (a, b) = (first["id"].as_i64().expect("id"), near["id"].as_i64().expect("id"));
    let suggested = app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{b}/duplicates")).token(&operator.token)).await.json();
    let ids: Vec<i64> = suggested.as_array().expect("list").iter().filter_map(|i| i["id"].as_i64()).collect();
    assert_eq!(ids, [a], "only the same category within 50 m ({far} and {other} are not)");
    // Merge the later report into the first: linked both ways, its receipt follows.
    act(&app, &operator, b, json!({"action": "merge", "version": 1})).await.assert_problem(StatusCode::BAD_REQUEST, "merge_target");
    act(&app, &operator, b, json!({"action": "merge", "version": 1, "into": 999999})).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    let r = act(&app, &operator, b, json!({"action": "merge", "version": 1, "into": a})).await;
    assert_eq!(r.json()["state"], "merged");
    let survivor = app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{a}")).token(&operator.token)).await.json();
    assert_eq!(survivor["duplicates"], json!([b]));
    assert!(survivor["timeline"].as_array().expect("timeline").iter().any(|t| t["action"] == "merge_in"));
    let dup = app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{b}")).token(&operator.token)).await.json();
    assert_eq!(dup["merged_into"], a);
    let receipt = near["receipt"].as_str().expect("receipt");
    let view = app.send(Req::new(Method::GET, &format!("/api/v1/public/receipts/{receipt}"))).await.json();
    assert_eq!(view["receipt"], first["receipt"], "the duplicate's reporter now follows the surviving incident");
    // Nothing merges into a merged incident.
    let f = far["id"].as_i64().expect("id");
    act(&app, &operator, f, json!({"action": "merge", "version": 1, "into": b})).await.assert_problem(StatusCode::BAD_REQUEST, "merge_target");
}

async fn inboxes_and_the_time_limit_watcher(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, grid) = inside(&app, 4);
    let operator = app.user("wt.operator", Role::Operator, "430503").await;
    let dispatcher = app.user("wt.dispatcher", Role::Dispatcher, "430503").await;
    let lead = app.user("wt.lead", Role::ShiftLead, "430503").await;
    let handler = app.user("wt.handler", Role::DepartmentHandler, "430503").await;
    app.db.update_account(&store::audit::Actor::cli("test"), handler.id, Role::DepartmentHandler, &domain::AreaCode::parse("430503").expect("c"), Some("cgj")).await.expect("dept");
    let other = app.user("wt.other", Role::DepartmentHandler, "430503").await;
    app.db.update_account(&store::audit::Actor::cli("test"), other.id, Role::DepartmentHandler, &domain::AreaCode::parse("430503").expect("c"), Some("zjj")).await.expect("dept");
    let report = || {
        app.send(Req::new(Method::POST, "/api/v1/incidents").token(&operator.token).json(json!({
            "category": "C0102", "description": "污水井盖破损", "location": {"lat": lat, "lon": lon}
        })))
    };
    let idle = report().await.json()["id"].as_i64().expect("id");
    let busy = report().await.json()["id"].as_i64().expect("id");
    let v = version(&act(&app, &operator, busy, json!({"action": "file", "version": 1})).await);
    let v = version(&act(&app, &dispatcher, busy, json!({"action": "dispatch", "version": v, "department": "cgj"})).await);
    // The department's inbox has the dispatch; another department's has nothing.
    let inbox = |t: &TestUser, q: &str| app.send(Req::new(Method::GET, &format!("/api/v1/inbox{q}")).token(&t.token));
    let items = inbox(&handler, "?unread=true").await.json();
    assert_eq!(items.as_array().map(Vec::len), Some(1));
    assert_eq!((items[0]["kind"].as_str(), items[0]["incident_id"].as_i64()), (Some("dispatched"), Some(busy)));
    let message = items[0]["message"].as_str().expect("message");
    assert!(message.contains("污水井盖") && !message.contains("C0102"), "the message names the category in words: {message}");
    assert_eq!(inbox(&other, "").await.json().as_array().map(Vec::len), Some(0));
    let nid = items[0]["id"].as_i64().expect("id");
    app.send(Req::new(Method::POST, &format!("/api/v1/inbox/{nid}/read")).token(&other.token)).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(app.send(Req::new(Method::POST, &format!("/api/v1/inbox/{nid}/read")).token(&handler.token)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(inbox(&handler, "?unread=true").await.json().as_array().map(Vec::len), Some(0));
    version(&act(&app, &handler, busy, json!({"action": "accept", "version": v})).await);

    // Three working days later both are overdue: the idle one waiting to be filed, the busy
    // one in handling (4 working hours), which the policy escalates to its community.
    app.clock.advance(5 * 86_400_000);
    let mut found = server::inbox::watch_once(&app.state).await.expect("watch");
    found.sort_unstable();
    assert_eq!(found, [idle, busy]);
    let detail = app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{busy}")).token(&operator.token)).await.json();
    assert_eq!((detail["level"].as_str(), detail["area"].as_str()), (Some("community"), Some(&grid[..12])));
    // Escalated, it stays in sight of the grid it happened in: the grid's worker finds it
    // on the board and will verify it there.
    let worker = app.user("wt.worker", Role::GridWorker, &grid).await;
    let seen = app.send(Req::new(Method::GET, "/api/v1/incidents?limit=500").token(&worker.token)).await.json();
    assert!(seen["items"].as_array().expect("items").iter().any(|i| i["id"] == busy), "the grid worker still sees #{busy}");
    assert_eq!(app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{busy}")).token(&worker.token)).await.status, StatusCode::OK);
    // … and a worker of the neighbouring grid does not.
    let (_, _, next_grid) = inside(&app, 5);
    let neighbour = app.user("wt.neighbour", Role::GridWorker, &next_grid).await;
    app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{busy}")).token(&neighbour.token)).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert!(detail["timeline"].as_array().expect("timeline").iter().any(|t| t["action"] == "escalate" && t["actor_name"] == "time-limit watcher"));
    let overdue: Vec<i64> = inbox(&lead, "").await.json().as_array().expect("inbox").iter().filter(|n| n["kind"] == "overdue").filter_map(|n| n["incident_id"].as_i64()).collect();
    assert_eq!(overdue.len(), 2);
    // Exactly once: another pass, and a restarted server on the same store, find nothing new.
    assert!(server::inbox::watch_once(&app.state).await.expect("watch").is_empty());
    let clock: std::sync::Arc<dyn domain::clock::Clock> = app.clock.clone();
    let reopened = store::Db::open_with_clock(app.db.url(), clock).await.expect("reopen");
    let restarted = server::AppState::new(reopened, server::ServerConfig::default()).await.expect("state");
    assert!(server::inbox::watch_once(&restarted).await.expect("watch").is_empty(), "the marks in the store survive a restart");
    assert_eq!(inbox(&lead, "").await.json().as_array().expect("inbox").iter().filter(|n| n["kind"] == "overdue").count(), 2);
    let escalations = app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{busy}")).token(&operator.token)).await.json()["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|t| t["action"] == "escalate")
        .count();
    assert_eq!(escalations, 1);
}

#[tokio::test]
async fn residents_report_without_an_account_and_follow_their_receipt() {
    let Some(app) = with_catalogue(Dialect::Sqlite).await else { return };
    let (lat, lon, grid) = inside(&app, 5);
    let page = app.send(Req::new(Method::GET, "/report")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("我要报事") && page.body.contains("上水井盖"), "the form lists the categories");
    let post = |fields: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.send(Req::new(Method::POST, "/report").form(&pairs))
    };
    let good = || {
        vec![
            ("category", "E0101".to_string()),
            ("description", "小区门口垃圾三天没人清运".to_string()),
            ("lat", lat.to_string()),
            ("lon", lon.to_string()),
            ("phone", "13912345678".to_string()),
        ]
    };
    // A bad phone number: the form comes back with the reason, and nothing is stored.
    let mut bad = good();
    bad[4].1 = "12345".into();
    let r = post(bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("11 位手机号码") && r.body.contains("小区门口垃圾"), "the form keeps what was typed");
    let r = post(good()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.location().expect("location").to_string();
    assert!(to.starts_with("/r/"));
    let status = app.send(Req::new(Method::GET, &to)).await;
    assert_eq!(status.status, StatusCode::OK);
    assert!(status.body.contains(&to[3..]) && status.body.contains("待立案") && status.body.contains("受理上报"));
    assert!(!status.body.contains("13912345678") && !status.body.contains("139****5678") && !status.body.contains("三天没人清运"));
    let list = app.get("/api/v1/incidents").await.json();
    let item = &list["items"][0];
    assert_eq!((item["source"].as_str(), item["grid"].as_str()), (Some("resident"), Some(grid.as_str())));
    assert_eq!(item["reporter_phone_masked"], "139****5678");
    // Five reports in ten minutes from one client; the sixth waits.
    for _ in 0..4 {
        assert_eq!(post(good()).await.status, StatusCode::SEE_OTHER);
    }
    let r = post(good()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("提交过于频繁"));
    app.clock.advance(10 * 60_000 + 1);
    assert_eq!(post(good()).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.send(Req::new(Method::GET, "/r/20261125-NOSUCH")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn staff_work_incidents_in_the_web_ui() {
    let Some(app) = with_catalogue(Dialect::Sqlite).await else { return };
    let (lat, lon, _) = inside(&app, 6);
    let r = app
        .send(Req::new(Method::POST, "/api/v1/incidents").token(&app.operator.token).json(json!({
            "category": "E0202", "description": "店外经营占用人行道", "location": {"lat": lat, "lon": lon}
        })))
        .await;
    let id = r.json()["id"].as_i64().expect("id");
    let session = app.db.create_session(app.operator.id, "test").await.expect("session");
    let cookie = format!("cg_session={}", session.id);
    let board = app.send(Req::new(Method::GET, "/incidents").header("cookie", &cookie)).await;
    assert_eq!(board.status, StatusCode::OK);
    assert!(board.body.contains(&format!("/incidents/{id}")) && board.body.contains("待立案") && board.body.contains("light green"));
    let page = app.send(Req::new(Method::GET, &format!("/incidents/{id}")).header("cookie", &cookie)).await;
    assert!(page.body.contains("店外经营占用人行道") && page.body.contains("value=\"file\""), "the page offers filing");
    let file = |version: &str| {
        app.send(Req::new(Method::POST, &format!("/incidents/{id}/act")).header("cookie", &cookie).form(&[
            ("csrf", session.csrf.as_str()),
            ("action", "file"),
            ("version", version),
            ("note", "属实"),
        ]))
    };
    let r = file("1").await;
    assert_eq!(r.location(), Some(format!("/incidents/{id}").as_str()));
    let page = app.send(Req::new(Method::GET, &format!("/incidents/{id}")).header("cookie", &cookie)).await;
    assert!(page.body.contains("待派遣") && page.body.contains("属实"));
    // A second click on the old page: told the incident changed, nothing applied twice.
    let r = file("1").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("刚被他人处理过"));
    // Auditors have no incident screens; another grid's worker cannot open this one.
    let auditor = app.user("ui.aud", Role::Auditor, "430503").await;
    let s = app.db.create_session(auditor.id, "test").await.expect("session");
    assert_eq!(app.send(Req::new(Method::GET, "/incidents").header("cookie", &format!("cg_session={}", s.id))).await.status, StatusCode::NOT_FOUND);
    let (_, _, other_grid) = inside(&app, 7);
    let stranger = app.user("ui.stranger", Role::GridWorker, &other_grid).await;
    let s = app.db.create_session(stranger.id, "test").await.expect("session");
    assert_eq!(app.send(Req::new(Method::GET, &format!("/incidents/{id}")).header("cookie", &format!("cg_session={}", s.id))).await.status, StatusCode::NOT_FOUND);
}

/// A minimal JPEG whose EXIF segment carries a GPS position.
fn jpeg_with_gps() -> Vec<u8> {
    let exif = b"Exif\0\0GPSLatitude 27.2401 GPSLongitude 111.4599";
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE1];
    b.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    b.extend_from_slice(exif);
    b.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02]);
    b.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x11, 0x22, 0x33, 0xFF, 0xD9]);
    b
}

async fn photos_are_typed_by_content_and_lose_their_location(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, grid) = inside(&app, 8);
    let worker = app.user("ph.worker", Role::GridWorker, &grid).await;
    let id = app
        .send(Req::new(Method::POST, "/api/v1/incidents").token(&worker.token).json(json!({
            "category": "C0101", "description": "井盖缺失", "location": {"lat": lat, "lon": lon}
        })))
        .await
        .json()["id"]
        .as_i64()
        .expect("id");
    let upload = |t: &TestUser, name: &str, bytes: Vec<u8>| {
        let mut r = Req::new(Method::POST, &format!("/api/v1/incidents/{id}/photos")).token(&t.token).header("content-type", name);
        r = r.body_bytes(bytes);
        app.send(r)
    };
    // The content decides the type: a JPEG sent as text is a JPEG; text sent as a JPEG is refused.
    let r = upload(&worker, "text/plain", jpeg_with_gps()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let p = r.json();
    assert_eq!(p["mime"], "image/jpeg");
    let hash = p["hash"].as_str().expect("hash").to_string();
    upload(&worker, "image/jpeg", b"<script>alert(1)</script>".to_vec()).await.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    upload(&worker, "image/jpeg", vec![0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF]).await.assert_problem(StatusCode::BAD_REQUEST, "damaged_image");
    let mut big = jpeg_with_gps();
    big.resize(10 * 1024 * 1024 + 1, 0);
    upload(&worker, "image/jpeg", big).await.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "photo_too_large");
    // The same photo twice is stored once.
    assert_eq!(upload(&worker, "image/jpeg", jpeg_with_gps()).await.json()["hash"], hash.as_str());
    let detail = app.send(Req::new(Method::GET, &format!("/api/v1/incidents/{id}")).token(&worker.token)).await.json();
    assert_eq!(detail["photos"].as_array().map(Vec::len), Some(1));
    // What comes back has no GPS position.
    let r = app.send(Req::new(Method::GET, &format!("/api/v1/photos/{hash}")).token(&worker.token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "image/jpeg");
    assert!(!r.body.contains("GPS") && !r.body.contains("Exif"));
    // Outside the incident's scope the photo does not exist.
    let (_, _, far) = inside(&app, 40);
    let stranger = app.user("ph.stranger", Role::GridWorker, &far).await;
    app.send(Req::new(Method::GET, &format!("/api/v1/photos/{hash}")).token(&stranger.token)).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    upload(&stranger, "image/jpeg", jpeg_with_gps()).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
}
