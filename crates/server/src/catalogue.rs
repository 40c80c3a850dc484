//! The API of the incident catalogue and the work calendar.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use domain::calendar::Day;
use serde::{Deserialize, Serialize};
use store::catalogue::DayKind;
use utoipa::ToSchema;

use crate::AppState;
use crate::accounts::Body;
use crate::api::Params;
use crate::auth::ApiCaller;
use crate::problem::{ApiError, Problem};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/categories", get(list_categories))
        .route("/api/v1/departments", get(list_departments))
        .route("/api/v1/calendar", get(calendar))
        .route("/api/v1/calendar/{day}", put(set_day))
}

/// A time limit in working time.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitDto {
    /// `working_hours` or `working_days`
    pub unit: String,
    pub value: u32,
}

impl From<domain::calendar::TimeLimit> for LimitDto {
    fn from(l: domain::calendar::TimeLimit) -> Self {
        match l {
            domain::calendar::TimeLimit::WorkingHours(n) => LimitDto { unit: "working_hours".into(), value: n },
            domain::calendar::TimeLimit::WorkingDays(n) => LimitDto { unit: "working_days".into(), value: n },
        }
    }
}

/// Time limits of the steps: file (立案), dispatch (派遣), handle (处置), verify (核查).
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsDto {
    pub file: LimitDto,
    pub dispatch: LimitDto,
    pub handle: LimitDto,
    pub verify: LimitDto,
}

/// A category: `C..` 部件 (component) or `E..` 事件 (event); two levels.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryDto {
    #[schema(example = "C0101")]
    pub code: String,
    pub name: String,
    /// `component` (部件) or `event` (事件)
    pub kind: String,
    pub parent: Option<String>,
    /// The department it is dispatched to by default.
    pub department: Option<String>,
    pub limits: Option<LimitsDto>,
    /// A grid worker may handle it on the spot (自行处置).
    pub on_spot: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryList {
    pub items: Vec<CategoryDto>,
}

/// The incident categories.
#[utoipa::path(get, path = "/api/v1/categories", tag = "catalogue", operation_id = "listCategories",
    responses((status = 200, body = CategoryList), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_categories(State(state): State<AppState>, _c: ApiCaller) -> Result<Json<CategoryList>, ApiError> {
    let items = state
        .db
        .categories()
        .await?
        .into_iter()
        .map(|c| CategoryDto {
            code: c.code,
            name: c.name,
            kind: c.kind.as_str().into(),
            parent: c.parent,
            department: c.department,
            limits: c.limits.map(|l| LimitsDto { file: l.file.into(), dispatch: l.dispatch.into(), handle: l.handle.into(), verify: l.verify.into() }),
            on_spot: c.on_spot,
        })
        .collect();
    Ok(Json(CategoryList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentDto {
    pub code: String,
    pub name: String,
}

/// The departments incidents are dispatched to.
#[utoipa::path(get, path = "/api/v1/departments", tag = "catalogue", operation_id = "listDepartments",
    responses((status = 200, body = [DepartmentDto]), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_departments(State(state): State<AppState>, _c: ApiCaller) -> Result<Json<Vec<DepartmentDto>>, ApiError> {
    Ok(Json(state.db.departments().await?.into_iter().map(|d| DepartmentDto { code: d.code, name: d.name }).collect()))
}

/// A day that differs from the weekly pattern.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarDayDto {
    #[schema(example = "2026-10-01")]
    pub day: String,
    /// `holiday` or `workday` (a make-up workday, 调休)
    pub kind: String,
    pub name: String,
}

fn year_of(q: &Params) -> Result<i64, ApiError> {
    match q.0.get("year").map(|y| y.trim()) {
        None | Some("") => Ok(2026),
        Some(y) => y
            .parse::<i64>()
            .ok()
            .filter(|y| (1990..=2100).contains(y))
            .ok_or_else(|| ApiError::bad_request("invalid_year", format!("year must be from 1990 to 2100, got {y:?}"))),
    }
}

/// The work calendar's holidays and make-up workdays of a year.
#[utoipa::path(get, path = "/api/v1/calendar", tag = "catalogue", operation_id = "getCalendar",
    params(("year" = Option<i64>, Query, description = "The year (default 2026)")),
    responses((status = 200, body = [CalendarDayDto]), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn calendar(State(state): State<AppState>, _c: ApiCaller, q: Params) -> Result<Json<Vec<CalendarDayDto>>, ApiError> {
    let year = year_of(&q)?;
    let (from, to) = (Day::from_ymd(year, 1, 1), Day::from_ymd(year, 12, 31));
    let (Some(from), Some(to)) = (from, to) else { return Err(ApiError::bad_request("invalid_year", "no such year")) };
    let days = state.db.calendar_days(from, to).await?;
    Ok(Json(days.into_iter().map(|d| CalendarDayDto { day: d.day.to_string(), kind: d.kind.as_str().into(), name: d.name }).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DayUpdate {
    /// `holiday`, `workday` (a make-up workday) or `normal` (back to the weekly pattern)
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// Mark a day as a holiday or a make-up workday, or return it to normal (shift leads, admins).
#[utoipa::path(put, path = "/api/v1/calendar/{day}", tag = "catalogue", operation_id = "setCalendarDay",
    params(("day" = String, Path, description = "YYYY-MM-DD")), request_body = DayUpdate,
    responses(
        (status = 204, description = "Saved"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Your role may not edit the calendar", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn set_day(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>, Body(req): Body<DayUpdate>) -> Result<StatusCode, ApiError> {
    let s = c.scoped(&state);
    let Some(editor) = s.calendar_editor() else {
        return Err(s.deny("calendar.update", "calendar_day", &raw).await.into());
    };
    let day = Day::parse(&raw).ok_or_else(|| ApiError::bad_request("invalid_date", format!("{raw:?} is not a date YYYY-MM-DD")))?;
    let entry = match req.kind.as_str() {
        "holiday" => Some((DayKind::Holiday, req.name.as_str())),
        "workday" => Some((DayKind::Workday, req.name.as_str())),
        "normal" => None,
        other => return Err(ApiError::bad_request("invalid_day_kind", format!("kind is holiday, workday or normal, not {other:?}"))),
    };
    editor.set_day(day, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}
