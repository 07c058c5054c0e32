//! Tests of `config::cli` (kept apart so the module stays readable).
use super::*;
use crate::config::jobs_cli::{JobsAction, JobsArgs};
use crate::config::route::RouteTarget;
use crate::config::server::ServerConfig;
use std::fs;
use std::time::Duration;

/// Parses a whitespace-separated command line (without the program name).
fn parse(argv: &str) -> Cli {
    let full = std::iter::once("wsrun").chain(argv.split_whitespace());
    Cli::try_parse_from(full).unwrap_or_else(|e| panic!("{argv}: {e}"))
}

fn build_in(dir: &Path, argv: &str) -> Result<Config, ConfigError> {
    build(parse(argv).run_args(), dir)
}

/// Builds `argv` expecting a command-line error about `key`; returns its message.
fn flag_err(dir: &Path, argv: &str, key: Option<&str>) -> String {
    let e = build_in(dir, argv).expect_err(argv);
    assert_eq!(
        (e.file.as_str(), e.line, e.key.as_deref()),
        (CLI_FILE, None, key),
        "{e}"
    );
    e.to_string()
}

fn python(module: &str, attr: &str) -> RouteTarget {
    let (module, attr) = (module.to_string(), attr.to_string());
    RouteTarget::Python { module, attr }
}

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

#[test]
fn plain_run_and_check_forms() {
    let cli = parse("app:application -w 2");
    assert!(!cli.is_check());
    assert_eq!(cli.run_args().target.as_deref(), Some("app:application"));
    assert_eq!(cli.run_args().server.workers, Some(2));
    let cli = parse("check -c f.toml");
    assert!(cli.is_check());
    assert_eq!(cli.run_args().config, Some(PathBuf::from("f.toml")));
    assert_eq!(cli.run_args().target, None);
    let cli = parse("check app:application --debug");
    assert!(cli.is_check());
    assert_eq!(cli.run_args().target.as_deref(), Some("app:application"));
    assert!(cli.run_args().server.debug);
    let cli = parse("-b :1 --bind 2 --pythonpath a:b --pythonpath c");
    assert_eq!(cli.run_args().server.bind, vec![":1", "2"]);
    assert_eq!(cli.run_args().server.pythonpath.len(), 2);
}

#[test]
fn options_before_a_subcommand_and_bad_values_are_errors() {
    let bad = [
        "--log-level loud a:b",
        "--workers many",
        "a:b c:d",
        "check a:b c:d",
    ];
    for argv in bad {
        let full = std::iter::once("wsrun").chain(argv.split_whitespace());
        assert!(Cli::try_parse_from(full).is_err(), "{argv}");
    }
    for argv in ["-w 2 check a:b", "a:b check", "--debug check -c x.toml"] {
        let e = build_config(&parse(argv)).expect_err(argv);
        assert_eq!(
            (e.file.as_str(), e.key.as_deref()),
            (CLI_FILE, Some("check"))
        );
        assert!(e.message.contains("go after the subcommand"), "{e}");
    }
}

#[test]
fn module_target_gives_one_root_route_and_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = build_in(dir.path(), "pkg.mod:wsgi.app").expect("valid");
    assert_eq!(c.routes.len(), 1);
    assert_eq!(
        (c.routes[0].prefix.as_str(), c.routes[0].hosts.len()),
        ("/", 0)
    );
    assert_eq!(c.routes[0].target, python("pkg.mod", "wsgi.app"));
    assert_eq!(c.script, None);
    let s = &c.server;
    assert_eq!(s.bind, None);
    assert_eq!(s.bind_addrs()[0].to_string(), "0.0.0.0:8888");
    assert_eq!((s.workers, s.threads, s.max_body_size), (1, 1, 10 << 20));
    assert_eq!(s.header_timeout, Duration::from_secs(10));
    assert_eq!((s.log_level.as_str(), s.debug), ("info", false));
}

#[test]
fn script_target_must_exist_and_is_made_absolute() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("hello.py"), "PATHS = []\n").expect("write");
    let c = build_in(dir.path(), "hello.py").expect("valid");
    assert_eq!(c.script, Some(dir.path().join("hello.py")));
    assert!(c.routes.is_empty());
    let e = flag_err(dir.path(), "missing.py", Some("TARGET"));
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn bad_targets_name_the_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (t, want) in [
        ("app", "neither"),
        ("app:create_app()", "factory"),
        ("my-app:app", "module name"),
        ("app:", "identifier"),
    ] {
        let e = flag_err(dir.path(), t, Some("TARGET"));
        assert!(e.contains(want), "{t}: {e}");
    }
}

