//! The staff's incident screens: the dispatcher's board (a queue by state and warning
//! colour, filters, paging and bulk dispatch), the operator's intake form for hotline calls
//! and camera sightings, and an incident's page with its point on the map, its photos, its
//! timeline, the actions the caller may take and, for an address-only report, placing it.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::incident::Action;
use serde::Deserialize;
use store::incidents::{IncidentFilter, NewIncident, Source, TransitionFailure, TransitionInput};

use crate::AppState;
use crate::api::Params;
use crate::auth::UiCaller;
use crate::incidents::{Clocks, IncidentDto};
use crate::problem::ApiError;
use crate::i18n::Lang;
use crate::ui::{Chrome, Ctx, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents", get(board))
        .route("/incidents/dispatch", post(bulk_dispatch))
        .route("/incidents/new", get(intake_form).post(intake))
        .route("/incidents/{id}", get(page))
        .route("/incidents/{id}/act", post(act))
        .route("/incidents/{id}/place", post(place))
}

/// A row of the board.
struct Row {
    i: IncidentDto,
    state_name: &'static str,
    category: String,
    deadline: String,
    /// Filed and so dispatchable: the row gets a checkbox for bulk dispatch.
    pickable: bool,
    /// The department's name, when it went to one.
    department: String,
}

/// A count at the top of the board, linking to the board filtered by it.
struct Facet {
    label: &'static str,
    /// The CSS class of a warning light ("" for a state).
    light: &'static str,
    /// None: a finished state, listed but not counted.
    n: Option<i64>,
    href: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct Board {
    c: Chrome,
    rows: Vec<Row>,
    /// The filter's values as given, to keep them in the form.
    f: std::collections::HashMap<String, String>,
    states: Vec<(&'static str, &'static str)>,
    state_facets: Vec<Facet>,
    colour_facets: Vec<Facet>,
    categories: Vec<(String, String)>,
    departments: Vec<(String, String)>,
    sources: Vec<(&'static str, &'static str)>,
    grids: Vec<(String, String)>,
    older: String,
    newest: String,
    error: String,
    bulk: bool,
    may_intake: bool,
}

impl Board {
    fn val(&self, k: &str) -> &str {
        self.f.get(k).map(String::as_str).unwrap_or("")
    }
}

/// The name of a state in the page's language.
pub fn state_label(lang: Lang, s: &str) -> &'static str {
    match s.parse::<domain::incident::State>() {
        Ok(st) => match lang {
            Lang::Zh => st.name_zh(),
            Lang::En => lang.t(&format!("state.{}", st.as_str())),
        },
        Err(_) => "",
    }
}

const FILTER_KEYS: [&str; 7] = ["state", "warning", "category", "area", "department", "source", "limit"];

/// The board's URL with the current filter (page size included), `key` replaced by
/// `value` (or dropped), and the cursor `before` when given.
fn board_href(f: &std::collections::HashMap<String, String>, key: &str, value: Option<&str>, before: Option<i64>) -> String {
    let mut q: Vec<String> = FILTER_KEYS
        .iter()
        .filter(|k| **k != key)
        .filter_map(|k| f.get(*k).filter(|v| !v.trim().is_empty()).map(|v| format!("{k}={}", crate::ui::url_escape(v.trim()))))
        .collect();
    if let Some(v) = value {
        q.push(format!("{key}={}", crate::ui::url_escape(v)));
    }
    if let Some(b) = before {
        q.push(format!("before={b}"));
    }
    if q.is_empty() { "/incidents".into() } else { format!("/incidents?{}", q.join("&")) }
}

async fn category_names(state: &AppState) -> Result<std::collections::HashMap<String, String>, Response> {
    Ok(state.db.categories().await.map_err(ui_err)?.into_iter().map(|c| (c.code, c.name)).collect())
}

async fn category_options(state: &AppState) -> Result<Vec<(String, String)>, Response> {
    let cats = state.db.categories().await.map_err(ui_err)?;
    Ok(cats.into_iter().filter(|c| c.parent.is_some()).map(|c| (c.code, c.name)).collect())
}

