//! civicgrid's HTTP server: the JSON API under `/api/v1` with its OpenAPI document, and
//! the server-rendered web UI (askama templates + htmx, Leaflet for maps).
//!
//! A request passes the operation-id middleware, reaches a handler with the shared
//! [`AppState`] (the store and the derived grid index), and answers JSON, HTML or an
//! RFC 9457 problem document.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod catalogue;
pub mod assets;
pub mod i18n;
pub mod inbox;
pub mod multipart;
pub mod incidents;
pub mod open311;
pub mod kpis;
pub mod opid;
pub mod problem;
pub mod register;
pub mod search;
pub mod register_import;
pub mod ui;
pub mod ui_account;
pub mod ui_inbox;
pub mod ui_incidents;
pub mod ui_mobile;
pub mod ui_public;
pub mod ui_register;
pub mod ui_collect;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use store::Db;
use store::index::GridFollower;
use store::search::SearchIndex;

use crate::problem::ApiError;

/// Settings the server needs (the CLI builds them from the configuration).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// A tile URL template for the maps (`{z}/{x}/{y}`), e.g. a 天地图 server. None: the
    /// maps draw the grids on a plain background and fetch nothing.
    pub tile_url: Option<String>,
    pub tile_attribution: String,
    /// How often the grid index looks at the change log.
    pub change_poll: Duration,
    /// Idle and absolute limits of web sessions.
    pub session_policy: store::auth::SessionPolicy,
    /// Mark cookies Secure even without an `X-Forwarded-Proto: https` proxy header.
    pub secure_cookies: bool,
    /// Audit successful reads of personal records. Off only to measure the audit's cost.
    pub audit_reads: bool,
    /// The largest photo accepted, in bytes.
    pub photo_max_bytes: usize,
    /// The largest spreadsheet a register import accepts by upload, in bytes.
    pub import_max_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tile_url: None,
            tile_attribution: String::new(),
            change_poll: Duration::from_secs(2),
            session_policy: store::auth::SessionPolicy::default(),
            secure_cookies: false,
            audit_reads: true,
            photo_max_bytes: 10 * 1024 * 1024,
            import_max_bytes: 100 * 1024 * 1024,
        }
    }
}

/// What every handler shares.
/// What every handler shares. Cloned for each request (axum's `State`), so it is one `Arc`:
/// a clone is one atomic increment, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

pub struct AppStateInner {
    pub db: Db,
    pub grids: Arc<GridFollower>,
    /// The register's search index (built at start, kept current from the change log).
    pub search: Arc<SearchIndex>,
    pub config: Arc<ServerConfig>,
    /// Public reports per client (no captcha: a limit instead).
    pub report_limiter: Arc<ui_public::ClientLimiter>,
    /// Public receipt lookups per client (status page, API, Open311).
    pub lookup_limiter: Arc<ui_public::ClientLimiter>,
    /// The register imports this process runs (progress kept in memory).
    pub imports: Arc<register_import::ImportJobs>,
}

impl AppState {
    /// Build the state: the grid index is loaded from the store.
    pub async fn new(db: Db, config: ServerConfig) -> Result<AppState, store::StoreError> {
        let grids = Arc::new(GridFollower::start(&db).await?);
        let started = std::time::Instant::now();
        let search = Arc::new(SearchIndex::start(&db).await?);
        let stats = search.snapshot().stats();
        tracing::info!(persons = stats.persons, houses = stats.houses, organisations = stats.organisations, bytes = stats.bytes,
            ms = started.elapsed().as_millis() as u64, "register search index built");
        let rollup = db.build_missing_kpis().await?;
        if rollup > 0 {
            tracing::info!(rows = rollup, "key-figure rollup built from the incidents");
        }
        let clocks = db.fill_missing_clocks().await?;
        if clocks > 0 {
            tracing::info!(incidents = clocks, "open incidents given their stored time limits");
        }
        db.set_audit_reads(config.audit_reads);
        if !config.audit_reads {
            tracing::warn!("audit_reads is off: reads of personal records leave no audit row (for measurements only)");
        }
        Ok(AppState(Arc::new(AppStateInner { db, grids, search, config: Arc::new(config), report_limiter: Arc::new(ui_public::ClientLimiter::reports()),
            lookup_limiter: Arc::new(ui_public::ClientLimiter::lookups()),
            imports: Arc::new(register_import::ImportJobs::default()),
        })))
    }

    /// Keep the grid index current from the change log, until the process ends.
    pub fn spawn_follower(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(state.config.change_poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match state.grids.refresh(&state.db).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(changes = n, "grid index refreshed"),
                    Err(e) => tracing::warn!(error = %e, "grid index refresh failed; will retry"),
                }
                match state.search.refresh(&state.db).await {
                    Ok(_) if state.search.wants_compaction() && !state.search.is_rebuilding() => {
                        // In its own task: the grid index keeps following meanwhile.
                        let (search, db) = (state.search.clone(), state.db.clone());
                        tokio::spawn(async move {
                            if let Err(e) = search.compact(&db).await {
                                tracing::warn!(error = %e, "search index rebuild failed; will retry");
                            }
                        });
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "search index refresh failed; will retry"),
                }
            }
        })
    }
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .merge(api::routes())
        .merge(accounts::routes())
        .merge(catalogue::routes())
        .merge(incidents::routes())
        .merge(inbox::routes())
        .merge(open311::routes())
        .merge(kpis::routes())
        .merge(register::routes())
        .merge(search::routes())
        .merge(incidents::photo_routes(state.config.photo_max_bytes))
        .merge(ui_mobile::upload_routes(state.config.photo_max_bytes))
        .merge(register_import::routes(state.config.import_max_bytes))
        .merge(ui::routes())
        .merge(assets::routes())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        // Layers run bottom-up: the operation id first, then the caller.
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::middleware))
        .layer(axum::middleware::from_fn(opid::middleware))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn fallback(uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/api/") {
        ApiError::not_found("route_not_found", format!("no API route {}", uri.path())).into_response()
    } else if uri.path().starts_with("/open311/") {
        open311::not_found(uri.path())
    } else {
        ui::not_found_page(uri.path()).into_response()
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
}

/// Bind, report the address, and serve until Ctrl-C or SIGTERM.
pub async fn serve(state: AppState, listen: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let follower = state.spawn_follower();
    let watcher = inbox::spawn(state.clone(), Arc::new(inbox::LogOutbound));
    let app = router(state);
    tracing::info!(%addr, "civicgrid is serving");
    println!("civicgrid is serving at http://{addr}/");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    follower.abort();
    watcher.abort();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
