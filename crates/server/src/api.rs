//! The JSON API under `/api/v1`, described by the OpenAPI document at
//! `/api/v1/openapi.json` (browsable at `/api/docs`).

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::geometry::{AreaRecord, feature_collection};
use domain::{AreaCode, Level};
use serde::Serialize;
use store::{AreaFilter, AreaRow};
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::auth::ApiCaller;
use crate::problem::{ApiError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "civicgrid API",
        description = "The grid management command center's data: areas and grids (区划与网格), with their teams, geometry and point→grid lookup. Errors are RFC 9457 problem documents with a stable `code` and the request's `operation_id`. Times are UTC; geometry is WGS-84 (EPSG:4326) GeoJSON, longitude first.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        list_areas, get_area, area_geometry, geometry_collection, locate,
        crate::accounts::set_team, crate::accounts::login, crate::accounts::logout, crate::accounts::me,
        crate::accounts::change_password, crate::accounts::list_accounts, crate::accounts::create_account,
        crate::accounts::get_account, crate::accounts::update_account, crate::accounts::disable_account,
        crate::accounts::enable_account, crate::accounts::reset_password, crate::accounts::unmask,
        crate::accounts::search_audit,
        crate::catalogue::list_categories, crate::catalogue::list_departments, crate::catalogue::calendar,
        crate::catalogue::set_day,
        crate::incidents::report, crate::incidents::list, crate::incidents::read, crate::incidents::transition,
        crate::incidents::receipt, crate::incidents::duplicates, crate::inbox::inbox, crate::inbox::mark_read,
        crate::incidents::upload_photo, crate::incidents::photo, crate::incidents::place,
        crate::kpis::kpis,
        crate::register::list_persons, crate::register::create_person, crate::register::get_person, crate::register::update_person,
        crate::register::move_person, crate::register::person_history, crate::register::unmask_person, crate::register::export_persons,
        crate::register::list_houses, crate::register::create_house, crate::register::get_house, crate::register::update_house,
        crate::register::house_persons, crate::register::house_history, crate::register::export_houses,
        crate::register::list_households, crate::register::create_household, crate::register::get_household, crate::register::set_members,
        crate::register::household_history, crate::register::export_households,
        crate::register::list_organisations, crate::register::create_organisation, crate::register::get_organisation,
        crate::register::update_organisation, crate::register::organisation_history, crate::register::export_organisations,
        crate::search::search,
        crate::register_import::start, crate::register_import::read, crate::register_import::report,
    ),
    components(schemas(AreaDto, ChildDto, MemberDto, AreaDetail, AreaList, LocateResult, GridRef, LevelDto, Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "areas", description = "Areas and grids: district → street/township → community/village → grid"),
        (name = "accounts", description = "Sessions, accounts, tokens and sensitive reads"),
        (name = "audit", description = "The append-only, hash-chained audit trail (auditors)"),
        (name = "catalogue", description = "Incident categories, departments and the work calendar"),
        (name = "incidents", description = "The closed loop: report, file, dispatch, handle, verify, close, evaluate"),
        (name = "register", description = "The register (实有人口、房屋、单位): persons, houses, households and organisations, their history, moves, audited unmasking, exports and the one-box search; ID numbers and phones masked"),
        (name = "kpis", description = "Key figures (考核指标) of the incidents reported in a date range, by area level, department or person"),
        (name = "register", description = "The register (实有人口、房屋、单位): imports from spreadsheets, run as jobs"),
    )
)]
pub struct ApiDoc;

/// Every route but login needs `Authorization: Bearer <token>` (or a web session).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(crate::open311::Open311Doc::openapi())
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(|| async { Json(openapi()) }))
        .route("/api/v1/areas", get(list_areas))
        .route("/api/v1/areas/{code}", get(get_area))
        .route("/api/v1/areas/{code}/geometry", get(area_geometry))
        .route("/api/v1/geometry", get(geometry_collection))
        .route("/api/v1/locate", get(locate))
}

