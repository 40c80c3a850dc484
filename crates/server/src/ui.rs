//! The web UI: server-rendered pages (askama), with htmx for partial updates and Leaflet
//! for maps. Chinese by default, English through the switch in the header.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use domain::{AreaCode, DedicatedKind, Level, TeamRole};
use serde_json::Value;
use store::AreaFilter;

use crate::api::{self, AreaDetail, ChildDto, LocateResult, Params};
use crate::auth::UiCaller;
use crate::i18n::Lang;
use crate::opid::OperationId;
use crate::problem::ApiError;
use crate::{AppState, assets};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/areas", get(areas_root))
        .route("/areas/{code}", get(area_page))
        .route("/areas/{code}/children", get(children_partial))
        .route("/map", get(map_page))
        .route("/map/locate", get(locate_partial))
        .route("/lang", get(switch_lang))
        .route("/api/docs", get(docs_page))
        .merge(crate::ui_account::routes())
        .merge(crate::ui_public::routes())
        .merge(crate::ui_incidents::routes())
        .merge(crate::ui_inbox::routes())
        .merge(crate::ui_mobile::routes())
        .merge(crate::ui_register::routes())
        .merge(crate::ui_collect::routes())
}

/// What every page needs: language, operation id, the current path.
pub struct Ctx {
    pub lang: Lang,
    pub op: String,
    pub path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx {
            lang: Lang::from_headers(&parts.headers),
            op: parts.extensions.get::<OperationId>().map(|o| o.0.clone()).unwrap_or_default(),
            path: parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into()),
        })
    }
}

/// The signed-in user, for the account menu.
pub struct UserMenu {
    pub display_name: String,
    pub username: String,
    pub role: domain::Role,
    pub area: String,
    pub csrf: String,
}

/// The page frame's data.
pub struct Chrome {
    pub lang: Lang,
    pub active: &'static str,
    pub title: String,
    pub path: String,
    pub user: Option<UserMenu>,
}

impl Chrome {
    pub fn new(ctx: &Ctx, active: &'static str, title: impl Into<String>) -> Chrome {
        Chrome { lang: ctx.lang, active, title: title.into(), path: ctx.path.clone(), user: None }
    }

    /// The frame for a signed-in user's page.
    pub fn for_user(ctx: &Ctx, caller: &crate::auth::Caller, active: &'static str, title: impl Into<String>) -> Chrome {
        let p = &caller.principal;
        let user = UserMenu {
            display_name: p.display_name.clone(),
            username: p.username.clone(),
            role: p.role,
            area: p.area.to_string(),
            csrf: caller.csrf.clone().unwrap_or_default(),
        };
        Chrome { user: Some(user), ..Chrome::new(ctx, active, title) }
    }

    /// The frame for a page anyone may see: with the account menu when someone is signed in.
    pub fn for_anyone(ctx: &Ctx, caller: Option<&crate::auth::Caller>, active: &'static str, title: impl Into<String>) -> Chrome {
        match caller {
            Some(me) => Chrome::for_user(ctx, me, active, title),
            None => Chrome::new(ctx, active, title),
        }
    }

