//! The in-app inbox, the time-limit watcher and outbound delivery of notifications.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::Params;
use crate::auth::ApiCaller;
use crate::problem::{ApiError, Problem};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/inbox", get(inbox)).route("/api/v1/inbox/{id}/read", post(mark_read))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDto {
    pub id: i64,
    pub incident_id: i64,
    /// dispatched, returned, verification_due, overdue
    pub kind: String,
    pub message: String,
    pub created_at: i64,
    pub read: bool,
}

/// What needs your action: new dispatches, returns, verifications due, overdue items.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "incidents", operation_id = "inbox",
    params(("unread" = Option<bool>, Query, description = "Only unread items")),
    responses((status = 200, body = [NotificationDto]), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn inbox(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Json<Vec<NotificationDto>>, ApiError> {
    let unread = q.0.get("unread").is_some_and(|v| v == "true" || v == "1");
    let items = state.db.inbox(&c.principal, unread, 200).await?;
    Ok(Json(
        items
            .into_iter()
            .map(|n| NotificationDto { id: n.id, incident_id: n.incident_id, kind: n.kind, message: n.message, created_at: n.created_at, read: n.read })
            .collect(),
    ))
}

/// Mark an item of your inbox read.
#[utoipa::path(post, path = "/api/v1/inbox/{id}/read", tag = "incidents", operation_id = "markRead",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn mark_read(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>) -> Result<StatusCode, ApiError> {
    let id = raw.parse().map_err(|_| ApiError::not_found("not_found", format!("notification {raw} not found")))?;
    state.db.mark_read(&c.principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where notifications go beyond the inbox (SMS and e-mail adapters plug in here).
pub trait Outbound: Send + Sync {
    fn deliver(&self, kind: &str, audience: &str, message: &str);
}

/// The default channel: a log line per notification.
pub struct LogOutbound;

impl Outbound for LogOutbound {
    fn deliver(&self, kind: &str, audience: &str, message: &str) {
        tracing::info!(kind, audience, message, "notification");
    }
}

/// Run one pass of the time-limit watcher.
pub async fn watch_once(state: &AppState) -> Result<Vec<i64>, store::StoreError> {
    state.db.watch_time_limits().await
}

/// The watcher every minute, and outbound delivery of new notifications, until the process ends.
pub fn spawn(state: AppState, outbound: std::sync::Arc<dyn Outbound>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Deliver what is new from now on; older items are in the inboxes already.
        let mut last = state.db.last_notification_id().await.unwrap_or(0);
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match watch_once(&state).await {
                Ok(found) if !found.is_empty() => tracing::info!(overdue = found.len(), "time limits checked"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "time-limit watcher failed; will retry"),
            }
            while let Ok(batch) = state.db.notifications_since(last, 500).await {
                let Some(end) = batch.last().map(|n| n.0) else { break };
                for (_, kind, role, area, dept, message) in &batch {
                    let audience = dept.clone().unwrap_or_else(|| format!("{role}@{}", area.clone().unwrap_or_default()));
                    outbound.deliver(kind, &audience, message);
                }
                last = end;
            }
        }
    })
}