async fn department_options(state: &AppState) -> Result<Vec<(String, String)>, Response> {
    Ok(state.db.departments().await.map_err(ui_err)?.into_iter().map(|d| (d.code, d.name)).collect())
}

/// The basic grids within the caller's area (for dispatching to a grid).
fn grid_options(state: &AppState, me: &crate::auth::Caller) -> Vec<(String, String)> {
    let scope = me.principal.scope();
    let snap = state.grids.snapshot();
    let mut out: Vec<(String, String)> =
        snap.grids().filter(|g| g.level == domain::Level::Grid && scope.contains(&g.code)).map(|g| (g.code.to_string(), g.name.clone())).collect();
    out.sort();
    out
}

fn ui_err(e: impl Into<ApiError>) -> Response {
    e.into().into_response()
}

const SOURCES: [&str; 5] = ["grid_patrol", "resident", "hotline", "camera", "leader"];

async fn board(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let Some(desk) = s.incidents() else {
        let _ = s.deny("incident.list", "incident", "*").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let now = state.db.now_ms();
    let (mut f, error) = match crate::incidents::filter_of(&q, now) {
        Ok(f) => (f, String::new()),
        Err(e) => (IncidentFilter::default(), e.detail),
    };
    if !q.0.contains_key("limit") {
        f.limit = BOARD_PAGE;
    }
    // A filter that does not parse shows nothing rather than everything.
    let items = if error.is_empty() { desk.list(&f).await.map_err(ui_err)? } else { Vec::new() };
    let counts = if error.is_empty() { desk.counts(&f).await.map_err(ui_err)? } else { Default::default() };
    let clocks = Clocks::load(&state).await.map_err(IntoResponse::into_response)?;
    let names = category_names(&state).await?;
    let departments = department_options(&state).await?;
    let dept_names: std::collections::HashMap<&str, &str> = departments.iter().map(|(c, n)| (c.as_str(), n.as_str())).collect();
    let rows = items
        .iter()
        .map(|inc| {
            let i = IncidentDto::new(inc, &clocks);
            Row {
                state_name: state_label(ctx.lang, &i.state),
                category: names.get(&i.category).cloned().unwrap_or_default(),
                deadline: i.deadline.map(domain::time::format_shanghai).unwrap_or_default(),
                pickable: inc.loop_.state == domain::incident::State::Filed,
                department: i.department.as_deref().map(|d| dept_names.get(d).copied().unwrap_or(d).to_string()).unwrap_or_default(),
                i,
            }
        })
        .collect();
    let fv = q.0.clone();
    let cur = |k: &str| fv.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let state_facets = counts
        .by_state
        .iter()
        .map(|(st, n)| Facet {
            label: state_label(ctx.lang, st.as_str()),
            light: "",
            n: Some(*n),
            href: board_href(&fv, "state", Some(st.as_str()), None),
            active: cur("state") == st.as_str(),
        })
        .chain(domain::incident::State::ALL.iter().filter(|s| !store::incidents::QUEUE_STATES.contains(s)).map(|st| Facet {
            label: state_label(ctx.lang, st.as_str()),
            light: "",
            n: None,
            href: board_href(&fv, "state", Some(st.as_str()), None),
            active: cur("state") == st.as_str(),
        }))
        .collect();
    let colour_facets = [("red", counts.red), ("yellow", counts.yellow), ("green", counts.green)]
        .into_iter()
        .map(|(w, n)| Facet { label: ctx.lang.t(&format!("warning.{w}")), light: w, n: Some(n), href: board_href(&fv, "warning", Some(w), None), active: cur("warning") == w })
        .collect();
    let older = match items.last() {
        Some(last) if items.len() as i64 == f.limit => board_href(&fv, "", None, Some(last.id)),
        _ => String::new(),
    };
    let newest = if f.before_id.is_some() { board_href(&fv, "", None, None) } else { String::new() };
    let bulk = domain::incident::role_may(me.principal.role, Action::Dispatch);
    let states = domain::incident::State::ALL.iter().map(|st| (st.as_str(), state_label(ctx.lang, st.as_str()))).collect();
    let sources = SOURCES.iter().map(|src| (*src, ctx.lang.t(&format!("source.{src}")))).collect();
    let c = Chrome::for_user(&ctx, &me, "incidents", ctx.lang.t("incidents.title"));
    let page = Board {
        rows,
        f: fv,
        states,
        state_facets,
        colour_facets,
        categories: category_options(&state).await?,
        departments,
        sources,
        grids: if bulk { grid_options(&state, &me) } else { Vec::new() },
        older,
        newest,
        bulk,
        may_intake: desk.may_place(),
        error: error.clone(),
        c,
    };
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok((status, render(&page)).into_response())
}

/// Incidents per page of the board.
const BOARD_PAGE: i64 = 50;

// ---------------------------------------------------------------- bulk dispatch

/// What happened to one incident of a bulk dispatch.
struct BulkResult {
    id: i64,
    ok: bool,
    /// The new version, or why it failed.
    message: String,
}

#[derive(Template)]
#[template(path = "bulk.html")]
struct BulkPage {
    c: Chrome,
    target: String,
    results: Vec<BulkResult>,
    done: usize,
    error: String,
}

/// Why one transition failed, in the page's language.
pub(crate) fn failure_text(lang: Lang, e: TransitionFailure) -> (StatusCode, String) {
    match e {
        TransitionFailure::Stale { .. } => (StatusCode::CONFLICT, lang.t("incidents.stale").into()),
        TransitionFailure::Refused(e) => (StatusCode::CONFLICT, e.to_string()),
        TransitionFailure::Store(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                (StatusCode::NOT_FOUND, lang.t("error.not_found").into())
            } else {
                (e.status, e.detail)
            }
        }
    }
}

