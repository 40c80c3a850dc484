//! The register's one-box search: `GET /api/v1/search` and the `/register/search` page
//! (htmx: results follow the box as you type). Both go through the caller's
//! `RegisterDesk` (`store::search`), so results are scoped, masked and audited; the index
//! itself lives in [`AppState::search`].

use askama::Template;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use store::search::{Highlight, SearchHit, SearchKind};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::Params;
use crate::auth::{ApiCaller, Caller, UiCaller};
use crate::i18n::Lang;
use crate::problem::{ApiError, Problem};
use crate::ui::{Chrome, Ctx, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/search", get(search))
        .route("/register/search", get(page))
        .route("/register/search/results", get(results_partial))
}

/// A highlighted part of a shown field, in characters (Unicode scalar values),
/// `start` included, `end` excluded.
#[derive(Debug, Serialize, ToSchema)]
pub struct HighlightDto {
    /// title, subtitle, citizen_id_masked, phone_masked or credit_code
    pub field: String,
    pub start: usize,
    pub end: usize,
}

/// One hit. ID numbers and phones are masked; a suffix match is highlighted only where
/// the masked form shows the characters.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitDto {
    /// person, house or organisation
    #[schema(example = "person")]
    pub kind: String,
    pub id: i64,
    /// A person's name, a house's address, an organisation's name.
    #[schema(example = "张三")]
    pub title: String,
    /// A person's address, a house's use, an organisation's address.
    pub subtitle: String,
    /// The grid it lies in.
    #[schema(example = "430503001001003")]
    pub grid: String,
    /// What matched: name, pinyin, initials, citizen_id, phone, address or credit_code.
    #[schema(example = "name")]
    pub matched: String,
    #[schema(example = "430503********1234")]
    pub citizen_id_masked: Option<String>,
    #[schema(example = "138****5678")]
    pub phone_masked: Option<String>,
    pub credit_code: Option<String>,
    pub highlights: Vec<HighlightDto>,
    /// The page of the record.
    #[schema(example = "/register/persons/42")]
    pub href: String,
}

/// Hits, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub hits: Vec<SearchHitDto>,
}

fn href(kind: SearchKind, id: i64) -> String {
    let part = match kind {
        SearchKind::Person => "persons",
        SearchKind::House => "houses",
        SearchKind::Organisation => "organisations",
    };
    format!("/register/{part}/{id}")
}

impl From<&SearchHit> for SearchHitDto {
    fn from(h: &SearchHit) -> Self {
        SearchHitDto {
            kind: h.kind.as_str().into(),
            id: h.id,
            title: h.title.clone(),
            subtitle: h.subtitle.clone(),
            grid: h.grid.clone(),
            matched: h.matched.as_str().into(),
            citizen_id_masked: h.citizen_id_masked.clone(),
            phone_masked: h.phone_masked.clone(),
            credit_code: h.credit_code.clone(),
            highlights: h.highlights.iter().map(|x| HighlightDto { field: x.field.into(), start: x.start, end: x.end }).collect(),
            href: href(h.kind, h.id),
        }
    }
}

/// The query's parts: q, kind, limit.
fn read_params(p: &Params) -> Result<(String, Option<SearchKind>, usize), ApiError> {
    let get = |k: &str| p.0.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let q = p.0.get("q").cloned().unwrap_or_default();
    let kind = match get("kind") {
        Some(k) => Some(SearchKind::parse(k).ok_or_else(|| ApiError::bad_request("invalid_kind", format!("kind must be person, house or organisation, not {k:?}")))?),
        None => None,
    };
    let limit = match get("limit") {
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=store::search::MAX_LIMIT).contains(&n) => n,
            _ => return Err(ApiError::bad_request("invalid_limit", format!("limit must be a number from 1 to {}", store::search::MAX_LIMIT))),
        },
        None => store::search::DEFAULT_LIMIT,
    };
    Ok((q, kind, limit))
}

async fn run(state: &AppState, c: &Caller, q: &str, kind: Option<SearchKind>, limit: usize) -> Result<Vec<SearchHit>, ApiError> {
    let s = c.scoped(state);
    let Some(desk) = s.register() else {
        return Err(s.deny("register.search", "register", "*").await.into());
    };
    Ok(desk.search(&state.search, q, kind, limit).await?)
}

