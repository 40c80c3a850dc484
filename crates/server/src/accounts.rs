//! The API of accounts, sessions, tokens, sensitive reads and the audit trail.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::{AreaCode, Phone, Role, TeamRole};
use serde::{Deserialize, Serialize};
use store::audit::{Actor, AuditQuery, AuditRow};
use store::auth::{Account, LoginRefusal, NewAccount};
use store::scoped::TeamInput;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::Params;
use crate::auth::{ApiCaller, MaybeCaller};
use crate::problem::{ApiError, Problem};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(login).delete(logout))
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/accounts", get(list_accounts).post(create_account))
        .route("/api/v1/accounts/{id}", get(get_account).patch(update_account))
        .route("/api/v1/accounts/{id}/disable", post(disable_account))
        .route("/api/v1/accounts/{id}/enable", post(enable_account))
        .route("/api/v1/accounts/{id}/password", post(reset_password))
        .route("/api/v1/areas/{code}/team", axum::routing::put(set_team))
        .route("/api/v1/unmask", post(unmask))
        .route("/api/v1/audit", get(search_audit))
}

/// A JSON body, with malformed JSON answered as a problem.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|j| Body(j.0))
            .map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))
    }
}

/// An account, as its administrators (and the account itself) see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountDto {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// operator, dispatcher, shift_lead, department_handler, street_staff, community_staff,
    /// grid_leader, grid_worker, volunteer, auditor, admin, api_client
    pub role: String,
    pub area: String,
    pub department: Option<String>,
    pub active: bool,
    pub must_change_password: bool,
}

