//! The grid worker's mobile screens (`/m`): what in their grid needs them now (checks due
//! on site, work dispatched to the grid, reports they may handle on the spot), each with
//! big buttons for the step the loop allows, and a report form that fills its point from
//! the phone's GPS and takes a photo. Every step goes through the same scoped, versioned
//! transitions as the desk screens; photos through the same store method as the API.

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, body::Bytes};
use domain::incident::{Action, State as St};
use serde::Deserialize;
use store::incidents::{Incident, IncidentFilter, NewIncident, Source, TransitionInput};
use store::scoped::IncidentDesk;

use crate::AppState;
use crate::api::Params;
use crate::auth::{Caller, UiCaller};
use crate::incidents::{Clocks, IncidentDto};
use crate::multipart::Part;
use crate::problem::ApiError;
use crate::ui::{Chrome, Ctx, render};
use crate::ui_incidents::state_label;

pub fn routes() -> Router<AppState> {
    Router::new().route("/m", get(list)).route("/m/report", get(report_form)).route("/m/incidents/{id}/act", post(act))
}

/// The routes that take a photo, limited to the photo size and a little more for the fields.
pub fn upload_routes(max_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/m/report", post(report))
        .route("/incidents/{id}/photos", post(add_photo))
        .layer(DefaultBodyLimit::max(max_bytes + (64 << 10)))
}

/// The steps a grid worker takes from the mobile list.
const MOBILE_ACTIONS: [Action; 5] = [Action::Verify, Action::FailVerification, Action::Accept, Action::Handle, Action::HandleOnSpot];

pub struct Card {
    pub i: IncidentDto,
    pub category: String,
    pub state_name: &'static str,
    pub deadline: String,
    pub actions: Vec<(&'static str, &'static str)>,
}

/// What the page says after a step or a report.
pub struct Banner {
    pub id: i64,
    pub receipt: String,
    pub text: &'static str,
}

#[derive(Template)]
#[template(path = "mobile.html")]
struct MobileList {
    c: Chrome,
    verify: Vec<Card>,
    work: Vec<Card>,
    on_spot: Vec<Card>,
    banner: Option<Banner>,
    error: String,
}

fn ui_err(e: impl Into<ApiError>) -> Response {
    e.into().into_response()
}

async fn open_in(desk: &IncidentDesk<'_>, state: St) -> Result<Vec<Incident>, Response> {
    desk.list(&IncidentFilter { state: Some(state), limit: 100, ..IncidentFilter::default() }).await.map_err(ui_err)
}

async fn render_list(state: &AppState, me: &Caller, ctx: &Ctx, banner: Option<Banner>, error: String) -> Result<Response, Response> {
    let s = me.scoped(state);
    let Some(desk) = s.incidents() else {
        let _ = s.deny("incident.list", "incident", "*").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let area = &me.principal.area;
    let mine = |i: &Incident| i.grid.as_ref().is_some_and(|g| g.starts_with(area)) || i.area.starts_with(area);
    let clocks = Clocks::load(state).await.map_err(IntoResponse::into_response)?;
    let names: std::collections::HashMap<String, String> = state.db.categories().await.map_err(ui_err)?.into_iter().map(|c| (c.code, c.name)).collect();
    let card = |inc: &Incident| {
        let i = IncidentDto::new(inc, &clocks);
        let actions = desk.allowed(inc).into_iter().filter(|a| MOBILE_ACTIONS.contains(a)).map(|a| (a.as_str(), ctx.lang.t(&format!("do.{}", a.as_str())))).collect();
        Card {
            category: names.get(&i.category).cloned().unwrap_or_default(),
            state_name: state_label(ctx.lang, &i.state),
            deadline: i.deadline.map(domain::time::format_shanghai).unwrap_or_default(),
            actions,
            i,
        }
    };
    // Checks due on site: handled work in the worker's grid.
    let verify = open_in(&desk, St::Handled).await?.iter().filter(|i| mine(i)).map(card).filter(|c| !c.actions.is_empty()).collect();
    // Work dispatched to the worker's grid, waiting to be accepted or in progress.
    let mut work: Vec<Card> = Vec::new();
    for st in [St::Dispatched, St::InProgress] {
        let items = open_in(&desk, st).await?;
        work.extend(items.iter().filter(|i| i.department.is_none() && i.assignee_area.as_ref().is_some_and(|g| g.starts_with(area))).map(card));
    }
    // New reports in the grid the worker may handle on the spot.
    let on_spot = open_in(&desk, St::Reported).await?.iter().filter(|i| mine(i) && i.loop_.on_spot_allowed).map(card).filter(|c| !c.actions.is_empty()).collect();
    let c = Chrome::for_user(ctx, me, "mobile", ctx.lang.t("mobile.title"));
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::CONFLICT };
    Ok((status, render(&MobileList { c, verify, work, on_spot, banner, error })).into_response())
}

