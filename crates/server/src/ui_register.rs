//! The register's desk screens (登记, issue 5 point 7): lists of persons, houses,
//! households and organisations with filters and pages, their detail pages with the
//! history of every change, the audited unmask form on a person's page, and the
//! collection overview for community and street staff. Everything reads through the
//! caller's [`RegisterDesk`] / [`CollectionDesk`]: out-of-scope objects answer 404 and the
//! attempt is audited; ID numbers and phones show masked.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::AreaCode;
use domain::calendar::Day;
use serde::Deserialize;
use store::StoreError;
use store::collection::{CollectionDesk, NewTask, TaskProgress};
use store::register::{HistoryRow, HouseView, HouseholdView, OrganisationView, PersonListRow, PersonView, RegisterDesk, RegisterQuery, Sensitive};
use store::scoped::Scoped;

use crate::AppState;
use crate::api::Params;
use crate::auth::{Caller, UiCaller};
use crate::i18n::Lang;
use crate::problem::ApiError;
use crate::ui::{Chrome, Ctx, render, url_escape};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/register", get(|| async { Redirect::to("/register/persons") }))
        .route("/register/persons", get(persons))
        .route("/register/persons/{id}", get(person_page))
        .route("/register/persons/{id}/unmask", post(unmask))
        .route("/register/houses", get(houses))
        .route("/register/houses/{id}", get(house_page))
        .route("/register/households", get(households))
        .route("/register/households/{id}", get(household_page))
        .route("/register/organisations", get(organisations))
        .route("/register/organisations/{id}", get(organisation_page))
        .route("/register/collection", get(collection).post(create_task))
}

/// Rows on one page of a list.
pub const PAGE: i64 = 50;

/// A word, or `fallback` when the UI has none for the key.
pub fn word(lang: Lang, key: &str, fallback: &str) -> String {
    let w = lang.t(key);
    if w.starts_with('⟦') { fallback.to_string() } else { w.to_string() }
}

/// One language's half of a domain message written `中文 (English)`.
pub fn half(lang: Lang, msg: &str) -> String {
    match (msg.rfind(" ("), lang) {
        (Some(i), Lang::Zh) => msg[..i].to_string(),
        (Some(i), Lang::En) => msg[i + 2..].trim_end_matches(')').to_string(),
        (None, _) => msg.to_string(),
    }
}

/// The text of a store error on a screen: the UI's words for its code when there are some.
pub fn error_text(lang: Lang, e: &StoreError) -> String {
    let code = e.code();
    word(lang, &format!("regerr.{code}"), &half(lang, &e.to_string()))
}

/// A failure as a page: not found (out of scope) as the 404 page, the rest as a message.
pub fn fail(ctx: &Ctx, e: StoreError) -> Response {
    let e = ApiError::from(e);
    if e.status == StatusCode::NOT_FOUND {
        return crate::ui::not_found_page(&ctx.path);
    }
    let c = Chrome::new(ctx, "", ctx.lang.t("error.title"));
    (e.status, render(&MessagePage { c, message: e.detail, back: "/register".into() })).into_response()
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    c: Chrome,
    message: String,
    back: String,
}

/// The register desk, or the 404 page (audited) for a role without one.
pub async fn desk_of<'s>(s: &'s Scoped<'s>, ctx: &Ctx, action: &str) -> Result<RegisterDesk<'s>, Response> {
    match s.register() {
        Some(d) => Ok(d),
        None => {
            let _ = s.deny(action, "register", "").await;
            Err(crate::ui::not_found_page(&ctx.path))
        }
    }
}

pub async fn collection_of<'s>(s: &'s Scoped<'s>, ctx: &Ctx, action: &str) -> Result<CollectionDesk<'s>, Response> {
    match s.collection() {
        Some(d) => Ok(d),
        None => {
            let _ = s.deny(action, "collection_task", "").await;
            Err(crate::ui::not_found_page(&ctx.path))
        }
    }
}

/// A path id, or None (answered as the 404 page).
fn id_of(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok()
}

