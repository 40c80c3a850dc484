//! Errors as `application/problem+json` (RFC 9457), with a stable `code` and the
//! request's operation id. Internals (SQL, file paths) never reach the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use domain::DomainError;
use store::StoreError;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:civicgrid:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The stable machine-readable code, e.g. `area_not_found`.
    #[schema(example = "area_not_found")]
    pub code: String,
    /// The operation id of the request (also in the `X-Operation-Id` header and the logs).
    pub operation_id: String,
    /// Extra details, such as the features an import refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<serde_json::Value>,
}

/// An error a handler returns. The operation-id middleware completes and renders it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, code, detail: detail.into(), errors: None }
    }
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, detail)
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// The problem document for this error within a request.
    pub fn to_problem(&self, operation_id: &str) -> Problem {
        Problem {
            kind: format!("urn:civicgrid:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            operation_id: operation_id.to_string(),
            errors: self.errors.clone(),
        }
    }

    /// Render with an operation id.
    pub fn render(&self, operation_id: &str) -> Response {
        let body = serde_json::to_vec(&self.to_problem(operation_id)).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        res
    }
}

impl IntoResponse for ApiError {
    /// The body is written by the operation-id middleware, which knows the request's id;
    /// the error travels to it in the response's extensions.
    fn into_response(self) -> Response {
        let mut res = self.render("");
        res.extensions_mut().insert(self);
        res
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::bad_request(e.code(), e.to_string())
    }
}

/// Codes answered 422 rather than 400: the request was well formed, but names what does
/// not exist or breaks a limit.
const UNPROCESSABLE: [&str; 4] = ["unknown_category", "description_too_long", "query_too_short", "query_too_long"];

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound(what) => ApiError::not_found("not_found", format!("{what} not found")),
            // Well-formed input the catalogue or the rules refuse (API contract, issue 4).
            StoreError::Invalid { code, message } if UNPROCESSABLE.contains(code) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.clone()),
            StoreError::Invalid { code, message } => ApiError::bad_request(code, message.clone()),
            StoreError::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message.clone()),
            StoreError::Import(problems) => {
                let list: Vec<_> = problems
                    .iter()
                    .map(|p| serde_json::json!({"index": p.index, "code": p.code, "reason": p.reason, "message": p.message}))
                    .collect();
                ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "import_rejected",
                    detail: e.to_string(),
                    errors: Some(serde_json::Value::Array(list)),
                }
            }
            _ => {
                tracing::error!(error = %e, "store error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.code(), "the server could not complete the request")
            }
        }
    }
}