async fn list(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Response, Response> {
    let banner = match (q.0.get("reported"), q.0.get("done")) {
        (Some(id), _) | (_, Some(id)) => {
            let reported = q.0.contains_key("reported");
            let s = me.scoped(&state);
            match (s.incidents(), id.parse::<i64>().ok()) {
                (Some(desk), Some(id)) => desk.get(id).await.ok().map(|(i, _)| Banner {
                    id: i.id,
                    text: match (reported, i.loop_.state) {
                        (true, St::Handled) => ctx.lang.t("mobile.reported_on_spot"),
                        (true, _) => ctx.lang.t("mobile.reported"),
                        (false, _) => ctx.lang.t("mobile.done"),
                    },
                    receipt: if reported { i.receipt } else { String::new() },
                }),
                _ => None,
            }
        }
        _ => None,
    };
    render_list(&state, &me, &ctx, banner, String::new()).await
}

#[derive(Deserialize)]
struct ActForm {
    action: String,
    version: i64,
    #[serde(default)]
    note: String,
}

/// A step from the mobile list, through the same transition as anywhere else.
async fn act(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<ActForm>) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let Some(desk) = s.incidents() else {
        let _ = s.deny("incident.transition", "incident", "").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let Ok(id) = raw.parse::<i64>() else { return Err(crate::ui::not_found_page(&ctx.path)) };
    let action = match f.action.parse::<Action>() {
        Ok(a) if MOBILE_ACTIONS.contains(&a) => a,
        _ => return render_list(&state, &me, &ctx, None, format!("unknown action {:?}", f.action)).await,
    };
    let input = TransitionInput { note: f.note, ..TransitionInput::default() };
    match desk.transition(id, f.version, action, &input).await {
        Ok(_) => Ok(Redirect::to(&format!("/m?done={id}")).into_response()),
        Err(e) => match crate::ui_incidents::failure_text(ctx.lang, e) {
            (StatusCode::NOT_FOUND, _) => Err(crate::ui::not_found_page(&ctx.path)),
            (_, msg) => render_list(&state, &me, &ctx, None, format!("#{id}: {msg}")).await,
        },
    }
}

// ---------------------------------------------------------------- report

#[derive(Debug, Clone, Default)]
struct ReportFields {
    category: String,
    description: String,
    lat: String,
    lon: String,
    address: String,
    on_spot: bool,
    key: String,
}

#[derive(Template)]
#[template(path = "mobile_report.html")]
struct ReportPage {
    c: Chrome,
    f: ReportFields,
    /// (code, label, may be handled on the spot)
    categories: Vec<(String, String, bool)>,
    error: String,
}

async fn report_page(state: &AppState, me: &Caller, ctx: &Ctx, mut f: ReportFields, error: String) -> Result<Response, Response> {
    if f.key.is_empty() {
        f.key = crate::ui_incidents::form_key(ctx);
    }
    let cats = state.db.categories().await.map_err(ui_err)?;
    let spot: std::collections::HashSet<String> = cats.iter().filter(|c| c.on_spot).map(|c| c.code.clone()).collect();
    let categories = crate::ui_public::category_labels(&cats).into_iter().map(|(code, label)| { let s = spot.contains(&code); (code, label, s) }).collect();
    let c = Chrome::for_user(ctx, me, "mobile", ctx.lang.t("mobile.report"));
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok((status, render(&ReportPage { c, f, categories, error })).into_response())
}

async fn report_form(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let Some(_desk) = s.incidents() else {
        let _ = s.deny("incident.report", "incident", "").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    report_page(&state, &me, &ctx, ReportFields::default(), String::new()).await
}

fn parts_of(headers: &axum::http::HeaderMap, body: &[u8]) -> Option<Vec<Part>> {
    let ct = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok())?;
    crate::multipart::parse(body, &crate::multipart::boundary(ct)?)
}

/// A chosen photo, typed by its content and stripped of its metadata; None when no file
/// was chosen.
fn photo_of(parts: &[Part], ctx: &Ctx) -> Result<Option<(&'static str, Vec<u8>)>, String> {
    match parts.iter().find(|p| p.name == "photo" && !p.data.is_empty()) {
        None => Ok(None),
        Some(p) => match domain::photo::strip_metadata(&p.data) {
            Ok((kind, clean)) => Ok(Some((kind.mime(), clean))),
            Err(domain::photo::PhotoError::UnsupportedType) => Err(ctx.lang.t("photos.unsupported").into()),
            Err(e) => Err(e.to_string()),
        },
    }
}

/// A grid worker's report (source grid_patrol): the point resolves to its grid; with a
/// photo, and handled on the spot when asked and the category allows it.
async fn report(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, headers: axum::http::HeaderMap, body: Bytes) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let Some(desk) = s.incidents() else {
        let _ = s.deny("incident.report", "incident", "").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let Some(parts) = parts_of(&headers, &body) else {
        return report_page(&state, &me, &ctx, ReportFields::default(), ctx.lang.t("mobile.bad_form").into()).await;
    };
    let field = |k: &str| parts.iter().find(|p| p.name == k).map(|p| p.text().trim().to_string()).unwrap_or_default();
    let f = ReportFields {
        category: field("category"),
        description: field("description"),
        lat: field("lat"),
        lon: field("lon"),
        address: field("address"),
        on_spot: !field("on_spot").is_empty(),
        key: field("key"),
    };
    let point = match (f.lat.as_str(), f.lon.as_str()) {
        ("", "") => None,
        (lat, lon) => match domain::error::parse_point(lat, lon) {
            Ok(p) => Some(p),
            Err(e) => return report_page(&state, &me, &ctx, f, e.to_string()).await,
        },
    };
    let photo = match photo_of(&parts, &ctx) {
        Ok(p) => p,
        Err(e) => return report_page(&state, &me, &ctx, f, e).await,
    };
    let grid = point.and_then(|(lat, lon)| state.grids.snapshot().locate_grid(lon, lat).cloned());
    let new = NewIncident {
        category: f.category.clone(),
        description: f.description.clone(),
        point,
        address: Some(f.address.clone()).filter(|a| !a.is_empty()),
        source: Source::GridPatrol,
        grid,
        reporter_phone: None,
    };
    let key = Some(f.key.as_str()).filter(|k| !k.is_empty() && k.len() <= 200).map(|k| format!("mobile-{k}"));
    let (inc, created) = match desk.report(new, key.as_deref()).await {
        Ok(r) => r,
        Err(e) => {
            let e = ApiError::from(e);
            let text = ctx.lang.t(&format!("report.{}", e.code));
            let msg = if text.starts_with('⟦') { e.detail.clone() } else { text.to_string() };
            return report_page(&state, &me, &ctx, f, msg).await;
        }
    };
    if created {
        if let Some((mime, bytes)) = photo {
            desk.add_photo(inc.id, mime, bytes).await.map_err(ui_err)?;
        }
        if f.on_spot && inc.loop_.on_spot_allowed {
            let input = TransitionInput { note: ctx.lang.t("mobile.on_spot_note").into(), ..TransitionInput::default() };
            // The report stands even if this step does not (it shows on the list to retry).
            if let Err(e) = desk.transition(inc.id, inc.version, Action::HandleOnSpot, &input).await {
                tracing::warn!(incident = inc.id, error = ?e, "handling on the spot after a report failed");
            }
        }
    }
    Ok(Redirect::to(&format!("/m?reported={}", inc.id)).into_response())
}

/// Add a photo from a web form (multipart, with the CSRF field): the same scoped store
/// method and content checks as `POST /api/v1/incidents/{id}/photos`. `back=m` returns to
/// the mobile list, otherwise to the incident's page.
async fn add_photo(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, headers: axum::http::HeaderMap, body: Bytes) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let Some(desk) = s.incidents() else {
        let _ = s.deny("incident.photo", "incident", &raw).await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let Ok(id) = raw.parse::<i64>() else { return Err(crate::ui::not_found_page(&ctx.path)) };
    let parts = parts_of(&headers, &body).unwrap_or_default();
    let back = if parts.iter().any(|p| p.name == "back" && p.data == b"m") { "/m".to_string() } else { format!("/incidents/{id}") };
    let photo = match photo_of(&parts, &ctx) {
        Ok(Some(p)) => p,
        Ok(None) => return Err(error_page(&ctx, StatusCode::BAD_REQUEST, ctx.lang.t("photos.missing"), &back)),
        Err(e) => return Err(error_page(&ctx, StatusCode::UNSUPPORTED_MEDIA_TYPE, &e, &back)),
    };
    match desk.add_photo(id, photo.0, photo.1).await {
        Ok(_) => Ok(Redirect::to(&back).into_response()),
        Err(e) => {
            let e = ApiError::from(e);
            Err(if e.status == StatusCode::NOT_FOUND { crate::ui::not_found_page(&ctx.path) } else { e.into_response() })
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    c: Chrome,
    message: String,
    back: String,
}

fn error_page(ctx: &Ctx, status: StatusCode, message: &str, back: &str) -> Response {
    let c = Chrome::new(ctx, "", ctx.lang.t("error.title"));
    (status, render(&MessagePage { c, message: message.into(), back: back.into() })).into_response()
}

