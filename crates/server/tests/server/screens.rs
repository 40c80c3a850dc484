//! The screens of issue 4: the dispatcher's board (filters, counts, paging, bulk
//! dispatch), the operator's intake form, placing an address-only report, the inbox page
//! and the grid worker's mobile list. Requests go in as a browser sends them: a session
//! cookie and the CSRF field.

use axum::http::{Method, StatusCode};
use domain::Role;
use serde_json::{Value, json};
use store::Dialect;

use crate::incidents::{act, inside, version, with_catalogue};
use crate::{Reply, Req, TestApp, TestUser, on_both_backends};

on_both_backends!(
    the_board_filters_counts_and_pages,
    bulk_dispatch_reports_each_incident,
    bulk_dispatch_out_of_scope_is_denied,
    operators_take_hotline_calls,
    address_only_reports_are_placed_in_their_grid,
    the_inbox_lists_dispatches_and_marks_them_read,
    the_mobile_list_shows_a_worker_their_grid_only,
    html_in_a_description_is_escaped_everywhere,
    the_desk_places_once_and_counts_by_state_and_colour,
    address_only_reports_do_not_break_the_next_report_with_a_point,
);

/// A browser session of an account: (cookie header, CSRF token).
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

impl Browser<'_> {
    pub(crate) async fn of<'a>(app: &'a TestApp, u: &TestUser) -> Browser<'a> {
        let s = app.db.create_session(u.id, "test").await.expect("session");
        Browser { app, cookie: format!("cg_session={}", s.id), csrf: s.csrf }
    }
    pub(crate) async fn get(&self, uri: &str) -> Reply {
        self.app.send(Req::new(Method::GET, uri).header("cookie", &self.cookie)).await
    }
    pub(crate) async fn post(&self, uri: &str, fields: &[(&str, &str)]) -> Reply {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.app.send(Req::new(Method::POST, uri).header("cookie", &self.cookie).form(&all)).await
    }
    /// A multipart form, as a browser sends one with a file.
    async fn post_multipart(&self, uri: &str, fields: &[(&str, &str)], file: Option<(&str, Vec<u8>)>) -> Reply {
        let b = "----civicgridTestBoundary7MA4YWxk";
        let mut body = Vec::new();
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        for (k, v) in all {
            body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
        }
        if let Some((name, bytes)) = file {
            body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
            body.extend_from_slice(&bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
        let req = Req::new(Method::POST, uri).header("cookie", &self.cookie).header("content-type", &format!("multipart/form-data; boundary={b}")).body_bytes(body);
        self.app.send(req).await
    }
}

/// Report through the API; returns the id.
async fn report(app: &TestApp, who: &TestUser, body: Value) -> i64 {
    let r = app.send(Req::new(Method::POST, "/api/v1/incidents").token(&who.token).json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["id"].as_i64().expect("id")
}

async fn read(app: &TestApp, id: i64) -> Value {
    let r = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
}

/// The incident ids of the board's rows, in order.
fn board_ids(body: &str) -> Vec<i64> {
    body.split("<td><a href=\"/incidents/").skip(1).filter_map(|s| s.split('"').next()?.parse().ok()).collect()
}

/// The ids on the board with this query, sorted.
async fn board_of(web: &Browser<'_>, q: String) -> Vec<i64> {
    let r = web.get(&format!("/incidents{q}")).await;
    assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
    let mut v = board_ids(&r.body);
    v.sort_unstable();
    v
}

/// A grid in another street than grid `k`.
fn elsewhere(app: &TestApp, k: usize) -> (f64, f64, String) {
    let (_, _, g) = inside(app, k);
    (0..200).map(|j| inside(app, j)).find(|(_, _, c)| c[..9] != g[..9]).expect("a grid of another street")
}

async fn the_board_filters_counts_and_pages(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat0, lon0, g0) = inside(&app, 0);
    let (lat1, lon1, g1) = elsewhere(&app, 0);
    let op = app.operator.clone();
    let a = report(&app, &op, json!({"category": "C0101", "description": "甲", "location": {"lat": lat0, "lon": lon0}, "source": "hotline"})).await;
    let b = report(&app, &op, json!({"category": "E0101", "description": "乙", "location": {"lat": lat1, "lon": lon1}, "source": "camera"})).await;
    let c = report(&app, &op, json!({"category": "E0101", "description": "丙", "address": "红旗路 12 号", "source": "hotline"})).await;
    let dd = report(&app, &op, json!({"category": "C0101", "description": "丁", "location": {"lat": lat1, "lon": lon1}, "source": "hotline"})).await;
    let dispatcher = app.user("b.disp", Role::Dispatcher, "430503").await;
    for id in [a, b] {
        version(&act(&app, &op, id, json!({"action": "file", "version": 1})).await);
    }
    version(&act(&app, &dispatcher, b, json!({"action": "dispatch", "version": 2, "department": "cgj"})).await);
    let web = Browser::of(&app, &dispatcher).await;
    let ids = |q: &str| board_of(&web, q.to_string());
    assert_eq!(ids("").await, vec![a, b, c, dd]);
    assert_eq!(ids("?state=filed").await, vec![a]);
    assert_eq!(ids("?state=reported").await, vec![c, dd]);
    assert_eq!(ids("?source=camera").await, vec![b]);
    assert_eq!(ids("?source=hotline&category=C0101").await, vec![a, dd]);
    assert_eq!(ids(&format!("?area={g0}")).await, vec![a]);
    assert_eq!(ids(&format!("?area={}", &g1[..9])).await, vec![b, dd]);
    assert_eq!(ids("?department=cgj").await, vec![b]);
    assert_eq!(ids("?department=sw").await, Vec::<i64>::new());
    // Warning colours: all green now; after two weeks every running step is red.
    assert_eq!(ids("?warning=green").await, vec![a, b, c, dd]);
    assert_eq!(ids("?warning=red").await, Vec::<i64>::new());
    // The form keeps its values, and the counts say what each filter would show.
    let r = web.get("/incidents?source=hotline&category=C0101").await;
    assert!(r.body.contains("<option value=\"hotline\" selected>") && r.body.contains("<option value=\"C0101\" selected>"), "the filter form keeps its values");
    assert!(r.body.contains("待立案 <b>1</b>") && r.body.contains("待派遣 <b>1</b>"), "state counts within the other filters");
    assert!(r.body.contains("href=\"/incidents?category=C0101&#38;source=hotline&#38;state=filed\""), "a count links to the board filtered by it: {}", r.body.split("facet-row").nth(1).unwrap_or(""));
    app.clock.advance(14 * 24 * 3600 * 1000);
    // (A new session: the old one ended with the time that passed.)
    let web = Browser::of(&app, &dispatcher).await;
    let ids = |q: &str| board_of(&web, q.to_string());
    assert_eq!(ids("?warning=red").await, vec![a, b, c, dd]);
    assert_eq!(ids("?warning=red&state=dispatched").await, vec![b]);
    let r = web.get("/incidents?state=dispatched").await;
    assert!(r.body.contains("红灯 <b>1</b>"), "colour counts within the other filters");
    // In English too.
    let en = app.send(Req::new(Method::GET, "/incidents").header("cookie", &format!("{}; lang=en", web.cookie))).await;
    assert!(en.body.contains("Dispatched <b>1</b>") && en.body.contains("Bulk dispatch") && !en.body.contains("⟦"), "{}", en.body);
    // A bad filter shows nothing rather than everything.
    let r = web.get("/incidents?warning=purple").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(board_ids(&r.body).is_empty());
    // Paging: the cursor continues where the page ended, newest first.
    let r = web.get("/incidents?limit=3").await;
    assert_eq!(board_ids(&r.body), vec![dd, c, b]);
    assert!(r.body.contains(&format!("href=\"/incidents?limit=3&#38;before={b}\"")), "an older link, keeping the page size");
    let r = web.get(&format!("/incidents?before={b}")).await;
    assert_eq!(board_ids(&r.body), vec![a]);
    // Dispatchers get the bulk controls; operators do not.
    assert!(web.get("/incidents").await.body.contains("name=\"pick\""));
    let opweb = Browser::of(&app, &op).await;
    let r = opweb.get("/incidents").await;
    assert!(!r.body.contains("name=\"pick\"") && !r.body.contains("bulkbar"), "no bulk controls for an operator");
}

async fn bulk_dispatch_reports_each_incident(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let op = app.operator.clone();
    let lead = app.user("bd.lead", Role::ShiftLead, "430503").await;
    let dispatcher = app.user("bd.disp", Role::Dispatcher, "430503").await;
    let mut ids = Vec::new();
    for k in 0..3 {
        let (lat, lon, _) = inside(&app, k);
        let id = report(&app, &op, json!({"category": "E0101", "description": format!("垃圾{k}"), "location": {"lat": lat, "lon": lon}})).await;
        version(&act(&app, &op, id, json!({"action": "file", "version": 1})).await);
        ids.push(id);
    }
    let web = Browser::of(&app, &dispatcher).await;
    let board = web.get("/incidents?state=filed").await;
    for id in &ids {
        assert!(board.body.contains(&format!("value=\"{id}:2\"")), "a checkbox at the version shown");
    }
    // While the board is open, a shift lead supervises the third: its version moves on.
    version(&act(&app, &lead, ids[2], json!({"action": "supervise", "version": 2})).await);
    // A reported (unfiled) incident ticked by a forged form: the wrong state.
    let (lat, lon, _) = inside(&app, 3);
    let unfiled = report(&app, &op, json!({"category": "E0101", "description": "未立案", "location": {"lat": lat, "lon": lon}})).await;
    let picks: Vec<String> = ids.iter().map(|i| format!("{i}:2")).chain([format!("{unfiled}:1")]).collect();
    let mut fields: Vec<(&str, &str)> = picks.iter().map(|p| ("pick", p.as_str())).collect();
    fields.extend([("department", "cgj"), ("grid", ""), ("note", "批量派遣")]);
    let r = web.post("/incidents/dispatch", &fields).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("2</span> / 4"), "two of four: {}", r.body);
    assert!(r.body.contains("刚被他人处理过"), "the stale one is named: {}", r.body);
    assert!(r.body.contains("dispatch is not allowed when the incident is reported"), "the wrong state is named");
    for (id, state, v) in [(ids[0], "dispatched", 3), (ids[1], "dispatched", 3), (ids[2], "filed", 3), (unfiled, "reported", 1)] {
        let i = read(&app, id).await;
        assert_eq!((i["state"].as_str(), i["version"].as_i64()), (Some(state), Some(v)), "#{id}");
    }
    let i = read(&app, ids[0]).await;
    assert_eq!(i["department"], "cgj");
    assert!(i["timeline"].as_array().expect("timeline").iter().any(|t| t["action"] == "dispatch" && t["note"] == "批量派遣"));
    // To a grid: the third, now at its new version.
    let (_, _, g) = inside(&app, 5);
    let pick = format!("{}:3", ids[2]);
    let r = web.post("/incidents/dispatch", &[("pick", &pick), ("department", ""), ("grid", &g)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(read(&app, ids[2]).await["assignee_area"], g.as_str());
    // Both targets or neither: refused before anything is tried.
    let r = web.post("/incidents/dispatch", &[("pick", "1:1"), ("department", "cgj"), ("grid", &g)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // An operator may not dispatch: each is refused, nothing changes.
    let (lat, lon, _) = inside(&app, 4);
    let fourth = report(&app, &op, json!({"category": "E0101", "description": "四", "location": {"lat": lat, "lon": lon}})).await;
    version(&act(&app, &op, fourth, json!({"action": "file", "version": 1})).await);
    let opweb = Browser::of(&app, &op).await;
    let pick = format!("{fourth}:2");
    let r = opweb.post("/incidents/dispatch", &[("pick", &pick), ("department", "cgj")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(read(&app, fourth).await["state"], "filed");
}

async fn bulk_dispatch_out_of_scope_is_denied(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let op = app.operator.clone();
    let (lat, lon, g) = inside(&app, 0);
    let (_, _, other) = elsewhere(&app, 0);
    let id = report(&app, &op, json!({"category": "E0101", "description": "他街道的事件", "location": {"lat": lat, "lon": lon}})).await;
    version(&act(&app, &op, id, json!({"action": "file", "version": 1})).await);
    // A dispatcher of another street.
    let street = &other[..9];
    assert_ne!(street, &g[..9]);
    let stranger = app.user("oos.disp", Role::Dispatcher, street).await;
    let web = Browser::of(&app, &stranger).await;
    assert!(!board_ids(&web.get("/incidents").await.body).contains(&id), "not on their board");
    let denied_before = app.audit_count("oos.disp", "denied").await;
    let pick = format!("{id}:2");
    let r = web.post("/incidents/dispatch", &[("pick", &pick), ("department", "cgj")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(!r.body.contains("他街道的事件"));
    assert_eq!(app.audit_count("oos.disp", "denied").await, denied_before + 1, "the attempt is audited");
    let i = read(&app, id).await;
    assert_eq!((i["state"].as_str(), i["version"].as_i64(), i["department"].as_str()), (Some("filed"), Some(2), None), "nothing changed");
}

async fn operators_take_hotline_calls(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let op = app.operator.clone();
    let web = Browser::of(&app, &op).await;
    let form = web.get("/incidents/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"source\" value=\"hotline\" checked") && form.body.contains("data-pick=\"intake\""));
    let (lat, lon, g) = inside(&app, 2);
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let fields = [
        ("source", "hotline"),
        ("category", "C0101"),
        ("description", "来电反映井盖缺失"),
        ("address", "红旗路口"),
        ("lat", lat_s.as_str()),
        ("lon", lon_s.as_str()),
        ("phone", "13812345678"),
        ("key", "call-1"),
    ];
    let r = web.post("/incidents/new", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let saved = r.location().expect("redirect").to_string();
    let id: i64 = saved.rsplit('=').next().and_then(|v| v.parse().ok()).expect("saved id");
    let i = read(&app, id).await;
    assert_eq!((i["source"].as_str(), i["grid"].as_str(), i["reporter_phone_masked"].as_str()), (Some("hotline"), Some(g.as_str()), Some("138****5678")));
    let receipt = i["receipt"].as_str().expect("receipt");
    let page = web.get(&saved).await;
    assert!(page.body.contains(receipt) && page.body.contains(&format!("href=\"/incidents/{id}\"")), "the receipt to read out, and a link");
    assert!(!page.body.contains("13812345678"), "the full phone is not shown");
    // A double click saves nothing twice.
    let again = web.post("/incidents/new", &fields).await;
    assert_eq!(again.location(), Some(saved.as_str()));
    // A camera sighting.
    let r = web.post("/incidents/new", &[("source", "camera"), ("category", "E0101"), ("description", "监控发现垃圾堆放"), ("address", "城南市场"), ("key", "cam-1")]).await;
    let cam: i64 = r.location().and_then(|l| l.rsplit('=').next()?.parse().ok()).expect("saved");
    assert_eq!(read(&app, cam).await["source"], "camera");
    // Bad input is shown on the form, which keeps what was typed.
    let r = web.post("/incidents/new", &[("source", "hotline"), ("category", "C0101"), ("description", "留下的描述"), ("phone", "12345"), ("address", "某处")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("11 位手机号码") && r.body.contains("留下的描述"));
    // Only the command centre takes calls.
    let worker = app.user("in.worker", Role::GridWorker, &g).await;
    let wweb = Browser::of(&app, &worker).await;
    assert_eq!(wweb.get("/incidents/new").await.status, StatusCode::NOT_FOUND);
    assert_eq!(wweb.post("/incidents/new", &fields).await.status, StatusCode::NOT_FOUND);
}

async fn address_only_reports_are_placed_in_their_grid(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let op = app.operator.clone();
    let web = Browser::of(&app, &op).await;
    let r = web.post("/incidents/new", &[("source", "hotline"), ("category", "E0101"), ("description", "只有地址的来电"), ("address", "敏州路 88 号"), ("key", "addr-1")]).await;
    let id: i64 = r.location().and_then(|l| l.rsplit('=').next()?.parse().ok()).expect("saved");
    let i = read(&app, id).await;
    assert_eq!((i["grid"].as_str(), i["area"].as_str(), i["level"].as_str()), (None, Some("430503"), Some("district")), "unplaced: the district's");
    let (lat, lon, g) = inside(&app, 4);
    let worker = app.user("pl.worker", Role::GridWorker, &g).await;
    let wweb = Browser::of(&app, &worker).await;
    assert_eq!(wweb.get(&format!("/incidents/{id}")).await.status, StatusCode::NOT_FOUND, "not the grid's yet");
    let page = web.get(&format!("/incidents/{id}")).await;
    assert!(page.body.contains(&format!("action=\"/incidents/{id}/place\"")) && page.body.contains("data-pick=\"place\""));
    assert!(web.get("/incidents").await.body.contains("待定位"));
    // A stale version is refused; a point outside every grid is refused.
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let r = web.post(&format!("/incidents/{id}/place"), &[("version", "7"), ("lat", &lat_s), ("lon", &lon_s)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = web.post(&format!("/incidents/{id}/place"), &[("version", "1"), ("lat", "10.0"), ("lon", "10.0")]).await;
    assert!(r.body.contains("不在任何基础网格内"));
    let r = web.post(&format!("/incidents/{id}/place"), &[("version", "1"), ("lat", &lat_s), ("lon", &lon_s), ("note", "来电人补充了门牌")]).await;
    assert_eq!(r.location(), Some(format!("/incidents/{id}").as_str()), "{}", r.body);
    let i = read(&app, id).await;
    assert_eq!((i["grid"].as_str(), i["area"].as_str(), i["level"].as_str(), i["version"].as_i64()), (Some(g.as_str()), Some(g.as_str()), Some("grid"), Some(2)));
    assert!((i["lat"].as_f64().expect("lat") - lat).abs() < 1e-9);
    let step = i["timeline"].as_array().expect("timeline").iter().find(|t| t["action"] == "place").cloned().expect("a place step");
    assert_eq!((step["from_state"].as_str(), step["to_state"].as_str()), (Some("reported"), Some("reported")));
    assert!(step["note"].as_str().is_some_and(|n| n.contains(&g) && n.contains("来电人补充了门牌")), "{step}");
    assert_eq!(step["actor_name"], "operator1");
    let q = store::audit::AuditQuery { action: Some("incident.place".into()), limit: 10, ..Default::default() };
    assert_eq!(app.db.audit_rows_for_tests(&q).await.expect("audit").len(), 1, "placing is audited");
    // Now the grid's worker sees it; it is no longer the district's to place.
    assert_eq!(wweb.get(&format!("/incidents/{id}")).await.status, StatusCode::OK);
    assert!(!web.get(&format!("/incidents/{id}")).await.body.contains("/place\""));
    let r = web.post(&format!("/incidents/{id}/place"), &[("version", "2"), ("lat", &lat_s), ("lon", &lon_s)]).await;
    assert!(r.body.contains("already"), "placed once only");

    // The same through the API.
    let c = report(&app, &op, json!({"category": "E0101", "description": "API 来电", "address": "宝庆路"})).await;
    let place = |who: &TestUser, body: Value| app.send(Req::new(Method::POST, &format!("/api/v1/incidents/{c}/place")).token(&who.token).json(body));
    place(&op, json!({"version": 3, "location": {"lat": lat, "lon": lon}})).await.assert_problem(StatusCode::CONFLICT, "stale_version");
    place(&op, json!({"version": 1, "location": {"lat": 10.0, "lon": 10.0}})).await.assert_problem(StatusCode::BAD_REQUEST, "point_unassigned");
    let (_, _, other) = elsewhere(&app, 4);
    let street_op = app.user("pl.streetop", Role::Operator, &other[..9]).await;
    let denied = app.audit_count("pl.streetop", "denied").await;
    place(&street_op, json!({"version": 1, "location": {"lat": lat, "lon": lon}})).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(app.audit_count("pl.streetop", "denied").await, denied + 1);
    // In scope but not the command centre's: refused, nothing changes.
    let staff = app.user("pl.staff", Role::StreetStaff, "430503").await;
    place(&staff, json!({"version": 1, "location": {"lat": lat, "lon": lon}})).await.assert_problem(StatusCode::CONFLICT, "transition_forbidden");
    assert_eq!(read(&app, c).await["version"], 1);
    let r = place(&op, json!({"version": 1, "location": {"lat": lat, "lon": lon}, "note": "地图核实"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.json()["grid"].as_str(), r.json()["version"].as_i64()), (Some(g.as_str()), Some(2)));
    place(&op, json!({"version": 2, "location": {"lat": lat, "lon": lon}})).await.assert_problem(StatusCode::BAD_REQUEST, "already_placed");
}

async fn the_inbox_lists_dispatches_and_marks_them_read(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let op = app.operator.clone();
    let (lat, lon, g) = inside(&app, 1);
    let dispatcher = app.user("ib.disp", Role::Dispatcher, "430503").await;
    let worker = app.user("ib.worker", Role::GridWorker, &g).await;
    let id = report(&app, &op, json!({"category": "E0101", "description": "派给网格", "location": {"lat": lat, "lon": lon}})).await;
    version(&act(&app, &op, id, json!({"action": "file", "version": 1})).await);
    version(&act(&app, &dispatcher, id, json!({"action": "dispatch", "version": 2, "grid": g})).await);
    let web = Browser::of(&app, &worker).await;
    let page = web.get("/inbox").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("href=\"/incidents/{id}\"")) && page.body.contains("新派遣"), "{}", page.body);
    assert_eq!(web.get("/inbox/count").await.body.trim(), "1");
    let nid = app.send(Req::new(Method::GET, "/api/v1/inbox").token(&worker.token)).await.json()[0]["id"].as_i64().expect("notification");
    assert!(page.body.contains(&format!("hx-post=\"/inbox/{nid}/read\"")));
    // Another grid's worker has none of it, and cannot mark it.
    let (_, _, other) = elsewhere(&app, 1);
    let stranger = app.user("ib.stranger", Role::GridWorker, &other).await;
    let sweb = Browser::of(&app, &stranger).await;
    assert!(!sweb.get("/inbox").await.body.contains(&format!("/incidents/{id}\"")));
    assert_eq!(sweb.post(&format!("/inbox/{nid}/read"), &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(web.get("/inbox/count").await.body.trim(), "1");
    // htmx gets the item back, read.
    let mut all = vec![("csrf", web.csrf.as_str())];
    all.push(("x", "y"));
    let r = app.send(Req::new(Method::POST, &format!("/inbox/{nid}/read")).header("cookie", &web.cookie).header("hx-request", "true").form(&all)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains(&format!("id=\"note-{nid}\"")) && r.body.contains("已读") && !r.body.contains("<html"));
    assert_eq!(web.get("/inbox/count").await.body.trim(), "");
    assert!(!web.get("/inbox?unread=1").await.body.contains(&format!("/incidents/{id}\"")));
    // Without htmx, the form goes back to the inbox.
    let r = web.post(&format!("/inbox/{nid}/read"), &[]).await;
    assert_eq!(r.location(), Some("/inbox"));
    // Without the CSRF field, nothing.
    let r = app.send(Req::new(Method::POST, &format!("/inbox/{nid}/read")).header("cookie", &web.cookie).form(&[("x", "y")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// A minimal JPEG.
fn jpeg() -> Vec<u8> {
    vec![0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02, 0xFF, 0xDA, 0x00, 0x02, 0x11, 0x22, 0x33, 0xFF, 0xD9]
}

async fn the_mobile_list_shows_a_worker_their_grid_only(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let op = app.operator.clone();
    let (lat, lon, g) = inside(&app, 3);
    let (olat, olon, other) = elsewhere(&app, 3);
    let dispatcher = app.user("mb.disp", Role::Dispatcher, "430503").await;
    let worker = app.user("mb.worker", Role::GridWorker, &g).await;
    let stranger = app.user("mb.stranger", Role::GridWorker, &other).await;
    // Mine: dispatched to my grid, accepted and handled: a check is due.
    let mine = report(&app, &op, json!({"category": "C0101", "description": "本网格待核查", "location": {"lat": lat, "lon": lon}})).await;
    version(&act(&app, &op, mine, json!({"action": "file", "version": 1})).await);
    version(&act(&app, &dispatcher, mine, json!({"action": "dispatch", "version": 2, "grid": g})).await);
    let web = Browser::of(&app, &worker).await;
    let m = web.get("/m").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.body.contains("本网格待核查") && m.body.contains("value=\"accept\""), "dispatched to my grid: accept");
    // Accept and handle from the phone.
    let r = web.post(&format!("/m/incidents/{mine}/act"), &[("action", "accept"), ("version", "3")]).await;
    assert_eq!(r.location(), Some(format!("/m?done={mine}").as_str()), "{}", r.body);
    let r = web.post(&format!("/m/incidents/{mine}/act"), &[("action", "handle"), ("version", "4"), ("note", "已补盖")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Theirs: handled in another grid.
    let theirs = report(&app, &op, json!({"category": "C0101", "description": "别的网格待核查", "location": {"lat": olat, "lon": olon}})).await;
    version(&act(&app, &op, theirs, json!({"action": "file", "version": 1})).await);
    version(&act(&app, &dispatcher, theirs, json!({"action": "dispatch", "version": 2, "grid": other})).await);
    version(&act(&app, &stranger, theirs, json!({"action": "accept", "version": 3})).await);
    version(&act(&app, &stranger, theirs, json!({"action": "handle", "version": 4})).await);
    let m = web.get("/m").await;
    let card = format!("id=\"m-{mine}\"");
    assert!(m.body.contains(&card) && m.body.contains("value=\"verify\"") && m.body.contains("value=\"fail_verification\""), "{}", m.body);
    assert!(!m.body.contains("别的网格待核查") && !m.body.contains(&format!("id=\"m-{theirs}\"")));
    // A stale tap is told so; the right one verifies.
    let r = web.post(&format!("/m/incidents/{mine}/act"), &[("action", "verify"), ("version", "4")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = web.post(&format!("/m/incidents/{mine}/act"), &[("action", "verify"), ("version", "5")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(read(&app, mine).await["state"], "verified");
    // Another grid's incident cannot be acted on from the phone either.
    assert_eq!(web.post(&format!("/m/incidents/{theirs}/act"), &[("action", "verify"), ("version", "5")]).await.status, StatusCode::NOT_FOUND);

    // A report from the phone: GPS point, photo, handled on the spot (the category allows it).
    let form = web.get("/m/report").await;
    assert!(form.body.contains("enctype=\"multipart/form-data\"") && form.body.contains("data-on-spot=\"1\""));
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let fields = [("category", "E0101"), ("description", "路边垃圾，已清理"), ("lat", lat_s.as_str()), ("lon", lon_s.as_str()), ("on_spot", "1"), ("key", "m-1")];
    let r = web.post_multipart("/m/report", &fields, Some(("photo", jpeg()))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let id: i64 = r.location().and_then(|l| l.rsplit('=').next()?.parse().ok()).expect("reported");
    let i = read(&app, id).await;
    assert_eq!((i["source"].as_str(), i["grid"].as_str(), i["state"].as_str()), (Some("grid_patrol"), Some(g.as_str()), Some("handled")));
    assert_eq!(i["photos"].as_array().map(Vec::len), Some(1));
    let m = web.get(&format!("/m?reported={id}")).await;
    assert!(m.body.contains(i["receipt"].as_str().expect("receipt")));
    // Without the CSRF field a multipart form is refused like any other.
    let r = app
        .send(Req::new(Method::POST, "/m/report").header("cookie", &web.cookie).header("content-type", "multipart/form-data; boundary=x").body_bytes(b"--x\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nx\r\n--x--\r\n".to_vec()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A category that may not be handled on the spot stays reported; a non-image is refused.
    let r = web.post_multipart("/m/report", &[("category", "C0101"), ("description", "井盖"), ("lat", &lat_s), ("lon", &lon_s), ("on_spot", "1")], None).await;
    let id2: i64 = r.location().and_then(|l| l.rsplit('=').next()?.parse().ok()).expect("reported");
    assert_eq!(read(&app, id2).await["state"], "reported");
    let r = web.post_multipart("/m/report", &[("category", "C0101"), ("description", "不是图片"), ("lat", &lat_s), ("lon", &lon_s)], Some(("photo", b"<html>".to_vec()))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A photo added later from the list, through the web form.
    let r = web.post_multipart(&format!("/incidents/{id2}/photos"), &[("back", "m")], Some(("photo", jpeg()))).await;
    assert_eq!(r.location(), Some("/m"), "{}", r.body);
    assert_eq!(read(&app, id2).await["photos"].as_array().map(Vec::len), Some(1));
    let sweb = Browser::of(&app, &stranger).await;
    assert_eq!(sweb.post_multipart(&format!("/incidents/{id2}/photos"), &[], Some(("photo", jpeg()))).await.status, StatusCode::NOT_FOUND);
}

async fn html_in_a_description_is_escaped_everywhere(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let evil = "<script>alert('x')</script><img src=x onerror=alert(1)>";
    let op = app.operator.clone();
    let (lat, lon, g) = inside(&app, 6);
    let dispatcher = app.user("xss.disp", Role::Dispatcher, "430503").await;
    let worker = app.user("xss.worker", Role::GridWorker, &g).await;
    let opweb = Browser::of(&app, &op).await;
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let r = opweb.post("/incidents/new", &[("source", "hotline"), ("category", "E0101"), ("description", evil), ("address", evil), ("lat", &lat_s), ("lon", &lon_s)]).await;
    let id: i64 = r.location().and_then(|l| l.rsplit('=').next()?.parse().ok()).expect("saved");
    let r = opweb.post("/incidents/new", &[("source", "hotline"), ("category", "nope"), ("description", evil), ("address", evil)]).await;
    let mut pages = vec![r];
    version(&act(&app, &op, id, json!({"action": "file", "version": 1, "note": evil})).await);
    let web = Browser::of(&app, &dispatcher).await;
    pages.push(web.get("/incidents").await);
    pages.push(web.get(&format!("/incidents/{id}")).await);
    pages.push(web.post("/incidents/dispatch", &[("pick", &format!("{id}:2")), ("grid", &g), ("note", evil)]).await);
    pages.push(opweb.get(&format!("/incidents/new?saved={id}")).await);
    let wweb = Browser::of(&app, &worker).await;
    pages.push(wweb.get("/m").await);
    pages.push(wweb.get("/inbox").await);
    pages.push(wweb.post_multipart("/m/report", &[("category", "E0101"), ("description", evil), ("lat", "x"), ("lon", "y")], None).await);
    pages.push(app.send(Req::new(Method::GET, &format!("/incidents/{id}")).header("cookie", &wweb.cookie)).await);
    for (k, p) in pages.iter().enumerate() {
        assert!(!p.body.contains("<script>alert") && !p.body.contains("<img src=x"), "page {k} shows raw HTML: {}", p.body);
    }
    assert!(pages[2].body.contains("&lt;script&gt;alert(") || pages[2].body.contains("&#60;script&#62;"), "shown, escaped: {}", pages[2].body);
    assert!(pages[5].body.contains(&format!("id=\"m-{id}\"")), "the grid worker's list has it");
}

/// The store's new desk methods, called directly: two placings of one report at once (one
/// wins, the other is told it is stale), and the counts by state and colour.
async fn the_desk_places_once_and_counts_by_state_and_colour(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let op = app.operator.clone();
    let lead = app.user("dk.lead", Role::ShiftLead, "430503").await;
    let id = report(&app, &op, json!({"category": "E0101", "description": "只有地址", "address": "宝庆中路"})).await;
    let (lat, lon, g) = inside(&app, 9);
    let grid = domain::AreaCode::parse(&g).expect("grid");
    let p1 = app.db.token_principal(&op.token).await.expect("read").expect("operator");
    let p2 = app.db.token_principal(&lead.token).await.expect("read").expect("lead");
    let (s1, s2) = (app.db.scoped(&p1, store::audit::Actor::of(&p1, "t1", "local")), app.db.scoped(&p2, store::audit::Actor::of(&p2, "t2", "local")));
    let (d1, d2) = (s1.incidents().expect("desk"), s2.incidents().expect("desk"));
    let (a, b) = tokio::join!(d1.place(id, 1, (lat, lon), &grid, "甲"), d2.place(id, 1, (lat, lon), &grid, "乙"));
    let (won, lost) = if a.is_ok() { (a, b) } else { (b, a) };
    let placed = won.expect("one placing wins");
    assert_eq!((placed.version, placed.grid.as_ref(), placed.area.as_str(), placed.loop_.level), (2, Some(&grid), g.as_str(), domain::Level::Grid));
    assert!(matches!(lost, Err(store::incidents::TransitionFailure::Stale { .. })), "the other is stale");
    let (_, timeline) = d1.get(id).await.expect("get");
    assert_eq!(timeline.iter().filter(|t| t.action == "place").count(), 1, "one place step");
    // Counts: by state (in the loop's order) and by colour, within the scope and the filter.
    let (lat2, lon2, _) = inside(&app, 10);
    let other = report(&app, &op, json!({"category": "C0101", "description": "乙", "location": {"lat": lat2, "lon": lon2}})).await;
    version(&act(&app, &op, other, json!({"action": "file", "version": 1})).await);
    let all = store::incidents::IncidentFilter { limit: 50, ..Default::default() };
    let c = d1.counts(&all).await.expect("counts");
    assert_eq!(c.by_state, vec![(domain::incident::State::Reported, 1), (domain::incident::State::Filed, 1)]);
    assert_eq!((c.green, c.yellow, c.red), (2, 0, 0));
    let only_c = store::incidents::IncidentFilter { category: Some("C0101".into()), state: Some(domain::incident::State::Reported), ..all.clone() };
    let c = d1.counts(&only_c).await.expect("counts");
    assert_eq!(c.by_state, vec![(domain::incident::State::Filed, 1)], "the state facet ignores the state filter, keeps the rest");
    assert_eq!((c.green, c.yellow, c.red), (0, 0, 0), "the colour facet keeps the state filter");
    app.clock.advance(30 * 24 * 3600 * 1000);
    let c = d1.counts(&all).await.expect("counts");
    assert_eq!((c.green, c.yellow, c.red), (0, 0, 2));
    // A grid worker elsewhere counts nothing of it.
    let (_, _, far) = elsewhere(&app, 9);
    let w = app.user("dk.worker", Role::GridWorker, &far).await;
    let pw = app.db.token_principal(&w.token).await.expect("read").expect("worker");
    let sw = app.db.scoped(&pw, store::audit::Actor::of(&pw, "t3", "local"));
    let c = sw.incidents().expect("desk").counts(&all).await.expect("counts");
    assert!(c.by_state.iter().all(|(_, n)| *n == 0) || c.by_state.is_empty());
}

/// An address-only report binds no point; the reports with a point that follow it, on
/// whichever pooled connection, still store theirs (a NULL float once made PostgreSQL
/// refuse the next point on the same connection).
async fn address_only_reports_do_not_break_the_next_report_with_a_point(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let op = app.operator.clone();
    let (lat, lon, g) = inside(&app, 11);
    for k in 0..6 {
        report(&app, &op, json!({"category": "E0101", "description": format!("地址{k}"), "address": "红旗路"})).await;
        let id = report(&app, &op, json!({"category": "E0101", "description": format!("定位{k}"), "location": {"lat": lat, "lon": lon}})).await;
        let i = read(&app, id).await;
        assert_eq!((i["grid"].as_str(), i["lat"].as_f64()), (Some(g.as_str()), Some(lat)));
    }
}
