//! Open311 GeoReport v2 (<http://wiki.open311.org/GeoReport_v2>) for residents: the second
//! way in, beside the web form (`ui_public.rs`), with the same rules.
//!
//! - No login: `api_key` is accepted and ignored. Reports share the web form's per-client
//!   limit (`AppState::report_limiter`).
//! - Data minimisation: `email`, `first_name`, `last_name`, `device_id` and `account_id`
//!   are accepted and never stored. `phone` is optional and stored like the web form's
//!   (shown masked to staff). `media_url` is ignored: the server never fetches anything
//!   at run time, and the answer's `service_notice` says the photo was not received.
//! - A request is known to the public only by its receipt code (`service_request_id`),
//!   never by the internal id. Its view shows what the receipt page shows: state, steps'
//!   times, the category; never the phone, the description or the exact point. `address`
//!   is the area the report was placed in (district → grid), not the text the resident
//!   typed, which may name a home.
//! - `GET requests` lists nothing without `service_request_id`: there is no public list of
//!   residents' reports.
//!
//! JSON and XML are served (`.json` / `.xml`); XML follows the spec's element names, JSON
//! its Spark mapping. Errors are the spec's list `[{"code", "description"}]` with the HTTP
//! status in `code`.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::Phone;
use domain::catalogue::Category;
use domain::incident::State as IncidentState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::StoreError;
use store::audit::Actor;
use store::incidents::{Incident, NewIncident, Source};
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::auth::MaybeCaller;

/// The specification this endpoint implements (the discovery document names it).
pub const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";
/// When the service list's shape last changed (the discovery document's `changeset`).
pub const CHANGESET: &str = "2026-11-25T00:00:00+08:00";
/// The longest description kept (the same limit as every other way in).
pub const MAX_DESCRIPTION_CHARS: usize = store::incidents::MAX_DESCRIPTION_CHARS;
pub const MAX_ADDRESS_CHARS: usize = 500;
/// How many receipts one `GET requests` may ask about.
pub const MAX_IDS_PER_QUERY: usize = 20;

#[derive(OpenApi)]
#[openapi(
    paths(discovery, services, service_definition, create_request, list_requests, get_request),
    components(schemas(Open311Discovery, Open311Endpoint, Open311Service, Open311ServiceDefinition, Open311NewRequest, Open311Created, Open311Request, Open311Error)),
    tags((name = "open311", description = "Open311 GeoReport v2 for residents: no login, limited per client. Each route also answers XML with the .xml suffix. Errors are the spec's list [{code, description}], not problem documents.")),
)]
pub struct Open311Doc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/open311/v2/discovery.json", get(discovery))
        .route("/open311/v2/discovery.xml", get(discovery))
        .route("/open311/v2/services.json", get(services))
        .route("/open311/v2/services.xml", get(services))
        .route("/open311/v2/services/{file}", get(service_definition))
        .route("/open311/v2/requests.json", get(list_requests).post(create_request))
        .route("/open311/v2/requests.xml", get(list_requests).post(create_request))
        .route("/open311/v2/requests/{file}", get(get_request))
}

// ---------------------------------------------------------------------------------------
// Formats and errors