/// Dispatch every picked incident (`pick=<id>:<version>`, repeated) to one department or
/// one grid. Each goes through the same scoped, versioned transition as a single dispatch,
/// in its own transaction: a stale version, a wrong state or an incident out of scope fails
/// that incident only, and the page lists what happened to each.
async fn bulk_dispatch(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, body: axum::body::Bytes) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let Some(desk) = s.incidents() else {
        let _ = s.deny("incident.dispatch", "incident", "*").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let pairs = crate::auth::form_pairs(&body);
    let field = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let (department, grid, note) = (field("department"), field("grid"), field("note"));
    let picks: Vec<&str> = pairs.iter().filter(|(k, _)| k == "pick").map(|(_, v)| v.as_str()).collect();
    let c = Chrome::for_user(&ctx, &me, "incidents", ctx.lang.t("bulk.title"));
    let refuse = |c: Chrome, error: &str| (StatusCode::BAD_REQUEST, render(&BulkPage { c, target: String::new(), results: Vec::new(), done: 0, error: error.into() })).into_response();
    let grid_code = match grid.as_str() {
        "" => None,
        g => match domain::AreaCode::parse(g) {
            Ok(g) => Some(g),
            Err(e) => return Ok(refuse(c, &e.to_string())),
        },
    };
    if department.is_empty() == grid_code.is_none() {
        return Ok(refuse(c, ctx.lang.t("bulk.one_target")));
    }
    if picks.is_empty() {
        return Ok(refuse(c, ctx.lang.t("bulk.none_picked")));
    }
    let target = match &grid_code {
        Some(g) => g.to_string(),
        None => department_options(&state).await?.into_iter().find(|(code, _)| *code == department).map(|(_, n)| n).unwrap_or(department.clone()),
    };
    let input = TransitionInput {
        department: Some(department).filter(|d| !d.is_empty()),
        grid: grid_code,
        note,
        ..TransitionInput::default()
    };
    let mut results = Vec::new();
    let mut statuses = Vec::new();
    for pick in picks {
        let parsed = pick.split_once(':').and_then(|(i, v)| Some((i.trim().parse::<i64>().ok()?, v.trim().parse::<i64>().ok()?)));
        let Some((id, version)) = parsed else {
            results.push(BulkResult { id: 0, ok: false, message: format!("{}: {pick:?}", ctx.lang.t("bulk.bad_pick")) });
            statuses.push(StatusCode::BAD_REQUEST);
            continue;
        };
        match desk.transition(id, version, Action::Dispatch, &input).await {
            Ok(inc) => {
                results.push(BulkResult { id, ok: true, message: format!("{} (v{})", ctx.lang.t("bulk.dispatched"), inc.version) });
                statuses.push(StatusCode::OK);
            }
            Err(e) => {
                let (status, message) = failure_text(ctx.lang, e);
                results.push(BulkResult { id, ok: false, message });
                statuses.push(status);
            }
        }
    }
    let done = results.iter().filter(|r| r.ok).count();
    // Some done: 200. None: 404 when none of them was found in scope, else the first failure.
    let status = if done > 0 {
        StatusCode::OK
    } else if statuses.iter().all(|s| *s == StatusCode::NOT_FOUND) {
        StatusCode::NOT_FOUND
    } else {
        statuses.into_iter().find(|s| *s != StatusCode::NOT_FOUND).unwrap_or(StatusCode::CONFLICT)
    };
    Ok((status, render(&BulkPage { c, target, results, done, error: String::new() })).into_response())
}

