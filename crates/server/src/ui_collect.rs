//! The grid worker's collection screens (`/m/register`, 入户采集): the open tasks of their
//! grid with progress, the grid's houses marked visited or not, and a house page to record
//! a visit, add a person living there, edit a person, move a person out to another house
//! or in from elsewhere. Forms check their values with `domain::register` and show each
//! field's error next to it, keeping what was typed; writes go through the caller's
//! [`RegisterDesk`] and [`CollectionDesk`], so scope, versions, history and audit are the
//! store's.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::calendar::Day;
use domain::register::{CitizenId, PopulationType, parse_mobile};
use serde::Deserialize;
use store::StoreError;
use store::collection::Outcome;
use store::register::{HouseInput, HouseUse, HouseView, NewPerson, PersonFormEdit, PersonView, RegisterQuery};

use crate::AppState;
use crate::api::Params;
use crate::auth::{Caller, UiCaller};
use crate::i18n::Lang;
use crate::ui::{Chrome, Ctx, render};
use crate::ui_register::{TaskLine, collection_of, desk_of, error_text, fail, half, outcome_word, task_lines, use_word};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/m/register", get(home))
        .route("/m/register/houses", post(create_house))
        .route("/m/register/houses/new", get(new_house))
        .route("/m/register/houses/{id}", get(house))
        .route("/m/register/houses/{id}/visit", post(visit))
        .route("/m/register/houses/{id}/persons", post(create_person))
        .route("/m/register/houses/{id}/persons/new", get(new_person))
        .route("/m/register/houses/{id}/move-in", post(move_in))
        .route("/m/register/persons/{id}", post(update_person))
        .route("/m/register/persons/{id}/edit", get(edit_person))
        .route("/m/register/persons/{id}/move", get(move_form).post(move_out))
}

/// A path id, or None (answered as the 404 page).
fn id_of(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok()
}

fn today(state: &AppState) -> Day {
    Day::of_instant(state.db.now_ms())
}

// ---------------------------------------------------------------- my grid

struct HouseLine {
    h: HouseView,
    /// The latest visit's outcome under the first open task, if any.
    visited: Option<String>,
}

#[derive(Template)]
#[template(path = "m_register.html")]
struct HomePage {
    c: Chrome,
    tasks: Vec<TaskLine>,
    houses: Vec<HouseLine>,
    address: String,
    show: String,
    may_write: bool,
    next: String,
}

async fn home(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let desk = desk_of(&s, &ctx, "house.list").await?;
    let collect = collection_of(&s, &ctx, "collection.list").await?;
    let tasks = collect.tasks(None, true).await.map_err(|e| fail(&ctx, e))?;
    // The houses of the caller's grid, visited or not under the newest open task.
    let visits: HashMap<i64, store::collection::VisitView> = match tasks.first() {
        Some(t) => collect.last_visits(t.id).await.map_err(|e| fail(&ctx, e))?,
        None => HashMap::new(),
    };
    let address = q.0.get("address").map(|a| a.trim().to_string()).unwrap_or_default();
    let show = q.0.get("show").cloned().filter(|v| v == "todo" || v == "done").unwrap_or_default();
    let after = q.0.get("after").and_then(|v| v.parse().ok());
    let query = RegisterQuery { address: address.clone(), after, limit: 200, ..RegisterQuery::default() };
    let found = desk.find_houses(&query).await.map_err(|e| fail(&ctx, e))?;
    let next = if found.len() == 200 { found.last().map(|h| format!("/m/register?show={show}&address={}&after={}", crate::ui::url_escape(&address), h.id)).unwrap_or_default() } else { String::new() };
    let houses = found
        .into_iter()
        .map(|h| HouseLine { visited: visits.get(&h.id).map(|v| outcome_word(ctx.lang, v.outcome)), h })
        .filter(|l| match show.as_str() {
            "todo" => l.visited.is_none(),
            "done" => l.visited.is_some(),
            _ => true,
        })
        .collect();
    let page = HomePage {
        c: Chrome::for_user(&ctx, &me, "register", ctx.lang.t("collect.mine")),
        tasks: task_lines(ctx.lang, tasks),
        houses,
        address,
        show,
        may_write: desk.may_write(),
        next,
    };
    Ok(render(&page).into_response())
}

