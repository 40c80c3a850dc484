//! The HTTP API and web UI, exercised in-process (`router.oneshot`) on both backends.
//! One test binary; the modules group the tests by what they cover.

mod access;
mod areas;
mod incidents;
mod open311;
mod register_screens;
mod screens;
mod kpis;
mod register;
mod register_import;
mod search;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use domain::clock::{Clock, FakeClock};
use domain::demo::{self, DemoOptions};
use domain::geometry::AreaRecord;
use domain::{AreaCode, Level, Role};
use serde_json::Value;
use server::{AppState, ServerConfig};
use store::audit::Actor;
use store::auth::NewAccount;
use store::{Db, Dialect};
use tower::ServiceExt;


pub use store::on_both_backends;

pub const PASSWORD: &str = "grid-patrol-0425";

/// The application over a fresh store with the demo district, a clock the test moves,
/// and a district operator whose token the plain `get` uses.
pub struct TestApp {
    pub router: Router,
    pub db: Db,
    pub state: AppState,
    pub demo: demo::DemoDistrict,
    pub clock: Arc<FakeClock>,
    pub operator: TestUser,
}

/// An account made for a test, with a bearer token.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub username: String,
    pub token: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    /// The body as sent (for binary answers such as an .xlsx).
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn content_type(&self) -> &str {
        self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    pub fn location(&self) -> Option<&str> {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok())
    }
    /// The `Set-Cookie` header that sets `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }
    /// A problem document with this status and code, whose operation id is the header's.
    pub fn assert_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.content_type(), "application/problem+json");
        let p = self.json();
        assert_eq!(p["code"], code, "{p}");
        assert_eq!(p["status"], status.as_u16());
        let op = self.headers.get("x-operation-id").and_then(|v| v.to_str().ok()).expect("operation id header");
        assert!(!op.is_empty());
        assert_eq!(p["operation_id"], op);
        assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

/// A request under construction.
pub struct Req {
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    body: Option<(String, String)>,
    raw: Option<Vec<u8>>,
}

impl Req {
    pub fn new(method: Method, uri: &str) -> Req {
        Req { method, uri: uri.to_string(), headers: Vec::new(), body: None, raw: None }
    }
    pub fn token(self, t: &str) -> Req {
        self.header("authorization", &format!("Bearer {t}"))
    }
    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    /// A raw body; the content type is whatever header the test set.
    pub fn body_bytes(mut self, b: Vec<u8>) -> Req {
        self.raw = Some(b);
        self
    }
    pub fn json(mut self, v: Value) -> Req {
        self.body = Some(("application/json".into(), v.to_string()));
        self
    }
    pub fn form(mut self, fields: &[(&str, &str)]) -> Req {
        let enc: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
        self.body = Some(("application/x-www-form-urlencoded".into(), enc.join("&")));
        self
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

impl TestApp {
    pub async fn with_demo(d: Dialect) -> Option<TestApp> {
        let clock = Arc::new(FakeClock::at(1_795_598_698_000));
        let db = store::testing::fresh_with_clock(d, clock.clone() as Arc<dyn Clock>).await?;
        let district = demo::generate(DemoOptions::default()).expect("demo");
        db.load_demo(&district).await.expect("load demo");
        let config = ServerConfig { change_poll: Duration::from_millis(50), ..ServerConfig::default() };
        let state = AppState::new(db.clone(), config).await.expect("state");
        let mut app = TestApp {
            router: server::router(state.clone()),
            db,
            state,
            demo: district,
            clock,
            operator: TestUser { id: 0, username: String::new(), token: String::new() },
        };
        app.operator = app.user("operator1", Role::Operator, "430503").await;
        Some(app)
    }

    /// Make an account (not temporary) and a token for it.
    pub async fn user(&self, username: &str, role: Role, area: &str) -> TestUser {
        if role.needs_department() && !self.db.departments().await.expect("departments").iter().any(|d| d.code == "cgj") {
            // A department handler's department must exist: the demo's departments.
            self.db.load_catalogue(&Actor::cli("test"), &domain::catalogue::demo_departments(), &[], &[]).await.expect("departments");
        }
        let acc = self
            .db
            .create_account(
                &Actor::cli("test"),
                NewAccount {
                    username: username.into(),
                    display_name: format!("测试{username}"),
                    role,
                    area: AreaCode::parse(area).expect("area"),
                    department: role.needs_department().then(|| "cgj".to_string()),
                    password: PASSWORD.into(),
                    temporary: false,
                },
            )
            .await
            .expect("create account");
        let token = self.db.create_token(&Actor::cli("test"), acc.id, "test", None).await.expect("token");
        TestUser { id: acc.id, username: acc.username, token }
    }

    pub async fn send(&self, r: Req) -> Reply {
        let mut req = Request::builder().method(r.method).uri(&r.uri);
        for (k, v) in &r.headers {
            req = req.header(k, v);
        }
        let body = match (r.body, r.raw) {
            (Some((ct, b)), _) => {
                req = req.header(header::CONTENT_TYPE, ct);
                Body::from(b)
            }
            (None, Some(raw)) => Body::from(raw),
            (None, None) => Body::empty(),
        };
        let res = self.router.clone().oneshot(req.body(body).expect("request")).await.expect("response");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 64 << 20).await.expect("body");
        Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned(), bytes: bytes.to_vec() }
    }

    /// GET as the district operator.
    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Req::new(Method::GET, uri).token(&self.operator.token)).await
    }

    /// GET a page in a web session of the operator, with extra cookies (e.g. `lang=en`).
    pub async fn page(&self, uri: &str, cookies: Option<&str>) -> Reply {
        let session = self.db.create_session(self.operator.id, "test").await.expect("session");
        let mut c = format!("cg_session={}", session.id);
        if let Some(extra) = cookies {
            c.push_str("; ");
            c.push_str(extra);
        }
        self.send(Req::new(Method::GET, uri).header("cookie", &c)).await
    }

    pub fn first(&self, level: Level) -> &AreaRecord {
        self.demo.areas.iter().find(|a| a.level == level).expect("an area of that level")
    }

    /// How many audit rows say `outcome` for `actor`.
    pub async fn audit_count(&self, actor: &str, outcome: &str) -> usize {
        let q = store::audit::AuditQuery { actor: Some(actor.into()), outcome: Some(outcome.into()), limit: 1000, ..Default::default() };
        self.db.audit_rows_for_tests(&q).await.expect("audit rows").len()
    }
}
