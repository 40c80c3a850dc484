//! The UI of signing in and out, passwords, account administration, the auditor's search
//! and sensitive reads.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::{AreaCode, Role};
use serde::Deserialize;
use store::audit::Actor;
use store::auth::{Account, LoginRefusal, NewAccount, random_secret};

use crate::AppState;
use crate::accounts::audit_query;
use crate::api::Params;
use crate::auth::{LOGIN_CSRF_COOKIE, MaybeCaller, SESSION_COOKIE, UiCaller, cookie, is_tls, set_cookie};
use crate::i18n::Lang;
use crate::problem::ApiError;
use crate::ui::{Chrome, Ctx, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/account/password", get(password_page).post(password_submit))
        .route("/admin/users", get(users_page).post(user_create))
        .route("/admin/users/{id}", get(user_page))
        .route("/admin/users/{id}/update", post(user_update))
        .route("/admin/users/{id}/active", post(user_active))
        .route("/admin/users/{id}/reset", post(user_reset))
        .route("/audit", get(audit_page))
        .route("/team/{id}/phone", post(unmask_phone))
}

/// Where to go after signing in: a local path only, never another site.
fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\"))
        .unwrap_or("/")
        .to_string()
}

// ---------------------------------------------------------------- login

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    csrf: String,
    next: String,
    username: String,
    error: String,
}

async fn login_page(State(state): State<AppState>, ctx: Ctx, headers: HeaderMap, q: Params) -> Response {
    let csrf = cookie(&headers, LOGIN_CSRF_COOKIE).filter(|c| c.len() == 64).unwrap_or_else(|| random_secret().unwrap_or_default());
    let next = safe_next(q.0.get("next").map(String::as_str));
    let page = LoginPage { c: Chrome::new(&ctx, "", ctx.lang.t("login.title")), csrf: csrf.clone(), next, username: String::new(), error: String::new() };
    let mut res = render(&page).into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &csrf, is_tls(&headers, &state), None));
    res
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

async fn login_submit(
    State(state): State<AppState>,
    MaybeCaller(r): MaybeCaller,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let actor = Actor::anonymous(&f.username, &r.operation_id, &r.client_addr);
    let next = safe_next(f.next.as_deref());
    let refuse = |status: StatusCode, error: String| {
        let page = LoginPage {
            c: Chrome::new(&ctx, "", ctx.lang.t("login.title")),
            csrf: f.csrf.clone(),
            next: next.clone(),
            username: f.username.clone(),
            error,
        };
        (status, render(&page)).into_response()
    };
    let acc = match state.db.login(&actor, &f.username, &f.password).await {
        Ok(a) => a,
        Err(LoginRefusal::Invalid) => return refuse(StatusCode::UNAUTHORIZED, ctx.lang.t("login.invalid").into()),
        Err(LoginRefusal::Throttled { retry_after_s }) => {
            return refuse(StatusCode::TOO_MANY_REQUESTS, format!("{} ({retry_after_s} s)", ctx.lang.t("login.throttled")));
        }
    };
    // A new session id at every login: a cookie planted before login is worth nothing.
    let session = match state.db.create_session(acc.id, &r.client_addr).await {
        Ok(s) => s,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, ApiError::from(e).detail),
    };
    let to = if acc.must_change_password { "/account/password".to_string() } else { next };
    let mut res = Redirect::to(&to).into_response();
    let secure = is_tls(&headers, &state);
    res.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &session.id, secure, None));
    res.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", secure, Some(0)));
    res
}

async fn logout(State(state): State<AppState>, UiCaller(me): UiCaller, headers: HeaderMap) -> Response {
    if let Some(s) = &me.session_id {
        let _ = state.db.end_session(s).await;
    }
    let _ = state.db.audit(me.actor.entry("logout", "account", &me.principal.account_id.to_string(), "ok", "")).await;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", is_tls(&headers, &state), Some(0)));
    res
}

// ---------------------------------------------------------------- own password

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    c: Chrome,
    must: bool,
    error: String,
    done: bool,
}

async fn password_page(UiCaller(me): UiCaller, ctx: Ctx) -> Html<String> {
    let must = me.principal.must_change_password;
    render(&PasswordPage { c: Chrome::for_user(&ctx, &me, "", ctx.lang.t("password.title")), must, error: String::new(), done: false })
}

#[derive(Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

async fn password_submit(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Form(f): Form<PasswordForm>) -> Response {
    let must = me.principal.must_change_password;
    let page = |error: String, done: bool| {
        render(&PasswordPage { c: Chrome::for_user(&ctx, &me, "", ctx.lang.t("password.title")), must, error, done })
    };
    if f.new != f.confirm {
        return (StatusCode::BAD_REQUEST, page(ctx.lang.t("password.mismatch").into(), false)).into_response();
    }
    match state.db.login(&me.actor, &me.principal.username, &f.current).await {
        Err(LoginRefusal::Invalid) => return (StatusCode::UNAUTHORIZED, page(ctx.lang.t("password.wrong").into(), false)).into_response(),
        Err(LoginRefusal::Throttled { .. }) => {
            return (StatusCode::TOO_MANY_REQUESTS, page(ctx.lang.t("login.throttled").into(), false)).into_response();
        }
        Ok(_) => {}
    }
    match state.db.set_password(&me.actor, me.principal.account_id, &f.new, false, me.session_id.as_deref()).await {
        Ok(()) if must => Redirect::to("/").into_response(),
        Ok(()) => page(String::new(), true).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, page(problem_text(ctx.lang, &ApiError::from(e)), false)).into_response(),
    }
}

