//! Key figures (考核指标): `GET /api/v1/kpis` and the `/kpis` page with its CSV export.
//! The figures are defined in `domain::kpi` and computed by `store::kpis` through the
//! caller's scoped handle (`Scoped::kpis`).

use askama::Template;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use domain::AreaCode;
use domain::calendar::Day;
use domain::kpi::Grouping;
use serde::Serialize;
use store::kpis::{KpiQuery, KpiRow, KpiTable};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::Params;
use crate::auth::{ApiCaller, UiCaller};
use crate::problem::{ApiError, Problem};
use crate::ui::{Chrome, Ctx, render};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/kpis", get(kpis)).route("/kpis", get(page)).route("/kpis.csv", get(csv))
}

/// The longest range one request may ask for.
const MAX_DAYS: i64 = 3_660;

/// One row of key figures. Rates are fractions from 0 to 1, null when nothing counts
/// toward their denominator. All figures are about the incidents reported (上报) on the
/// days of the range, whatever happened to them later.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiRowDto {
    /// An area code (by street, community or grid), a department code, or an account id
    /// (by person); "" for what fits no group (not placed below the area, or not dispatched).
    pub key: String,
    pub name: String,
    /// The account's role (rows of people only).
    pub role: Option<String>,
    /// 上报数: every report.
    pub reported: i64,
    /// 立案数: reports filed into the loop and not rejected, merged away or voided.
    pub filed: i64,
    /// 结案数: closed (or closed and evaluated), not reopened since.
    pub closed: i64,
    /// 结案率 = closed / filed.
    pub closure_rate: Option<f64>,
    /// 按期结案数: closed with no step ever past its time limit.
    pub closed_on_time: i64,
    /// 按期结案率 = closed_on_time / filed.
    pub on_time_closure_rate: Option<f64>,
    /// 超期数: incidents with a step that ended past its limit (late), plus those whose
    /// running step is past its limit now.
    pub overdue: i64,
    /// Incidents marked late.
    pub late: i64,
    /// 退回次数: returns of a mis-dispatch (退回), summed.
    pub returns: i64,
    /// Incidents returned at least once.
    pub returned: i64,
    /// 返工次数: failed on-site checks, summed.
    pub reworks: i64,
    /// Incidents sent back to rework at least once.
    pub reworked: i64,
    /// 返工率 = reworked / filed.
    pub rework_rate: Option<f64>,
    /// 平均处置时长: mean of (closed_at − reported) over closed incidents, ms (wall clock).
    pub mean_handling_ms: Option<i64>,
    /// Incidents with a satisfaction rating (1–5).
    pub rated: i64,
    /// 平均满意度: mean rating.
    pub mean_rating: Option<f64>,
    /// Ratings of 4 or 5.
    pub satisfied: i64,
    /// 满意率 = satisfied / rated.
    pub satisfied_share: Option<f64>,
    /// By person only: on-site checks (核查: verify or fail_verification) of the cohort's
    /// incidents made by this account.
    pub verifications: Option<i64>,
    /// By person only: of those, the checks made within the check step's time limit.
    pub verifications_on_time: Option<i64>,
}

impl From<&KpiRow> for KpiRowDto {
    fn from(r: &KpiRow) -> Self {
        let f = &r.figures;
        let c = &f.counters;
        KpiRowDto {
            key: r.key.clone(),
            name: r.name.clone(),
            role: r.role.clone(),
            reported: c.reported,
            filed: c.filed,
            closed: c.closed,
            closure_rate: f.closure_rate,
            closed_on_time: c.closed_on_time,
            on_time_closure_rate: f.on_time_closure_rate,
            overdue: f.overdue,
            late: c.late,
            returns: c.returns,
            returned: c.returned,
            reworks: c.reworks,
            reworked: c.reworked,
            rework_rate: f.rework_rate,
            mean_handling_ms: f.mean_handling_ms,
            rated: c.rated,
            mean_rating: f.mean_rating,
            satisfied: c.satisfied,
            satisfied_share: f.satisfied_share,
            verifications: r.verifications,
            verifications_on_time: r.verifications_on_time,
        }
    }
}

/// A table of key figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiReport {
    /// First report day, Asia/Shanghai, YYYY-MM-DD.
    pub from: String,
    /// Last report day (included).
    pub to: String,
    /// street, community, grid, department or person
    pub by: String,
    /// The area the figures cover (its subtree).
    pub area: String,
    pub rows: Vec<KpiRowDto>,
    /// The whole area (for by=person: the sum of the people's rows).
    pub total: KpiRowDto,
}

