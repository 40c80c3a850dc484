//! Areas, grids, the map and the web shell.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use domain::Level;
use serde_json::Value;
use server::{AppState, ServerConfig};
use store::{Db, Dialect};
use tower::ServiceExt;

use crate::{Req, TestApp, on_both_backends};

on_both_backends!(
    area_detail_has_ancestry_children_and_team,
    lists_filter_by_parent_and_level,
    geometry_is_geojson,
    locate_finds_grids_and_refuses_bad_points,
    index_follows_changes_from_other_writers,
    ui_pages_render_in_both_languages,
);

async fn area_detail_has_ancestry_children_and_team(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let grid = app.first(Level::Grid).clone();
    let r = app.get(&format!("/api/v1/areas/{}", grid.code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["area"]["code"], grid.code.as_str());
    assert_eq!(v["area"]["level"], "grid");
    let ancestry: Vec<&str> = v["ancestry"].as_array().expect("ancestry").iter().map(|a| a["code"].as_str().unwrap_or("")).collect();
    let expected: Vec<String> = grid.code.ancestry().iter().map(ToString::to_string).collect();
    assert_eq!(ancestry, expected);
    let team: Vec<&str> = v["team"].as_array().expect("team").iter().map(|m| m["name"].as_str().unwrap_or("")).collect();
    let expected: Vec<&str> = app.demo.team.iter().filter(|m| m.area == grid.code).map(|m| m.name.as_str()).collect();
    assert_eq!(team, expected);
    assert_eq!(v["team"][0]["role"], "grid_leader");
    assert_eq!(v["team"][0]["role_name"], "网格长");

    // The district's children are its 12 streets, with grid counts that add up to 628.
    let v = app.get("/api/v1/areas/430503").await.json();
    let children = v["children"].as_array().expect("children");
    assert_eq!(children.len(), 12);
    assert_eq!(children.iter().map(|c| c["grid_count"].as_i64().unwrap_or(0)).sum::<i64>(), 628);
    assert!(v["ancestry"].as_array().expect("ancestry").is_empty());

    app.get("/api/v1/areas/430503999").await.assert_problem(StatusCode::NOT_FOUND, "area_not_found");
    app.get("/api/v1/areas/43050x").await.assert_problem(StatusCode::BAD_REQUEST, "invalid_area_code");
    app.get("/api/v1/nothing-here").await.assert_problem(StatusCode::NOT_FOUND, "route_not_found");
    let r = app.send(Req::new(Method::DELETE, "/api/v1/areas/430503").token(&app.operator.token)).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(app.db.count_areas().await.expect("count"), 749, "nothing changed");
}

async fn lists_filter_by_parent_and_level(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let all = app.get("/api/v1/areas").await.json();
    assert_eq!(all["items"].as_array().expect("items").len(), 749);
    assert!(all["next_after"].is_null());
    // Pages of 300 walk the whole list once, in code order.
    let mut seen: Vec<String> = Vec::new();
    let mut url = "/api/v1/areas?limit=300".to_string();
    loop {
        let page = app.get(&url).await.json();
        seen.extend(page["items"].as_array().expect("items").iter().map(|a| a["code"].as_str().unwrap_or("").to_string()));
        match page["next_after"].as_str() {
            Some(next) => url = format!("/api/v1/areas?limit=300&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 749);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    app.get("/api/v1/areas?limit=0").await.assert_problem(StatusCode::BAD_REQUEST, "invalid_limit");
    app.get("/api/v1/areas?limit=abc").await.assert_problem(StatusCode::BAD_REQUEST, "invalid_limit");
    let grids = app.get("/api/v1/areas?level=grid").await.json();
    assert_eq!(grids["items"].as_array().expect("items").len(), 628);
    let ded = app.get("/api/v1/areas?level=dedicated").await.json();
    let ded = ded["items"].as_array().expect("items");
    assert_eq!(ded.len(), 10);
    assert!(ded.iter().all(|a| a["kind"].is_string()));
    let comm = app.first(Level::Community).code.clone();
    let kids = app.get(&format!("/api/v1/areas?parent={comm}&level=grid")).await.json();
    let kids = kids["items"].as_array().expect("items");
    let expected = app.demo.areas.iter().filter(|a| a.level == Level::Grid && a.parent.as_ref() == Some(&comm)).count();
    assert_eq!(kids.len(), expected);
    assert!(kids.iter().all(|k| k["code"].as_str().is_some_and(|c| c.starts_with(comm.as_str()))));
    let within = app.get("/api/v1/areas?within=430503001&level=community").await.json();
    assert!(within["items"].as_array().expect("items").iter().all(|a| a["parent"] == "430503001"));
    app.get("/api/v1/areas?level=province").await.assert_problem(StatusCode::BAD_REQUEST, "invalid_level");
    app.get("/api/v1/areas?parent=abc").await.assert_problem(StatusCode::BAD_REQUEST, "invalid_area_code");
}

async fn geometry_is_geojson(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let grid = app.first(Level::Grid).clone();
    let r = app.get(&format!("/api/v1/areas/{}/geometry", grid.code)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/geo+json");
    let f = r.json();
    assert_eq!(f["type"], "Feature");
    assert_eq!(f["properties"]["code"], grid.code.as_str());
    assert_eq!(f["properties"]["parent"], grid.parent.as_ref().map(|p| p.to_string()).unwrap_or_default());
    let back = domain::geometry::geometry_from_geojson(&f["geometry"]).expect("valid geometry");
    assert_eq!(back, grid.geometry);
    let fc = app.get("/api/v1/geometry?level=grid").await.json();
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["features"].as_array().expect("features").len(), 628);
    app.get("/api/v1/areas/430503001999/geometry").await.assert_problem(StatusCode::NOT_FOUND, "area_not_found");
}

async fn locate_finds_grids_and_refuses_bad_points(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let v = app.get("/api/v1/locate?lat=27.24&lon=111.46").await.json();
    assert_eq!(v["status"], "assigned");
    let code = v["grid"]["code"].as_str().expect("grid code").to_string();
    let anc: Vec<&str> = v["ancestry"].as_array().expect("ancestry").iter().map(|a| a.as_str().unwrap_or("")).collect();
    assert_eq!(anc, [&code[..6], &code[..9], &code[..12]]);
    let grid = app.demo.areas.iter().find(|a| a.code.as_str() == code).expect("a demo grid");
    assert_eq!(v["grid"]["name"], grid.name.as_str());

    let v = app.get("/api/v1/locate?lat=39.9&lon=116.4").await.json();
    assert_eq!(v["status"], "unassigned");
    assert!(v["grid"].is_null());
    assert!(v["ancestry"].as_array().expect("ancestry").is_empty());

    // The middle of a dedicated grid: listed, and it still has its basic grid.
    let ded = app.first(Level::Dedicated).clone();
    let b = ded.bbox().expect("bbox");
    let (lat, lon) = ((b.min().y + b.max().y) / 2.0, (b.min().x + b.max().x) / 2.0);
    let v = app.get(&format!("/api/v1/locate?lat={lat}&lon={lon}")).await.json();
    assert_eq!(v["status"], "assigned");
    assert_eq!(v["dedicated"][0]["code"], ded.code.as_str());
    assert_eq!(v["dedicated"][0]["kind"], ded.kind.map(|k| k.as_str()).unwrap_or_default());
    assert!(v["grid"]["code"].as_str().is_some_and(|c| c.starts_with(&ded.code.as_str()[..12])));

    for (q, code) in [
        ("lat=91&lon=111", "invalid_latitude"),
        ("lat=-90.5&lon=111", "invalid_latitude"),
        ("lat=NaN&lon=111", "invalid_latitude"),
        ("lat=abc&lon=111", "invalid_latitude"),
        ("lon=111", "invalid_latitude"),
        ("lat=27&lon=181", "invalid_longitude"),
        ("lat=27&lon=inf", "invalid_longitude"),
        ("lat=27&lon=", "invalid_longitude"),
    ] {
        app.get(&format!("/api/v1/locate?{q}")).await.assert_problem(StatusCode::BAD_REQUEST, code);
    }
}

async fn index_follows_changes_from_other_writers(d: Dialect) {
    // A second handle on the same store stands for another process.
    let Some(app) = TestApp::with_demo(d).await else { return };
    let follower = app.state.spawn_follower();
    // Far from the demo district, another writer adds a district with one grid.
    let (lat, lon) = (30.05, 120.05);
    assert_eq!(app.get(&format!("/api/v1/locate?lat={lat}&lon={lon}")).await.json()["status"], "unassigned");
    let sq = |code: &str, level: &str, parent: &str| {
        let parent = if parent.is_empty() { "null".to_string() } else { format!("\"{parent}\"") };
        format!(
            r#"{{"type":"Feature","properties":{{"code":"{code}","name":"新{code}","level":"{level}","parent":{parent}}},
            "geometry":{{"type":"Polygon","coordinates":[[[120,30],[120.1,30],[120.1,30.1],[120,30.1],[120,30]]]}}}}"#
        )
    };
    let fc = format!(
        r#"{{"type":"FeatureCollection","features":[{},{},{},{}]}}"#,
        sq("330102", "district", ""),
        sq("330102001", "street", "330102"),
        sq("330102001001", "community", "330102001"),
        sq("330102001001001", "grid", "330102001001"),
    );
    let other = Db::open(app.db.url()).await.expect("second handle");
    other.import_areas(&fc).await.expect("import");
    let mut found = Value::Null;
    for _ in 0..100 {
        found = app.get(&format!("/api/v1/locate?lat={lat}&lon={lon}")).await.json();
        if found["status"] == "assigned" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    follower.abort();
    assert_eq!(found["grid"]["code"], "330102001001001", "{found}");
}

async fn ui_pages_render_in_both_languages(d: Dialect) {
    let Some(app) = TestApp::with_demo(d).await else { return };
    let grid = app.first(Level::Grid).clone();
    let comm = app.first(Level::Community).clone();
    let pages = [
        "/".to_string(),
        "/map".to_string(),
        "/api/docs".to_string(),
        "/report".to_string(),
        "/incidents".to_string(),
        "/account/password".to_string(),
        "/areas/430503".to_string(),
        format!("/areas/{}", comm.code),
        format!("/areas/{}", grid.code),
    ];
    for (cookie, must) in [(None, "网格地图"), (Some("lang=en"), "Grid map")] {
        for p in &pages {
            let r = app.page(p, cookie).await;
            assert_eq!(r.status, StatusCode::OK, "{p}");
            assert!(r.content_type().starts_with("text/html"), "{p}");
            assert!(r.body.contains(must), "{p} in {cookie:?} lacks {must}");
            assert!(!r.body.contains("⟦missing text⟧"), "{p} in {cookie:?} has an untranslated key");
        }
    }
    let home = app.page("/", None).await.body;
    assert!(home.contains("<div class=\"num\">628</div>"), "home shows the grid count");
    let page = app.page(&format!("/areas/{}", grid.code), None).await.body;
    assert!(page.contains(&grid.name));
    let leader = app.demo.team.iter().find(|m| m.area == grid.code).expect("leader");
    assert!(page.contains(&leader.name), "the grid page lists its team");
    assert!(page.contains("网格长"));
    // The children filter (htmx partial) narrows the list.
    let all = app.page(&format!("/areas/{}/children", comm.code), None).await.body;
    let first_child = app.demo.areas.iter().find(|a| a.parent.as_ref() == Some(&comm.code)).expect("child");
    assert!(all.contains(&first_child.name));
    let filtered = app.page(&format!("/areas/{}/children?q=999999", comm.code), None).await.body;
    assert!(!filtered.contains(&first_child.name) && filtered.contains("0 /"));
    // Locate partial.
    let r = app.page("/map/locate?lat=27.24&lon=111.46", None).await.body;
    assert!(r.contains("所属网格") && r.contains("data-code=\"4305030"), "{r}");
    let r = app.page("/map/locate?lat=999&lon=111.46", None).await.body;
    assert!(r.contains("latitude"), "{r}");
    // The language switch sets a cookie and only redirects locally.
    let r = app.get("/lang?set=en&next=/map").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/map"));
    assert!(r.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("lang=en")));
    let r = app.get("/lang?set=en&next=//evil.example").await;
    assert_eq!(r.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/"));
    // Unknown pages and areas.
    let r = app.page("/areas/430503999", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("操作编号"), "error pages show the operation id");
    assert_eq!(app.page("/no/such/page", None).await.status, StatusCode::NOT_FOUND);
    // /areas goes to the district.
    let r = app.page("/areas", None).await;
    assert_eq!(r.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/areas/430503"));
}

#[tokio::test]
async fn assets_are_embedded_and_cached_forever() {
    let Some(app) = TestApp::with_demo(Dialect::Sqlite).await else { return };
    let page = app.page("/map", None).await.body;
    for name in ["leaflet.js", "leaflet.css", "htmx.min.js", "map.js", "app.css"] {
        let url = server::assets::url(name);
        assert!(page.contains(&url), "the map page links {url}");
        let r = app.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}");
        assert!(r.body.len() > 500, "{url} has content");
        assert_eq!(
            r.headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()),
            Some("public, max-age=31536000, immutable")
        );
    }
    let r = app.get(&server::assets::url("leaflet.js")).await;
    assert!(r.content_type().starts_with("text/javascript"));
    assert!(r.body.contains("Leaflet"));
    let r = app.get(&server::assets::url("images/layers.png")).await;
    assert_eq!(r.content_type(), "image/png");
    assert_eq!(app.get(&server::assets::url("nope.js")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn openapi_document_is_stable_and_complete() {
    let doc = serde_json::to_value(server::api::openapi()).expect("openapi");
    for path in ["/api/v1/areas", "/api/v1/areas/{code}", "/api/v1/areas/{code}/geometry", "/api/v1/geometry", "/api/v1/locate"] {
        assert!(doc["paths"][path]["get"]["operationId"].is_string(), "{path} is documented");
    }
    let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(snapshot.parent().expect("dir")).expect("dir");
        std::fs::write(&snapshot, &text).expect("write snapshot");
    }
    let stored = std::fs::read_to_string(&snapshot).expect("tests/snapshots/openapi.json exists (UPDATE_SNAPSHOTS=1 writes it)");
    assert!(stored == text, "the OpenAPI document changed; review the diff and rerun with UPDATE_SNAPSHOTS=1");
    // The server serves the same document.
    let Some(app) = TestApp::with_demo(Dialect::Sqlite).await else { return };
    let served = app.get("/api/v1/openapi.json").await.json();
    assert_eq!(served, doc);
}

#[tokio::test]
async fn an_empty_store_still_serves() {
    let Some(db) = store::testing::fresh(Dialect::Sqlite).await else { return };
    let state = AppState::new(db, ServerConfig::default()).await.expect("state");
    let router = server::router(state);
    let get = |uri: &'static str| {
        let router = router.clone();
        async move { router.oneshot(Request::get(uri).body(Body::empty()).expect("request")).await.expect("response") }
    };
    assert_eq!(get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(get("/login").await.status(), StatusCode::OK);
    assert_eq!(get("/api/v1/locate?lat=27.24&lon=111.46").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(get("/").await.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/login?next=/"));
}