#[test]
fn nothing_to_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = flag_err(dir.path(), "-w 2", None);
    let want = "<command line>: nothing to serve: give a script, a module:app, --wasm, --watch or -c wsrun.toml";
    assert_eq!(e, want);
    fs::write(dir.path().join("w.toml"), "[server]\nworkers = 2\n").expect("write");
    let e = flag_err(dir.path(), "check -c w.toml", None);
    assert!(e.contains("`w.toml` declares no [[route]]"), "{e}");
}

#[test]
fn bind_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = build_in(dir.path(), "a:b -b localhost:9000 -b [::1]:8000 -b :81").expect("ok");
    let got: Vec<String> = c
        .server
        .bind_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(got, ["127.0.0.1:9000", "[::1]:8000", "0.0.0.0:81"]);
    let e = flag_err(dir.path(), "a:b -b 8000 -b 0.0.0.0:8000", Some("--bind"));
    assert!(e.contains("twice"), "{e}");
    let e = flag_err(dir.path(), "a:b -b example.com:80", Some("--bind"));
    assert!(e.contains("not an IP address"), "{e}");
}

#[test]
fn every_flag_is_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir(d.join("site")).expect("mkdir");
    let argv = "a:b -w 3 --threads 4 --chdir site --pythonpath x:/abs/y --pythonpath z \
        --max-body-size 5MB --spool-threshold 64K --spool-dir spool --state-dir /var/wsrun \
        --header-timeout 250ms --body-timeout 1.5s --body-min-rate 1KiB \
        --keepalive-timeout 1m --max-header-size 8KiB --max-connections 7 \
        --graceful-timeout 1h --log-level debug --access-log - --debug --max-headers 12";
    let c = build_in(d, argv).expect("valid");
    let s = &c.server;
    assert_eq!((s.workers, s.threads, s.max_connections), (3, 4, 7));
    assert_eq!(s.max_headers, 12);
    assert_eq!(s.chdir, Some(d.join("site")));
    let want = vec![d.join("x"), PathBuf::from("/abs/y"), d.join("z")];
    assert_eq!(s.pythonpath, want);
    assert_eq!((s.max_body_size, s.spool_threshold), (5 << 20, 64 << 10));
    assert_eq!((s.body_min_rate, s.max_header_size), (1024, 8192));
    assert_eq!(s.spool_dir, d.join("spool"));
    assert_eq!(s.state_dir, PathBuf::from("/var/wsrun"));
    assert_eq!(s.header_timeout, Duration::from_millis(250));
    assert_eq!(s.body_timeout, Duration::from_millis(1500));
    assert_eq!(s.keepalive_timeout, Duration::from_secs(60));
    assert_eq!(s.graceful_timeout, Duration::from_secs(3600));
    assert_eq!(
        (s.log_level.as_str(), s.access_log.as_deref()),
        ("debug", Some("-"))
    );
    assert!(s.debug);
    let c = build_in(d, "a:b --access-log logs/access.log").expect("valid");
    let want = d.join("logs/access.log").to_string_lossy().into_owned();
    assert_eq!(c.server.access_log, Some(want));
}

#[test]
fn flag_errors_name_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    #[rustfmt::skip]
    let cases = [
        ("-w 0", "--workers", "at least 1"),
        ("--threads 0", "--threads", "at least 1"),
        ("--max-headers 0", "--max-headers", "at least 1"),
        ("--max-body-size 10XB", "--max-body-size", "unknown size unit"),
        ("--spool-threshold 1.5M", "--spool-threshold", "whole numbers"),
        ("--body-min-rate x", "--body-min-rate", "not a size"),
        ("--max-header-size=-1", "--max-header-size", "not a size"),
        ("--header-timeout 2d", "--header-timeout", "not a duration"),
        ("--body-timeout x", "--body-timeout", "not a duration"),
        ("--keepalive-timeout 1..2", "--keepalive-timeout", "not a duration"),
        ("--graceful-timeout s", "--graceful-timeout", "not a duration"),
        ("--chdir nope", "--chdir", "not a directory"),
        ("--access-log=", "--access-log", "empty"),
    ];
    for (argv, flag, want) in cases {
        let e = flag_err(dir.path(), &format!("a:b {argv}"), Some(flag));
        assert!(
            e.starts_with(&format!("<command line>: key `{flag}`: ")),
            "{e}"
        );
        assert!(e.contains(want), "{argv}: {e}");
    }
}