    pub fn role_name(&self) -> &'static str {
        match &self.user {
            Some(u) => match self.lang {
                Lang::Zh => u.role.name_zh(),
                Lang::En => u.role.name_en(),
            },
            None => "",
        }
    }
    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role.manages_accounts())
    }
    pub fn is_auditor(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role.reads_audit())
    }
    /// Works incidents (everyone but auditors and admins).
    pub fn works_incidents(&self) -> bool {
        self.user.as_ref().is_some_and(|u| !matches!(u.role, domain::Role::Auditor | domain::Role::Admin))
    }
    /// Works in a grid (the mobile list is theirs).
    pub fn is_grid_staff(&self) -> bool {
        self.user.as_ref().is_some_and(|u| matches!(u.role, domain::Role::GridWorker | domain::Role::GridLeader))
    }
    /// Collects and corrects the register (the import page is theirs).
    pub fn writes_register(&self) -> bool {
        self.user.as_ref().is_some_and(|u| store::register::register_writes(u.role))
    }
    /// Takes hotline calls and camera sightings (the intake form).
    pub fn takes_intake(&self) -> bool {
        self.user.as_ref().is_some_and(|u| matches!(u.role, domain::Role::Operator | domain::Role::Dispatcher | domain::Role::ShiftLead))
    }
    /// Reads the register (登记): grid staff, community and street staff, the command centre.
    pub fn reads_register(&self) -> bool {
        self.user.as_ref().is_some_and(|u| {
            store::register::register_writes(u.role) || matches!(u.role, domain::Role::Operator | domain::Role::Dispatcher | domain::Role::ShiftLead)
        })
    }
    /// The class of a register sub-page's tab.
    pub fn sub_class(&self, item: &str) -> &'static str {
        if self.path.starts_with(&format!("/register/{item}")) { "facet active" } else { "facet" }
    }
    /// A word whose key is a prefix and a value, e.g. `warning.` and `red`.
    pub fn tk(&self, prefix: &str, value: &str) -> &'static str {
        self.lang.t(&format!("{prefix}{value}"))
    }
    pub fn may_unmask(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role.may_unmask())
    }
    pub fn csrf(&self) -> &str {
        self.user.as_ref().map(|u| u.csrf.as_str()).unwrap_or("")
    }
    /// htmx sends this header with every request it makes from the page.
    pub fn hx_headers(&self) -> String {
        format!("{{\"X-CSRF-Token\": \"{}\"}}", self.csrf())
    }
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }
    pub fn asset(&self, name: &str) -> String {
        assets::url(name)
    }
    pub fn html_lang(&self) -> &'static str {
        self.lang.code()
    }
    pub fn switch_href(&self) -> String {
        format!("/lang?set={}&next={}", self.lang.other(), url_escape(&self.path))
    }
    pub fn nav_class(&self, item: &str) -> &'static str {
        if self.active == item { "active" } else { "" }
    }
    pub fn level(&self, l: &str) -> &str {
        l.parse::<Level>().map(|l| self.lang.level(l)).unwrap_or("")
    }
    /// The name of an API level value.
    pub fn lv(&self, l: &api::LevelDto) -> &str {
        self.lang.level(Level::from(*l))
    }
    pub fn role(&self, r: &str) -> &str {
        r.parse::<TeamRole>().map(|r| self.lang.role(r)).unwrap_or("")
    }
    pub fn kind(&self, k: &Option<String>) -> &str {
        k.as_deref().and_then(|k| k.parse::<DedicatedKind>().ok()).map(|k| self.lang.kind(k)).unwrap_or("")
    }
}

pub fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A UI error: rendered as a page with the operation id.
pub struct UiError {
    status: StatusCode,
    lang: Lang,
    op: String,
    message: String,
}

impl UiError {
    fn from_api(ctx: &Ctx, e: ApiError) -> UiError {
        let message = if e.status == StatusCode::NOT_FOUND { ctx.lang.t("error.not_found").to_string() } else { e.detail };
        UiError { status: e.status, lang: ctx.lang, op: ctx.op.clone(), message }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    status: u16,
    message: String,
    op: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let c = Chrome { lang: self.lang, active: "", title: self.lang.t("error.title").into(), path: "/".into(), user: None };
        let page = ErrorPage { c, status: self.status.as_u16(), message: self.message, op: self.op };
        (self.status, render(&page)).into_response()
    }
}

/// The 404 page for paths no route knows.
pub fn not_found_page(path: &str) -> Response {
    let c = Chrome { lang: Lang::Zh, active: "", title: Lang::Zh.t("error.title").into(), path: path.into(), user: None };
    let page = ErrorPage { c, status: 404, message: Lang::Zh.t("error.not_found").into(), op: String::new() };
    (StatusCode::NOT_FOUND, render(&page)).into_response()
}

pub fn render<T: Template>(t: &T) -> Html<String> {
    match t.render() {
        Ok(s) => Html(s),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            Html("<!doctype html><title>civicgrid</title><p>页面渲染失败 / the page failed to render".into())
        }
    }
}

// ---------------------------------------------------------------- home

struct LevelCount {
    level: &'static str,
    count: i64,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    c: Chrome,
    counts: Vec<LevelCount>,
    roots: Vec<api::AreaDto>,
    streets: Vec<ChildDto>,
}

