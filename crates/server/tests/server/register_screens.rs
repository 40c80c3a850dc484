//! The register's screens (issue 5): the grid worker's door-to-door collection pages under
//! `/m/register` and the desks' lists and detail pages under `/register`. Requests go in
//! as a browser sends them: a session cookie and the CSRF field.

use axum::http::{Method, StatusCode};
use domain::{Level, Role};
use store::Dialect;
use store::audit::Actor;
use store::register::{HouseInput, HouseUse, NewPerson};

use crate::screens::Browser;
use crate::{Reply, Req, TestApp, TestUser, on_both_backends};

on_both_backends!(
    a_worker_records_a_visit_and_progress_moves,
    a_worker_adds_a_person_through_the_form,
    a_bad_id_number_shows_its_error_and_stores_nothing,
    moving_out_and_in_keeps_the_history,
    a_worker_cannot_open_another_grids_house,
    the_person_page_masks_and_unmasking_needs_a_reason,
    lists_filter_and_page,
    html_in_a_name_is_escaped,
);

/// Grid A (the demo's first grid), a sibling grid B, and their community.
struct Places {
    grid_a: String,
    grid_b: String,
    community: String,
}

fn places(app: &TestApp) -> Places {
    let grids: Vec<&domain::AreaRecord> = app.demo.areas.iter().filter(|a| a.level == Level::Grid).collect();
    let a = grids[0];
    let b = grids.iter().find(|g| g.parent == a.parent && g.code != a.code).expect("a sibling grid");
    Places { grid_a: a.code.to_string(), grid_b: b.code.to_string(), community: a.code.as_str()[..12].to_string() }
}

/// The store's principal of a test account, to arrange data through the same desks.
async fn principal(app: &TestApp, u: &TestUser) -> domain::Principal {
    let a = app.db.account_by_username(&u.username).await.expect("read").expect("account");
    domain::Principal {
        account_id: a.id,
        username: a.username,
        display_name: a.display_name,
        role: a.role,
        area: a.area,
        department: None,
        credential: domain::access::Credential::Session("test".into()),
        must_change_password: false,
    }
}

/// A valid ID number born on `ymd` with sequence `seq`.
fn cid(ymd: &str, seq: u32) -> String {
    let body = format!("430503{ymd}{seq:03}");
    let check = domain::register::citizen_id::id_check_character(&body).expect("digits");
    format!("{body}{check}")
}

async fn house_in(app: &TestApp, who: &TestUser, grid: &str, address: &str) -> i64 {
    let p = principal(app, who).await;
    let s = app.db.scoped(&p, Actor::cli("test"));
    let h = HouseInput { address: address.into(), area: domain::AreaCode::parse(grid).expect("grid"), point: None, area_m2: None, house_use: HouseUse::Residential };
    s.register().expect("desk").create_house(h).await.expect("house").id
}

async fn person_in(app: &TestApp, who: &TestUser, house: i64, name: &str, id: &str) -> i64 {
    let p = principal(app, who).await;
    let s = app.db.scoped(&p, Actor::cli("test"));
    let n = NewPerson {
        citizen_id: domain::register::CitizenId::from_stored(id).expect("id"),
        name: name.into(),
        phone: Some(domain::Phone::parse("13912345678").expect("phone")),
        ethnicity: None,
        house_id: Some(house),
        area: None,
        population_type: Default::default(),
        tags: Vec::new(),
    };
    s.register().expect("desk").create_person(n).await.expect("person").id
}

/// The id after `prefix` in a Location header such as `/m/register/houses/12?created=1`.
fn id_in(location: Option<&str>, prefix: &str) -> i64 {
    let rest = location.and_then(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("location {location:?} under {prefix}"));
    rest.split(['?', '/']).next().and_then(|s| s.parse().ok()).expect("an id")
}

/// The first id after `prefix` in a page.
fn first_id(body: &str, prefix: &str) -> i64 {
    let rest = body.split(prefix).nth(1).unwrap_or_else(|| panic!("no {prefix} in {body}"));
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().expect("an id")
}