/// Query parameters, with malformed queries answered as problems.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

impl Params {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.trim().is_empty())
    }
    fn code(&self, k: &str) -> Result<Option<AreaCode>, ApiError> {
        self.get(k).map(|v| AreaCode::parse(v).map_err(ApiError::from)).transpose()
    }
    fn level(&self, k: &str) -> Result<Option<Level>, ApiError> {
        self.get(k).map(|v| v.parse::<Level>().map_err(ApiError::from)).transpose()
    }
}

/// An area's level.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LevelDto {
    District,
    Street,
    Community,
    Grid,
    Dedicated,
}

impl From<LevelDto> for Level {
    fn from(l: LevelDto) -> Self {
        match l {
            LevelDto::District => Level::District,
            LevelDto::Street => Level::Street,
            LevelDto::Community => Level::Community,
            LevelDto::Grid => Level::Grid,
            LevelDto::Dedicated => Level::Dedicated,
        }
    }
}

impl From<Level> for LevelDto {
    fn from(l: Level) -> Self {
        match l {
            Level::District => LevelDto::District,
            Level::Street => LevelDto::Street,
            Level::Community => LevelDto::Community,
            Level::Grid => LevelDto::Grid,
            Level::Dedicated => LevelDto::Dedicated,
        }
    }
}

/// An area, without its geometry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AreaDto {
    #[schema(example = "430503001001003")]
    pub code: String,
    #[schema(example = "城南社区第三网格")]
    pub name: String,
    pub level: LevelDto,
    pub parent: Option<String>,
    /// For dedicated grids: school, hospital, market, enterprise_park, construction_site, other.
    pub kind: Option<String>,
    /// Bounding box: [min_lon, min_lat, max_lon, max_lat].
    pub bbox: [f64; 4],
}

impl From<&AreaRow> for AreaDto {
    fn from(a: &AreaRow) -> Self {
        AreaDto {
            code: a.code.to_string(),
            name: a.name.clone(),
            level: a.level.into(),
            parent: a.parent.as_ref().map(ToString::to_string),
            kind: a.kind.map(|k| k.as_str().to_string()),
            bbox: a.bbox,
        }
    }
}

/// A child area with the number of basic grids under it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChildDto {
    #[serde(flatten)]
    pub area: AreaDto,
    pub grid_count: i64,
}

/// A member of a grid team.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberDto {
    /// For reading the full phone number (POST /api/v1/unmask, field team_member.phone).
    pub id: i64,
    /// grid_leader, full_time_member, part_time_member, grid_police, volunteer
    #[schema(example = "grid_leader")]
    pub role: String,
    #[schema(example = "网格长")]
    pub role_name: String,
    pub name: String,
    /// The work phone, masked: `138****5678`.
    pub phone_masked: Option<String>,
}

/// An area with its ancestry (district first), its children and its team.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AreaDetail {
    pub area: AreaDto,
    pub ancestry: Vec<AreaDto>,
    pub children: Vec<ChildDto>,
    pub team: Vec<MemberDto>,
}

/// A page of areas in code order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AreaList {
    pub items: Vec<AreaDto>,
    /// When more areas follow: pass this as `after` to get the next page.
    pub next_after: Option<String>,
}

/// Default and largest page sizes of area lists.
pub const DEFAULT_LIMIT: i64 = 1000;
pub const MAX_LIMIT: i64 = 10_000;

/// A grid found for a point.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GridRef {
    pub code: String,
    pub name: String,
    pub kind: Option<String>,
}

/// Where a point falls.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LocateResult {
    /// `assigned` (inside a basic grid) or `unassigned` (outside every basic grid).
    #[schema(example = "assigned")]
    pub status: String,
    pub lat: f64,
    pub lon: f64,
    /// The basic grid; null when unassigned.
    pub grid: Option<GridRef>,
    /// Codes of the grid's ancestors, district first; empty when unassigned.
    pub ancestry: Vec<String>,
    /// Dedicated grids (schools, hospitals, markets …) that contain the point.
    pub dedicated: Vec<GridRef>,
}