#[test]
fn flags_override_the_file_and_the_file_overrides_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = "[server]\nbind = \"127.0.0.1:7000\"\nworkers = 2\nthreads = 3\n\
         max_body_size = \"1MiB\"\ndebug = true\n\n[[route]]\nprefix = \"/api\"\npython = \"api:app\"\n";
    fs::write(dir.path().join("wsrun.toml"), toml).expect("write");
    let c = build_in(dir.path(), "-c wsrun.toml -w 5 -b 9000").expect("ok");
    let s = &c.server;
    assert_eq!(s.workers, 5, "flag wins");
    assert_eq!(s.bind_addrs()[0].to_string(), "0.0.0.0:9000", "flag wins");
    assert_eq!(
        (s.threads, s.max_body_size, s.debug),
        (3, 1 << 20, true),
        "file wins"
    );
    assert_eq!(s.keepalive_timeout, Duration::from_secs(5), "default kept");
    assert_eq!(c.routes.len(), 1);

    let c = build_in(dir.path(), "-c wsrun.toml site:app").expect("ok");
    let prefixes: Vec<&str> = c.routes.iter().map(|r| r.prefix.as_str()).collect();
    assert_eq!(prefixes, ["/api", "/"]);
    assert_eq!(c.routes[1].target, python("site", "app"));
}

#[test]
fn target_conflicts_with_a_file_route_at_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = "[[route]]\nprefix = \"/a\"\npython = \"a:app\"\n\n\
        [[route]]\nhosts = [\"x.test\"]\nprefix = \"/\"\npython = \"b:app\"\n";
    fs::write(dir.path().join("w.toml"), toml).expect("write");
    let e = flag_err(dir.path(), "-c w.toml c:app", Some("TARGET"));
    assert!(e.contains("w.toml:7 already routes `/`"), "{e}");
    fs::write(dir.path().join("s.py"), "").expect("write");
    let c = build_in(dir.path(), "-c w.toml s.py").expect("a script adds no route here");
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.script, Some(dir.path().join("s.py")));
}

#[test]
fn missing_config_file_is_reported_against_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = build_in(dir.path(), "-c nope.toml a:b").expect_err("missing");
    assert_eq!(
        (e.file.as_str(), e.line, e.key.as_deref()),
        ("nope.toml", None, None)
    );
    assert!(e.message.contains("cannot read"), "{e}");
}

#[test]
fn wasm_and_watch_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("h.wasm"), b"\0asm").expect("write");
    fs::create_dir(dir.path().join("handlers")).expect("mkdir");
    let c = build_in(
        dir.path(),
        "--wasm /api/v2/=h.wasm --watch handlers app:application",
    )
    .expect("valid");
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.routes[0].prefix, "/api/v2");
    assert_eq!(
        c.routes[0].target,
        RouteTarget::Wasm {
            file: dir.path().join("h.wasm")
        }
    );
    assert_eq!(c.watch, Some(dir.path().join("handlers")));
    let c = build_in(dir.path(), "--watch handlers").expect("watch alone serves");
    assert!(c.routes.is_empty());
    for (argv, key, want) in [
        ("--wasm h.wasm", "--wasm", "PREFIX=FILE"),
        ("--wasm /a=missing.wasm", "--wasm", "not a file"),
        ("--wasm a=h.wasm", "--wasm", "start with `/`"),
        (
            "--wasm /a=h.wasm --wasm /a/=h.wasm",
            "--wasm",
            "already routed",
        ),
        ("--watch nope", "--watch", "not a directory"),
        (
            "--wasm /=h.wasm app:application",
            "TARGET",
            "--wasm already routes `/`",
        ),
    ] {
        let e = flag_err(dir.path(), argv, Some(key));
        assert!(e.contains(want), "{argv}: {e}");
    }
}

fn parse_jobs(args: &[&str]) -> JobsArgs {
    let cli = Cli::try_parse_from(args).expect("parses");
    match cli.command {
        Some(Command::Jobs(jobs)) => jobs,
        other => panic!("not a jobs command: {other:?}"),
    }
}