// ---------------------------------------------------------------- operator intake

#[derive(Debug, Clone, Default, Deserialize)]
struct IntakeForm {
    #[serde(default)]
    source: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    lat: String,
    #[serde(default)]
    lon: String,
    #[serde(default)]
    phone: String,
    /// A key per rendered form: a second click saves nothing twice.
    #[serde(default)]
    key: String,
}

/// The incident just saved, to read its receipt out to the caller.
struct Saved {
    id: i64,
    receipt: String,
    grid: Option<String>,
}

#[derive(Template)]
#[template(path = "intake.html")]
struct IntakePage {
    c: Chrome,
    f: IntakeForm,
    categories: Vec<(String, String)>,
    saved: Option<Saved>,
    error: String,
    geo: String,
}

async fn intake_page(state: &AppState, me: &crate::auth::Caller, ctx: &Ctx, mut f: IntakeForm, saved: Option<Saved>, error: String) -> Result<Html<String>, Response> {
    f.key = form_key(ctx);
    if f.source.is_empty() {
        f.source = "hotline".into();
    }
    let categories = crate::ui_public::category_labels(&state.db.categories().await.map_err(ui_err)?);
    let c = Chrome::for_user(ctx, me, "intake", ctx.lang.t("intake.title"));
    Ok(render(&IntakePage { c, f, categories, saved, error, geo: PICK_GEO.into() }))
}

/// A fresh key for a rendered form, so that a second click on it saves nothing twice.
pub(crate) fn form_key(ctx: &Ctx) -> String {
    store::auth::random_secret().map(|k| k[..24].to_string()).unwrap_or_else(|_| ctx.op.clone())
}

/// The layers a point is picked on: the district's communities and grids.
const PICK_GEO: &str = "/api/v1/geometry?level=grid /api/v1/geometry?level=community";

/// The intake desk, for the command centre's roles; anyone else is denied as not found.
async fn intake_desk<'a>(s: &'a store::scoped::Scoped<'a>, ctx: &Ctx) -> Result<store::scoped::IncidentDesk<'a>, Response> {
    match s.incidents().filter(|d| d.may_place()) {
        Some(d) => Ok(d),
        None => {
            let _ = s.deny("incident.intake", "incident", "").await;
            Err(crate::ui::not_found_page(&ctx.path))
        }
    }
}