/// Search the register in your area with one box: persons by name (2+ characters), full
/// pinyin or initials (`zhangsan`, `zs`), ID-number suffix (4–18 characters, X included;
/// a full number finds that person), phone suffix (4+ digits) or a fragment of their
/// address; houses by address; organisations by name or credit code. Ranked exact, then
/// prefix or suffix, then fragment; fewer extra characters first; then by id. Masked and
/// audited (one row per search). Roles without access to the register get 404.
#[utoipa::path(get, path = "/api/v1/search", tag = "register", operation_id = "searchRegister",
    params(
        ("q" = String, Query, description = "What to look for: at least 2 characters (spaces ignored), at most 64"),
        ("kind" = Option<String>, Query, description = "person, house or organisation (default: all)"),
        ("limit" = Option<usize>, Query, description = "1 to 100 (default 20)"),
    ),
    responses(
        (status = 200, body = SearchResults),
        (status = 400, description = "An unknown kind or a bad limit", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Your role has no access to the register", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The query is shorter than 2 or longer than 64 characters (query_too_short, query_too_long)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn search(State(state): State<AppState>, ApiCaller(c): ApiCaller, p: Params) -> Result<Json<SearchResults>, ApiError> {
    let (q, kind, limit) = read_params(&p)?;
    let hits = run(&state, &c, &q, kind, limit).await?;
    Ok(Json(SearchResults { hits: hits.iter().map(SearchHitDto::from).collect() }))
}

// ---------------------------------------------------------------- the page

/// A piece of shown text, marked or not (askama escapes both).
pub struct Piece {
    pub text: String,
    pub mark: bool,
}

/// Split `text` at the highlights of `field`.
fn pieces(text: &str, field: &str, hs: &[Highlight]) -> Vec<Piece> {
    let chars: Vec<char> = text.chars().collect();
    let mut marked = vec![false; chars.len()];
    for h in hs.iter().filter(|h| h.field == field) {
        for m in marked.iter_mut().take(h.end.min(chars.len())).skip(h.start) {
            *m = true;
        }
    }
    let mut out: Vec<Piece> = Vec::new();
    for (c, m) in chars.into_iter().zip(marked) {
        match out.last_mut() {
            Some(p) if p.mark == m => p.text.push(c),
            _ => out.push(Piece { text: c.to_string(), mark: m }),
        }
    }
    out
}

pub struct HitView {
    pub href: String,
    pub title: Vec<Piece>,
    pub subtitle: Vec<Piece>,
    pub citizen_id: Vec<Piece>,
    pub phone: Vec<Piece>,
    pub credit_code: Vec<Piece>,
    pub grid: String,
    pub matched: &'static str,
}

pub struct Group {
    pub kind: &'static str,
    pub hits: Vec<HitView>,
}

fn groups(hits: &[SearchHit]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for kind in [SearchKind::Person, SearchKind::House, SearchKind::Organisation] {
        let hs: Vec<HitView> = hits
            .iter()
            .filter(|h| h.kind == kind)
            .map(|h| HitView {
                href: href(h.kind, h.id),
                title: pieces(&h.title, "title", &h.highlights),
                subtitle: pieces(&h.subtitle, "subtitle", &h.highlights),
                citizen_id: pieces(h.citizen_id_masked.as_deref().unwrap_or(""), "citizen_id_masked", &h.highlights),
                phone: pieces(h.phone_masked.as_deref().unwrap_or(""), "phone_masked", &h.highlights),
                credit_code: pieces(h.credit_code.as_deref().unwrap_or(""), "credit_code", &h.highlights),
                grid: h.grid.clone(),
                matched: h.matched.as_str(),
            })
            .collect();
        if !hs.is_empty() {
            out.push(Group { kind: kind.as_str(), hits: hs });
        }
    }
    out
}

#[derive(Template)]
#[template(path = "search_results.html")]
struct ResultsPart {
    lang: Lang,
    groups: Vec<Group>,
    /// A message instead of results (too short, nothing found, an error).
    note: String,
}

impl ResultsPart {
    fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }
    fn tk(&self, prefix: &str, value: &str) -> &'static str {
        self.lang.t(&format!("{prefix}{value}"))
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct Page {
    c: Chrome,
    /// The box's value as typed, unless it holds a long number (an ID number or phone is
    /// not sent back).
    q: String,
    results: ResultsPart,
}

async fn results_for(state: &AppState, me: &Caller, lang: Lang, q: &str) -> ResultsPart {
    let typed: usize = q.chars().filter(|c| !c.is_whitespace()).count();
    if typed == 0 {
        return ResultsPart { lang, groups: Vec::new(), note: String::new() };
    }
    match run(state, me, q, None, 30).await {
        Ok(hits) if hits.is_empty() => ResultsPart { lang, groups: Vec::new(), note: lang.t("search.none").into() },
        Ok(hits) => ResultsPart { lang, groups: groups(&hits), note: String::new() },
        Err(e) if e.code == "query_too_short" => ResultsPart { lang, groups: Vec::new(), note: lang.t("search.too_short").into() },
        Err(e) if e.code == "query_too_long" => ResultsPart { lang, groups: Vec::new(), note: lang.t("search.too_long").into() },
        Err(e) => ResultsPart { lang, groups: Vec::new(), note: e.detail },
    }
}

fn may_search(state: &AppState, me: &Caller) -> bool {
    me.scoped(state).register().is_some()
}

async fn page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, p: Params) -> Result<Html<String>, Response> {
    if !may_search(&state, &me) {
        let _ = me.scoped(&state).deny("register.search", "register", "*").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    }
    let q = p.0.get("q").cloned().unwrap_or_default();
    let results = results_for(&state, &me, ctx.lang, &q).await;
    let digits = q.chars().filter(char::is_ascii_digit).count();
    let shown = if digits >= 7 { String::new() } else { q };
    let mut c = Chrome::for_user(&ctx, &me, "register", ctx.lang.t("search.title"));
    if digits >= 7 {
        // Nor in the language switch's link back here.
        c.path = "/register/search".into();
    }
    Ok(render(&Page { c, q: shown, results }))
}

/// The results alone, for htmx as the box changes.
async fn results_partial(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, p: Params, _h: HeaderMap) -> Response {
    if !may_search(&state, &me) {
        let _ = me.scoped(&state).deny("register.search", "register", "*").await;
        return crate::ui::not_found_page(&ctx.path);
    }
    let q = p.0.get("q").cloned().unwrap_or_default();
    render(&results_for(&state, &me, ctx.lang, &q).await).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_at_highlights() {
        let hs = [Highlight { field: "title", start: 1, end: 3 }];
        let p = pieces("张三丰x", "title", &hs);
        let got: Vec<(&str, bool)> = p.iter().map(|p| (p.text.as_str(), p.mark)).collect();
        assert_eq!(got, vec![("张", false), ("三丰", true), ("x", false)]);
    }
}
