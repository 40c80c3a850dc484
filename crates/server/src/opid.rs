//! Every request gets an operation id: in the `X-Operation-Id` response header, on every
//! log line of the request (a tracing span), and in every problem document and error page.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::problem::ApiError;

/// The operation id of the current request, as a request extension.
#[derive(Debug, Clone)]
pub struct OperationId(pub String);

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn next_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        domain::rng::mix(t as u64 ^ u64::from(std::process::id())) as u32
    });
    format!("{prefix:08x}-{:08x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub async fn middleware(mut req: Request, next: Next) -> Response {
    let id = next_id();
    req.extensions_mut().insert(OperationId(id.clone()));
    let span = tracing::info_span!("request", op = %id, method = %req.method(), path = %req.uri().path());
    let started = std::time::Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    if let Some(err) = res.extensions_mut().remove::<ApiError>() {
        // Keep the handler's headers (Retry-After, Set-Cookie …); write the body with the id.
        let (mut parts, _) = res.into_parts();
        let rendered = err.render(&id);
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        res = Response::from_parts(parts, rendered.into_body());
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-operation-id", v);
    }
    span.in_scope(|| {
        tracing::info!(status = res.status().as_u16(), ms = started.elapsed().as_millis() as u64, "served")
    });
    res
}
