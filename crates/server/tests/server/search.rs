//! The register's one-box search through the API and the page: each kind of query, scope,
//! masking, ranking, highlights, the change log, the audit trail.

use axum::http::{Method, StatusCode};
use domain::access::{Credential, Principal};
use domain::register::citizen_id::id_check_character;
use domain::register::credit_code::credit_check_character;
use domain::register::{CitizenId, CreditCode};
use domain::{AreaCode, Level, Phone, Role};
use serde_json::Value;
use store::Dialect;
use store::audit::Actor;
use store::register::{HouseInput, HouseUse, NewPerson, OrganisationInput, PersonEdit};

use crate::{Req, TestApp, TestUser, on_both_backends, urlencode};

on_both_backends!(
    search_finds_each_kind_of_query_ranked_and_highlighted,
    search_is_scoped_masked_and_audited,
    search_follows_the_change_log,
    search_page_highlights_and_escapes,
);

/// A valid ID number of the demo district born on `ymd`; with `x`, one whose check
/// character is X.
fn cid(ymd: &str, seq: u32, x: bool) -> CitizenId {
    for s in seq..seq + 200 {
        let body = format!("430503{ymd}{s:03}");
        let check = id_check_character(&body).expect("digits");
        if (check == 'X') == x {
            return CitizenId::from_stored(&format!("{body}{check}")).expect("valid");
        }
    }
    panic!("no ID number found");
}

fn credit(body: &str) -> CreditCode {
    let check = credit_check_character(body).expect("alphabet");
    CreditCode::strict(&format!("{body}{check}")).expect("valid")
}

fn who(role: Role, area: &str) -> Principal {
    Principal {
        account_id: 9_999,
        username: "fixture".into(),
        display_name: "fixture".into(),
        role,
        area: AreaCode::parse(area).expect("area"),
        department: None,
        credential: Credential::Token(9_999),
        must_change_password: false,
    }
}

fn house(address: &str, grid: &str) -> HouseInput {
    HouseInput { address: address.into(), area: AreaCode::parse(grid).expect("grid"), point: None, area_m2: None, house_use: HouseUse::Residential }
}

fn person(id: &CitizenId, name: &str, phone: &str, house: i64) -> NewPerson {
    NewPerson { citizen_id: id.clone(), name: name.into(), phone: Some(Phone::parse(phone).expect("phone")), ethnicity: None, house_id: Some(house), area: None, population_type: Default::default(), tags: Vec::new() }
}

