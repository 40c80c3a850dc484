//! The `civicgrid` binary as an operator uses it: real processes, real stores.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use store::Dialect;
use store::testing::fresh_url;

fn civicgrid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_civicgrid"))
        .args(args)
        .env_remove("CIVICGRID_DB")
        .env_remove("CIVICGRID_CONFIG")
        .env("CIVICGRID_LOG", "warn")
        // A small share of the demo register keeps these tests fast (1 % ≈ 2,700 people).
        .env("CIVICGRID_DEMO_POPULATION", "0.01")
        .output()
        .expect("run civicgrid")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("civicgrid-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn http_get(addr: &str, path: &str) -> String {
    http_send(addr, "GET", path, &[], "")
}

fn http_send(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// A `civicgrid serve --demo` process on a free port, stopped when dropped.
struct Server {
    child: std::process::Child,
    addr: String,
    /// What it printed before it served.
    lines: Vec<String>,
}

impl Server {
    fn start(db: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_civicgrid"))
            .args(["--db", db, "serve", "--demo", "--listen", "127.0.0.1:0"])
            .env("CIVICGRID_LOG", "warn")
        // A small share of the demo register keeps these tests fast (1 % ≈ 2,700 people).
        .env("CIVICGRID_DEMO_POPULATION", "0.01")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if let Some(rest) = line.strip_prefix("civicgrid is serving at http://") {
                let addr = rest.trim_end_matches('/').to_string();
                return Server { child, addr, lines };
            }
            lines.push(line);
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("civicgrid serve never said where it serves; it printed {lines:?}");
    }
}

impl Server {
    /// The password the demo printed for an account.
    fn password_of(&self, username: &str) -> String {
        self.lines
            .iter()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some(username)).then(|| w.next().unwrap_or("").to_string())
            })
            .unwrap_or_else(|| panic!("the demo printed no password for {username}: {:?}", self.lines))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_with_demo_is_healthy_and_answers() {
    let dir = temp_dir("serve");
    let db = format!("sqlite://{}", dir.join("cg.db").display());
    let started = Instant::now();
    let server = Server::start(&db);
    assert!(server.lines.iter().any(|l| l.contains("628 basic grids")), "the demo was loaded first: {:?}", server.lines);
    let health = http_get(&server.addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    eprintln!("healthy {:?} after start (debug build, demo included)", started.elapsed());
    let refused = http_get(&server.addr, "/api/v1/locate?lat=27.25&lon=111.45");
    assert!(refused.starts_with("HTTP/1.1 401"), "the API needs a login: {refused}");
    // The demo printed one account per role with a password made for this run.
    let password = server.password_of("dispatcher");
    let login = http_send(
        &server.addr,
        "POST",
        "/api/v1/session",
        &[("content-type", "application/json")],
        &format!(r#"{{"username":"dispatcher","password":"{password}"}}"#),
    );
    assert!(login.starts_with("HTTP/1.1 201"), "{login}");
    let token = login.split("\"token\":\"").nth(1).and_then(|t| t.split('"').next()).expect("token").to_string();
    let located = http_send(&server.addr, "GET", "/api/v1/locate?lat=27.25&lon=111.45", &[("authorization", &format!("Bearer {token}"))], "");
    assert!(located.contains("\"status\":\"assigned\""), "{located}");
    // The demo's year of incidents, in the district's key figures.
    let kpis = http_send(&server.addr, "GET", "/api/v1/kpis?from=2025-01-01&to=2027-12-31&by=street", &[("authorization", &format!("Bearer {token}"))], "");
    let body: serde_json::Value = serde_json::from_str(kpis.split("\r\n\r\n").nth(1).expect("body")).expect("json");
    assert_eq!(body["total"]["reported"], 1310 + 3, "{}", body["total"]);
    // The demo's department handler has a fresh dispatch in its inbox.
    let dept = login_as(&server, "dept");
    let inbox = http_send(&server.addr, "GET", "/api/v1/inbox?unread=true", &[("authorization", &format!("Bearer {dept}"))], "");
    assert!(inbox.contains("\"kind\":\"dispatched\""), "{inbox}");
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(12));
    drop(server);

    // Serving again on the same store reuses it: the demo is not loaded twice.
    let out = civicgrid(&["--db", &db, "demo"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("already holds 749 areas"), "{}", text(&out.stderr));
}

const BAD: &str = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"code":"430503","name":"区","level":"district","parent":null},
  "geometry":{"type":"Polygon","coordinates":[[[111,27],[112,27],[112,28],[111,28],[111,27]]]}},
 {"type":"Feature","properties":{"code":"430504001","name":"街道","level":"street","parent":"430503"},
  "geometry":{"type":"Polygon","coordinates":[[[111,27],[111.5,27],[111.5,27.5],[111,27.5],[111,27]]]}},
 {"type":"Feature","properties":{"code":"430503002","name":"街道","level":"street","parent":"430503"},
  "geometry":{"type":"Polygon","coordinates":[[[111,27],[111.5,27],[111,27.5],[111.5,27.5],[111,27]]]}}
]}"#;