async fn a_worker_records_a_visit_and_progress_moves(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    let staff = app.user("c.staff", Role::CommunityStaff, &p.community).await;
    let worker = app.user("a.worker", Role::GridWorker, &p.grid_a).await;
    let (desk, mobile) = (Browser::of(&app, &staff).await, Browser::of(&app, &worker).await);
    // The community opens a task for grid A; the worker records two houses.
    let r = desk.post("/register/collection", &[("grid", &p.grid_a), ("title", "十一月入户采集"), ("start", "2026-11-01"), ("end", "2026-12-31")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let task = id_in(r.location(), "/register/collection?created=");
    let mut houses = Vec::new();
    for a in ["建设路 1 号 101 室", "建设路 1 号 102 室"] {
        let r = mobile.post("/m/register/houses", &[("address", a), ("house_use", "residential"), ("area_m2", "86.5")]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        houses.push(id_in(r.location(), "/m/register/houses/"));
    }
    let before = mobile.get("/m/register").await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.body.contains("十一月入户采集") && before.body.contains("0 / 2"), "{}", before.body);
    assert_eq!(before.body.matches("未走访").count(), 2 + 1, "both houses not visited (and the filter's label)");
    // A visit needs an outcome; then the house counts as visited.
    let r = mobile.post(&format!("/m/register/houses/{}/visit", houses[0]), &[("task", &task.to_string())]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("请选择走访结果"));
    let r = mobile.post(&format!("/m/register/houses/{}/visit", houses[0]), &[("task", &task.to_string()), ("outcome", "nobody_home"), ("note", "晚上再来")]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, Some(format!("/m/register/houses/{}?visited=1", houses[0]).as_str())));
    let page = mobile.get(&format!("/m/register/houses/{}?visited=1", houses[0])).await;
    assert!(page.body.contains("走访结果已保存") && page.body.contains("无人在家") && page.body.contains("晚上再来"), "{}", page.body);
    let after = mobile.get("/m/register").await;
    assert!(after.body.contains("1 / 2") && after.body.contains("(50%)"), "{}", after.body);
    assert!(after.body.contains("✓ 无人在家"));
    // The community's overview shows the same progress.
    let overview = desk.get("/register/collection").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains(&format!("data-task=\"{task}\"")) && overview.body.contains("value=\"50\""), "{}", overview.body);
    // The house's history has the visit.
    let house = desk.get(&format!("/register/houses/{}", houses[0])).await;
    assert!(house.body.contains("走访结果") && house.body.contains("nobody_home (晚上再来)"), "{}", house.body);
}

