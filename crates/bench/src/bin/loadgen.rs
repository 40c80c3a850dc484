//! civicgrid's load generator: keep-alive HTTP/1.1 connections hammering one URL for a
//! while, reporting throughput and latency percentiles as one JSON line. It also serves
//! the baseline it is compared against: a bare axum JSON handler.
//!
//!   loadgen bare [--listen ADDR]
//!   loadgen run --url http://HOST:PORT/PATH [--header 'K: V']… [--connections N] [--seconds S] [--warmup S]
//!               [--method POST --body JSON] [--rate R]
//!   loadgen sqlite-raw --path FILE [--seconds S]
//!
//! `{seq}` in a header or the body becomes a number unique to each request (an
//! Idempotency-Key, say). Without `--rate` each connection sends its next request as soon
//! as the last is answered (closed loop: the most the server takes). With `--rate R` the
//! connections together send R requests a second on a fixed schedule, and latency counts
//! from when a request was due, not when it went out, so a stalled server cannot hide its
//! queue (no coordinated omission).
//!
//! `sqlite-raw` is the intake baseline: plain inserts into an SQLite file in WAL mode with
//! `synchronous = FULL`, one row per transaction and then 1,000 rows per transaction.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn usage() -> ! {
    eprintln!(
        "usage: loadgen bare [--listen ADDR] | loadgen run --url URL [--header 'K: V']... [--connections N] [--seconds S] [--warmup S] [--method M --body B] [--rate R] | loadgen sqlite-raw --path FILE [--seconds S]"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    match args.first().map(String::as_str) {
        Some("bare") => runtime.block_on(bare(flag("--listen").unwrap_or_else(|| "127.0.0.1:0".into()))),
        Some("run") => {
            let url = flag("--url").unwrap_or_else(|| usage());
            let headers: Vec<String> =
                args.windows(2).filter(|w| w[0] == "--header").map(|w| w[1].clone()).collect();
            let num = |name: &str, default: u64| flag(name).map(|v| v.parse().unwrap_or_else(|_| usage())).unwrap_or(default);
            let load = Load {
                connections: num("--connections", 32) as usize,
                duration: Duration::from_secs(num("--seconds", 10)),
                warmup: Duration::from_secs(num("--warmup", 2)),
                rate: flag("--rate").map(|v| v.parse::<f64>().unwrap_or_else(|_| usage())),
            };
            let t = target(&url, &headers, &flag("--method").unwrap_or_else(|| "GET".into()), flag("--body").as_deref());
            let report = runtime.block_on(run(&url, t, &load));
            println!("{report}");
        }
        Some("sqlite-raw") => {
            let path = flag("--path").unwrap_or_else(|| usage());
            let seconds = flag("--seconds").map(|v| v.parse().unwrap_or_else(|_| usage())).unwrap_or(5u64);
            println!("{}", runtime.block_on(sqlite_raw(&path, Duration::from_secs(seconds))));
        }
        _ => usage(),
    }
}

/// The baseline: the least an axum JSON endpoint can do.
async fn bare(listen: String) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/item/{id}",
        get(|axum::extract::Path(id): axum::extract::Path<i64>| async move {
            axum::Json(serde_json::json!({"id": id, "name": "网格员", "area": "430503001001001", "active": true}))
        }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
    println!("listening on {}", listener.local_addr().expect("addr"));
    axum::serve(listener, app).await.expect("serve");
}

struct Target {
    addr: String,
    /// The request, split where `{seq}` goes.
    parts: Vec<Vec<u8>>,
    seq: std::sync::atomic::AtomicU64,
}

impl Target {
    /// The next request's bytes.
    fn request(&self, out: &mut Vec<u8>) {
        out.clear();
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for (k, p) in self.parts.iter().enumerate() {
            if k > 0 {
                out.extend_from_slice(n.to_string().as_bytes());
            }
            out.extend_from_slice(p);
        }
    }
}

fn target(url: &str, headers: &[String], method: &str, body: Option<&str>) -> Target {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| usage());
    let (addr, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    // The body's length must not depend on {seq}: pad the number to 12 digits.
    let parts = match body {
        None => {
            head.push_str("\r\n");
            head.split("{seq}").map(|p| p.as_bytes().to_vec()).collect()
        }
        Some(b) => {
            let len = b.len() + b.matches("{seq}").count() * (12 - 5);
            head.push_str(&format!("content-type: application/json\r\ncontent-length: {len}\r\n\r\n{b}"));
            head.split("{seq}").map(|p| p.as_bytes().to_vec()).collect()
        }
    };
    Target { addr: addr.to_string(), parts, seq: std::sync::atomic::AtomicU64::new(100_000_000_000) }
}