#[test]
fn a_bad_file_imports_nothing_and_names_every_bad_feature() {
    let dir = temp_dir("import");
    let db = format!("sqlite://{}", dir.join("cg.db").display());
    let file = dir.join("bad.geojson");
    std::fs::write(&file, BAD).expect("write");
    let out = civicgrid(&["--db", &db, "areas", "import", file.to_str().expect("path")]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("feature 1 (430504001): code_not_under_parent"), "{err}");
    assert!(err.contains("feature 2 (430503002): invalid_geometry"), "{err}");
    assert!(err.contains("2 problem(s) found; nothing was imported"), "{err}");
    let out = civicgrid(&["--db", &db, "areas", "export"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["features"].as_array().map(Vec::len), Some(0), "nothing was stored");

    // Malformed JSON, and a file that is missing.
    std::fs::write(&file, "{\"type\":").expect("write");
    let out = civicgrid(&["--db", &db, "areas", "import", file.to_str().expect("path")]);
    assert!(!out.status.success() && text(&out.stderr).contains("malformed_json"), "{}", text(&out.stderr));
    let out = civicgrid(&["--db", &db, "areas", "import", "/no/such/file.geojson"]);
    assert!(!out.status.success() && text(&out.stderr).contains("cannot read /no/such/file.geojson"));

    // The good part alone imports, from standard input too.
    let good: serde_json::Value = serde_json::from_str(BAD).expect("json");
    let good = serde_json::json!({"type": "FeatureCollection", "features": [good["features"][0]]});
    let mut child = Command::new(env!("CARGO_BIN_EXE_civicgrid"))
        .args(["--db", &db, "areas", "import", "-"])
        .env("CIVICGRID_LOG", "warn")
        // A small share of the demo register keeps these tests fast (1 % ≈ 2,700 people).
        .env("CIVICGRID_DEMO_POPULATION", "0.01")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(good.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("imported 1 new and 0 updated"), "{}", text(&out.stdout));
}

#[test]
fn unknown_schemes_and_unreachable_servers_get_clear_messages() {
    let out = civicgrid(&["--db", "mysql://root:pw@127.0.0.1/test", "demo"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("unknown database URL scheme") && err.contains("sqlite://"), "{err}");
    assert!(!err.contains("pw@"), "passwords are never printed: {err}");
    let out = civicgrid(&["--db", "postgres://postgres:secret@127.0.0.1:1/test", "demo"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("cannot reach the database") && err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    // A path of this run's own: a shared one may hold another build's newer schema.
    let db = format!("sqlite://{}", temp_dir("scale").join("x.db").display());
    let out = civicgrid(&["demo", "--scale", "0", "--db", &db]);
    assert!(text(&out.stderr).contains("--scale must be from 1 to 100"), "{}", text(&out.stderr));
}

#[test]
fn config_shows_sources_and_hides_secrets() {
    let out = Command::new(env!("CARGO_BIN_EXE_civicgrid"))
        .args(["--db", "postgres://civic:hunter2@db:5432/civic", "config"])
        .env("CIVICGRID_LISTEN", "0.0.0.0:9999")
        .env_remove("CIVICGRID_CONFIG")
        .output()
        .expect("run");
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(s.contains("db = \"postgres://civic:***@db:5432/civic\"  # from flag --db"), "{s}");
    assert!(s.contains("listen = \"0.0.0.0:9999\"  # from env CIVICGRID_LISTEN"), "{s}");
    assert!(!s.contains("hunter2"));
}

/// The demo's year of incidents: about 1,310 reports at scale 1, about 97 % closed, some
/// late, returned and reworked, a few still open, ratings mostly 4-5;
/// `civicgrid kpi rebuild` recomputes the rollup to the same rows.
#[tokio::test]
async fn the_demo_has_a_year_of_incident_history() {
    for dialect in store::testing::BACKENDS {
        let Some(url) = fresh_url(dialect).await else { continue };
        let out = civicgrid(&["--db", &url, "demo", "--seed", "3"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let printed = text(&out.stdout);
        assert!(printed.contains("incident history: 1310 incidents reported over the last 365 days"), "{printed}");
        // 1 % of the demo register (CIVICGRID_DEMO_POPULATION in these tests): about 2,700 people.
        let people: u64 = printed
            .lines()
            .find_map(|l| l.strip_prefix("register: ").and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()))
            .unwrap_or_else(|| panic!("the demo loads the register: {printed}"));
        assert!((2_000..=3_500).contains(&people), "{printed}");
        let db = store::Db::open(&url).await.expect("open");
        let rows = db.kpi_rollup_rows().await.expect("rollup");
        let mut district = domain::kpi::Counters::default();
        for (depth, department, _, _, c) in &rows {
            if *depth == 6 && department == "*" {
                district.add(c);
            }
        }
        // A year of history, and the three open items made for the demo's own accounts.
        assert_eq!(district.reported, 1310 + 3);
        assert!(printed.contains("open work for the demo accounts: 3 incidents"), "{printed}");
        let closure = district.closed as f64 / district.reported as f64;
        assert!((0.95..=0.99).contains(&closure), "closed {} of {}", district.closed, district.reported);
        assert!(district.late > 10 && district.returns > 5 && district.reworked > 5, "{district:?}");
        let mean = district.rating_sum as f64 / district.rated as f64;
        assert!(mean > 4.0 && district.satisfied * 10 > district.rated * 8, "{district:?}");
        let (closed, open) = db.incident_outcomes().await.expect("outcomes");
        assert_eq!(closed, district.closed);
        assert!((1..=60).contains(&open), "{open} open");
        let out = civicgrid(&["--db", &url, "kpi", "rebuild"]);
        assert!(out.status.success() && text(&out.stdout).contains("rollup rebuilt"), "{}", text(&out.stderr));
        assert_eq!(db.kpi_rollup_rows().await.expect("rollup"), rows);
        // The demo's department handler works for a real department: its history shows.
        let dept = db.account_by_username("dept").await.expect("read").expect("dept account");
        assert_eq!(dept.department.as_deref(), Some("cgj"));
        let handled = db.kpi_rollup_rows().await.expect("rollup").iter().filter(|r| r.0 == 6 && r.1 == "cgj").map(|r| r.4.reported).sum::<i64>();
        assert!(handled > 100, "incidents dispatched to the demo handler's department: {handled}");
        db.close().await;
    }
}

#[tokio::test]
async fn demo_and_export_on_postgres() {
    let Some(url) = fresh_url(Dialect::Postgres).await else { return };
    let out = civicgrid(&["--db", &url, "demo", "--seed", "4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("98 communities and villages, 628 basic grids, 10 dedicated grids"));
    let out = civicgrid(&["--db", &url, "areas", "export", "--level", "street"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let features = v["features"].as_array().expect("features");
    assert_eq!(features.len(), 12);
    assert!(features.iter().all(|f| f["properties"]["parent"] == "430503"));
    let out = civicgrid(&["--db", &url, "areas", "export", "--level", "county"]);
    assert!(!out.status.success() && text(&out.stderr).contains("unknown level"));
}

/// The map page, loaded in headless Chromium (Debian's `chromium`), runs its scripts and
/// draws the grids. Skipped, loudly, on a machine without Chromium.
#[test]
fn map_page_draws_in_headless_chromium() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| std::path::Path::new(p).exists());
    let Some(chromium) = chromium else {
        eprintln!("SKIPPED map_page_draws_in_headless_chromium: no Chromium here (apt-get install chromium)");
        return;
    };
    let dir = temp_dir("chromium");
    let db = format!("sqlite://{}", dir.join("cg.db").display());
    let server = Server::start(&db);
    // Sign in as the demo operator: a session made in the store, handed to Chromium as a
    // cookie by a one-shot responder on another port (cookies ignore ports).
    let session = tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        let store = store::Db::open(&db).await.expect("open the store");
        let acc = store.account_by_username("operator").await.expect("read").expect("the demo operator");
        store.create_session(acc.id, "chromium").await.expect("session").id
    });
    let handoff = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let handoff_addr = handoff.local_addr().expect("addr");
    let target = format!("http://{}/map", server.addr);
    // Serves every request (Chromium may also ask it for a favicon) until the test ends.
    std::thread::spawn(move || {
        for stream in handoff.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = write!(s, "HTTP/1.1 302 Found\r\nSet-Cookie: cg_session={session}; Path=/; HttpOnly\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let url = format!("http://{handoff_addr}/");
    let run = |extra: &[&str]| {
        Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
            .args(["--disable-component-update", "--disable-sync", "--window-size=1366,860", "--virtual-time-budget=10000"])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium")
    };
    let dom = text(&run(&["--dump-dom"]).stdout);
    assert!(dom.contains("leaflet-container"), "Leaflet started: {}", &dom[..dom.len().min(2000)]);
    assert!(dom.contains("data-ready=\"true\""), "every GeoJSON layer loaded and was drawn");
    assert!(dom.contains("<canvas"), "the grids are drawn on a canvas");
    assert!(dom.contains("坐标查询网格"), "the page is in Chinese");
    let shot = dir.join("map.png");
    run(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 30_000, "a drawn map, not a blank page ({} bytes)", png.len());
}

fn civicgrid_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_civicgrid"))
        .args(args)
        .env("CIVICGRID_LOG", "warn")
        // A small share of the demo register keeps these tests fast (1 % ≈ 2,700 people).
        .env("CIVICGRID_DEMO_POPULATION", "0.01")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    child.wait_with_output().expect("wait")
}

#[test]
fn users_tokens_and_the_audit_chain_from_the_command_line() {
    let dir = temp_dir("users");
    let db = format!("sqlite://{}", dir.join("cg.db").display());
    let out = civicgrid(&["--db", &db, "demo"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    for role in ["admin", "auditor", "operator", "dispatcher", "shiftlead", "dept", "street", "community", "gridleader", "gridworker", "volunteer", "apiclient"] {
        assert!(printed.lines().any(|l| l.trim_start().starts_with(&format!("{role} "))), "no demo account {role}: {printed}");
    }
    // Two runs never share passwords.
    let dir2 = temp_dir("users2");
    let other = text(&civicgrid(&["--db", &format!("sqlite://{}", dir2.join("cg.db").display()), "demo"]).stdout);
    let pw = |s: &str| s.lines().find(|l| l.trim_start().starts_with("admin ")).map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string());
    assert_ne!(pw(&printed), pw(&other));

    // user add reads the password and its confirmation from standard input.
    let out = civicgrid_stdin(&["--db", &db, "user", "add", "liu.yang", "--role", "grid_worker", "--area", "430503001"], "patrol-route-77\npatrol-route-77\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = civicgrid_stdin(&["--db", &db, "user", "add", "liu.qiang", "--role", "grid_worker", "--area", "430503001"], "patrol-route-77\npatrol-route-78\n");
    assert!(!out.status.success() && text(&out.stderr).contains("differ"), "{}", text(&out.stderr));
    let out = civicgrid_stdin(&["--db", &db, "user", "add", "liu.qiang", "--role", "grid_worker", "--area", "430503001"], "woaini1314\nwoaini1314\n");
    assert!(!out.status.success() && text(&out.stderr).contains("common"), "{}", text(&out.stderr));
    let out = civicgrid_stdin(&["--db", &db, "user", "add", "liu.qiang", "--role", "mayor", "--area", "430503001"], "patrol-route-77\npatrol-route-77\n");
    assert!(!out.status.success() && text(&out.stderr).contains("unknown role"));

    // token create prints the token alone.
    let out = civicgrid(&["--db", &db, "token", "create", "liu.yang", "--expires", "30"]);
    assert!(out.status.success());
    let token = text(&out.stdout);
    assert!(token.starts_with("cgt_") && token.trim().len() == 68 && token.lines().count() == 1, "{token:?}");
    let out = civicgrid_stdin(&["--db", &db, "user", "passwd", "liu.yang"], "another-route-88\nanother-route-88\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = civicgrid(&["--db", &db, "user", "disable", "liu.yang"]);
    assert!(out.status.success());

    // The audit chain is intact, and an edited row is caught by number.
    let out = civicgrid(&["--db", &db, "audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("intact"));
    tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        let store = store::Db::open(&db).await.expect("open");
        store.tamper_audit_for_tests(3, "nothing to see").await.expect("tamper");
    });
    let out = civicgrid(&["--db", &db, "audit", "verify"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("broken at row 3"), "{}", text(&out.stderr));
}

/// A bearer token for a demo account of a running server.
fn login_as(server: &Server, username: &str) -> String {
    login(&server.addr, username, &server.password_of(username))
}

/// POST one request on a fresh connection; None if the server is gone.
fn try_send(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<String> {
    try_request(addr, "POST", path, headers, body)
}

/// Send one request on a fresh connection; None if the server is gone.
fn try_request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn json_body(reply: &str) -> serde_json::Value {
    serde_json::from_str(reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")).unwrap_or_else(|e| panic!("not JSON ({e}): {reply}"))
}

fn login(addr: &str, username: &str, password: &str) -> String {
    let r = http_send(addr, "POST", "/api/v1/session", &[("content-type", "application/json")], &format!(r#"{{"username":"{username}","password":"{password}"}}"#));
    assert!(r.starts_with("HTTP/1.1 201"), "{r}");
    json_body(&r)["token"].as_str().expect("token").to_string()
}

/// Reports pour in; the server is killed with SIGKILL in the middle; after a restart every
/// report it acknowledged is there, exactly once.
fn acknowledged_reports_survive_sigkill(db: &str) {
    let mut server = Server::start(db);
    let password = server.password_of("operator");
    let token = login(&server.addr, "operator", &password);
    let addr = server.addr.clone();
    let body = |key: &str| format!(r#"{{"category":"C0101","description":"井盖缺失 {key}","location":{{"lat":27.2331,"lon":111.4529}},"source":"hotline"}}"#);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (addr, token, stop) = (addr.clone(), token.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let key = format!("kill-{w}-{n}");
                let bearer = format!("Bearer {token}");
                let headers = [("content-type", "application/json"), ("authorization", bearer.as_str()), ("idempotency-key", key.as_str())];
                match try_send(&addr, "/api/v1/incidents", &headers, &body(&key)) {
                    Some(r) if r.starts_with("HTTP/1.1 201") => acknowledged.push((key, json_body(&r)["id"].as_i64().expect("id"))),
                    Some(r) if r.is_empty() => break, // killed mid-answer: not acknowledged
                    Some(r) => panic!("a report was refused: {r}"),
                    None => break,
                }
            }
            acknowledged
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("wait");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged: Vec<(String, i64)> = writers.into_iter().flat_map(|w| w.join().expect("writer")).collect();
    assert!(acknowledged.len() > 20, "the burst got going before the kill ({} acknowledged)", acknowledged.len());

    let server = Server::start(db);
    let token = login(&server.addr, "operator", &password);
    let bearer = format!("Bearer {token}");
    // Every acknowledged report is stored: a retry of its key finds it (200, same id).
    for (key, id) in &acknowledged {
        let headers = [("content-type", "application/json"), ("authorization", bearer.as_str()), ("idempotency-key", key.as_str())];
        let r = try_send(&server.addr, "/api/v1/incidents", &headers, &body(key)).expect("answer");
        assert!(r.starts_with("HTTP/1.1 200"), "report {key} (#{id}) was acknowledged before the kill but is not stored: {r}");
        assert_eq!(json_body(&r)["id"].as_i64(), Some(*id), "{key}");
    }
    // … exactly once: no description appears twice among the stored incidents.
    let mut seen = std::collections::HashMap::<String, u32>::new();
    let mut before = String::new();
    loop {
        let page = json_body(&http_send(&server.addr, "GET", &format!("/api/v1/incidents?limit=500{before}"), &[("authorization", &bearer)], ""));
        for i in page["items"].as_array().expect("items") {
            // The burst's reports (the demo's own history is there too).
            let d = i["description"].as_str().expect("description");
            if d.starts_with("井盖缺失 kill-") {
                *seen.entry(d.to_string()).or_default() += 1;
            }
        }
        match page["next_before"].as_i64() {
            Some(b) => before = format!("&before={b}"),
            None => break,
        }
    }
    for (key, _) in &acknowledged {
        assert_eq!(seen.get(&format!("井盖缺失 {key}")), Some(&1), "{key} is stored exactly once");
    }
    assert!(seen.values().all(|n| *n == 1), "no report of the burst is stored twice");
    eprintln!("{} reports acknowledged before SIGKILL, all stored once; {} of the burst stored in all", acknowledged.len(), seen.len());
}

#[test]
fn acknowledged_reports_survive_sigkill_on_sqlite() {
    let dir = temp_dir("sigkill");
    acknowledged_reports_survive_sigkill(&format!("sqlite://{}", dir.join("cg.db").display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reports_survive_sigkill_on_postgres() {
    let Some(url) = fresh_url(Dialect::Postgres).await else { return };
    tokio::task::spawn_blocking(move || acknowledged_reports_survive_sigkill(&url)).await.expect("test");
}

/// Audited reads pour in; the server is killed with SIGKILL in the middle; afterwards every
/// read it answered has its row in the audit trail, exactly once, and the chain is whole.
fn answered_reads_keep_their_audit_rows_after_sigkill(db: &str) {
    let mut server = Server::start(db);
    let token = login_as(&server, "admin");
    let addr = server.addr.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (addr, token, stop) = (addr.clone(), token.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let mut answered = Vec::new();
            let bearer = format!("Bearer {token}");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match try_request(&addr, "GET", "/api/v1/accounts/5", &[("authorization", bearer.as_str())], "") {
                    Some(r) if r.starts_with("HTTP/1.1 200") => {
                        let op = r
                            .lines()
                            .find_map(|l| l.strip_prefix("x-operation-id: "))
                            .expect("an operation id on the answer")
                            .trim()
                            .to_string();
                        answered.push(op);
                    }
                    Some(r) if r.is_empty() => break, // killed mid-answer: never answered
                    Some(r) => panic!("a read was refused: {r}"),
                    None => break,
                }
            }
            answered
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("wait");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered: Vec<String> = readers.into_iter().flat_map(|r| r.join().expect("reader")).collect();
    assert!(answered.len() > 20, "the reads got going before the kill ({} answered)", answered.len());

    // The next process to open the store imports what the killed one left in its spool.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let rows = runtime.block_on(async {
        let store = store::Db::open(db).await.expect("open");
        assert!(matches!(store.verify_audit().await.expect("verify"), store::audit::ChainCheck::Intact { .. }));
        let mut rows = Vec::new();
        let mut before = None;
        loop {
            let q = store::audit::AuditQuery { action: Some("account.read".into()), before_seq: before, limit: 1000, ..Default::default() };
            let page = store.audit_rows_for_tests(&q).await.expect("rows");
            let Some(last) = page.last() else { break };
            before = Some(last.seq);
            rows.extend(page);
        }
        rows
    });
    let mut per_op = std::collections::HashMap::<&str, u32>::new();
    for r in &rows {
        *per_op.entry(r.entry.operation_id.as_str()).or_default() += 1;
    }
    for op in &answered {
        assert_eq!(per_op.get(op.as_str()), Some(&1), "the read {op} was answered before the kill: its audit row is there once");
    }
    assert!(per_op.values().all(|n| *n == 1), "no read's row is there twice");
    eprintln!("{} reads answered before SIGKILL, each with its audit row; {} rows of reads in all", answered.len(), rows.len());
}

#[test]
fn answered_reads_keep_their_audit_rows_after_sigkill_on_sqlite() {
    let dir = temp_dir("sigkill-reads");
    answered_reads_keep_their_audit_rows_after_sigkill(&format!("sqlite://{}", dir.join("cg.db").display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_reads_keep_their_audit_rows_after_sigkill_on_postgres() {
    let Some(url) = fresh_url(Dialect::Postgres).await else { return };
    tokio::task::spawn_blocking(move || answered_reads_keep_their_audit_rows_after_sigkill(&url)).await.expect("test");
}

/// A valid ID number (GB 11643) for a test row.
fn citizen_id(body17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body17.chars().zip(W).map(|(c, w)| c.to_digit(10).expect("digit") * w).sum();
    format!("{body17}{}", ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize])
}

#[test]
fn import_prints_the_report_and_exits_non_zero_on_bad_rows() {
    let dir = temp_dir("register-import");
    let db = format!("sqlite://{}", dir.join("cg.db").display());
    let out = civicgrid(&["--db", &db, "demo"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let grid = printed
        .lines()
        .find(|l| l.trim_start().starts_with("gridworker "))
        .and_then(|l| l.split_whitespace().last())
        .expect("the demo's grid worker and its grid")
        .to_string();
    let good = citizen_id("43050319900101123");
    let mut bad = citizen_id("43050319900101124");
    let last = bad.pop().expect("char");
    bad.push(if last == '0' { '1' } else { '0' });
    let csv = format!("大祥区实有人口登记表\n姓名,身份证号码,民族\n张三,{good},汉族\n\"=cmd|' /C calc'!A0\",{bad},汉族\n");
    let file = dir.join("people.csv");
    std::fs::write(&file, csv).expect("write");
    let report = dir.join("errors.xlsx");
    let f = file.to_str().expect("path");
    let r = report.to_str().expect("path");

    // All or nothing: the bad row is printed by row, column and reason; exit code 1.
    let out = civicgrid(&["--db", &db, "import", "persons", f, "--grid", &grid, "--as", "gridworker", "--report", r]);
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("第 4 行 row 4, 身份证号码: 错误 error: 身份证号码校验位错误"), "{stdout}");
    assert!(stdout.contains("[id_check_character]"), "{stdout}");
    assert!(text(&out.stderr).contains("1 row(s) with errors; nothing was imported"), "{}", text(&out.stderr));
    // The error report: the original cells, escaped, and the reason.
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = calamine::open_workbook(&report).expect("report");
    let sheet = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&sheet).expect("sheet");
    let rows: Vec<Vec<String>> = range.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    assert_eq!(rows[0], vec!["行号", "姓名", "身份证号码", "民族", "错误原因"]);
    assert_eq!(rows[1][1], "'=cmd|' /C calc'!A0", "a formula-like cell is escaped");
    assert!(rows[1][4].contains("校验位"), "{:?}", rows[1]);

    // --partial imports the good row and succeeds.
    let out = civicgrid(&["--db", &db, "import", "persons", f, "--grid", &grid, "--as", "gridworker", "--partial"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 created, 0 updated"), "{}", text(&out.stdout));
    // Again: the same person is not stored twice.
    let out = civicgrid(&["--db", &db, "import", "persons", f, "--grid", &grid, "--as", "gridworker", "--partial"]);
    assert!(text(&out.stdout).contains("0 created, 0 updated, 1 unchanged"), "{}", text(&out.stdout));

    // Who may import, and what is not a spreadsheet.
    let out = civicgrid(&["--db", &db, "import", "persons", f, "--grid", &grid, "--as", "admin"]);
    assert!(!out.status.success() && text(&out.stderr).contains("does not write the register"), "{}", text(&out.stderr));
    std::fs::write(&file, b"%PDF-1.4 not a sheet").expect("write");
    let out = civicgrid(&["--db", &db, "import", "persons", f, "--grid", &grid, "--as", "gridworker"]);
    assert!(!out.status.success() && text(&out.stderr).contains("not a spreadsheet"), "{}", text(&out.stderr));
}
