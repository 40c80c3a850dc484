//! The audit spool: how audit rows written outside a change's own transaction (reads of
//! personal records, denied attempts, logins, exports) reach the trail cheaply without
//! ever being lost.
//!
//! Before the answer leaves, the row is appended as one line of JSON to a spool file of
//! this process (one `write(2)`, no waiting on another thread): from then on it survives a
//! crash of civicgrid, as a commit with `synchronous = NORMAL` would. An importer task
//! moves the lines into `audit_log` every few milliseconds in large batches: it chains them
//! onto the trail's last row and advances the file's row in `audit_spool` in the same
//! transaction (committed with `synchronous = FULL`), so a restart neither loses nor repeats
//! a row. Searching or verifying the trail first waits until this process's spool is
//! imported, so a search always sees the reads made before it.
//!
//! Each process writes its own file, created under a temporary name, locked (`flock`) and
//! only then given its `.spool` name. A `.spool` file that nobody holds locked belongs to a
//! process that has ended (crashed, or a command that stopped before its importer caught
//! up): whoever opens the store next, and every running importer every few seconds,
//! imports what is left of it and removes it. A last line without its newline was being
//! written when that process died, was never answered, and is dropped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use domain::audit::{AuditEntry, AuditEntryRef};
use domain::clock::Clock;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::StoreError;
use crate::db::{Dialect, begin_write};

/// How often the importer looks at its spool when nobody asks it to (a flush wakes it at once).
const IMPORT_INTERVAL: Duration = Duration::from_millis(25);
/// How often it looks for spool files of processes that have ended.
const ORPHAN_INTERVAL: Duration = Duration::from_secs(10);
/// The most bytes one import transaction reads (about 15,000 rows).
const MAX_READ: usize = 4 << 20;
/// A file is closed for writing and a new one begun beyond this size (tests lower it).
const ROTATE_BYTES: u64 = 64 << 20;
/// How long a search or verify waits for the importer before giving up.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// One spool file of this process.
struct SpoolFile {
    name: String,
    path: PathBuf,
    /// Open for appending and reading; holds the file's lock for as long as it lives.
    file: Arc<File>,
    /// Bytes written (every line complete).
    len: u64,
}

struct Writer {
    /// The file being appended to (created at the first row).
    current: Option<SpoolFile>,
    /// Earlier files, closed for writing, waiting for the importer to finish them.
    retired: Vec<SpoolFile>,
    /// Numbers the files of this process.
    next_file: u64,
    /// Lines waiting for the next write (group write: one `write(2)` for every row that
    /// arrived while the previous write ran, instead of one per row).
    pending: Vec<u8>,
    pending_rows: u64,
    /// The group the pending lines belong to; groups are written in order.
    open_group: u64,
    /// A task is writing groups; a new row joins the pending one and waits.
    writing: bool,
    /// Groups whose write failed (the last few): their rows were not written.
    failed: std::collections::VecDeque<(u64, String)>,
}

