//! Open311 GeoReport v2: the services are the catalogue's, residents report without an
//! account, and a receipt shows a request's status without personal data.

use axum::http::{Method, StatusCode};
use domain::{AreaCode, Role};
use serde_json::{Value, json};
use store::Dialect;
use store::audit::Actor;

use crate::incidents::with_catalogue;
use crate::{Reply, Req, TestApp, TestUser, on_both_backends};

on_both_backends!(
    services_are_the_catalogue_second_level,
    a_report_lands_in_its_grid_and_its_receipt_shows_the_loop,
    bad_reports_are_refused_and_change_nothing,
    reports_share_the_web_form_limit_per_client,
    receipt_lookups_are_limited_per_client,
);

/// The middle of the k-th demo grid, its code and its name.
fn inside(app: &TestApp, k: usize) -> (f64, f64, AreaCode, String) {
    let (lat, lon, code) = crate::incidents::inside(app, k);
    let grid = app.demo.areas.iter().find(|a| a.code.as_str() == code).expect("grid");
    (lat, lon, grid.code.clone(), grid.name.clone())
}

async fn post(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Reply {
    app.send(Req::new(Method::POST, path).form(fields)).await
}

/// The incidents staff see (the district operator sees them all).
async fn incidents(app: &TestApp) -> Vec<Value> {
    let r = app.get("/api/v1/incidents?limit=500").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["items"].as_array().expect("items").clone()
}

/// The spec's error list: one or more `{code, description}`, the first code the status.
fn assert_errors(r: &Reply, status: StatusCode) -> Vec<Value> {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.content_type().starts_with("application/json"), "{}", r.content_type());
    let list = r.json().as_array().cloned().unwrap_or_else(|| panic!("an error list: {}", r.body));
    assert!(!list.is_empty());
    for e in &list {
        assert!(e["code"].as_u64().is_some(), "{e}");
        assert!(e["description"].as_str().is_some_and(|d| !d.is_empty()), "{e}");
    }
    assert_eq!(list[0]["code"].as_u64(), Some(u64::from(status.as_u16())), "{}", r.body);
    list
}

