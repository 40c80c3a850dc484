//! The register's API: persons, houses, households and organisations; moves, history and
//! the audited unmask; exports to .csv and .xlsx, masked, scoped and escaped.

use axum::http::{Method, StatusCode};
use domain::register::citizen_id::id_check_character;
use domain::{Level, Role};
use serde_json::{Value, json};
use store::Dialect;

use crate::{Req, TestApp, TestUser, on_both_backends};

on_both_backends!(register_api_round_trip, register_exports_are_masked_scoped_and_escaped,);

/// A valid ID number of the demo district born on `ymd` with sequence `seq`.
pub fn cid(ymd: &str, seq: u32) -> String {
    let body = format!("430503{ymd}{seq:03}");
    format!("{body}{}", id_check_character(&body).expect("digits"))
}

/// A valid unified social credit code (a company of the district) numbered `n`.
pub fn credit(n: u32) -> String {
    use domain::register::credit_code::{credit_check_character, organisation_check_character};
    let org8 = format!("{n:08}");
    let body = format!("91430503{org8}{}", organisation_check_character(&org8).expect("org"));
    format!("{body}{}", credit_check_character(&body).expect("body"))
}

/// Two sibling grids.
pub fn grids(app: &TestApp) -> (String, String) {
    let grids: Vec<&domain::AreaRecord> = app.demo.areas.iter().filter(|a| a.level == Level::Grid).collect();
    let a = grids[0];
    let b = grids.iter().find(|g| g.parent == a.parent && g.code != a.code).expect("a sibling grid");
    (a.code.to_string(), b.code.to_string())
}

async fn post(app: &TestApp, who: &TestUser, uri: &str, body: Value) -> crate::Reply {
    app.send(Req::new(Method::POST, uri).token(&who.token).json(body)).await
}

async fn get(app: &TestApp, who: &TestUser, uri: &str) -> crate::Reply {
    app.send(Req::new(Method::GET, uri).token(&who.token)).await
}

/// A house and a person in it, made by `who`; returns (house id, person id).
pub async fn house_and_person(app: &TestApp, who: &TestUser, grid: &str, name: &str, id: &str) -> (i64, i64) {
    let h = post(app, who, "/api/v1/houses", json!({"address": format!("{name}路 1 号"), "area": grid})).await;
    assert_eq!(h.status, StatusCode::CREATED, "{}", h.body);
    let house = h.json()["id"].as_i64().expect("house id");
    let p = post(app, who, "/api/v1/persons", json!({"citizen_id": id, "name": name, "phone": "13812345678", "house_id": house})).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    (house, p.json()["id"].as_i64().expect("person id"))
}

