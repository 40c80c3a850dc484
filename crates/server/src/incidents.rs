//! The incidents API: report, list, read with the timeline, move through the loop, and the
//! resident's receipt page.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::incident::Action;
use domain::{AreaCode, Phone};
use serde::{Deserialize, Serialize};
use store::incidents::{Incident, IncidentFilter, NewIncident, Source, Transition, TransitionFailure, TransitionInput};
use utoipa::ToSchema;

use crate::AppState;
use crate::accounts::Body;
use crate::api::Params;
use crate::auth::ApiCaller;
use crate::problem::{ApiError, Problem};

/// Photo upload and download; uploads are limited to `max_bytes`.
pub fn photo_routes(max_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/api/v1/incidents/{id}/photos", post(upload_photo).layer(axum::extract::DefaultBodyLimit::max(max_bytes)))
        .route("/api/v1/photos/{hash}", get(photo))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/incidents", post(report).get(list))
        .route("/api/v1/incidents/{id}", get(read))
        .route("/api/v1/incidents/{id}/transitions", post(transition))
        .route("/api/v1/incidents/{id}/place", post(place))
        .route("/api/v1/incidents/{id}/duplicates", get(duplicates))
        .route("/api/v1/public/receipts/{receipt}", get(receipt))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

/// A report.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewIncidentRequest {
    /// A second-level category code (GET /api/v1/categories), e.g. C0101.
    pub category: String,
    pub description: String,
    /// WGS-84; resolved to its grid. Without it, an address is needed.
    pub location: Option<Location>,
    pub address: Option<String>,
    /// grid_patrol, resident, hotline, camera, leader (default: by the caller's role)
    pub source: Option<String>,
    /// The reporter's phone, for a callback; stored masked to everyone but those who may unmask.
    pub reporter_phone: Option<String>,
}

/// An incident as staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDto {
    pub id: i64,
    /// The resident's receipt code.
    pub receipt: String,
    pub category: String,
    pub description: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub address: Option<String>,
    /// The basic grid of the point, or null while an address-only report waits to be placed.
    pub grid: Option<String>,
    /// The area that owns the incident (its grid, or the level it was escalated to).
    pub area: String,
    /// grid, community, street or district
    pub level: String,
    pub source: String,
    /// reported, filed, dispatched, in_progress, handled, verified, closed, evaluated,
    /// rejected, merged, shelved, voided
    pub state: String,
    pub department: Option<String>,
    pub assignee_area: Option<String>,
    pub supervised: bool,
    pub extension_pending: bool,
    /// Working hours asked for by the pending extension request.
    pub extension_requested_hours: i64,
    /// Working hours added to the running step's limit by approved extensions.
    pub extension_granted_hours: i64,
    /// Some step of this incident ran past its limit.
    pub late: bool,
    /// When it was closed (结案), ms UTC.
    pub closed_at: Option<i64>,
    pub returns: u32,
    pub reworks: u32,
    pub rating: Option<i64>,
    pub reporter_phone_masked: Option<String>,
    /// Send it back with a transition: a stale version is refused.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The step whose time limit runs now: file, dispatch, handle, verify (null when none runs).
    pub step: Option<String>,
    /// When the running step's limit is reached, on the work calendar (ms, UTC).
    pub deadline: Option<i64>,
    /// green (under 80 % of the limit used), yellow (80–100 %), red (past it).
    pub warning: Option<String>,
}

/// The instant a response's warning colours are computed for.
pub struct Clocks {
    now: i64,
}

impl Clocks {
    /// The instant the warning colours are seen at (the steps' clocks are stored with the
    /// incidents: see `store::timing`).
    pub async fn load(state: &AppState) -> Result<Clocks, ApiError> {
        Ok(Clocks { now: state.db.now_ms() })
    }