/// The answer's format, from the path's suffix (`.xml`, else JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    fn of(path: &str) -> Format {
        if path.ends_with(".xml") { Format::Xml } else { Format::Json }
    }

    /// Split `C0101.json` into `C0101` and its format; None for any other suffix.
    fn split(file: &str) -> Option<(&str, Format)> {
        if let Some(stem) = file.strip_suffix(".json") {
            Some((stem, Format::Json))
        } else {
            file.strip_suffix(".xml").map(|stem| (stem, Format::Xml))
        }
    }

    fn error(self, status: StatusCode, description: impl Into<String>) -> Open311Failure {
        Open311Failure { format: self, status, errors: vec![(status.as_u16(), description.into())] }
    }

    fn store(self, e: StoreError) -> Open311Failure {
        match &e {
            StoreError::NotFound(_) => self.error(StatusCode::NOT_FOUND, "未找到"),
            StoreError::Invalid { message, .. } => self.error(StatusCode::BAD_REQUEST, message.clone()),
            _ => {
                tracing::error!(error = %e, "store error in open311");
                self.error(StatusCode::INTERNAL_SERVER_ERROR, "服务暂时无法处理请求，请稍后再试")
            }
        }
    }

    /// Render a document: `root` names the XML root element (JSON has none).
    fn render(self, status: StatusCode, root: &str, value: &Value) -> Response {
        match self {
            Format::Json => {
                let body = serde_json::to_string(value).unwrap_or_default();
                (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
            }
            Format::Xml => {
                let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
                xml_element(&mut out, root, value);
                out.push('\n');
                (status, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], out).into_response()
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Format {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Format::of(parts.uri.path()))
    }
}

/// A refused request, answered as the spec's error list.
#[derive(Debug)]
pub struct Open311Failure {
    format: Format,
    status: StatusCode,
    /// (code, description); the code is the HTTP status of that error.
    errors: Vec<(u16, String)>,
}

/// One error of the spec's error list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Open311Error {
    /// The HTTP status of the error: 400, 404, 429 …
    #[schema(example = 400)]
    pub code: u16,
    /// What went wrong, in Chinese, naming the field.
    #[schema(example = "缺少 description：请描述问题")]
    pub description: String,
}

impl IntoResponse for Open311Failure {
    fn into_response(self) -> Response {
        let list: Vec<Open311Error> = self.errors.into_iter().map(|(code, description)| Open311Error { code, description }).collect();
        let mut res = self.format.render(self.status, "errors", &serde_json::to_value(list).unwrap_or_default());
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            let window = (crate::ui_public::WINDOW_MS / 1000).to_string();
            if let Ok(v) = HeaderValue::from_str(&window) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

/// An Open311 404 for a path under `/open311/` that names no resource.
pub fn not_found(path: &str) -> Response {
    Format::of(path).error(StatusCode::NOT_FOUND, format!("没有这个 Open311 资源：{path}")).into_response()
}

/// The element that holds each item of a list, by the list's element name.
fn item_name(list: &str) -> &'static str {
    match list {
        "services" => "service",
        "service_requests" => "request",
        "errors" => "error",
        "endpoints" => "endpoint",
        "formats" => "format",
        "attributes" => "attribute",
        _ => "item",
    }
}

fn xml_escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry are dropped.
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// The XML of a JSON value (the Spark convention read backwards): objects become elements
/// named by their keys, arrays repeat an item element, null is an empty element.
fn xml_element(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Null => {
            let _ = write!(out, "<{name}/>");
        }
        Value::Array(items) => {
            let _ = write!(out, "<{name}>");
            for item in items {
                xml_element(out, item_name(name), item);
            }
            let _ = write!(out, "</{name}>");
        }
        Value::Object(map) => {
            let _ = write!(out, "<{name}>");
            for (k, v) in map {
                xml_element(out, k, v);
            }
            let _ = write!(out, "</{name}>");
        }
        Value::String(s) => {
            let _ = write!(out, "<{name}>");
            xml_escape(out, s);
            let _ = write!(out, "</{name}>");
        }
        Value::Bool(_) | Value::Number(_) => {
            let _ = write!(out, "<{name}>{v}</{name}>");
        }
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// An ISO 8601 time in Asia/Shanghai: `2026-11-25T17:24:58+08:00`.
pub fn iso_shanghai(ms: i64) -> String {
    format!("{}+08:00", domain::time::format_shanghai(ms).replacen(' ', "T", 1))
}

// ---------------------------------------------------------------------------------------
// Discovery and services

/// One endpoint of the discovery document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Open311Endpoint {
    #[schema(example = "http://wiki.open311.org/GeoReport_v2")]
    pub specification: String,
    /// The endpoint's base URL (from the request's Host).
    #[schema(example = "https://grid.example.gov.cn/open311/v2")]
    pub url: String,
    pub changeset: String,
    /// `production`
    #[serde(rename = "type")]
    pub kind: String,
    /// `application/json`, `text/xml`
    pub formats: Vec<String>,
}

/// The service discovery document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Open311Discovery {
    pub changeset: String,
    pub contact: String,
    pub key_service: String,
    pub endpoints: Vec<Open311Endpoint>,
}

