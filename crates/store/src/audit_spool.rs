//! The audit spool: how audit rows written outside a change's own transaction (reads of
//! personal records, denied attempts, logins, exports) reach the trail cheaply without
//! ever being lost.
//!
//! Before the answer leaves, the row is appended as one tab-separated line (`line.rs`) to
//! a spool file of this process (one `write(2)` per row): from then on it survives a
//! crash of civicgrid, as a commit with `synchronous = NORMAL` would. An importer task
//! moves the lines into `audit_log` every 100 ms in large batches: it chains them
//! onto the trail's last row and advances the file's row in `audit_spool` in the same
//! transaction (committed with `synchronous = FULL`), so a restart neither loses nor repeats
//! a row. Searching or verifying the trail first waits until this process's spool is
//! imported, so a search always sees the reads made before it.
//!
//! Each process writes its own files (one at a time per writer: a thread always appends
//! through the same one of a few writers), each created under a temporary name, locked
//! (`flock`) and only then given its `.spool` name. A `.spool` file that nobody holds
//! locked belongs to a process that has ended (crashed, or a command that stopped before
//! its importer caught up): whoever opens the store next, and every running importer
//! every few seconds, imports what is left of it and removes it. A last line without its
//! newline was being written when that process died, was never answered, and is dropped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use domain::audit::{AuditEntry, AuditEntryRef};
use domain::clock::Clock;

use crate::StoreError;

mod line;
mod postgres;
mod sqlite;

use line::SpoolLine;

/// How often the importer looks at its spool when nobody asks it to (a flush wakes it at
/// once, so a search never waits for it). Each import is one transaction whose fixed work
/// (the lock, the trail's head, the block index, the progress row, the commit) is shared
/// by the rows it moves: at 25 ms that fixed work was about a tenth of PostgreSQL's work per
/// row under load.
const IMPORT_INTERVAL: Duration = Duration::from_millis(100);
/// How often it looks for spool files of processes that have ended.
const ORPHAN_INTERVAL: Duration = Duration::from_secs(10);
/// The most bytes one import transaction reads (about 15,000 rows).
const MAX_READ: usize = 4 << 20;
/// A file is closed for writing and a new one begun beyond this size (tests lower it).
const ROTATE_BYTES: u64 = 64 << 20;
/// How long a search or verify waits for the importer before giving up.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Numbers the threads that append, in the order they first do (see [`AuditSpool::writer`]).
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's number, which picks its writer.
    static THREAD_WRITER: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// How many writers a store has: two per core, so the runtime's worker threads (one per
/// core) rarely share one even when other threads have appended first.
fn writer_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2).clamp(2, 16)
}

/// One spool file of this process.
struct SpoolFile {
    name: String,
    path: PathBuf,
    /// Open for appending and reading; holds the file's lock for as long as it lives.
    file: Arc<File>,
    /// Bytes written (every line complete).
    len: u64,
}

/// One of the store's writers: its own sequence of files, and its own lock.
struct Writer {
    /// Which writer this is (its files are named after it).
    shard: usize,
    /// The file being appended to (created at the first row).
    current: Option<SpoolFile>,
    /// Earlier files, closed for writing, waiting for the importer to finish them.
    retired: Vec<SpoolFile>,
    /// Numbers the files of this process.
    next_file: u64,
    /// The line being written, kept for the next row (no allocation per row).
    line: Vec<u8>,
}

/// Where the importer writes.
pub(crate) enum Sink {
    /// SQLite: a connection of the importer's own, through SQLite's API (`audit_spool/sqlite.rs`).
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    /// PostgreSQL: a connection of the importer's own, for `COPY` (`audit_spool/postgres.rs`).
    Postgres(sqlx::PgPool),
}

impl Sink {
    /// The importer's own connection to the SQLite file at `path`.
    pub(crate) fn sqlite(path: &Path) -> Result<Sink, StoreError> {
        Ok(Sink::Sqlite(Arc::new(Mutex::new(sqlite::open(path)?))))
    }

    /// The importer's own connection to the PostgreSQL database at `url`.
    pub(crate) async fn postgres(url: &str) -> Result<Sink, StoreError> {
        Ok(Sink::Postgres(postgres::connect(url).await?))
    }
}