/// The spool of one open store.
pub(crate) struct AuditSpool {
    dir: PathBuf,
    /// Unique to this open store: the start of its files' names.
    prefix: String,
    writer: Mutex<Writer>,
    /// Rows appended by this store, and rows of its files imported so far.
    written: AtomicU64,
    imported: tokio::sync::watch::Sender<u64>,
    /// The last group written (or failed): a row's append returns once its group is done.
    done_group: tokio::sync::watch::Sender<u64>,
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
    pub(crate) async fn start(dir: PathBuf, pool: AnyPool, dialect: Dialect, clock: Arc<dyn Clock>) -> Result<Arc<AuditSpool>, StoreError> {
        std::fs::create_dir_all(&dir).map_err(|e| spool_error(&dir, "cannot create the audit spool folder", &e))?;
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).map_err(|e| StoreError::Corrupt(format!("the operating system gave no randomness: {e}")))?;
        let prefix = format!("{}-{}-{}", clock.now_ms(), std::process::id(), domain::audit::hex(&random));
        let (imported, _) = tokio::sync::watch::channel(0);
        let spool = Arc::new(AuditSpool {
            dir,
            prefix,
            writer: Mutex::new(Writer {
                current: None,
                retired: Vec::new(),
                next_file: 1,
                pending: Vec::new(),
                pending_rows: 0,
                open_group: 1,
                writing: false,
                failed: std::collections::VecDeque::new(),
            }),
            written: AtomicU64::new(0),
            imported,
            done_group: tokio::sync::watch::channel(0).0,
            rotate_bytes: AtomicU64::new(ROTATE_BYTES),
            failure: Mutex::new(None),
            failed_attempts: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            clock,
        });
        import_orphans(&spool, &pool, dialect).await?;
        let weak = Arc::downgrade(&spool);
        tokio::spawn(run_importer(weak, pool, dialect));
        Ok(spool)
    }

    /// The folder of the spool files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Append one row; when this returns, the row survives a crash of this process.
    ///
    /// Rows are written in groups: the first row to arrive while no write runs becomes the
    /// writer, lets the other ready tasks add their rows, and writes them all with one
    /// `write(2)`; the others wait for their group. Under load a group holds dozens of
    /// rows, and a system call per row was the largest part of what the audit of a read
    /// cost the request.
    pub(crate) async fn append(&self, mut e: AuditEntryRef<'_>) -> Result<(), StoreError> {
        e.at = self.clock.now_ms();
        let storable = e.to_storable();
        let e = storable.as_ref().map_or(e, AuditEntry::as_ref);
        let (group, leader) = {
            let mut w = self.lock_writer()?;
            serde_json::to_writer(&mut w.pending, &e).map_err(|e| StoreError::Corrupt(format!("audit row: {e}")))?;
            w.pending.push(b'\n');
            w.pending_rows += 1;
            let leader = !w.writing;
            w.writing = true;
            (w.open_group, leader)
        };
        if leader {
            // The group is written when the guard drops: after the yield, or, should this
            // request be cancelled at the yield (a client that hangs up), right then, so
            // the rows that joined it never wait for a writer that is gone.
            let writer = GroupWriter(self);
            tokio::task::yield_now().await;
            drop(writer);
        }
        let mut rx = self.done_group.subscribe();
        while *rx.borrow_and_update() < group {
            if rx.changed().await.is_err() {
                return Err(StoreError::Corrupt("the audit spool has closed".into()));
            }
        }
        let w = self.lock_writer()?;
        match w.failed.iter().find(|(g, _)| *g == group) {
            Some((_, msg)) => Err(StoreError::Corrupt(msg.clone())),
            None => Ok(()),
        }
    }

    fn lock_writer(&self) -> Result<std::sync::MutexGuard<'_, Writer>, StoreError> {
        self.writer.lock().map_err(|_| StoreError::Corrupt("the audit spool's lock is poisoned".into()))
    }

    /// Write pending groups until none is left (only the task that set `writing`). The
    /// write itself runs outside the lock, so rows keep joining the next group meanwhile.
    fn write_groups(&self) {
        loop {
            let Ok(mut w) = self.writer.lock() else { return };
            if w.pending.is_empty() {
                w.writing = false;
                return;
            }
            let group = w.open_group;
            w.open_group += 1;
            let lines = std::mem::take(&mut w.pending);
            let rows = std::mem::take(&mut w.pending_rows);
            let target = self.target_file(&mut w);
            drop(w);
            let result = target.and_then(|(file, path, len)| match (&*file).write_all(&lines) {
                Ok(()) => Ok(()),
                Err(e) => {
                    // A partial line must not run into the next one: cut the file back.
                    let _ = file.set_len(len);
                    Err(spool_error(&path, "cannot write the audit spool", &e))
                }
            });
            let Ok(mut w) = self.writer.lock() else { return };
            match result {
                Ok(()) => {
                    if let Some(f) = w.current.as_mut() {
                        f.len += lines.len() as u64;
                    }
                    self.written.fetch_add(rows, Ordering::Release);
                }
                Err(e) => {
                    tracing::error!(error = %e, rows, "writing the audit spool failed");
                    if w.failed.len() >= 256 {
                        w.failed.pop_front();
                    }
                    w.failed.push_back((group, e.to_string()));
                }
            }
            if w.pending.is_empty() {
                // Keep the buffer's allocation for the next group.
                w.pending = lines;
                w.pending.clear();
            }
            drop(w);
            self.done_group.send_replace(group);
        }
    }

    /// The file the next group goes to (a new one when the current is full), and its length.
    fn target_file(&self, w: &mut Writer) -> Result<(Arc<File>, PathBuf, u64), StoreError> {
        if w.current.as_ref().is_some_and(|f| f.len >= self.rotate_bytes.load(Ordering::Relaxed))
            && let Some(full) = w.current.take()
        {
            w.retired.push(full);
        }
        if w.current.is_none() {
            let n = w.next_file;
            w.current = Some(self.create_file(n)?);
            w.next_file += 1;
        }
        let Some(f) = w.current.as_ref() else { return Err(StoreError::Corrupt("no audit spool file".into())) };
        Ok((f.file.clone(), f.path.clone(), f.len))
    }

    fn create_file(&self, n: u64) -> Result<SpoolFile, StoreError> {
        let name = format!("{}-{n}.spool", self.prefix);
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
        let Ok(w) = self.writer.lock() else { return Vec::new() };
        let mut files: Vec<_> = w.retired.iter().map(|f| (f.name.clone(), f.file.clone(), f.len, true)).collect();
        if let Some(f) = &w.current {
            files.push((f.name.clone(), f.file.clone(), f.len, false));
        }
        files
    }

    /// A retired file is fully imported: remove it (its lock goes with the last handle).
    fn forget_retired(&self, name: &str) {
        let Ok(mut w) = self.writer.lock() else { return };
        if let Some(k) = w.retired.iter().position(|f| f.name == name) {
            let f = w.retired.remove(k);
            let _ = std::fs::remove_file(&f.path);
        }
    }

    /// Remove this store's files once everything in them is imported (a clean shutdown).
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        self.flush().await?;
        let Ok(mut w) = self.writer.lock() else { return Ok(()) };
        if w.writing || self.written.load(Ordering::Acquire) > *self.imported.borrow() {
            return Ok(()); // rows arrived meanwhile: leave the file for the next start
        }
        let current = w.current.take();
        for f in w.retired.drain(..).chain(current) {
            let _ = std::fs::remove_file(&f.path);
        }
        Ok(())
    }
}