#[test]
fn jobs_actions_and_options_parse_before_or_after_the_action() {
    let a = parse_jobs(&["wsrun", "jobs", "list"]);
    assert_eq!(a.action, JobsAction::List { limit: 100 });
    assert_eq!((a.config, a.state_dir), (None, None));
    let a = parse_jobs(&["wsrun", "jobs", "-c", "w.toml", "show", "7"]);
    assert_eq!(a.action, JobsAction::Show { id: 7 });
    assert_eq!(a.config, Some(PathBuf::from("w.toml")));
    let a = parse_jobs(&["wsrun", "jobs", "retry", "3", "--state-dir", "st"]);
    assert_eq!(a.action, JobsAction::Retry { id: 3 });
    assert_eq!(a.state_dir, Some(PathBuf::from("st")));
    let a = parse_jobs(&["wsrun", "jobs", "purge", "--pending"]);
    assert_eq!(a.action, JobsAction::Purge { pending: true });
    for bad in [
        &["wsrun", "jobs"][..],
        &["wsrun", "jobs", "show"],
        &["wsrun", "jobs", "show", "x"],
        &["wsrun", "jobs", "purge", "--all"],
    ] {
        assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn every_server_toml_key_has_a_flag_and_help_shows_the_defaults() {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let flag = |name: &str| {
        let long = name.replace('_', "-");
        cmd.get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()))
            .unwrap_or_else(|| panic!("no --{long} flag"))
    };
    for (_, field) in ServerConfig::KEYS_AND_FIELDS {
        flag(field);
    }
    // Where a TOML key differs from its flag (gunicorn's names for the flags).
    let differ: Vec<_> = ServerConfig::KEYS_AND_FIELDS
        .iter()
        .filter(|(key, field)| key != field)
        .collect();
    assert_eq!(differ, [&("tls_cert", "certfile"), &("tls_key", "keyfile")]);
    let help = |name: &str| {
        flag(name)
            .get_help()
            .map(|h| h.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        help("max_headers"),
        "Most header fields in one request [default: 100]"
    );
    assert_eq!(help("workers"), "Worker processes [default: 1]");
    assert!(
        help("bind").ends_with("[default: 0.0.0.0:8888]"),
        "{}",
        help("bind")
    );
    assert!(help("max_body_size").ends_with("[default: 10MiB]"));
    assert!(help("max_header_size").ends_with("[default: 16KiB]"));
    assert!(help("header_timeout").ends_with("[default: 10s]"));
    assert_eq!(help("debug"), "Debug mode: tracebacks in error responses");
}

#[test]
fn max_headers_flag_wins_over_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = "[server]\nmax_headers = 40\n\n[[route]]\nprefix = \"/\"\npython = \"a:b\"\n";
    fs::write(dir.path().join("w.toml"), toml).expect("write");
    let c = build_in(dir.path(), "-c w.toml").expect("valid");
    assert_eq!(c.server.max_headers, 40, "file");
    let c = build_in(dir.path(), "-c w.toml --max-headers 7").expect("valid");
    assert_eq!(c.server.max_headers, 7, "flag wins");
}

#[test]
fn the_config_files_directory_goes_last_on_the_python_path_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir_all(d.join("conf/lib")).expect("mkdir");
    let route = "[[route]]\nprefix = \"/\"\npython = \"app:app\"\n";
    fs::write(d.join("conf/plain.toml"), route).expect("write");
    let c = build_in(d, "-c conf/plain.toml").expect("valid");
    assert_eq!(c.server.pythonpath, vec![d.join("conf")]);
    let listed = format!("[server]\npythonpath = [\"lib\"]\n{route}");
    fs::write(d.join("conf/listed.toml"), listed).expect("write");
    let c = build_in(d, "-c conf/listed.toml").expect("valid");
    assert_eq!(
        c.server.pythonpath,
        vec![d.join("conf/lib"), d.join("conf")]
    );
    let dot = format!("[server]\npythonpath = [\".\", \"lib\"]\n{route}");
    fs::write(d.join("conf/dot.toml"), dot).expect("write");
    let c = build_in(d, "-c conf/dot.toml").expect("valid");
    assert_eq!(
        c.server.pythonpath.len(),
        2,
        "not twice: {:?}",
        c.server.pythonpath
    );
    let c = build_in(d, "-c conf/listed.toml --pythonpath x").expect("valid");
    assert_eq!(
        c.server.pythonpath,
        vec![d.join("x"), d.join("conf")],
        "flag replaces the file's list"
    );
    let c = build_in(d, "a:b --pythonpath x").expect("valid");
    assert_eq!(
        c.server.pythonpath,
        vec![d.join("x")],
        "no file, no extra entry"
    );
}

#[test]
fn node_and_jobs_backend_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = build_in(
        dir.path(),
        "app:app --node web-1 --jobs-backend postgres://u@h/db",
    )
    .expect("valid");
    assert_eq!(c.server.node, "web-1");
    assert_eq!(
        c.jobs.backend.map(|b| b.url).as_deref(),
        Some("postgres://u@h/db")
    );
    let c = build_in(dir.path(), "app:app").expect("valid");
    assert!(
        c.server.node.ends_with(&format!("-{}", std::process::id())),
        "{}",
        c.server.node
    );
    assert_eq!(c.jobs.backend, None);
    let msg = flag_err(dir.path(), "app:app --node a/b", Some("--node"));
    assert!(msg.contains("not a node name"), "{msg}");
    let msg = flag_err(
        dir.path(),
        "app:app --jobs-backend x",
        Some("--jobs-backend"),
    );
    assert!(msg.contains("not a PostgreSQL URL"), "{msg}");
}
