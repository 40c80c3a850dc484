//! Helpers shared by civicgrid's benches: each bench measures our code against a baseline
//! in the same run (PostGIS, pg_trgm, raw SQLite, a bare axum handler) and prints ratios.
//! Nothing here asserts a timing: the figures are reported, never tested.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// Where the PostgreSQL baseline lives unless `CIVICGRID_BENCH_POSTGRES` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL URL for baselines.
pub fn postgres_url() -> String {
    std::env::var("CIVICGRID_BENCH_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

/// True when the binary was started by `cargo bench` (which passes `--bench`); `cargo test
/// --benches` runs bench binaries without it, in criterion's quick test mode.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Connect to PostgreSQL and make a fresh schema for this bench, first on the search path
/// (with `public` after it, where extensions such as PostGIS keep their functions).
pub async fn fresh_schema(url: &str, schema: &str) -> Result<PgConnection, String> {
    let mut conn = PgConnection::connect(url).await.map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let ddl =
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema}, public;");
    sqlx::raw_sql(AssertSqlSafe(ddl))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("cannot create schema {schema}: {e}"))?;
    Ok(conn)
}

/// Drop a bench schema again.
pub async fn drop_schema(conn: &mut PgConnection, schema: &str) -> Result<(), String> {
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot drop schema {schema}: {e}"))
}

/// Criterion's output directory, found the way criterion finds it.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion")
}

/// Criterion's estimate of the time of one iteration: the one it prints (the slope when it
/// sampled linearly, else the mean), with its 95 % confidence bounds.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    pub ns: f64,
    pub lower_ns: f64,
    pub upper_ns: f64,
}

/// Read `<criterion>/<path>/new/estimates.json`, if criterion wrote it after `since` (so a
/// filtered run never reports a figure left over from an earlier one).
pub fn criterion_estimate(path: &str, since: SystemTime) -> Option<Estimate> {
    let file = criterion_dir().join(path).join("new/estimates.json");
    let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).ok()?).ok()?;
    let typical = if v.get("slope").is_some_and(|s| !s.is_null()) { &v["slope"] } else { &v["mean"] };
    Some(Estimate {
        ns: typical["point_estimate"].as_f64()?,
        lower_ns: typical["confidence_interval"]["lower_bound"].as_f64()?,
        upper_ns: typical["confidence_interval"]["upper_bound"].as_f64()?,
    })
}

/// The nearest-rank percentile (0–100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A whole number with thousands separators: 1234567 → "1,234,567".
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (k, ch) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

/// A ratio for humans: "12.3×", "1,234×".
pub fn times(r: f64) -> String {
    if r >= 100.0 { format!("{}×", thousands(r)) } else { format!("{r:.1}×") }
}

/// A latency for humans, in µs below a second.
pub fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(times(12.34), "12.3×");
        assert_eq!(times(1234.0), "1,234×");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&d, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&d, 95.0), Duration::from_micros(95));
        assert_eq!(percentile(&d[..1], 95.0), Duration::from_micros(1));
    }
}