/// The spool of one open store.
pub(crate) struct AuditSpool {
    dir: PathBuf,
    /// Unique to this open store: the start of its files' names.
    prefix: String,
    /// A thread appends through one of these (see [`AuditSpool::writer`]), so two requests
    /// on two cores never queue on one lock, nor on one file's.
    writers: Box<[Mutex<Writer>]>,
    /// Rows appended by this store, and rows of its files imported so far.
    written: AtomicU64,
    imported: tokio::sync::watch::Sender<u64>,
    /// Size at which a file is closed for writing (`ROTATE_BYTES`).
    pub(crate) rotate_bytes: AtomicU64,
    /// The last import's error and how many attempts in a row failed (a good one clears it).
    failure: Mutex<Option<(String, u32)>>,
    /// Failed import attempts since the store opened.
    failed_attempts: AtomicU64,
    wake: tokio::sync::Notify,
    clock: Arc<dyn Clock>,
}

impl AuditSpool {
    /// Open the spool in `dir` (created if needed), import what ended processes left there,
    /// and start this store's importer.
    pub(crate) async fn start(dir: PathBuf, sink: Sink, clock: Arc<dyn Clock>) -> Result<Arc<AuditSpool>, StoreError> {
        std::fs::create_dir_all(&dir).map_err(|e| spool_error(&dir, "cannot create the audit spool folder", &e))?;
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).map_err(|e| StoreError::Corrupt(format!("the operating system gave no randomness: {e}")))?;
        let prefix = format!("{}-{}-{}", clock.now_ms(), std::process::id(), domain::audit::hex(&random));
        let (imported, _) = tokio::sync::watch::channel(0);
        let spool = Arc::new(AuditSpool {
            dir,
            prefix,
            writers: (0..writer_count())
                .map(|shard| Mutex::new(Writer { shard, current: None, retired: Vec::new(), next_file: 1, line: Vec::new() }))
                .collect(),
            written: AtomicU64::new(0),
            imported,
            rotate_bytes: AtomicU64::new(ROTATE_BYTES),
            failure: Mutex::new(None),
            failed_attempts: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            clock,
        });
        import_orphans(&spool, &sink).await?;
        let weak = Arc::downgrade(&spool);
        tokio::spawn(run_importer(weak, sink));
        Ok(spool)
    }

    /// The folder of the spool files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Append one row; when this returns, the row survives a crash of this process.
    ///
    /// The line goes to the file of this thread's writer with one `write(2)` while that
    /// writer's lock is held, so lines never interleave and a failed write is the
    /// caller's error. There is no await in it: a request cut off by a client that hangs
    /// up has either written its row or not begun it. (Earlier versions wrote rows in
    /// groups, each caller waiting for its group's writer; waking the waiting requests
    /// cost the server more CPU than the system calls it saved: see docs/PERFORMANCE.md.)
    pub(crate) async fn append(&self, mut e: AuditEntryRef<'_>) -> Result<(), StoreError> {
        e.at = self.clock.now_ms();
        let storable = e.to_storable();
        let e = storable.as_ref().map_or(e, AuditEntry::as_ref);
        let mut w = self.writer()?;
        let mut line = std::mem::take(&mut w.line);
        line.clear();
        line::write(&mut line, &e);
        let result = self.current_file(&mut w).and_then(|f| match (&*f.file).write_all(&line) {
            Ok(()) => {
                f.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A partial line must not run into the next one: cut the file back.
                let _ = f.file.set_len(f.len);
                Err(spool_error(&f.path, "cannot write the audit spool", &e))
            }
        });
        w.line = line;
        match result {
            Ok(()) => {
                self.written.fetch_add(1, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "writing the audit spool failed");
                Err(e)
            }
        }
    }

    /// This thread's writer, locked. A thread keeps its writer, so the rows of one
    /// request (and of one command) stay in order in one file.
    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Writer>, StoreError> {
        let k = THREAD_WRITER.with(|k| *k) % self.writers.len();
        self.writers[k].lock().map_err(|_| StoreError::Corrupt("the audit spool's lock is poisoned".into()))
    }

    /// Every writer, locked in order (nobody appends meanwhile); None when a lock is poisoned.
    fn all_writers(&self) -> Option<Vec<std::sync::MutexGuard<'_, Writer>>> {
        self.writers.iter().map(|w| w.lock().ok()).collect()
    }

    /// The file the next row goes to (a new one when the current is full).
    fn current_file<'w>(&self, w: &'w mut Writer) -> Result<&'w mut SpoolFile, StoreError> {
        if w.current.as_ref().is_some_and(|f| f.len >= self.rotate_bytes.load(Ordering::Relaxed))
            && let Some(full) = w.current.take()
        {
            w.retired.push(full);
        }
        if w.current.is_none() {
            let n = w.next_file;
            w.current = Some(self.create_file(w.shard, n)?);
            w.next_file += 1;
        }
        w.current.as_mut().ok_or_else(|| StoreError::Corrupt("no audit spool file".into()))
    }

    fn create_file(&self, shard: usize, n: u64) -> Result<SpoolFile, StoreError> {
        // Zero-padded, so a folder listing gives one writer's files in the order written.
        let name = format!("{}-{shard}-{n:06}.spool", self.prefix);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.new"));
        let file = OpenOptions::new().read(true).append(true).create_new(true).open(&tmp).map_err(|e| spool_error(&tmp, "cannot create an audit spool file", &e))?;
        // Locked before it gets the name other processes look for, so it is never mistaken
        // for a file left by an ended process.
        file.try_lock().map_err(|e| StoreError::Corrupt(format!("cannot lock {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, &path).map_err(|e| spool_error(&path, "cannot name an audit spool file", &e))?;
        Ok(SpoolFile { name, path, file: Arc::new(file), len: 0 })
    }

    /// Wait until every row this store appended before the call is in `audit_log`.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let target = self.written.load(Ordering::Acquire);
        let mut rx = self.imported.subscribe();
        if *rx.borrow() >= target {
            return Ok(());
        }
        // Give up once three attempts in a row have failed, one of them after this call: a
        // store that is back gets a fresh attempt before anyone is told it failed.
        let failed_before = self.failed_attempts.load(Ordering::Acquire);
        self.wake.notify_one();
        let waited = tokio::time::timeout(FLUSH_TIMEOUT, async {
            loop {
                if *rx.borrow_and_update() >= target {
                    return Ok(());
                }
                if let Some((msg, attempts)) = self.failure.lock().ok().and_then(|f| f.clone())
                    && attempts >= 3
                    && self.failed_attempts.load(Ordering::Acquire) > failed_before
                {
                    return Err(msg);
                }
                if rx.changed().await.is_err() {
                    return Err("the audit importer has stopped".to_string());
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(StoreError::Corrupt(format!("the audit spool could not be imported: {msg}"))),
            Err(_) => Err(StoreError::Corrupt("the audit spool was not imported within 30 s".into())),
        }
    }

    /// The files to import now: (name, file, bytes written, retired).
    fn snapshot(&self) -> Vec<(String, Arc<File>, u64, bool)> {
        let mut files = Vec::new();
        for w in self.writers.iter().filter_map(|w| w.lock().ok()) {
            files.extend(w.retired.iter().map(|f| (f.name.clone(), f.file.clone(), f.len, true)));
            if let Some(f) = &w.current {
                files.push((f.name.clone(), f.file.clone(), f.len, false));
            }
        }
        files
    }

    /// A retired file is fully imported: remove it (its lock goes with the last handle).
    fn forget_retired(&self, name: &str) {
        for mut w in self.writers.iter().filter_map(|w| w.lock().ok()) {
            if let Some(k) = w.retired.iter().position(|f| f.name == name) {
                let f = w.retired.remove(k);
                let _ = std::fs::remove_file(&f.path);
                return;
            }
        }
    }

    /// Remove this store's files once everything in them is imported (a clean shutdown).
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        self.flush().await?;
        let Some(mut writers) = self.all_writers() else { return Ok(()) };
        if self.written.load(Ordering::Acquire) > *self.imported.borrow() {
            return Ok(()); // rows arrived meanwhile: leave the files for the next start
        }
        for w in &mut writers {
            let current = w.current.take();
            for f in w.retired.drain(..).chain(current) {
                let _ = std::fs::remove_file(&f.path);
            }
        }
        Ok(())
    }
}

fn spool_error(path: &Path, what: &str, e: &std::io::Error) -> StoreError {
    StoreError::Corrupt(format!("{what} {}: {e}", path.display()))
}

async fn run_importer(spool: Weak<AuditSpool>, sink: Sink) {
    let mut last_orphan_scan = std::time::Instant::now();
    loop {
        let Some(s) = spool.upgrade() else { return };
        let notified = s.wake.notified();
        tokio::select! {
            () = notified => {},
            () = tokio::time::sleep(IMPORT_INTERVAL) => {},
        }
        let result = import_own(&s, &sink).await;
        let result = match result {
            Ok(()) if last_orphan_scan.elapsed() >= ORPHAN_INTERVAL => {
                last_orphan_scan = std::time::Instant::now();
                import_orphans(&s, &sink).await
            }
            other => other,
        };
        if let Ok(mut f) = s.failure.lock() {
            match result {
                Ok(()) => *f = None,
                Err(e) => {
                    tracing::error!(error = %e, "importing the audit spool failed; retrying");
                    let attempts = f.as_ref().map_or(0, |(_, n)| *n) + 1;
                    *f = Some((e.to_string(), attempts));
                    s.failed_attempts.fetch_add(1, Ordering::Release);
                    // Wake anyone flushing, so they see the failure.
                    s.imported.send_modify(|_| {});
                }
            }
        }
    }
}

/// Import what this store has appended so far.
async fn import_own(s: &AuditSpool, sink: &Sink) -> Result<(), StoreError> {
    for (name, file, len, retired) in s.snapshot() {
        loop {
            let step = import_step(sink, &s.clock, &name, &file, len).await?;
            if step.rows > 0 {
                s.imported.send_modify(|n| *n += step.rows);
            }
            if step.done {
                break;
            }
        }
        if retired {
            s.forget_retired(&name);
        }
    }
    Ok(())
}

/// Import and remove the `.spool` files of processes that have ended (nobody holds them).
async fn import_orphans(s: &AuditSpool, sink: &Sink) -> Result<(), StoreError> {
    let Ok(entries) = std::fs::read_dir(&s.dir) else { return Ok(()) };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".spool") && !n.starts_with(&s.prefix))
        .collect();
    names.sort();
    for name in names {
        let path = s.dir.join(&name);
        let Ok(file) = File::open(&path).map(Arc::new) else { continue };
        if file.try_lock().is_err() {
            continue; // a live process's file
        }
        let len = file.metadata().map_err(|e| spool_error(&path, "cannot read", &e))?.len();
        let mut total = 0;
        loop {
            let step = import_step(sink, &s.clock, &name, &file, len).await?;
            total += step.rows;
            if step.done {
                if step.torn_bytes > 0 {
                    tracing::warn!(file = %name, bytes = step.torn_bytes, "an ended process's audit spool ends in a part-written row (never answered); dropped");
                }
                break;
            }
        }
        std::fs::remove_file(&path).map_err(|e| spool_error(&path, "cannot remove", &e))?;
        tracing::info!(file = %name, rows = total, "imported the audit spool of an ended process");
    }
    Ok(())
}

struct Step {
    /// Spool lines taken by this step.
    rows: u64,
    /// Nothing complete is left up to the given length.
    done: bool,
    /// Bytes after the last complete line (when done).
    torn_bytes: u64,
}

/// Complete spool lines read for one import step.
struct Lines {
    buf: Vec<u8>,
    /// Where the last complete line ends in `buf`.
    end: usize,
    /// The file offset `buf` was read from.
    from: u64,
}

/// What one import step takes from a spool file whose progress row says `imported` bytes
/// are in: the complete lines after them, or, when there are none, the step's result.
fn lines_to_import(file: &File, name: &str, imported: Option<i64>, len: u64) -> Result<Result<Lines, Step>, StoreError> {
    let from = imported.unwrap_or(0).max(0) as u64;
    if from >= len {
        return Ok(Err(Step { rows: 0, done: true, torn_bytes: 0 }));
    }
    Ok(match read_lines(file, name, from, len)? {
        Some((buf, end)) => Ok(Lines { buf, end, from }),
        // No complete line: a torn tail (or, impossibly, one line longer than MAX_READ).
        None => Err(Step { rows: 0, done: true, torn_bytes: len - from }),
    })
}

/// The complete lines of a spool file from byte `from` up to `len` (at most `MAX_READ`
/// bytes of them), and where the last one ends in the buffer; None when no line is
/// complete (a torn tail).
fn read_lines(file: &File, name: &str, from: u64, len: u64) -> Result<Option<(Vec<u8>, usize)>, StoreError> {
    let want = ((len - from) as usize).min(MAX_READ);
    let mut buf = vec![0u8; want];
    file.read_exact_at(&mut buf, from).map_err(|e| StoreError::Corrupt(format!("cannot read audit spool {name}: {e}")))?;
    Ok(buf.iter().rposition(|b| *b == b'\n').map(|p| (buf, p + 1)))
}

/// Spool lines parsed: the rows (each with its line as written) and how many lines were
/// taken in all, with a row of the importer's own naming the lines that could not be read.
struct Batch<'a> {
    rows: Vec<(SpoolLine<'a>, &'a [u8])>,
    lines: u64,
    note: Option<AuditEntry>,
}