// ---------------------------------------------------------------- a house

#[derive(Template)]
#[template(path = "m_house.html")]
struct HousePage {
    c: Chrome,
    h: HouseView,
    house_use: String,
    people: Vec<PersonView>,
    /// Open tasks of the house's grid: (id, title).
    tasks: Vec<(i64, String)>,
    visits: Vec<(String, String, String, String)>,
    outcomes: Vec<(&'static str, String)>,
    banner: String,
    error: String,
    move_in_id: String,
    may_write: bool,
}

async fn house_page(state: &AppState, me: &Caller, ctx: &Ctx, raw: &str, banner: String, error: String, move_in_id: String) -> Result<Response, Response> {
    let s = me.scoped(state);
    let desk = desk_of(&s, ctx, "house.read").await?;
    let collect = collection_of(&s, ctx, "collection.read").await?;
    let id = id_of(raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let h = desk.house(id).await.map_err(|e| fail(ctx, e))?;
    let people = desk.persons(&store::register::RegisterFilter { house_id: Some(id), limit: 500, ..Default::default() }).await.map_err(|e| fail(ctx, e))?;
    let grid = domain::AreaCode::parse(&h.area).ok();
    let tasks = collect.tasks(grid.as_ref(), true).await.map_err(|e| fail(ctx, e))?.into_iter().map(|t| (t.id, t.title)).collect();
    let visits = collect
        .house_visits(id)
        .await
        .map_err(|e| fail(ctx, e))?
        .into_iter()
        .map(|v| (crate::ui_register::at(v.visited_at), v.actor_name, outcome_word(ctx.lang, v.outcome), v.note.unwrap_or_default()))
        .collect();
    let outcomes = Outcome::ALL.iter().map(|o| (o.as_str(), outcome_word(ctx.lang, *o))).collect();
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = HousePage {
        c: Chrome::for_user(ctx, me, "register", h.address.clone()),
        house_use: use_word(ctx.lang, h.house_use),
        h,
        people,
        tasks,
        visits,
        outcomes,
        banner,
        error,
        move_in_id,
        may_write: desk.may_write(),
    };
    Ok((status, render(&page)).into_response())
}

fn banner_of(lang: Lang, q: &Params) -> String {
    for k in ["visited", "added", "saved", "moved", "created"] {
        if q.0.contains_key(k) {
            return lang.t(&format!("collect.banner.{k}")).to_string();
        }
    }
    String::new()
}

async fn house(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, q: Params) -> Result<Response, Response> {
    let banner = banner_of(ctx.lang, &q);
    house_page(&state, &me, &ctx, &raw, banner, String::new(), String::new()).await
}

#[derive(Deserialize)]
struct VisitForm {
    #[serde(default)]
    task: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
}

async fn visit(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<VisitForm>) -> Result<Response, Response> {
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let (Ok(task), Some(outcome)) = (f.task.parse::<i64>(), Outcome::parse(&f.outcome)) else {
        return house_page(&state, &me, &ctx, &raw, String::new(), ctx.lang.t("collect.pick_outcome").into(), String::new()).await;
    };
    let r = {
        let s = me.scoped(&state);
        let collect = collection_of(&s, &ctx, "collection.visit").await?;
        collect.record_visit(task, id, outcome, &f.note).await
    };
    match r {
        Ok(_) => Ok(Redirect::to(&format!("/m/register/houses/{id}?visited=1")).into_response()),
        Err(e @ (StoreError::Invalid { .. } | StoreError::Conflict { .. })) => {
            house_page(&state, &me, &ctx, &raw, String::new(), error_text(ctx.lang, &e), String::new()).await
        }
        Err(e) => Err(fail(&ctx, e)),
    }
}

#[derive(Deserialize)]
struct MoveInForm {
    #[serde(default)]
    citizen_id: String,
}

/// Move someone in from elsewhere: found by their ID number within the caller's scope.
async fn move_in(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<MoveInForm>) -> Result<Response, Response> {
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let r = {
        let s = me.scoped(&state);
        let desk = desk_of(&s, &ctx, "person.move").await?;
        // The house first: out of scope is the 404 page, whatever the number.
        desk.house(id).await.map_err(|e| fail(&ctx, e))?;
        match CitizenId::parse(&f.citizen_id, today(&state)) {
            Err(e) => Err(half(ctx.lang, &e.to_string())),
            Ok(cid) => match desk.person_by_citizen_id(cid.value.expose()).await {
                Err(StoreError::NotFound(_)) => Err(ctx.lang.t("collect.person_not_found").to_string()),
                Err(e) => Err(error_text(ctx.lang, &e)),
                Ok(p) => desk.move_person(p.id, p.version, id).await.map(|_| ()).map_err(|e| error_text(ctx.lang, &e)),
            },
        }
    };
    match r {
        Ok(()) => Ok(Redirect::to(&format!("/m/register/houses/{id}?moved=1")).into_response()),
        Err(msg) => house_page(&state, &me, &ctx, &raw, String::new(), msg, f.citizen_id).await,
    }
}

// ---------------------------------------------------------------- a person's form

/// A person's form as typed, with each field's error.
#[derive(Debug, Clone, Default, Deserialize)]
struct PersonFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    citizen_id: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    ethnicity: String,
    #[serde(default)]
    population_type: String,
    #[serde(default)]
    phone_clear: String,
    #[serde(default)]
    version: String,
}

#[derive(Debug, Clone, Default)]
struct FieldErrors {
    name: String,
    citizen_id: String,
    phone: String,
    ethnicity: String,
    form: String,
}

impl FieldErrors {
    fn any(&self) -> bool {
        !(self.name.is_empty() && self.citizen_id.is_empty() && self.phone.is_empty() && self.ethnicity.is_empty() && self.form.is_empty())
    }
}

#[derive(Template)]
#[template(path = "m_person_form.html")]
struct PersonForm {
    c: Chrome,
    /// Where the form posts.
    action: String,
    back: String,
    house: Option<HouseView>,
    /// Editing: the person as stored (masked values shown as hints).
    current: Option<PersonView>,
    f: PersonFields,
    e: FieldErrors,
    /// 人口类型 choices: (code, label).
    population_types: Vec<(&'static str, &'static str)>,
}

/// Parsed values of a person's form, or the errors by field. The ID number may be left
/// empty when editing (the stored one is kept).
struct Parsed {
    citizen_id: Option<CitizenId>,
    phone: Option<domain::Phone>,
}

fn check(lang: Lang, f: &PersonFields, editing: bool, today: Day) -> Result<Parsed, FieldErrors> {
    let mut e = FieldErrors::default();
    let name = f.name.trim();
    if name.is_empty() {
        e.name = lang.t("collect.err.name_required").into();
    } else if name.chars().count() > 50 {
        e.name = lang.t("collect.err.name_long").into();
    }
    if f.ethnicity.trim().chars().count() > 20 {
        e.ethnicity = lang.t("collect.err.ethnicity_long").into();
    }
    let citizen_id = if editing && f.citizen_id.trim().is_empty() {
        None
    } else {
        match CitizenId::parse(&f.citizen_id, today) {
            Ok(p) => Some(p.value),
            Err(err) => {
                e.citizen_id = half(lang, &err.to_string());
                None
            }
        }
    };
    let phone = if f.phone.trim().is_empty() {
        None
    } else {
        match parse_mobile(&f.phone) {
            Ok(p) => Some(p.value),
            Err(err) => {
                e.phone = half(lang, &err.to_string());
                None
            }
        }
    };
    if e.any() { Err(e) } else { Ok(Parsed { citizen_id, phone }) }
}

/// A store refusal, placed next to its field when it has one.
fn place_error(lang: Lang, err: &StoreError) -> FieldErrors {
    let text = error_text(lang, err);
    let mut e = FieldErrors::default();
    match err.code() {
        "duplicate_citizen_id" => e.citizen_id = text,
        "field_required" | "field_too_long" if err.to_string().starts_with("name") => e.name = text,
        "field_too_long" if err.to_string().starts_with("ethnicity") => e.ethnicity = text,
        _ => e.form = text,
    }
    e
}

async fn person_form(me: &Caller, ctx: &Ctx, (action, back): (String, String), house: Option<HouseView>, current: Option<PersonView>, f: PersonFields, e: FieldErrors) -> Response {
    let title = if current.is_some() { ctx.lang.t("collect.edit_person") } else { ctx.lang.t("collect.add_person") };
    let status = if e.any() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let population_types = PopulationType::ALL
        .into_iter()
        .map(|t| {
            let label = match t {
                PopulationType::Registered => ctx.lang.t("reg.pt.registered"),
                PopulationType::Resident => ctx.lang.t("reg.pt.resident"),
                PopulationType::Floating => ctx.lang.t("reg.pt.floating"),
            };
            (t.as_str(), label)
        })
        .collect();
    let page = PersonForm { c: Chrome::for_user(ctx, me, "register", title), action, back, house, current, f, e, population_types };
    (status, render(&page)).into_response()
}

async fn new_person(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>) -> Result<Response, Response> {
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let s = me.scoped(&state);
    let desk = desk_of(&s, &ctx, "person.create").await?;
    let h = desk.house(id).await.map_err(|e| fail(&ctx, e))?;
    let f = PersonFields { ethnicity: "汉族".into(), population_type: PopulationType::default().as_str().into(), ..PersonFields::default() };
    Ok(person_form(&me, &ctx, (format!("/m/register/houses/{id}/persons"), format!("/m/register/houses/{id}")), Some(h), None, f, FieldErrors::default()).await)
}

/// Add a person living in this house; on success, back to the house page (303).
async fn create_person(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<PersonFields>) -> Result<Response, Response> {
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let s = me.scoped(&state);
    let desk = desk_of(&s, &ctx, "person.create").await?;
    let h = desk.house(id).await.map_err(|e| fail(&ctx, e))?;
    let (action, back) = (format!("/m/register/houses/{id}/persons"), format!("/m/register/houses/{id}"));
    let parsed = match check(ctx.lang, &f, false, today(&state)) {
        Ok(p) => p,
        Err(e) => return Ok(person_form(&me, &ctx, (action.clone(), back.clone()), Some(h), None, f, e).await),
    };
    let Some(citizen_id) = parsed.citizen_id else { return Err(fail(&ctx, StoreError::Corrupt("checked ID number missing".into()))) };
    let new = NewPerson {
        citizen_id,
        name: f.name.clone(),
        phone: parsed.phone,
        ethnicity: Some(f.ethnicity.trim().to_string()).filter(|e| !e.is_empty()),
        house_id: Some(id),
        area: None,
        population_type: PopulationType::parse(&f.population_type).unwrap_or_default(),
        tags: Vec::new(),
    };
    match desk.create_person(new).await {
        Ok(p) => Ok(Redirect::to(&format!("/m/register/houses/{id}?added={}", p.id)).into_response()),
        Err(e @ (StoreError::Invalid { .. } | StoreError::Conflict { .. })) => {
            let errors = place_error(ctx.lang, &e);
            Ok(person_form(&me, &ctx, (action.clone(), back.clone()), Some(h), None, f, errors).await)
        }
        Err(e) => Err(fail(&ctx, e)),
    }
}

async fn edit_person(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>) -> Result<Response, Response> {
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let s = me.scoped(&state);
    let desk = desk_of(&s, &ctx, "person.update").await?;
    let p = desk.person(id).await.map_err(|e| fail(&ctx, e))?;
    let back = p.house_id.map(|h| format!("/m/register/houses/{h}")).unwrap_or_else(|| "/m/register".into());
    let f = PersonFields { name: p.name.clone(), ethnicity: p.ethnicity.clone().unwrap_or_default(), version: p.version.to_string(), population_type: p.population_type.as_str().into(), ..PersonFields::default() };
    Ok(person_form(&me, &ctx, (format!("/m/register/persons/{id}"), back), None, Some(p), f, FieldErrors::default()).await)
}

/// Save an edited person at the version the form was rendered with. An empty ID number or
/// phone keeps the stored one (they are never shown in full here).
async fn update_person(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<PersonFields>) -> Result<Response, Response> {
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let s = me.scoped(&state);
    let desk = desk_of(&s, &ctx, "person.update").await?;
    let p = desk.person(id).await.map_err(|e| fail(&ctx, e))?;
    let back = p.house_id.map(|h| format!("/m/register/houses/{h}")).unwrap_or_else(|| "/m/register".into());
    let action = format!("/m/register/persons/{id}");
    let parsed = match check(ctx.lang, &f, true, today(&state)) {
        Ok(v) => v,
        Err(e) => return Ok(person_form(&me, &ctx, (action.clone(), back.clone()), None, Some(p), f, e).await),
    };
    let Ok(version) = f.version.parse::<i64>() else {
        let e = FieldErrors { form: ctx.lang.t("mobile.bad_form").into(), ..FieldErrors::default() };
        return Ok(person_form(&me, &ctx, (action.clone(), back.clone()), None, Some(p), f, e).await);
    };
    let phone = match (parsed.phone, f.phone_clear.is_empty()) {
        (Some(ph), _) => Some(Some(ph)),
        (None, false) => Some(None),
        (None, true) => None,
    };
    let edit = PersonFormEdit { citizen_id: parsed.citizen_id, name: f.name.clone(), phone, ethnicity: Some(f.ethnicity.trim().to_string()).filter(|e| !e.is_empty()), population_type: PopulationType::parse(&f.population_type) };
    match desk.update_person_form(id, version, edit).await {
        Ok(_) => Ok(Redirect::to(&format!("{back}{}saved=1", if back.contains('?') { "&" } else { "?" })).into_response()),
        Err(e @ (StoreError::Invalid { .. } | StoreError::Conflict { .. })) => {
            let errors = place_error(ctx.lang, &e);
            Ok(person_form(&me, &ctx, (action.clone(), back.clone()), None, Some(p), f, errors).await)
        }
        Err(e) => Err(fail(&ctx, e)),
    }
}

// ---------------------------------------------------------------- moving out

#[derive(Template)]
#[template(path = "m_move.html")]
struct MovePage {
    c: Chrome,
    p: PersonView,
    from: Option<HouseView>,
    address: String,
    houses: Vec<HouseView>,
    error: String,
}

async fn move_page(state: &AppState, me: &Caller, ctx: &Ctx, raw: &str, address: String, error: String) -> Result<Response, Response> {
    let id = id_of(raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let s = me.scoped(state);
    let desk = desk_of(&s, ctx, "person.move").await?;
    let p = desk.person(id).await.map_err(|e| fail(ctx, e))?;
    let from = match p.house_id {
        Some(h) => desk.house(h).await.ok(),
        None => None,
    };
    let houses = if address.trim().is_empty() {
        Vec::new()
    } else {
        let q = RegisterQuery { address: address.clone(), limit: 30, ..RegisterQuery::default() };
        desk.find_houses(&q).await.map_err(|e| fail(ctx, e))?.into_iter().filter(|h| Some(h.id) != p.house_id).collect()
    };
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = MovePage { c: Chrome::for_user(ctx, me, "register", ctx.lang.t("collect.move_out")), p, from, address, houses, error };
    Ok((status, render(&page)).into_response())
}

async fn move_form(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, q: Params) -> Result<Response, Response> {
    let address = q.0.get("address").cloned().unwrap_or_default();
    move_page(&state, &me, &ctx, &raw, address, String::new()).await
}

#[derive(Deserialize)]
struct MoveForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    address: String,
}

/// Move a person out of their house into the chosen one: one operation in the store, which
/// keeps the person's history and writes both houses' side of it.
async fn move_out(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<MoveForm>) -> Result<Response, Response> {
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let (Ok(to), Ok(version)) = (f.to.parse::<i64>(), f.version.parse::<i64>()) else {
        return move_page(&state, &me, &ctx, &raw, f.address, ctx.lang.t("collect.pick_house").into()).await;
    };
    let r = {
        let s = me.scoped(&state);
        let desk = desk_of(&s, &ctx, "person.move").await?;
        desk.move_person(id, version, to).await
    };
    match r {
        Ok(_) => Ok(Redirect::to(&format!("/m/register/houses/{to}?moved=1")).into_response()),
        Err(e @ (StoreError::Invalid { .. } | StoreError::Conflict { .. })) => move_page(&state, &me, &ctx, &raw, f.address, error_text(ctx.lang, &e)).await,
        Err(e) => Err(fail(&ctx, e)),
    }
}

// ---------------------------------------------------------------- a new house

#[derive(Debug, Clone, Default, Deserialize)]
struct HouseFields {
    #[serde(default)]
    address: String,
    #[serde(default)]
    house_use: String,
    #[serde(default)]
    area_m2: String,
}

#[derive(Template)]
#[template(path = "m_house_form.html")]
struct HouseForm {
    c: Chrome,
    f: HouseFields,
    uses: Vec<(&'static str, String)>,
    address_error: String,
    area_error: String,
    error: String,
}

fn house_form(me: &Caller, ctx: &Ctx, f: HouseFields, address_error: String, area_error: String, error: String) -> Response {
    let uses = HouseUse::ALL.iter().map(|u| (u.as_str(), use_word(ctx.lang, *u))).collect();
    let status = if address_error.is_empty() && area_error.is_empty() && error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = HouseForm { c: Chrome::for_user(ctx, me, "register", ctx.lang.t("collect.add_house")), f, uses, address_error, area_error, error };
    (status, render(&page)).into_response()
}

async fn new_house(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let desk = desk_of(&s, &ctx, "house.create").await?;
    if !desk.may_write() {
        let _ = s.deny("house.create", "house", "").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    }
    Ok(house_form(&me, &ctx, HouseFields { house_use: "residential".into(), ..HouseFields::default() }, String::new(), String::new(), String::new()))
}

/// Add a house in the caller's grid (grid staff: the grid is their area).
async fn create_house(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Form(f): Form<HouseFields>) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let desk = desk_of(&s, &ctx, "house.create").await?;
    let mut address_error = String::new();
    if f.address.trim().is_empty() {
        address_error = ctx.lang.t("collect.err.address_required").into();
    }
    let area_m2 = match f.area_m2.trim() {
        "" => None,
        v => match v.parse::<f64>() {
            Ok(a) if a.is_finite() && a > 0.0 && a < 100_000.0 => Some(a),
            _ => {
                let msg = half(ctx.lang, &domain::register::RegisterError::HouseArea.to_string());
                return Ok(house_form(&me, &ctx, f, address_error, msg, String::new()));
            }
        },
    };
    if !address_error.is_empty() {
        return Ok(house_form(&me, &ctx, f, address_error, String::new(), String::new()));
    }
    let input = HouseInput {
        address: f.address.clone(),
        area: me.principal.area.clone(),
        point: None,
        area_m2,
        house_use: HouseUse::parse(&f.house_use).unwrap_or(HouseUse::Residential),
    };
    match desk.create_house(input).await {
        Ok(h) => Ok(Redirect::to(&format!("/m/register/houses/{}?created=1", h.id)).into_response()),
        Err(e @ (StoreError::Invalid { .. } | StoreError::Conflict { .. })) => {
            let msg = error_text(ctx.lang, &e);
            Ok(house_form(&me, &ctx, f, String::new(), String::new(), msg))
        }
        Err(e) => Err(fail(&ctx, e)),
    }
}