async fn intake_form(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Html<String>, Response> {
    let s = me.scoped(&state);
    let desk = intake_desk(&s, &ctx).await?;
    let saved = match q.0.get("saved").and_then(|v| v.parse::<i64>().ok()) {
        Some(id) => desk.get(id).await.ok().map(|(i, _)| Saved { id: i.id, receipt: i.receipt, grid: i.grid.map(|g| g.to_string()) }),
        None => None,
    };
    intake_page(&state, &me, &ctx, IntakeForm::default(), saved, String::new()).await
}

/// Save a hotline call or a camera sighting on the caller's behalf: the point (if any)
/// resolves to its grid; an address-only report waits for an operator to place it.
async fn intake(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Form(f): Form<IntakeForm>) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let desk = intake_desk(&s, &ctx).await?;
    let refuse = |status: StatusCode, error: String, f: IntakeForm| {
        let (state, me, ctx) = (&state, &me, &ctx);
        async move { Ok::<Response, Response>((status, intake_page(state, me, ctx, f, None, error).await?).into_response()) }
    };
    let source = match f.source.as_str() {
        "hotline" => Source::Hotline,
        "camera" => Source::Camera,
        _ => return refuse(StatusCode::BAD_REQUEST, ctx.lang.t("intake.bad_source").into(), f).await,
    };
    let (point, phone) = match crate::ui_public::point_and_phone(&f.lat, &f.lon, &f.phone, ctx.lang) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e, f).await,
    };
    let grid = point.and_then(|(lat, lon)| state.grids.snapshot().locate_grid(lon, lat).cloned());
    let new = NewIncident {
        category: f.category.clone(),
        description: f.description.clone(),
        point,
        address: Some(f.address.clone()).filter(|a| !a.trim().is_empty()),
        source,
        grid,
        reporter_phone: phone,
    };
    let key = Some(f.key.trim()).filter(|k| !k.is_empty() && k.len() <= 200).map(|k| format!("intake-{k}"));
    match desk.report(new, key.as_deref()).await {
        Ok((inc, _)) => Ok(Redirect::to(&format!("/incidents/new?saved={}", inc.id)).into_response()),
        Err(e) => {
            let e = ApiError::from(e);
            let text = ctx.lang.t(&format!("report.{}", e.code));
            let msg = if text.starts_with('⟦') { e.detail.clone() } else { text.to_string() };
            refuse(e.status, msg, f).await
        }
    }
}