    /// The running step, its deadline and its warning colour.
    pub fn of(&self, i: &Incident) -> (Option<domain::incident::Step>, Option<i64>, Option<domain::calendar::Warning>) {
        let step = i.loop_.state.step();
        match (step, i.clock) {
            (Some(s), Some(c)) => (Some(s), Some(c.due_at), Some(c.warning(self.now))),
            _ => (step, None, None),
        }
    }
}

fn step_name(s: domain::incident::Step) -> &'static str {
    match s {
        domain::incident::Step::File => "file",
        domain::incident::Step::Dispatch => "dispatch",
        domain::incident::Step::Handle => "handle",
        domain::incident::Step::Verify => "verify",
    }
}

fn warning_name(w: domain::calendar::Warning) -> &'static str {
    match w {
        domain::calendar::Warning::Green => "green",
        domain::calendar::Warning::Yellow => "yellow",
        domain::calendar::Warning::Red => "red",
    }
}

impl IncidentDto {
    pub fn new(i: &Incident, clocks: &Clocks) -> Self {
        let (step, deadline, warning) = clocks.of(i);
        IncidentDto {
            step: step.map(|s| step_name(s).to_string()),
            deadline,
            warning: warning.map(|w| warning_name(w).to_string()),
            ..IncidentDto::bare(i)
        }
    }

    fn bare(i: &Incident) -> Self {
        IncidentDto {
            step: None,
            deadline: None,
            warning: None,
            id: i.id,
            receipt: i.receipt.clone(),
            category: i.category.clone(),
            description: i.description.clone(),
            lat: i.lat,
            lon: i.lon,
            address: i.address.clone(),
            grid: i.grid.as_ref().map(ToString::to_string),
            area: i.area.to_string(),
            level: i.loop_.level.as_str().into(),
            source: i.source.clone(),
            state: i.loop_.state.as_str().into(),
            department: i.department.clone(),
            assignee_area: i.assignee_area.as_ref().map(ToString::to_string),
            supervised: i.loop_.supervised,
            extension_pending: i.loop_.extension_pending,
            extension_requested_hours: i.extension_requested_ms / 3_600_000,
            extension_granted_hours: i.extension_ms / 3_600_000,
            late: i.late,
            closed_at: i.closed_at,
            returns: i.loop_.returns,
            reworks: i.loop_.reworks,
            rating: i.rating,
            reporter_phone_masked: i.reporter_phone_masked.clone(),
            version: i.version,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionDto {
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor_kind: String,
    pub actor_name: String,
    pub note: String,
    pub at: i64,
}

impl From<Transition> for TransitionDto {
    fn from(t: Transition) -> Self {
        TransitionDto {
            action: t.action,
            from_state: t.from_state,
            to_state: t.to_state,
            actor_kind: t.actor_kind,
            actor_name: t.actor_name,
            note: t.note,
            at: t.at,
        }
    }
}

/// An incident with its timeline and what the caller may do next.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentDto,
    pub timeline: Vec<TransitionDto>,
    pub allowed_actions: Vec<String>,
    /// The incident this one was merged into, as a duplicate.
    pub merged_into: Option<i64>,
    /// The incidents merged into this one.
    pub duplicates: Vec<i64>,
    /// Its photos: fetch each at /api/v1/photos/{hash}.
    pub photos: Vec<PhotoDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoDto {
    /// SHA-256 of the stored image, hex.
    pub hash: String,
    /// image/jpeg, image/png or image/webp
    pub mime: String,
    pub size: i64,
}

impl From<store::photos::PhotoRef> for PhotoDto {
    fn from(p: store::photos::PhotoRef) -> Self {
        PhotoDto { hash: p.hash, mime: p.mime, size: p.size }
    }
}

/// A request body of raw bytes; one too large is a problem, not plain text.
pub struct PhotoBody(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for PhotoBody {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state).await.map(PhotoBody).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "photo_too_large", "the photo is larger than this server accepts")
            } else {
                ApiError::bad_request("invalid_body", e.body_text())
            }
        })
    }
}

