//! `wsrun jobs`: list, show, retry and purge the jobs of a state directory's journal (or of
//! the PostgreSQL store named by `--jobs-backend` or the `-c` file's `[jobs] backend`), from
//! the command line, while servers may be running on it (the store's locking keeps all
//! consistent).
//!
//! Owns: what each action does to the store (through the `JobStore` trait only), how jobs and
//! timers are printed (stable, parseable: fixed columns, UTC ISO-8601 times) and the exit codes
//! (0 done, 1 unknown id or no journal, 2 a bad `-c` file). Must not touch: the schema or SQL
//! (`journal`), delivery (`dispatch`), or any server state; it never starts Python or wasmtime.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::error::StoreError;
use super::job::{JobRecord, JobState};
use super::job_store::{JobStore, Listing};
use super::journal::JOURNAL_FILE;
use super::pg_store::{connection_config, PgStore};
use super::store::SqliteStore;
use crate::config::{JobsAction, JobsArgs, PostgresBackend, Schedule};

/// Widest `last error` shown by `list` (`show` prints it whole).
const ERROR_WIDTH: usize = 60;
/// Bytes of a non-UTF-8 body shown as hex by `show`.
const HEX_PREVIEW: usize = 32;

/// Runs `wsrun jobs ...`; the returned code is the process's exit code.
pub fn main(args: &JobsArgs) -> ExitCode {
    let state_dir = match args.state_dir() {
        Ok(dir) => dir,
        Err(err) => {
            eprintln!("wsrun: error: {err}");
            return ExitCode::from(2);
        }
    };
    let backend = match args.backend() {
        Ok(backend) => backend,
        Err(err) => {
            eprintln!("wsrun: error: {err}");
            return ExitCode::from(2);
        }
    };
    let out = match &backend {
        Some(backend) => run_on_postgres(&args.action, backend),
        None => run(&args.action, &state_dir),
    };
    match out {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("wsrun: error: {message}");
            ExitCode::from(1)
        }
    }
}

/// One action against the journal in `state_dir`; the text to print, or the error.
pub fn run(action: &JobsAction, state_dir: &Path) -> Result<String, String> {
    let store = SqliteStore::open_existing(state_dir).map_err(|e| e.to_string())?;
    let file = state_dir.join(JOURNAL_FILE);
    let out = act(&store, action, &file.display().to_string()).map_err(|e| e.to_string());
    store.shutdown();
    out
}

/// One action against the PostgreSQL store of `backend` (`--jobs-backend`, or the `-c`
/// file's `[jobs] backend`); the text to print, or the error.
pub fn run_on_postgres(action: &JobsAction, backend: &PostgresBackend) -> Result<String, String> {
    let (_, shown) = connection_config(backend).map_err(|e| e.to_string())?;
    let store = PgStore::start(backend, "wsrun-jobs").map_err(|e| e.to_string())?;
    let out = act(&store, action, &shown).map_err(|e| e.to_string());
    store.shutdown();
    out
}

/// Why an action failed: the store's error, or an unknown or busy job.
#[derive(Debug, thiserror::Error)]
enum ActionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no job {id} in {file}")]
    NoJob { id: i64, file: String },
    #[error("job {0} is being delivered right now; not changed (try again later)")]
    Busy(i64),
}

/// One action against `store` (named `file` in messages).
fn act(store: &dyn JobStore, action: &JobsAction, file: &str) -> Result<String, ActionError> {
    let no_job = |id: i64| ActionError::NoJob {
        id,
        file: file.to_string(),
    };
    match action {
        JobsAction::List { limit } => Ok(render_list(&store.list(*limit)?, *limit)),
        JobsAction::Show { id } => match store.show(*id)? {
            Some((state, job)) => Ok(render_show(state, &job)),
            None => Err(no_job(*id)),
        },
        JobsAction::Retry { id } => {
            let Some((state, job)) = store.show(*id)? else {
                return Err(no_job(*id));
            };
            match (state, store.retry(*id)?) {
                (JobState::Dead, true) => Ok(format!(
                    "job {id}: moved from dead-letter to pending, attempts reset (0/{}), due now\n",
                    job.max_attempts
                )),
                (JobState::Pending, true) => Ok(format!("job {id}: pending, now due\n")),
                (_, false) => Err(ActionError::Busy(*id)),
            }
        }
        JobsAction::Purge { pending } => {
            let gone = store.purge(*pending)?;
            let what = match pending {
                true => "job(s), dead-letter and pending",
                false => "dead-letter job(s)",
            };
            Ok(format!("purged {gone} {what}\n"))
        }
    }
}