/// A time for the screens: Asia/Shanghai.
pub fn at(ms: i64) -> String {
    domain::time::format_shanghai(ms)
}

pub fn gender_word(lang: Lang, g: &str) -> String {
    word(lang, &format!("reg.gender.{g}"), g)
}

pub fn use_word(lang: Lang, u: store::register::HouseUse) -> String {
    word(lang, &format!("reg.use.{}", u.as_str()), u.as_str())
}

pub fn tenure_word(lang: Lang, t: store::register::Tenure) -> String {
    word(lang, &format!("reg.tenure.{}", t.as_str()), t.as_str())
}

pub fn relation_word(lang: Lang, r: domain::register::Relation) -> String {
    match lang {
        Lang::Zh => r.name_zh().to_string(),
        Lang::En => r.as_str().replace('_', " "),
    }
}

pub fn outcome_word(lang: Lang, o: store::collection::Outcome) -> String {
    word(lang, &format!("collect.outcome.{}", o.as_str()), o.as_str())
}

// ---------------------------------------------------------------- lists

/// The filter of a list, as typed (kept in the form and the links).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub area: String,
    pub name: String,
    pub address: String,
    pub after: Option<i64>,
}

impl Filters {
    fn of(q: &Params) -> Filters {
        let v = |k: &str| q.0.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
        Filters { area: v("area"), name: v("name"), address: v("address"), after: q.0.get("after").and_then(|s| s.parse().ok()) }
    }

    /// The store's query, or the message for a malformed area code.
    fn query(&self, lang: Lang) -> Result<RegisterQuery, String> {
        let area = match self.area.as_str() {
            "" => None,
            a => Some(AreaCode::parse(a).map_err(|_| lang.t("error.invalid_area_code").to_string())?),
        };
        Ok(RegisterQuery { area, name: self.name.clone(), address: self.address.clone(), after: self.after, limit: PAGE })
    }

    /// The query string of these filters (without the page), for links.
    pub fn qs(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [("area", &self.area), ("name", &self.name), ("address", &self.address)] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", url_escape(v)));
            }
        }
        parts.join("&")
    }
}

/// What one list page shows.
#[derive(Template)]
#[template(path = "register_list.html")]
struct ListPage {
    c: Chrome,
    /// persons, houses, households, organisations
    kind: &'static str,
    f: Filters,
    error: String,
    persons: Vec<PersonRowView>,
    houses: Vec<HouseRowView>,
    households: Vec<HouseholdView>,
    organisations: Vec<OrganisationView>,
    /// The next page's link, when this one is full.
    next: String,
    first: String,
    export: String,
}

struct PersonRowView {
    p: PersonView,
    gender: String,
    address: String,
}

struct HouseRowView {
    h: HouseView,
    house_use: String,
    updated: String,
}

impl ListPage {
    fn shows_name(&self) -> bool {
        self.kind != "houses"
    }
}