/// Add a photo to an incident: the raw bytes of a JPEG, PNG or WebP image as the body. The
/// type is read from the content; location and other metadata are removed before storing.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/photos", tag = "incidents", operation_id = "addPhoto",
    params(("id" = i64, Path)),
    request_body(content = Vec<u8>, content_type = "image/jpeg", description = "The image bytes (JPEG, PNG or WebP)"),
    responses(
        (status = 201, body = PhotoDto),
        (status = 400, description = "A damaged image", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than the configured limit (10 MB by default)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a JPEG, PNG or WebP image", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn upload_photo(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>, PhotoBody(body): PhotoBody) -> Result<(StatusCode, Json<PhotoDto>), ApiError> {
    let s = c.scoped(&state);
    let Some(desk) = s.incidents() else {
        return Err(s.deny("incident.photo", "incident", &raw).await.into());
    };
    let id = incident_id(&raw)?;
    let (kind, clean) = domain::photo::strip_metadata(&body).map_err(|e| match e {
        domain::photo::PhotoError::UnsupportedType => ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", e.to_string()),
        domain::photo::PhotoError::Damaged(_) => ApiError::bad_request("damaged_image", e.to_string()),
    })?;
    let p = desk.add_photo(id, kind.mime(), clean).await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

/// A photo of an incident in your scope.
#[utoipa::path(get, path = "/api/v1/photos/{hash}", tag = "incidents", operation_id = "getPhoto",
    params(("hash" = String, Path)),
    responses((status = 200, description = "The image", content_type = "image/jpeg"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn photo(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(hash): Path<String>) -> Result<Response, ApiError> {
    let s = c.scoped(&state);
    let Some(desk) = s.incidents() else {
        return Err(s.deny("photo.read", "photo", &hash).await.into());
    };
    let (mime, bytes) = desk.photo(&hash).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, mime), (axum::http::header::CACHE_CONTROL, "private, max-age=86400".to_string())], bytes).into_response())
}

fn default_source(role: domain::Role) -> Source {
    match role {
        domain::Role::Operator | domain::Role::Dispatcher | domain::Role::ShiftLead => Source::Hotline,
        _ => Source::GridPatrol,
    }
}