/// Where this endpoint lives: scheme and host from the request, when it names a host.
fn base_url(headers: &HeaderMap, state: &AppState) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)));
    match host {
        Some(h) => format!("{}://{h}/open311/v2", if crate::auth::is_tls(headers, state) { "https" } else { "http" }),
        None => "/open311/v2".to_string(),
    }
}

/// The service discovery document (Open311 Service Discovery).
#[utoipa::path(get, path = "/open311/v2/discovery.json", tag = "open311", operation_id = "open311Discovery",
    responses((status = 200, body = Open311Discovery)),
    security(()))]
pub async fn discovery(State(state): State<AppState>, fmt: Format, headers: HeaderMap) -> Response {
    let doc = Open311Discovery {
        changeset: CHANGESET.into(),
        contact: "网格化管理指挥中心。紧急情况请拨打 110、119、120；非紧急诉求也可拨打 12345 热线。".into(),
        key_service: "无需 API key：居民上报不用登录，每个客户端每 10 分钟最多上报 5 件。".into(),
        endpoints: vec![Open311Endpoint {
            specification: SPECIFICATION.into(),
            url: base_url(&headers, &state),
            changeset: CHANGESET.into(),
            kind: "production".into(),
            formats: vec!["application/json".into(), "text/xml".into()],
        }],
    };
    fmt.render(StatusCode::OK, "discovery", &to_value(&doc))
}

/// A service: a second-level category of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct Open311Service {
    /// The category code.
    #[schema(example = "C0101")]
    pub service_code: String,
    #[schema(example = "上水井盖")]
    pub service_name: String,
    #[schema(example = "部件 · 公用设施 · 上水井盖，默认由区水务局处置")]
    pub description: String,
    /// Always false: no service needs more fields than the standard ones.
    pub metadata: bool,
    /// Always `realtime`: the receipt comes back at once.
    #[serde(rename = "type")]
    #[schema(example = "realtime")]
    pub kind: String,
    /// 部件 or 事件.
    #[schema(example = "部件")]
    pub keywords: String,
    /// The top-level category's name.
    #[schema(example = "公用设施")]
    pub group: String,
}

fn service_list(cats: &[Category], departments: &[domain::catalogue::Department]) -> Vec<Open311Service> {
    let name_of = |code: &str| cats.iter().find(|c| c.code == code).map(|c| c.name.clone()).unwrap_or_default();
    cats.iter()
        .filter(|c| c.parent.is_some())
        .map(|c| {
            let group = name_of(c.parent.as_deref().unwrap_or(""));
            let dept = c.department.as_deref().and_then(|d| departments.iter().find(|x| x.code == d)).map(|d| d.name.as_str());
            let mut description = format!("{} · {} · {}", c.kind.name_zh(), group, c.name);
            if let Some(d) = dept {
                let _ = write!(description, "，默认由{d}处置");
            }
            Open311Service {
                service_code: c.code.clone(),
                service_name: c.name.clone(),
                description,
                metadata: false,
                kind: "realtime".into(),
                keywords: c.kind.name_zh().into(),
                group,
            }
        })
        .collect()
}

/// The services residents may report: the catalogue's second-level categories.
#[utoipa::path(get, path = "/open311/v2/services.json", tag = "open311", operation_id = "open311Services",
    responses((status = 200, body = [Open311Service])),
    security(()))]
pub async fn services(State(state): State<AppState>, fmt: Format) -> Result<Response, Open311Failure> {
    let cats = state.db.categories().await.map_err(|e| fmt.store(e))?;
    let depts = state.db.departments().await.map_err(|e| fmt.store(e))?;
    Ok(fmt.render(StatusCode::OK, "services", &to_value(&service_list(&cats, &depts))))
}

