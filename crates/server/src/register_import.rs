//! The register's import over HTTP (issue 5, point 3): `POST /api/v1/register/imports`
//! starts a job, `GET /api/v1/register/imports/{id}` shows its progress and result,
//! `GET /api/v1/register/imports/{id}/report.xlsx` gives the bad rows; the upload page
//! `/register/import` does the same with a form and polls the progress (htmx, every second).
//!
//! A job runs in a background task of this server process (`store::register_import`). Its
//! progress and report are kept in memory: a restart loses them, never half an import,
//! because the rows are written in one transaction that either commits or leaves nothing.
//! A job is visible only to the account that started it (anyone else gets 404, audited).
//! The upload is written to a temporary file for the two reading passes and removed after.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::AreaCode;
use serde::Serialize;
use store::register_import::{ImportKind, ImportOptions, ImportProgress, ImportReport, Phase};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::Params;
use crate::auth::{ApiCaller, Caller, UiCaller};
use crate::problem::{ApiError, Problem};
use crate::ui::{Chrome, Ctx, render};

pub fn routes(max_bytes: usize) -> Router<AppState> {
    let limit = DefaultBodyLimit::max(max_bytes + (64 << 10));
    Router::new()
        .route("/api/v1/register/imports", post(start).layer(limit))
        .route("/api/v1/register/imports/{id}", get(read))
        .route("/api/v1/register/imports/{id}/report.xlsx", get(report))
        .route("/register/import", get(page).post(upload).layer(limit))
        .route("/register/import/{id}", get(job_page))
        .route("/register/import/{id}/progress", get(progress_partial))
}

/// How an import ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Report(Box<ImportReport>),
    Failed { code: &'static str, message: String },
}

/// One import of this server process.
#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub owner: i64,
    pub kind: ImportKind,
    pub partial: bool,
    pub file_name: String,
    pub started_at: i64,
    pub progress: Arc<ImportProgress>,
    pub outcome: Mutex<Option<Outcome>>,
}

impl Job {
    fn outcome(&self) -> Option<Outcome> {
        self.outcome.lock().ok().and_then(|o| o.clone())
    }
}

/// The imports this process runs or ran (finished ones are kept for a day, at most
/// [`MAX_JOBS`] in all).
#[derive(Debug, Default)]
pub struct ImportJobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

pub const MAX_JOBS: usize = 500;
const KEEP_MS: i64 = 24 * 3_600_000;

impl ImportJobs {
    fn insert(&self, job: Arc<Job>, now: i64) {
        let Ok(mut jobs) = self.jobs.lock() else { return };
        jobs.retain(|_, j| j.outcome().is_none() || now - j.started_at < KEEP_MS);
        if jobs.len() >= MAX_JOBS {
            let oldest = jobs.values().filter(|j| j.outcome().is_some()).min_by_key(|j| j.started_at).map(|j| j.id.clone());
            if let Some(id) = oldest {
                jobs.remove(&id);
            }
        }
        jobs.insert(job.id.clone(), job);
    }

    fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().ok().and_then(|j| j.get(id).cloned())
    }
}