/// A query from parameters: from, to (YYYY-MM-DD, Shanghai days; default this year to
/// today), by (default: the level below the area), area (default: the caller's).
pub fn query_of(q: &Params, caller_area: &AreaCode, now: i64) -> Result<KpiQuery, ApiError> {
    let get = |k: &str| q.0.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let day = |k: &str| -> Result<Option<Day>, ApiError> {
        get(k).map(|v| Day::parse(v).ok_or_else(|| ApiError::bad_request("invalid_date", format!("{k} must be a date YYYY-MM-DD, not {v:?}")))).transpose()
    };
    let today = Day::of_instant(now);
    let to = day("to")?.unwrap_or(today);
    let from = day("from")?.unwrap_or_else(|| Day::from_ymd(to.ymd().0, 1, 1).unwrap_or(to));
    if from > to {
        return Err(ApiError::bad_request("invalid_range", format!("from ({from}) is after to ({to})")));
    }
    if to.0 - from.0 >= MAX_DAYS {
        return Err(ApiError::bad_request("invalid_range", format!("a range covers at most {MAX_DAYS} days")));
    }
    let area = match get("area") {
        Some(a) => AreaCode::parse(a)?,
        None => caller_area.clone(),
    };
    let by = match get("by") {
        Some(b) => Grouping::parse(b).ok_or_else(|| ApiError::bad_request("invalid_grouping", format!("by must be street, community, grid, department or person, not {b:?}")))?,
        None => match area.as_str().len() {
            6 => Grouping::Street,
            9 => Grouping::Community,
            12 => Grouping::Grid,
            _ => Grouping::Person,
        },
    };
    Ok(KpiQuery { from, to, by, area })
}

fn report_of(q: &KpiQuery, t: &KpiTable) -> KpiReport {
    KpiReport {
        from: q.from.to_string(),
        to: q.to.to_string(),
        by: q.by.as_str().into(),
        area: q.area.to_string(),
        rows: t.rows.iter().map(KpiRowDto::from).collect(),
        total: KpiRowDto::from(&t.total),
    }
}

/// Key figures of the incidents reported in a date range, grouped by street, community,
/// grid, department or person, within your scope (a department handler: its department's
/// incidents only). See docs/API.md for each figure's definition.
#[utoipa::path(get, path = "/api/v1/kpis", tag = "kpis", operation_id = "getKpis",
    params(
        ("from" = Option<String>, Query, description = "First report day, YYYY-MM-DD in Asia/Shanghai (default: 1 January of `to`'s year)"),
        ("to" = Option<String>, Query, description = "Last report day, included (default: today)"),
        ("by" = Option<String>, Query, description = "street, community, grid, department or person (default: the level below the area)"),
        ("area" = Option<String>, Query, description = "An area code within your scope (default: your area)"),
    ),
    responses(
        (status = 200, body = KpiReport),
        (status = 400, description = "A bad date, from after to, an unknown grouping, or a grouping not below the area", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "An area outside your scope", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn kpis(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Json<KpiReport>, ApiError> {
    let s = c.scoped(&state);
    let Some(desk) = s.kpis() else {
        return Err(s.deny("kpi.read", "area", "*").await.into());
    };
    let query = query_of(&q, &s.principal().area, state.db.now_ms())?;
    let table = desk.table(&query).await?;
    Ok(Json(report_of(&query, &table)))
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "—".into())
}

fn hours(ms: Option<i64>) -> String {
    ms.map(|v| format!("{:.1}", v as f64 / 3_600_000.0)).unwrap_or_else(|| "—".into())
}

/// A row as the page shows it.
struct Line {
    name: String,
    key: String,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "kpis.html")]
struct Page {
    c: Chrome,
    from: String,
    to: String,
    by: String,
    area: String,
    groupings: Vec<(&'static str, &'static str)>,
    heads: Vec<&'static str>,
    lines: Vec<Line>,
    total: Line,
    error: String,
    csv_href: String,
}

const HEADS: [&str; 14] = [
    "kpi.reported",
    "kpi.filed",
    "kpi.closed",
    "kpi.closure_rate",
    "kpi.on_time_rate",
    "kpi.overdue",
    "kpi.returns",
    "kpi.rework_rate",
    "kpi.mean_hours",
    "kpi.mean_rating",
    "kpi.satisfied_share",
    "kpi.verifications",
    "kpi.verifications_on_time",
    "kpi.role",
];

fn cells(r: &KpiRowDto, lang: crate::i18n::Lang) -> Vec<String> {
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_else(|| "—".into());
    vec![
        r.reported.to_string(),
        r.filed.to_string(),
        r.closed.to_string(),
        pct(r.closure_rate),
        pct(r.on_time_closure_rate),
        r.overdue.to_string(),
        r.returns.to_string(),
        pct(r.rework_rate),
        hours(r.mean_handling_ms),
        r.mean_rating.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into()),
        pct(r.satisfied_share),
        opt(r.verifications),
        opt(r.verifications_on_time),
        r.role
            .as_deref()
            .and_then(|x| x.parse::<domain::Role>().ok())
            .map(|x| if lang == crate::i18n::Lang::Zh { x.name_zh() } else { x.name_en() })
            .unwrap_or_default()
            .to_string(),
    ]
}