fn path_code(raw: &str) -> Result<AreaCode, ApiError> {
    AreaCode::parse(raw).map_err(ApiError::from)
}

pub(crate) async fn find_area(state: &AppState, code: &AreaCode) -> Result<AreaRow, ApiError> {
    state
        .db
        .area(code)
        .await?
        .ok_or_else(|| ApiError::not_found("area_not_found", format!("no area has code {code}")))
}

/// List areas, filtered by parent, level or subtree.
#[utoipa::path(
    get, path = "/api/v1/areas", tag = "areas", operation_id = "listAreas",
    params(
        ("parent" = Option<String>, Query, description = "Only the children of this area"),
        ("level" = Option<LevelDto>, Query, description = "Only areas of this level"),
        ("within" = Option<String>, Query, description = "Only areas under this code (prefix), itself included"),
        ("after" = Option<String>, Query, description = "Cursor: only areas whose code sorts after this one (the previous page's next_after)"),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 10000 (default 1000)"),
    ),
    responses(
        (status = 200, description = "The areas, in code order", body = AreaList),
        (status = 400, description = "A malformed code or unknown level", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_areas(State(state): State<AppState>, _c: ApiCaller, q: Params) -> Result<Json<AreaList>, ApiError> {
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v.parse::<i64>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            ApiError::bad_request("invalid_limit", format!("limit must be a whole number from 1 to {MAX_LIMIT}, got {v:?}"))
        })?,
    };
    let filter = AreaFilter {
        parent: q.code("parent")?,
        level: q.level("level")?,
        within: q.code("within")?,
        after: q.code("after")?,
        limit: Some(limit + 1),
    };
    let mut rows = state.db.list_areas(&filter).await?;
    let next_after = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.code.to_string())
    } else {
        None
    };
    Ok(Json(AreaList { items: rows.iter().map(AreaDto::from).collect(), next_after }))
}