/// Report an incident. Send an `Idempotency-Key` header so that a retry returns the same
/// incident instead of a second one.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", operation_id = "reportIncident",
    request_body = NewIncidentRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Any unique string per report; a retry with the same key returns the first incident")),
    responses(
        (status = 201, description = "Reported", body = IncidentDto),
        (status = 200, description = "A retry: the incident this key already made", body = IncidentDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown category (unknown_category), or a description over 4,000 characters (description_too_long)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn report(State(state): State<AppState>, ApiCaller(c): ApiCaller, headers: HeaderMap, Body(req): Body<NewIncidentRequest>) -> Result<Response, ApiError> {
    let s = c.scoped(&state);
    let Some(desk) = s.incidents() else {
        return Err(s.deny("incident.report", "incident", "").await.into());
    };
    let point = match &req.location {
        Some(l) => Some(domain::error::parse_point(&l.lat.to_string(), &l.lon.to_string())?),
        None => None,
    };
    let grid: Option<AreaCode> = point.and_then(|(lat, lon)| state.grids.snapshot().locate_grid(lon, lat).cloned());
    let source = match req.source.as_deref() {
        None => default_source(c.principal.role),
        Some(s) => Source::parse(s).ok_or_else(|| ApiError::bad_request("invalid_source", format!("unknown source {s:?}")))?,
    };
    let phone = req.reporter_phone.as_deref().filter(|p| !p.trim().is_empty()).map(Phone::parse).transpose()?;
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty());
    if key.is_some_and(|k| k.len() > 200) {
        return Err(ApiError::bad_request("invalid_idempotency_key", "the Idempotency-Key is longer than 200 characters"));
    }
    let new = NewIncident {
        category: req.category,
        description: req.description,
        point,
        address: req.address,
        source,
        grid,
        reporter_phone: phone,
    };
    let (inc, created) = desk.report(new, key).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(IncidentDto::new(&inc, &Clocks::load(&state).await?))).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentPage {
    pub items: Vec<IncidentDto>,
    /// When older incidents follow: pass as `before` for the next page.
    pub next_before: Option<i64>,
}

/// Incidents in your scope, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", operation_id = "listIncidents",
    params(
        ("state" = Option<String>, Query), ("category" = Option<String>, Query),
        ("area" = Option<String>, Query, description = "An area code: that subtree only (within your scope)"),
        ("department" = Option<String>, Query), ("source" = Option<String>, Query, description = "grid_patrol, resident, hotline, camera, leader"),
        ("warning" = Option<String>, Query, description = "green, yellow or red: running steps of that colour now"),
        ("before" = Option<i64>, Query, description = "Cursor: incidents with a smaller id"),
        ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
    ),
    responses((status = 200, body = IncidentPage), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Json<IncidentPage>, ApiError> {
    let s = c.scoped(&state);
    let Some(desk) = s.incidents() else {
        return Err(s.deny("incident.list", "incident", "*").await.into());
    };
    let f = filter_of(&q, state.db.now_ms())?;
    let items = desk.list(&f).await?;
    let next_before = (items.len() as i64 == f.limit).then(|| items.last().map(|i| i.id)).flatten();
    let clocks = Clocks::load(&state).await?;
    Ok(Json(IncidentPage { items: items.iter().map(|i| IncidentDto::new(i, &clocks)).collect(), next_before }))
}

/// A list filter from query parameters (shared by the API and the board): state,
/// category, area (a code prefix within the caller's scope), department, source,
/// warning (green, yellow, red, seen at `now`), before and limit.
pub fn filter_of(q: &Params, now: i64) -> Result<IncidentFilter, ApiError> {
    let get = |k: &str| q.0.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let num = |k: &str, lo: i64, hi: i64| -> Result<Option<i64>, ApiError> {
        get(k)
            .map(|v| v.parse::<i64>().ok().filter(|n| (lo..=hi).contains(n)).ok_or_else(|| ApiError::bad_request("invalid_query", format!("{k} must be a number from {lo} to {hi}"))))
            .transpose()
    };
    let warning = get("warning")
        .map(|w| match w {
            "green" => Ok(domain::calendar::Warning::Green),
            "yellow" => Ok(domain::calendar::Warning::Yellow),
            "red" => Ok(domain::calendar::Warning::Red),
            other => Err(ApiError::bad_request("invalid_warning", format!("warning must be green, yellow or red, not {other:?}"))),
        })
        .transpose()?;
    Ok(IncidentFilter {
        state: get("state").map(|v| v.parse().map_err(|e: String| ApiError::bad_request("invalid_state", e))).transpose()?,
        category: get("category").map(str::to_string),
        area: get("area").map(AreaCode::parse).transpose()?,
        department: get("department").map(str::to_string),
        source: get("source").map(|v| Source::parse(v).ok_or_else(|| ApiError::bad_request("invalid_source", format!("unknown source {v:?}")))).transpose()?,
        warning: warning.map(|w| (w, now)),
        before_id: num("before", 1, i64::MAX)?,
        limit: num("limit", 1, 500)?.unwrap_or(50),
    })
}

fn incident_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("not_found", format!("incident {raw} not found")))
}