/// A service's definition. No service has extra attributes, so the list is empty.
#[derive(Debug, Serialize, ToSchema)]
pub struct Open311ServiceDefinition {
    #[schema(example = "C0101")]
    pub service_code: String,
    #[schema(value_type = Vec<Object>)]
    pub attributes: Vec<Value>,
}

/// A service's definition (its extra attributes: none).
#[utoipa::path(get, path = "/open311/v2/services/{service_code}.json", tag = "open311", operation_id = "open311ServiceDefinition",
    params(("service_code" = String, Path, example = "C0101")),
    responses((status = 200, body = Open311ServiceDefinition), (status = 404, description = "No such service", body = [Open311Error])),
    security(()))]
pub async fn service_definition(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, Open311Failure> {
    let Some((code, fmt)) = Format::split(&file) else {
        return Err(Format::Json.error(StatusCode::NOT_FOUND, "请以 .json 或 .xml 结尾"));
    };
    let cats = state.db.categories().await.map_err(|e| fmt.store(e))?;
    if !cats.iter().any(|c| c.code == code && c.parent.is_some()) {
        return Err(fmt.error(StatusCode::NOT_FOUND, format!("未知的 service_code：{code}")));
    }
    let def = Open311ServiceDefinition { service_code: code.to_string(), attributes: Vec::new() };
    Ok(fmt.render(StatusCode::OK, "service_definition", &to_value(&def)))
}

// ---------------------------------------------------------------------------------------
// POST a request

/// A new service request, form-encoded. Fields not listed (jurisdiction_id, address_id,
/// device_id, account_id, attribute[…]) are accepted and ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Open311NewRequest {
    /// Ignored: reporting needs no key.
    pub api_key: Option<String>,
    /// From GET services.
    #[schema(example = "C0101")]
    pub service_code: Option<String>,
    /// WGS-84; send with long, or send address_string.
    #[schema(example = "27.24")]
    pub lat: Option<String>,
    #[schema(example = "111.46")]
    pub long: Option<String>,
    /// Where the problem is, in words (up to 500 characters).
    pub address_string: Option<String>,
    /// Required here (the spec makes it optional): what the problem is, up to 4000 characters.
    pub description: Option<String>,
    /// A mainland mobile number for a callback (optional; +86 is accepted). Stored, shown masked.
    pub phone: Option<String>,
    /// Accepted, never stored.
    pub email: Option<String>,
    /// Accepted, never stored.
    pub first_name: Option<String>,
    /// Accepted, never stored.
    pub last_name: Option<String>,
    /// Ignored: the server never fetches media.
    pub media_url: Option<String>,
}

/// The form, with a malformed body answered as an Open311 error.
pub struct NewRequestForm(pub Open311NewRequest);

impl<S: Send + Sync> FromRequest<S> for NewRequestForm {
    type Rejection = Open311Failure;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let fmt = Format::of(req.uri().path());
        axum::Form::<Open311NewRequest>::from_request(req, state).await.map(|f| NewRequestForm(f.0)).map_err(|e| {
            tracing::debug!(error = %e.body_text(), "open311 form refused");
            fmt.error(StatusCode::BAD_REQUEST, "请求体须为 application/x-www-form-urlencoded 表单，每个字段最多出现一次")
        })
    }
}

/// The answer to a POST: the receipt code.
#[derive(Debug, Serialize, ToSchema)]
pub struct Open311Created {
    /// The receipt code: follow the request with it.
    #[schema(example = "20261125-7KQ3MZ")]
    pub service_request_id: String,
    pub service_notice: String,
    /// Always null: residents have no accounts.
    pub account_id: Option<String>,
}