async fn list_page(state: &AppState, me: &Caller, ctx: &Ctx, q: &Params, kind: &'static str) -> Result<Response, Response> {
    let s = me.scoped(state);
    let desk = desk_of(&s, ctx, &format!("{kind}.list")).await?;
    let f = Filters::of(q);
    let title = ctx.lang.t(&format!("reg.{kind}"));
    let mut page = ListPage {
        c: Chrome::for_user(ctx, me, "register", title),
        kind,
        f: f.clone(),
        error: String::new(),
        persons: Vec::new(),
        houses: Vec::new(),
        households: Vec::new(),
        organisations: Vec::new(),
        next: String::new(),
        first: String::new(),
        export: String::new(),
    };
    let qs = f.qs();
    let sep = if qs.is_empty() { "" } else { "&" };
    page.export = format!("/api/v1/{kind}/export?format=xlsx{sep}{qs}");
    if f.after.is_some() {
        page.first = format!("/register/{kind}{}{qs}", if qs.is_empty() { "" } else { "?" });
    }
    let query = match f.query(ctx.lang) {
        Ok(q) => q,
        Err(e) => {
            page.error = e;
            return Ok((StatusCode::BAD_REQUEST, render(&page)).into_response());
        }
    };
    let last = match kind {
        "persons" => {
            let rows: Vec<PersonListRow> = desk.find_persons(&query).await.map_err(|e| fail(ctx, e))?;
            let last = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.person.id)).flatten();
            page.persons = rows
                .into_iter()
                .map(|r| PersonRowView { gender: gender_word(ctx.lang, &r.person.gender), address: r.address.unwrap_or_default(), p: r.person })
                .collect();
            last
        }
        "houses" => {
            let rows = desk.find_houses(&query).await.map_err(|e| fail(ctx, e))?;
            let last = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
            page.houses = rows.into_iter().map(|h| HouseRowView { house_use: use_word(ctx.lang, h.house_use), updated: at(h.updated_at), h }).collect();
            last
        }
        "households" => {
            let rows = desk.find_households(&query).await.map_err(|e| fail(ctx, e))?;
            let last = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
            page.households = rows;
            last
        }
        _ => {
            let rows = desk.find_organisations(&query).await.map_err(|e| fail(ctx, e))?;
            let last = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
            page.organisations = rows;
            last
        }
    };
    if let Some(last) = last {
        page.next = format!("/register/{kind}?{qs}{sep}after={last}");
    }
    Ok(render(&page).into_response())
}

