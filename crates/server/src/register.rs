//! The register's JSON API (issue 5): persons, houses, households and organisations, their
//! history, moves, the audited unmask, and exports of any filtered list to .xlsx or .csv.
//!
//! Every handler goes through `Scoped::register()` (`store::register::RegisterDesk`): reads
//! and writes are limited to the caller's area subtree, an object outside it answers 404 and
//! leaves a `denied` audit row, and ID numbers and phones leave masked. Input the register
//! refuses is answered 422 with the field named in `errors`.

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use domain::calendar::Day;
use domain::register::{CitizenId, CreditCode, PersonTag, PopulationType, Relation, escape_for_spreadsheet, parse_mobile};
use domain::{AreaCode, Phone};
use serde::{Deserialize, Serialize};
use store::StoreError;
use store::register::{
    ExportEntity, HouseInput, HouseUse, HouseView, HouseholdLine, HouseholdView, HistoryRow, NewHousehold, NewPerson, OrganisationInput, OrganisationView,
    PersonEdit, PersonView, RegisterDesk, RegisterFilter, Sensitive,
};
use utoipa::ToSchema;

use crate::AppState;
use crate::accounts::Body;
use crate::api::Params;
use crate::auth::{ApiCaller, Caller};
use crate::problem::{ApiError, Problem};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/persons", get(list_persons).post(create_person))
        .route("/api/v1/persons/export", get(export_persons))
        .route("/api/v1/persons/{id}", get(get_person).put(update_person))
        .route("/api/v1/persons/{id}/move", post(move_person))
        .route("/api/v1/persons/{id}/history", get(person_history))
        .route("/api/v1/persons/{id}/unmask", post(unmask_person))
        .route("/api/v1/houses", get(list_houses).post(create_house))
        .route("/api/v1/houses/export", get(export_houses))
        .route("/api/v1/houses/{id}", get(get_house).put(update_house))
        .route("/api/v1/houses/{id}/persons", get(house_persons))
        .route("/api/v1/houses/{id}/history", get(house_history))
        .route("/api/v1/households", get(list_households).post(create_household))
        .route("/api/v1/households/export", get(export_households))
        .route("/api/v1/households/{id}", get(get_household))
        .route("/api/v1/households/{id}/members", put(set_members))
        .route("/api/v1/households/{id}/history", get(household_history))
        .route("/api/v1/organisations", get(list_organisations).post(create_organisation))
        .route("/api/v1/organisations/export", get(export_organisations))
        .route("/api/v1/organisations/{id}", get(get_organisation).put(update_organisation))
        .route("/api/v1/organisations/{id}/history", get(organisation_history))
}

// ---- errors ----

/// 422 naming the field.
fn unprocessable(field: &str, code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError { errors: Some(serde_json::json!([{ "field": field, "code": code }])), ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail) }
}

/// The field a register refusal is about.
fn field_of(code: &str, message: &str) -> String {
    match code {
        "field_required" | "field_too_long" => message.split_whitespace().next().unwrap_or("body").to_string(),
        "invalid_point" => "location".into(),
        "invalid_house_area" => "area_m2".into(),
        "unknown_area" | "not_a_grid" | "area_out_of_scope" => "area".into(),
        "house_in_other_grid" | "place_required" => "house_id".into(),
        "household_head" | "duplicate_member" => "members".into(),
        "reason_required" => "reason".into(),
        "same_house" => "to_house".into(),
        _ => "body".into(),
    }
}

/// A register store error as the API answers it: refusals of input are 422 with the field.
fn reg_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid { code, message } => {
            let field = field_of(code, &message);
            unprocessable(&field, code, message)
        }
        other => other.into(),
    }
}

/// The caller's register desk, or a denial (audited, answered as not found).
async fn desk<'s>(s: &'s store::scoped::Scoped<'s>, action: &str, entity: &str, id: &str) -> Result<RegisterDesk<'s>, ApiError> {
    match s.register() {
        Some(d) => Ok(d),
        None => Err(s.deny(action, entity, id).await.into()),
    }
}

fn id_of(entity: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("not_found", format!("{entity} {raw} not found")))
}

// ---- DTOs ----