/// One incident with its timeline.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", operation_id = "getIncident",
    params(("id" = i64, Path)),
    responses((status = 200, body = IncidentDetail), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn read(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>) -> Result<Json<IncidentDetail>, ApiError> {
    let s = c.scoped(&state);
    let Some(desk) = s.incidents() else {
        return Err(s.deny("incident.read", "incident", &raw).await.into());
    };
    let (inc, timeline) = desk.get(incident_id(&raw)?).await?;
    let allowed_actions = desk.allowed(&inc).into_iter().map(|a| a.as_str().to_string()).collect();
    let duplicates = state.db.duplicates_of(inc.id).await?;
    let photos = state.db.photos_of(inc.id).await?.into_iter().map(PhotoDto::from).collect();
    Ok(Json(IncidentDetail {
        incident: IncidentDto::new(&inc, &Clocks::load(&state).await?),
        timeline: timeline.into_iter().map(Into::into).collect(),
        allowed_actions,
        merged_into: inc.merged_into,
        duplicates,
        photos,
    }))
}

/// A step of the loop.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TransitionRequest {
    /// file, reject, merge, dispatch, accept, return, request_extension, approve_extension,
    /// deny_extension, handle, handle_on_spot, verify, fail_verification, close, evaluate,
    /// reopen, escalate, supervise, shelve, unshelve, void
    pub action: String,
    /// The version you read: a stale one is refused with 409.
    pub version: i64,
    /// dispatch: to a department …
    pub department: Option<String>,
    /// … or to a grid.
    pub grid: Option<String>,
    /// The reason, the result, the note.
    #[serde(default)]
    pub note: String,
    /// evaluate: satisfaction 1–5.
    pub rating: Option<u8>,
    /// merge: the id of the incident that survives.
    pub into: Option<i64>,
    /// request_extension: how much more working time, in working hours (1–390).
    pub extension_hours: Option<u32>,
}

/// Move an incident through the loop. An action the state does not allow answers 409 and
/// lists the allowed ones; a stale version answers 409.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/transitions", tag = "incidents", operation_id = "transitionIncident",
    params(("id" = i64, Path)), request_body = TransitionRequest,
    responses(
        (status = 200, body = IncidentDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed now (errors lists the allowed actions), or a stale version", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn transition(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(raw): Path<String>,
    Body(req): Body<TransitionRequest>,
) -> Result<Json<IncidentDto>, ApiError> {
    let s = c.scoped(&state);
    let Some(desk) = s.incidents() else {
        return Err(s.deny("incident.transition", "incident", &raw).await.into());
    };
    let id = incident_id(&raw)?;
    let action: Action = req.action.parse().map_err(|e: String| ApiError::bad_request("invalid_action", e))?;
    let input = TransitionInput {
        department: req.department.filter(|d| !d.is_empty()),
        grid: req.grid.as_deref().filter(|g| !g.is_empty()).map(AreaCode::parse).transpose()?,
        note: req.note,
        rating: req.rating,
        into: req.into,
        extension_hours: req.extension_hours,
    };
    match desk.transition(id, req.version, action, &input).await {
        Ok(inc) => Ok(Json(IncidentDto::new(&inc, &Clocks::load(&state).await?))),
        Err(e) => Err(failure_problem(e)),
    }
}

/// A failed transition (or placing) as a problem: 409 for a stale version or a step the
/// loop refuses (with the allowed actions), 404 out of scope, 400 for bad input.
fn failure_problem(e: TransitionFailure) -> ApiError {
    match e {
        TransitionFailure::Store(e) => e.into(),
        TransitionFailure::Stale { current } => ApiError::new(
            StatusCode::CONFLICT,
            "stale_version",
            format!("the incident changed since you read it (now at version {current}); read it again"),
        ),
        TransitionFailure::Refused(e) => {
            let mut err = ApiError::new(
                if e.code() == "invalid_rating" { StatusCode::BAD_REQUEST } else { StatusCode::CONFLICT },
                e.code(),
                e.to_string(),
            );
            if let domain::incident::TransitionError::NotAllowed { allowed, .. } = &e {
                err.errors = Some(serde_json::json!({"allowed": allowed.iter().map(|a| a.as_str()).collect::<Vec<_>>()}));
            }
            err
        }
    }
}

/// Where an address-only report is.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlaceRequest {
    /// The version you read: a stale one is refused with 409.
    pub version: i64,
    /// WGS-84; must lie in a basic grid within your area.
    pub location: Location,
    /// Why, or how the point was found (kept in the timeline).
    #[serde(default)]
    pub note: String,
}