async fn persons(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Response, Response> {
    list_page(&state, &me, &ctx, &q, "persons").await
}
async fn houses(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Response, Response> {
    list_page(&state, &me, &ctx, &q, "houses").await
}
async fn households(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Response, Response> {
    list_page(&state, &me, &ctx, &q, "households").await
}
async fn organisations(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Response, Response> {
    list_page(&state, &me, &ctx, &q, "organisations").await
}

// ---------------------------------------------------------------- history

/// One history row as the screens show it (sensitive values are masked by the store).
pub struct HistoryLine {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub field: String,
    pub old: String,
    pub new: String,
}

pub fn history_lines(lang: Lang, rows: Vec<HistoryRow>) -> Vec<HistoryLine> {
    rows.into_iter()
        .rev()
        .map(|r| HistoryLine {
            at: at(r.at),
            actor: r.actor_name,
            action: word(lang, &format!("reg.action.{}", r.action), &r.action),
            field: word(lang, &format!("reg.field.{}", r.field), &r.field),
            old: r.old_value.unwrap_or_default(),
            new: r.new_value.unwrap_or_default(),
        })
        .collect()
}

// ---------------------------------------------------------------- person

#[derive(Template)]
#[template(path = "register_person.html")]
struct PersonPage {
    c: Chrome,
    p: PersonView,
    gender: String,
    birth: String,
    house: Option<HouseView>,
    /// Other houses the person is linked to: (house, how).
    links: Vec<(HouseView, String)>,
    household: Option<HouseholdView>,
    members: Vec<(i64, String, String)>,
    history: Vec<HistoryLine>,
    /// A value shown once after an unmask: (what, value).
    revealed: Option<(String, String)>,
    unmask_error: String,
    reason: String,
    updated: String,
    /// 人口类型 and the care tags, in the page's language.
    population: String,
    tags: String,
}

/// A person's 人口类型 in the page's language.
fn population_word(lang: crate::i18n::Lang, t: domain::register::PopulationType) -> &'static str {
    use domain::register::PopulationType as T;
    lang.t(match t {
        T::Registered => "reg.pt.registered",
        T::Resident => "reg.pt.resident",
        T::Floating => "reg.pt.floating",
    })
}

/// A care tag in the page's language.
fn tag_word(lang: crate::i18n::Lang, t: domain::register::PersonTag) -> &'static str {
    use domain::register::PersonTag as T;
    lang.t(match t {
        T::ElderlyAlone => "reg.tag.elderly_alone",
        T::Disability => "reg.tag.disability",
        T::Veteran => "reg.tag.veteran",
        T::LeftBehindChild => "reg.tag.left_behind_child",
        T::LowIncome => "reg.tag.low_income",
    })
}

async fn person_view(state: &AppState, me: &Caller, ctx: &Ctx, raw: &str, revealed: Option<(String, String)>, unmask_error: String, reason: String) -> Result<Response, Response> {
    let s = me.scoped(state);
    let desk = desk_of(&s, ctx, "person.read").await?;
    let id = id_of(raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let p = desk.person(id).await.map_err(|e| fail(ctx, e))?;
    let house = match p.house_id {
        Some(h) => desk.house(h).await.ok(),
        None => None,
    };
    let mut links = Vec::new();
    for (h, t) in desk.person_houses(id).await.map_err(|e| fail(ctx, e))? {
        if Some(h) == p.house_id && t == store::register::Tenure::Lives {
            continue;
        }
        // A linked house outside the caller's scope is left out (and audited as denied).
        if let Ok(hv) = desk.house(h).await {
            links.push((hv, tenure_word(ctx.lang, t)));
        }
    }
    let household = desk.household_of(id).await.map_err(|e| fail(ctx, e))?;
    let members = household.as_ref().map(|h| h.members.iter().map(|m| (m.person_id, m.name.clone(), relation_word(ctx.lang, m.relation))).collect()).unwrap_or_default();
    let history = history_lines(ctx.lang, desk.history_of("person", id).await.map_err(|e| fail(ctx, e))?);
    let status = if unmask_error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = PersonPage {
        c: Chrome::for_user(ctx, me, "register", p.name.clone()),
        gender: gender_word(ctx.lang, &p.gender),
        birth: p.birth_date.to_string(),
        updated: at(p.updated_at),
        population: population_word(ctx.lang, p.population_type).to_string(),
        tags: p.tags.iter().map(|t| tag_word(ctx.lang, *t)).collect::<Vec<_>>().join(if ctx.lang == crate::i18n::Lang::Zh { "、" } else { ", " }),
        p,
        house,
        links,
        household,
        members,
        history,
        revealed,
        unmask_error,
        reason,
    };
    Ok((status, render(&page)).into_response())
}

async fn person_page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>) -> Result<Response, Response> {
    person_view(&state, &me, &ctx, &raw, None, String::new(), String::new()).await
}

#[derive(Deserialize)]
struct UnmaskForm {
    #[serde(default)]
    what: String,
    #[serde(default)]
    reason: String,
}

/// Show a person's full ID number or phone once, for a stated reason (audited by the store).
async fn unmask(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<UnmaskForm>) -> Result<Response, Response> {
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let what = match f.what.as_str() {
        "phone" => Sensitive::Phone,
        _ => Sensitive::CitizenId,
    };
    let label = ctx.lang.t(if what == Sensitive::Phone { "reg.phone" } else { "reg.citizen_id" }).to_string();
    let result = {
        let s = me.scoped(&state);
        let desk = desk_of(&s, &ctx, "read_sensitive").await?;
        desk.unmask_person(id, what, &f.reason).await
    };
    match result {
        Ok(v) => {
            let value = v.unwrap_or_else(|| "—".into());
            person_view(&state, &me, &ctx, &raw, Some((label, value)), String::new(), String::new()).await
        }
        Err(e @ StoreError::Invalid { .. }) => person_view(&state, &me, &ctx, &raw, None, error_text(ctx.lang, &e), f.reason).await,
        Err(e) => Err(fail(&ctx, e)),
    }
}

// ---------------------------------------------------------------- house, household, organisation

#[derive(Template)]
#[template(path = "register_house.html")]
struct HousePage {
    c: Chrome,
    h: HouseView,
    house_use: String,
    /// (person, how linked)
    people: Vec<(PersonView, String)>,
    households: Vec<HouseholdView>,
    organisations: Vec<OrganisationView>,
    history: Vec<HistoryLine>,
}

async fn house_page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let desk = desk_of(&s, &ctx, "house.read").await?;
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let h = desk.house(id).await.map_err(|e| fail(&ctx, e))?;
    let people = desk.house_people(id).await.map_err(|e| fail(&ctx, e))?.into_iter().map(|(p, t)| (p, tenure_word(ctx.lang, t))).collect();
    let households = desk.house_households(id).await.map_err(|e| fail(&ctx, e))?;
    let organisations = desk.house_organisations(id).await.map_err(|e| fail(&ctx, e))?;
    let history = history_lines(ctx.lang, desk.history_of("house", id).await.map_err(|e| fail(&ctx, e))?);
    let page = HousePage { c: Chrome::for_user(&ctx, &me, "register", h.address.clone()), house_use: use_word(ctx.lang, h.house_use), h, people, households, organisations, history };
    Ok(render(&page).into_response())
}

#[derive(Template)]
#[template(path = "register_household.html")]
struct HouseholdPage {
    c: Chrome,
    hh: HouseholdView,
    house: Option<HouseView>,
    /// (person, relation word)
    members: Vec<(PersonView, String)>,
    history: Vec<HistoryLine>,
}

async fn household_page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let desk = desk_of(&s, &ctx, "household.read").await?;
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let hh = desk.household(id).await.map_err(|e| fail(&ctx, e))?;
    let house = match hh.house_id {
        Some(h) => desk.house(h).await.ok(),
        None => None,
    };
    let mut members = Vec::new();
    for m in &hh.members {
        if let Ok(p) = desk.person(m.person_id).await {
            members.push((p, relation_word(ctx.lang, m.relation)));
        }
    }
    let history = history_lines(ctx.lang, desk.history_of("household", id).await.map_err(|e| fail(&ctx, e))?);
    let title = format!("{} #{id}", ctx.lang.t("reg.household"));
    let page = HouseholdPage { c: Chrome::for_user(&ctx, &me, "register", title), hh, house, members, history };
    Ok(render(&page).into_response())
}