fn filled(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A mainland mobile number, with an optional +86 / 0086 prefix.
fn parse_phone(raw: &str) -> Option<Phone> {
    let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    let national = compact.strip_prefix("+86").or_else(|| compact.strip_prefix("0086")).unwrap_or(&compact);
    Phone::parse(national).ok()
}

/// What a valid form becomes.
struct Checked {
    category: String,
    description: String,
    point: Option<(f64, f64)>,
    address: Option<String>,
    phone: Option<Phone>,
}

/// Check every field; every problem is listed, 400 before 404.
fn check(f: &Open311NewRequest, cats: &[Category], fmt: Format) -> Result<Checked, Open311Failure> {
    let mut errors: Vec<(u16, String)> = Vec::new();
    let mut bad = |status: StatusCode, text: String| errors.push((status.as_u16(), text));
    let category = match filled(&f.service_code) {
        None => {
            bad(StatusCode::BAD_REQUEST, "缺少 service_code：请从 services.json 中选择服务类别".into());
            String::new()
        }
        Some(code) if !cats.iter().any(|c| c.code == code && c.parent.is_some()) => {
            bad(StatusCode::NOT_FOUND, format!("未知的 service_code：{code}（见 services.json）"));
            String::new()
        }
        Some(code) => code.to_string(),
    };
    let description = match filled(&f.description) {
        None => {
            bad(StatusCode::BAD_REQUEST, "缺少 description：请描述问题".into());
            String::new()
        }
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => {
            bad(StatusCode::BAD_REQUEST, format!("description 超过 {MAX_DESCRIPTION_CHARS} 个字"));
            String::new()
        }
        Some(d) => d.to_string(),
    };
    let point = match (filled(&f.lat), filled(&f.long)) {
        (None, None) => None,
        (Some(lat), Some(lon)) => match domain::error::parse_point(lat, lon) {
            Ok(p) => Some(p),
            Err(domain::DomainError::InvalidLatitude(_)) => {
                bad(StatusCode::BAD_REQUEST, format!("lat 不是有效的纬度（WGS-84，-90 到 90）：{lat}"));
                None
            }
            Err(_) => {
                bad(StatusCode::BAD_REQUEST, format!("long 不是有效的经度（WGS-84，-180 到 180）：{lon}"));
                None
            }
        },
        _ => {
            bad(StatusCode::BAD_REQUEST, "lat 与 long 须同时提供".into());
            None
        }
    };
    let address = match filled(&f.address_string) {
        Some(a) if a.chars().count() > MAX_ADDRESS_CHARS => {
            bad(StatusCode::BAD_REQUEST, format!("address_string 超过 {MAX_ADDRESS_CHARS} 个字"));
            None
        }
        a => a.map(str::to_string),
    };
    if filled(&f.lat).is_none() && filled(&f.long).is_none() && filled(&f.address_string).is_none() {
        bad(StatusCode::BAD_REQUEST, "缺少位置：请提供 lat 和 long，或 address_string（不支持 address_id）".into());
    }
    let phone = match filled(&f.phone) {
        None => None,
        Some(p) => {
            let parsed = parse_phone(p);
            if parsed.is_none() {
                bad(StatusCode::BAD_REQUEST, "phone 须为 11 位手机号码（可带 +86），也可以不填".into());
            }
            parsed
        }
    };
    if errors.is_empty() {
        return Ok(Checked { category, description, point, address, phone });
    }
    let status = if errors.iter().any(|(c, _)| *c == 400) { StatusCode::BAD_REQUEST } else { StatusCode::NOT_FOUND };
    errors.sort_by_key(|(c, _)| *c);
    Err(Open311Failure { format: fmt, status, errors })
}

/// Report a problem. No login; at most 5 reports per client in 10 minutes (shared with
/// the web form). Names and email are accepted but not stored; media_url is ignored.
#[utoipa::path(post, path = "/open311/v2/requests.json", tag = "open311", operation_id = "open311CreateRequest",
    request_body(content = Open311NewRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Created: the receipt is the service_request_id", body = [Open311Created]),
        (status = 400, description = "A field is missing or invalid; nothing is stored", body = [Open311Error]),
        (status = 404, description = "Unknown service_code; nothing is stored", body = [Open311Error]),
        (status = 429, description = "Too many reports from this client; see Retry-After", body = [Open311Error]),
    ),
    security(()))]