/// A person, as the API shows it: the ID number and phone masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonDto {
    pub id: i64,
    #[schema(example = "430503********1234")]
    pub citizen_id_masked: String,
    pub name: String,
    /// male or female (from the ID number)
    pub gender: String,
    /// YYYY-MM-DD (from the ID number)
    pub birth_date: String,
    #[schema(example = "138****5678")]
    pub phone_masked: Option<String>,
    pub ethnicity: Option<String>,
    pub house_id: Option<i64>,
    /// The basic grid.
    pub area: String,
    /// registered (户籍), resident (常住) or floating (流动)
    pub population_type: String,
    /// elderly_alone, disability, veteran, left_behind_child, low_income
    pub tags: Vec<String>,
    /// Send it back with an update or a move: a stale version is refused (409).
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<PersonView> for PersonDto {
    fn from(p: PersonView) -> Self {
        PersonDto {
            id: p.id,
            citizen_id_masked: p.citizen_id_masked,
            name: p.name,
            gender: p.gender,
            birth_date: p.birth_date.to_string(),
            phone_masked: p.phone_masked,
            ethnicity: p.ethnicity,
            house_id: p.house_id,
            area: p.area,
            population_type: p.population_type.as_str().into(),
            tags: p.tags.iter().map(|t| t.as_str().to_string()).collect(),
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HouseDto {
    pub id: i64,
    pub address: String,
    /// The basic grid.
    pub area: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub area_m2: Option<f64>,
    /// residential, shop, mixed, office, factory, other
    pub house_use: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<HouseView> for HouseDto {
    fn from(h: HouseView) -> Self {
        HouseDto {
            id: h.id,
            address: h.address,
            area: h.area,
            lat: h.lat,
            lon: h.lon,
            area_m2: h.area_m2,
            house_use: h.house_use.as_str().into(),
            version: h.version,
            created_at: h.created_at,
            updated_at: h.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HouseholdMemberDto {
    pub person_id: i64,
    /// Filled in answers; ignored in requests.
    #[serde(default)]
    pub name: String,
    /// head, spouse, son, daughter, child, father, mother, parent, grandson, granddaughter,
    /// sibling, other (or the Chinese term: 户主, 配偶, 长子 …)
    pub relation: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdDto {
    pub id: i64,
    pub house_id: Option<i64>,
    pub address: Option<String>,
    pub area: String,
    pub version: i64,
    /// The head first.
    pub members: Vec<HouseholdMemberDto>,
}

impl From<HouseholdView> for HouseholdDto {
    fn from(h: HouseholdView) -> Self {
        HouseholdDto {
            id: h.id,
            house_id: h.house_id,
            address: h.address,
            area: h.area,
            version: h.version,
            members: h.members.into_iter().map(|m| HouseholdMemberDto { person_id: m.person_id, name: m.name, relation: m.relation.as_str().into() }).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationDto {
    pub id: i64,
    pub name: String,
    pub credit_code: String,
    pub address: Option<String>,
    pub house_id: Option<i64>,
    pub area: String,
    pub legal_rep: Option<String>,
    pub phone_masked: Option<String>,
    pub version: i64,
}

impl From<OrganisationView> for OrganisationDto {
    fn from(o: OrganisationView) -> Self {
        OrganisationDto {
            id: o.id,
            name: o.name,
            credit_code: o.credit_code,
            address: o.address,
            house_id: o.house_id,
            area: o.area,
            legal_rep: o.legal_rep,
            phone_masked: o.phone_masked,
            version: o.version,
        }
    }
}

/// One change of one field (sensitive values masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryDto {
    pub id: i64,
    /// ms, UTC
    pub at: i64,
    pub actor_kind: String,
    pub actor_name: String,
    pub operation_id: String,
    /// person.create, person.move, demo …
    pub action: String,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

impl From<HistoryRow> for HistoryDto {
    fn from(h: HistoryRow) -> Self {
        HistoryDto {
            id: h.id,
            at: h.at,
            actor_kind: h.actor_kind,
            actor_name: h.actor_name,
            operation_id: h.operation_id,
            action: h.action,
            field: h.field,
            old_value: h.old_value,
            new_value: h.new_value,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkDto {
    pub house_id: i64,
    /// lives, owns or rents
    pub kind: String,
}

/// A person with their household, house and links to houses.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonDetail {
    pub person: PersonDto,
    pub household: Option<HouseholdDto>,
    pub house: Option<HouseDto>,
    pub links: Vec<LinkDto>,
}

/// A page of a list; pass `next_after` as `after` for the next one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<i64>,
}

fn page<T, V: Into<T>>(items: Vec<V>, limit: i64, id: impl Fn(&V) -> i64) -> Page<T> {
    let next_after = (items.len() as i64 == limit).then(|| items.last().map(&id)).flatten();
    Page { items: items.into_iter().map(Into::into).collect(), next_after }
}

// ---- requests ----

#[derive(Debug, Deserialize, ToSchema)]
pub struct PersonFields {
    /// 18 digits (or a 15-digit legacy number, upgraded); full-width digits and a lowercase x are accepted.
    pub citizen_id: String,
    pub name: String,
    /// A mainland mobile number.
    pub phone: Option<String>,
    pub ethnicity: Option<String>,
    /// registered (default), resident or floating (or 户籍, 常住, 流动)
    pub population_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A new person: in a house (and its grid) or, without one, in a grid.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPersonRequest {
    #[serde(flatten)]
    pub fields: PersonFields,
    pub house_id: Option<i64>,
    pub area: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PersonUpdateRequest {
    /// The version read.
    pub version: i64,
    #[serde(flatten)]
    pub fields: PersonFields,
}

/// Move out of the current house and into another (迁出/迁入), in one operation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MoveRequest {
    pub to_house: i64,
    pub version: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PersonUnmaskRequest {
    /// citizen_id or phone
    pub field: String,
    /// Why the full value is needed (recorded in the audit trail).
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonUnmaskResponse {
    pub field: String,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct HouseRequest {
    pub address: String,
    /// The basic grid it lies in.
    pub area: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub area_m2: Option<f64>,
    /// residential (default), shop, mixed, office, factory, other
    pub house_use: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct HouseUpdateRequest {
    pub version: i64,
    #[serde(flatten)]
    pub house: HouseRequest,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct HouseholdRequest {
    pub house_id: Option<i64>,
    pub address: Option<String>,
    pub area: Option<String>,
    /// Exactly one member with relation head.
    pub members: Vec<HouseholdMemberDto>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MembersRequest {
    pub version: i64,
    pub members: Vec<HouseholdMemberDto>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OrganisationRequest {
    pub name: String,
    /// 18 characters, GB 32100 checksum.
    pub credit_code: String,
    pub address: Option<String>,
    pub house_id: Option<i64>,
    pub area: Option<String>,
    pub legal_rep: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OrganisationUpdateRequest {
    pub version: i64,
    #[serde(flatten)]
    pub organisation: OrganisationRequest,
}

// ---- parsing ----

fn today(state: &AppState) -> Day {
    Day::of_instant(state.db.now_ms())
}

fn parse_area(field: &str, raw: Option<&str>) -> Result<Option<AreaCode>, ApiError> {
    raw.map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| AreaCode::parse(a).map_err(|e| unprocessable(field, "invalid_area_code", e.to_string())))
        .transpose()
}

fn parse_phone(field: &str, raw: Option<&str>) -> Result<Option<Phone>, ApiError> {
    match raw.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => parse_mobile(p).map(|p| Some(p.value)).map_err(|e| unprocessable(field, e.code(), e.to_string())),
    }
}

struct Person {
    citizen_id: CitizenId,
    phone: Option<Phone>,
    population_type: PopulationType,
    tags: Vec<PersonTag>,
}

fn parse_person(f: &PersonFields, today: Day) -> Result<Person, ApiError> {
    let citizen_id = CitizenId::parse(&f.citizen_id, today).map(|p| p.value).map_err(|e| unprocessable("citizen_id", e.code(), e.to_string()))?;
    let phone = parse_phone("phone", f.phone.as_deref())?;
    let population_type = match f.population_type.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => PopulationType::Registered,
        Some(p) => PopulationType::parse(p).ok_or_else(|| unprocessable("population_type", "invalid_population_type", format!("population_type must be registered, resident or floating, not {p:?}")))?,
    };
    let tags = f
        .tags
        .iter()
        .map(|t| PersonTag::parse(t).ok_or_else(|| unprocessable("tags", "invalid_tag", format!("unknown tag {t:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Person { citizen_id, phone, population_type, tags })
}

fn parse_house(h: &HouseRequest) -> Result<HouseInput, ApiError> {
    let area = parse_area("area", Some(&h.area))?.ok_or_else(|| unprocessable("area", "field_required", "area (the grid) is required"))?;
    let point = match (h.lat, h.lon) {
        (Some(lat), Some(lon)) => Some((lat, lon)),
        (None, None) => None,
        _ => return Err(unprocessable("location", "invalid_point", "give both lat and lon, or neither")),
    };
    let house_use = match h.house_use.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        None => HouseUse::Residential,
        Some(u) => HouseUse::parse(u).ok_or_else(|| unprocessable("house_use", "invalid_house_use", format!("house_use must be one of residential, shop, mixed, office, factory, other, not {u:?}")))?,
    };
    Ok(HouseInput { address: h.address.clone(), area, point, area_m2: h.area_m2, house_use })
}

fn parse_members(members: &[HouseholdMemberDto]) -> Result<Vec<(i64, Relation)>, ApiError> {
    members
        .iter()
        .map(|m| Relation::parse(&m.relation).map(|r| (m.person_id, r)).map_err(|e| unprocessable("members", e.code(), e.to_string())))
        .collect()
}

fn parse_organisation(o: &OrganisationRequest) -> Result<OrganisationInput, ApiError> {
    let credit_code = CreditCode::parse(&o.credit_code).map(|p| p.value).map_err(|e| unprocessable("credit_code", e.code(), e.to_string()))?;
    Ok(OrganisationInput {
        name: o.name.clone(),
        credit_code,
        address: o.address.clone(),
        house_id: o.house_id,
        area: parse_area("area", o.area.as_deref())?,
        legal_rep: o.legal_rep.clone(),
        phone: parse_phone("phone", o.phone.as_deref())?,
    })
}

/// A list filter from the query: area (a code prefix in scope), house, name, gender, age_min,
/// age_max, population_type, tag, q (address, or an organisation's name or code), after, limit.
pub fn filter_of(q: &Params, today: Day) -> Result<RegisterFilter, ApiError> {
    let get = |k: &str| q.0.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let num = |k: &str, lo: i64, hi: i64| -> Result<Option<i64>, ApiError> {
        get(k)
            .map(|v| v.parse::<i64>().ok().filter(|n| (lo..=hi).contains(n)).ok_or_else(|| ApiError::bad_request("invalid_query", format!("{k} must be a number from {lo} to {hi}"))))
            .transpose()
    };
    let (y, m, d) = today.ymd();
    // Born on or before this day: at least `age` years old today.
    let years_ago = |age: i64| Day::from_ymd(y - age, m, d.min(28));
    let gender = get("gender")
        .map(|g| match g {
            "male" | "男" => Ok("male".to_string()),
            "female" | "女" => Ok("female".to_string()),
            other => Err(ApiError::bad_request("invalid_query", format!("gender must be male or female, not {other:?}"))),
        })
        .transpose()?;
    let age_min = num("age_min", 0, 150)?;
    let age_max = num("age_max", 0, 150)?;
    Ok(RegisterFilter {
        area: get("area").map(AreaCode::parse).transpose()?,
        house_id: num("house", 1, i64::MAX)?,
        after: num("after", 0, i64::MAX)?,
        limit: num("limit", 1, store::register::MAX_PAGE)?.unwrap_or(50),
        name: get("name").map(str::to_string),
        gender,
        born_to: age_min.and_then(years_ago),
        born_from: age_max.and_then(|a| years_ago(a + 1)).map(|d| Day(d.0 + 1)),
        population_type: get("population_type")
            .map(|p| PopulationType::parse(p).ok_or_else(|| ApiError::bad_request("invalid_query", format!("population_type must be registered, resident or floating, not {p:?}"))))
            .transpose()?,
        tag: get("tag").map(|t| PersonTag::parse(t).ok_or_else(|| ApiError::bad_request("invalid_query", format!("unknown tag {t:?}")))).transpose()?,
        text: get("q").map(str::to_string),
    })
}

const FILTER_PARAMS: [&str; 10] = ["area", "house", "name", "gender", "age_min", "age_max", "population_type", "tag", "q", "format"];

// ---- persons ----

/// Persons in your scope, oldest first, masked.
#[utoipa::path(get, path = "/api/v1/persons", tag = "register", operation_id = "listPersons",
    params(
        ("area" = Option<String>, Query, description = "An area code: that subtree only (within your scope)"),
        ("house" = Option<i64>, Query, description = "Living in this house"),
        ("name" = Option<String>, Query, description = "The name contains this text"),
        ("gender" = Option<String>, Query, description = "male or female"),
        ("age_min" = Option<i64>, Query), ("age_max" = Option<i64>, Query),
        ("population_type" = Option<String>, Query, description = "registered, resident or floating"),
        ("tag" = Option<String>, Query, description = "elderly_alone, disability, veteran, left_behind_child, low_income"),
        ("after" = Option<i64>, Query, description = "Cursor: persons with a larger id"),
        ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
    ),
    responses((status = 200, body = Page<PersonDto>), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_persons(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Json<Page<PersonDto>>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "person.list", "person", "*").await?;
    let f = filter_of(&q, today(&state))?;
    let items = d.persons(&f).await?;
    Ok(Json(page(items, f.limit, |p: &PersonView| p.id)))
}

/// Record a person (实有人口).
#[utoipa::path(post, path = "/api/v1/persons", tag = "register", operation_id = "createPerson", request_body = NewPersonRequest,
    responses(
        (status = 201, body = PersonDto),
        (status = 404, description = "The house is outside your scope, or you may not write the register", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "duplicate_citizen_id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused input; `errors` names the field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_person(State(state): State<AppState>, ApiCaller(c): ApiCaller, Body(req): Body<NewPersonRequest>) -> Result<(StatusCode, Json<PersonDto>), ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "person.create", "person", "").await?;
    let p = parse_person(&req.fields, today(&state))?;
    let new = NewPerson {
        citizen_id: p.citizen_id,
        name: req.fields.name,
        phone: p.phone,
        ethnicity: req.fields.ethnicity,
        house_id: req.house_id,
        area: parse_area("area", req.area.as_deref())?,
        population_type: p.population_type,
        tags: p.tags,
    };
    let v = d.create_person(new).await.map_err(reg_err)?;
    Ok((StatusCode::CREATED, Json(v.into())))
}

/// A person in your scope with their household, house and links (masked).
#[utoipa::path(get, path = "/api/v1/persons/{id}", tag = "register", operation_id = "getPerson", params(("id" = i64, Path)),
    responses((status = 200, body = PersonDetail), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_person(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>) -> Result<Json<PersonDetail>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "person.read", "person", &raw).await?;
    let id = id_of("person", &raw)?;
    let person = d.person(id).await?;
    let household = d.household_of(id).await?;
    let house = match person.house_id {
        Some(h) => Some(d.house(h).await?),
        None => None,
    };
    let links = d.person_houses(id).await?.into_iter().map(|(house_id, kind)| LinkDto { house_id, kind: kind.as_str().into() }).collect();
    Ok(Json(PersonDetail { person: person.into(), household: household.map(Into::into), house: house.map(Into::into), links }))
}

/// Change a person's fields at the version read (409 `stale_version` when it changed since).
#[utoipa::path(put, path = "/api/v1/persons/{id}", tag = "register", operation_id = "updatePerson", params(("id" = i64, Path)), request_body = PersonUpdateRequest,
    responses(
        (status = 200, body = PersonDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_person(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>, Body(req): Body<PersonUpdateRequest>) -> Result<Json<PersonDto>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "person.update", "person", &raw).await?;
    let id = id_of("person", &raw)?;
    let p = parse_person(&req.fields, today(&state))?;
    let e = PersonEdit { citizen_id: p.citizen_id, name: req.fields.name, phone: p.phone, ethnicity: req.fields.ethnicity, population_type: p.population_type, tags: p.tags };
    Ok(Json(d.update_person(id, req.version, e).await.map_err(reg_err)?.into()))
}

/// Move a person out of their house and into another (迁出/迁入), as one operation that
/// keeps their history. Both must be in your scope.
#[utoipa::path(post, path = "/api/v1/persons/{id}/move", tag = "register", operation_id = "movePerson", params(("id" = i64, Path)), request_body = MoveRequest,
    responses(
        (status = 200, body = PersonDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn move_person(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>, Body(req): Body<MoveRequest>) -> Result<Json<PersonDto>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "person.move", "person", &raw).await?;
    let id = id_of("person", &raw)?;
    Ok(Json(d.move_person(id, req.version, req.to_house).await.map_err(reg_err)?.into()))
}

/// Every change of a person, oldest first (ID number and phone masked).
#[utoipa::path(get, path = "/api/v1/persons/{id}/history", tag = "register", operation_id = "personHistory", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<HistoryDto>), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn person_history(state: State<AppState>, c: ApiCaller, raw: Path<String>) -> Result<Json<Vec<HistoryDto>>, ApiError> {
    history(state, c, raw, "person").await
}

async fn history(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>, entity: &str) -> Result<Json<Vec<HistoryDto>>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "history.read", entity, &raw).await?;
    let id = id_of(entity, &raw)?;
    Ok(Json(d.history_of(entity, id).await?.into_iter().map(Into::into).collect()))
}

/// A person's full ID number or phone, for a role that may unmask, with a reason; the read
/// is audited. Without the permission, or outside your scope: 404. Without a reason: 422.
#[utoipa::path(post, path = "/api/v1/persons/{id}/unmask", tag = "register", operation_id = "unmaskPerson", params(("id" = i64, Path)), request_body = PersonUnmaskRequest,
    responses(
        (status = 200, body = PersonUnmaskResponse), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn unmask_person(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>, Body(req): Body<PersonUnmaskRequest>) -> Result<Json<PersonUnmaskResponse>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "read_sensitive", "person", &raw).await?;
    let id = id_of("person", &raw)?;
    let what = match req.field.as_str() {
        "citizen_id" => Sensitive::CitizenId,
        "phone" => Sensitive::Phone,
        other => return Err(unprocessable("field", "invalid_field", format!("field must be citizen_id or phone, not {other:?}"))),
    };
    let value = d.unmask_person(id, what, &req.reason).await.map_err(reg_err)?;
    Ok(Json(PersonUnmaskResponse { field: req.field, value }))
}

// ---- houses ----

/// Houses in your scope, oldest first.
#[utoipa::path(get, path = "/api/v1/houses", tag = "register", operation_id = "listHouses",
    params(
        ("area" = Option<String>, Query, description = "An area code: that subtree only (within your scope)"),
        ("q" = Option<String>, Query, description = "The address contains this text"),
        ("after" = Option<i64>, Query), ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
    ),
    responses((status = 200, body = Page<HouseDto>), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_houses(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Json<Page<HouseDto>>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "house.list", "house", "*").await?;
    let f = filter_of(&q, today(&state))?;
    Ok(Json(page(d.houses(&f).await?, f.limit, |h: &HouseView| h.id)))
}

/// Record a house (实有房屋) in a grid of your scope.
#[utoipa::path(post, path = "/api/v1/houses", tag = "register", operation_id = "createHouse", request_body = HouseRequest,
    responses((status = 201, body = HouseDto), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn create_house(State(state): State<AppState>, ApiCaller(c): ApiCaller, Body(req): Body<HouseRequest>) -> Result<(StatusCode, Json<HouseDto>), ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "house.create", "house", "").await?;
    let h = parse_house(&req)?;
    Ok((StatusCode::CREATED, Json(d.create_house(h).await.map_err(reg_err)?.into())))
}

#[utoipa::path(get, path = "/api/v1/houses/{id}", tag = "register", operation_id = "getHouse", params(("id" = i64, Path)),
    responses((status = 200, body = HouseDto), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_house(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>) -> Result<Json<HouseDto>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "house.read", "house", &raw).await?;
    Ok(Json(d.house(id_of("house", &raw)?).await?.into()))
}

/// Change a house at the version read; the people living there follow a change of grid.
#[utoipa::path(put, path = "/api/v1/houses/{id}", tag = "register", operation_id = "updateHouse", params(("id" = i64, Path)), request_body = HouseUpdateRequest,
    responses(
        (status = 200, body = HouseDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_house(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>, Body(req): Body<HouseUpdateRequest>) -> Result<Json<HouseDto>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "house.update", "house", &raw).await?;
    let id = id_of("house", &raw)?;
    let h = parse_house(&req.house)?;
    Ok(Json(d.update_house(id, req.version, h).await.map_err(reg_err)?.into()))
}

/// The people living in a house (masked).
#[utoipa::path(get, path = "/api/v1/houses/{id}/persons", tag = "register", operation_id = "housePersons", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<PersonDto>), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn house_persons(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>) -> Result<Json<Vec<PersonDto>>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "house.read", "house", &raw).await?;
    let id = id_of("house", &raw)?;
    d.house(id).await?;
    let mut out = Vec::new();
    let mut f = RegisterFilter { house_id: Some(id), limit: store::register::MAX_PAGE, ..Default::default() };
    loop {
        let page = d.persons(&f).await?;
        let full = page.len() as i64 == f.limit;
        f.after = page.last().map(|p| p.id);
        out.extend(page.into_iter().map(PersonDto::from));
        if !full {
            break;
        }
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/houses/{id}/history", tag = "register", operation_id = "houseHistory", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<HistoryDto>), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn house_history(state: State<AppState>, c: ApiCaller, raw: Path<String>) -> Result<Json<Vec<HistoryDto>>, ApiError> {
    history(state, c, raw, "house").await
}

// ---- households ----

/// Households in your scope with their members.
#[utoipa::path(get, path = "/api/v1/households", tag = "register", operation_id = "listHouseholds",
    params(
        ("area" = Option<String>, Query, description = "An area code: that subtree only (within your scope)"),
        ("house" = Option<i64>, Query), ("after" = Option<i64>, Query), ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
    ),
    responses((status = 200, body = Page<HouseholdDto>), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_households(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Json<Page<HouseholdDto>>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "household.list", "household", "*").await?;
    let f = filter_of(&q, today(&state))?;
    Ok(Json(page(d.households(&f).await?, f.limit, |h: &HouseholdView| h.id)))
}

/// Record a household (户): exactly one head; every member in scope and in no other household.
#[utoipa::path(post, path = "/api/v1/households", tag = "register", operation_id = "createHousehold", request_body = HouseholdRequest,
    responses(
        (status = 201, body = HouseholdDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already_in_household", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_household(State(state): State<AppState>, ApiCaller(c): ApiCaller, Body(req): Body<HouseholdRequest>) -> Result<(StatusCode, Json<HouseholdDto>), ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "household.create", "household", "").await?;
    let n = NewHousehold { house_id: req.house_id, address: req.address, area: parse_area("area", req.area.as_deref())?, members: parse_members(&req.members)? };
    Ok((StatusCode::CREATED, Json(d.create_household(n).await.map_err(reg_err)?.into())))
}

#[utoipa::path(get, path = "/api/v1/households/{id}", tag = "register", operation_id = "getHousehold", params(("id" = i64, Path)),
    responses((status = 200, body = HouseholdDto), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_household(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>) -> Result<Json<HouseholdDto>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "household.read", "household", &raw).await?;
    Ok(Json(d.household(id_of("household", &raw)?).await?.into()))
}

/// Replace a household's members at the version read.
#[utoipa::path(put, path = "/api/v1/households/{id}/members", tag = "register", operation_id = "setHouseholdMembers", params(("id" = i64, Path)), request_body = MembersRequest,
    responses(
        (status = 200, body = HouseholdDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn set_members(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>, Body(req): Body<MembersRequest>) -> Result<Json<HouseholdDto>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "household.update", "household", &raw).await?;
    let id = id_of("household", &raw)?;
    let members = parse_members(&req.members)?;
    Ok(Json(d.set_household_members(id, req.version, members).await.map_err(reg_err)?.into()))
}

#[utoipa::path(get, path = "/api/v1/households/{id}/history", tag = "register", operation_id = "householdHistory", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<HistoryDto>), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn household_history(state: State<AppState>, c: ApiCaller, raw: Path<String>) -> Result<Json<Vec<HistoryDto>>, ApiError> {
    history(state, c, raw, "household").await
}

// ---- organisations ----

/// Organisations in your scope.
#[utoipa::path(get, path = "/api/v1/organisations", tag = "register", operation_id = "listOrganisations",
    params(
        ("area" = Option<String>, Query, description = "An area code: that subtree only (within your scope)"),
        ("house" = Option<i64>, Query), ("q" = Option<String>, Query, description = "The name, address or credit code contains this text"),
        ("after" = Option<i64>, Query), ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
    ),
    responses((status = 200, body = Page<OrganisationDto>), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_organisations(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Json<Page<OrganisationDto>>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "organisation.list", "organisation", "*").await?;
    let f = filter_of(&q, today(&state))?;
    Ok(Json(page(d.organisations(&f).await?, f.limit, |o: &OrganisationView| o.id)))
}

/// Record an organisation (实有单位); a credit code already stored is 409.
#[utoipa::path(post, path = "/api/v1/organisations", tag = "register", operation_id = "createOrganisation", request_body = OrganisationRequest,
    responses(
        (status = 201, body = OrganisationDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_organisation(State(state): State<AppState>, ApiCaller(c): ApiCaller, Body(req): Body<OrganisationRequest>) -> Result<(StatusCode, Json<OrganisationDto>), ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "organisation.create", "organisation", "").await?;
    let o = parse_organisation(&req)?;
    Ok((StatusCode::CREATED, Json(d.create_organisation(o).await.map_err(reg_err)?.into())))
}

#[utoipa::path(get, path = "/api/v1/organisations/{id}", tag = "register", operation_id = "getOrganisation", params(("id" = i64, Path)),
    responses((status = 200, body = OrganisationDto), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_organisation(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>) -> Result<Json<OrganisationDto>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "organisation.read", "organisation", &raw).await?;
    Ok(Json(d.organisation(id_of("organisation", &raw)?).await?.into()))
}

#[utoipa::path(put, path = "/api/v1/organisations/{id}", tag = "register", operation_id = "updateOrganisation", params(("id" = i64, Path)), request_body = OrganisationUpdateRequest,
    responses(
        (status = 200, body = OrganisationDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_organisation(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(raw): Path<String>, Body(req): Body<OrganisationUpdateRequest>) -> Result<Json<OrganisationDto>, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "organisation.update", "organisation", &raw).await?;
    let id = id_of("organisation", &raw)?;
    let o = parse_organisation(&req.organisation)?;
    Ok(Json(d.update_organisation(id, req.version, o).await.map_err(reg_err)?.into()))
}

#[utoipa::path(get, path = "/api/v1/organisations/{id}/history", tag = "register", operation_id = "organisationHistory", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<HistoryDto>), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn organisation_history(state: State<AppState>, c: ApiCaller, raw: Path<String>) -> Result<Json<Vec<HistoryDto>>, ApiError> {
    history(state, c, raw, "organisation").await
}

// ---- exports ----

/// A cell of an exported sheet.
enum Cell {
    Text(String),
    Num(f64),
    Empty,
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn opt_text(s: Option<String>) -> Cell {
    s.map_or(Cell::Empty, Cell::Text)
}

/// The column headers, in Chinese, each an alias the import reads back.
fn headers(e: ExportEntity) -> &'static [&'static str] {
    match e {
        ExportEntity::Persons => &["姓名", "身份证号", "性别", "出生日期", "民族", "联系电话", "现住址", "人口类型", "所属网格", "备注"],
        ExportEntity::Houses => &["地址", "用途", "面积", "所属网格"],
        ExportEntity::Households => &["户编号", "户主姓名", "户主身份证号", "人数", "地址", "所属网格"],
        ExportEntity::Organisations => &["单位名称", "统一社会信用代码", "地址", "法定代表人", "联系电话", "所属网格"],
    }
}

fn use_zh(u: HouseUse) -> &'static str {
    match u {
        HouseUse::Residential => "住宅",
        HouseUse::Shop => "商铺",
        HouseUse::Mixed => "商住两用",
        HouseUse::Office => "办公",
        HouseUse::Factory => "厂房",
        HouseUse::Other => "其他",
    }
}

/// Rows of an export per page.
const EXPORT_PAGE: i64 = 2_000;

/// One page of rows (masked), and the last id for the next page.
async fn export_page(d: &RegisterDesk<'_>, r: &mut store::register::ExportReader, e: ExportEntity, f: &RegisterFilter) -> Result<(Vec<Vec<Cell>>, Option<i64>), StoreError> {
    Ok(match e {
        ExportEntity::Persons => {
            let rows = d.export_persons(r, f, EXPORT_PAGE).await?;
            let last = rows.last().map(|r| r.0.id);
            let cells = rows
                .into_iter()
                .map(|(p, address)| {
                    let tags = p.tags.iter().map(|t| t.name_zh()).collect::<Vec<_>>().join("、");
                    vec![
                        text(p.name),
                        text(p.citizen_id_masked),
                        text(if p.gender == "female" { "女" } else { "男" }),
                        text(p.birth_date.to_string()),
                        opt_text(p.ethnicity),
                        opt_text(p.phone_masked),
                        opt_text(address),
                        text(p.population_type.name_zh()),
                        text(p.area),
                        if tags.is_empty() { Cell::Empty } else { text(tags) },
                    ]
                })
                .collect();
            (cells, last)
        }
        ExportEntity::Houses => {
            let rows = d.export_houses(r, f, EXPORT_PAGE).await?;
            let last = rows.last().map(|h| h.id);
            let cells = rows.into_iter().map(|h| vec![text(h.address), text(use_zh(h.house_use)), h.area_m2.map_or(Cell::Empty, Cell::Num), text(h.area)]).collect();
            (cells, last)
        }
        ExportEntity::Households => {
            let rows: Vec<HouseholdLine> = d.export_households(r, f, EXPORT_PAGE).await?;
            let last = rows.last().map(|h| h.id);
            let cells = rows
                .into_iter()
                .map(|h| vec![text(h.id.to_string()), opt_text(h.head_name), opt_text(h.head_citizen_id_masked), Cell::Num(h.members as f64), opt_text(h.address), text(h.area)])
                .collect();
            (cells, last)
        }
        ExportEntity::Organisations => {
            let rows = d.export_organisations(r, f, EXPORT_PAGE).await?;
            let last = rows.last().map(|o| o.id);
            let cells = rows
                .into_iter()
                .map(|o| vec![text(o.name), text(o.credit_code), opt_text(o.address), opt_text(o.legal_rep), opt_text(o.phone_masked), text(o.area)])
                .collect();
            (cells, last)
        }
    })
}

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn csv_rows(rows: &[Vec<Cell>]) -> String {
    let mut out = String::new();
    for row in rows {
        for (k, c) in row.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            match c {
                Cell::Text(t) => csv_field(&mut out, &escape_for_spreadsheet(t)),
                Cell::Num(n) => out.push_str(&n.to_string()),
                Cell::Empty => {}
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// The body of a streamed CSV export: chunks from the task that pages through the rows.
struct Chunks(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

fn entity_name(e: ExportEntity) -> &'static str {
    match e {
        ExportEntity::Persons => "实有人口",
        ExportEntity::Houses => "实有房屋",
        ExportEntity::Households => "户",
        ExportEntity::Organisations => "实有单位",
    }
}

/// Export a filtered list: the format, the filter's description for the audit row, and the
/// answer (a streamed CSV, or an .xlsx written with a constant-memory worksheet).
async fn export(state: AppState, c: Caller, q: Params, e: ExportEntity) -> Result<Response, ApiError> {
    let s = c.scoped(&state);
    let d = desk(&s, "register.export", e.entity(), "*").await?;
    let format = match q.0.get("format").map(|f| f.trim()).filter(|f| !f.is_empty()).unwrap_or("xlsx") {
        "xlsx" => "xlsx",
        "csv" => "csv",
        other => return Err(ApiError::bad_request("invalid_format", format!("format must be xlsx or csv, not {other:?}"))),
    };
    let mut f = filter_of(&q, today(&state))?;
    f.after = None;
    let mut described: Vec<String> = FILTER_PARAMS.iter().filter_map(|k| q.0.get(*k).filter(|v| !v.trim().is_empty()).map(|v| format!("{k}={v}"))).collect();
    described.sort();
    let rows = d.begin_export(e, format, &described.join("&"), &f).await?;
    let filename = format!("{}-{}.{format}", e.table(), Day::of_instant(state.db.now_ms()));
    let disposition = format!("attachment; filename=\"{filename}\"");
    if format == "csv" {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (state, caller) = (state.clone(), c.clone());
        tokio::spawn(async move {
            let s = caller.scoped(&state);
            let Some(d) = s.register() else { return };
            let mut reader = match d.export_reader().await {
                Ok(r) => r,
                Err(err) => {
                    tracing::error!(error = %err, "register export");
                    let _ = tx.send(Err(std::io::Error::other("the export stopped"))).await;
                    return;
                }
            };
            // UTF-8 with a byte-order mark, so Excel opens it as UTF-8.
            let mut head = String::from("\u{feff}");
            head.push_str(&headers(e).join(","));
            head.push_str("\r\n");
            if tx.send(Ok(Bytes::from(head))).await.is_err() {
                return;
            }
            let mut f = f;
            loop {
                match export_page(&d, &mut reader, e, &f).await {
                    Ok((rows, last)) => {
                        if rows.is_empty() {
                            break;
                        }
                        if tx.send(Ok(Bytes::from(csv_rows(&rows)))).await.is_err() {
                            return;
                        }
                        f.after = last;
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "register export");
                        let _ = tx.send(Err(std::io::Error::other("the export stopped"))).await;
                        return;
                    }
                }
            }
        });
        let mut res = HttpBody::from_stream(Chunks(rx)).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/csv; charset=utf-8"));
        h.insert(header::CONTENT_DISPOSITION, header::HeaderValue::from_str(&disposition).map_err(|_| ApiError::bad_request("invalid_query", "bad file name"))?);
        h.insert("x-row-count", rows.into());
        return Ok(res);
    }
    // .xlsx: rows go to a constant-memory worksheet (flushed to a temporary file row by row),
    // then the workbook is zipped into the answer.
    let mut book = rust_xlsxwriter::Workbook::new();
    let xerr = |e: rust_xlsxwriter::XlsxError| {
        tracing::error!(error = %e, "xlsx export");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", "the export could not be written")
    };
    {
        let sheet = book.add_worksheet_with_constant_memory().map_err(xerr)?;
        sheet.set_name(entity_name(e)).map_err(xerr)?;
        for (k, h) in headers(e).iter().enumerate() {
            sheet.write_string(0, k as u16, *h).map_err(xerr)?;
        }
        let mut row = 1u32;
        let mut reader = d.export_reader().await?;
        loop {
            let (rows, last) = export_page(&d, &mut reader, e, &f).await?;
            if rows.is_empty() {
                break;
            }
            for cells in &rows {
                for (k, c) in cells.iter().enumerate() {
                    match c {
                        Cell::Text(t) => {
                            sheet.write_string(row, k as u16, escape_for_spreadsheet(t)).map_err(xerr)?;
                        }
                        Cell::Num(n) => {
                            sheet.write_number(row, k as u16, *n).map_err(xerr)?;
                        }
                        Cell::Empty => {}
                    }
                }
                row += 1;
            }
            f.after = last;
        }
    }
    // The zipped workbook goes to an anonymous temporary file, which is then streamed: memory
    // stays a few chunks whatever the export's size.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let written = tokio::task::spawn_blocking(move || -> Result<std::fs::File, String> {
        use std::io::Seek;
        let mut file = tempfile::tempfile().map_err(|e| e.to_string())?;
        book.save_to_writer(&mut file).map_err(|e| e.to_string())?;
        file.rewind().map_err(|e| e.to_string())?;
        Ok(file)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let mut file = written.map_err(|e| {
        tracing::error!(error = %e, "xlsx export");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", "the export could not be written")
    })?;
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(Ok(Bytes::copy_from_slice(&buf[..n]))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let mut res = HttpBody::from_stream(Chunks(rx)).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"));
    h.insert(header::CONTENT_DISPOSITION, header::HeaderValue::from_str(&disposition).map_err(|_| ApiError::bad_request("invalid_query", "bad file name"))?);
    h.insert("x-row-count", rows.into());
    Ok(res)
}

/// Export persons (the same filters as the list) to .xlsx or .csv: masked, in your scope,
/// audited with the filter and the row count. Text that a spreadsheet would take for a
/// formula is written with a leading `'`.
#[utoipa::path(get, path = "/api/v1/persons/export", tag = "register", operation_id = "exportPersons",
    params(("format" = Option<String>, Query, description = "xlsx (default) or csv (UTF-8 with a byte-order mark)"),
        ("area" = Option<String>, Query), ("house" = Option<i64>, Query), ("name" = Option<String>, Query), ("gender" = Option<String>, Query),
        ("age_min" = Option<i64>, Query), ("age_max" = Option<i64>, Query), ("population_type" = Option<String>, Query), ("tag" = Option<String>, Query)),
    responses((status = 200, description = "The sheet; X-Row-Count says how many rows", content_type = "text/csv"), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn export_persons(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Response, ApiError> {
    export(state, c, q, ExportEntity::Persons).await
}

/// Export houses to .xlsx or .csv (scoped, audited).
#[utoipa::path(get, path = "/api/v1/houses/export", tag = "register", operation_id = "exportHouses",
    params(("format" = Option<String>, Query, description = "xlsx (default) or csv"), ("area" = Option<String>, Query), ("q" = Option<String>, Query)),
    responses((status = 200, description = "The sheet", content_type = "text/csv"), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn export_houses(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Response, ApiError> {
    export(state, c, q, ExportEntity::Houses).await
}

/// Export households to .xlsx or .csv (heads' ID numbers masked; scoped, audited).
#[utoipa::path(get, path = "/api/v1/households/export", tag = "register", operation_id = "exportHouseholds",
    params(("format" = Option<String>, Query, description = "xlsx (default) or csv"), ("area" = Option<String>, Query), ("house" = Option<i64>, Query)),
    responses((status = 200, description = "The sheet", content_type = "text/csv"), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn export_households(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Response, ApiError> {
    export(state, c, q, ExportEntity::Households).await
}

/// Export organisations to .xlsx or .csv (phones masked; scoped, audited).
#[utoipa::path(get, path = "/api/v1/organisations/export", tag = "register", operation_id = "exportOrganisations",
    params(("format" = Option<String>, Query, description = "xlsx (default) or csv"), ("area" = Option<String>, Query), ("q" = Option<String>, Query)),
    responses((status = 200, description = "The sheet", content_type = "text/csv"), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn export_organisations(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Response, ApiError> {
    export(state, c, q, ExportEntity::Organisations).await
}