impl From<&Account> for AccountDto {
    fn from(a: &Account) -> Self {
        AccountDto {
            id: a.id,
            username: a.username.clone(),
            display_name: a.display_name.clone(),
            role: a.role.as_str().into(),
            area: a.area.to_string(),
            department: a.department.clone(),
            active: a.active,
            must_change_password: a.must_change_password,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token: send it as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    /// When the token expires (ms since the epoch, UTC).
    pub expires_at: i64,
    pub account: AccountDto,
}

fn login_refused(r: LoginRefusal) -> Response {
    match r {
        LoginRefusal::Invalid => {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong username or password").into_response()
        }
        LoginRefusal::Throttled { retry_after_s } => {
            let mut res = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "login_throttled",
                format!("too many failed logins for this name; try again in {retry_after_s} s"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
    }
}

/// Log in with a username and password; returns a bearer token for API clients.
#[utoipa::path(
    post, path = "/api/v1/session", tag = "accounts", operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 201, body = LoginResponse),
        (status = 401, description = "Wrong username or password (the answer never says which)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failures for this name: wait Retry-After seconds", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(State(state): State<AppState>, MaybeCaller(r): MaybeCaller, Body(req): Body<LoginRequest>) -> Response {
    let actor = Actor::anonymous(&req.username, &r.operation_id, &r.client_addr);
    let acc = match state.db.login(&actor, &req.username, &req.password).await {
        Ok(a) => a,
        Err(refusal) => return login_refused(refusal),
    };
    let expires_at = state.db.now_ms() + state.config.session_policy.absolute_ms;
    let by = Actor { kind: "user".into(), id: Some(acc.id), name: acc.username.clone(), ..actor };
    match state.db.create_token(&by, acc.id, "login", Some(expires_at)).await {
        Ok(token) => (StatusCode::CREATED, Json(LoginResponse { token, expires_at, account: AccountDto::from(&acc) })).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Log out: revoke the bearer token (or end the web session) used for this request.
#[utoipa::path(
    delete, path = "/api/v1/session", tag = "accounts", operation_id = "logout",
    responses((status = 204, description = "Logged out"), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn logout(State(state): State<AppState>, ApiCaller(c): ApiCaller) -> Result<StatusCode, ApiError> {
    match (&c.principal.credential, &c.session_id) {
        (domain::Credential::Token(id), _) => state.db.revoke_token(*id).await?,
        (_, Some(s)) => state.db.end_session(s).await?,
        _ => {}
    }
    state.db.audit(c.actor.entry("logout", "account", &c.principal.account_id.to_string(), "ok", "")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", operation_id = "me",
    responses((status = 200, body = AccountDto), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, ApiCaller(c): ApiCaller) -> Result<Json<AccountDto>, ApiError> {
    let acc = state.db.account_by_id(c.principal.account_id).await?.ok_or_else(|| ApiError::not_found("not_found", "account gone"))?;
    Ok(Json(AccountDto::from(&acc)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Change your own password. Your other sessions end and your tokens are revoked.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "accounts", operation_id = "changePassword",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "The new password breaks the policy", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The current password is wrong", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Body(req): Body<PasswordChange>,
) -> Result<Response, ApiError> {
    if let Err(r) = state.db.login(&c.actor, &c.principal.username, &req.current_password).await {
        return Ok(login_refused(r));
    }
    state
        .db
        .set_password(&c.actor, c.principal.account_id, &req.new_password, false, c.session_id.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Accounts in your area (administrators).
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", operation_id = "listAccounts",
    responses((status = 200, body = [AccountDto]), (status = 404, description = "Not an administrator", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_accounts(State(state): State<AppState>, ApiCaller(c): ApiCaller) -> Result<Json<Vec<AccountDto>>, ApiError> {
    let s = c.scoped(&state);
    let Some(admin) = s.account_admin() else {
        return Err(s.deny("account.list", "account", "*").await.into());
    };
    Ok(Json(admin.list().await?.iter().map(AccountDto::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewAccountRequest {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub area: String,
    pub department: Option<String>,
    /// A temporary password: the account must change it at first login.
    pub password: String,
}

fn parse_role(s: &str) -> Result<Role, ApiError> {
    s.parse::<Role>().map_err(ApiError::from)
}

fn parse_area(s: &str) -> Result<AreaCode, ApiError> {
    AreaCode::parse(s).map_err(ApiError::from)
}

/// Create an account in your area (administrators). Its password is temporary.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", operation_id = "createAccount",
    request_body = NewAccountRequest,
    responses(
        (status = 201, body = AccountDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_account(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Body(req): Body<NewAccountRequest>,
) -> Result<(StatusCode, Json<AccountDto>), ApiError> {
    let s = c.scoped(&state);
    let Some(admin) = s.account_admin() else {
        return Err(s.deny("account.create", "account", &req.username).await.into());
    };
    let acc = admin
        .create(NewAccount {
            username: req.username,
            display_name: req.display_name,
            role: parse_role(&req.role)?,
            area: parse_area(&req.area)?,
            department: req.department,
            password: req.password,
            temporary: true,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(AccountDto::from(&acc))))
}

/// One account in your area (administrators).
#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "accounts", operation_id = "getAccount",
    params(("id" = i64, Path)),
    responses((status = 200, body = AccountDto), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_account(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(id): Path<String>) -> Result<Json<AccountDto>, ApiError> {
    let s = c.scoped(&state);
    let Some(admin) = s.account_admin() else {
        return Err(s.deny("account.read", "account", &id).await.into());
    };
    let id = account_id(&id)?;
    Ok(Json(AccountDto::from(&admin.get(id).await?)))
}

fn account_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("not_found", format!("account {raw} not found")))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AccountUpdate {
    pub role: String,
    pub area: String,
    pub department: Option<String>,
}

/// Change an account's role, area or department (administrators). Its sessions end.
#[utoipa::path(patch, path = "/api/v1/accounts/{id}", tag = "accounts", operation_id = "updateAccount",
    params(("id" = i64, Path)), request_body = AccountUpdate,
    responses((status = 200, body = AccountDto), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn update_account(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    Body(req): Body<AccountUpdate>,
) -> Result<Json<AccountDto>, ApiError> {
    let s = c.scoped(&state);
    let Some(admin) = s.account_admin() else {
        return Err(s.deny("account.update", "account", &id).await.into());
    };
    let id = account_id(&id)?;
    let acc = admin.update(id, parse_role(&req.role)?, &parse_area(&req.area)?, req.department.as_deref()).await?;
    Ok(Json(AccountDto::from(&acc)))
}

async fn set_active(state: &AppState, c: &crate::auth::Caller, raw: &str, active: bool) -> Result<StatusCode, ApiError> {
    let s = c.scoped(state);
    let action = if active { "account.enable" } else { "account.disable" };
    let Some(admin) = s.account_admin() else {
        return Err(s.deny(action, "account", raw).await.into());
    };
    admin.set_active(account_id(raw)?, active).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disable an account (administrators): its sessions end and its tokens are revoked.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/disable", tag = "accounts", operation_id = "disableAccount",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn disable_account(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    set_active(&state, &c, &id, false).await
}

/// Enable an account again (administrators).
#[utoipa::path(post, path = "/api/v1/accounts/{id}/enable", tag = "accounts", operation_id = "enableAccount",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn enable_account(State(state): State<AppState>, ApiCaller(c): ApiCaller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    set_active(&state, &c, &id, true).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordReset {
    /// The temporary password, to be changed at the next login.
    pub password: String,
}

/// Reset an account's password to a temporary one (administrators).
#[utoipa::path(post, path = "/api/v1/accounts/{id}/password", tag = "accounts", operation_id = "resetPassword",
    params(("id" = i64, Path)), request_body = PasswordReset,
    responses((status = 204), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn reset_password(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    Body(req): Body<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    let s = c.scoped(&state);
    let Some(admin) = s.account_admin() else {
        return Err(s.deny("account.reset_password", "account", &id).await.into());
    };
    admin.reset_password(account_id(&id)?, &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TeamMemberInput {
    /// grid_leader, full_time_member, part_time_member, grid_police, volunteer
    pub role: String,
    pub name: String,
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TeamUpdate {
    pub members: Vec<TeamMemberInput>,
}

/// Replace a grid's team (street and community staff, grid leaders; within their area).
#[utoipa::path(put, path = "/api/v1/areas/{code}/team", tag = "areas", operation_id = "setTeam",
    params(("code" = String, Path)), request_body = TeamUpdate,
    responses(
        (status = 204, description = "Replaced"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such grid in your area", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn set_team(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(raw): Path<String>,
    Body(req): Body<TeamUpdate>,
) -> Result<StatusCode, ApiError> {
    let s = c.scoped(&state);
    let Some(editor) = s.team_editor() else {
        return Err(s.deny("team.update", "area", &raw).await.into());
    };
    let code = AreaCode::parse(&raw)?;
    let mut members = Vec::with_capacity(req.members.len());
    for m in req.members {
        members.push(TeamInput {
            role: m.role.parse::<TeamRole>()?,
            name: m.name,
            phone: m.phone.as_deref().filter(|p| !p.trim().is_empty()).map(Phone::parse).transpose()?,
        });
    }
    editor.set_team(&code, &members).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UnmaskRequest {
    /// What to read: `team_member.phone`.
    pub field: String,
    pub id: i64,
    /// Why you need the full value. Stored in the audit trail with the read.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnmaskResponse {
    pub value: String,
}

/// Read a sensitive value in full, with a stated reason. Every read is audited.
#[utoipa::path(post, path = "/api/v1/unmask", tag = "accounts", operation_id = "unmask",
    request_body = UnmaskRequest,
    responses(
        (status = 200, body = UnmaskResponse),
        (status = 400, description = "No reason given", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such value in your area, or your role may not read it", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn unmask(State(state): State<AppState>, ApiCaller(c): ApiCaller, Body(req): Body<UnmaskRequest>) -> Result<Json<UnmaskResponse>, ApiError> {
    let s = c.scoped(&state);
    match req.field.as_str() {
        "team_member.phone" => Ok(Json(UnmaskResponse { value: s.unmask_team_phone(req.id, &req.reason).await? })),
        other => Err(ApiError::bad_request("unknown_field", format!("no sensitive field {other:?}"))),
    }
}

/// One row of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRowDto {
    pub seq: i64,
    /// ms since the epoch, UTC
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    /// ok, denied or failed
    pub outcome: String,
    pub detail: String,
    pub operation_id: String,
    pub client_addr: String,
    pub hash: String,
}

impl From<AuditRow> for AuditRowDto {
    fn from(r: AuditRow) -> Self {
        let e = r.entry;
        AuditRowDto {
            seq: r.seq,
            at: e.at,
            actor_kind: e.actor_kind,
            actor_id: e.actor_id,
            actor_name: e.actor_name,
            action: e.action,
            object_type: e.object_type,
            object_id: e.object_id,
            outcome: e.outcome,
            detail: e.detail,
            operation_id: e.operation_id,
            client_addr: e.client_addr,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditRowDto>,
    /// When older rows follow: pass as `before` for the next page.
    pub next_before: Option<i64>,
}

/// Parse the audit search parameters (shared with the auditor's page).
pub fn audit_query(q: &Params) -> Result<AuditQuery, ApiError> {
    let text = |k: &str| q.0.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let date = |k: &str| -> Result<Option<i64>, ApiError> {
        text(k)
            .map(|d| {
                domain::time::parse_shanghai_date(&d)
                    .ok_or_else(|| ApiError::bad_request("invalid_date", format!("{k} must be a date YYYY-MM-DD, got {d:?}")))
            })
            .transpose()
    };
    let limit = match text("limit") {
        None => 100,
        Some(v) => v.parse::<i64>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
            ApiError::bad_request("invalid_limit", format!("limit must be a whole number from 1 to 1000, got {v:?}"))
        })?,
    };
    let before_seq = text("before")
        .map(|b| b.parse::<i64>().map_err(|_| ApiError::bad_request("invalid_cursor", format!("before must be a number, got {b:?}"))))
        .transpose()?;
    Ok(AuditQuery {
        actor: text("actor"),
        action: text("action"),
        outcome: text("outcome"),
        object_id: text("object"),
        from_ms: date("from")?,
        // `to` is inclusive: the whole day.
        to_ms: date("to")?.map(|t| t + 86_400_000),
        before_seq,
        limit,
    })
}

/// Search the audit trail, newest first (auditors).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "searchAudit",
    params(
        ("actor" = Option<String>, Query, description = "Username (or the name tried, for failed logins)"),
        ("action" = Option<String>, Query, description = "e.g. login, read_sensitive, account.create, team.update"),
        ("outcome" = Option<String>, Query, description = "ok, denied or failed"),
        ("object" = Option<String>, Query, description = "Object id"),
        ("from" = Option<String>, Query, description = "From this date (YYYY-MM-DD, Asia/Shanghai)"),
        ("to" = Option<String>, Query, description = "To this date, inclusive"),
        ("before" = Option<i64>, Query, description = "Cursor: rows before this sequence number"),
        ("limit" = Option<i64>, Query, description = "1 to 1000, default 100"),
    ),
    responses((status = 200, body = AuditPage), (status = 404, description = "Not an auditor", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn search_audit(State(state): State<AppState>, ApiCaller(c): ApiCaller, q: Params) -> Result<Json<AuditPage>, ApiError> {
    let s = c.scoped(&state);
    let Some(reader) = s.audit_reader() else {
        return Err(s.deny("audit.search", "audit_log", "").await.into());
    };
    let query = audit_query(&q)?;
    let rows = reader.search(&query).await?;
    let next_before = (rows.len() as i64 == query.limit).then(|| rows.last().map(|r| r.seq)).flatten();
    Ok(Json(AuditPage { items: rows.into_iter().map(AuditRowDto::from).collect(), next_before }))
}
