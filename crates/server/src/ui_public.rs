//! What residents use without an account: the report form (no captcha; limited per client
//! instead) and the status page of a receipt, which shows no personal data.

use std::collections::HashMap;
use std::sync::Mutex;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use domain::Phone;
use domain::catalogue::Category;
use serde::Deserialize;
use store::audit::Actor;
use store::incidents::{NewIncident, Source};

use crate::AppState;
use crate::auth::MaybeCaller;
use crate::problem::ApiError;
use crate::ui::{Chrome, Ctx, render};

pub fn routes() -> Router<AppState> {
    Router::new().route("/report", get(form).post(submit)).route("/r/{receipt}", get(receipt_page))
}

/// Reports a client may file in [`WINDOW_MS`].
pub const REPORTS_PER_WINDOW: usize = 5;
pub const WINDOW_MS: i64 = 10 * 60 * 1000;

/// Receipt lookups a client may make in [`LOOKUP_WINDOW_MS`] (the status page, the API's
/// public receipt view and Open311, each receipt of a list counting once): plenty for
/// residents following their own reports, too few to guess receipt codes.
pub const LOOKUPS_PER_WINDOW: usize = 60;
pub const LOOKUP_WINDOW_MS: i64 = 60 * 1000;

/// Recent public actions per client address, within a sliding window (one process; a
/// district runs one public front or puts its proxy's limit in front of several).
pub struct ClientLimiter {
    per_window: usize,
    window_ms: i64,
    recent: Mutex<HashMap<String, Vec<i64>>>,
}

impl ClientLimiter {
    pub fn new(per_window: usize, window_ms: i64) -> ClientLimiter {
        ClientLimiter { per_window, window_ms, recent: Mutex::new(HashMap::new()) }
    }

    /// Public reports: [`REPORTS_PER_WINDOW`] in [`WINDOW_MS`].
    pub fn reports() -> ClientLimiter {
        ClientLimiter::new(REPORTS_PER_WINDOW, WINDOW_MS)
    }

    /// Receipt lookups: [`LOOKUPS_PER_WINDOW`] in [`LOOKUP_WINDOW_MS`].
    pub fn lookups() -> ClientLimiter {
        ClientLimiter::new(LOOKUPS_PER_WINDOW, LOOKUP_WINDOW_MS)
    }

    /// Whether the client may act once now; records it when it may.
    pub fn allow(&self, client: &str, now: i64) -> bool {
        self.allow_n(client, now, 1)
    }

    /// Whether the client may act `n` times now; records them when it may.
    pub fn allow_n(&self, client: &str, now: i64, n: usize) -> bool {
        let Ok(mut map) = self.recent.lock() else { return false };
        if map.len() > 100_000 {
            map.retain(|_, v| v.iter().any(|t| now - t < self.window_ms));
        }
        let times = map.entry(client.to_string()).or_default();
        times.retain(|t| now - t < self.window_ms);
        if times.len() + n > self.per_window {
            return false;
        }
        times.extend(std::iter::repeat_n(now, n));
        true
    }
}

struct CategoryOption {
    code: String,
    label: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    c: Chrome,
    categories: Vec<CategoryOption>,
    error: String,
    f: ReportForm,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    category: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    lat: String,
    #[serde(default)]
    lon: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    phone: String,
}

/// Second-level categories as (code, "kind · parent — name"), for staff forms.
pub fn category_labels(cats: &[Category]) -> Vec<(String, String)> {
    options(cats).into_iter().map(|o| (o.code, o.label)).collect()
}

fn options(cats: &[Category]) -> Vec<CategoryOption> {
    let top: HashMap<&str, &str> = cats.iter().filter(|c| c.parent.is_none()).map(|c| (c.code.as_str(), c.name.as_str())).collect();
    cats.iter()
        .filter(|c| c.parent.is_some())
        .map(|c| CategoryOption {
            code: c.code.clone(),
            label: format!("{} · {} — {}", c.kind.name_zh(), top.get(c.parent.as_deref().unwrap_or("")).copied().unwrap_or(""), c.name),
        })
        .collect()
}

async fn page(state: &AppState, ctx: &Ctx, me: Option<&crate::auth::Caller>, f: ReportForm, error: String) -> Result<Html<String>, Response> {
    let cats = state.db.categories().await.map_err(|e| ApiError::from(e).into_response())?;
    let c = Chrome::for_anyone(ctx, me, "report", ctx.lang.t("report.title"));
    Ok(render(&ReportPage { c, categories: options(&cats), error, f }))
}