impl<'a> Batch<'a> {
    /// `lines` are complete lines read from byte `from` of spool file `name`.
    fn parse(lines: &'a [u8], clock: &dyn Clock, name: &str, from: u64) -> Batch<'a> {
        // A row's line is rarely shorter than 64 bytes: room enough, without counting them first.
        let mut rows = Vec::with_capacity(lines.len() / 64 + 1);
        let mut unreadable = 0u64;
        match std::str::from_utf8(lines) {
            // The usual case: the whole batch is text, checked once and split with memchr.
            Ok(text) => {
                for line in text.split('\n').filter(|l| !l.is_empty()) {
                    match line::parse_str(line) {
                        Some(row) => rows.push((row, line.as_bytes())),
                        None => unreadable += 1,
                    }
                }
            }
            // Some line is not UTF-8: take the lines one by one, so only that one is lost.
            Err(_) => {
                for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    match line::parse(line) {
                        Some(row) => rows.push((row, line)),
                        None => unreadable += 1,
                    }
                }
            }
        }
        let mut note = None;
        if unreadable > 0 {
            tracing::error!(file = %name, rows = unreadable, "unreadable rows in an audit spool");
            note = Some(AuditEntry {
                at: clock.now_ms(),
                actor_kind: "system".into(),
                actor_name: "audit-spool".into(),
                action: "audit.spool_unreadable".into(),
                object_type: "audit_spool".into(),
                object_id: name.into(),
                outcome: "failed".into(),
                detail: format!("{unreadable} unreadable rows between bytes {from} and {}", from + lines.len() as u64),
                ..Default::default()
            });
        }
        Batch { lines: rows.len() as u64 + unreadable, rows, note }
    }