async fn home(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx) -> Result<Html<String>, UiError> {
    let by_level = state.db.count_by_level().await.map_err(|e| UiError::from_api(&ctx, e.into()))?;
    let counts = Level::ALL
        .iter()
        .map(|l| LevelCount { level: l.as_str(), count: by_level.get(l).copied().unwrap_or(0) })
        .collect();
    let districts = state
        .db
        .list_areas(&AreaFilter { level: Some(Level::District), ..AreaFilter::default() })
        .await
        .map_err(|e| UiError::from_api(&ctx, e.into()))?;
    let roots: Vec<api::AreaDto> = districts.iter().map(api::AreaDto::from).collect();
    let streets = match roots.first() {
        Some(d) => {
            let code = AreaCode::parse(&d.code).map_err(|e| UiError::from_api(&ctx, e.into()))?;
            api::area_detail(&state, &code).await.map_err(|e| UiError::from_api(&ctx, e))?.children
        }
        None => Vec::new(),
    };
    let c = Chrome::for_user(&ctx, &me, "home", ctx.lang.t("home.title"));
    Ok(render(&HomePage { c, counts, roots, streets }))
}

// ---------------------------------------------------------------- areas

async fn areas_root(State(state): State<AppState>, _me: UiCaller, ctx: Ctx) -> Result<Response, UiError> {
    let districts = state
        .db
        .list_areas(&AreaFilter { level: Some(Level::District), ..AreaFilter::default() })
        .await
        .map_err(|e| UiError::from_api(&ctx, e.into()))?;
    match districts.first() {
        Some(d) => Ok(Redirect::to(&format!("/areas/{}", d.code)).into_response()),
        None => Ok(Redirect::to("/").into_response()),
    }
}

#[derive(Template)]
#[template(path = "area.html")]
struct AreaPage {
    c: Chrome,
    d: AreaDetail,
    children: Vec<ChildDto>,
    q: String,
    child_level: &'static str,
    map_urls: String,
}

#[derive(Template)]
#[template(path = "children.html")]
struct ChildrenPartial {
    c: Chrome,
    children: Vec<ChildDto>,
    total: usize,
}

fn filter_children(children: &[ChildDto], q: &str) -> Vec<ChildDto> {
    let q = q.trim();
    children
        .iter()
        .filter(|c| q.is_empty() || c.area.name.contains(q) || c.area.code.contains(q))
        .cloned()
        .collect()
}

/// An area for a page: its detail, and its children narrowed by the `q` filter.
async fn area_for_page(state: &AppState, ctx: &Ctx, raw: &str, q: &Params) -> Result<(AreaCode, AreaDetail, Vec<ChildDto>, String), UiError> {
    let code = AreaCode::parse(raw).map_err(|e| UiError::from_api(ctx, ApiError::from(e)))?;
    let d = api::area_detail(state, &code).await.map_err(|e| UiError::from_api(ctx, e))?;
    let query = q.0.get("q").cloned().unwrap_or_default();
    let children = filter_children(&d.children, &query);
    Ok((code, d, children, query))
}

async fn area_page(
    State(state): State<AppState>,
    UiCaller(me): UiCaller,
    ctx: Ctx,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Html<String>, UiError> {
    let (code, d, children, query) = area_for_page(&state, &ctx, &raw, &q).await?;
    let child_level = match code.as_str().len() {
        6 => "street",
        9 => "community",
        12 => "grid",
        _ => "",
    };
    // The area's own boundary over its children; a grid is shown among its neighbours.
    let own = format!("/api/v1/areas/{code}/geometry");
    let map_urls = match (&d.area.parent, d.children.is_empty()) {
        (_, false) => format!("/api/v1/geometry?parent={code} {own}"),
        (Some(parent), true) => format!("/api/v1/geometry?parent={parent} {own}"),
        (None, true) => own,
    };
    let c = Chrome::for_user(&ctx, &me, "areas", d.area.name.clone());
    Ok(render(&AreaPage { c, d, children, q: query, child_level, map_urls }))
}

async fn children_partial(
    State(state): State<AppState>,
    UiCaller(me): UiCaller,
    ctx: Ctx,
    Path(raw): Path<String>,
    q: Params,
) -> Result<Html<String>, UiError> {
    let (_, d, children, _) = area_for_page(&state, &ctx, &raw, &q).await?;
    let c = Chrome::for_user(&ctx, &me, "areas", "");
    Ok(render(&ChildrenPartial { c, total: d.children.len(), children }))
}

// ---------------------------------------------------------------- map

#[derive(Template)]
#[template(path = "map.html")]
struct MapPage {
    c: Chrome,
    tile_url: String,
    tile_attribution: String,
    lat: f64,
    lon: f64,
}

async fn map_page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx) -> Html<String> {
    // Start the locate form at the centre of the district, if any.
    let (lat, lon) = state
        .db
        .list_areas(&AreaFilter { level: Some(Level::District), limit: Some(1), ..AreaFilter::default() })
        .await
        .ok()
        .and_then(|d| d.first().map(|a| ((a.bbox[1] + a.bbox[3]) / 2.0, (a.bbox[0] + a.bbox[2]) / 2.0)))
        .unwrap_or((0.0, 0.0));
    let c = Chrome::for_user(&ctx, &me, "map", ctx.lang.t("map.title"));
    render(&MapPage {
        c,
        tile_url: state.config.tile_url.clone().unwrap_or_default(),
        tile_attribution: state.config.tile_attribution.clone(),
        lat: (lat * 1e5).round() / 1e5,
        lon: (lon * 1e5).round() / 1e5,
    })
}

