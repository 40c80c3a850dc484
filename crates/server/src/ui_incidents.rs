//! The staff's incident screens: the board of incidents in scope with their warning
//! colours, and an incident's page with its point on the map, its timeline and the actions
//! the caller may take.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::incident::Action;
use serde::Deserialize;
use store::incidents::{TransitionFailure, TransitionInput};

use crate::AppState;
use crate::api::Params;
use crate::auth::UiCaller;
use crate::incidents::{Clocks, IncidentDto};
use crate::problem::ApiError;
use crate::ui::{Chrome, Ctx, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents", get(board))
        .route("/incidents/{id}", get(page))
        .route("/incidents/{id}/act", post(act))
}

/// A row of the board.
struct Row {
    i: IncidentDto,
    state_name: &'static str,
    category: String,
    deadline: String,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct Board {
    c: Chrome,
    rows: Vec<Row>,
    state: String,
    states: Vec<(&'static str, &'static str)>,
}

fn state_name(s: &str) -> &'static str {
    s.parse::<domain::incident::State>().map(|s| s.name_zh()).unwrap_or("")
}

async fn category_names(state: &AppState) -> Result<std::collections::HashMap<String, String>, Response> {
    Ok(state.db.categories().await.map_err(|e| ApiError::from(e).into_response())?.into_iter().map(|c| (c.code, c.name)).collect())
}

async fn board(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Html<String>, Response> {
    let s = me.scoped(&state);
    let Some(desk) = s.incidents() else {
        let _ = s.deny("incident.list", "incident", "*").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let wanted = q.0.get("state").cloned().unwrap_or_default();
    let mut f = crate::incidents::filter_of(&q, state.db.now_ms()).unwrap_or_default();
    if !q.0.contains_key("limit") {
        f.limit = 200;
    }
    let items = desk.list(&f).await.map_err(|e| ApiError::from(e).into_response())?;
    let clocks = Clocks::load(&state).await.map_err(IntoResponse::into_response)?;
    let names = category_names(&state).await?;
    let rows = items
        .iter()
        .map(|inc| {
            let i = IncidentDto::new(inc, &clocks);
            Row {
                state_name: state_name(&i.state),
                category: names.get(&i.category).cloned().unwrap_or_default(),
                deadline: i.deadline.map(domain::time::format_shanghai).unwrap_or_default(),
                i,
            }
        })
        .collect();
    let states = domain::incident::State::ALL.iter().map(|s| (s.as_str(), s.name_zh())).collect();
    let c = Chrome::for_user(&ctx, &me, "incidents", ctx.lang.t("incidents.title"));
    Ok(render(&Board { c, rows, state: wanted, states }))
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
    error: String,
    geo: String,
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
    let actions = desk.allowed(&inc).into_iter().map(|a| (a.as_str(), ctx.lang.t(&format!("action.{}", a.as_str())).to_string())).collect();
    let departments = state.db.departments().await.map_err(|e| ApiError::from(e).into_response())?.into_iter().map(|d| (d.code, d.name)).collect();
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
    let geo = i.grid.as_ref().map(|g| format!("/api/v1/areas/{g}/geometry")).unwrap_or_default();
    let c = Chrome::for_user(ctx, me, "incidents", format!("#{}", i.id));
    let page = Page {
        state_name: state_name(&i.state),
        category: names.get(&i.category).cloned().unwrap_or_default(),
        deadline: i.deadline.map(domain::time::format_shanghai).unwrap_or_default(),
        created: domain::time::format_shanghai(i.created_at),
        c,
        steps,
        actions,
        departments,
        error: error.clone(),
        geo,
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