pub async fn create_request(State(state): State<AppState>, MaybeCaller(r): MaybeCaller, fmt: Format, NewRequestForm(f): NewRequestForm) -> Result<Response, Open311Failure> {
    let cats = state.db.categories().await.map_err(|e| fmt.store(e))?;
    let ok = check(&f, &cats, fmt)?;
    if !state.report_limiter.allow(&r.client_addr, state.db.now_ms()) {
        return Err(fmt.error(StatusCode::TOO_MANY_REQUESTS, "提交过于频繁：每个客户端每 10 分钟最多上报 5 件，请稍后再试"));
    }
    let grid = ok.point.and_then(|(lat, lon)| state.grids.snapshot().locate_grid(lon, lat).cloned());
    let new = NewIncident {
        category: ok.category,
        description: ok.description,
        point: ok.point,
        address: ok.address,
        source: Source::Resident,
        grid,
        reporter_phone: ok.phone,
    };
    let actor = Actor::anonymous("open311", &r.operation_id, &r.client_addr);
    let (inc, _) = state.db.create_incident(&actor, None, new, None).await.map_err(|e| fmt.store(e))?;
    let mut notice = format!("已受理，回执码 {}。请凭回执码查询办理进度。", inc.receipt);
    if filled(&f.media_url).is_some() {
        notice.push_str("本平台不从外部链接下载照片，media_url 未被接收。");
    }
    let created = vec![Open311Created { service_request_id: inc.receipt, service_notice: notice, account_id: None }];
    Ok(fmt.render(StatusCode::OK, "service_requests", &to_value(&created)))
}

// ---------------------------------------------------------------------------------------
// GET requests

/// A service request as the public sees it: no phone, no description, no exact point.
#[derive(Debug, Serialize, ToSchema)]
pub struct Open311Request {
    /// The receipt code asked about.
    #[schema(example = "20261125-7KQ3MZ")]
    pub service_request_id: String,
    /// `open` while work is owed (also when shelved 挂账); `closed` when closed, evaluated,
    /// rejected (不予立案) or voided.
    #[schema(example = "open")]
    pub status: String,
    /// The state in Chinese and what it means.
    #[schema(example = "待立案：已收到上报，等待立案审核。")]
    pub status_notes: String,
    pub service_name: String,
    pub service_code: String,
    /// The department (or grid) the work was dispatched to; null before dispatch.
    pub agency_responsible: Option<String>,
    #[schema(example = "2026-11-25T17:24:58+08:00")]
    pub requested_datetime: String,
    #[schema(example = "2026-11-25T17:24:58+08:00")]
    pub updated_datetime: String,
    /// The area the report was placed in (district → grid), not the address typed.
    #[schema(example = "大祥区城南街道城南社区第三网格")]
    pub address: Option<String>,
}

/// `open` or `closed` for a state of the loop.
pub fn status_of(s: IncidentState) -> &'static str {
    match s {
        IncidentState::Closed | IncidentState::Evaluated | IncidentState::Rejected | IncidentState::Voided => "closed",
        // Shelved (挂账) is not resolved; a merged duplicate is worked in the one it joined.
        _ => "open",
    }
}

fn state_note(s: IncidentState) -> &'static str {
    match s {
        IncidentState::Reported => "已收到上报，等待立案审核。",
        IncidentState::Filed => "已立案，等待派遣。",
        IncidentState::Dispatched => "已派遣至责任单位，等待接收。",
        IncidentState::InProgress => "责任单位正在处置。",
        IncidentState::Handled => "已处置，等待网格员现场核查。",
        IncidentState::Verified => "现场核查通过，等待结案。",
        IncidentState::Closed => "已结案。",
        IncidentState::Evaluated => "已结案，并已评价。",
        IncidentState::Rejected => "经核实不予立案。",
        IncidentState::Merged => "已与反映同一问题的其他上报合并办理。",
        IncidentState::Shelved => "已挂账，列入长期跟踪办理。",
        IncidentState::Voided => "已作废。",
    }
}

/// What a request view needs besides the incident, read once per request.
struct Lookup {
    cats: Vec<Category>,
    departments: Vec<domain::catalogue::Department>,
}

impl Lookup {
    async fn load(state: &AppState, fmt: Format) -> Result<Lookup, Open311Failure> {
        Ok(Lookup { cats: state.db.categories().await.map_err(|e| fmt.store(e))?, departments: state.db.departments().await.map_err(|e| fmt.store(e))? })
    }
}