/// What the fixture recorded.
struct Fixture {
    grid_a: String,
    grid_b: String,
    zhang_san: (i64, CitizenId, &'static str),
    zhang_san_feng: i64,
    li_zhang_san: i64,
    shan_wei: i64,
    zhang_san_b: i64,
    house_a: i64,
    house_b: i64,
    org: (i64, CreditCode),
    /// Every full ID number and phone stored.
    secrets: Vec<String>,
}

/// Grid A: 张三, 张三丰 and 李张三 at 幸福路18号3栋2单元501室, 单伟 at 解放路5号; grid B (same
/// community): another 张三. An organisation 幸福超市 in grid A.
async fn fixture(app: &TestApp) -> Fixture {
    let grids: Vec<&domain::AreaRecord> = app.demo.areas.iter().filter(|a| a.level == Level::Grid).collect();
    let a = grids[0];
    let b = grids.iter().find(|g| g.parent == a.parent && g.code != a.code).expect("a sibling grid");
    let (grid_a, grid_b) = (a.code.to_string(), b.code.to_string());
    let staff = who(Role::CommunityStaff, &grid_a[..12]);
    let s = app.db.scoped(&staff, Actor::of(&staff, "op-fixture", "127.0.0.1"));
    let desk = s.register().expect("desk");
    let ha = desk.create_house(house("幸福路18号3栋2单元501室", &grid_a)).await.expect("house");
    let ha2 = desk.create_house(house("解放路5号", &grid_a)).await.expect("house");
    let hb = desk.create_house(house("建设路7号", &grid_b)).await.expect("house");
    let ids = [cid("19800101", 11, true), cid("19810202", 21, false), cid("19820303", 31, false), cid("19830404", 41, false), cid("19840505", 51, false)];
    let phones = ["13812345678", "13912340001", "13712340002", "13612340003", "13512345678"];
    let p1 = desk.create_person(person(&ids[0], "张三", phones[0], ha.id)).await.expect("person");
    let p2 = desk.create_person(person(&ids[1], "张三丰", phones[1], ha.id)).await.expect("person");
    let p3 = desk.create_person(person(&ids[2], "李张三", phones[2], ha.id)).await.expect("person");
    let p4 = desk.create_person(person(&ids[3], "单伟", phones[3], ha2.id)).await.expect("person");
    let p5 = desk.create_person(person(&ids[4], "张三", phones[4], hb.id)).await.expect("person");
    let code = credit("91430503MA4L1234X");
    let org = desk
        .create_organisation(OrganisationInput {
            name: "幸福超市有限公司".into(),
            credit_code: code.clone(),
            address: Some("幸福路20号".into()),
            house_id: None,
            area: Some(AreaCode::parse(&grid_a).expect("grid")),
            legal_rep: None,
            phone: None,
        })
        .await
        .expect("organisation");
    let mut secrets: Vec<String> = ids.iter().map(|c| c.expose().to_string()).collect();
    secrets.extend(phones.iter().map(|p| p.to_string()));
    Fixture {
        grid_a,
        grid_b,
        zhang_san: (p1.id, ids[0].clone(), phones[0]),
        zhang_san_feng: p2.id,
        li_zhang_san: p3.id,
        shan_wei: p4.id,
        zhang_san_b: p5.id,
        house_a: ha.id,
        house_b: hb.id,
        org: (org.id, code),
        secrets,
    }
}

async fn search(app: &TestApp, who: &TestUser, query: &str) -> Value {
    let r = app.send(Req::new(Method::GET, &format!("/api/v1/search?{query}")).token(&who.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
    r.json()
}

fn ids_of(v: &Value, kind: &str) -> Vec<i64> {
    v["hits"].as_array().expect("hits").iter().filter(|h| h["kind"] == kind).filter_map(|h| h["id"].as_i64()).collect()
}

fn hit<'a>(v: &'a Value, kind: &str, id: i64) -> &'a Value {
    v["hits"].as_array().expect("hits").iter().find(|h| h["kind"] == kind && h["id"] == id).unwrap_or_else(|| panic!("no {kind} {id} in {v}"))
}

/// The highlighted text of one field of a hit.
fn marked(h: &Value, field: &str) -> Vec<String> {
    let text: Vec<char> = h[field].as_str().unwrap_or("").chars().collect();
    h["highlights"]
        .as_array()
        .expect("highlights")
        .iter()
        .filter(|x| x["field"] == field)
        .map(|x| {
            let (s, e) = (x["start"].as_u64().expect("start") as usize, x["end"].as_u64().expect("end") as usize);
            text[s..e].iter().collect()
        })
        .collect()
}

async fn search_finds_each_kind_of_query_ranked_and_highlighted(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let f = fixture(&app).await;
    // Everything into the base (the rebuild a server makes at start); later tests cover the overlay.
    app.state.search.compact(&app.db).await.expect("rebuild");
    let me = app.user("a.worker", Role::GridWorker, &f.grid_a).await;

    // A 2-character name: exact, then prefix, then contains; highlights on the name.
    let v = search(&app, &me, &format!("q={}&kind=person", urlencode("张三"))).await;
    assert_eq!(ids_of(&v, "person"), vec![f.zhang_san.0, f.zhang_san_feng, f.li_zhang_san], "{v}");
    assert_eq!(marked(hit(&v, "person", f.li_zhang_san), "title"), vec!["张三"]);
    assert_eq!(hit(&v, "person", f.li_zhang_san)["highlights"][0]["start"], 1);
    assert_eq!(hit(&v, "person", f.zhang_san.0)["matched"], "name");
    assert_eq!(hit(&v, "person", f.zhang_san.0)["href"], format!("/register/persons/{}", f.zhang_san.0));
    // A 3-character name.
    let v = search(&app, &me, &format!("q={}", urlencode("张三丰"))).await;
    assert_eq!(ids_of(&v, "person"), vec![f.zhang_san_feng]);
    // Full pinyin and initials (张三 exactly first), and a polyphonic surname read shan.
    let v = search(&app, &me, "q=zhangsan").await;
    assert_eq!(ids_of(&v, "person")[0], f.zhang_san.0, "{v}");
    assert_eq!(hit(&v, "person", f.zhang_san.0)["matched"], "pinyin");
    assert_eq!(marked(hit(&v, "person", f.zhang_san.0), "title"), vec!["张三"]);
    assert!(ids_of(&v, "person").contains(&f.zhang_san_feng), "a prefix of 张三丰's pinyin");
    let v = search(&app, &me, "q=zs").await;
    assert_eq!(ids_of(&v, "person")[0], f.zhang_san.0, "{v}");
    assert_eq!(hit(&v, "person", f.zhang_san.0)["matched"], "initials");
    assert_eq!(ids_of(&search(&app, &me, "q=ZS").await, "person")[0], f.zhang_san.0, "case does not matter");
    assert_eq!(ids_of(&search(&app, &me, "q=shanwei").await, "person"), vec![f.shan_wei]);
    // ID-number suffixes, X included: highlighted only where the masked form shows digits.
    let full = f.zhang_san.1.expose().to_string();
    assert!(full.ends_with('X'));
    for n in [4, 6] {
        let v = search(&app, &me, &format!("q={}", &full[18 - n..].to_lowercase())).await;
        assert_eq!(ids_of(&v, "person"), vec![f.zhang_san.0], "suffix of {n}: {v}");
        let h = hit(&v, "person", f.zhang_san.0);
        assert_eq!(h["matched"], "citizen_id");
        assert_eq!(marked(h, "citizen_id_masked"), vec![full[14..].to_string()], "the last four, visible");
    }
    // The full number finds exactly that person.
    let v = search(&app, &me, &format!("q={full}")).await;
    assert_eq!(ids_of(&v, "person"), vec![f.zhang_san.0]);
    // Phone suffixes: 5678 ends two phones, one of them in grid B (out of scope).
    let v = search(&app, &me, "q=5678&kind=person").await;
    assert_eq!(ids_of(&v, "person"), vec![f.zhang_san.0], "{v}");
    assert_eq!(hit(&v, "person", f.zhang_san.0)["matched"], "phone");
    assert_eq!(marked(hit(&v, "person", f.zhang_san.0), "phone_masked"), vec!["5678"]);
    // An address fragment finds the house and the people living there.
    let v = search(&app, &me, &format!("q={}", urlencode("幸福路18号"))).await;
    assert_eq!(ids_of(&v, "house"), vec![f.house_a]);
    let mut people = ids_of(&v, "person");
    people.sort_unstable();
    assert_eq!(people, vec![f.zhang_san.0, f.zhang_san_feng, f.li_zhang_san], "{v}");
    assert_eq!(marked(hit(&v, "person", f.zhang_san_feng), "subtitle"), vec!["幸福路18号"]);
    assert_eq!(marked(hit(&v, "house", f.house_a), "title"), vec!["幸福路18号"]);
    let v = search(&app, &me, &format!("q={}&kind=house", urlencode("501室"))).await;
    assert_eq!(ids_of(&v, "house"), vec![f.house_a]);
    assert!(ids_of(&v, "person").is_empty(), "kind=house: houses only");
    // Organisations by name fragment and by credit code (full or a fragment).
    let v = search(&app, &me, &format!("q={}", urlencode("超市"))).await;
    assert_eq!(ids_of(&v, "organisation"), vec![f.org.0]);
    assert_eq!(marked(hit(&v, "organisation", f.org.0), "title"), vec!["超市"]);
    let v = search(&app, &me, &format!("q={}", f.org.1.as_str())).await;
    assert_eq!(ids_of(&v, "organisation"), vec![f.org.0]);
    let v = search(&app, &me, "q=ma4l12").await;
    assert_eq!(ids_of(&v, "organisation"), vec![f.org.0]);
    assert_eq!(marked(hit(&v, "organisation", f.org.0), "credit_code"), vec!["MA4L12"]);
    // Limits.
    let v = search(&app, &me, &format!("q={}&limit=1", urlencode("张三"))).await;
    assert_eq!(ids_of(&v, "person"), vec![f.zhang_san.0]);
    // A query too short (after spaces are dropped) is a clear 422; bad parameters are 400.
    for q in ["", "%20", "%E5%BC%A0", "a"] {
        let r = app.send(Req::new(Method::GET, &format!("/api/v1/search?q={q}")).token(&me.token)).await;
        r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "query_too_short");
    }
    let r = app.send(Req::new(Method::GET, &format!("/api/v1/search?q={}", "1".repeat(65))).token(&me.token)).await;
    r.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "query_too_long");
    let r = app.send(Req::new(Method::GET, "/api/v1/search?q=zs&kind=car").token(&me.token)).await;
    r.assert_problem(StatusCode::BAD_REQUEST, "invalid_kind");
    let r = app.send(Req::new(Method::GET, "/api/v1/search?q=zs&limit=0").token(&me.token)).await;
    r.assert_problem(StatusCode::BAD_REQUEST, "invalid_limit");
}

