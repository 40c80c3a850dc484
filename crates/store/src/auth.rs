//! Accounts, passwords (argon2id), web sessions, API tokens and login throttling.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use domain::access::{PasswordProblem, check_password};
use domain::audit::secret_digest;
use domain::{AreaCode, Credential, Principal, Role};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::{self, Actor};
use crate::db::Db;
use crate::StoreError;

/// An account as administrators see it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub area: AreaCode,
    pub department: Option<String>,
    pub active: bool,
    pub must_change_password: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub area: AreaCode,
    pub department: Option<String>,
    pub password: String,
    /// A temporary password: the account must change it at first login.
    pub temporary: bool,
}

/// Why a login did not succeed. The messages never say whether the username exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Wrong username or password (or a disabled account).
    Invalid,
    /// Too many failures: try again after this many seconds.
    Throttled { retry_after_s: i64 },
}

/// Login throttling: after this many failures for one name in the window, each further
/// attempt waits a growing delay (1 s, 2 s, 4 s … up to the window).
pub const THROTTLE_FAILURES: i64 = 5;
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;

/// Session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy { idle_ms: 30 * 60 * 1000, absolute_ms: 12 * 3600 * 1000 }
    }
}

/// Bearer tokens and account records read in the last moments, so that a busy API client
/// costs a database lookup every [`AUTH_CACHE_MS`] instead of one per request. Any change
/// to an account in this process (logout, a password change, disabling, a new role or
/// area) empties it at once; a change made by another server process takes effect here
/// within that time.
#[derive(Debug, Default)]
pub struct AuthCache {
    epoch: std::sync::atomic::AtomicU64,
    tokens: ShortMap<String, Principal>,
    accounts: ShortMap<i64, Account>,
}

pub const AUTH_CACHE_MS: i64 = 2000;
const AUTH_CACHE_MAX: usize = 10_000;

/// Values with the epoch and time they were read.
#[derive(Debug)]
struct ShortMap<K, V>(std::sync::RwLock<std::collections::HashMap<K, (V, u64, i64)>>);