/// A Unix-millisecond time as UTC ISO-8601 (`2024-05-01T12:00:00.250Z`).
pub fn iso(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => format!("{ms}ms"),
    }
}

fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Pending => "pending",
        JobState::Dead => "dead",
    }
}

/// `every 30s`, `every 1.5s`, `once`, `cron */5 * * * *`.
fn schedule_text(schedule: &Schedule) -> String {
    match schedule {
        Schedule::Every(period) => format!("every {}", duration_text(*period)),
        other => other.to_string(),
    }
}

fn duration_text(d: Duration) -> String {
    crate::config::format_duration(d)
}

/// One line of text: control characters become spaces, then at most `width` characters.
fn one_line(text: &str, width: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.chars().count() > width {
        true => {
            flat.chars()
                .take(width.saturating_sub(3))
                .collect::<String>()
                + "..."
        }
        false => flat,
    }
}

/// Rows as columns padded to their widest cell, two spaces apart; the last is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            match i == last {
                true => line.push_str(cell),
                false => {
                    let _ = write!(line, "{cell:<w$}  ");
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn or_dash(text: &str) -> String {
    match text.is_empty() {
        true => "-".to_string(),
        false => text.to_string(),
    }
}

/// `wsrun jobs list`: the jobs table, the counts line, then the timers table.
pub fn render_list(listing: &Listing, limit: usize) -> String {
    let Listing {
        jobs,
        pending,
        dead,
        timers,
        unserved,
    } = listing;
    let (pending, dead) = (*pending, *dead);
    let mut out = String::new();
    if jobs.is_empty() {
        out.push_str("no jobs\n");
    } else {
        let rows: Vec<Vec<String>> = jobs
            .iter()
            .map(|(state, job)| {
                vec![
                    job.id.to_string(),
                    state_name(*state).to_string(),
                    format!("{}/{}", job.attempts, job.max_attempts),
                    job.request.method.clone(),
                    one_line(&job.request.path, 200),
                    or_dash(&one_line(&job.origin, 40)),
                    iso(job.run_at),
                    or_dash(&one_line(
                        job.last_error.as_deref().unwrap_or(""),
                        ERROR_WIDTH,
                    )),
                ]
            })
            .collect();
        let header = [
            "ID",
            "STATE",
            "ATTEMPTS",
            "METHOD",
            "PATH",
            "ORIGIN",
            "DUE/FAILED (UTC)",
            "LAST ERROR",
        ];
        out.push_str(&table(&header, &rows));
    }
    let _ = writeln!(out, "jobs: {pending} pending, {dead} dead");
    for (path, count) in unserved {
        let path = one_line(path, 200);
        let _ = writeln!(
            out,
            "waiting: {count} job(s) for {path}: no live node serves that path"
        );
    }
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    if pending > limit || dead > limit {
        let _ = writeln!(out, "(showing at most {limit} of each; use --limit N)");
    }
    out.push('\n');
    if timers.is_empty() {
        out.push_str("timers: none\n");
        return out;
    }
    let _ = writeln!(out, "timers: {}", timers.len());
    let rows: Vec<Vec<String>> = timers
        .iter()
        .map(|t| {
            vec![
                one_line(&super::journal::display_key(&t.owner, &t.name), 200),
                schedule_text(&t.schedule),
                t.request.method.clone(),
                one_line(&t.request.path, 200),
                t.source.clone(),
                iso(t.next_due),
            ]
        })
        .collect();
    let header = [
        "NAME",
        "SCHEDULE",
        "METHOD",
        "PATH",
        "SOURCE",
        "NEXT DUE (UTC)",
    ];
    out.push_str(&table(&header, &rows));
    out
}

/// `wsrun jobs show ID`: one `field: value` per line, headers indented, the body last.
pub fn render_show(state: JobState, job: &JobRecord) -> String {
    let r = &job.request;
    let mut out = String::new();
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "{:<12}{value}", format!("{name}:"));
    };
    field("id", &job.id.to_string());
    field("state", state_name(state));
    field(
        "attempts",
        &format!("{}/{}", job.attempts, job.max_attempts),
    );
    field("method", &r.method);
    field("host", if r.host.is_empty() { "-" } else { &r.host });
    field("path", &r.path);
    field("origin", &or_dash(&job.origin));
    field("created", &iso(job.created_at));
    let when = match state {
        JobState::Pending => "due",
        JobState::Dead => "failed",
    };
    field(when, &iso(job.run_at));
    field(
        "last error",
        &or_dash(&one_line(
            job.last_error.as_deref().unwrap_or(""),
            usize::MAX,
        )),
    );
    field("headers", &r.headers.len().to_string());
    for (name, value) in &r.headers {
        let _ = writeln!(out, "  {name}: {}", String::from_utf8_lossy(value));
    }
    let n = r.body.len();
    match std::str::from_utf8(&r.body) {
        Ok(_) if n == 0 => {
            let _ = writeln!(out, "{:<12}0 bytes", "body:");
        }
        Ok(text) => {
            let _ = writeln!(out, "{:<12}{n} bytes, UTF-8:", "body:");
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
        Err(_) => {
            let hex: Vec<String> = r
                .body
                .iter()
                .take(HEX_PREVIEW)
                .map(|b| format!("{b:02x}"))
                .collect();
            let more = if n > HEX_PREVIEW { " ..." } else { "" };
            let _ = writeln!(
                out,
                "{:<12}{n} bytes, not UTF-8; first {} as hex: {}{more}",
                "body:",
                n.min(HEX_PREVIEW),
                hex.join(" ")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::job::{JobRequest, NewJob, TimerRecord};
    use crate::services::journal::{now_ms, Journal};

    fn job(id: i64, body: &[u8], error: Option<&str>) -> JobRecord {
        JobRecord {
            id,
            request: JobRequest {
                method: "POST".into(),
                host: String::new(),
                path: "/work?x=1".into(),
                headers: vec![("X-Trace".into(), b"abc".to_vec())],
                body: body.to_vec(),
            },
            origin: "python".into(),
            attempts: 2,
            max_attempts: 3,
            created_at: 1_700_000_000_000,
            run_at: 1_700_000_000_250,
            last_error: error.map(str::to_string),
            account: String::new(),
        }
    }

    #[test]
    fn list_is_a_stable_table() {
        let long = "x".repeat(100);
        let jobs = vec![
            (JobState::Pending, job(1, b"", None)),
            (
                JobState::Dead,
                job(12, b"", Some(&format!("HTTP 500\n{long}"))),
            ),
        ];
        let timers = vec![TimerRecord {
            owner: String::new(),
            quota: Default::default(),
            name: "tick".into(),
            schedule: Schedule::Every(Duration::from_secs(3600)),
            request: job(0, b"", None).request,
            source: "config".into(),
            next_due: 0,
        }];
        let listing = Listing {
            jobs,
            pending: 1,
            dead: 1,
            timers,
            unserved: vec![("/b/work".into(), 2)],
        };
        let out = render_list(&listing, 100);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "ID  STATE    ATTEMPTS  METHOD  PATH       ORIGIN  DUE/FAILED (UTC)          LAST ERROR"
        );
        assert_eq!(
            lines[1],
            "1   pending  2/3       POST    /work?x=1  python  2023-11-14T22:13:20.250Z  -"
        );
        assert!(lines[2].starts_with("12  dead "), "{out}");
        assert!(
            lines[2].ends_with(&format!("HTTP 500 {}...", &long[..48])),
            "{out}"
        );
        assert_eq!(lines[3], "jobs: 1 pending, 1 dead");
        assert_eq!(
            lines[4],
            "waiting: 2 job(s) for /b/work: no live node serves that path"
        );
        assert_eq!(lines[6], "timers: 1");
        assert_eq!(
            lines[8],
            "tick  every 1h  POST    /work?x=1  config  1970-01-01T00:00:00.000Z"
        );
        let empty = render_list(&Listing::default(), 100);
        assert_eq!(empty, "no jobs\njobs: 0 pending, 0 dead\n\ntimers: none\n");
        let five = Listing {
            pending: 5,
            ..Listing::default()
        };
        assert!(render_list(&five, 2).contains("showing at most 2 of each"));
    }

    #[test]
    fn show_prints_every_field_and_the_body() {
        let out = render_show(JobState::Dead, &job(7, b"hello\nworld", Some("HTTP 503")));
        let want = "id:         7\nstate:      dead\nattempts:   2/3\nmethod:     POST\n\
                    host:       -\npath:       /work?x=1\norigin:     python\n\
                    created:    2023-11-14T22:13:20.000Z\nfailed:     2023-11-14T22:13:20.250Z\n\
                    last error: HTTP 503\nheaders:    1\n  X-Trace: abc\n\
                    body:       11 bytes, UTF-8:\nhello\nworld\n";
        assert_eq!(out, want);
        let out = render_show(JobState::Pending, &job(7, &[0xff; 40], None));
        assert!(
            out.contains("\ndue:        2023-11-14T22:13:20.250Z\n"),
            "{out}"
        );
        assert!(out.contains("\nlast error: -\n"), "{out}");
        let hex = vec!["ff"; 32].join(" ");
        let want = format!("body:       40 bytes, not UTF-8; first 32 as hex: {hex} ...\n");
        assert!(out.ends_with(&want), "{out}");
        assert!(
            render_show(JobState::Pending, &job(7, b"", None)).ends_with("body:       0 bytes\n")
        );
    }

    #[test]
    fn actions_against_a_real_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = run(&JobsAction::List { limit: 10 }, dir.path()).expect_err("no journal");
        assert!(missing.contains(JOURNAL_FILE), "{missing}");
        let mut journal = Journal::open(dir.path()).expect("open");
        let new = |path: &str| NewJob {
            request: JobRequest {
                method: "POST".into(),
                host: String::new(),
                path: path.into(),
                headers: Vec::new(),
                body: b"b".to_vec(),
            },
            delay: Duration::from_secs(3600),
            max_attempts: 1,
            origin: "test".into(),
            quota: Default::default(),
        };
        let now = now_ms();
        let (a, b) = journal
            .transaction(|tx| {
                let a = tx.enqueue(&new("/a"), now)?;
                let b = tx.enqueue(&new("/b"), now)?;
                tx.bury(b, "HTTP 500", now)?;
                Ok((a, b))
            })
            .expect("seed");
        let list = run(&JobsAction::List { limit: 10 }, dir.path()).expect("list");
        assert!(list.contains("jobs: 1 pending, 1 dead"), "{list}");
        let show = run(&JobsAction::Show { id: b }, dir.path()).expect("show");
        assert!(show.contains("state:      dead\n"), "{show}");
        let err = run(&JobsAction::Show { id: 99 }, dir.path()).expect_err("unknown");
        assert!(err.starts_with("no job 99 in "), "{err}");
        let out = run(&JobsAction::Retry { id: b }, dir.path()).expect("retry dead");
        assert_eq!(
            out,
            format!("job {b}: moved from dead-letter to pending, attempts reset (0/1), due now\n")
        );
        let out = run(&JobsAction::Retry { id: a }, dir.path()).expect("retry pending");
        assert_eq!(out, format!("job {a}: pending, now due\n"));
        assert!(run(&JobsAction::Retry { id: 99 }, dir.path()).is_err());
        let out = run(&JobsAction::Purge { pending: false }, dir.path()).expect("purge");
        assert_eq!(out, "purged 0 dead-letter job(s)\n");
        let out = run(&JobsAction::Purge { pending: true }, dir.path()).expect("purge all");
        assert_eq!(out, "purged 2 job(s), dead-letter and pending\n");
    }
}