/// Place an address-only report (定位): give it a point, which resolves to its basic grid
/// and moves the incident from the district's unassigned queue to that grid. For the
/// command centre's operators, dispatchers and shift leads. Recorded in the timeline as a
/// `place` step and in the audit trail.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/place", tag = "incidents", operation_id = "placeIncident",
    params(("id" = i64, Path)), request_body = PlaceRequest,
    responses(
        (status = 200, body = IncidentDto),
        (status = 400, description = "A point outside every basic grid (point_unassigned) or outside your area, or a report placed already (already_placed)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A stale version, or a role that may not place reports", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn place(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>, Body(req): Body<PlaceRequest>) -> Result<Json<IncidentDto>, ApiError> {
    let s = c.scoped(&state);
    let Some(desk) = s.incidents() else {
        return Err(s.deny("incident.place", "incident", &raw).await.into());
    };
    let id = incident_id(&raw)?;
    let (lat, lon) = domain::error::parse_point(&req.location.lat.to_string(), &req.location.lon.to_string())?;
    let grid = state
        .grids
        .snapshot()
        .locate_grid(lon, lat)
        .cloned()
        .ok_or_else(|| ApiError::bad_request("point_unassigned", "the point lies outside every basic grid"))?;
    match desk.place(id, req.version, (lat, lon), &grid, &req.note).await {
        Ok(inc) => Ok(Json(IncidentDto::new(&inc, &Clocks::load(&state).await?))),
        Err(e) => Err(failure_problem(e)),
    }
}

/// Open incidents of the same category within 50 m and 72 h: the duplicates to consider
/// when filing.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/duplicates", tag = "incidents", operation_id = "suggestDuplicates",
    params(("id" = i64, Path)),
    responses((status = 200, body = [IncidentDto]), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn duplicates(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>) -> Result<Json<Vec<IncidentDto>>, ApiError> {
    let s = c.scoped(&state);
    let Some(desk) = s.incidents() else {
        return Err(s.deny("incident.read", "incident", &raw).await.into());
    };
    let (inc, _) = desk.get(incident_id(&raw)?).await?;
    let clocks = Clocks::load(&state).await?;
    Ok(Json(desk.duplicate_candidates(&inc).await?.iter().map(|i| IncidentDto::new(i, &clocks)).collect()))
}

/// What a resident sees with a receipt: no names, no phone numbers, no description.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptView {
    pub receipt: String,
    pub category: String,
    pub state: String,
    /// The state in Chinese, as the status page shows it.
    pub state_name: String,
    pub reported_at: i64,
    pub updated_at: i64,
    /// Steps taken so far: action and time only.
    pub steps: Vec<ReceiptStep>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptStep {
    pub action: String,
    pub at: i64,
}

/// The resident's view of a report, by its receipt code. No login, no personal data.
#[utoipa::path(get, path = "/api/v1/public/receipts/{receipt}", tag = "incidents", operation_id = "getReceipt",
    params(("receipt" = String, Path)),
    responses(
        (status = 200, body = ReceiptView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than 60 receipt lookups a minute from this client", body = Problem, content_type = "application/problem+json"),
    ),
    security(()))]
pub async fn receipt(State(state): State<AppState>, crate::auth::MaybeCaller(r): crate::auth::MaybeCaller, Path(raw): Path<String>) -> Result<Json<ReceiptView>, ApiError> {
    if !state.lookup_limiter.allow(&r.client_addr, state.db.now_ms()) {
        return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_lookups", "too many receipt lookups from this client; wait a minute"));
    }
    let not_found = || ApiError::not_found("receipt_not_found", "no report has that receipt code");
    let inc = state.db.incident_by_receipt(&raw).await?.ok_or_else(not_found)?;
    let steps = state.db.timeline(inc.id).await?.into_iter().map(|t| ReceiptStep { action: t.action, at: t.at }).collect();
    Ok(Json(ReceiptView {
        receipt: inc.receipt,
        category: inc.category,
        state: inc.loop_.state.as_str().into(),
        state_name: inc.loop_.state.name_zh().into(),
        reported_at: inc.created_at,
        updated_at: inc.updated_at,
        steps,
    }))
}