async fn services_are_the_catalogue_second_level(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let cats = domain::catalogue::demo_categories();
    let r = app.send(Req::new(Method::GET, "/open311/v2/services.json")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.content_type(), "application/json; charset=utf-8");
    let list = r.json().as_array().expect("a list").clone();
    let second: Vec<_> = cats.iter().filter(|c| c.parent.is_some()).collect();
    assert_eq!(list.len(), second.len());
    for (s, c) in list.iter().zip(&second) {
        let top = cats.iter().find(|t| Some(&t.code) == c.parent.as_ref()).expect("parent");
        assert_eq!(s["service_code"], c.code.as_str());
        assert_eq!(s["service_name"], c.name.as_str());
        assert_eq!(s["group"], top.name.as_str());
        assert_eq!((s["type"].as_str(), s["metadata"].as_bool()), (Some("realtime"), Some(false)));
        assert!(s["description"].as_str().is_some_and(|d| d.contains(c.name.as_str()) && d.contains(c.kind.name_zh())), "{s}");
    }
    assert!(!list.iter().any(|s| s["service_code"] == "C01"), "top-level categories are groups, not services");
    // The same list in XML.
    let x = app.send(Req::new(Method::GET, "/open311/v2/services.xml")).await;
    assert_eq!((x.status, x.content_type()), (StatusCode::OK, "text/xml; charset=utf-8"));
    assert!(x.body.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<services><service>"), "{}", x.body);
    assert!(x.body.contains("<service_code>C0101</service_code>") && x.body.contains("<service_name>上水井盖</service_name>"));
    assert_eq!(x.body.matches("<service>").count(), second.len());

    // A definition: no extra attributes. Unknown and top-level codes are not services.
    let def = app.send(Req::new(Method::GET, "/open311/v2/services/C0101.json")).await;
    assert_eq!(def.status, StatusCode::OK);
    assert_eq!(def.json(), json!({"service_code": "C0101", "attributes": []}));
    for missing in ["/open311/v2/services/X9999.json", "/open311/v2/services/C01.json", "/open311/v2/services/C0101.html"] {
        assert_errors(&app.send(Req::new(Method::GET, missing)).await, StatusCode::NOT_FOUND);
    }
    let x = app.send(Req::new(Method::GET, "/open311/v2/services/X9999.xml")).await;
    assert_eq!((x.status, x.content_type()), (StatusCode::NOT_FOUND, "text/xml; charset=utf-8"));
    assert!(x.body.contains("<errors><error><code>404</code><description>"), "{}", x.body);

    // Discovery names the spec and both formats; an unknown Open311 path is the spec's 404.
    let disc = app.send(Req::new(Method::GET, "/open311/v2/discovery.json").header("host", "grid.example.cn")).await.json();
    let ep = &disc["endpoints"][0];
    assert_eq!((ep["specification"].as_str(), ep["url"].as_str()), (Some("http://wiki.open311.org/GeoReport_v2"), Some("http://grid.example.cn/open311/v2")));
    assert_eq!(ep["formats"], json!(["application/json", "text/xml"]));
    let x = app.send(Req::new(Method::GET, "/open311/v2/discovery.xml")).await;
    assert!(x.body.contains("<formats><format>application/json</format><format>text/xml</format></formats>"), "{}", x.body);
    assert_errors(&app.send(Req::new(Method::GET, "/open311/v2/nothing.json")).await, StatusCode::NOT_FOUND);
}

async fn act(app: &TestApp, who: &TestUser, id: i64, body: Value) -> i64 {
    let r = app.send(Req::new(Method::POST, &format!("/api/v1/incidents/{id}/transitions")).token(&who.token).json(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["version"].as_i64().expect("version")
}

async fn request_view(app: &TestApp, receipt: &str) -> Value {
    let r = app.send(Req::new(Method::GET, &format!("/open311/v2/requests/{receipt}.json"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list = r.json().as_array().expect("a list").clone();
    assert_eq!(list.len(), 1);
    list[0].clone()
}

async fn a_report_lands_in_its_grid_and_its_receipt_shows_the_loop(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, grid, grid_name) = inside(&app, 3);
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let r = post(&app, "/open311/v2/requests.json", &[
        ("api_key", "any-client"),
        ("jurisdiction_id", "430503"),
        ("service_code", "E0101"),
        ("lat", &lat_s),
        ("long", &lon_s),
        ("address_string", "红旗路 12 号 3 栋门口"),
        ("description", "小区门口垃圾三天没人清运"),
        ("phone", "+86 139 1234 5678"),
        ("email", "zhang.san@example.cn"),
        ("first_name", "三"),
        ("last_name", "张"),
        ("device_id", "device-42"),
        ("media_url", "http://photos.example.cn/1.jpg"),
        ("attribute[WHERE]", "x"),
    ])
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let created = r.json();
    assert_eq!(created.as_array().map(Vec::len), Some(1), "{created}");
    let receipt = created[0]["service_request_id"].as_str().expect("receipt").to_string();
    assert!(created[0]["account_id"].is_null());
    let notice = created[0]["service_notice"].as_str().expect("notice");
    assert!(notice.contains(&receipt) && notice.contains("media_url"), "{notice}");

    // Staff see a resident's report in the point's grid, the phone masked, no name or email.
    let all = incidents(&app).await;
    assert_eq!(all.len(), 1);
    let inc = &all[0];
    assert_eq!(inc["receipt"], receipt.as_str(), "the receipt is the service_request_id, not the id");
    assert_ne!(receipt, inc["id"].to_string());
    assert_eq!((inc["source"].as_str(), inc["grid"].as_str(), inc["category"].as_str()), (Some("resident"), Some(grid.as_str()), Some("E0101")));
    assert_eq!(inc["reporter_phone_masked"], "139****5678");
    assert_eq!(inc["description"], "小区门口垃圾三天没人清运");
    let id = inc["id"].as_i64().expect("id");
    let detail = app.get(&format!("/api/v1/incidents/{id}")).await;
    for never in ["zhang.san", "张", "device-42", "photos.example.cn"] {
        assert!(!detail.body.contains(never), "{never} was stored: {}", detail.body);
    }
    assert_eq!(detail.json()["timeline"][0]["actor_name"], "open311");

    // The public view: state, category, times in Shanghai, the grid; nothing personal.
    let v = request_view(&app, &receipt.to_lowercase()).await;
    assert_eq!(v["service_request_id"], receipt.as_str());
    assert_eq!((v["status"].as_str(), v["service_code"].as_str(), v["service_name"].as_str()), (Some("open"), Some("E0101"), Some("暴露垃圾")));
    assert!(v["status_notes"].as_str().is_some_and(|n| n.starts_with("待立案")), "{v}");
    assert_eq!(v["requested_datetime"], "2026-11-25T17:24:58+08:00");
    assert!(v["agency_responsible"].is_null());
    assert!(v["address"].as_str().is_some_and(|a| a.ends_with(grid_name.as_str()) && a.starts_with("大祥区")), "{v}");
    let text = app.send(Req::new(Method::GET, &format!("/open311/v2/requests/{receipt}.json"))).await.body;
    let xml = app.send(Req::new(Method::GET, &format!("/open311/v2/requests/{receipt}.xml"))).await.body;
    for body in [&text, &xml] {
        for private in ["13912345678", "139****5678", "5678", "三天没人清运", "红旗路", &lat_s, &lon_s, "zhang.san"] {
            assert!(!body.contains(private), "the public view shows {private}: {body}");
        }
    }
    assert!(xml.contains("<service_requests><request>") && xml.contains(&format!("<service_request_id>{receipt}</service_request_id>")), "{xml}");
    assert!(xml.contains("<status>open</status>") && xml.contains("<agency_responsible/>"), "{xml}");

    // Dispatched to a department: still open, the department named.
    let operator = app.user("o311.operator", Role::Operator, "430503").await;
    let dispatcher = app.user("o311.dispatcher", Role::Dispatcher, "430503").await;
    let worker = app.user("o311.worker", Role::GridWorker, grid.as_str()).await;
    let handler = app.user("o311.handler", Role::DepartmentHandler, "430503").await;
    let district = AreaCode::parse("430503").expect("code");
    app.db.update_account(&Actor::cli("test"), handler.id, Role::DepartmentHandler, &district, Some("cgj")).await.expect("department");
    let v1 = act(&app, &operator, id, json!({"action": "file", "version": 1})).await;
    app.clock.advance(3_600_000);
    let v2 = act(&app, &dispatcher, id, json!({"action": "dispatch", "version": v1, "department": "cgj"})).await;
    let v = request_view(&app, &receipt).await;
    assert_eq!((v["status"].as_str(), v["agency_responsible"].as_str()), (Some("open"), Some("区城市管理和综合执法局")));
    assert!(v["status_notes"].as_str().is_some_and(|n| n.starts_with("待接收")), "{v}");
    assert_eq!(v["updated_datetime"], "2026-11-25T18:24:58+08:00");
    // Handled, verified and closed: closed.
    let v3 = act(&app, &handler, id, json!({"action": "accept", "version": v2})).await;
    let v4 = act(&app, &handler, id, json!({"action": "handle", "version": v3, "note": "已清运"})).await;
    let v5 = act(&app, &worker, id, json!({"action": "verify", "version": v4})).await;
    assert_eq!(request_view(&app, &receipt).await["status"], "open", "verified but not yet closed");
    act(&app, &dispatcher, id, json!({"action": "close", "version": v5})).await;
    let v = request_view(&app, &receipt).await;
    assert_eq!(v["status"], "closed");
    assert!(v["status_notes"].as_str().is_some_and(|n| n.starts_with("已结案")), "{v}");

    // A second report, rejected (不予立案): closed too. Both by one query; unknown codes left out.
    let r = post(&app, "/open311/v2/requests.xml", &[("service_code", "C0101"), ("address_string", "建设路口"), ("description", "井盖响")]).await;
    assert_eq!((r.status, r.content_type()), (StatusCode::OK, "text/xml; charset=utf-8"), "{}", r.body);
    let second = r.body.split("<service_request_id>").nth(1).and_then(|s| s.split('<').next()).expect("an id in the XML").to_string();
    let second_id = incidents(&app).await.iter().find(|i| i["receipt"] == second.as_str()).and_then(|i| i["id"].as_i64()).expect("stored");
    act(&app, &operator, second_id, json!({"action": "reject", "version": 1, "note": "非本辖区"})).await;
    let q = app.send(Req::new(Method::GET, &format!("/open311/v2/requests.json?service_request_id={receipt},20261125-NOSUCH,{second}"))).await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.body);
    let list = q.json();
    let got: Vec<(&str, &str)> = list.as_array().expect("list").iter().map(|v| (v["service_request_id"].as_str().unwrap_or(""), v["status"].as_str().unwrap_or(""))).collect();
    assert_eq!(got, vec![(receipt.as_str(), "closed"), (second.as_str(), "closed")]);
    assert!(!q.body.contains("非本辖区"), "staff notes are not public");
    // An address-only report belongs to the district until placed.
    assert_eq!(list[1]["address"], "大祥区");

    // Unknown receipts are 404; there is no public list of everyone's reports.
    assert_errors(&app.send(Req::new(Method::GET, "/open311/v2/requests/20261125-NOSUCH.json")).await, StatusCode::NOT_FOUND);
    assert_errors(&app.send(Req::new(Method::GET, &format!("/open311/v2/requests/{id}.json"))).await, StatusCode::NOT_FOUND);
    assert_errors(&app.send(Req::new(Method::GET, "/open311/v2/requests.json")).await, StatusCode::BAD_REQUEST);
    assert_errors(&app.send(Req::new(Method::GET, "/open311/v2/requests.json?status=open")).await, StatusCode::BAD_REQUEST);
}

/// Form fields, in order.
type Fields = Vec<(String, String)>;

async fn bad_reports_are_refused_and_change_nothing(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, _, _) = inside(&app, 4);
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let good = |extra: &[(&'static str, &'static str)], drop: &str| -> Fields {
        let mut f: Fields = vec![
            ("service_code".into(), "E0101".into()),
            ("lat".into(), lat_s.clone()),
            ("long".into(), lon_s.clone()),
            ("description".into(), "垃圾堆积".into()),
        ];
        f.retain(|(k, _)| k != drop);
        for (k, v) in extra {
            f.retain(|(x, _)| x != k);
            f.push(((*k).into(), (*v).into()));
        }
        f
    };
    let send = |f: Fields| {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let req = Req::new(Method::POST, "/open311/v2/requests.json").form(&pairs);
        app.send(req)
    };
    let long_text = "长".repeat(4001);
    let cases: Vec<(Fields, StatusCode, &str)> = vec![
        (good(&[], "description"), StatusCode::BAD_REQUEST, "description"),
        (good(&[("description", "   ")], ""), StatusCode::BAD_REQUEST, "description"),
        (good(&[("lat", "abc")], ""), StatusCode::BAD_REQUEST, "lat"),
        (good(&[("lat", "95")], ""), StatusCode::BAD_REQUEST, "lat"),
        (good(&[("long", "NaN")], ""), StatusCode::BAD_REQUEST, "long"),
        (good(&[], "long"), StatusCode::BAD_REQUEST, "long"),
        (good(&[], "service_code"), StatusCode::BAD_REQUEST, "service_code"),
        (good(&[("service_code", "X9999")], ""), StatusCode::NOT_FOUND, "X9999"),
        (good(&[("service_code", "C01")], ""), StatusCode::NOT_FOUND, "C01"),
        (good(&[("phone", "12345")], ""), StatusCode::BAD_REQUEST, "phone"),
        (good(&[("address_id", "A-77")], "lat").into_iter().filter(|(k, _)| k != "long").collect(), StatusCode::BAD_REQUEST, "address_string"),
    ];
    let before = incidents(&app).await.len();
    for (fields, status, names) in cases {
        let shown = format!("{fields:?}");
        let r = send(fields).await;
        let errors = assert_errors(&r, status);
        assert!(errors[0]["description"].as_str().is_some_and(|d| d.contains(names)), "{shown}: {}", r.body);
    }
    let mut too_long = good(&[], "description");
    too_long.push(("description".into(), long_text));
    assert_errors(&send(too_long).await, StatusCode::BAD_REQUEST);
    // Every problem is listed at once, 400 before 404.
    let r = send(vec![("service_code".into(), "X9999".into()), ("lat".into(), "x".into()), ("long".into(), "1".into())]).await;
    let errors = assert_errors(&r, StatusCode::BAD_REQUEST);
    assert_eq!(errors.len(), 3, "{}", r.body);
    assert_eq!(errors[2]["code"], 404);
    // A JSON body is not the spec's form.
    let r = app.send(Req::new(Method::POST, "/open311/v2/requests.json").json(json!({"service_code": "E0101", "description": "x", "address_string": "y"}))).await;
    assert_errors(&r, StatusCode::BAD_REQUEST);
    assert_eq!(incidents(&app).await.len(), before, "a refused report stores nothing");
    // Refusals do not use up the client's reports.
    for _ in 0..server::ui_public::REPORTS_PER_WINDOW {
        assert_eq!(send(good(&[], "")).await.status, StatusCode::OK);
    }
    assert_eq!(incidents(&app).await.len(), before + server::ui_public::REPORTS_PER_WINDOW);
}

async fn reports_share_the_web_form_limit_per_client(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, _, _) = inside(&app, 5);
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let fields = [("service_code", "E0101"), ("lat", lat_s.as_str()), ("long", lon_s.as_str()), ("description", "垃圾堆积")];
    // Two by the web form, three by Open311: five in ten minutes.
    let web = [("category", "E0101"), ("lat", lat_s.as_str()), ("lon", lon_s.as_str()), ("description", "垃圾堆积")];
    for _ in 0..2 {
        assert_eq!(post(&app, "/report", &web).await.status, StatusCode::SEE_OTHER);
    }
    for _ in 0..3 {
        assert_eq!(post(&app, "/open311/v2/requests.json", &fields).await.status, StatusCode::OK);
    }
    let r = post(&app, "/open311/v2/requests.json", &fields).await;
    let errors = assert_errors(&r, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(errors[0]["code"], 429);
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("600"));
    assert_eq!(incidents(&app).await.len(), 5, "the sixth report is not stored");
    app.clock.advance(10 * 60_000 + 1);
    assert_eq!(post(&app, "/open311/v2/requests.json", &fields).await.status, StatusCode::OK);
    assert_eq!(incidents(&app).await.len(), 6);
}

/// Guessing receipt codes is slow: every way of looking one up shares a per-client limit
/// of 60 a minute, and each code of a list counts.
async fn receipt_lookups_are_limited_per_client(d: Dialect) {
    let Some(app) = with_catalogue(d).await else { return };
    let (lat, lon, _, _) = inside(&app, 6);
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let fields = [("service_code", "E0101"), ("lat", lat_s.as_str()), ("long", lon_s.as_str()), ("description", "垃圾堆积")];
    let created = post(&app, "/open311/v2/requests.json", &fields).await;
    let receipt = created.json()[0]["service_request_id"].as_str().expect("receipt").to_string();
    // 20 guesses in one list, twice: 40; then the status page and the API: 60 in all.
    let guesses: Vec<String> = (0..19).map(|k| format!("20261125-ZZZZ{:02}", k)).chain([receipt.clone()]).collect();
    let list = format!("/open311/v2/requests.json?service_request_id={}", guesses.join(","));
    for _ in 0..2 {
        let r = app.send(Req::new(Method::GET, &list)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json().as_array().map(Vec::len), Some(1), "only the real receipt is found");
    }
    for _ in 0..10 {
        assert_eq!(app.send(Req::new(Method::GET, &format!("/r/{receipt}"))).await.status, StatusCode::OK);
        assert_eq!(app.send(Req::new(Method::GET, &format!("/api/v1/public/receipts/{receipt}"))).await.status, StatusCode::OK);
    }
    // The 61st lookup is refused, whichever way it comes.
    assert_errors(&app.send(Req::new(Method::GET, &format!("/open311/v2/requests/{receipt}.json"))).await, StatusCode::TOO_MANY_REQUESTS);
    app.send(Req::new(Method::GET, &format!("/api/v1/public/receipts/{receipt}"))).await.assert_problem(StatusCode::TOO_MANY_REQUESTS, "too_many_lookups");
    assert_eq!(app.send(Req::new(Method::GET, &format!("/r/{receipt}"))).await.status, StatusCode::TOO_MANY_REQUESTS);
    // A minute later the resident can look again.
    app.clock.advance(60_000 + 1);
    assert_eq!(app.send(Req::new(Method::GET, &format!("/open311/v2/requests/{receipt}.json"))).await.status, StatusCode::OK);
}