#[derive(Template)]
#[template(path = "register_organisation.html")]
struct OrganisationPage {
    c: Chrome,
    o: OrganisationView,
    house: Option<HouseView>,
    history: Vec<HistoryLine>,
}

async fn organisation_page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let desk = desk_of(&s, &ctx, "organisation.read").await?;
    let id = id_of(&raw).ok_or_else(|| crate::ui::not_found_page(&ctx.path))?;
    let o = desk.organisation(id).await.map_err(|e| fail(&ctx, e))?;
    let house = match o.house_id {
        Some(h) => desk.house(h).await.ok(),
        None => None,
    };
    let history = history_lines(ctx.lang, desk.history_of("organisation", id).await.map_err(|e| fail(&ctx, e))?);
    let page = OrganisationPage { c: Chrome::for_user(&ctx, &me, "register", o.name.clone()), o, house, history };
    Ok(render(&page).into_response())
}

// ---------------------------------------------------------------- collection overview

pub struct TaskLine {
    pub t: TaskProgress,
    pub period: String,
    pub state: String,
}

pub fn task_lines(lang: Lang, tasks: Vec<TaskProgress>) -> Vec<TaskLine> {
    tasks
        .into_iter()
        .map(|t| TaskLine { period: format!("{} – {}", t.period_start, t.period_end), state: word(lang, &format!("collect.state.{}", t.state), &t.state), t })
        .collect()
}

#[derive(Template)]
#[template(path = "register_collection.html")]
struct CollectionPage {
    c: Chrome,
    tasks: Vec<TaskLine>,
    area: String,
    sort: String,
    open_only: bool,
    may_write: bool,
    form: TaskForm,
    error: String,
    created: Option<i64>,
    /// Totals over the tasks shown: houses visited, houses, people recorded.
    totals: (i64, i64, i64),
}