/// Start an import as `c`: checked (a role that writes the register, a grid in scope),
/// the upload written to a temporary file, the job spawned. Answers the job.
async fn start_job(state: &AppState, c: &Caller, kind: ImportKind, partial: bool, grid: Option<&str>, file_name: &str, bytes: &[u8]) -> Result<Arc<Job>, ApiError> {
    let s = c.scoped(state);
    if !s.register().is_some_and(|d| d.may_write()) {
        return Err(s.deny("register.import", kind.as_str(), file_name).await.into());
    }
    let grid = grid.map(AreaCode::parse).transpose().map_err(|e| ApiError::bad_request("invalid_grid", format!("grid: {e}")))?;
    if let Some(g) = &grid
        && !s.in_scope(g)
    {
        return Err(s.deny("register.import", "area", g.as_str()).await.into());
    }
    let id = store::auth::random_secret().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?[..16].to_string();
    let dir = std::env::temp_dir().join("civicgrid-imports");
    let path = dir.join(format!("{}-{id}.upload", std::process::id()));
    let written = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&path, bytes).await
    }
    .await;
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot keep an upload");
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "upload_failed", "the server could not keep the upload"));
    }
    let job = Arc::new(Job {
        id: id.clone(),
        owner: c.principal.account_id,
        kind,
        partial,
        file_name: file_name.to_string(),
        started_at: state.db.now_ms(),
        progress: Arc::new(ImportProgress::default()),
        outcome: Mutex::new(None),
    });
    state.imports.insert(job.clone(), state.db.now_ms());
    let (db, who, actor, task_job) = (state.db.clone(), c.principal.clone(), c.actor.clone(), job.clone());
    let opts = ImportOptions { kind, partial, grid, file_name: file_name.to_string() };
    tokio::spawn(async move {
        let s = db.scoped(&who, actor);
        let result = match s.register() {
            Some(desk) => desk.import(&path, &opts, task_job.progress.clone()).await,
            None => Err(store::StoreError::NotFound("register".into())),
        };
        let outcome = match result {
            Ok(r) => Outcome::Report(Box::new(r)),
            Err(e) => {
                let e = ApiError::from(e);
                Outcome::Failed { code: e.code, message: e.detail }
            }
        };
        if let Ok(mut o) = task_job.outcome.lock() {
            *o = Some(outcome);
        }
        let _ = tokio::fs::remove_file(&path).await;
    });
    Ok(job)
}

/// The caller's own job, else not found (audited).
async fn own_job(state: &AppState, c: &Caller, id: &str) -> Result<Arc<Job>, ApiError> {
    match state.imports.get(id) {
        Some(j) if j.owner == c.principal.account_id => Ok(j),
        _ => Err(c.scoped(state).deny("register.import.read", "import", id).await.into()),
    }
}

// ---- API ----