struct Step {
    at: String,
    action: String,
    who: String,
    note: String,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct Page {
    c: Chrome,
    i: IncidentDto,
    state_name: &'static str,
    category: String,
    deadline: String,
    created: String,
    steps: Vec<Step>,
    actions: Vec<(&'static str, String)>,
    departments: Vec<(String, String)>,
    grids: Vec<(String, String)>,
    error: String,
    geo: String,
    photos: Vec<String>,
    /// The caller may place this address-only report.
    placeable: bool,
    may_photo: bool,
    source_name: &'static str,
    department_name: String,
}

async fn render_page(state: &AppState, me: &crate::auth::Caller, ctx: &Ctx, raw: &str, error: String) -> Result<Response, Response> {
    let s = me.scoped(state);
    let Some(desk) = s.incidents() else {
        let _ = s.deny("incident.read", "incident", raw).await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let Ok(id) = raw.parse::<i64>() else { return Err(crate::ui::not_found_page(&ctx.path)) };
    let (inc, timeline) = desk.get(id).await.map_err(|_| crate::ui::not_found_page(&ctx.path))?;
    let clocks = Clocks::load(state).await.map_err(IntoResponse::into_response)?;
    let actions: Vec<(&'static str, String)> = desk.allowed(&inc).into_iter().map(|a| (a.as_str(), ctx.lang.t(&format!("do.{}", a.as_str())).to_string())).collect();
    let departments = department_options(state).await?;
    let grids = if actions.iter().any(|(a, _)| *a == "dispatch") { grid_options(state, me) } else { Vec::new() };
    let photos = state.db.photos_of(inc.id).await.map_err(ui_err)?.into_iter().map(|p| p.hash).collect();
    let placeable = desk.may_place() && inc.grid.is_none() && (inc.loop_.state.is_open() || inc.loop_.state == domain::incident::State::Shelved);
    let may_photo = inc.loop_.state != domain::incident::State::Voided;
    let names = category_names(state).await?;
    let i = IncidentDto::new(&inc, &clocks);
    let steps = timeline
        .into_iter()
        .map(|t| Step {
            at: domain::time::format_shanghai(t.at),
            action: ctx.lang.t(&format!("action.{}", t.action)).to_string(),
            who: if t.actor_kind == "anonymous" { ctx.lang.t("incidents.resident").to_string() } else { t.actor_name },
            note: t.note,
        })
        .collect();
    let geo = match &i.grid {
        Some(g) => format!("/api/v1/areas/{g}/geometry"),
        None if placeable => PICK_GEO.to_string(),
        None => String::new(),
    };
    let source_name = ctx.lang.t(&format!("source.{}", i.source));
    let department_name = i.department.as_ref().map(|d| departments.iter().find(|(c, _)| c == d).map(|(_, n)| n.clone()).unwrap_or(d.clone())).unwrap_or_default();
    let c = Chrome::for_user(ctx, me, "incidents", format!("#{}", i.id));
    let page = Page {
        state_name: state_label(ctx.lang, &i.state),
        category: names.get(&i.category).cloned().unwrap_or_default(),
        deadline: i.deadline.map(domain::time::format_shanghai).unwrap_or_default(),
        created: domain::time::format_shanghai(i.created_at),
        c,
        steps,
        actions,
        departments,
        grids,
        error: error.clone(),
        geo,
        photos,
        placeable,
        may_photo,
        source_name,
        department_name,
        i,
    };
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::CONFLICT };
    Ok((status, render(&page)).into_response())
}

async fn page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>) -> Result<Response, Response> {
    render_page(&state, &me, &ctx, &raw, String::new()).await
}

#[derive(Deserialize)]
struct ActForm {
    action: String,
    version: i64,
    #[serde(default)]
    department: String,
    #[serde(default)]
    grid: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    rating: String,
    #[serde(default)]
    into: String,
    #[serde(default)]
    extension_hours: String,
}

async fn act(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<ActForm>) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let Some(desk) = s.incidents() else {
        let _ = s.deny("incident.transition", "incident", &raw).await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let Ok(id) = raw.parse::<i64>() else { return Err(crate::ui::not_found_page(&ctx.path)) };
    let Ok(action) = f.action.parse::<Action>() else { return render_page(&state, &me, &ctx, &raw, format!("unknown action {:?}", f.action)).await };
    let input = TransitionInput {
        department: Some(f.department).filter(|d| !d.is_empty()),
        grid: domain::AreaCode::parse(&f.grid).ok(),
        note: f.note,
        rating: f.rating.parse().ok(),
        into: f.into.parse().ok(),
        extension_hours: f.extension_hours.trim().parse().ok(),
    };
    match desk.transition(id, f.version, action, &input).await {
        Ok(_) => Ok(Redirect::to(&format!("/incidents/{id}")).into_response()),
        Err(TransitionFailure::Stale { .. }) => render_page(&state, &me, &ctx, &raw, ctx.lang.t("incidents.stale").into()).await,
        Err(TransitionFailure::Refused(e)) => render_page(&state, &me, &ctx, &raw, e.to_string()).await,
        Err(TransitionFailure::Store(e)) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return Err(crate::ui::not_found_page(&ctx.path));
            }
            render_page(&state, &me, &ctx, &raw, e.detail).await
        }
    }
}

#[derive(Deserialize)]
struct PlaceForm {
    version: i64,
    #[serde(default)]
    lat: String,
    #[serde(default)]
    lon: String,
    #[serde(default)]
    note: String,
}

/// Place an address-only report: the point resolves to its basic grid, and the incident
/// moves from the district's unassigned queue to that grid.
async fn place(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<PlaceForm>) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let Some(desk) = s.incidents() else {
        let _ = s.deny("incident.place", "incident", &raw).await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let Ok(id) = raw.parse::<i64>() else { return Err(crate::ui::not_found_page(&ctx.path)) };
    let (lat, lon) = match domain::error::parse_point(f.lat.trim(), f.lon.trim()) {
        Ok(p) => p,
        Err(e) => return render_page(&state, &me, &ctx, &raw, e.to_string()).await,
    };
    let Some(grid) = state.grids.snapshot().locate_grid(lon, lat).cloned() else {
        return render_page(&state, &me, &ctx, &raw, ctx.lang.t("place.outside").into()).await;
    };
    match desk.place(id, f.version, (lat, lon), &grid, &f.note).await {
        Ok(_) => Ok(Redirect::to(&format!("/incidents/{id}")).into_response()),
        Err(e) => match failure_text(ctx.lang, e) {
            (StatusCode::NOT_FOUND, _) => Err(crate::ui::not_found_page(&ctx.path)),
            (_, msg) => render_page(&state, &me, &ctx, &raw, msg).await,
        },
    }
}