async fn table_for(state: &AppState, me: &crate::auth::Caller, q: &Params) -> Result<(KpiQuery, KpiReport), ApiError> {
    let s = me.scoped(state);
    let Some(desk) = s.kpis() else {
        return Err(s.deny("kpi.read", "area", "*").await.into());
    };
    let query = query_of(q, &s.principal().area, state.db.now_ms())?;
    let table = desk.table(&query).await?;
    Ok((query.clone(), report_of(&query, &table)))
}

async fn page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Html<String>, Response> {
    let s = me.scoped(&state);
    if s.kpis().is_none() {
        let _ = s.deny("kpi.read", "area", "*").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    }
    let c = Chrome::for_user(&ctx, &me, "kpis", ctx.lang.t("kpi.title"));
    let groupings = Grouping::ALL.iter().map(|g| (g.as_str(), ctx.lang.t(&format!("kpi.by.{}", g.as_str())))).collect();
    let field = |k: &str| q.0.get(k).cloned().unwrap_or_default();
    let unplaced = ctx.lang.t("kpi.unplaced");
    let result = table_for(&state, &me, &q).await;
    // The last three columns (checks on site, on time, role) are about people.
    let person = matches!(&result, Ok((query, _)) if query.by == Grouping::Person);
    let columns = if person { HEADS.len() } else { HEADS.len() - 3 };
    let line = |r: &KpiRowDto| Line {
        name: if r.key.is_empty() { unplaced.to_string() } else { r.name.clone() },
        key: r.key.clone(),
        cells: cells(r, ctx.lang).into_iter().take(columns).collect(),
    };
    let (from, to, by, area, lines, total, error) = match result {
        Ok((query, rep)) => (
            query.from.to_string(),
            query.to.to_string(),
            query.by.as_str().to_string(),
            query.area.to_string(),
            rep.rows.iter().map(line).collect(),
            line(&rep.total),
            String::new(),
        ),
        Err(e) => (field("from"), field("to"), field("by"), field("area"), Vec::new(), Line { name: String::new(), key: String::new(), cells: Vec::new() }, e.detail),
    };
    let csv_href = format!("/kpis.csv?from={from}&to={to}&by={by}&area={area}");
    Ok(render(&Page { c, from, to, by, area, groupings, heads: HEADS[..columns].to_vec(), lines, total, error, csv_href }))
}

/// The same table as CSV (UTF-8 with a byte-order mark, so that spreadsheet programs read
/// the Chinese names).
async fn csv(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Response, Response> {
    let (query, rep) = table_for(&state, &me, &q).await.map_err(IntoResponse::into_response)?;
    let mut out = String::from("\u{feff}key,name");
    for h in HEADS {
        out.push(',');
        out.push_str(ctx.lang.t(h));
    }
    out.push('\n');
    let esc = |s: &str| if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() };
    for r in rep.rows.iter().chain(std::iter::once(&rep.total)) {
        let name = if r.key.is_empty() { ctx.lang.t("kpi.unplaced").to_string() } else { r.name.clone() };
        out.push_str(&format!("{},{}", esc(&r.key), esc(&name)));
        for cell in cells(r, ctx.lang) {
            out.push(',');
            out.push_str(&esc(&cell));
        }
        out.push('\n');
    }
    let file = format!("attachment; filename=\"kpis-{}-{}-{}-{}.csv\"", query.area, query.by.as_str(), query.from, query.to);
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, file)], out).into_response())
}
