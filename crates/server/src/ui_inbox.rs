//! The inbox page: what needs the caller's action (a new dispatch, a return, a step past
//! its limit, a verification due), each with a link to the incident and a button that
//! marks it read (htmx swaps the item; without JavaScript the form reloads the page).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::api::Params;
use crate::auth::UiCaller;
use crate::problem::ApiError;
use crate::ui::{Chrome, Ctx, render};

pub fn routes() -> Router<AppState> {
    Router::new().route("/inbox", get(inbox)).route("/inbox/count", get(count)).route("/inbox/{id}/read", post(mark_read))
}

pub struct Item {
    pub id: i64,
    pub incident_id: i64,
    pub kind: String,
    pub message: String,
    pub at: String,
    pub read: bool,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    c: Chrome,
    items: Vec<Item>,
    unread_only: bool,
}

#[derive(Template)]
#[template(path = "inbox_item.html")]
struct ItemPartial {
    c: Chrome,
    n: Item,
}

fn item(n: store::notifications::Notification) -> Item {
    Item { id: n.id, incident_id: n.incident_id, kind: n.kind, message: n.message, at: domain::time::format_shanghai(n.created_at), read: n.read }
}

async fn inbox(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Html<String>, Response> {
    let unread_only = q.0.get("unread").is_some_and(|v| v == "1" || v == "true");
    let items = state.db.inbox(&me.principal, unread_only, 200).await.map_err(|e| ApiError::from(e).into_response())?;
    let c = Chrome::for_user(&ctx, &me, "inbox", ctx.lang.t("inbox.title"));
    Ok(render(&InboxPage { c, items: items.into_iter().map(item).collect(), unread_only }))
}

/// The unread count for the navigation (empty when there is nothing unread).
async fn count(State(state): State<AppState>, UiCaller(me): UiCaller) -> Html<String> {
    match state.db.inbox(&me.principal, true, 100).await {
        Ok(items) if items.len() >= 100 => Html(" 99+".into()),
        Ok(items) if !items.is_empty() => Html(format!(" {}", items.len())),
        _ => Html(String::new()),
    }
}

/// Mark an item read: htmx gets the item back, a plain form goes back to the inbox.
async fn mark_read(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, headers: HeaderMap, Path(raw): Path<String>) -> Result<Response, Response> {
    let Ok(id) = raw.parse::<i64>() else { return Err(crate::ui::not_found_page(&ctx.path)) };
    if let Err(e) = state.db.mark_read(&me.principal, id).await {
        let e = ApiError::from(e);
        return Err(if e.status == StatusCode::NOT_FOUND { crate::ui::not_found_page(&ctx.path) } else { e.into_response() });
    }
    if headers.contains_key("hx-request") {
        let found = state.db.inbox(&me.principal, false, 200).await.map_err(|e| ApiError::from(e).into_response())?;
        if let Some(n) = found.into_iter().find(|n| n.id == id) {
            let c = Chrome::for_user(&ctx, &me, "inbox", "");
            return Ok(render(&ItemPartial { c, n: item(n) }).into_response());
        }
    }
    Ok(Redirect::to("/inbox").into_response())
}