/// An area's name with its ancestors', general first, without repeating a name the next
/// one already starts with (a grid's name carries its community's).
async fn area_label(state: &AppState, code: &domain::AreaCode) -> Result<Option<String>, StoreError> {
    let mut names = Vec::new();
    for c in code.ancestry().iter().chain(std::iter::once(code)) {
        if let Some(a) = state.db.area(c).await? {
            names.push(a.name);
        }
    }
    let mut label = String::new();
    for (i, n) in names.iter().enumerate() {
        if names.get(i + 1).is_some_and(|next| next.starts_with(n.as_str())) {
            continue;
        }
        label.push_str(n);
    }
    Ok(Some(label).filter(|l| !l.is_empty()))
}

fn normalise_receipt(raw: &str) -> String {
    raw.trim().to_uppercase()
}

/// The public view of the request with this receipt, or None.
async fn view(state: &AppState, look: &Lookup, raw: &str) -> Result<Option<Open311Request>, StoreError> {
    let receipt = normalise_receipt(raw);
    if receipt.is_empty() || receipt.len() > 40 {
        return Ok(None);
    }
    let Some(inc): Option<Incident> = state.db.incident_by_receipt(&receipt).await? else { return Ok(None) };
    let state_name = inc.loop_.state.name_zh();
    let mut status_notes = format!("{state_name}：{}", state_note(inc.loop_.state));
    if inc.receipt != receipt {
        // The receipt's report was merged into another one; that one's progress is shown.
        status_notes = format!("{}{status_notes}", state_note(IncidentState::Merged));
    }
    let agency = match (&inc.department, &inc.assignee_area) {
        (Some(d), _) => Some(look.departments.iter().find(|x| &x.code == d).map(|x| x.name.clone()).unwrap_or_else(|| d.clone())),
        (None, Some(a)) => area_label(state, a).await?,
        (None, None) => None,
    };
    Ok(Some(Open311Request {
        service_request_id: receipt,
        status: status_of(inc.loop_.state).into(),
        status_notes,
        service_name: look.cats.iter().find(|c| c.code == inc.category).map(|c| c.name.clone()).unwrap_or_default(),
        service_code: inc.category.clone(),
        agency_responsible: agency,
        requested_datetime: iso_shanghai(inc.created_at),
        updated_datetime: iso_shanghai(inc.updated_at),
        address: area_label(state, &inc.area).await?,
    }))
}

/// Each receipt looked up counts against the client's public lookups.
fn lookups_allowed(state: &AppState, client: &str, n: usize, fmt: Format) -> Result<(), Open311Failure> {
    if state.lookup_limiter.allow_n(client, state.db.now_ms(), n) {
        Ok(())
    } else {
        Err(fmt.error(StatusCode::TOO_MANY_REQUESTS, "查询过于频繁：每个客户端每分钟最多查询 60 个回执码，请稍后再试"))
    }
}

/// One request, by its receipt code.
#[utoipa::path(get, path = "/open311/v2/requests/{service_request_id}.json", tag = "open311", operation_id = "open311GetRequest",
    params(("service_request_id" = String, Path, description = "The receipt code", example = "20261125-7KQ3MZ")),
    responses(
        (status = 200, body = [Open311Request]),
        (status = 404, description = "No report has that receipt code", body = [Open311Error]),
        (status = 429, description = "More than 60 receipt lookups a minute from this client", body = [Open311Error]),
    ),
    security(()))]
pub async fn get_request(State(state): State<AppState>, MaybeCaller(r): MaybeCaller, Path(file): Path<String>) -> Result<Response, Open311Failure> {
    let Some((id, fmt)) = Format::split(&file) else {
        return Err(Format::Json.error(StatusCode::NOT_FOUND, "请以 .json 或 .xml 结尾"));
    };
    lookups_allowed(&state, &r.client_addr, 1, fmt)?;
    let look = Lookup::load(&state, fmt).await?;
    let found = view(&state, &look, id).await.map_err(|e| fmt.store(e))?;
    let Some(v) = found else {
        return Err(fmt.error(StatusCode::NOT_FOUND, format!("没有回执码为 {} 的上报", normalise_receipt(id))));
    };
    Ok(fmt.render(StatusCode::OK, "service_requests", &to_value(&vec![v])))
}

