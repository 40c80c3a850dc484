//! Embedded static assets (see build.rs), served at `/assets/<version>/<name>` with a
//! year-long immutable cache: the version changes whenever any asset does.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The URL of an embedded asset.
pub fn url(name: &str) -> String {
    format!("/assets/{ASSET_VERSION}/{name}")
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/assets/{version}/{*name}", get(serve))
}

async fn serve(Path((version, name)): Path<(String, String)>) -> Response {
    let Some((_, mime, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let cache = if version == ASSET_VERSION { "public, max-age=31536000, immutable" } else { "no-cache" };
    ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, cache)], *bytes).into_response()
}
