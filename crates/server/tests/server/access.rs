//! Accounts, scope, sessions, throttling, CSRF, masking and the audit trail.

use axum::http::{Method, StatusCode};
use domain::{Level, Role};
use serde_json::json;
use store::Dialect;

use crate::{PASSWORD, Req, TestApp, TestUser, on_both_backends};

on_both_backends!(
    a_grid_user_reaches_nothing_outside_its_scope,
    role_limits_hold,
    login_throttles_and_never_says_whether_a_name_exists,
    tokens_end_at_logout_and_at_password_change,
    sessions_expire_and_end_at_logout,
    csrf_is_required_for_cookie_borne_changes,
    temporary_passwords_must_be_changed_first,
    sensitive_values_are_masked_and_reads_need_a_reason,
    admins_manage_accounts_in_their_area,
);

/// Grid A, a grid B in the same community, and a grid in another street.
struct Places {
    grid_a: String,
    grid_b: String,
    other_street_grid: String,
}

fn places(app: &TestApp) -> Places {
    let grids: Vec<&domain::AreaRecord> = app.demo.areas.iter().filter(|a| a.level == Level::Grid).collect();
    let a = grids[0];
    let b = grids.iter().find(|g| g.parent == a.parent && g.code != a.code).expect("a sibling grid");
    let far = grids.iter().find(|g| g.code.as_str()[..9] != a.code.as_str()[..9]).expect("another street");
    Places { grid_a: a.code.to_string(), grid_b: b.code.to_string(), other_street_grid: far.code.to_string() }
}

/// A team member id in a grid.
async fn member_in(app: &TestApp, grid: &str) -> i64 {
    let v = app.get(&format!("/api/v1/areas/{grid}")).await.json();
    v["team"].as_array().and_then(|t| t.iter().find(|m| m["phone_masked"].is_string())).and_then(|m| m["id"].as_i64()).expect("a member with a phone")
}