async fn form(State(state): State<AppState>, MaybeCaller(r): MaybeCaller, ctx: Ctx) -> Result<Html<String>, Response> {
    page(&state, &ctx, r.caller.as_ref(), ReportForm::default(), String::new()).await
}

/// A report form's optional point (lat, lon) and optional phone.
pub(crate) type PointAndPhone = (Option<(f64, f64)>, Option<Phone>);

/// The optional point (both fields or neither) and the optional phone of a report form, or
/// the message to show.
pub(crate) fn point_and_phone(lat: &str, lon: &str, phone: &str, lang: crate::i18n::Lang) -> Result<PointAndPhone, String> {
    let point = match (lat.trim(), lon.trim()) {
        ("", "") => None,
        (lat, lon) => Some(domain::error::parse_point(lat, lon).map_err(|e| e.to_string())?),
    };
    let phone = match phone.trim() {
        "" => None,
        p => Some(Phone::parse(p).map_err(|_| lang.t("report.bad_phone").to_string())?),
    };
    Ok((point, phone))
}

async fn submit(State(state): State<AppState>, MaybeCaller(r): MaybeCaller, ctx: Ctx, Form(f): Form<ReportForm>) -> Result<Response, Response> {
    let me = r.caller.clone();
    let refuse = |status: StatusCode, error: String, f: ReportForm| {
        let (state, ctx, me) = (&state, &ctx, me.as_ref());
        async move { Ok::<Response, Response>((status, page(state, ctx, me, f, error).await?).into_response()) }
    };
    let (point, phone) = match point_and_phone(&f.lat, &f.lon, &f.phone, ctx.lang) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e, f).await,
    };
    if !state.report_limiter.allow(&r.client_addr, state.db.now_ms()) {
        return refuse(StatusCode::TOO_MANY_REQUESTS, ctx.lang.t("report.too_many").into(), f).await;
    }
    let grid = point.and_then(|(lat, lon)| state.grids.snapshot().locate_grid(lon, lat).cloned());
    let new = NewIncident {
        category: f.category.clone(),
        description: f.description.clone(),
        point,
        address: Some(f.address.clone()).filter(|a| !a.trim().is_empty()),
        source: Source::Resident,
        grid,
        reporter_phone: phone,
    };
    let actor = Actor::anonymous("resident", &r.operation_id, &r.client_addr);
    match state.db.create_incident(&actor, None, new, None).await {
        Ok((inc, _)) => Ok(Redirect::to(&format!("/r/{}", inc.receipt)).into_response()),
        Err(e) => {
            let e = ApiError::from(e);
            let key = format!("report.{}", e.code);
            let text = ctx.lang.t(&key);
            let msg = if text.starts_with('⟦') { e.detail.clone() } else { text.to_string() };
            refuse(e.status, msg, f).await
        }
    }
}

struct Step {
    at: String,
    action: String,
}

#[derive(Template)]
#[template(path = "receipt.html")]
struct ReceiptPage {
    c: Chrome,
    receipt: String,
    category: String,
    state: String,
    reported_at: String,
    steps: Vec<Step>,
}

async fn receipt_page(State(state): State<AppState>, MaybeCaller(r): MaybeCaller, ctx: Ctx, Path(receipt): Path<String>) -> Result<Html<String>, Response> {
    if !state.lookup_limiter.allow(&r.client_addr, state.db.now_ms()) {
        return Err((StatusCode::TOO_MANY_REQUESTS, [(axum::http::header::RETRY_AFTER, "60")], ctx.lang.t("receipt.too_many")).into_response());
    }
    let Some(inc) = state.db.incident_by_receipt(&receipt).await.map_err(|e| ApiError::from(e).into_response())? else {
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let category = state
        .db
        .categories()
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .into_iter()
        .find(|c| c.code == inc.category)
        .map(|c| c.name)
        .unwrap_or_default();
    let steps = state
        .db
        .timeline(inc.id)
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .into_iter()
        .map(|t| Step { at: domain::time::format_shanghai(t.at), action: ctx.lang.t(&format!("action.{}", t.action)).to_string() })
        .collect();
    let c = Chrome::for_anyone(&ctx, r.caller.as_ref(), "report", ctx.lang.t("receipt.title"));
    let state_name = if ctx.lang == crate::i18n::Lang::Zh { inc.loop_.state.name_zh().to_string() } else { inc.loop_.state.as_str().replace('_', " ") };
    Ok(render(&ReceiptPage {
        c,
        receipt: inc.receipt,
        category,
        state: state_name,
        reported_at: domain::time::format_shanghai(inc.created_at),
        steps,
    }))
}