impl CollectionPage {
    fn sort_href(&self, sort: &str) -> String {
        let mut q = vec![format!("sort={sort}")];
        if !self.area.is_empty() {
            q.push(format!("area={}", url_escape(&self.area)));
        }
        if self.open_only {
            q.push("open=1".into());
        }
        format!("/register/collection?{}", q.join("&"))
    }
    fn sort_class(&self, sort: &str) -> &'static str {
        if self.sort == sort { "facet active" } else { "facet" }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct TaskForm {
    #[serde(default)]
    grid: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
}

async fn collection_page(state: &AppState, me: &Caller, ctx: &Ctx, q: &Params, form: TaskForm, error: String, created: Option<i64>) -> Result<Response, Response> {
    let s = me.scoped(state);
    let collect = collection_of(&s, ctx, "collection.list").await?;
    let area_raw = q.0.get("area").map(|a| a.trim().to_string()).unwrap_or_default();
    let sort = q.0.get("sort").cloned().filter(|s| ["progress", "progress_desc", "grid", "newest"].contains(&s.as_str())).unwrap_or_else(|| "progress".into());
    let open_only = q.0.get("open").is_some_and(|v| v == "1");
    let mut error = error;
    let area = match area_raw.as_str() {
        "" => None,
        a => match AreaCode::parse(a) {
            Ok(c) => Some(c),
            Err(_) => {
                error = ctx.lang.t("error.invalid_area_code").into();
                None
            }
        },
    };
    let mut tasks = collect.tasks(area.as_ref(), open_only).await.map_err(|e| fail(ctx, e))?;
    match sort.as_str() {
        "progress" => tasks.sort_by_key(|t| (t.percent(), t.houses_visited, t.area.clone())),
        "progress_desc" => tasks.sort_by_key(|t| (std::cmp::Reverse(t.percent()), std::cmp::Reverse(t.houses_visited), t.area.clone())),
        "grid" => tasks.sort_by(|a, b| a.area.cmp(&b.area).then(b.id.cmp(&a.id))),
        _ => {}
    }
    let totals = tasks.iter().fold((0, 0, 0), |a, t| (a.0 + t.houses_visited, a.1 + t.houses_total, a.2 + t.people_recorded));
    let mut form = form;
    if form.start.is_empty() {
        let today = Day::of_instant(state.db.now_ms());
        form.start = today.to_string();
        form.end = Day(today.0 + 30).to_string();
    }
    let page = CollectionPage {
        c: Chrome::for_user(ctx, me, "register", ctx.lang.t("collect.overview")),
        tasks: task_lines(ctx.lang, tasks),
        area: area_raw,
        sort,
        open_only,
        may_write: collect.may_write(),
        form,
        error,
        created,
        totals,
    };
    let status = if page.error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok((status, render(&page)).into_response())
}

async fn collection(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Response, Response> {
    let created = q.0.get("created").and_then(|v| v.parse().ok());
    collection_page(&state, &me, &ctx, &q, TaskForm::default(), String::new(), created).await
}

/// Create a collection task for a grid (community and street staff, grid leaders and workers).
async fn create_task(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params, Form(f): Form<TaskForm>) -> Result<Response, Response> {
    let parsed = (|| {
        let grid = AreaCode::parse(f.grid.trim()).map_err(|_| ctx.lang.t("error.invalid_area_code").to_string())?;
        let start = Day::parse(f.start.trim()).ok_or_else(|| ctx.lang.t("error.invalid_date").to_string())?;
        let end = Day::parse(f.end.trim()).ok_or_else(|| ctx.lang.t("error.invalid_date").to_string())?;
        Ok::<_, String>(NewTask { grid, title: f.title.clone(), start, end })
    })();
    let new = match parsed {
        Ok(n) => n,
        Err(e) => return collection_page(&state, &me, &ctx, &q, f, e, None).await,
    };
    let result = {
        let s = me.scoped(&state);
        let collect = collection_of(&s, &ctx, "collection.create").await?;
        collect.create_task(new).await
    };
    match result {
        Ok(t) => Ok(Redirect::to(&format!("/register/collection?created={}", t.id)).into_response()),
        Err(e @ (StoreError::Invalid { .. } | StoreError::Conflict { .. })) => {
            let msg = error_text(ctx.lang, &e);
            collection_page(&state, &me, &ctx, &q, f, msg, None).await
        }
        Err(e) => Err(fail(&ctx, e)),
    }
}
