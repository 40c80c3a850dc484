//! civicgrid's load generator: keep-alive HTTP/1.1 connections hammering one URL for a
//! while, reporting throughput and latency percentiles as one JSON line. It also serves
//! the baseline it is compared against: a bare axum JSON handler.
//!
//!   loadgen bare [--listen ADDR]
//!   loadgen run --url http://HOST:PORT/PATH [--header 'K: V']… [--connections N] [--seconds S] [--warmup S]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn usage() -> ! {
    eprintln!("usage: loadgen bare [--listen ADDR] | loadgen run --url URL [--header 'K: V']... [--connections N] [--seconds S] [--warmup S]");
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
            let report = runtime.block_on(run(
                &url,
                &headers,
                num("--connections", 32) as usize,
                Duration::from_secs(num("--seconds", 10)),
                Duration::from_secs(num("--warmup", 2)),
            ));
            println!("{report}");
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
    request: Vec<u8>,
}

fn target(url: &str, headers: &[String]) -> Target {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| usage());
    let (addr, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    Target { addr: addr.to_string(), request: req.into_bytes() }
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

async fn run(url: &str, headers: &[String], connections: usize, duration: Duration, warmup: Duration) -> serde_json::Value {
    let t = std::sync::Arc::new(target(url, headers));
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let t = t.clone();
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
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let result = async {
                    s.write_all(&t.request).await?;
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
        "connections": connections,
        "seconds": duration.as_secs_f64(),
        "requests": all.len(),
        "rps": (all.len() as f64 / duration.as_secs_f64()).round(),
        "p50_us": pct(0.5),
        "p99_us": pct(0.99),
        "errors": errors,
        "status": statuses.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
    })
}
