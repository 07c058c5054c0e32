//! Tests of `config::toml_jobs`: `[jobs]` and `[[timer]]` read from a real file, every key's
//! good and bad values with the exact line and key reported.
use super::*;
use crate::config::jobs::JobsConfig;
use crate::config::toml_file::apply_file;
use std::fs;

fn defaults() -> Config {
    Config::default()
}

fn load(src: &str) -> Res<Config> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wsrun.toml");
    fs::write(&path, src).expect("write");
    let mut config = defaults();
    apply_file(&path, "wsrun.toml", &mut config).map(|_| config)
}

fn jobs(body: &str) -> Res<JobsConfig> {
    load(&format!("[jobs]\n{body}\n")).map(|c| c.jobs)
}

/// One `[[timer]]` after two blank lines; `body` starts on line 4.
fn timer(body: &str) -> Res<Vec<TimerConfig>> {
    load(&format!("\n\n[[timer]]\n{body}\n")).map(|c| c.timers)
}

const T: &str = "name = \"t\"\npath = \"/tasks\"\n";

/// Asserts that loading `src` failed in wsrun.toml at `line`, on `key`, saying `want`.
fn assert_located<T: std::fmt::Debug>(
    result: Res<T>,
    src: &str,
    line: usize,
    key: &str,
    want: &str,
) {
    let e = result.expect_err(src);
    assert_eq!(e.file, "wsrun.toml", "{src:?}: {e}");
    assert_eq!(
        (e.line, e.key.as_deref()),
        (Some(line), Some(key)),
        "{src:?}: {e}"
    );
    assert!(e.message.contains(want), "{src:?}: {e}");
}