async fn a_worker_adds_a_person_through_the_form(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    let worker = app.user("a.worker", Role::GridWorker, &p.grid_a).await;
    let mobile = Browser::of(&app, &worker).await;
    let house = house_in(&app, &worker, &p.grid_a, "红旗路 8 号 2 栋 301").await;
    let form = mobile.get(&format!("/m/register/houses/{house}/persons/new")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"citizen_id\""));
    let id = cid("19850615", 123);
    // Typed as people type: spaces, a phone with separators.
    let spaced = format!("{} {} {}", &id[..6], &id[6..14], &id[14..]);
    let r = mobile.post(&format!("/m/register/houses/{house}/persons"), &[("name", "陈晓明"), ("citizen_id", &spaced), ("phone", "139-0739-8888"), ("ethnicity", "汉族"), ("population_type", "floating")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.location().is_some_and(|l| l.starts_with(&format!("/m/register/houses/{house}?added="))));
    let page = mobile.get(r.location().expect("location")).await;
    assert!(page.body.contains("陈晓明") && page.body.contains("人员已登记"), "{}", page.body);
    assert!(page.body.contains("430503********") && page.body.contains("139****8888"), "{}", page.body);
    assert!(!page.body.contains(&id) && !page.body.contains("13907398888"), "full values never show");
    // The same number again: the field's error, nothing stored twice.
    let r = mobile.post(&format!("/m/register/houses/{house}/persons"), &[("name", "陈晓明二"), ("citizen_id", &id)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("data-field=\"citizen_id\">该身份证号码已登记"), "{}", r.body);
    // Editing keeps the ID number when the field is left empty.
    let list = mobile.get(&format!("/register/persons?name={}", crate::urlencode("陈晓明"))).await;
    let person = first_id(&list.body, "href=\"/register/persons/");
    let detail = mobile.get(&format!("/register/persons/{person}")).await;
    assert!(detail.body.contains("<dd>流动人口</dd>"), "the form's 人口类型 is stored: {}", detail.body);
    let r = mobile.post(&format!("/m/register/persons/{person}"), &[("name", "陈小明"), ("citizen_id", ""), ("phone", ""), ("ethnicity", "汉族"), ("version", "1")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let detail = mobile.get(&format!("/register/persons/{person}")).await;
    assert!(detail.body.contains("陈小明") && detail.body.contains("139****8888"));
    assert!(detail.body.contains("陈晓明") && detail.body.contains("修改人员"), "the history shows old → new: {}", detail.body);
    // A stale version is refused with the form kept.
    let r = mobile.post(&format!("/m/register/persons/{person}"), &[("name", "陈大明"), ("version", "1")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("已被他人修改") && r.body.contains("value=\"陈大明\""), "{}", r.body);
}

async fn a_bad_id_number_shows_its_error_and_stores_nothing(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    let worker = app.user("a.worker", Role::GridWorker, &p.grid_a).await;
    let mobile = Browser::of(&app, &worker).await;
    let house = house_in(&app, &worker, &p.grid_a, "红旗路 9 号").await;
    let good = cid("19850615", 123);
    let wrong_check = format!("{}{}", &good[..17], if good.ends_with('0') { '1' } else { '0' });
    for (bad, phone, field, words) in [
        (wrong_check.as_str(), "", "citizen_id", "校验位错误"),
        ("43050319990230123X", "", "citizen_id", "出生日期不存在"),
        ("4305031985", "", "citizen_id", "应为 18 位"),
        (good.as_str(), "12345", "phone", "不是有效的手机号码"),
    ] {
        let r = mobile.post(&format!("/m/register/houses/{house}/persons"), &[("name", "赵六"), ("citizen_id", bad), ("phone", phone)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.body.contains(&format!("data-field=\"{field}\">")) && r.body.contains(words), "{bad}: {}", r.body);
        // What was typed stays in the form.
        assert!(r.body.contains("value=\"赵六\"") && r.body.contains(&format!("value=\"{bad}\"")));
    }
    let page = mobile.get(&format!("/m/register/houses/{house}")).await;
    assert!(!page.body.contains("赵六"), "nothing was stored");
    let list = mobile.get("/register/persons").await;
    assert!(list.body.contains("没有符合条件的记录"), "{}", list.body);
    // In English, the English half of the message.
    let r = app
        .send(
            Req::new(Method::POST, &format!("/m/register/houses/{house}/persons"))
                .header("cookie", &format!("{}; lang=en", mobile.cookie))
                .form(&[("csrf", &mobile.csrf), ("name", "赵六"), ("citizen_id", &wrong_check)]),
        )
        .await;
    assert!(r.body.contains("wrong check character"), "{}", r.body);
    // Without the CSRF field the form is refused.
    let r = app.send(Req::new(Method::POST, &format!("/m/register/houses/{house}/persons")).header("cookie", &mobile.cookie).form(&[("name", "赵六"), ("citizen_id", &good)])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn moving_out_and_in_keeps_the_history(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    let worker = app.user("a.worker", Role::GridWorker, &p.grid_a).await;
    let mobile = Browser::of(&app, &worker).await;
    let from = house_in(&app, &worker, &p.grid_a, "解放路 3 号 101").await;
    let to = house_in(&app, &worker, &p.grid_a, "解放路 5 号 202").await;
    let id = cid("19700101", 11);
    let person = person_in(&app, &worker, from, "周建华", &id).await;
    // Out of the first house: find the other by address, pick it.
    let form = mobile.get(&format!("/m/register/persons/{person}/move?address={}", crate::urlencode("解放路 5"))).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(&format!("value=\"{to}\"")) && !form.body.contains(&format!("name=\"to\" value=\"{from}\"")), "{}", form.body);
    let r = mobile.post(&format!("/m/register/persons/{person}/move"), &[("to", &to.to_string()), ("version", "1")]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, Some(format!("/m/register/houses/{to}?moved=1").as_str())));
    assert!(mobile.get(&format!("/m/register/houses/{to}")).await.body.contains("周建华"));
    assert!(!mobile.get(&format!("/m/register/houses/{from}")).await.body.contains("周建华"));
    // Back in from elsewhere, by ID number.
    let r = mobile.post(&format!("/m/register/houses/{from}/move-in"), &[("citizen_id", &id)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = mobile.post(&format!("/m/register/houses/{from}/move-in"), &[("citizen_id", &id)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("该人员已住在此房屋"), "{}", r.body);
    let r = mobile.post(&format!("/m/register/houses/{from}/move-in"), &[("citizen_id", &cid("19700101", 99))]).await;
    assert!(r.body.contains("您的辖区内没有该身份证号码的人员"), "{}", r.body);
    // One person, whose history holds the creation and both moves.
    let detail = mobile.get(&format!("/register/persons/{person}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.body.matches("迁出/迁入").count(), 2 * 2, "two moves, each on house_id and on the lives link: {}", detail.body);
    assert!(detail.body.contains("新增人员"));
    let old_house = mobile.get(&format!("/register/houses/{to}")).await;
    assert!(old_house.body.contains("居住人员"), "the house's side of the move: {}", old_house.body);
}

async fn a_worker_cannot_open_another_grids_house(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    let staff = app.user("c.staff", Role::CommunityStaff, &p.community).await;
    let worker = app.user("a.worker", Role::GridWorker, &p.grid_a).await;
    let house_b = house_in(&app, &staff, &p.grid_b, "人民路 66 号").await;
    let person_b = person_in(&app, &staff, house_b, "孙丽", &cid("19900909", 21)).await;
    let mobile = Browser::of(&app, &worker).await;
    let denied0 = app.audit_count("a.worker", "denied").await;
    for uri in [
        format!("/m/register/houses/{house_b}"),
        format!("/m/register/houses/{house_b}/persons/new"),
        format!("/m/register/persons/{person_b}/edit"),
        format!("/register/houses/{house_b}"),
        format!("/register/persons/{person_b}"),
        format!("/register/persons?area={}", p.grid_b),
    ] {
        let r = mobile.get(&uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!r.body.contains("人民路 66 号") && !r.body.contains("孙丽"), "{uri}");
    }
    let r = mobile.post(&format!("/m/register/persons/{person_b}/move"), &[("to", &house_b.to_string()), ("version", "1")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = mobile.post(&format!("/m/register/houses/{house_b}/persons"), &[("name", "冒名"), ("citizen_id", &cid("19900909", 23))]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(app.audit_count("a.worker", "denied").await >= denied0 + 8, "every attempt is audited as denied");
    // Grid A's own lists never show grid B's rows.
    assert!(!mobile.get("/register/persons").await.body.contains("孙丽"));
    assert!(!mobile.get("/m/register").await.body.contains("人民路 66 号"));
    // A volunteer has no register at all.
    let volunteer = app.user("a.vol", Role::Volunteer, &p.grid_a).await;
    let v = Browser::of(&app, &volunteer).await;
    assert_eq!(v.get("/register/persons").await.status, StatusCode::NOT_FOUND);
    assert_eq!(v.get("/m/register").await.status, StatusCode::NOT_FOUND);
    assert!(!v.get("/").await.body.contains("href=\"/register/persons\""), "no nav entry");
}

async fn the_person_page_masks_and_unmasking_needs_a_reason(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    let staff = app.user("c.staff", Role::CommunityStaff, &p.community).await;
    let house = house_in(&app, &staff, &p.grid_a, "新华路 1 号").await;
    let id = cid("19491231", 2);
    let person = person_in(&app, &staff, house, "钱学文", &id).await;
    let desk = Browser::of(&app, &staff).await;
    let page = desk.get(&format!("/register/persons/{person}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("{}********{}", &id[..6], &id[14..])) && page.body.contains("139****5678"), "{}", page.body);
    assert!(!page.body.contains(&id) && !page.body.contains("13912345678"));
    assert!(page.body.contains("action=\"/register/persons/") && page.body.contains("name=\"reason\""));
    let sensitive = |app: &TestApp| {
        let q = store::audit::AuditQuery { actor: Some("c.staff".into()), action: Some("read_sensitive".into()), outcome: Some("ok".into()), limit: 100, ..Default::default() };
        let db = app.db.clone();
        async move { db.audit_rows_for_tests(&q).await.expect("audit").len() }
    };
    // No reason: refused, nothing shown, nothing audited as read.
    let r = desk.post(&format!("/register/persons/{person}/unmask"), &[("what", "citizen_id"), ("reason", " ")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("请填写查看事由") && !r.body.contains(&id), "{}", r.body);
    assert_eq!(sensitive(&app).await, 0);
    // With a reason: shown once, audited.
    let r = desk.post(&format!("/register/persons/{person}/unmask"), &[("what", "citizen_id"), ("reason", "核实户籍信息")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&id) && r.body.contains("已记入审计"), "{}", r.body);
    let r = desk.post(&format!("/register/persons/{person}/unmask"), &[("what", "phone"), ("reason", "电话回访")]).await;
    assert!(r.body.contains("13912345678"));
    assert_eq!(sensitive(&app).await, 2);
    // Shown once: the next read is masked again.
    assert!(!desk.get(&format!("/register/persons/{person}")).await.body.contains(&id));
    // The household part and the house link.
    assert!(page.body.contains("未登记户") && page.body.contains(&format!("/register/houses/{house}")));
}

async fn lists_filter_and_page(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    let staff = app.user("c.staff", Role::CommunityStaff, &p.community).await;
    let ha = house_in(&app, &staff, &p.grid_a, "育才路 10 号").await;
    let hb = house_in(&app, &staff, &p.grid_b, "东风路 20 号").await;
    for i in 0..55u32 {
        person_in(&app, &staff, ha, &format!("测试甲{i:02}"), &cid("19800101", 100 + i)).await;
    }
    person_in(&app, &staff, hb, "吴桂英", &cid("19800101", 300)).await;
    let desk = Browser::of(&app, &staff).await;
    let rows = |r: &Reply| r.body.matches("<tr><td><a href=\"/register/persons/").count();
    let first = desk.get("/register/persons").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(rows(&first), 50);
    let next = first.body.split("href=\"").find(|s| s.starts_with("/register/persons?after=")).and_then(|s| s.split('"').next()).expect("a next link").to_string();
    let second = desk.get(&next.replace("&amp;", "&")).await;
    assert_eq!(rows(&second), 6);
    assert!(second.body.contains("吴桂英") && !second.body.contains("rel=\"next\""));
    // Filters: name, address, area; the export link carries them.
    let by_name = desk.get(&format!("/register/persons?name={}", crate::urlencode("吴"))).await;
    assert_eq!(rows(&by_name), 1);
    let export = format!("/api/v1/persons/export?format=xlsx&#38;name={}", crate::urlencode("吴"));
    assert!(by_name.body.contains(&export), "{}", by_name.body);
    let by_address = desk.get(&format!("/register/persons?address={}", crate::urlencode("东风"))).await;
    assert_eq!(rows(&by_address), 1);
    let by_area = desk.get(&format!("/register/persons?area={}&name={}", p.grid_b, crate::urlencode("测试"))).await;
    assert_eq!(rows(&by_area), 0);
    assert!(desk.get("/register/persons?area=12x").await.body.contains("区划编码格式不正确"));
    // Houses, households and organisations list too.
    let houses = desk.get(&format!("/register/houses?address={}", crate::urlencode("育才"))).await;
    assert!(houses.body.contains("育才路 10 号") && !houses.body.contains("东风路 20 号"));
    assert_eq!(desk.get("/register/households").await.status, StatusCode::OK);
    assert_eq!(desk.get("/register/organisations").await.status, StatusCode::OK);
    // The house page lists its people, masked.
    let house = desk.get(&format!("/register/houses/{hb}")).await;
    assert!(house.body.contains("吴桂英") && house.body.contains("139****5678"));
    // The operator reads the register; the English switch works.
    let op = app.page("/register/persons?lang=en", Some("lang=en")).await;
    assert_eq!(op.status, StatusCode::OK);
    assert!(op.body.contains("Persons") && op.body.contains("Citizen ID number"));
}

async fn html_in_a_name_is_escaped(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let p = places(&app);
    let worker = app.user("a.worker", Role::GridWorker, &p.grid_a).await;
    let mobile = Browser::of(&app, &worker).await;
    let r = mobile.post("/m/register/houses", &[("address", "<img src=x onerror=alert(1)>路")]).await;
    let house = id_in(r.location(), "/m/register/houses/");
    let r = mobile.post(&format!("/m/register/houses/{house}/persons"), &[("name", "<script>alert(1)</script>"), ("citizen_id", &cid("19850615", 7))]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    for uri in [format!("/m/register/houses/{house}"), "/register/persons".to_string(), format!("/register/houses/{house}"), "/m/register".to_string()] {
        let page = mobile.get(&uri).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        assert!(!page.body.contains("<script>alert(1)</script>") && !page.body.contains("<img src=x"), "{uri}: {}", page.body);
        assert!(page.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;") || page.body.contains("&#60;img src=x"), "{uri}");
    }
}