#[derive(Template)]
#[template(path = "locate.html")]
struct LocatePartial {
    c: Chrome,
    r: Option<LocateResult>,
    error: String,
}

async fn locate_partial(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Html<String> {
    let lat = q.0.get("lat").map(String::as_str).unwrap_or("");
    let lon = q.0.get("lon").map(String::as_str).unwrap_or("");
    let c = Chrome::for_user(&ctx, &me, "map", "");
    match domain::error::parse_point(lat, lon) {
        Ok((lat, lon)) => render(&LocatePartial { c, r: Some(api::locate_point(&state, lat, lon)), error: String::new() }),
        Err(e) => render(&LocatePartial { c, r: None, error: e.to_string() }),
    }
}

// ---------------------------------------------------------------- language

async fn switch_lang(q: Params) -> Response {
    let lang = if q.0.get("set").map(String::as_str) == Some("en") { "en" } else { "zh" };
    // Only local paths: never an open redirect.
    let next = q.0.get("next").filter(|n| n.starts_with('/') && !n.starts_with("//")).cloned().unwrap_or_else(|| "/".into());
    let mut res = Redirect::to(&next).into_response();
    let cookie = format!("lang={lang}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

// ---------------------------------------------------------------- API docs

struct DocParam {
    name: String,
    location: String,
    required: bool,
    description: String,
}

struct DocOp {
    method: String,
    path: String,
    summary: String,
    description: String,
    operation_id: String,
    params: Vec<DocParam>,
    responses: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "docs.html")]
struct DocsPage {
    c: Chrome,
    title: String,
    description: String,
    ops: Vec<DocOp>,
    schemas: Vec<(String, String)>,
}

fn text(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

async fn docs_page(crate::auth::MaybeCaller(r): crate::auth::MaybeCaller, ctx: Ctx) -> Html<String> {
    let doc = serde_json::to_value(api::openapi()).unwrap_or(Value::Null);
    let mut ops = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            let Some(item) = item.as_object() else { continue };
            for (method, op) in item {
                let params = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| DocParam {
                                name: text(p, "name"),
                                location: text(p, "in"),
                                required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                                description: text(p, "description"),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let responses = op
                    .get("responses")
                    .and_then(Value::as_object)
                    .map(|rs| rs.iter().map(|(s, r)| (s.clone(), text(r, "description"))).collect())
                    .unwrap_or_default();
                ops.push(DocOp {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    summary: text(op, "summary"),
                    description: text(op, "description"),
                    operation_id: text(op, "operationId"),
                    params,
                    responses,
                });
            }
        }
    }
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter().map(|(k, v)| (k.clone(), serde_json::to_string_pretty(v).unwrap_or_default())).collect()
        })
        .unwrap_or_default();
    let info = doc.get("info").cloned().unwrap_or(Value::Null);
    let c = match &r.caller {
        Some(me) => Chrome::for_user(&ctx, me, "api", ctx.lang.t("docs.title")),
        None => Chrome::new(&ctx, "api", ctx.lang.t("docs.title")),
    };
    render(&DocsPage { c, title: text(&info, "title"), description: text(&info, "description"), ops, schemas })
}