    /// The rows to insert, in order: the lines that were read, then the note.
    fn entries(&self) -> impl Iterator<Item = AuditEntryRef<'_>> {
        self.rows.iter().map(|(r, _)| r.as_entry()).chain(self.note.as_ref().map(AuditEntry::as_ref))
    }
}

/// One import transaction: rows of `file` from where the last import of it stopped, up to
/// `len`, chained onto the trail, with the file's progress row moved in the same commit.
/// Each backend writes through a connection of the importer's own, in its fastest bulk
/// path (`audit_spool/sqlite.rs`, `audit_spool/postgres.rs`).
async fn import_step(sink: &Sink, clock: &Arc<dyn Clock>, name: &str, file: &Arc<File>, len: u64) -> Result<Step, StoreError> {
    match sink {
        Sink::Sqlite(conn) => {
            let (conn, clock, name, file) = (conn.clone(), clock.clone(), name.to_string(), file.clone());
            tokio::task::spawn_blocking(move || {
                let mut conn = conn.lock().map_err(|_| StoreError::Corrupt("the audit importer's connection lock is poisoned".into()))?;
                sqlite::import_step(&mut conn, clock.as_ref(), &name, &file, len)
            })
            .await
            .map_err(|e| StoreError::Corrupt(format!("the audit importer stopped: {e}")))?
        }
        Sink::Postgres(pool) => postgres::import_step(pool, clock.as_ref(), name, file, len).await,
    }
}

/// Move a spool file's progress row: bytes imported so far, rows added.
pub(crate) const PROGRESS_UPSERT: &str = "INSERT INTO audit_spool (file, imported_bytes, imported_rows, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (file) DO UPDATE SET imported_bytes = excluded.imported_bytes, \
     imported_rows = audit_spool.imported_rows + excluded.imported_rows, updated_at = excluded.updated_at";

/// The chain hashes of a batch's rows (64 hex digits each) when its first row follows row
/// `last`, whose hash is `last_hash`.
fn chain_hashes<'b>(batch: &'b Batch<'_>, last: i64, last_hash: &'b str) -> impl Iterator<Item = [u8; 64]> + 'b {
    let mut prev: Option<[u8; 64]> = None;
    (last + 1..).zip(batch.entries()).map(move |(seq, entry)| {
        let prev_str = match &prev {
            Some(p) => std::str::from_utf8(p).unwrap_or_default(),
            None => last_hash,
        };
        let mut hash = [0u8; 64];
        entry.chain_hash_into(seq, prev_str, &mut hash);
        prev = Some(hash);
        hash
    })
}
