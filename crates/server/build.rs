//! Embeds the web UI's assets in the binary.
//!
//! Browser libraries come from the npm registry, pinned by web/package.json and its
//! lockfile; when web/node_modules is missing this runs `npm ci` once. Their dist files
//! and civicgrid's own web/src files are embedded under one content hash, so every asset
//! URL is `/assets/<hash>/<name>` and can be cached forever.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (path under web/, name served, content type)
const FILES: &[(&str, &str, &str)] = &[
    ("node_modules/leaflet/dist/leaflet.js", "leaflet.js", "text/javascript; charset=utf-8"),
    ("node_modules/leaflet/dist/leaflet.css", "leaflet.css", "text/css; charset=utf-8"),
    ("node_modules/leaflet/dist/images/layers.png", "images/layers.png", "image/png"),
    ("node_modules/leaflet/dist/images/layers-2x.png", "images/layers-2x.png", "image/png"),
    ("node_modules/leaflet/dist/images/marker-icon.png", "images/marker-icon.png", "image/png"),
    ("node_modules/leaflet/dist/images/marker-icon-2x.png", "images/marker-icon-2x.png", "image/png"),
    ("node_modules/leaflet/dist/images/marker-shadow.png", "images/marker-shadow.png", "image/png"),
    ("node_modules/htmx.org/dist/htmx.min.js", "htmx.min.js", "text/javascript; charset=utf-8"),
    ("src/app.css", "app.css", "text/css; charset=utf-8"),
    ("src/map.js", "map.js", "text/javascript; charset=utf-8"),
    ("src/report.js", "report.js", "text/javascript; charset=utf-8"),
    ("src/mobile.js", "mobile.js", "text/javascript; charset=utf-8"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let web = manifest.join("../../web").canonicalize().expect("the web/ folder beside crates/");
    println!("cargo:rerun-if-changed={}", web.join("package.json").display());
    println!("cargo:rerun-if-changed={}", web.join("package-lock.json").display());
    println!("cargo:rerun-if-changed={}", web.join("src").display());
    println!("cargo:rerun-if-changed={}", web.join("node_modules/.package-lock.json").display());

    if FILES.iter().any(|(p, _, _)| p.starts_with("node_modules/") && !web.join(p).exists()) {
        npm_ci(&web);
    }

    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut table = String::new();
    for (path, name, mime) in FILES {
        let full = web.join(path);
        let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()));
        for b in name.bytes().chain(bytes.iter().copied()) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        writeln!(table, "    ({name:?}, {mime:?}, include_bytes!({:?})),", full.display().to_string())
            .expect("write");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("assets.rs");
    let code = format!(
        "/// Content hash of every embedded asset together.\npub const ASSET_VERSION: &str = \"{:012x}\";\n\
         /// (name, content type, bytes)\npub static ASSETS: &[(&str, &str, &[u8])] = &[\n{table}];\n",
        hash & 0xffff_ffff_ffff
    );
    std::fs::write(&out, code).expect("write assets.rs");
}

fn npm_ci(web: &Path) {
    println!("cargo:warning=web/node_modules is missing: running `npm ci` in {}", web.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(web)
        .status()
        .unwrap_or_else(|e| panic!("civicgrid needs Node.js and npm to fetch its browser libraries once: {e}"));
    assert!(status.success(), "`npm ci` in {} failed ({status})", web.display());
}
