//! The effective configuration: defaults, then the config file, then `CIVICGRID_*`
//! environment variables, then command-line flags. Every value remembers where it came
//! from, and `civicgrid config` prints them with secrets redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Flag(v) => write!(f, "flag {v}"),
        }
    }
}

/// A setting: its key (in the file), the environment variable, the default and whether
/// its value can hold a secret.
struct Key {
    name: &'static str,
    env: &'static str,
    default: &'static str,
    secret: bool,
    help: &'static str,
}

const KEYS: &[Key] = &[
    Key {
        name: "db",
        env: "CIVICGRID_DB",
        default: store::DEFAULT_URL,
        secret: true,
        help: "store URL: sqlite://PATH (default, one file) or postgres://USER:PASSWORD@HOST:PORT/DB",
    },
    Key { name: "listen", env: "CIVICGRID_LISTEN", default: "127.0.0.1:8080", secret: false, help: "address the server listens on" },
    Key {
        name: "tile_url",
        env: "CIVICGRID_TILE_URL",
        default: "",
        secret: true,
        help: "map tile URL template with {z}/{x}/{y}, WGS-84/CGCS2000 tiles (e.g. 天地图); empty: no tiles",
    },
    Key { name: "tile_attribution", env: "CIVICGRID_TILE_ATTRIBUTION", default: "", secret: false, help: "attribution text shown under the tiles" },
    Key {
        name: "change_poll_ms",
        env: "CIVICGRID_CHANGE_POLL_MS",
        default: "2000",
        secret: false,
        help: "how often (ms) derived indexes read the change log",
    },
    Key { name: "log", env: "CIVICGRID_LOG", default: "info", secret: false, help: "log filter (tracing EnvFilter syntax)" },
    Key {
        name: "session_idle_minutes",
        env: "CIVICGRID_SESSION_IDLE_MINUTES",
        default: "30",
        secret: false,
        help: "a web session ends after this many minutes without a request",
    },
    Key {
        name: "session_absolute_hours",
        env: "CIVICGRID_SESSION_ABSOLUTE_HOURS",
        default: "12",
        secret: false,
        help: "a web session (and a login token) ends this many hours after login, busy or not",
    },
    Key {
        name: "photo_max_mb",
        env: "CIVICGRID_PHOTO_MAX_MB",
        default: "10",
        secret: false,
        help: "the largest photo accepted, in megabytes",
    },
    Key {
        name: "import_max_mb",
        env: "CIVICGRID_IMPORT_MAX_MB",
        default: "100",
        secret: false,
        help: "the largest spreadsheet a register import accepts by upload, in megabytes (413 beyond)",
    },
    Key {
        name: "audit_reads",
        env: "CIVICGRID_AUDIT_READS",
        default: "true",
        secret: false,
        help: "audit every successful read of a personal record; false only to measure the audit's cost, never in production",
    },
    Key {
        name: "audit_spool",
        env: "CIVICGRID_AUDIT_SPOOL",
        default: "",
        secret: false,
        help: "folder where audit rows wait for import into the trail (empty: beside the SQLite file, or under the temporary folder for PostgreSQL)",
    },
    Key {
        name: "secure_cookies",
        env: "CIVICGRID_SECURE_COOKIES",
        default: "false",
        secret: false,
        help: "mark cookies Secure even without an X-Forwarded-Proto: https header (set true behind TLS)",
    },
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: unknown setting {key:?} (known: {known})")]
    UnknownKey { path: PathBuf, key: String, known: String },
    #[error("setting {key} from {origin}: {message}")]
    Invalid { key: &'static str, origin: Source, message: String },
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl Config {
    /// Layer defaults, the file, the environment (`env` is passed in so tests need not
    /// touch the process's) and the flags that were given.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &[(&'static str, &'static str, Option<String>)],
    ) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<&'static str, (String, Source)> =
            KEYS.iter().map(|k| (k.name, (k.default.to_string(), Source::Default))).collect();
        let file = match file {
            Some(p) => Some(p.to_path_buf()),
            None => env("CIVICGRID_CONFIG").map(PathBuf::from).or_else(|| {
                let p = PathBuf::from("civicgrid.toml");
                p.exists().then_some(p)
            }),
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::Read { path: path.clone(), message: e.to_string() })?;
            let table: toml::Table =
                text.parse().map_err(|e: toml::de::Error| ConfigError::Parse { path: path.clone(), message: e.to_string() })?;
            for (k, v) in table {
                let Some(key) = KEYS.iter().find(|key| key.name == k) else {
                    let known = KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ");
                    return Err(ConfigError::UnknownKey { path, key: k, known });
                };
                let s = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(ConfigError::Parse {
                            path,
                            message: format!("{k} must be a string or an integer, not {}", other.type_str()),
                        });
                    }
                };
                values.insert(key.name, (s, Source::File(path.clone())));
            }
        }
        for key in KEYS {
            if let Some(v) = env(key.env) {
                values.insert(key.name, (v, Source::Env(key.env.to_string())));
            }
        }
        for (name, flag, v) in flags {
            if let Some(v) = v {
                values.insert(name, (v.clone(), Source::Flag((*flag).to_string())));
            }
        }
        let cfg = Config { values };
        cfg.change_poll_ms()?;
        cfg.listen()?;
        cfg.session_policy()?;
        cfg.secure_cookies()?;
        cfg.audit_reads()?;
        cfg.photo_max_bytes()?;
        cfg.import_max_bytes()?;
        Ok(cfg)
    }

    fn get(&self, k: &'static str) -> (&str, &Source) {
        match self.values.get(k) {
            Some((v, s)) => (v.as_str(), s),
            None => ("", &Source::Default),
        }
    }

    pub fn db(&self) -> &str {
        self.get("db").0
    }

    pub fn listen(&self) -> Result<std::net::SocketAddr, ConfigError> {
        let (v, s) = self.get("listen");
        v.parse().map_err(|e| ConfigError::Invalid { key: "listen", origin: s.clone(), message: format!("{v:?}: {e}") })
    }

    pub fn tile_url(&self) -> Option<String> {
        Some(self.get("tile_url").0.to_string()).filter(|s| !s.is_empty())
    }

    pub fn tile_attribution(&self) -> String {
        self.get("tile_attribution").0.to_string()
    }

    pub fn change_poll_ms(&self) -> Result<u64, ConfigError> {
        let (v, s) = self.get("change_poll_ms");
        v.parse::<u64>()
            .ok()
            .filter(|n| (50..=600_000).contains(n))
            .ok_or_else(|| ConfigError::Invalid {
                key: "change_poll_ms",
                origin: s.clone(),
                message: format!("{v:?} is not a whole number of milliseconds from 50 to 600000"),
            })
    }

    pub fn log(&self) -> &str {
        self.get("log").0
    }

    fn whole(&self, key: &'static str, range: std::ops::RangeInclusive<i64>) -> Result<i64, ConfigError> {
        let (v, s) = self.get(key);
        v.parse::<i64>().ok().filter(|n| range.contains(n)).ok_or_else(|| ConfigError::Invalid {
            key,
            origin: s.clone(),
            message: format!("{v:?} is not a whole number from {} to {}", range.start(), range.end()),
        })
    }

    pub fn photo_max_bytes(&self) -> Result<usize, ConfigError> {
        Ok(self.whole("photo_max_mb", 1..=100)? as usize * 1024 * 1024)
    }

    pub fn import_max_bytes(&self) -> Result<usize, ConfigError> {
        Ok(self.whole("import_max_mb", 1..=2048)? as usize * 1024 * 1024)
    }

    pub fn session_policy(&self) -> Result<store::auth::SessionPolicy, ConfigError> {
        Ok(store::auth::SessionPolicy {
            idle_ms: self.whole("session_idle_minutes", 1..=24 * 60)? * 60_000,
            absolute_ms: self.whole("session_absolute_hours", 1..=24 * 7)? * 3_600_000,
        })
    }

    fn boolean(&self, key: &'static str) -> Result<bool, ConfigError> {
        let (v, s) = self.get(key);
        match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError::Invalid { key, origin: s.clone(), message: format!("{v:?} is not true or false") }),
        }
    }

    pub fn secure_cookies(&self) -> Result<bool, ConfigError> {
        self.boolean("secure_cookies")
    }

    /// The audit spool's folder, when one is set.
    pub fn audit_spool(&self) -> Option<std::path::PathBuf> {
        Some(self.get("audit_spool").0).filter(|v| !v.trim().is_empty()).map(std::path::PathBuf::from)
    }

    pub fn audit_reads(&self) -> Result<bool, ConfigError> {
        self.boolean("audit_reads")
    }

    /// The configuration as TOML, each value with its source, secrets redacted.
    pub fn render(&self) -> String {
        let mut out = String::from("# civicgrid effective configuration: defaults < file < env < flags\n");
        for key in KEYS {
            let (v, s) = self.get(key.name);
            let shown = if key.secret { redact(v) } else { v.to_string() };
            out.push_str(&format!("\n# {}\n{} = {}  # from {s}\n", key.help, key.name, toml_string(&shown)));
        }
        out
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Hide passwords in URLs and key-like query parameters (天地图's `tk`, `key`, `token` …).
pub fn redact(v: &str) -> String {
    let v = store::redact_url(v);
    let Some((base, query)) = v.split_once('?') else { return v };
    let parts: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if ["tk", "key", "token", "secret", "password", "access_token", "ak"]
                .contains(&k.to_ascii_lowercase().as_str()) =>
            {
                format!("{k}=***")
            }
            _ => p.to_string(),
        })
        .collect();
    format!("{base}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_accepted_and_matches_the_defaults() {
        let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
        let cfg = Config::load(Some(&example), &|_| None, &[]).expect("config/example.toml loads");
        let text = std::fs::read_to_string(&example).expect("read");
        for key in KEYS {
            assert!(text.contains(&format!("\n{} =", key.name)), "{} is documented", key.name);
            assert_eq!(cfg.get(key.name).0, key.default, "example.toml shows the default of {}", key.name);
        }
    }

    #[test]
    fn layers_apply_in_order_and_secrets_are_redacted() {
        let dir = std::env::temp_dir().join(format!("civicgrid-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("c.toml");
        std::fs::write(&file, "db = \"postgres://civic:hunter2@db/civic\"\nlisten = \"0.0.0.0:9000\"\nchange_poll_ms = 500\n")
            .expect("write");
        let env = |k: &str| match k {
            "CIVICGRID_LISTEN" => Some("127.0.0.1:7000".to_string()),
            "CIVICGRID_TILE_URL" => Some("https://t0.tianditu.gov.cn/vec_w/wmts?tk=abc123&x={x}".to_string()),
            _ => None,
        };
        let cfg = Config::load(Some(&file), &env, &[("listen", "--listen", Some("127.0.0.1:7001".into()))]).expect("load");
        assert_eq!(cfg.db(), "postgres://civic:hunter2@db/civic");
        assert_eq!(cfg.listen().expect("listen").port(), 7001);
        assert_eq!(cfg.change_poll_ms().expect("poll"), 500);
        let shown = cfg.render();
        assert!(!shown.contains("hunter2") && !shown.contains("abc123"), "{shown}");
        assert!(shown.contains("postgres://civic:***@db/civic"), "{shown}");
        assert!(shown.contains("tk=***"), "{shown}");
        assert!(shown.contains("# from flag --listen"), "{shown}");
        assert!(shown.contains("# from env CIVICGRID_TILE_URL"), "{shown}");
        assert!(shown.contains(&format!("# from file {}", file.display())), "{shown}");
        assert!(shown.contains("log = \"info\"  # from default"), "{shown}");

        std::fs::write(&file, "dbb = \"x\"\n").expect("write");
        let err = Config::load(Some(&file), &|_| None, &[]).expect_err("typo");
        assert!(err.to_string().contains("unknown setting \"dbb\""), "{err}");
        let err = Config::load(None, &|k| (k == "CIVICGRID_CHANGE_POLL_MS").then(|| "fast".into()), &[]).expect_err("bad");
        assert!(err.to_string().contains("env CIVICGRID_CHANGE_POLL_MS"), "{err}");
    }
}