/// Read an area with its ancestry, children and team.
#[utoipa::path(
    get, path = "/api/v1/areas/{code}", tag = "areas", operation_id = "getArea",
    params(("code" = String, Path, description = "Area code, 6 to 15 digits", example = "430503001")),
    responses(
        (status = 200, body = AreaDetail),
        (status = 400, description = "Not an area code", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such area", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_area(State(state): State<AppState>, _c: ApiCaller, Path(raw): Path<String>) -> Result<Json<AreaDetail>, ApiError> {
    Ok(Json(area_detail(&state, &path_code(&raw)?).await?))
}

pub(crate) async fn area_detail(state: &AppState, code: &AreaCode) -> Result<AreaDetail, ApiError> {
    let area = find_area(state, code).await?;
    let mut ancestry = Vec::new();
    let mut cur = area.parent.clone();
    while let Some(p) = cur {
        let row = find_area(state, &p).await?;
        cur = row.parent.clone();
        ancestry.push(AreaDto::from(&row));
    }
    ancestry.reverse();
    let children = state.db.list_areas(&AreaFilter { parent: Some(code.clone()), ..AreaFilter::default() }).await?;
    let counts = state.db.grid_counts_by_child(&area).await?;
    let children = children
        .iter()
        .map(|c| ChildDto {
            area: AreaDto::from(c),
            grid_count: if c.level == Level::Grid { 1 } else { counts.get(c.code.as_str()).copied().unwrap_or(0) },
        })
        .collect();
    let team = state
        .db
        .team_view(code)
        .await?
        .into_iter()
        .map(|m| MemberDto {
            id: m.id,
            role: m.role.as_str().into(),
            role_name: m.role.name_zh().into(),
            name: m.name,
            phone_masked: m.phone_masked,
        })
        .collect();
    Ok(AreaDetail { area: AreaDto::from(&area), ancestry, children, team })
}

fn geojson(v: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/geo+json")], v.to_string()).into_response()
}

/// An area's boundary as a GeoJSON Feature.
#[utoipa::path(
    get, path = "/api/v1/areas/{code}/geometry", tag = "areas", operation_id = "getAreaGeometry",
    params(("code" = String, Path, description = "Area code", example = "430503001001001")),
    responses(
        (status = 200, description = "A GeoJSON Feature (WGS-84) with code, name, level, parent and kind in its properties", body = Object, content_type = "application/geo+json"),
        (status = 404, description = "No such area", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn area_geometry(State(state): State<AppState>, _c: ApiCaller, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let code = path_code(&raw)?;
    let rec: AreaRecord = state
        .db
        .area_record(&code)
        .await?
        .ok_or_else(|| ApiError::not_found("area_not_found", format!("no area has code {code}")))?;
    Ok(geojson(rec.to_feature()))
}

/// Boundaries of many areas as one GeoJSON FeatureCollection (the maps use this).
#[utoipa::path(
    get, path = "/api/v1/geometry", tag = "areas", operation_id = "getGeometryCollection",
    params(
        ("within" = Option<String>, Query, description = "Only areas under this code (prefix), itself included"),
        ("level" = Option<LevelDto>, Query, description = "Only areas of this level"),
        ("parent" = Option<String>, Query, description = "Only the children of this area"),
    ),
    responses(
        (status = 200, description = "A GeoJSON FeatureCollection (WGS-84)", body = Object, content_type = "application/geo+json"),
        (status = 400, description = "A malformed code or unknown level", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn geometry_collection(State(state): State<AppState>, _c: ApiCaller, q: Params) -> Result<Response, ApiError> {
    let filter = AreaFilter { parent: q.code("parent")?, level: q.level("level")?, within: q.code("within")?, ..AreaFilter::default() };
    let recs = state.db.area_records(&filter).await?;
    Ok(geojson(feature_collection(&recs)))
}

/// Find the basic grid (and any dedicated grids) for a WGS-84 point.
///
/// A point on an edge shared by several basic grids belongs to the one with the smallest
/// code (the western, then northern, neighbour).
#[utoipa::path(
    get, path = "/api/v1/locate", tag = "areas", operation_id = "locate",
    params(
        ("lat" = f64, Query, description = "Latitude, WGS-84, -90 to 90", example = 27.24),
        ("lon" = f64, Query, description = "Longitude, WGS-84, -180 to 180", example = 111.46),
    ),
    responses(
        (status = 200, body = LocateResult),
        (status = 400, description = "Latitude or longitude missing, not a number or out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn locate(State(state): State<AppState>, _c: ApiCaller, q: Params) -> Result<Json<LocateResult>, ApiError> {
    let (lat, lon) = domain::error::parse_point(q.get("lat").unwrap_or(""), q.get("lon").unwrap_or(""))?;
    Ok(Json(locate_point(&state, lat, lon)))
}

pub(crate) fn locate_point(state: &AppState, lat: f64, lon: f64) -> LocateResult {
    let index = state.grids.snapshot();
    let loc = index.locate(lon, lat);
    let grid_ref = |g: &domain::locate::IndexedGrid| GridRef {
        code: g.code.to_string(),
        name: g.name.clone(),
        kind: g.kind.map(|k| k.as_str().to_string()),
    };
    let grid = loc.grid.map(grid_ref);
    let ancestry = loc.grid.map(|g| g.code.ancestry().iter().map(ToString::to_string).collect()).unwrap_or_default();
    let dedicated = loc.dedicated.iter().map(|g| grid_ref(g)).collect();
    LocateResult {
        status: if grid.is_some() { "assigned" } else { "unassigned" }.to_string(),
        lat,
        lon,
        grid,
        ancestry,
        dedicated,
    }
}