/// Several requests, by their receipt codes (comma-separated, at most 20). Unknown codes
/// are left out. Without `service_request_id` nothing is listed: residents' reports are
/// not published as a list.
#[utoipa::path(get, path = "/open311/v2/requests.json", tag = "open311", operation_id = "open311ListRequests",
    params(("service_request_id" = String, Query, description = "Receipt codes, comma-separated (required here)", example = "20261125-7KQ3MZ,20261125-AB2CDE")),
    responses(
        (status = 200, body = [Open311Request]),
        (status = 400, description = "No service_request_id, or more than 20", body = [Open311Error]),
        (status = 429, description = "More than 60 receipt lookups a minute from this client (each receipt counts)", body = [Open311Error]),
    ),
    security(()))]
pub async fn list_requests(State(state): State<AppState>, MaybeCaller(r): MaybeCaller, fmt: Format, uri: Uri) -> Result<Response, Open311Failure> {
    let q = axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&uri)
        .map_err(|_| fmt.error(StatusCode::BAD_REQUEST, "查询参数格式不正确"))?;
    let Some(raw) = q.get("service_request_id").map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Err(fmt.error(
            StatusCode::BAD_REQUEST,
            "为保护居民隐私，不提供上报列表：请用 service_request_id 查询（多个回执码以逗号分隔）",
        ));
    };
    let mut ids: Vec<String> = Vec::new();
    for id in raw.split(',').map(normalise_receipt).filter(|s| !s.is_empty()) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > MAX_IDS_PER_QUERY {
        return Err(fmt.error(StatusCode::BAD_REQUEST, format!("一次最多查询 {MAX_IDS_PER_QUERY} 个回执码")));
    }
    lookups_allowed(&state, &r.client_addr, ids.len(), fmt)?;
    let look = Lookup::load(&state, fmt).await?;
    let mut out = Vec::new();
    for id in &ids {
        if let Some(v) = view(&state, &look, id).await.map_err(|e| fmt.store(e))? {
            out.push(v);
        }
    }
    Ok(fmt.render(StatusCode::OK, "service_requests", &to_value(&out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_8601_in_shanghai() {
        assert_eq!(iso_shanghai(0), "1970-01-01T08:00:00+08:00");
        assert_eq!(iso_shanghai(1_795_598_698_000), "2026-11-25T17:24:58+08:00");
    }

    #[test]
    fn xml_follows_the_spec_names_and_escapes() {
        let v = serde_json::json!([{"code": 400, "description": "a<b & \"c\"\u{1}", "x": null}]);
        let mut out = String::new();
        xml_element(&mut out, "errors", &v);
        assert_eq!(out, "<errors><error><code>400</code><description>a&lt;b &amp; &quot;c&quot;</description><x/></error></errors>");
    }

    #[test]
    fn phones_take_a_country_prefix() {
        assert_eq!(parse_phone("+86 138-1234-5678").map(|p| p.as_str().to_string()).as_deref(), Some("13812345678"));
        assert_eq!(parse_phone("008613812345678").map(|p| p.as_str().to_string()).as_deref(), Some("13812345678"));
        assert!(parse_phone("+1 555 0100").is_none());
    }

    #[test]
    fn states_map_to_open_and_closed() {
        for s in IncidentState::ALL {
            let expected = if matches!(s, IncidentState::Closed | IncidentState::Evaluated | IncidentState::Rejected | IncidentState::Voided) { "closed" } else { "open" };
            assert_eq!(status_of(s), expected, "{s:?}");
        }
        assert_eq!(Format::split("C0101.xml"), Some(("C0101", Format::Xml)));
        assert_eq!(Format::split("C0101.json"), Some(("C0101", Format::Json)));
        assert_eq!(Format::split("C0101"), None);
    }
}