async fn register_api_round_trip(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let (grid_a, _) = grids(&app);
    let w = app.user("w.a", Role::GridWorker, &grid_a).await;
    let (house, father) = house_and_person(&app, &w, &grid_a, "张建国", &cid("19700101", 11)).await;
    // Masked on the way out; gender and birth date from the number.
    let p = get(&app, &w, &format!("/api/v1/persons/{father}")).await.json();
    assert_eq!(p["person"]["citizen_id_masked"], "430503********0113".replace("0113", &cid("19700101", 11)[14..]));
    assert_eq!((p["person"]["phone_masked"].as_str(), p["person"]["gender"].as_str()), (Some("138****5678"), Some("male")));
    assert_eq!(p["person"]["birth_date"], "1970-01-01");
    assert_eq!(p["house"]["id"], house);
    assert_eq!(p["links"], json!([{"house_id": house, "kind": "lives"}]));
    assert!(p["household"].is_null());
    assert!(!p.to_string().contains(&cid("19700101", 11)), "the full number never leaves unasked");

    // Refused input: 422 naming the field, nothing stored.
    let before = get(&app, &w, "/api/v1/persons?limit=500").await.json()["items"].as_array().expect("items").len();
    let mut bad = cid("19720305", 22);
    bad.replace_range(17.., if bad.ends_with('1') { "2" } else { "1" });
    for (body, field) in [
        (json!({"citizen_id": bad, "name": "李秀英", "house_id": house}), "citizen_id"),
        (json!({"citizen_id": "430503199902300022", "name": "李秀英", "house_id": house}), "citizen_id"),
        (json!({"citizen_id": cid("19720305", 22), "name": "  ", "house_id": house}), "name"),
        (json!({"citizen_id": cid("19720305", 22), "name": "李秀英", "phone": "12345", "house_id": house}), "phone"),
        (json!({"citizen_id": cid("19720305", 22), "name": "李秀英", "population_type": "alien", "house_id": house}), "population_type"),
        (json!({"citizen_id": cid("19720305", 22), "name": "李秀英"}), "house_id"),
    ] {
        let r = post(&app, &w, "/api/v1/persons", body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.json()["errors"][0]["field"], field, "{}", r.body);
    }
    post(&app, &w, "/api/v1/persons", json!({"citizen_id": cid("19700101", 11), "name": "重复", "house_id": house})).await.assert_problem(StatusCode::CONFLICT, "duplicate_citizen_id");
    assert_eq!(get(&app, &w, "/api/v1/persons?limit=500").await.json()["items"].as_array().expect("items").len(), before);

    // A household, found from the person; a wife added, typed the way sheets say it.
    let mother = post(&app, &w, "/api/v1/persons", json!({"citizen_id": cid("19720305", 22), "name": "李秀英", "house_id": house, "population_type": "流动", "tags": ["残疾人"]})).await;
    assert_eq!(mother.status, StatusCode::CREATED, "{}", mother.body);
    let mother = mother.json();
    assert_eq!((mother["population_type"].as_str(), &mother["tags"]), (Some("floating"), &json!(["disability"])));
    let mother = mother["id"].as_i64().expect("id");
    let hh = post(&app, &w, "/api/v1/households", json!({"house_id": house, "members": [{"person_id": father, "relation": "户主"}]})).await;
    assert_eq!(hh.status, StatusCode::CREATED, "{}", hh.body);
    let hh = hh.json();
    let r = app
        .send(Req::new(Method::PUT, &format!("/api/v1/households/{}/members", hh["id"])).token(&w.token).json(json!({"version": hh["version"], "members": [
            {"person_id": father, "relation": "head"}, {"person_id": mother, "relation": "妻"}]})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let p = get(&app, &w, &format!("/api/v1/persons/{mother}")).await.json();
    assert_eq!(p["household"]["members"][1]["relation"], "spouse");
    let two_heads = app
        .send(Req::new(Method::PUT, &format!("/api/v1/households/{}/members", hh["id"])).token(&w.token).json(json!({"version": 2, "members": [
            {"person_id": father, "relation": "head"}, {"person_id": mother, "relation": "head"}]})))
        .await;
    assert_eq!(two_heads.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(two_heads.json()["errors"][0]["field"], "members");

    // An update at a stale version is 409; at the current one it lands.
    let edit = |version: i64| json!({"version": version, "citizen_id": cid("19700101", 11), "name": "张建军", "phone": "13900001111"});
    let ok = app.send(Req::new(Method::PUT, &format!("/api/v1/persons/{father}")).token(&w.token).json(edit(1))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.json()["version"], 2);
    app.send(Req::new(Method::PUT, &format!("/api/v1/persons/{father}")).token(&w.token).json(edit(1))).await.assert_problem(StatusCode::CONFLICT, "stale_version");

    // A move: out of one house, into another, as one operation; the history shows it.
    let h2 = post(&app, &w, "/api/v1/houses", json!({"address": "红旗路 2 号", "area": grid_a, "lat": 27.2, "lon": 111.4, "house_use": "mixed"})).await.json();
    let moved = post(&app, &w, &format!("/api/v1/persons/{father}/move"), json!({"to_house": h2["id"], "version": 2})).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.json()["house_id"], h2["id"]);
    post(&app, &w, &format!("/api/v1/persons/{father}/move"), json!({"to_house": house, "version": 2})).await.assert_problem(StatusCode::CONFLICT, "stale_version");
    let history = get(&app, &w, &format!("/api/v1/persons/{father}/history")).await.json();
    let fields: Vec<(String, String)> = history.as_array().expect("rows").iter().map(|r| (r["action"].as_str().unwrap_or("").into(), r["field"].as_str().unwrap_or("").into())).collect();
    assert!(fields.contains(&("person.move".into(), "house_id".into())), "{fields:?}");
    assert!(fields.contains(&("person.update".into(), "name".into())), "{fields:?}");
    let phone_row = history.as_array().expect("rows").iter().find(|r| r["field"] == "phone" && r["action"] == "person.update").expect("phone change");
    assert_eq!(phone_row["new_value"], "139****1111", "the history keeps phones masked");
    let house_hist = get(&app, &w, &format!("/api/v1/houses/{house}/history")).await.json();
    assert!(house_hist.as_array().expect("rows").iter().any(|r| r["field"] == "resident" && r["old_value"].as_str().and_then(|v| v.parse::<i64>().ok()) == Some(father)));
    let residents = get(&app, &w, &format!("/api/v1/houses/{}/persons", h2["id"])).await.json();
    assert_eq!(residents.as_array().map(Vec::len), Some(1));

    // Unmask: a reason is required (422), then the full value comes back and is audited.
    let r = post(&app, &w, &format!("/api/v1/persons/{father}/unmask"), json!({"field": "citizen_id", "reason": " "})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["errors"][0]["field"], "reason");
    let before = app.audit_count(&w.username, "ok").await;
    let r = post(&app, &w, &format!("/api/v1/persons/{father}/unmask"), json!({"field": "phone", "reason": "上门核实"})).await;
    assert_eq!(r.json()["value"], "13900001111");
    assert_eq!(app.audit_count(&w.username, "ok").await, before + 1);
    // A role without the register (a volunteer of the same grid) is denied as not found.
    let v = app.user("v.a", Role::Volunteer, &grid_a).await;
    post(&app, &v, &format!("/api/v1/persons/{father}/unmask"), json!({"field": "phone", "reason": "看看"})).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    // The command centre reads but does not write.
    let op = &app.operator;
    assert_eq!(get(&app, op, &format!("/api/v1/persons/{father}")).await.status, StatusCode::OK);
    post(&app, op, "/api/v1/houses", json!({"address": "某路", "area": grid_a})).await.assert_problem(StatusCode::NOT_FOUND, "not_found");

    // Organisations: a valid credit code, masked phone, 409 on a second one with the same code.
    let org = json!({"name": "红旗便利店", "credit_code": credit(1), "house_id": h2["id"], "legal_rep": "王芳", "phone": "13700001234"});
    let o = post(&app, &w, "/api/v1/organisations", org.clone()).await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.body);
    let o = o.json();
    assert_eq!((o["phone_masked"].as_str(), o["area"].as_str()), (Some("137****1234"), Some(grid_a.as_str())));
    post(&app, &w, "/api/v1/organisations", org).await.assert_problem(StatusCode::CONFLICT, "duplicate_credit_code");
    let bad = post(&app, &w, "/api/v1/organisations", json!({"name": "某公司", "credit_code": format!("{}{}", &credit(2)[..17], if credit(2).ends_with('0') { '1' } else { '0' }), "area": grid_a})).await;
    assert_eq!(bad.json()["errors"][0]["field"], "credit_code", "{}", bad.body);
    let upd = app
        .send(Req::new(Method::PUT, &format!("/api/v1/organisations/{}", o["id"])).token(&w.token).json(json!({"version": 1, "name": "红旗超市", "credit_code": credit(1), "area": grid_a})))
        .await;
    assert_eq!(upd.json()["name"], "红旗超市", "{}", upd.body);
    let oh = get(&app, &w, &format!("/api/v1/organisations/{}/history", o["id"])).await.json();
    assert!(oh.as_array().expect("rows").iter().any(|r| r["field"] == "name" && r["new_value"] == "红旗超市"));

    // Lists filter and page.
    let l = get(&app, &w, "/api/v1/persons?name=李&gender=female&age_min=40&age_max=60").await.json();
    assert_eq!(l["items"].as_array().map(|v| v.iter().map(|p| p["id"].as_i64()).collect::<Vec<_>>()), Some(vec![Some(mother)]));
    let page1 = get(&app, &w, "/api/v1/persons?limit=1").await.json();
    assert_eq!(page1["next_after"], father);
    let page2 = get(&app, &w, &format!("/api/v1/persons?limit=1&after={father}")).await.json();
    assert_eq!(page2["items"][0]["id"], mother);
    assert_eq!(get(&app, &w, "/api/v1/houses?q=红旗路").await.json()["items"].as_array().map(Vec::len), Some(1));
    app.send(Req::new(Method::GET, "/api/v1/persons?age_min=old").token(&w.token)).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_query");
}

fn csv_lines(body: &str) -> Vec<Vec<String>> {
    body.trim_start_matches('\u{feff}').lines().map(|l| l.split(',').map(str::to_string).collect()).collect()
}

async fn register_exports_are_masked_scoped_and_escaped(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let (grid_a, grid_b) = grids(&app);
    let wa = app.user("w.a", Role::GridWorker, &grid_a).await;
    let wb = app.user("w.b", Role::GridWorker, &grid_b).await;
    house_and_person(&app, &wa, &grid_a, "=HYPERLINK(\"x\")", &cid("19800101", 11)).await;
    house_and_person(&app, &wa, &grid_a, "王芳", &cid("19900202", 22)).await;
    house_and_person(&app, &wb, &grid_b, "乙网格人", &cid("19850303", 33)).await;

    let r = get(&app, &wa, "/api/v1/persons/export?format=csv").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.content_type().starts_with("text/csv"));
    assert!(r.body.starts_with('\u{feff}'), "a byte-order mark for Excel");
    let lines = csv_lines(&r.body);
    assert_eq!(lines[0], ["姓名", "身份证号", "性别", "出生日期", "民族", "联系电话", "现住址", "人口类型", "所属网格", "备注"]);
    // Each header is one the import reads back.
    for h in &lines[0] {
        assert!(domain::register::header_field::<domain::register::PersonField>(h).is_some(), "{h} is an import alias");
    }
    assert_eq!(lines.len(), 3, "grid A's two people, no one from grid B: {}", r.body);
    assert!(!r.body.contains("乙网格人"));
    assert_eq!(r.headers.get("x-row-count").and_then(|v| v.to_str().ok()), Some("2"));
    assert!(r.body.contains("\"'=HYPERLINK(\"\"x\"\")\""), "a formula is written as text: {}", r.body);
    assert!(r.body.contains("138****5678") && !r.body.contains("13812345678"), "phones masked");
    assert!(!r.body.contains(&cid("19900202", 22)) && r.body.contains("430503********"), "ID numbers masked");
    // Filters apply; an area outside scope is denied as not found.
    let only = csv_lines(&get(&app, &wa, "/api/v1/persons/export?format=csv&name=王").await.body);
    assert_eq!(only.len(), 2);
    assert_eq!(only[1][0], "王芳");
    let before = app.audit_count(&wa.username, "denied").await;
    get(&app, &wa, &format!("/api/v1/persons/export?format=csv&area={grid_b}")).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(app.audit_count(&wa.username, "denied").await, before + 1);
    // The export is audited with its filter and count.
    let q = store::audit::AuditQuery { actor: Some(wa.username.clone()), action: Some("register.export".into()), limit: 10, ..Default::default() };
    let rows = app.db.audit_rows_for_tests(&q).await.expect("audit");
    assert!(rows.iter().any(|r| r.entry.detail.contains("persons csv, 1 rows") && r.entry.detail.contains("name=王")), "{:?}", rows.iter().map(|r| &r.entry.detail).collect::<Vec<_>>());

    // .xlsx opens and says the same.
    let r = app.send(Req::new(Method::GET, "/api/v1/persons/export?format=xlsx").token(&wa.token)).await;
    assert_eq!(r.status, StatusCode::OK);
    let bytes = r.bytes.clone();
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("an .xlsx");
    let sheet = book.worksheet_range_at(0).expect("a sheet").expect("readable");
    let rows: Vec<Vec<String>> = sheet.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    assert_eq!(rows[0][0], "姓名");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1][0], "'=HYPERLINK(\"x\")");
    assert!(rows.iter().all(|r| r[1] == "身份证号" || r[1].contains("********")));

    // Houses, households and organisations export too, each scoped.
    for (uri, header) in [("/api/v1/houses/export?format=csv", "地址"), ("/api/v1/households/export?format=csv", "户编号"), ("/api/v1/organisations/export?format=csv", "单位名称")] {
        let r = get(&app, &wb, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        let lines = csv_lines(&r.body);
        assert_eq!(lines[0][0], header);
        if uri.starts_with("/api/v1/houses") {
            assert_eq!(lines.len(), 2, "grid B's one house");
        }
    }
    get(&app, &wa, "/api/v1/persons/export?format=pdf").await.assert_problem(StatusCode::BAD_REQUEST, "invalid_format");
}