/// Writes the pending groups when dropped (see [`AuditSpool::append`]).
struct GroupWriter<'a>(&'a AuditSpool);

impl Drop for GroupWriter<'_> {
    fn drop(&mut self) {
        self.0.write_groups();
    }
}

fn spool_error(path: &Path, what: &str, e: &std::io::Error) -> StoreError {
    StoreError::Corrupt(format!("{what} {}: {e}", path.display()))
}

async fn run_importer(spool: Weak<AuditSpool>, pool: AnyPool, dialect: Dialect) {
    let mut last_orphan_scan = std::time::Instant::now();
    loop {
        let Some(s) = spool.upgrade() else { return };
        let notified = s.wake.notified();
        tokio::select! {
            () = notified => {},
            () = tokio::time::sleep(IMPORT_INTERVAL) => {},
        }
        let result = import_own(&s, &pool, dialect).await;
        let result = match result {
            Ok(()) if last_orphan_scan.elapsed() >= ORPHAN_INTERVAL => {
                last_orphan_scan = std::time::Instant::now();
                import_orphans(&s, &pool, dialect).await
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
async fn import_own(s: &AuditSpool, pool: &AnyPool, dialect: Dialect) -> Result<(), StoreError> {
    for (name, file, len, retired) in s.snapshot() {
        loop {
            let step = import_step(pool, dialect, s.clock.as_ref(), &name, &file, len).await?;
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
async fn import_orphans(s: &AuditSpool, pool: &AnyPool, dialect: Dialect) -> Result<(), StoreError> {
    let Ok(entries) = std::fs::read_dir(&s.dir) else { return Ok(()) };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".spool") && !n.starts_with(&s.prefix))
        .collect();
    names.sort();
    for name in names {
        let path = s.dir.join(&name);
        let Ok(file) = File::open(&path) else { continue };
        if file.try_lock().is_err() {
            continue; // a live process's file
        }
        let len = file.metadata().map_err(|e| spool_error(&path, "cannot read", &e))?.len();
        let mut total = 0;
        loop {
            let step = import_step(pool, dialect, s.clock.as_ref(), &name, &file, len).await?;
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

/// One import transaction: rows of `file` from where the last import of it stopped, up to
/// `len`, chained onto the trail, with the file's progress row moved in the same commit.
async fn import_step(pool: &AnyPool, dialect: Dialect, clock: &dyn Clock, name: &str, file: &File, len: u64) -> Result<Step, StoreError> {
    let mut tx = begin_write(pool, dialect).await?;
    let from: i64 = sqlx::query("SELECT imported_bytes FROM audit_spool WHERE file = $1")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get::<i64, _>(0))
        .transpose()?
        .unwrap_or(0);
    let from = from.max(0) as u64;
    if from >= len {
        tx.rollback().await?;
        return Ok(Step { rows: 0, done: true, torn_bytes: 0 });
    }
    let want = ((len - from) as usize).min(MAX_READ);
    let mut buf = vec![0u8; want];
    file.read_exact_at(&mut buf, from).map_err(|e| StoreError::Corrupt(format!("cannot read audit spool {name}: {e}")))?;
    let Some(end) = buf.iter().rposition(|b| *b == b'\n').map(|p| p + 1) else {
        tx.rollback().await?;
        // No complete line: a torn tail (or, impossibly, one line longer than MAX_READ).
        return Ok(Step { rows: 0, done: true, torn_bytes: len - from });
    };
    let mut rows = Vec::new();
    let mut unreadable = 0u64;
    for line in buf[..end].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<SpoolLine<'_>>(line) {
            Ok(row) => rows.push((row, line)),
            Err(_) => unreadable += 1,
        }
    }
    let lines = rows.len() as u64 + unreadable;
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
            detail: format!("{unreadable} unreadable rows between bytes {from} and {}", from + end as u64),
            ..Default::default()
        });
    }
    insert_chained(&mut tx, dialect, &rows, note.as_ref()).await?;
    sqlx::query(
        "INSERT INTO audit_spool (file, imported_bytes, imported_rows, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (file) DO UPDATE SET imported_bytes = excluded.imported_bytes, \
         imported_rows = audit_spool.imported_rows + excluded.imported_rows, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind((from + end as u64) as i64)
    .bind(lines as i64)
    .bind(clock.now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let next = from + end as u64;
    Ok(Step { rows: lines, done: next >= len, torn_bytes: 0 })
}

/// A spool line as read back: the strings borrow from the line unless they hold escapes.
#[derive(serde::Deserialize)]
struct SpoolLine<'a> {
    at: i64,
    #[serde(borrow)]
    actor_kind: Cow<'a, str>,
    actor_id: Option<i64>,
    #[serde(borrow)]
    actor_name: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    object_type: Cow<'a, str>,
    #[serde(borrow)]
    object_id: Cow<'a, str>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(borrow)]
    detail: Cow<'a, str>,
    #[serde(borrow)]
    operation_id: Cow<'a, str>,
    #[serde(borrow)]
    client_addr: Cow<'a, str>,
}

impl SpoolLine<'_> {
    fn as_entry(&self) -> AuditEntryRef<'_> {
        AuditEntryRef {
            at: self.at,
            actor_kind: &self.actor_kind,
            actor_id: self.actor_id,
            actor_name: &self.actor_name,
            action: &self.action,
            object_type: &self.object_type,
            object_id: &self.object_id,
            outcome: &self.outcome,
            detail: &self.detail,
            operation_id: &self.operation_id,
            client_addr: &self.client_addr,
        }
    }
}

/// The one statement that inserts a batch: the rows travel as one JSON array (the spool's
/// own lines) and their hashes beside them, so a batch of thousands of rows binds four
/// values instead of fourteen per row (each text value the driver binds is copied into
/// fresh allocations three times). Every row is found in O(1): SQLite takes the hashes as
/// one blob of 64-byte hashes (`substr` of a text would count characters from its start),
/// PostgreSQL as a JSON array walked in step with the rows.
const INSERT_SQLITE: &str = "INSERT INTO audit_log (seq, at, actor_kind, actor_id, actor_name, action, object_type, object_id, outcome, detail, operation_id, client_addr, prev_hash, hash) \
     SELECT $1 + j.key, j.value ->> 'at', j.value ->> 'actor_kind', j.value ->> 'actor_id', j.value ->> 'actor_name', j.value ->> 'action', \
            j.value ->> 'object_type', j.value ->> 'object_id', j.value ->> 'outcome', j.value ->> 'detail', j.value ->> 'operation_id', \
            j.value ->> 'client_addr', CASE j.key WHEN 0 THEN $2 ELSE CAST(substr($3, 64 * j.key - 63, 64) AS TEXT) END, \
            CAST(substr($3, 64 * j.key + 1, 64) AS TEXT) \
     FROM jsonb_each($4) AS j";
const INSERT_POSTGRES: &str = "INSERT INTO audit_log (seq, at, actor_kind, actor_id, actor_name, action, object_type, object_id, outcome, detail, operation_id, client_addr, prev_hash, hash) \
     SELECT $1 + j.n - 1, (j.v ->> 'at')::bigint, j.v ->> 'actor_kind', (j.v ->> 'actor_id')::bigint, j.v ->> 'actor_name', j.v ->> 'action', \
            j.v ->> 'object_type', j.v ->> 'object_id', j.v ->> 'outcome', j.v ->> 'detail', j.v ->> 'operation_id', \
            j.v ->> 'client_addr', lag(j.hash, 1, $2) OVER (ORDER BY j.n), j.hash \
     FROM ROWS FROM (jsonb_array_elements($4::jsonb), jsonb_array_elements_text($3::jsonb)) WITH ORDINALITY AS j(v, hash, n) ORDER BY j.n";

/// Chain rows onto the trail's last row and insert them (then `note`, if any), inside a
/// transaction that holds the write lock, in one statement.
async fn insert_chained(tx: &mut Transaction<'static, Any>, dialect: Dialect, rows: &[(SpoolLine<'_>, &[u8])], note: Option<&AuditEntry>) -> Result<(), StoreError> {
    let count = rows.len() + usize::from(note.is_some());
    if count == 0 {
        return Ok(());
    }
    let (last, first_prev) = crate::audit::chain_head(tx).await?;
    let mut json = Vec::with_capacity(rows.iter().map(|(_, l)| l.len() + 1).sum::<usize>() + 512);
    // SQLite: the hashes one after the other; PostgreSQL: a JSON array of them.
    let mut hashes = Vec::with_capacity(67 * count + 2);
    let mut prev = [0u8; 64];
    let mut seq = last;
    let mut push = |entry: AuditEntryRef<'_>, raw: Option<&[u8]>| -> Result<(), StoreError> {
        seq += 1;
        let prev_str = if seq == last + 1 { first_prev.as_str() } else { std::str::from_utf8(&prev).unwrap_or_default() };
        let mut hash = [0u8; 64];
        entry.chain_hash_into(seq, prev_str, &mut hash);
        match dialect {
            Dialect::Sqlite => hashes.extend_from_slice(&hash),
            Dialect::Postgres => {
                hashes.extend_from_slice(if hashes.is_empty() { b"[\"" } else { b",\"" });
                hashes.extend_from_slice(&hash);
                hashes.push(b'"');
            }
        }
        prev = hash;
        json.push(if json.is_empty() { b'[' } else { b',' });
        match raw {
            // A line without escapes is passed as it is: its keys and strings read the same
            // to the database's JSON functions as they did to ours.
            Some(line) if !line.contains(&b'\\') => json.extend_from_slice(line),
            _ => serde_json::to_writer(&mut json, &entry).map_err(|e| StoreError::Corrupt(format!("audit row: {e}")))?,
        }
        Ok(())
    };
    for (row, line) in rows {
        push(row.as_entry(), Some(line))?;
    }
    if let Some(n) = note {
        push(n.as_ref(), None)?;
    }
    json.push(b']');
    let json = String::from_utf8(json).map_err(|e| StoreError::Corrupt(format!("audit batch: {e}")))?;
    let q = match dialect {
        Dialect::Sqlite => sqlx::query(INSERT_SQLITE).bind(last + 1).bind(first_prev).bind(hashes),
        Dialect::Postgres => {
            hashes.push(b']');
            let hashes = String::from_utf8(hashes).map_err(|e| StoreError::Corrupt(format!("audit batch: {e}")))?;
            sqlx::query(INSERT_POSTGRES).bind(last + 1).bind(first_prev).bind(hashes)
        }
    };
    let done = q.bind(json).execute(&mut **tx).await?;
    if done.rows_affected() != count as u64 {
        return Err(StoreError::Corrupt(format!("an audit batch of {count} rows inserted {}", done.rows_affected())));
    }
    let entries = rows.iter().map(|(r, _)| (r.at, r.actor_name.as_ref())).chain(note.map(|n| (n.at, n.actor_name.as_str())));
    crate::audit::index_blocks(tx, dialect, (last + 1..).zip(entries).map(|(seq, (at, actor))| (seq, at, actor))).await
}