async fn search_is_scoped_masked_and_audited(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let f = fixture(&app).await;
    let a = app.user("a.worker", Role::GridWorker, &f.grid_a).await;
    let b = app.user("b.worker", Role::GridWorker, &f.grid_b).await;
    let community = app.user("c.staff", Role::CommunityStaff, &f.grid_a[..12]).await;
    let q = format!("q={}&kind=person", urlencode("张三"));
    // Grid A does not find grid B's 张三, and grid B finds only its own.
    assert!(!ids_of(&search(&app, &a, &q).await, "person").contains(&f.zhang_san_b));
    assert_eq!(ids_of(&search(&app, &b, &q).await, "person"), vec![f.zhang_san_b]);
    assert!(ids_of(&search(&app, &b, &format!("q={}", urlencode("幸福路"))).await, "house").is_empty());
    // The community holds both; the district operator too.
    let both = ids_of(&search(&app, &community, &q).await, "person");
    assert!(both.contains(&f.zhang_san.0) && both.contains(&f.zhang_san_b), "{both:?}");
    assert!(ids_of(&search(&app, &app.operator, &q).await, "person").contains(&f.zhang_san_b));
    let v = search(&app, &b, &format!("q={}", urlencode("建设路"))).await;
    assert_eq!(ids_of(&v, "house"), vec![f.house_b]);
    // Masking: no full ID number or phone anywhere in any answer, whatever was asked.
    let mut queries: Vec<String> = f.secrets.iter().map(|s| format!("q={s}")).collect();
    queries.extend(f.secrets.iter().map(|s| format!("q={}", &s[s.len() - 6..])));
    queries.push(format!("q={}", urlencode("张三")));
    queries.push(format!("q={}", urlencode("幸福路")));
    for query in &queries {
        let r = app.send(Req::new(Method::GET, &format!("/api/v1/search?{query}")).token(&community.token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for s in &f.secrets {
            assert!(!r.body.contains(s.as_str()), "{query} leaked {s}: {}", r.body);
        }
    }
    let v = search(&app, &community, &format!("q={}", f.zhang_san.1.expose())).await;
    assert_eq!(hit(&v, "person", f.zhang_san.0)["citizen_id_masked"], f.zhang_san.1.masked());
    assert_eq!(hit(&v, "person", f.zhang_san.0)["phone_masked"], "138****5678");
    // One audit row per search, the query masked when it is a long number.
    let rows = |who: &str| {
        let q = store::audit::AuditQuery { actor: Some(who.into()), action: Some("register.search".into()), limit: 1000, ..Default::default() };
        let db = app.db.clone();
        async move { db.audit_rows_for_tests(&q).await.expect("audit") }
    };
    let audited = rows("c.staff").await;
    assert_eq!(audited.len(), queries.len() + 2, "one row per search");
    for r in &audited {
        for s in &f.secrets {
            assert!(!r.entry.detail.contains(s.as_str()), "the audit row keeps {s}: {}", r.entry.detail);
        }
    }
    assert!(audited.iter().any(|r| r.entry.detail.contains(&format!("**************{}", &f.zhang_san.1.expose()[14..]))));
    // Roles without the register get 404, audited as denied.
    for role in [Role::DepartmentHandler, Role::Volunteer, Role::Auditor, Role::Admin] {
        let u = app.user(&format!("x.{}", role.as_str()), role, "430503").await;
        let before = app.audit_count(&u.username, "denied").await;
        let r = app.send(Req::new(Method::GET, &format!("/api/v1/search?{q}")).token(&u.token)).await;
        r.assert_problem(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(app.audit_count(&u.username, "denied").await, before + 1, "{role}");
    }
}

async fn search_follows_the_change_log(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let f = fixture(&app).await;
    app.state.search.compact(&app.db).await.expect("rebuild");
    let me = app.user("c.staff", Role::CommunityStaff, &f.grid_a[..12]).await;
    let staff = who(Role::CommunityStaff, &f.grid_a[..12]);
    let s = app.db.scoped(&staff, Actor::of(&staff, "op-change", "127.0.0.1"));
    let desk = s.register().expect("desk");
    // A new person, recorded after the index was built, is found by the next search.
    let id = cid("19900909", 91, false);
    let new_house = desk.create_house(house("和平路66号1单元", &f.grid_a)).await.expect("house");
    let p = desk.create_person(person(&id, "欧阳娜娜", "15912349876", new_house.id)).await.expect("person");
    let v = search(&app, &me, &format!("q={}", urlencode("欧阳娜娜"))).await;
    assert_eq!(ids_of(&v, "person"), vec![p.id]);
    assert_eq!(ids_of(&search(&app, &me, "q=oynn").await, "person"), vec![p.id]);
    assert_eq!(ids_of(&search(&app, &me, "q=9876").await, "person"), vec![p.id]);
    // A move: found at the new address, not at the old one.
    let zs = desk.person(f.zhang_san.0).await.expect("read");
    desk.move_person(zs.id, zs.version, new_house.id).await.expect("move");
    let v = search(&app, &me, &format!("q={}&kind=person", urlencode("和平路66号"))).await;
    let mut at_new = ids_of(&v, "person");
    at_new.sort_unstable();
    assert_eq!(at_new, vec![f.zhang_san.0, p.id]);
    let v = search(&app, &me, &format!("q={}&kind=person", urlencode("幸福路18号"))).await;
    assert!(!ids_of(&v, "person").contains(&f.zhang_san.0), "{v}");
    assert!(ids_of(&v, "person").contains(&f.zhang_san_feng));
    // A changed name no longer matches; the new one does.
    let feng = desk.person(f.zhang_san_feng).await.expect("read");
    let edit = PersonEdit { citizen_id: CitizenId::from_stored(&f.secrets[1]).expect("id"), name: "王五".into(), phone: None, ethnicity: None, population_type: Default::default(), tags: Vec::new() };
    desk.update_person(feng.id, feng.version, edit).await.expect("rename");
    let v = search(&app, &me, &format!("q={}&kind=person", urlencode("张三丰"))).await;
    assert!(ids_of(&v, "person").is_empty(), "{v}");
    assert_eq!(ids_of(&search(&app, &me, &format!("q={}", urlencode("王五"))).await, "person"), vec![f.zhang_san_feng]);
    assert!(ids_of(&search(&app, &me, "q=0001&kind=person").await, "person").is_empty(), "the phone was removed");
    // A house's new address: its residents (in the base) are found by it, not by the old one.
    let h = desk.house(f.house_a).await.expect("read");
    desk.update_house(h.id, h.version, house("光明路3号", &f.grid_a)).await.expect("readdress");
    let v = search(&app, &me, &format!("q={}", urlencode("光明路3号"))).await;
    assert_eq!(ids_of(&v, "house"), vec![f.house_a]);
    let mut there = ids_of(&v, "person");
    there.sort_unstable();
    assert_eq!(there, vec![f.zhang_san_feng, f.li_zhang_san], "{v}");
    assert!(search(&app, &me, &format!("q={}", urlencode("幸福路18号"))).await["hits"].as_array().expect("hits").is_empty());
    // After a rebuild the same answers come from the base.
    app.state.search.compact(&app.db).await.expect("rebuild");
    let v = search(&app, &me, &format!("q={}", urlencode("光明路3号"))).await;
    let mut there = ids_of(&v, "person");
    there.sort_unstable();
    assert_eq!(there, vec![f.zhang_san_feng, f.li_zhang_san]);
    assert!(ids_of(&search(&app, &me, &format!("q={}&kind=person", urlencode("张三丰"))).await, "person").is_empty());
    // The follower's own refresh (the server's background task) also brings changes in.
    let p2 = desk.create_person(person(&cid("19911111", 13, false), "司马光", "15012345555", new_house.id)).await.expect("person");
    assert!(app.state.search.refresh(&app.db).await.expect("refresh") >= 1);
    assert!(app.state.search.snapshot().search(&store::search::Query::parse("司马光", domain::calendar::Day(20_000)).expect("q"), &f.grid_a, None, 5).iter().any(|c| c.id == p2.id));
}

async fn search_page_highlights_and_escapes(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let f = fixture(&app).await;
    let r = app.page(&format!("/register/search?q={}", urlencode("张三")), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("实有人口房屋单位查询"));
    assert!(r.body.contains("<mark>张三</mark>"), "{}", r.body);
    assert!(r.body.contains(&format!("href=\"/register/persons/{}\"", f.zhang_san.0)));
    assert!(r.body.contains("href=\"/register/search\""), "the nav link");
    for s in &f.secrets {
        assert!(!r.body.contains(s.as_str()));
    }
    // The htmx part, in English.
    let r = app.page(&format!("/register/search/results?q={}", urlencode("幸福")), Some("lang=en")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Houses") && r.body.contains("<mark>幸福</mark>"), "{}", r.body);
    assert!(!r.body.contains("<html"), "a fragment");
    let r = app.page("/register/search/results?q=x", Some("lang=en")).await;
    assert!(r.body.contains("Type at least 2 characters."));
    // A query with HTML in it is shown escaped, never as markup.
    let q = "<script>alert(1)</script>";
    let r = app.page(&format!("/register/search?q={}", urlencode(q)), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("<script>alert(1)"), "{}", r.body);
    assert!(r.body.contains("&#60;script&#62;alert(1)") || r.body.contains("&lt;script&gt;alert(1)"), "{}", r.body);
    // A full ID number typed in the box is not sent back.
    let r = app.page(&format!("/register/search?q={}", f.zhang_san.1.expose()), None).await;
    assert!(!r.body.contains(f.zhang_san.1.expose()));
    let full = f.zhang_san.1.expose();
    assert!(r.body.contains(&format!("<mark>{}</mark>********<mark>{}</mark>", &full[..6], &full[14..])), "{}", r.body);
}