impl<K, V> Default for ShortMap<K, V> {
    fn default() -> Self {
        ShortMap(std::sync::RwLock::new(std::collections::HashMap::new()))
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> ShortMap<K, V> {
    fn get(&self, k: &K, epoch: u64, now: i64) -> Option<V> {
        let map = self.0.read().ok()?;
        let (v, e, at) = map.get(k)?;
        (*e == epoch && now >= *at && now - at < AUTH_CACHE_MS).then(|| v.clone())
    }

    fn put(&self, k: K, v: V, epoch: u64, now: i64) {
        if let Ok(mut map) = self.0.write() {
            if map.len() >= AUTH_CACHE_MAX {
                map.clear();
            }
            map.insert(k, (v, epoch, now));
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.0.write() {
            map.clear();
        }
    }
}

impl AuthCache {
    fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Forget everything (called on every change to an account, its sessions or tokens).
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.tokens.clear();
        self.accounts.clear();
    }
}

/// A new web session: the cookie value and the form token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub csrf: String,
}

const ACCOUNT_COLUMNS: &str =
    "id, username, display_name, role, area_code, department, active, must_change_password, created_at, updated_at";

fn account(r: &AnyRow) -> Result<Account, StoreError> {
    let role: String = r.try_get("role")?;
    let area: String = r.try_get("area_code")?;
    Ok(Account {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: role.parse().map_err(|e| StoreError::Corrupt(format!("accounts.role: {e}")))?,
        area: AreaCode::parse(&area).map_err(|e| StoreError::Corrupt(format!("accounts.area_code: {e}")))?,
        department: r.try_get("department")?,
        active: r.try_get::<i64, _>("active")? != 0,
        must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A random secret: 32 bytes from the operating system, hex.
pub fn random_secret() -> Result<String, StoreError> {
    let mut b = [0u8; 32];
    getrandom_fill(&mut b)?;
    Ok(domain::audit::hex(&b))
}

fn getrandom_fill(b: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(b).map_err(|e| StoreError::Corrupt(format!("the operating system gave no randomness: {e}")))
}

/// Hash a password with argon2id and a fresh salt.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Corrupt(format!("password hashing failed: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// A hash of a password nobody has, checked when a username does not exist so that the
/// answer takes as long as for a real account.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("civicgrid decoy password, never valid").unwrap_or_default())
}

fn normalise_username(u: &str) -> String {
    u.trim().to_lowercase()
}

/// Usernames: 3 to 32 characters of a-z, 0-9, `.`, `_`, `-`.
pub fn check_username(u: &str) -> Result<String, StoreError> {
    let n = normalise_username(u);
    let ok = (3..=32).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(n)
    } else {
        Err(StoreError::Invalid {
            code: "invalid_username",
            message: format!("username {u:?} must be 3 to 32 characters: letters, digits, '.', '_' or '-'"),
        })
    }
}

fn password_error(p: PasswordProblem) -> StoreError {
    StoreError::Invalid { code: p.code(), message: p.to_string() }
}

/// A department named on an account must be one incidents can be dispatched to, or its
/// handlers would see nothing.
async fn check_department(tx: &mut sqlx::Transaction<'static, sqlx::Any>, department: Option<&str>) -> Result<(), StoreError> {
    let Some(d) = department.map(str::trim).filter(|d| !d.is_empty()) else { return Ok(()) };
    if sqlx::query("SELECT 1 FROM departments WHERE code = $1").bind(d).fetch_optional(&mut **tx).await?.is_none() {
        return Err(StoreError::Invalid {
            code: "unknown_department",
            message: format!("no department has code {d:?} (see GET /api/v1/departments)"),
        });
    }
    Ok(())
}

impl Db {
    /// Create an account (audited in the same transaction).
    pub async fn create_account(&self, actor: &Actor, a: NewAccount) -> Result<Account, StoreError> {
        let username = check_username(&a.username)?;
        check_password(&username, &a.password).map_err(password_error)?;
        if a.display_name.trim().is_empty() {
            return Err(StoreError::Invalid { code: "invalid_display_name", message: "the display name is empty".into() });
        }
        if a.role.needs_department() && a.department.as_deref().is_none_or(|d| d.trim().is_empty()) {
            return Err(StoreError::Invalid {
                code: "department_required",
                message: "a department handler needs a department".into(),
            });
        }
        let hash = hash_password(&a.password)?;
        let now = self.now_ms();
        let mut tx = self.write_tx().await?;
        if sqlx::query("SELECT 1 FROM areas WHERE code = $1").bind(a.area.as_str()).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::Invalid { code: "unknown_area", message: format!("no area has code {}", a.area) });
        }
        check_department(&mut tx, a.department.as_deref()).await?;
        if sqlx::query("SELECT 1 FROM accounts WHERE username = $1").bind(&username).fetch_optional(&mut *tx).await?.is_some() {
            return Err(StoreError::Conflict { code: "username_taken", message: format!("username {username} is taken") });
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO accounts (username, display_name, role, area_code, department, active, password_hash, must_change_password, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $8) RETURNING {ACCOUNT_COLUMNS}"
        )))
        .bind(&username)
        .bind(a.display_name.trim())
        .bind(a.role.as_str())
        .bind(a.area.as_str())
        .bind(a.department.as_deref().map(str::trim).filter(|d| !d.is_empty()))
        .bind(hash)
        .bind(i64::from(a.temporary))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let acc = account(&row)?;
        let detail = format!("role={} area={}", acc.role, acc.area);
        audit::append(self, &mut tx, actor.entry("account.create", "account", &acc.id.to_string(), "ok", &detail)).await?;
        tx.commit().await?;
        Ok(acc)
    }

    pub async fn account_by_id(&self, id: i64) -> Result<Option<Account>, StoreError> {
        let (epoch, now) = (self.auth_cache.epoch(), self.now_ms());
        if let Some(a) = self.auth_cache.accounts.get(&id, epoch, now) {
            return Ok(Some(a));
        }
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        let found = row.as_ref().map(account).transpose()?;
        if let Some(a) = &found {
            self.auth_cache.accounts.put(id, a.clone(), epoch, now);
        }
        Ok(found)
    }

    pub async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(normalise_username(username)).fetch_optional(&self.pool).await?;
        row.as_ref().map(account).transpose()
    }

    /// Accounts whose area lies under `within`, by username.
    pub(crate) async fn accounts_within(&self, within: &AreaCode) -> Result<Vec<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE area_code LIKE $1 ORDER BY username");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(format!("{within}%")).fetch_all(&self.pool).await?;
        rows.iter().map(account).collect()
    }

    /// Set a password. Every session but `keep_session` ends and every token is revoked.
    pub async fn set_password(
        &self,
        actor: &Actor,
        account_id: i64,
        password: &str,
        temporary: bool,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let acc = self.account_by_id(account_id).await?.ok_or_else(|| StoreError::NotFound(format!("account {account_id}")))?;
        check_password(&acc.username, password).map_err(password_error)?;
        let hash = hash_password(password)?;
        let now = self.now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE accounts SET password_hash = $1, must_change_password = $2, updated_at = $3 WHERE id = $4")
            .bind(hash)
            .bind(i64::from(temporary))
            .bind(now)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        end_sessions_and_tokens(&mut tx, account_id, now, keep_session).await?;
        let action = if temporary { "account.reset_password" } else { "account.change_password" };
        audit::append(self, &mut tx, actor.entry(action, "account", &account_id.to_string(), "ok", "")).await?;
        tx.commit().await?;
        self.auth_cache.invalidate();
        Ok(())
    }

    /// Enable or disable an account; disabling ends its sessions and revokes its tokens.
    pub async fn set_active(&self, actor: &Actor, account_id: i64, active: bool) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("UPDATE accounts SET active = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(active))
            .bind(now)
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("account {account_id}")));
        }
        if !active {
            end_sessions_and_tokens(&mut tx, account_id, now, None).await?;
        }
        let action = if active { "account.enable" } else { "account.disable" };
        audit::append(self, &mut tx, actor.entry(action, "account", &account_id.to_string(), "ok", "")).await?;
        tx.commit().await?;
        self.auth_cache.invalidate();
        Ok(())
    }

    /// Change an account's role, area or department.
    pub async fn update_account(
        &self,
        actor: &Actor,
        account_id: i64,
        role: Role,
        area: &AreaCode,
        department: Option<&str>,
    ) -> Result<Account, StoreError> {
        if role.needs_department() && department.is_none_or(|d| d.trim().is_empty()) {
            return Err(StoreError::Invalid { code: "department_required", message: "a department handler needs a department".into() });
        }
        let now = self.now_ms();
        let mut tx = self.write_tx().await?;
        if sqlx::query("SELECT 1 FROM areas WHERE code = $1").bind(area.as_str()).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::Invalid { code: "unknown_area", message: format!("no area has code {area}") });
        }
        check_department(&mut tx, department).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE accounts SET role = $1, area_code = $2, department = $3, updated_at = $4 WHERE id = $5 RETURNING {ACCOUNT_COLUMNS}"
        )))
        .bind(role.as_str())
        .bind(area.as_str())
        .bind(department.map(str::trim).filter(|d| !d.is_empty()))
        .bind(now)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("account {account_id}")))?;
        let acc = account(&row)?;
        // A new role or area must not ride on sessions opened under the old one.
        sqlx::query("UPDATE sessions SET ended_at = $1 WHERE account_id = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        let detail = format!("role={} area={}", acc.role, acc.area);
        audit::append(self, &mut tx, actor.entry("account.update", "account", &account_id.to_string(), "ok", &detail)).await?;
        tx.commit().await?;
        self.auth_cache.invalidate();
        Ok(acc)
    }

    /// Check a username and password, with throttling; every attempt is audited.
    pub async fn login(&self, actor: &Actor, username: &str, password: &str) -> Result<Account, LoginRefusal> {
        let name = normalise_username(username);
        let now = self.now_ms();
        let throttled = self.throttle_wait(&name, now).await.map_err(|_| LoginRefusal::Invalid)?;
        let claimed = Actor { name: name.clone(), ..actor.clone() };
        if let Some(retry_after_s) = throttled {
            let _ = self.audit(claimed.entry("login", "account", &name, "denied", "throttled")).await;
            return Err(LoginRefusal::Throttled { retry_after_s });
        }
        let found: Option<(Account, String)> = async {
            let sql = format!("SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE username = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&name).fetch_optional(&self.pool).await.ok()??;
            Some((account(&row).ok()?, row.try_get::<String, _>("password_hash").ok()?))
        }
        .await;
        // Hash a password whether or not the account exists, so timing tells nothing.
        let ok = match &found {
            Some((acc, hash)) => verify_password(password, hash) && acc.active,
            None => {
                let _ = verify_password(password, decoy_hash());
                false
            }
        };
        match (ok, found) {
            (true, Some((acc, _))) => {
                let result: Result<(), StoreError> = async {
                    let mut tx = self.write_tx().await?;
                    sqlx::query("DELETE FROM login_failures WHERE username = $1").bind(&name).execute(&mut *tx).await?;
                    let by = Actor { kind: "user".into(), id: Some(acc.id), ..claimed.clone() };
                    audit::append(self, &mut tx, by.entry("login", "account", &acc.id.to_string(), "ok", "")).await?;
                    tx.commit().await?;
                    Ok(())
                }
                .await;
                result.map_err(|_| LoginRefusal::Invalid)?;
                Ok(acc)
            }
            _ => {
                let result: Result<(), StoreError> = async {
                    let mut tx = self.write_tx().await?;
                    sqlx::query("INSERT INTO login_failures (username, at) VALUES ($1, $2)").bind(&name).bind(now).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM login_failures WHERE at < $1").bind(now - THROTTLE_WINDOW_MS).execute(&mut *tx).await?;
                    audit::append(self, &mut tx, claimed.entry("login", "account", &name, "failed", "")).await?;
                    tx.commit().await?;
                    Ok(())
                }
                .await;
                let _ = result;
                Err(LoginRefusal::Invalid)
            }
        }
    }

    /// Seconds to wait before another attempt for this name, if it is throttled.
    async fn throttle_wait(&self, name: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n, COALESCE(MAX(at), 0) AS last FROM login_failures WHERE username = $1 AND at >= $2")
            .bind(name)
            .bind(now - THROTTLE_WINDOW_MS)
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = row.try_get("n")?;
        let last: i64 = row.try_get("last")?;
        if n < THROTTLE_FAILURES {
            return Ok(None);
        }
        let delay_ms = (1000i64 << (n - THROTTLE_FAILURES).min(20)).min(THROTTLE_WINDOW_MS);
        let wait = last + delay_ms - now;
        Ok((wait > 0).then(|| (wait + 999) / 1000))
    }

    /// Open a web session for an account.
    pub async fn create_session(&self, account_id: i64, client_addr: &str) -> Result<NewSession, StoreError> {
        let id = random_secret()?;
        let csrf = random_secret()?;
        let now = self.now_ms();
        sqlx::query("INSERT INTO sessions (id_hash, account_id, csrf_token, created_at, last_seen_at, client_addr) VALUES ($1, $2, $3, $4, $4, $5)")
            .bind(secret_digest(&id))
            .bind(account_id)
            .bind(&csrf)
            .bind(now)
            .bind(client_addr)
            .execute(&self.pool)
            .await?;
        Ok(NewSession { id, csrf })
    }

    /// The account behind a session cookie, if the session is live; touches its idle timer.
    /// Returns the principal and the session's CSRF token.
    pub async fn session_principal(&self, id: &str, policy: SessionPolicy) -> Result<Option<(Principal, String)>, StoreError> {
        let now = self.now_ms();
        let digest = secret_digest(id);
        let sql = format!(
            "SELECT s.csrf_token, s.created_at AS s_created, s.last_seen_at, a.{} FROM sessions s JOIN accounts a ON a.id = s.account_id \
             WHERE s.id_hash = $1 AND s.ended_at IS NULL",
            ACCOUNT_COLUMNS.replace(", ", ", a.")
        );
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&digest).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let created: i64 = row.try_get("s_created")?;
        let seen: i64 = row.try_get("last_seen_at")?;
        let acc = account(&row)?;
        if !acc.active || now - seen > policy.idle_ms || now - created > policy.absolute_ms {
            sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id_hash = $2").bind(now).bind(&digest).execute(&self.pool).await?;
            return Ok(None);
        }
        // Touch at most once a minute: a busy user should not write on every request.
        if now - seen > 60_000 {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2").bind(now).bind(&digest).execute(&self.pool).await?;
        }
        let csrf: String = row.try_get("csrf_token")?;
        Ok(Some((principal(acc, Credential::Session(digest)), csrf)))
    }

    /// End a session (logout).
    pub async fn end_session(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL")
            .bind(self.now_ms())
            .bind(secret_digest(id))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Issue a bearer token (audited); the token itself is returned once and stored hashed.
    pub async fn create_token(&self, actor: &Actor, account_id: i64, label: &str, expires_at: Option<i64>) -> Result<String, StoreError> {
        let token = format!("cgt_{}", random_secret()?);
        let now = self.now_ms();
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("INSERT INTO api_tokens (account_id, token_hash, label, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(account_id)
            .bind(secret_digest(&token))
            .bind(label)
            .bind(now)
            .bind(expires_at)
            .fetch_one(&mut *tx)
            .await?;
        let id: i64 = row.try_get(0)?;
        audit::append(self, &mut tx, actor.entry("token.create", "account", &account_id.to_string(), "ok", &format!("token {id} {label}"))).await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The account behind a bearer token, if the token is live.
    pub async fn token_principal(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let now = self.now_ms();
        let digest = secret_digest(token);
        // Read the epoch before the lookup: a revocation during it makes the entry stale.
        let epoch = self.auth_cache.epoch();
        if let Some(p) = self.auth_cache.tokens.get(&digest, epoch, now) {
            return Ok(Some(p));
        }
        let sql = format!(
            "SELECT t.id AS token_id, t.last_used_at, a.{} FROM api_tokens t JOIN accounts a ON a.id = t.account_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
            ACCOUNT_COLUMNS.replace(", ", ", a.")
        );
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&digest).bind(now).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let acc = account(&row)?;
        if !acc.active {
            return Ok(None);
        }
        let token_id: i64 = row.try_get("token_id")?;
        let last: Option<i64> = row.try_get("last_used_at")?;
        if last.is_none_or(|l| now - l > 60_000) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2").bind(now).bind(token_id).execute(&self.pool).await?;
        }
        let p = principal(acc, Credential::Token(token_id));
        self.auth_cache.tokens.put(digest, p.clone(), epoch, now);
        Ok(Some(p))
    }

    /// Revoke one token (API logout).
    pub async fn revoke_token(&self, token_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(self.now_ms())
            .bind(token_id)
            .execute(&self.pool)
            .await?;
        self.auth_cache.invalidate();
        Ok(())
    }
}

/// End every session of an account but `keep` (a raw session id), and revoke its tokens.
async fn end_sessions_and_tokens(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: i64,
    now: i64,
    keep: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET ended_at = $1 WHERE account_id = $2 AND ended_at IS NULL AND id_hash <> $3")
        .bind(now)
        .bind(account_id)
        .bind(keep.map(secret_digest).unwrap_or_default())
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn principal(acc: Account, credential: Credential) -> Principal {
    Principal {
        account_id: acc.id,
        username: acc.username,
        display_name: acc.display_name,
        role: acc.role,
        area: acc.area,
        department: acc.department,
        credential,
        must_change_password: acc.must_change_password,
    }
}