/// Read one response; returns its status.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 16384];
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..total);
            return Ok(status);
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

struct Load {
    connections: usize,
    duration: Duration,
    warmup: Duration,
    /// Requests a second, all connections together (None: as fast as answered).
    rate: Option<f64>,
}

async fn run(url: &str, t: Target, load: &Load) -> serde_json::Value {
    let t = std::sync::Arc::new(t);
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    // With a rate, connection k sends at start + (k + i·n)/rate for i = 0, 1, 2 …
    let interval = load.rate.map(|r| Duration::from_secs_f64(load.connections as f64 / r));
    let mut tasks = Vec::new();
    for k in 0..load.connections {
        let t = t.clone();
        let first = load.rate.map(|r| start + Duration::from_secs_f64(k as f64 / r));
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let mut statuses: std::collections::BTreeMap<u16, u64> = Default::default();
            let mut errors = 0u64;
            let mut s = match TcpStream::connect(&t.addr).await {
                Ok(s) => s,
                Err(_) => return (latencies, statuses, 1),
            };
            let _ = s.set_nodelay(true);
            let mut buf = Vec::with_capacity(32 * 1024);
            let mut request = Vec::with_capacity(1024);
            let mut due = first;
            loop {
                // When this request counts from: its slot on the schedule, or now.
                let sent = match (due, interval) {
                    (Some(d), Some(i)) => {
                        tokio::time::sleep_until(d.into()).await;
                        due = Some(d + i);
                        d
                    }
                    _ => Instant::now(),
                };
                if sent >= end {
                    break;
                }
                t.request(&mut request);
                let result = async {
                    s.write_all(&request).await?;
                    read_response(&mut s, &mut buf).await
                }
                .await;
                match result {
                    Ok(status) => {
                        if sent >= measure_from {
                            latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                            *statuses.entry(status).or_default() += 1;
                        }
                    }
                    Err(_) => {
                        errors += 1;
                        buf.clear();
                        match TcpStream::connect(&t.addr).await {
                            Ok(n) => s = n,
                            Err(_) => break,
                        }
                    }
                }
            }
            (latencies, statuses, errors)
        }));
    }
    let mut all: Vec<u32> = Vec::new();
    let mut statuses: std::collections::BTreeMap<u16, u64> = Default::default();
    let mut errors = 0;
    for task in tasks {
        let (l, s, e) = task.await.expect("task");
        all.extend(l);
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
        errors += e;
    }
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0);
    serde_json::json!({
        "url": url,
        "connections": load.connections,
        "rate": load.rate,
        "seconds": load.duration.as_secs_f64(),
        "requests": all.len(),
        "rps": (all.len() as f64 / load.duration.as_secs_f64()).round(),
        "p50_us": pct(0.5),
        "p95_us": pct(0.95),
        "p99_us": pct(0.99),
        "errors": errors,
        "status": statuses.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
    })
}

/// The intake baseline: raw inserts into SQLite with `synchronous = FULL` in WAL mode, one
/// row per transaction, then 1,000 rows per transaction, for `duration` each.
async fn sqlite_raw(path: &str, duration: Duration) -> serde_json::Value {
    use sqlx::Connection;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
    let _ = std::fs::remove_file(path);
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let mut c = SqliteConnection::connect_with(&opts).await.expect("open");
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, receipt TEXT NOT NULL, description TEXT NOT NULL, lat REAL, lon REAL, at INTEGER NOT NULL)")
        .execute(&mut c)
        .await
        .expect("create");
    let mut rows_per_s = Vec::new();
    for batch in [1usize, 1000] {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < duration {
            let mut tx = c.begin().await.expect("begin");
            for _ in 0..batch {
                sqlx::query("INSERT INTO t (receipt, description, lat, lon, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(format!("R{n:012}"))
                    .bind("井盖缺失，行人有坠落危险")
                    .bind(27.2)
                    .bind(111.45)
                    .bind(n as i64)
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
                n += 1;
            }
            tx.commit().await.expect("commit");
        }
        rows_per_s.push((n as f64 / start.elapsed().as_secs_f64()).round());
    }
    serde_json::json!({"sqlite_raw_full": {"rows_per_s_one_per_tx": rows_per_s[0], "rows_per_s_1000_per_tx": rows_per_s[1]}})
}