/// A job's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportJobDto {
    pub id: String,
    /// persons, houses or organisations.
    pub kind: String,
    pub partial: bool,
    pub file_name: String,
    /// queued, checking, writing, done (see `result`) or failed (see `error`).
    pub state: String,
    /// Rows read in the current pass.
    pub rows_read: u64,
    /// Rows to write (known once checked).
    pub rows_total: u64,
    pub rows_written: u64,
    pub result: Option<ImportResultDto>,
    pub error: Option<ImportErrorDto>,
    /// Where the bad rows are, as .xlsx (once done).
    pub report_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportErrorDto {
    /// not_a_spreadsheet, empty_file, zip_bomb, no_header_row, missing_columns, damaged_file …
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResultDto {
    /// Whether the rows were written; false: nothing was imported.
    pub committed: bool,
    /// Data rows read, below the header row.
    pub rows_read: u64,
    pub rows_valid: u64,
    pub rows_with_errors: u64,
    pub rows_with_warnings: u64,
    /// Rows merged into an identical earlier row of the file.
    pub merged: u64,
    pub created: u64,
    pub updated: u64,
    /// Rows already in the register as they are.
    pub unchanged: u64,
    /// Created plus updated, when committed.
    pub imported: u64,
    /// The header row's number, and columns not imported.
    pub header_row: usize,
    pub ignored_columns: Vec<String>,
    /// Rows with findings: errors first, then warnings and notes (at most 10,000 of each).
    pub rows: Vec<ReportRowDto>,
    pub rows_not_listed: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportRowDto {
    /// The row's number as the sheet shows it.
    pub row: usize,
    pub error: bool,
    pub findings: Vec<FindingDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FindingDto {
    /// The column as the sheet names it.
    pub column: String,
    pub field: String,
    /// error, warning or note.
    pub severity: String,
    pub code: String,
    pub message: String,
}

fn result_dto(r: &ImportReport) -> ImportResultDto {
    ImportResultDto {
        committed: r.committed,
        rows_read: r.rows_read,
        rows_valid: r.rows_valid,
        rows_with_errors: r.rows_with_errors,
        rows_with_warnings: r.rows_with_warnings,
        merged: r.merged,
        created: r.created,
        updated: r.updated,
        unchanged: r.unchanged,
        imported: r.imported(),
        header_row: r.header_row,
        ignored_columns: r.ignored_columns.clone(),
        rows: r
            .rows
            .iter()
            .map(|x| ReportRowDto {
                row: x.row,
                error: x.error,
                findings: x
                    .findings
                    .iter()
                    .map(|f| FindingDto { column: f.column.clone(), field: f.field.into(), severity: f.severity.into(), code: f.code.into(), message: f.message.clone() })
                    .collect(),
            })
            .collect(),
        rows_not_listed: r.rows_not_listed,
    }
}

fn state_of(j: &Job) -> (&'static str, Option<Outcome>) {
    let o = j.outcome();
    let s = match (&o, j.progress.phase()) {
        (Some(Outcome::Failed { .. }), _) => "failed",
        (Some(Outcome::Report(_)), _) => "done",
        (None, Phase::Queued) => "queued",
        (None, Phase::Checking) => "checking",
        (None, Phase::Writing | Phase::Done) => "writing",
    };
    (s, o)
}

fn job_dto(j: &Job) -> ImportJobDto {
    let (state, o) = state_of(j);
    ImportJobDto {
        id: j.id.clone(),
        kind: j.kind.as_str().into(),
        partial: j.partial,
        file_name: j.file_name.clone(),
        state: state.into(),
        rows_read: j.progress.rows_read.load(Ordering::Relaxed),
        rows_total: j.progress.rows_total.load(Ordering::Relaxed),
        rows_written: j.progress.rows_written.load(Ordering::Relaxed),
        result: match &o {
            Some(Outcome::Report(r)) => Some(result_dto(r)),
            _ => None,
        },
        error: match &o {
            Some(Outcome::Failed { code, message }) => Some(ImportErrorDto { code: (*code).into(), message: message.clone() }),
            _ => None,
        },
        report_url: matches!(o, Some(Outcome::Report(_))).then(|| format!("/api/v1/register/imports/{}/report.xlsx", j.id)),
    }
}

/// The upload's body, with 413 as a problem document.
pub struct Upload(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(Upload).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "file_too_large", "the file is larger than this server accepts (import_max_mb)")
            } else {
                ApiError::bad_request("invalid_body", e.body_text())
            }
        })
    }
}

/// The file and the form's fields of a multipart body; the whole body otherwise.
/// An upload: the file's bytes, the form's other fields, the file's name.
type UploadParts = (Vec<u8>, HashMap<String, String>, Option<String>);

fn file_of(headers: &HeaderMap, body: &Bytes) -> Result<UploadParts, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(boundary) = crate::multipart::boundary(ct) else { return Ok((body.to_vec(), HashMap::new(), None)) };
    let parts = crate::multipart::parse(body, &boundary).ok_or_else(|| ApiError::bad_request("invalid_body", "malformed multipart/form-data"))?;
    let mut fields = HashMap::new();
    let mut file = None;
    for p in parts {
        if p.name == "file" {
            file = Some((p.data, p.filename));
        } else {
            fields.insert(p.name.clone(), p.text());
        }
    }
    let (data, name) = file.ok_or_else(|| ApiError::bad_request("file_missing", "the form has no file field"))?;
    Ok((data, fields, name))
}

fn flag(v: Option<&str>) -> bool {
    v.is_some_and(|v| matches!(v.trim(), "1" | "true" | "on" | "yes"))
}

