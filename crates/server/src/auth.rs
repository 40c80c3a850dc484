//! Who is calling. One middleware resolves the caller from a bearer token or the session
//! cookie, and refuses state-changing requests that lack the CSRF token. The extractors
//! [`ApiCaller`] and [`UiCaller`] then hand handlers a signed-in caller or answer for them:
//! 401 problem+json for the API, a redirect to the login page for the UI.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use domain::{Credential, Principal};
use store::audit::Actor;
use store::scoped::Scoped;

use crate::AppState;
use crate::opid::OperationId;
use crate::problem::ApiError;

pub const SESSION_COOKIE: &str = "cg_session";
/// The pre-login CSRF cookie (double submit), set by the login page.
pub const LOGIN_CSRF_COOKIE: &str = "cg_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf";

/// A signed-in caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub actor: Actor,
    /// The session's CSRF token (web sessions only).
    pub csrf: Option<String>,
    /// The raw session id (web sessions only), to keep it when the password changes.
    pub session_id: Option<String>,
}

impl Caller {
    pub fn scoped<'a>(&'a self, state: &'a AppState) -> Scoped<'a> {
        state.db.scoped(&self.principal, self.actor.clone())
    }
}

/// What the middleware found, as a request extension.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub caller: Option<Caller>,
    pub operation_id: String,
    pub client_addr: String,
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// Whether the connection reached us over TLS (directly, or through a proxy that says so).
pub fn is_tls(headers: &HeaderMap, state: &AppState) -> bool {
    state.config.secure_cookies
        || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure behind TLS.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(s) = max_age {
        c.push_str(&format!("; Max-Age={s}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Resolve the caller, then guard state-changing requests against cross-site forgery.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let operation_id = parts.extensions.get::<OperationId>().map(|o| o.0.clone()).unwrap_or_default();
    let client_addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "local".into());
    let token = bearer(&parts.headers);
    let session = cookie(&parts.headers, SESSION_COOKIE);
    let caller = match (&token, &session) {
        (Some(t), _) => match state.db.token_principal(t).await {
            Ok(p) => p.map(|p| Caller { actor: Actor::of(&p, &operation_id, &client_addr), principal: p, csrf: None, session_id: None }),
            Err(e) => return ApiError::from(e).into_response(),
        },
        (None, Some(s)) => match state.db.session_principal(s, state.config.session_policy).await {
            Ok(found) => found.map(|(p, csrf)| Caller {
                actor: Actor::of(&p, &operation_id, &client_addr),
                principal: p,
                csrf: Some(csrf),
                session_id: Some(s.clone()),
            }),
            Err(e) => return ApiError::from(e).into_response(),
        },
        (None, None) => None,
    };
    // Only requests that carry ambient authority need the check: a web session's cookie,
    // or the login form (a forged login would sign the victim into someone else's account).
    // Bearer tokens and anonymous API calls carry none.
    let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let expected = match &caller {
        Some(c) => c.csrf.clone().map(Some),
        None if parts.uri.path() == "/login" => Some(cookie(&parts.headers, LOGIN_CSRF_COOKIE)),
        None => None,
    };
    let body = match expected {
        Some(expected) if unsafe_method => {
            let (ok, body) = csrf_matches(&parts.headers, body, expected.as_deref(), state.config.photo_max_bytes).await;
            if !ok {
                if let Some(c) = &caller {
                    let e = c.actor.entry("csrf", "request", parts.uri.path(), "denied", "missing or wrong CSRF token");
                    let _ = state.db.audit(e).await;
                }
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "the form or request lacks a valid CSRF token; reload the page and try again",
                )
                .into_response();
            }
            body
        }
        _ => body,
    };
    parts.extensions.insert(Resolved { caller, operation_id, client_addr });
    next.run(Request::from_parts(parts, body)).await
}

/// Compare the request's CSRF token (header, or `csrf` field of a form) with the expected one.
/// The body is read for forms and handed back whole. A multipart form (one that carries a
/// photo) is read up to the photo limit and a little more for its other fields.
async fn csrf_matches(headers: &HeaderMap, body: axum::body::Body, expected: Option<&str>, photo_max: usize) -> (bool, axum::body::Body) {
    let Some(expected) = expected.filter(|e| !e.is_empty()) else { return (false, body) };
    if let Some(h) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return (constant_time_eq(h.as_bytes(), expected.as_bytes()), body);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(boundary) = crate::multipart::boundary(content_type) {
        let Ok(bytes) = axum::body::to_bytes(body, photo_max + (64 << 10)).await else {
            return (false, axum::body::Body::empty());
        };
        let found = crate::multipart::parse(&bytes, &boundary).and_then(|parts| parts.into_iter().find(|p| p.name == CSRF_FIELD));
        let ok = found.is_some_and(|f| constant_time_eq(&f.data, expected.as_bytes()));
        return (ok, axum::body::Body::from(bytes));
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return (false, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (false, axum::body::Body::empty());
    };
    let found = form_field(&bytes, CSRF_FIELD);
    let ok = found.is_some_and(|f| constant_time_eq(f.as_bytes(), expected.as_bytes()));
    (ok, axum::body::Body::from(bytes))
}

/// Every field of an urlencoded form, in order (a field may repeat, like checkboxes).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&').filter(|kv| !kv.is_empty()).map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (url_decode(k), url_decode(v))
    }).collect()
}

/// One field of an urlencoded form.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| url_decode(v))
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn resolved(parts: &Parts) -> Resolved {
    parts.extensions.get::<Resolved>().cloned().unwrap_or_default()
}

/// The caller of an API route: 401 when nobody is signed in; 403 while a temporary
/// password is still to be changed (except on the routes that change it or log out).
pub struct ApiCaller(pub Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let Some(c) = resolved(parts).caller else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in: send Authorization: Bearer <token>"));
        };
        let path = parts.uri.path();
        if c.principal.must_change_password && path != "/api/v1/me/password" && path != "/api/v1/session" {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "password_change_required",
                "this account has a temporary password: change it first (POST /api/v1/me/password)",
            ));
        }
        Ok(ApiCaller(c))
    }
}

/// The caller of a UI page: redirected to the login page when nobody is signed in, and to
/// the password page while a temporary password is still to be changed.
pub struct UiCaller(pub Caller);

impl FromRequestParts<AppState> for UiCaller {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let next = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let Some(c) = resolved(parts).caller else {
            return Err(Redirect::to(&format!("/login?next={}", crate::ui::url_escape(&next))).into_response());
        };
        if c.principal.must_change_password && !matches!(parts.uri.path(), "/account/password" | "/logout") {
            return Err(Redirect::to("/account/password").into_response());
        }
        Ok(UiCaller(c))
    }
}

/// Anyone: the caller if signed in, and the request's operation id and address.
pub struct MaybeCaller(pub Resolved);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(MaybeCaller(resolved(parts)))
    }
}

/// Whether the credential is a web session.
pub fn is_session(p: &Principal) -> bool {
    matches!(p.credential, Credential::Session(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        assert_eq!(form_field(b"a=1&csrf=ab%2Fcd+e&x=", "csrf").as_deref(), Some("ab/cd e"));
        assert_eq!(form_field(b"name=%E5%BC%A0%E4%B8%89", "name").as_deref(), Some("张三"));
        assert_eq!(form_field(b"a=%2", "a").as_deref(), Some("%2"));
        assert_eq!(form_field(b"a=1", "csrf"), None);
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"a", b"ab"));
    }
}