async fn a_grid_user_reaches_nothing_outside_its_scope(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    // Accounts living outside grid A, whose ids a grid-A user walks.
    let outsiders = [
        app.user("b.worker", Role::GridWorker, &p.grid_b).await,
        app.user("far.worker", Role::GridWorker, &p.other_street_grid).await,
        app.user("far.admin", Role::Admin, &p.other_street_grid[..9]).await,
    ];
    let member_b = member_in(&app, &p.grid_b).await;
    let member_far = member_in(&app, &p.other_street_grid).await;
    // Incidents in grid B and in the other street.
    app.db
        .load_catalogue(&store::audit::Actor::cli("test"), &domain::catalogue::demo_departments(), &domain::catalogue::demo_categories(), &[])
        .await
        .expect("catalogue");
    let mut incidents = Vec::new();
    for grid in [&p.grid_b, &p.other_street_grid] {
        let r = app
            .send(Req::new(Method::POST, "/api/v1/incidents").token(&app.operator.token).json(json!({
                "category": "E0101", "description": "暴露垃圾", "address": "某路", "source": "hotline"
            })))
            .await;
        let id = r.json()["id"].as_i64().expect("id");
        // Place it in its grid (the district's centre would do so after a call).
        app.db.place_incident_for_tests(id, grid).await.expect("place");
        incidents.push(id);
    }
    // The register: a house, a person, a household and an organisation in grid B and in the
    // other street, made by their own grid workers.
    let mut register = Vec::new();
    for (n, grid) in [&p.grid_b, &p.other_street_grid].into_iter().enumerate() {
        let w = app.user(&format!("reg.{n}"), Role::GridWorker, grid).await;
        let (house, person) = crate::register::house_and_person(&app, &w, grid, "外网格人", &crate::register::cid("19800101", 11 + 2 * n as u32)).await;
        let hh = app
            .send(Req::new(Method::POST, "/api/v1/households").token(&w.token).json(json!({"house_id": house, "members": [{"person_id": person, "relation": "head"}]})))
            .await
            .json()["id"]
            .as_i64()
            .expect("household");
        let org = app
            .send(Req::new(Method::POST, "/api/v1/organisations").token(&w.token).json(json!({"name": "外网格店", "credit_code": crate::register::credit(10 + n as u32), "house_id": house})))
            .await
            .json()["id"]
            .as_i64()
            .expect("organisation");
        register.push((grid.clone(), house, person, hh, org));
    }
    // A register import that a grid-B worker started: its job is its starter's alone.
    let r = app
        .send(
            Req::new(Method::POST, &format!("/api/v1/register/imports?kind=persons&grid={}", p.grid_b))
                .token(&outsiders[0].token)
                .body_bytes(crate::register_import::persons_csv().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let job = r.json()["id"].as_str().expect("job id").to_string();
    crate::register_import::finished(&app, &outsiders[0], &job).await;
    for (k, role) in Role::ALL.into_iter().enumerate() {
        let me = app.user(&format!("a.{k}"), role, &p.grid_a).await;
        let mut attempts: Vec<Req> = Vec::new();
        for grid in [&p.grid_b, &p.other_street_grid] {
            attempts.push(Req::new(Method::PUT, &format!("/api/v1/areas/{grid}/team")).json(json!({"members": [{"role": "grid_leader", "name": "冒名"}]})));
        }
        for id in [member_b, member_far] {
            attempts.push(Req::new(Method::POST, "/api/v1/unmask").json(json!({"field": "team_member.phone", "id": id, "reason": "查看"})));
        }
        for o in &outsiders {
            let id = o.id;
            attempts.push(Req::new(Method::GET, &format!("/api/v1/accounts/{id}")));
            attempts.push(Req::new(Method::PATCH, &format!("/api/v1/accounts/{id}")).json(json!({"role": "admin", "area": "430503"})));
            attempts.push(Req::new(Method::POST, &format!("/api/v1/accounts/{id}/disable")));
            attempts.push(Req::new(Method::POST, &format!("/api/v1/accounts/{id}/password")).json(json!({"password": "another-pass-2026"})));
        }
        for id in &incidents {
            attempts.push(Req::new(Method::GET, &format!("/api/v1/incidents/{id}")));
            attempts.push(Req::new(Method::POST, &format!("/api/v1/incidents/{id}/transitions")).json(json!({"action": "void", "version": 1})));
        }
        // Every register route, on grid B's and the other street's records.
        for (grid, house, person, hh, org) in &register {
            let person_body = json!({"version": 1, "citizen_id": crate::register::cid("19800101", 11), "name": "冒名"});
            let house_body = json!({"version": 1, "address": "冒名路", "area": grid});
            let org_body = json!({"version": 1, "name": "冒名", "credit_code": crate::register::credit(99), "area": grid});
            attempts.extend([
                Req::new(Method::GET, &format!("/api/v1/persons?area={grid}")),
                Req::new(Method::GET, &format!("/api/v1/persons/export?format=csv&area={grid}")),
                Req::new(Method::POST, "/api/v1/persons").json(json!({"citizen_id": crate::register::cid("19900101", 55), "name": "冒名", "house_id": house})),
                Req::new(Method::GET, &format!("/api/v1/persons/{person}")),
                Req::new(Method::PUT, &format!("/api/v1/persons/{person}")).json(person_body),
                Req::new(Method::POST, &format!("/api/v1/persons/{person}/move")).json(json!({"to_house": house, "version": 1})),
                Req::new(Method::GET, &format!("/api/v1/persons/{person}/history")),
                Req::new(Method::POST, &format!("/api/v1/persons/{person}/unmask")).json(json!({"field": "citizen_id", "reason": "查看"})),
                Req::new(Method::GET, &format!("/api/v1/houses?area={grid}")),
                Req::new(Method::GET, &format!("/api/v1/houses/export?format=xlsx&area={grid}")),
                Req::new(Method::GET, &format!("/api/v1/houses/{house}")),
                Req::new(Method::PUT, &format!("/api/v1/houses/{house}")).json(house_body),
                Req::new(Method::GET, &format!("/api/v1/houses/{house}/persons")),
                Req::new(Method::GET, &format!("/api/v1/houses/{house}/history")),
                Req::new(Method::GET, &format!("/api/v1/households?area={grid}")),
                Req::new(Method::GET, &format!("/api/v1/households/export?format=csv&area={grid}")),
                Req::new(Method::POST, "/api/v1/households").json(json!({"house_id": house, "members": [{"person_id": person, "relation": "head"}]})),
                Req::new(Method::GET, &format!("/api/v1/households/{hh}")),
                Req::new(Method::PUT, &format!("/api/v1/households/{hh}/members")).json(json!({"version": 1, "members": [{"person_id": person, "relation": "head"}]})),
                Req::new(Method::GET, &format!("/api/v1/households/{hh}/history")),
                Req::new(Method::GET, &format!("/api/v1/organisations?area={grid}")),
                Req::new(Method::GET, &format!("/api/v1/organisations/export?format=csv&area={grid}")),
                Req::new(Method::POST, "/api/v1/organisations").json(json!({"name": "冒名", "credit_code": crate::register::credit(98), "house_id": house})),
                Req::new(Method::GET, &format!("/api/v1/organisations/{org}")),
                Req::new(Method::PUT, &format!("/api/v1/organisations/{org}")).json(org_body),
                Req::new(Method::GET, &format!("/api/v1/organisations/{org}/history")),
            ]);
        }
        attempts.push(Req::new(Method::GET, "/api/v1/persons/999999"));
        attempts.push(Req::new(Method::GET, &format!("/api/v1/register/imports/{job}")));
        attempts.push(Req::new(Method::GET, &format!("/api/v1/register/imports/{job}/report.xlsx")));
        // Importing into grid B: a role that does not write the register, or a grid out of scope.
        attempts.push(Req::new(Method::POST, &format!("/api/v1/register/imports?kind=persons&grid={}", p.grid_b)).body_bytes(b"x".to_vec()));
        attempts.push(Req::new(Method::PUT, "/api/v1/calendar/2026-12-31").json(json!({"kind": "holiday", "name": "冒名"})));
        // Ids that exist nowhere answer exactly the same.
        attempts.push(Req::new(Method::GET, "/api/v1/accounts/999999"));
        attempts.push(Req::new(Method::GET, "/api/v1/incidents/999999"));
        if role != Role::Auditor {
            attempts.push(Req::new(Method::GET, "/api/v1/audit"));
        }
        // The register's search: roles with no register desk get nothing (a scoped role's
        // search of another grid's people is checked in search.rs: it finds none).
        if !(store::register::register_writes(role) || matches!(role, Role::Operator | Role::Dispatcher | Role::ShiftLead)) {
            attempts.push(Req::new(Method::GET, "/api/v1/search?q=%E5%BC%A0%E4%B8%89"));
        }
        let n = attempts.len();
        let before = app.audit_count(&me.username, "denied").await;
        for a in attempts {
            let r = app.send(a.token(&me.token)).await;
            r.assert_problem(StatusCode::NOT_FOUND, "not_found");
        }
        assert_eq!(app.audit_count(&me.username, "denied").await - before, n, "{role}: every attempt left a denied row");
    }
    // Nothing changed: the outsiders are untouched and grid B's team is as generated.
    for o in &outsiders {
        let acc = app.db.account_by_id(o.id).await.expect("read").expect("account");
        assert!(acc.active && acc.role != Role::Admin || acc.username == "far.admin");
    }
    for (_, house, person, hh, org) in &register {
        let v = app.get(&format!("/api/v1/persons/{person}")).await.json();
        assert_eq!((v["person"]["name"].as_str(), v["person"]["version"].as_i64(), v["person"]["house_id"].as_i64()), (Some("外网格人"), Some(1), Some(*house)));
        assert_eq!(app.get(&format!("/api/v1/households/{hh}")).await.json()["members"].as_array().map(Vec::len), Some(1));
        assert_eq!(app.get(&format!("/api/v1/organisations/{org}")).await.json()["name"], "外网格店");
    }
    let team = app.get(&format!("/api/v1/areas/{}", p.grid_b)).await.json();
    assert!(team["team"].as_array().expect("team").iter().all(|m| m["name"] != "冒名"));
}

async fn role_limits_hold(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    // An auditor reads the trail and cannot write anything, anywhere.
    let auditor = app.user("aud", Role::Auditor, "430503").await;
    let r = app.send(Req::new(Method::GET, "/api/v1/audit?limit=3").token(&auditor.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = r.json();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    let seqs: Vec<i64> = page["items"].as_array().expect("items").iter().filter_map(|i| i["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert_eq!(page["next_before"].as_i64(), seqs.last().copied());
    for w in [
        Req::new(Method::PUT, &format!("/api/v1/areas/{}/team", p.grid_a)).json(json!({"members": []})),
        Req::new(Method::POST, "/api/v1/accounts").json(json!({"username": "x.y", "display_name": "x", "role": "admin", "area": "430503", "password": "a-long-password-1"})),
        Req::new(Method::POST, "/api/v1/unmask").json(json!({"field": "team_member.phone", "id": 1, "reason": "审计"})),
    ] {
        app.send(w.token(&auditor.token)).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    }
    // An admin manages accounts but cannot read the trail, and no API alters it.
    let admin = app.user("adm", Role::Admin, "430503").await;
    app.send(Req::new(Method::GET, "/api/v1/audit").token(&admin.token)).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    for m in [Method::PUT, Method::PATCH, Method::DELETE] {
        let r = app.send(Req::new(m, "/api/v1/audit").token(&admin.token)).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    }
    // A grid leader changes its own grid's team, not its neighbour's.
    let leader = app.user("leader", Role::GridLeader, &p.grid_a).await;
    let r = app
        .send(Req::new(Method::PUT, &format!("/api/v1/areas/{}/team", p.grid_a)).token(&leader.token).json(json!({
            "members": [{"role": "grid_leader", "name": "赵新", "phone": "13912345678"}, {"role": "volunteer", "name": "钱多"}]
        })))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let team = app.get(&format!("/api/v1/areas/{}", p.grid_a)).await.json()["team"].clone();
    assert_eq!(team[0]["name"], "赵新");
    assert_eq!(team[0]["phone_masked"], "139****5678");
    assert_eq!(team.as_array().map(Vec::len), Some(2));
    // Bad input changes nothing.
    let r = app
        .send(Req::new(Method::PUT, &format!("/api/v1/areas/{}/team", p.grid_a)).token(&leader.token).json(json!({
            "members": [{"role": "grid_leader", "name": "赵新", "phone": "12345"}]
        })))
        .await;
    r.assert_problem(StatusCode::BAD_REQUEST, "invalid_phone");
    let r = app.send(Req::new(Method::PUT, &format!("/api/v1/areas/{}/team", p.grid_a)).token(&leader.token).json(json!({"members": "x"}))).await;
    r.assert_problem(StatusCode::BAD_REQUEST, "invalid_body");
    assert_eq!(app.get(&format!("/api/v1/areas/{}", p.grid_a)).await.json()["team"], team);
    // The trail cannot be changed even straight in the database, by any role.
    let err = app.db.try_update_audit_for_tests().await.expect_err("the trail refuses updates");
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = app.db.try_delete_audit_for_tests().await.expect_err("the trail refuses deletes");
    assert!(err.to_string().contains("append-only"), "{err}");
}

async fn login(app: &TestApp, username: &str, password: &str) -> crate::Reply {
    app.send(Req::new(Method::POST, "/api/v1/session").json(json!({"username": username, "password": password}))).await
}

async fn login_throttles_and_never_says_whether_a_name_exists(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let u = app.user("zhang.wei", Role::GridWorker, "430503").await;
    let ok = login(&app, "zhang.wei", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert!(ok.json()["token"].as_str().is_some_and(|t| t.starts_with("cgt_")));
    // Wrong password and unknown name: the same answer.
    let wrong = login(&app, "zhang.wei", "not-the-password").await;
    let ghost = login(&app, "no.such.user", "not-the-password").await;
    for r in [&wrong, &ghost] {
        r.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    assert_eq!(wrong.json()["detail"], ghost.json()["detail"]);
    // Four more failures make five within the window: the next attempt is held off,
    // even with the right password, and says when to come back.
    for _ in 0..4 {
        login(&app, "zhang.wei", "guess-guess-guess").await.assert_problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let held = login(&app, "zhang.wei", PASSWORD).await;
    held.assert_problem(StatusCode::TOO_MANY_REQUESTS, "login_throttled");
    let retry: i64 = held.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!(retry >= 1);
    // The same for a name nobody has.
    for _ in 0..5 {
        login(&app, "no.such.user", "x-x-x-x-x-x").await;
    }
    login(&app, "no.such.user", "x-x-x-x-x-x").await.assert_problem(StatusCode::TOO_MANY_REQUESTS, "login_throttled");
    // After the delay the right password works again, and success clears the count.
    app.clock.advance(retry * 1000 + 1);
    assert_eq!(login(&app, "zhang.wei", PASSWORD).await.status, StatusCode::CREATED);
    assert_eq!(login(&app, "zhang.wei", "wrong-again-1").await.status, StatusCode::UNAUTHORIZED);
    // Every attempt was audited.
    assert_eq!(app.audit_count("zhang.wei", "failed").await, 6);
    assert!(app.audit_count("zhang.wei", "denied").await >= 1);
    assert!(app.audit_count("zhang.wei", "ok").await >= 2);
    let _ = u;
}

async fn tokens_end_at_logout_and_at_password_change(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let u = app.user("li.na", Role::Dispatcher, "430503").await;
    let t1 = login(&app, "li.na", PASSWORD).await.json()["token"].as_str().expect("token").to_string();
    let me = app.send(Req::new(Method::GET, "/api/v1/me").token(&t1)).await;
    assert_eq!(me.json()["username"], "li.na");
    // Logout revokes the token; using it again is refused.
    assert_eq!(app.send(Req::new(Method::DELETE, "/api/v1/session").token(&t1)).await.status, StatusCode::NO_CONTENT);
    app.send(Req::new(Method::GET, "/api/v1/me").token(&t1)).await.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    // A password change revokes every token of the account.
    let t2 = login(&app, "li.na", PASSWORD).await.json()["token"].as_str().expect("token").to_string();
    let r = app
        .send(Req::new(Method::POST, "/api/v1/me/password").token(&t2).json(json!({"current_password": PASSWORD, "new_password": "new-secret-of-lina"})))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    for t in [&t2, &u.token] {
        app.send(Req::new(Method::GET, "/api/v1/me").token(t)).await.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    assert_eq!(login(&app, "li.na", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, "li.na", "new-secret-of-lina").await.status, StatusCode::CREATED);
    // The policy holds for changes too.
    let t3 = login(&app, "li.na", "new-secret-of-lina").await.json()["token"].as_str().expect("token").to_string();
    let r = app
        .send(Req::new(Method::POST, "/api/v1/me/password").token(&t3).json(json!({"current_password": "new-secret-of-lina", "new_password": "1234567890"})))
        .await;
    r.assert_problem(StatusCode::BAD_REQUEST, "password_common");
    app.send(Req::new(Method::GET, "/api/v1/me").token("cgt_forged")).await.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

/// Sign in through the login form; returns the session cookie value.
async fn web_login(app: &TestApp, username: &str, password: &str, https: bool) -> (crate::Reply, Option<String>) {
    let page = app.send(Req::new(Method::GET, "/login")).await;
    let csrf_cookie = page.set_cookie("cg_csrf").expect("the login page sets a CSRF cookie");
    let csrf = csrf_cookie.trim_start_matches("cg_csrf=").split(';').next().unwrap_or("").to_string();
    assert!(page.body.contains(&csrf), "the form carries the token");
    let mut req = Req::new(Method::POST, "/login")
        .header("cookie", &format!("cg_csrf={csrf}"))
        .form(&[("username", username), ("password", password), ("csrf", &csrf), ("next", "/map")]);
    if https {
        req = req.header("x-forwarded-proto", "https");
    }
    let r = app.send(req).await;
    let session = r.set_cookie("cg_session").map(|c| c.trim_start_matches("cg_session=").split(';').next().unwrap_or("").to_string());
    (r, session)
}

async fn sessions_expire_and_end_at_logout(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    app.user("wang.fang", Role::CommunityStaff, "430503001001").await;
    let (r, s1) = web_login(&app, "wang.fang", PASSWORD, true).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/map"));
    let cookie = r.set_cookie("cg_session").expect("cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Secure"), "{cookie}");
    let s1 = s1.expect("session");
    let get = |s: &str, uri: &str| app.send(Req::new(Method::GET, uri).header("cookie", &format!("cg_session={s}")));
    assert_eq!(get(&s1, "/map").await.status, StatusCode::OK);
    // Each login issues a new session id; plain HTTP gets no Secure flag.
    let (r2, s2) = web_login(&app, "wang.fang", PASSWORD, false).await;
    let s2 = s2.expect("session");
    assert_ne!(s1, s2);
    assert!(!r2.set_cookie("cg_session").expect("cookie").contains("Secure"));
    // Idle for 29 minutes: still alive; 31 more: gone.
    app.clock.advance(29 * 60_000);
    assert_eq!(get(&s1, "/").await.status, StatusCode::OK);
    app.clock.advance(31 * 60_000);
    let r = get(&s1, "/").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().is_some_and(|l| l.starts_with("/login")));
    // However busy, a session ends 12 hours after login.
    let (_, s3) = web_login(&app, "wang.fang", PASSWORD, false).await;
    let s3 = s3.expect("session");
    for _ in 0..28 {
        app.clock.advance(25 * 60_000);
        assert_eq!(get(&s3, "/").await.status, StatusCode::OK);
    }
    app.clock.advance(25 * 60_000);
    assert_eq!(get(&s3, "/").await.status, StatusCode::SEE_OTHER, "past 12 hours");
    // Logout ends the session on the server: the old cookie is worthless.
    let (_, s4) = web_login(&app, "wang.fang", PASSWORD, false).await;
    let s4 = s4.expect("session");
    let page = get(&s4, "/").await.body;
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).and_then(|t| t.split('"').next()).expect("csrf in the logout form").to_string();
    let r = app.send(Req::new(Method::POST, "/logout").header("cookie", &format!("cg_session={s4}")).form(&[("csrf", &csrf)])).await;
    assert_eq!(r.location(), Some("/login"));
    assert_eq!(get(&s4, "/").await.status, StatusCode::SEE_OTHER);
    // A wrong password on the form says so, without a session.
    let (r, s) = web_login(&app, "wang.fang", "wrong-password-x", false).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(s.is_none() && r.body.contains("用户名或密码错误"));
}

async fn csrf_is_required_for_cookie_borne_changes(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let admin = app.user("admin2", Role::Admin, "430503").await;
    let session = app.db.create_session(admin.id, "test").await.expect("session");
    let cookie = format!("cg_session={}", session.id);
    let fields = |csrf: &str| {
        vec![
            ("username".to_string(), "new.person".to_string()),
            ("display_name".into(), "新同事".into()),
            ("role".into(), "grid_worker".into()),
            ("area".into(), "430503".into()),
            ("password".into(), "temporary-pass-77".into()),
            ("csrf".into(), csrf.to_string()),
        ]
    };
    let post = |csrf: Option<&str>| {
        let f = fields(csrf.unwrap_or(""));
        let pairs: Vec<(&str, &str)> = f.iter().filter(|(k, _)| csrf.is_some() || k != "csrf").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        app.send(Req::new(Method::POST, "/admin/users").header("cookie", &cookie).form(&pairs))
    };
    post(None).await.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    post(Some("forged")).await.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    assert!(app.db.account_by_username("new.person").await.expect("read").is_none(), "nothing was created");
    assert_eq!(app.audit_count("admin2", "denied").await, 2);
    let ok = post(Some(&session.csrf)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(app.db.account_by_username("new.person").await.expect("read").is_some());
    // The JSON API under a cookie needs the header; under a bearer token it does not.
    let json_req = || Req::new(Method::POST, "/api/v1/accounts/1/enable").header("cookie", &cookie);
    app.send(json_req()).await.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    assert_eq!(app.send(json_req().header("x-csrf-token", &session.csrf)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.send(Req::new(Method::POST, "/api/v1/accounts/1/enable").token(&admin.token)).await.status, StatusCode::NO_CONTENT);
    // The login form needs its own token too.
    let r = app.send(Req::new(Method::POST, "/login").form(&[("username", "admin2"), ("password", PASSWORD), ("csrf", "x")])).await;
    r.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
}

async fn temporary_passwords_must_be_changed_first(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let admin = app.user("admin3", Role::Admin, "430503001").await;
    let r = app
        .send(Req::new(Method::POST, "/api/v1/accounts").token(&admin.token).json(json!({
            "username": "chen.jing", "display_name": "陈静", "role": "grid_worker", "area": "430503001001", "password": "first-day-pass-1"
        })))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["must_change_password"], true);
    let t = login(&app, "chen.jing", "first-day-pass-1").await.json()["token"].as_str().expect("token").to_string();
    app.send(Req::new(Method::GET, "/api/v1/areas/430503").token(&t)).await.assert_problem(StatusCode::FORBIDDEN, "password_change_required");
    let r = app
        .send(Req::new(Method::POST, "/api/v1/me/password").token(&t).json(json!({"current_password": "first-day-pass-1", "new_password": "my-own-pass-2026"})))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let t = login(&app, "chen.jing", "my-own-pass-2026").await.json()["token"].as_str().expect("token").to_string();
    assert_eq!(app.send(Req::new(Method::GET, "/api/v1/areas/430503").token(&t)).await.status, StatusCode::OK);
    // In the web UI the same account lands on the password page first.
    app.send(Req::new(Method::POST, "/api/v1/accounts/0/password").token(&admin.token).json(json!({"password": "x"}))).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    let id = app.db.account_by_username("chen.jing").await.expect("read").expect("account").id;
    let r = app.send(Req::new(Method::POST, &format!("/api/v1/accounts/{id}/password")).token(&admin.token).json(json!({"password": "reset-by-admin-9"}))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (r, _) = web_login(&app, "chen.jing", "reset-by-admin-9", false).await;
    assert_eq!(r.location(), Some("/account/password"));
}

async fn sensitive_values_are_masked_and_reads_need_a_reason(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    let grid = app.demo.areas.iter().find(|a| a.code.as_str() == p.grid_a).expect("grid").code.clone();
    let phones: Vec<String> = app.demo.team.iter().filter(|m| m.area == grid).filter_map(|m| m.phone.as_ref().map(|p| p.as_str().to_string())).collect();
    let detail = app.get(&format!("/api/v1/areas/{}", p.grid_a)).await;
    for full in &phones {
        assert!(!detail.body.contains(full.as_str()), "full phones never appear by default");
    }
    let page = app.page(&format!("/areas/{}", p.grid_a), None).await.body;
    assert!(phones.iter().all(|f| !page.contains(f.as_str())) && page.contains("****"));
    let id = member_in(&app, &p.grid_a).await;
    let worker = app.user("grid.a.worker", Role::GridWorker, &p.grid_a).await;
    let unmask = |t: &TestUser, reason: &str| {
        app.send(Req::new(Method::POST, "/api/v1/unmask").token(&t.token).json(json!({"field": "team_member.phone", "id": id, "reason": reason})))
    };
    unmask(&worker, " ").await.assert_problem(StatusCode::BAD_REQUEST, "reason_required");
    let r = unmask(&worker, "联系网格长处理井盖缺失").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let value = r.json()["value"].as_str().expect("value").to_string();
    assert!(phones.contains(&value));
    let rows = app
        .db
        .audit_rows_for_tests(&store::audit::AuditQuery { actor: Some("grid.a.worker".into()), action: Some("read_sensitive".into()), limit: 10, ..Default::default() })
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].entry.outcome.as_str(), rows[0].entry.detail.as_str()), ("ok", "联系网格长处理井盖缺失"));
    // A volunteer may not unmask, even in its own grid.
    let volunteer = app.user("grid.a.vol", Role::Volunteer, &p.grid_a).await;
    unmask(&volunteer, "好奇").await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    // The web UI's reveal form (htmx) does the same.
    let session = app.db.create_session(worker.id, "test").await.expect("session");
    let r = app
        .send(
            Req::new(Method::POST, &format!("/team/{id}/phone"))
                .header("cookie", &format!("cg_session={}", session.id))
                .header("x-csrf-token", &session.csrf)
                .form(&[("reason", "回访")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&value));
}

async fn admins_manage_accounts_in_their_area(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let street_admin = app.user("street.admin", Role::Admin, "430503001").await;
    let create = |username: &str, area: &str, role: &str| {
        app.send(Req::new(Method::POST, "/api/v1/accounts").token(&street_admin.token).json(json!({
            "username": username, "display_name": "某人", "role": role, "area": area, "password": "temp-pass-for-new"
        })))
    };
    assert_eq!(create("in.street", "430503001001", "grid_worker").await.status, StatusCode::CREATED);
    create("out.street", "430503002", "street_staff").await.assert_problem(StatusCode::BAD_REQUEST, "area_out_of_scope");
    create("in.street", "430503001", "grid_worker").await.assert_problem(StatusCode::CONFLICT, "username_taken");
    create("bad name!", "430503001", "grid_worker").await.assert_problem(StatusCode::BAD_REQUEST, "invalid_username");
    create("dept.x", "430503001", "department_handler").await.assert_problem(StatusCode::BAD_REQUEST, "department_required");
    // A department that incidents cannot be dispatched to would leave its handler blind.
    let r = app
        .send(Req::new(Method::POST, "/api/v1/accounts").token(&street_admin.token).json(json!({
            "username": "dept.y", "display_name": "某人", "role": "department_handler", "area": "430503001",
            "department": "城市管理局", "password": "temp-pass-for-new"
        })))
        .await;
    r.assert_problem(StatusCode::BAD_REQUEST, "unknown_department");
    create("nobody", "430503001", "mayor").await.assert_problem(StatusCode::BAD_REQUEST, "invalid_role");
    let list = app.send(Req::new(Method::GET, "/api/v1/accounts").token(&street_admin.token)).await.json();
    let names: Vec<&str> = list.as_array().expect("list").iter().filter_map(|a| a["username"].as_str()).collect();
    assert!(names.contains(&"in.street") && names.contains(&"street.admin"));
    assert!(!names.contains(&"operator1"), "district accounts are outside a street admin's area");
    let id = app.db.account_by_username("in.street").await.expect("read").expect("acc").id;
    // Reading a record is audited.
    let reads = |app: &TestApp| {
        let q = store::audit::AuditQuery { actor: Some("street.admin".into()), action: Some("account.read".into()), limit: 100, ..Default::default() };
        let db = app.db.clone();
        async move { db.audit_rows_for_tests(&q).await.expect("rows").len() }
    };
    let before = reads(&app).await;
    let r = app.send(Req::new(Method::GET, &format!("/api/v1/accounts/{id}")).token(&street_admin.token)).await;
    assert_eq!(r.json()["username"], "in.street");
    assert_eq!(reads(&app).await, before + 1);
    assert_eq!(app.send(Req::new(Method::POST, &format!("/api/v1/accounts/{id}/disable")).token(&street_admin.token)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(login(&app, "in.street", "temp-pass-for-new").await.status, StatusCode::UNAUTHORIZED, "a disabled account cannot log in");
    let r = app.send(Req::new(Method::PATCH, &format!("/api/v1/accounts/{id}")).token(&street_admin.token).json(json!({"role": "grid_leader", "area": "430503001001001"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["role"], "grid_leader");
    let me = app.db.account_by_username("street.admin").await.expect("read").expect("acc").id;
    app.send(Req::new(Method::POST, &format!("/api/v1/accounts/{me}/disable")).token(&street_admin.token)).await.assert_problem(StatusCode::BAD_REQUEST, "cannot_disable_self");
    // The admin UI lists and creates accounts too.
    let session = app.db.create_session(street_admin.id, "test").await.expect("session");
    let page = app.send(Req::new(Method::GET, "/admin/users").header("cookie", &format!("cg_session={}", session.id))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("in.street") && !page.body.contains("operator1"));
    let page = app.send(Req::new(Method::GET, &format!("/admin/users/{id}")).header("cookie", &format!("cg_session={}", session.id))).await;
    assert!(page.body.contains("in.street"));
    let other = app.db.account_by_username("operator1").await.expect("read").expect("acc").id;
    let page = app.send(Req::new(Method::GET, &format!("/admin/users/{other}")).header("cookie", &format!("cg_session={}", session.id))).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_auditor_searches_the_trail_in_the_ui() {
    let Some(app) = TestApp::with_demo(Dialect::Sqlite).await else { return };
    let auditor = app.user("aud.ui", Role::Auditor, "430503").await;
    login(&app, "ghost.user", "whatever-123").await;
    let session = app.db.create_session(auditor.id, "test").await.expect("session");
    let page = app.send(Req::new(Method::GET, "/audit?outcome=failed").header("cookie", &format!("cg_session={}", session.id))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ghost.user"), "the failed login is listed");
    assert!(page.body.contains("2026-11-25"), "times are shown in Asia/Shanghai");
    let page = app.send(Req::new(Method::GET, "/audit?from=2026-13-01").header("cookie", &format!("cg_session={}", session.id))).await;
    assert!(page.body.contains("YYYY-MM-DD"));
    // Other roles get no audit page.
    let page = app.page("/audit", None).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_catalogue_is_read_by_all_and_the_calendar_edited_by_shift_leads() {
    let Some(app) = TestApp::with_demo(Dialect::Sqlite).await else { return };
    let actor = store::audit::Actor::cli("test");
    app.db
        .load_catalogue(&actor, &domain::catalogue::demo_departments(), &domain::catalogue::demo_categories(), &store::catalogue::demo_calendar())
        .await
        .expect("catalogue");
    let worker = app.user("cat.worker", Role::GridWorker, "430503001001001").await;
    let r = app.send(Req::new(Method::GET, "/api/v1/categories").token(&worker.token)).await;
    assert_eq!(r.status, StatusCode::OK);
    let items = r.json()["items"].as_array().expect("items").clone();
    assert!(items.iter().filter(|c| c["parent"].is_string()).count() >= 40);
    let manhole = items.iter().find(|c| c["code"] == "C0101").expect("C0101");
    assert_eq!(manhole["name"], "上水井盖");
    assert_eq!(manhole["limits"]["handle"], json!({"unit": "working_hours", "value": 4}));
    assert_eq!(app.send(Req::new(Method::GET, "/api/v1/departments").token(&worker.token)).await.json().as_array().map(Vec::len), Some(15));
    let cal = app.send(Req::new(Method::GET, "/api/v1/calendar?year=2026").token(&worker.token)).await.json();
    assert!(cal.as_array().expect("days").iter().any(|d| d["day"] == "2026-10-01" && d["kind"] == "holiday"));
    app.send(Req::new(Method::GET, "/api/v1/calendar?year=abc").token(&worker.token)).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_year");
    // A grid worker may not edit the calendar; a shift lead may, and it is audited.
    let put = |t: &str, day: &str, body: serde_json::Value| app.send(Req::new(Method::PUT, &format!("/api/v1/calendar/{day}")).token(t).json(body));
    put(&worker.token, "2026-12-31", json!({"kind": "holiday", "name": "x"})).await.assert_problem(StatusCode::NOT_FOUND, "not_found");
    let lead = app.user("cat.lead", Role::ShiftLead, "430503").await;
    assert_eq!(put(&lead.token, "2026-12-31", json!({"kind": "holiday", "name": "区防汛演练"})).await.status, StatusCode::NO_CONTENT);
    put(&lead.token, "2026-13-01", json!({"kind": "holiday", "name": "x"})).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_date");
    put(&lead.token, "2026-12-30", json!({"kind": "party", "name": "x"})).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_day_kind");
    put(&lead.token, "2026-12-30", json!({"kind": "holiday", "name": " "})).await.assert_problem(StatusCode::BAD_REQUEST, "invalid_day_name");
    let cal = app.send(Req::new(Method::GET, "/api/v1/calendar").token(&lead.token)).await.json();
    assert!(cal.as_array().expect("days").iter().any(|d| d["day"] == "2026-12-31" && d["name"] == "区防汛演练"));
    assert!(!cal.as_array().expect("days").iter().any(|d| d["day"] == "2026-12-30"));
    assert_eq!(put(&lead.token, "2026-12-31", json!({"kind": "normal"})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.audit_count("cat.lead", "ok").await, 2);
    assert_eq!(app.audit_count("cat.worker", "denied").await, 1);
}