/// An error for a form: the translated text of its code when there is one.
fn problem_text(lang: Lang, e: &ApiError) -> String {
    let key = format!("error.{}", e.code);
    let t = lang.t(&key);
    if t.starts_with('⟦') { e.detail.clone() } else { t.to_string() }
}

// ---------------------------------------------------------------- administration

struct RoleOption {
    value: &'static str,
    name: &'static str,
}

fn role_options(lang: Lang) -> Vec<RoleOption> {
    Role::ALL
        .iter()
        .map(|r| RoleOption { value: r.as_str(), name: if lang == Lang::Zh { r.name_zh() } else { r.name_en() } })
        .collect()
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    c: Chrome,
    accounts: Vec<Account>,
    roles: Vec<RoleOption>,
    error: String,
    created: String,
}

impl UsersPage {
    fn role_name(&self, r: &Role) -> &'static str {
        if self.c.lang == Lang::Zh { r.name_zh() } else { r.name_en() }
    }
}

async fn users_page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx) -> Result<Html<String>, Response> {
    users_view(&state, &me, &ctx, String::new(), String::new()).await
}

async fn users_view(state: &AppState, me: &crate::auth::Caller, ctx: &Ctx, error: String, created: String) -> Result<Html<String>, Response> {
    let s = me.scoped(state);
    let Some(admin) = s.account_admin() else {
        let _ = s.deny("account.list", "account", "*").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let accounts = admin.list().await.map_err(|e| ApiError::from(e).into_response())?;
    let c = Chrome::for_user(ctx, me, "admin", ctx.lang.t("admin.title"));
    Ok(render(&UsersPage { c, accounts, roles: role_options(ctx.lang), error, created }))
}

#[derive(Deserialize)]
struct NewUserForm {
    username: String,
    display_name: String,
    role: String,
    area: String,
    department: Option<String>,
    password: String,
}

async fn user_create(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Form(f): Form<NewUserForm>) -> Result<Response, Response> {
    let s = me.scoped(&state);
    let Some(admin) = s.account_admin() else {
        let _ = s.deny("account.create", "account", &f.username).await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let parsed = f.role.parse::<Role>().map_err(ApiError::from).and_then(|role| Ok((role, AreaCode::parse(&f.area).map_err(ApiError::from)?)));
    let result = match parsed {
        Ok((role, area)) => admin
            .create(NewAccount {
                username: f.username.clone(),
                display_name: f.display_name,
                role,
                area,
                department: f.department,
                password: f.password,
                temporary: true,
            })
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(acc) => Ok(users_view(&state, &me, &ctx, String::new(), acc.username).await?.into_response()),
        Err(e) => {
            let page = users_view(&state, &me, &ctx, problem_text(ctx.lang, &e), String::new()).await?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
    }
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    c: Chrome,
    a: Account,
    roles: Vec<RoleOption>,
    message: String,
    error: String,
}

impl UserPage {
    fn role_name(&self) -> &'static str {
        if self.c.lang == Lang::Zh { self.a.role.name_zh() } else { self.a.role.name_en() }
    }
}

async fn user_view(state: &AppState, me: &crate::auth::Caller, ctx: &Ctx, raw: &str, message: String, error: String) -> Result<Html<String>, Response> {
    let s = me.scoped(state);
    let Some(admin) = s.account_admin() else {
        let _ = s.deny("account.read", "account", raw).await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let Ok(id) = raw.parse::<i64>() else { return Err(crate::ui::not_found_page(&ctx.path)) };
    let a = admin.get(id).await.map_err(|_| crate::ui::not_found_page(&ctx.path))?;
    let c = Chrome::for_user(ctx, me, "admin", a.display_name.clone());
    Ok(render(&UserPage { c, a, roles: role_options(ctx.lang), message, error }))
}

async fn user_page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>) -> Result<Html<String>, Response> {
    user_view(&state, &me, &ctx, &raw, String::new(), String::new()).await
}

#[derive(Deserialize)]
struct UpdateForm {
    role: String,
    area: String,
    department: Option<String>,
}

/// What an administrator does to one account from its page.
enum AdminOp {
    Update { role: String, area: String, department: Option<String> },
    Active(bool),
    Reset(String),
}

impl AdminOp {
    fn action(&self) -> &'static str {
        match self {
            AdminOp::Update { .. } => "account.update",
            AdminOp::Active(true) => "account.enable",
            AdminOp::Active(false) => "account.disable",
            AdminOp::Reset(_) => "account.reset_password",
        }
    }
}

/// Run an admin action on one account and show its page with the outcome.
async fn admin_action(state: &AppState, me: &crate::auth::Caller, ctx: &Ctx, raw: &str, op: AdminOp) -> Result<Response, Response> {
    let s = me.scoped(state);
    let Some(admin) = s.account_admin() else {
        let _ = s.deny(op.action(), "account", raw).await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let Ok(id) = raw.parse::<i64>() else { return Err(crate::ui::not_found_page(&ctx.path)) };
    let result: Result<(), ApiError> = match op {
        AdminOp::Update { role, area, department } => async {
            let role = role.parse::<Role>()?;
            let area = AreaCode::parse(&area)?;
            admin.update(id, role, &area, department.as_deref()).await?;
            Ok(())
        }
        .await,
        AdminOp::Active(active) => admin.set_active(id, active).await.map_err(ApiError::from),
        AdminOp::Reset(password) => admin.reset_password(id, &password).await.map_err(ApiError::from),
    };
    match result {
        Ok(()) => Ok(user_view(state, me, ctx, raw, ctx.lang.t("admin.saved").into(), String::new()).await?.into_response()),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(crate::ui::not_found_page(&ctx.path)),
        Err(e) => {
            let page = user_view(state, me, ctx, raw, String::new(), problem_text(ctx.lang, &e)).await?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
    }
}

async fn user_update(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<UpdateForm>) -> Result<Response, Response> {
    admin_action(&state, &me, &ctx, &raw, AdminOp::Update { role: f.role, area: f.area, department: f.department }).await
}

#[derive(Deserialize)]
struct ActiveForm {
    active: String,
}

async fn user_active(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<ActiveForm>) -> Result<Response, Response> {
    admin_action(&state, &me, &ctx, &raw, AdminOp::Active(f.active == "1")).await
}

#[derive(Deserialize)]
struct ResetForm {
    password: String,
}

async fn user_reset(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<ResetForm>) -> Result<Response, Response> {
    admin_action(&state, &me, &ctx, &raw, AdminOp::Reset(f.password)).await
}

// ---------------------------------------------------------------- audit

struct AuditLine {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    object: String,
    outcome: String,
    detail: String,
    operation_id: String,
    client_addr: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPageT {
    c: Chrome,
    rows: Vec<AuditLine>,
    q: std::collections::HashMap<String, String>,
    error: String,
    next: String,
}

impl AuditPageT {
    fn v(&self, k: &str) -> &str {
        self.q.get(k).map(String::as_str).unwrap_or("")
    }
}

async fn audit_page(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, q: Params) -> Result<Html<String>, Response> {
    let s = me.scoped(&state);
    let Some(reader) = s.audit_reader() else {
        let _ = s.deny("audit.search", "audit_log", "").await;
        return Err(crate::ui::not_found_page(&ctx.path));
    };
    let c = Chrome::for_user(&ctx, &me, "audit", ctx.lang.t("audit.title"));
    let (rows, error, next) = match audit_query(&q) {
        Err(e) => (Vec::new(), problem_text(ctx.lang, &e), String::new()),
        Ok(query) => {
            let rows = reader.search(&query).await.map_err(|e| ApiError::from(e).into_response())?;
            let next = if rows.len() as i64 == query.limit { rows.last().map(|r| r.seq.to_string()).unwrap_or_default() } else { String::new() };
            let lines = rows
                .into_iter()
                .map(|r| AuditLine {
                    seq: r.seq,
                    at: domain::time::format_shanghai(r.entry.at),
                    actor: format!("{} ({})", r.entry.actor_name, r.entry.actor_kind),
                    action: r.entry.action,
                    object: format!("{} {}", r.entry.object_type, r.entry.object_id),
                    outcome: r.entry.outcome,
                    detail: r.entry.detail,
                    operation_id: r.entry.operation_id,
                    client_addr: r.entry.client_addr,
                })
                .collect();
            (lines, String::new(), next)
        }
    };
    Ok(render(&AuditPageT { c, rows, q: q.0, error, next }))
}

// ---------------------------------------------------------------- sensitive reads

#[derive(Template)]
#[template(path = "phone.html")]
struct PhonePartial {
    value: String,
    error: String,
}

#[derive(Deserialize)]
struct ReasonForm {
    reason: String,
}

async fn unmask_phone(State(state): State<AppState>, UiCaller(me): UiCaller, ctx: Ctx, Path(raw): Path<String>, Form(f): Form<ReasonForm>) -> Response {
    let s = me.scoped(&state);
    let result = match raw.parse::<i64>() {
        Ok(id) => s.unmask_team_phone(id, &f.reason).await.map_err(ApiError::from),
        Err(_) => Err(s.deny("read_sensitive", "team_member.phone", &raw).await.into()),
    };
    match result {
        Ok(value) => render(&PhonePartial { value, error: String::new() }).into_response(),
        Err(e) => {
            let error = problem_text(ctx.lang, &e);
            (e.status, render(&PhonePartial { value: String::new(), error })).into_response()
        }
    }
}