#[test]
fn jobs_keys_good_values() {
    let secs = Duration::from_secs;
    let cases: &[(&str, JobsConfig)] = &[
        ("", JobsConfig::default()),
        (
            "max_attempts = 1",
            JobsConfig {
                max_attempts: 1,
                ..Default::default()
            },
        ),
        (
            "concurrency = 64",
            JobsConfig {
                concurrency: 64,
                ..Default::default()
            },
        ),
        (
            "backoff = \"250ms\"\nmax_backoff = 2",
            JobsConfig {
                backoff: Duration::from_millis(250),
                max_backoff: secs(2),
                ..Default::default()
            },
        ),
        (
            "backoff = \"10m\"\nmax_backoff = \"1h\"",
            JobsConfig {
                backoff: secs(600),
                max_backoff: secs(3600),
                ..Default::default()
            },
        ),
        (
            "backoff = 5\nmax_backoff = 5",
            JobsConfig {
                backoff: secs(5),
                max_backoff: secs(5),
                ..Default::default()
            },
        ),
        (
            "lease = 1.5",
            JobsConfig {
                lease: Duration::from_millis(1500),
                ..Default::default()
            },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(&jobs(body).expect(body), want, "{body:?}");
    }
}

#[test]
fn every_jobs_error_is_located() {
    #[rustfmt::skip]
    let cases: &[(&str, usize, &str, &str)] = &[
        ("[jobs]\nmax_attempts = 0\n", 2, "jobs.max_attempts", "at least 1"),
        ("[jobs]\nmax_attempts = -1\n", 2, "jobs.max_attempts", "at least 1"),
        ("[jobs]\nmax_attempts = \"3\"\n", 2, "jobs.max_attempts", "expected a whole number"),
        ("[jobs]\nmax_attempts = 99999999999\n", 2, "jobs.max_attempts", "too large"),
        ("[jobs]\n\nconcurrency = 0\n", 3, "jobs.concurrency", "at least 1"),
        ("[jobs]\nconcurrency = 1.5\n", 2, "jobs.concurrency", "expected a whole number, found float"),
        ("[jobs]\nbackoff = \"0s\"\n", 2, "jobs.backoff", "more than zero"),
        ("[jobs]\nbackoff = 0\n", 2, "jobs.backoff", "more than zero"),
        ("[jobs]\nbackoff = \"soon\"\n", 2, "jobs.backoff", "not a duration"),
        ("[jobs]\nmax_backoff = true\n", 2, "jobs.max_backoff", "expected a duration"),
        ("[jobs]\nmax_backoff = \"0ms\"\n", 2, "jobs.max_backoff", "more than zero"),
        ("[jobs]\nlease = \"0s\"\n", 2, "jobs.lease", "more than zero"),
        ("[jobs]\nlease = [1]\n", 2, "jobs.lease", "expected a duration"),
        ("[jobs]\nbackoff = \"10s\"\nmax_backoff = \"2s\"\n", 3, "jobs.max_backoff", "(2s) must be at least jobs.backoff (10s)"),
        ("[jobs]\nmax_backoff = \"2s\"\n\nbackoff = \"10s\"\n", 2, "jobs.max_backoff", "must be at least jobs.backoff"),
        ("[jobs]\n\nbackoff = \"10m\"\n", 3, "jobs.backoff", "above jobs.max_backoff (300s, the default)"),
        ("[jobs]\nmax_attemps = 3\n", 2, "jobs.max_attemps", "did you mean `max_attempts`"),
        ("[jobs]\nretries = 3\n", 2, "jobs.retries", "unknown key (known: max_attempts, concurrency"),
        ("[server]\n[[jobs]]\nlease = 1\n", 2, "jobs", "one [jobs] table, not [[jobs]]"),
        ("jobs = 3\n", 1, "jobs", "expected a table ([jobs]), found integer"),
        ("[jobs.extra]\nx = 1\n", 1, "jobs.extra", "unknown key"),
    ];
    for (src, line, key, want) in cases {
        assert_located(load(src), src, *line, key, want);
    }
}

#[test]
fn timer_keys_good_values() {
    let t = &timer(&format!("{T}every = \"250ms\"")).expect("minimal")[0];
    assert_eq!((t.name.as_str(), t.path.as_str()), ("t", "/tasks"));
    assert_eq!((t.method.as_str(), t.body.as_slice()), ("POST", &b""[..]));
    assert_eq!(t.schedule, Schedule::Every(Duration::from_millis(250)));
    assert_eq!((t.file.as_str(), t.path_line), ("wsrun.toml", 5));
    let cases: &[(&str, Schedule, &str, &[u8])] = &[
        (
            "every = 90",
            Schedule::Every(Duration::from_secs(90)),
            "POST",
            b"",
        ),
        (
            "every = \"1h\"\nmethod = \"GET\"",
            Schedule::Every(Duration::from_secs(3600)),
            "GET",
            b"",
        ),
        (
            "cron = \"0 3 * * *\"\nbody = \"\"",
            Schedule::cron("0 3 * * *").expect("cron"),
            "POST",
            b"",
        ),
        (
            "cron = \"*/10 * * * * *\"\nbody = \"h\\u00e9\"",
            Schedule::cron("*/10 * * * * *").expect("cron"),
            "POST",
            "hé".as_bytes(),
        ),
        (
            "every = 1\nmethod = \"PURGE\"",
            Schedule::Every(Duration::from_secs(1)),
            "PURGE",
            b"",
        ),
    ];
    for (extra, schedule, method, body) in cases {
        let t = &timer(&format!("{T}{extra}")).expect(extra)[0];
        assert_eq!(
            (&t.schedule, t.method.as_str(), t.body.as_slice()),
            (schedule, *method, *body),
            "{extra:?}"
        );
    }
}

#[test]
fn a_full_timer_list() {
    let src = r#"
[[route]]
prefix = "/"
python = "a:app"

[[timer]]
name = "cleanup"
every = "30s"
path = "/api/v2/tasks/cleanup"

[[timer]]
name = " report "
cron = "*/5 * * * *"
method = "PUT"
path = "/reports?kind=daily"
body = "{\"full\": true}"
"#;
    let timers = load(src).expect("valid").timers;
    assert_eq!(timers.len(), 2);
    let (a, b) = (&timers[0], &timers[1]);
    assert_eq!(a.name, "cleanup");
    assert_eq!(a.schedule, Schedule::Every(Duration::from_secs(30)));
    assert_eq!(
        (a.path.as_str(), a.method.as_str()),
        ("/api/v2/tasks/cleanup", "POST")
    );
    assert_eq!((a.file.as_str(), a.path_line), ("wsrun.toml", 9));
    assert_eq!(b.name, "report");
    assert_eq!(b.schedule.to_string(), "cron */5 * * * *");
    assert_eq!(
        (b.method.as_str(), b.path.as_str()),
        ("PUT", "/reports?kind=daily")
    );
    assert_eq!(b.body, br#"{"full": true}"#.to_vec());
    assert_eq!(b.path_line, 15);
}

#[test]
fn every_timer_error_is_located() {
    let every = "every = \"1s\"\n";
    #[rustfmt::skip]
    let cases: Vec<(String, usize, &str, &str)> = vec![
        // required keys and the one-schedule rule (line 3 is the [[timer]] header)
        (format!("path = \"/a\"\n{every}"), 3, "timer[1].name", "is required"),
        (format!("name = \"t\"\n{every}"), 3, "timer[1].path", "is required"),
        (T.to_string(), 3, "timer[1]", "needs a schedule"),
        (format!("{T}{every}cron = \"* * * * *\"\n"), 7, "timer[1].cron", "exactly one of `every` or `cron`, and `every` is already set"),
        (format!("{T}cron = \"* * * * *\"\n{every}"), 7, "timer[1].every", "`cron` is already set"),
        // name
        (format!("name = \"\"\npath = \"/a\"\n{every}"), 4, "timer[1].name", "is empty"),
        (format!("name = \"a\\tb\"\npath = \"/a\"\n{every}"), 4, "timer[1].name", "printable"),
        (format!("name = 3\npath = \"/a\"\n{every}"), 4, "timer[1].name", "expected a string, found integer"),
        // every
        (format!("{T}every = \"0s\"\n"), 6, "timer[1].every", "more than zero"),
        (format!("{T}every = \"often\"\n"), 6, "timer[1].every", "not a duration"),
        (format!("{T}every = false\n"), 6, "timer[1].every", "expected a duration"),
        // cron
        (format!("{T}cron = \"61 * * * *\"\n"), 6, "timer[1].cron", "not a valid cron expression"),
        (format!("{T}cron = 5\n"), 6, "timer[1].cron", "expected a string"),
        // path
        (format!("name = \"t\"\n{every}path = \"tasks\"\n"), 6, "timer[1].path", "must start with `/`"),
        (format!("name = \"t\"\n{every}path = \"/a b\"\n"), 6, "timer[1].path", "spaces or control characters"),
        (format!("name = \"t\"\n{every}path = \"/a\\u0001\"\n"), 6, "timer[1].path", "control characters"),
        (format!("name = \"t\"\n{every}path = [\"/a\"]\n"), 6, "timer[1].path", "expected a string, found array"),
        // method and body
        (format!("{T}{every}method = \"GE T\"\n"), 7, "timer[1].method", "not an HTTP method"),
        (format!("{T}{every}method = \"\"\n"), 7, "timer[1].method", "not an HTTP method"),
        (format!("{T}{every}method = 1\n"), 7, "timer[1].method", "expected a string"),
        (format!("{T}{every}body = 1\n"), 7, "timer[1].body", "expected a string, found integer"),
        // unknown keys
        (format!("{T}{every}evry = 1\n"), 7, "timer[1].evry", "did you mean `every`"),
        (format!("{T}{every}headers = {{}}\n"), 7, "timer[1].headers", "unknown key (known: name, every, cron, path, method, body)"),
    ];
    for (body, line, key, want) in &cases {
        assert_located(timer(body), body, *line, key, want);
    }
}

#[test]
fn timer_tables_shape_and_duplicate_names() {
    let one = "name = \"a\"\nevery = 1\npath = \"/a\"\n";
    #[rustfmt::skip]
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (format!("[[timer]]\n{one}\n[[timer]]\nname = \"b\"\nevery = 1\npath = \"/b\"\n\n[[timer]]\nname = \"a\"\n"), 12, "timer[3].name", "declared twice (first as timer[1])"),
        (format!("[[timer]]\n{one}\n[[timer]]\nname = \"b\"\npath = \"/b\"\n"), 6, "timer[2]", "needs a schedule"),
        ("[timer]\nname = \"a\"\n".to_string(), 1, "timer", "[[timer]] (an array of tables)"),
        ("timer = 1\n".to_string(), 1, "timer", "expected [[timer]] tables"),
        ("timer = [1]\n".to_string(), 1, "timer[1]", "expected a table"),
    ];
    for (src, line, key, want) in &cases {
        assert_located(load(src), src, *line, key, want);
    }
}

#[test]
fn unrouted_timer_paths_are_named_by_file_line_and_key() {
    let src = "[[timer]]\nname = \"a\"\nevery = 1\npath = \"/api/a?x=1\"\n\n[[timer]]\nname = \"b\"\nevery = 1\n\npath = \"/other\"\n";
    let mut config = load(src).expect("valid");
    let serves = |p: &str| p.starts_with("/api");
    let e = check_timer_routes(&config, serves).expect_err("/other is not served");
    assert_eq!(
        e.to_string(),
        "wsrun.toml:10: key `timer[2].path`: no route serves `/other` (for requests without a Host)"
    );
    assert!(check_timer_routes(&config, |_| true).is_ok());
    // The query is not part of what a route must serve.
    assert!(check_timer_routes(&config, |p| p == "/api/a" || p == "/other").is_ok());
    config.watch = Some(std::path::PathBuf::from("/handlers"));
    assert!(check_timer_routes(&config, |_| false).is_ok());
}

#[test]
fn jobs_backend_takes_a_postgres_url_and_a_password_file() {
    let got =
        jobs("backend = \"postgres://u@db:5432/w\"\npassword_file = \"/run/pw\"").expect("valid");
    let backend = got.backend.expect("a backend");
    assert_eq!(backend.url, "postgres://u@db:5432/w");
    assert_eq!(
        backend.password_file,
        Some(std::path::PathBuf::from("/run/pw"))
    );
    assert_eq!(jobs("").expect("valid").backend, None, "SQLite by default");
    let src = "[jobs]\nlease = \"1s\"\nbackend = \"mysql://x\"\n";
    assert_located(load(src), src, 3, "jobs.backend", "not a PostgreSQL URL");
    let src = "[jobs]\nbackend = \"postgres://u@db:notaport/w\"\n";
    assert_located(
        load(src),
        src,
        2,
        "jobs.backend",
        "not a valid PostgreSQL URL",
    );
    let src = "[jobs]\n\npassword_file = \"pw\"\n";
    assert_located(load(src), src, 3, "jobs.password_file", "set jobs.backend");
}

#[test]
fn the_jobs_backend_flag_wins_and_keeps_the_password_file() {
    let mut config = jobs("backend = \"postgres://a@h/x\"\npassword_file = \"/pw\"").expect("ok");
    config
        .apply_backend_flag(Some("postgresql://b@h/y"))
        .expect("a good URL");
    let backend = config.backend.clone().expect("a backend");
    assert_eq!(backend.url, "postgresql://b@h/y");
    assert_eq!(backend.password_file, Some(std::path::PathBuf::from("/pw")));
    let e = config
        .apply_backend_flag(Some("http://h"))
        .expect_err("bad");
    assert_eq!(e.key.as_deref(), Some("--jobs-backend"), "{e}");
}
