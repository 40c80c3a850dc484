//! The register's import over HTTP: the API's jobs (202, progress, result, report .xlsx),
//! who sees a job, the upload limit, and the upload page with its polling progress.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use domain::{Level, Role};
use serde_json::Value;
use store::Dialect;
use tower::ServiceExt;

use crate::{Req, TestApp, TestUser, on_both_backends};

on_both_backends!(api_imports_run_as_jobs_with_reports, the_upload_page_starts_a_job_and_polls_it);

/// A valid ID number (GB 11643).
pub fn citizen_id(body17: &str) -> String {
    let check = domain::register::citizen_id::id_check_character(body17).expect("17 digits");
    format!("{body17}{check}")
}

/// A persons sheet: one good row, one with a wrong check character and a formula-like
/// name, one duplicate of the first.
pub fn persons_csv() -> String {
    let good = citizen_id("43050319880808123");
    let mut bad = citizen_id("43050319880808124");
    let last = bad.pop().expect("char");
    bad.push(if last == '0' { '1' } else { '0' });
    format!("姓名,身份证号码,联系电话\n李四,{good},13712345678\n\"=HYPERLINK(\"\"x\"\")\",{bad},\n李四,{good},13712345678\n")
}

/// Poll a job until it ends.
pub async fn finished(app: &TestApp, who: &TestUser, id: &str) -> Value {
    for _ in 0..400 {
        let r = app.send(Req::new(Method::GET, &format!("/api/v1/register/imports/{id}")).token(&who.token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v = r.json();
        if v["state"] == "done" || v["state"] == "failed" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the import {id} did not finish");
}

async fn start(app: &TestApp, who: &TestUser, query: &str, body: &[u8]) -> crate::Reply {
    app.send(Req::new(Method::POST, &format!("/api/v1/register/imports?{query}")).token(&who.token).body_bytes(body.to_vec())).await
}

async fn api_imports_run_as_jobs_with_reports(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let grid = app.first(Level::Grid).code.to_string();
    let worker = app.user("imp.worker", Role::GridWorker, &grid).await;
    let csv = persons_csv();

    // All or nothing: 202 with the job; the result names the bad row; nothing stored.
    let r = start(&app, &worker, &format!("kind=persons&grid={grid}&name=people.csv"), csv.as_bytes()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(r.location(), Some(format!("/api/v1/register/imports/{id}").as_str()));
    let v = finished(&app, &worker, &id).await;
    assert_eq!(v["state"], "done", "{v}");
    let res = &v["result"];
    assert_eq!((res["committed"].as_bool(), res["rows_read"].as_u64(), res["rows_with_errors"].as_u64(), res["imported"].as_u64()), (Some(false), Some(3), Some(1), Some(0)));
    let bad = res["rows"].as_array().expect("rows").iter().find(|x| x["error"] == true).expect("a bad row");
    assert_eq!(bad["row"], 3);
    let f = bad["findings"].as_array().expect("findings").iter().find(|f| f["severity"] == "error").expect("error");
    assert_eq!((f["column"].as_str(), f["code"].as_str()), (Some("身份证号码"), Some("id_check_character")));
    assert_eq!(v["file_name"], "people.csv");

    // The report: the bad row's cells (ID masked, formula escaped) and 错误原因.
    let r = app.send(Req::new(Method::GET, &format!("/api/v1/register/imports/{id}/report.xlsx")).token(&worker.token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type().starts_with("application/vnd.openxmlformats"));
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(r.bytes.clone())).expect("xlsx");
    let sheet = book.sheet_names()[0].clone();
    let rows: Vec<Vec<String>> = book.worksheet_range(&sheet).expect("sheet").rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    assert_eq!(rows[0], vec!["行号", "姓名", "身份证号码", "联系电话", "错误原因"]);
    assert_eq!(rows[1][1], "'=HYPERLINK(\"x\")");
    assert!(rows[1][2].contains("********"), "{:?}", rows[1]);
    assert!(rows[1][4].starts_with("身份证号码："), "{:?}", rows[1]);

    // Partial: the good row, once; the person is in the register (masked), history and all.
    let r = start(&app, &worker, &format!("kind=persons&grid={grid}&partial=true"), csv.as_bytes()).await;
    let id2 = r.json()["id"].as_str().expect("id").to_string();
    let v = finished(&app, &worker, &id2).await;
    assert_eq!((v["result"]["committed"].as_bool(), v["result"]["created"].as_u64(), v["result"]["merged"].as_u64()), (Some(true), Some(1), Some(1)), "{v}");
    let who = domain::Principal {
        account_id: worker.id,
        username: worker.username.clone(),
        display_name: String::new(),
        role: Role::GridWorker,
        area: domain::AreaCode::parse(&grid).expect("grid"),
        department: None,
        credential: domain::Credential::Token(0),
        must_change_password: false,
    };
    let s = app.db.scoped(&who, store::audit::Actor::cli("test"));
    let people = s.register().expect("desk").persons(&store::register::RegisterFilter { limit: 10, ..Default::default() }).await.expect("list");
    assert_eq!(people.len(), 1);
    assert_eq!((people[0].name.as_str(), people[0].phone_masked.as_deref()), ("李四", Some("137****5678")));

    // A job is its starter's alone: another account, even the same role in the same grid, gets 404.
    let other = app.user("imp.other", Role::GridWorker, &grid).await;
    let before = app.audit_count(&other.username, "denied").await;
    for path in [format!("/api/v1/register/imports/{id}"), format!("/api/v1/register/imports/{id}/report.xlsx"), "/api/v1/register/imports/nosuchjob".into()] {
        app.send(Req::new(Method::GET, &path).token(&other.token)).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(app.audit_count(&other.username, "denied").await - before, 3);

    // A file that is not a spreadsheet: the job fails with the reason; bad parameters are 400.
    let r = start(&app, &worker, &format!("kind=persons&grid={grid}"), b"%PDF-1.7 a report").await;
    let v = finished(&app, &worker, r.json()["id"].as_str().expect("id")).await;
    assert_eq!((v["state"].as_str(), v["error"]["code"].as_str()), (Some("failed"), Some("not_a_spreadsheet")), "{v}");
    start(&app, &worker, "kind=people", csv.as_bytes()).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_kind");
    start(&app, &worker, "kind=persons&grid=12", csv.as_bytes()).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_grid");

    // Over the configured size: 413, as a problem document.
    let small = server::ServerConfig { import_max_bytes: 1024, ..server::ServerConfig::default() };
    let state = server::AppState::new(app.db.clone(), small).await.expect("state");
    let router = server::router(state);
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/register/imports?kind=persons&grid={grid}"))
        .header("authorization", format!("Bearer {}", worker.token))
        .body(axum::body::Body::from(vec![b'a'; 200 * 1024]))
        .expect("request");
    let res = router.oneshot(req).await.expect("response");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
}

async fn the_upload_page_starts_a_job_and_polls_it(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let grid = app.first(Level::Grid).code.to_string();
    let worker = app.user("page.worker", Role::GridWorker, &grid).await;
    let session = app.db.create_session(worker.id, "test").await.expect("session");
    let cookie = format!("cg_session={}", session.id);
    let r = app.send(Req::new(Method::GET, "/register/import").header("cookie", &cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("登记数据导入") && r.body.contains(&format!("value=\"{grid}\"")), "{}", r.body);
    assert!(r.body.contains("href=\"/register/import\""), "the nav links the page for a role that writes the register");
    let en = app.send(Req::new(Method::GET, "/register/import").header("cookie", &format!("{cookie}; lang=en"))).await;
    assert!(en.body.contains("Register import"));
    // The command centre reads the register but does not import: no page, no link.
    let op_session = app.db.create_session(app.operator.id, "test").await.expect("session");
    let r = app.send(Req::new(Method::GET, "/register/import").header("cookie", &format!("cg_session={}", op_session.id))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let home = app.send(Req::new(Method::GET, "/").header("cookie", &format!("cg_session={}", op_session.id))).await;
    assert!(!home.body.contains("href=\"/register/import\""));

    // Upload as htmx does (multipart, the CSRF header): the browser is sent to the job.
    let boundary = "XyZimport";
    let csv = persons_csv();
    let mut body = Vec::new();
    for (k, v) in [("kind", "persons"), ("grid", grid.as_str()), ("partial", "1")] {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes());
    body.extend_from_slice(csv.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = app
        .send(
            Req::new(Method::POST, "/register/import")
                .header("cookie", &cookie)
                .header("hx-request", "true")
                .header("x-csrf-token", &session.csrf)
                .header("content-type", &format!("multipart/form-data; boundary={boundary}"))
                .body_bytes(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let to = r.headers.get("hx-redirect").and_then(|v| v.to_str().ok()).expect("HX-Redirect").to_string();
    assert!(to.starts_with("/register/import/"), "{to}");
    let id = to.trim_start_matches("/register/import/").to_string();
    // The page polls its progress block every second until the job ends.
    let mut done = None;
    for _ in 0..400 {
        let p = app.send(Req::new(Method::GET, &format!("{to}/progress")).header("cookie", &cookie)).await;
        assert_eq!(p.status, StatusCode::OK);
        if !p.body.contains("hx-trigger=\"every 1s\"") {
            done = Some(p.body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let done = done.expect("the job ended");
    assert!(done.contains("已导入") && done.contains("id_check_character"), "{done}");
    assert!(done.contains(&format!("/api/v1/register/imports/{id}/report.xlsx")));
    let page = app.send(Req::new(Method::GET, &to).header("cookie", &cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("people.csv"));
    // Someone else's job page is not found.
    let r = app.send(Req::new(Method::GET, &to).header("cookie", &format!("cg_session={}", op_session.id))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Without the CSRF token the upload is refused.
    let r = app
        .send(
            Req::new(Method::POST, "/register/import")
                .header("cookie", &cookie)
                .header("content-type", &format!("multipart/form-data; boundary={boundary}"))
                .body_bytes(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