/// Import persons, houses or organisations from a spreadsheet: .xlsx, or .csv in UTF-8 or
/// GBK, as the raw body (or the `file` field of a multipart form). Answers 202 with the job;
/// poll it with `GET /api/v1/register/imports/{id}`. Without `partial`, a file with any
/// bad row imports nothing.
#[utoipa::path(post, path = "/api/v1/register/imports", tag = "register", operation_id = "startRegisterImport",
    params(
        ("kind" = String, Query, description = "persons, houses or organisations"),
        ("partial" = Option<bool>, Query, description = "Import the good rows even when some are bad (default false: all or nothing)"),
        ("grid" = Option<String>, Query, description = "The grid (15-digit code) of rows without a 网格 column"),
        ("name" = Option<String>, Query, description = "The file's name, for the audit trail"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The spreadsheet's bytes (its kind is read from its content)"),
    responses(
        (status = 202, description = "Started", body = ImportJobDto),
        (status = 400, description = "An unknown kind or a malformed grid code", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A role that does not write the register, or a grid outside your scope", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than import_max_mb (100 MB by default)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn start(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params, headers: HeaderMap, Upload(body): Upload) -> Result<Response, ApiError> {
    let (data, fields, name) = file_of(&headers, &body)?;
    let field = |k: &str| q.0.get(k).or_else(|| fields.get(k)).map(String::as_str).filter(|v| !v.trim().is_empty());
    let kind = field("kind").and_then(ImportKind::parse).ok_or_else(|| ApiError::bad_request("invalid_kind", "kind: persons, houses or organisations"))?;
    let file_name = field("name").map(str::to_string).or(name).unwrap_or_else(|| "upload".into());
    let job = start_job(&state, &c, kind, flag(field("partial")), field("grid"), &file_name, &data).await?;
    let location = format!("/api/v1/register/imports/{}", job.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(job_dto(&job))).into_response())
}

/// An import you started: its progress, then its result (the report's rows with their
/// findings) or why the file was refused.
#[utoipa::path(get, path = "/api/v1/register/imports/{id}", tag = "register", operation_id = "getRegisterImport",
    params(("id" = String, Path)),
    responses((status = 200, body = ImportJobDto), (status = 404, description = "No such import of yours", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn read(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(id): Path<String>) -> Result<Json<ImportJobDto>, ApiError> {
    let job = own_job(&state, &c, &id).await?;
    Ok(Json(job_dto(&job)))
}

/// The bad rows of a finished import as .xlsx: the original cells (ID numbers and phones
/// masked; anything that looks like a formula escaped) and an 错误原因 column.
#[utoipa::path(get, path = "/api/v1/register/imports/{id}/report.xlsx", tag = "register", operation_id = "getRegisterImportReport",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The report", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 404, description = "No such import of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not finished, or refused before any row was read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn report(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let job = own_job(&state, &c, &id).await?;
    let Some(Outcome::Report(r)) = job.outcome() else {
        return Err(ApiError::new(StatusCode::CONFLICT, "import_not_done", "the import has no report (yet)"));
    };
    let bytes = store::register_import::report_xlsx(&r)?;
    let disposition = format!("attachment; filename=\"import-{}-errors.xlsx\"", job.id);
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}

// ---- the upload page ----

#[derive(Template)]
#[template(path = "register_import.html")]
struct ImportPage {
    c: Chrome,
    grid: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "register_import_job.html")]
struct JobPage {
    c: Chrome,
    v: JobView,
}

#[derive(Template)]
#[template(path = "register_import_progress.html")]
struct ProgressPartial {
    c: Chrome,
    v: JobView,
}

/// A job as the page shows it.
pub struct JobView {
    pub id: String,
    pub kind: &'static str,
    pub partial: bool,
    pub file_name: String,
    pub started: String,
    pub state: &'static str,
    pub running: bool,
    pub rows_read: u64,
    pub rows_total: u64,
    pub rows_written: u64,
    pub percent: u64,
    pub result: Option<ImportResultDto>,
    pub error: Option<String>,
}

fn view(j: &Job) -> JobView {
    let d = job_dto(j);
    let (state, _) = state_of(j);
    let percent = (d.rows_written * 100).checked_div(d.rows_total).map_or(0, |p| p.min(100));
    JobView {
        id: d.id,
        kind: j.kind.as_str(),
        partial: d.partial,
        file_name: d.file_name,
        started: domain::time::format_shanghai(j.started_at),
        state,
        running: !matches!(state, "done" | "failed"),
        rows_read: d.rows_read,
        rows_total: d.rows_total,
        rows_written: d.rows_written,
        percent,
        result: d.result,
        error: d.error.map(|e| e.message),
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The caller's own grid (15 digits), the form's default.
fn grid_of(c: &Caller) -> String {
    let a = c.principal.area.as_str();
    if a.len() == 15 { a.to_string() } else { String::new() }
}

fn may_import(c: &Caller) -> bool {
    store::register::register_writes(c.principal.role)
}

async fn page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx) -> Result<Html<String>, Response> {
    if !may_import(&me) {
        let _ = me.scoped(&state).deny("register.import", "page", "").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    }
    let grid = grid_of(&me);
    let c = Chrome::for_user(&ctx, &me, "register", ctx.lang.t("import.title"));
    Ok(render(&ImportPage { c, grid, error: None }))
}

/// The form's upload (htmx sends the CSRF header): the job starts and the browser goes to
/// its page. A refusal shows the form again with the reason.
async fn upload(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, headers: HeaderMap, body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Response {
    let htmx = headers.contains_key("hx-request");
    // htmx swaps only 2xx answers: it gets the reason alone, in place; a plain form the page.
    let again = |status: StatusCode, msg: String| {
        if htmx {
            return Html(format!("<p class=\"bad\" id=\"import-error\" role=\"alert\">{}</p>", escape_html(&msg))).into_response();
        }
        let grid = grid_of(&me);
        let c = Chrome::for_user(&ctx, &me, "register", ctx.lang.t("import.title"));
        (status, render(&ImportPage { c, grid, error: Some(msg) })).into_response()
    };
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return again(StatusCode::PAYLOAD_TOO_LARGE, ctx.lang.t("import.too_large").into()),
        Err(e) => return again(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let (data, fields, name) = match file_of(&headers, &body) {
        Ok(x) => x,
        Err(e) => return again(e.status, e.detail),
    };
    let Some(kind) = fields.get("kind").and_then(|k| ImportKind::parse(k)) else {
        return again(StatusCode::BAD_REQUEST, ctx.lang.t("import.kind_missing").into());
    };
    let grid = fields.get("grid").map(|g| g.trim()).filter(|g| !g.is_empty());
    match start_job(&state, &me, kind, flag(fields.get("partial").map(String::as_str)), grid, name.as_deref().unwrap_or("upload"), &data).await {
        Ok(job) => {
            let to = format!("/register/import/{}", job.id);
            if htmx {
                ([("HX-Redirect", to)], StatusCode::OK).into_response()
            } else {
                Redirect::to(&to).into_response()
            }
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => again(StatusCode::NOT_FOUND, ctx.lang.t("import.grid_out_of_scope").into()),
        Err(e) => again(e.status, e.detail),
    }
}

async fn job_page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(id): Path<String>) -> Result<Html<String>, Response> {
    let job = own_job(&state, &me, &id).await.map_err(|_| crate::ui::not_found_page(&ctx.path))?;
    let c = Chrome::for_user(&ctx, &me, "register", ctx.lang.t("import.title"));
    Ok(render(&JobPage { c, v: view(&job) }))
}

/// The progress block, polled by htmx every second until the job ends.
async fn progress_partial(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(id): Path<String>) -> Result<Html<String>, Response> {
    let job = own_job(&state, &me, &id).await.map_err(|_| crate::ui::not_found_page(&ctx.path))?;
    let c = Chrome::for_user(&ctx, &me, "register", "");
    Ok(render(&ProgressPartial { c, v: view(&job) }))
}
