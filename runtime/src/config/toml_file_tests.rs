//! Tests of `config::toml_file` (kept apart so the module stays readable).
use super::*;
use crate::config::route::RouteTarget;
use crate::config::wasm_settings::WasmLimits;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

type Loaded = Res<(Config, Option<usize>)>;

fn defaults() -> Config {
    Config::default()
}

fn where_(e: &ConfigError) -> (Option<usize>, Option<&str>) {
    (e.line, e.key.as_deref())
}

/// Writes `src` as `wsrun.toml` in a fresh temp dir (with `public/` and `app/` subdirs).
fn load(src: &str) -> (tempfile::TempDir, Loaded) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("public")).expect("mkdir");
    fs::create_dir(dir.path().join("app")).expect("mkdir");
    fs::write(dir.path().join("h.wasm"), b"\0asm").expect("write");
    let path = dir.path().join("wsrun.toml");
    fs::write(&path, src).expect("write");
    let mut config = defaults();
    let result = apply_file(&path, "conf/wsrun.toml", &mut config).map(|root| (config, root));
    (dir, result)
}

fn load_err(src: &str) -> ConfigError {
    let (_dir, result) = load(src);
    result.expect_err("should fail")
}

#[test]
fn a_full_file_is_applied_and_paths_resolve_against_its_directory() {
    let src = r#"
# comment
[server]
bind = ["localhost:9000", ":9001"]
workers = 4
threads = 0x2
state_dir = "state"
spool_dir = "/var/spool/wsrun"
max_body_size = "20MiB"
spool_threshold = 65_536
header_timeout = "250ms"
body_timeout = 3
body_min_rate = "1K"
keepalive_timeout = 1.5
max_header_size = "8KiB"
max_headers = 50
max_connections = 10
graceful_timeout = "1m"
log_level = "DEBUG"
access_log = "logs/access.log"
pythonpath = "lib:/opt/py"
chdir = "app"
debug = true

[[route]]
prefix = "/static/"
hosts = ["Example.COM", "*.example.com", "example.com"]
static = "public"
max_body_size = 0

[[route]]
prefix = "/"
python = "legacy.app:application"
"#;
    let (dir, result) = load(src);
    let (c, root_line) = result.expect("valid");
    let d = dir.path();
    let s = &c.server;
    let binds: Vec<String> = s.bind_addrs().iter().map(|a| a.to_string()).collect();
    assert_eq!(binds, ["127.0.0.1:9000", "0.0.0.0:9001"]);
    assert_eq!(
        (s.workers, s.threads, s.max_headers, s.max_connections),
        (4, 2, 50, 10)
    );
    assert_eq!(s.state_dir, d.join("state"));
    assert_eq!(s.spool_dir, PathBuf::from("/var/spool/wsrun"));
    assert_eq!((s.max_body_size, s.spool_threshold), (20 << 20, 65536));
    assert_eq!((s.body_min_rate, s.max_header_size), (1024, 8192));
    assert_eq!(s.header_timeout, Duration::from_millis(250));
    assert_eq!(s.body_timeout, Duration::from_secs(3));
    assert_eq!(s.keepalive_timeout, Duration::from_millis(1500));
    assert_eq!(s.graceful_timeout, Duration::from_secs(60));
    assert_eq!(s.log_level, "debug");
    let log = d.join("logs/access.log").to_string_lossy().into_owned();
    assert_eq!(s.access_log, Some(log));
    assert_eq!(s.pythonpath, vec![d.join("lib"), PathBuf::from("/opt/py")]);
    assert_eq!(s.chdir, Some(d.join("app")));
    assert!(s.debug);
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.routes[0].prefix, "/static");
    assert_eq!(c.routes[0].hosts, ["example.com", "*.example.com"]);
    assert_eq!(
        c.routes[0].target,
        RouteTarget::Static {
            root: d.join("public")
        }
    );
    assert_eq!(c.routes[0].max_body_size, Some(0));
    assert_eq!(c.routes[1].max_body_size, None);
    assert_eq!(
        c.routes[1].target,
        RouteTarget::Python {
            module: "legacy.app".into(),
            attr: "application".into()
        }
    );
    assert_eq!(root_line, Some(32));
}

#[test]
fn empty_file_pythonpath_array_and_access_log_stdout() {
    let (c, root) = load("# nothing\n").1.expect("valid");
    assert_eq!((root, c.routes.len(), c.server.bind), (None, 0, None));
    let (d, result) = load("[server]\npythonpath = [\"a:b\", \"/c\"]\naccess_log = \"-\"\n");
    let (c, _) = result.expect("valid");
    assert_eq!(
        c.server.pythonpath,
        vec![d.path().join("a:b"), PathBuf::from("/c")]
    );
    assert_eq!(c.server.access_log.as_deref(), Some("-"));
}

#[test]
fn error_display_names_file_line_and_key() {
    let e = load_err("[server]\nworkers = 2\n\nwokers = 3\n");
    assert_eq!(
        e.to_string(),
        "conf/wsrun.toml:4: key `server.wokers`: unknown key; did you mean `workers`?"
    );
}

#[test]
fn every_error_is_located() {
    let route = "\n[[route]]\nprefix = \"/\"\npython = \"a:app\"\n";
    #[rustfmt::skip]
    let cases: &[(&str, Option<usize>, Option<&str>, &str)] = &[
        // syntax
        ("[server]\nworkers = 2\nbind = \n", Some(3), None, "TOML syntax"),
        ("[server]\nworkers = 1\n[server]\n", Some(3), None, "TOML syntax"),
        // unknown keys and tables
        ("\n\n[servre]\n", Some(3), Some("servre"), "did you mean `server`"),
        ("workers = 2\n", Some(1), Some("workers"), "under [server]"),
        ("[server]\nzzz = 1\naaa = 2\n", Some(2), Some("server.zzz"), "unknown key (known: bind, workers"),
        ("[[route]]\nprefix = \"/\"\nstaic = \"public\"\n", Some(3), Some("route[1].staic"), "did you mean `static`"),
        ("[server.tls]\ncert = \"x\"\n", Some(1), Some("server.tls"), "unknown key"),
        ("[[route]]\nprefix = \"/\"\npython = \"a:b\"\n\n[[route]]\nprfix = \"/x\"\n", Some(6), Some("route[2].prfix"), "did you mean `prefix`"),
        // timers (more in toml_jobs_tests.rs)
        ("[server]\n\n[[timer]]\nname = \"x\"\n", Some(3), Some("timer[1]"), "needs a schedule"),
        // wasm routes and tenants
        ("[[route]]\nprefix = \"/a\"\nwasm = \"x.wasm\"\n", Some(3), Some("route[1].wasm"), "is not a file"),
        ("[[route]]\nprefix = \"/a\"\npython = \"a:b\"\nenv = { A = \"1\" }\n", Some(4), Some("route[1].env"), "applies to wasm routes only"),
        ("[[route]]\nprefix = \"/a\"\nwasm = \"h.wasm\"\nmemory = \"1KiB\"\n", Some(4), Some("route[1].memory"), "between 64KiB and 4GiB"),
        ("[[route]]\nprefix = \"/a\"\nwasm = \"h.wasm\"\ntimeout = \"0s\"\n", Some(4), Some("route[1].timeout"), "more than zero"),
        ("[[route]]\nprefix = \"/a\"\nwasm = \"h.wasm\"\nmax_concurrency = 0\n", Some(4), Some("route[1].max_concurrency"), "at least 1"),
        ("[[route]]\nprefix = \"/a\"\nwasm = \"h.wasm\"\nallow_outbound = [\"ftp://x\"]\n", Some(4), Some("route[1].allow_outbound"), "http or https"),
        ("[[route]]\nprefix = \"/a\"\nwasm = \"h.wasm\"\nenv = { A = 1 }\n", Some(4), Some("route[1].env.A"), "expected a string"),
        ("[[route]]\nprefix = \"/a\"\nwasm = \"h.wasm\"\nenv = \"A=1\"\n", Some(4), Some("route[1].env"), "a table of strings"),
        ("[[tenant]]\nname = \"x\"\n", Some(1), Some("tenant[1].hosts"), "is required"),
        ("[[tenant]]\nhosts = [\"a.test\"]\n", Some(1), Some("tenant[1].name"), "is required"),
        ("[[tenant]]\nname = \"x\"\nhosts = [\"a.test\"]\n", Some(1), Some("tenant[1]"), "no [[tenant.route]]"),
        ("[[tenant]]\nname = \"x\"\nhosts = [\"a.test\"]\nmemroy = 1\n", Some(4), Some("tenant[1].memroy"), "did you mean `memory`"),
        ("[[tenant]]\nname = \"x\"\nhosts = [\"a.test\"]\n[[tenant.route]]\nprefix = \"/\"\npython = \"a:b\"\n", Some(6), Some("tenant[1].route[1].python"), "untrusted"),
        ("[[tenant]]\nname = \"x\"\nhosts = [\"a.test\"]\n[[tenant.route]]\nprefix = \"/\"\nhosts = [\"b.test\"]\nwasm = \"h.wasm\"\n", Some(6), Some("tenant[1].route[1].hosts"), "tenant's hosts"),
        ("[[tenant]]\nname = \"x\"\nhosts = [\"a.test\"]\n[[tenant.route]]\nwasm = \"h.wasm\"\n", Some(4), Some("tenant[1].route[1].prefix"), "is required"),
        ("[[tenant]]\nname = \"x\"\nhosts = [\"a.test\"]\n[[tenant.route]]\nprefix = \"/\"\nwasm = \"h.wasm\"\n\n[[tenant]]\nname = \"y\"\nhosts = [\"A.test\"]\n", Some(10), Some("tenant[2].hosts"), "already belongs to tenant `x`"),
        ("[[tenant]]\nname = \"x\"\nhosts = [\"a.test\"]\n[[tenant.route]]\nprefix = \"/\"\nwasm = \"h.wasm\"\n\n[[tenant]]\nname = \"x\"\n", Some(9), Some("tenant[2].name"), "declared twice"),
        ("[[route]]\nprefix = \"/\"\nhosts = [\"a.test\"]\nwasm = \"h.wasm\"\n\n[[tenant]]\nname = \"x\"\nhosts = [\"a.test\"]\n", Some(8), Some("tenant[1].hosts"), "listed by a [[route]]"),
        ("[server]\nwatch = \"nope\"\n", Some(2), Some("server.watch"), "not a directory"),
        // wrong types
        ("[server]\nworkers = \"2\"\n", Some(2), Some("server.workers"), "expected a whole number, found string"),
        ("server = 5\n", Some(1), Some("server"), "expected a table ([server]), found integer"),
        ("[server]\nbind = 8000\n", Some(2), Some("server.bind"), "expected a string or an array of strings"),
        ("[server]\nbind = [\n  \"127.0.0.1:1\",\n  2,\n]\n", Some(4), Some("server.bind"), "expected strings in the array, found integer"),
        ("[server]\ndebug = \"yes\"\n", Some(2), Some("server.debug"), "expected true or false"),
        ("[server]\nmax_body_size = true\n", Some(2), Some("server.max_body_size"), "expected a size"),
        ("[server]\nheader_timeout = [1]\n", Some(2), Some("server.header_timeout"), "expected a duration"),
        ("[server]\nstate_dir = 1\n", Some(2), Some("server.state_dir"), "expected a string"),
        ("route = 1\n", Some(1), Some("route"), "expected [[route]] tables"),
        ("route = [1]\n", Some(1), Some("route[1]"), "expected a table"),
        ("[route]\nprefix = \"/\"\n", Some(1), Some("route"), "[[route]]"),
        // bad values
        ("[server]\nworkers = 0\n", Some(2), Some("server.workers"), "at least 1"),
        ("[server]\nthreads = -3\n", Some(2), Some("server.threads"), "at least 1"),
        ("[server]\nmax_connections = 99999999999999999999\n", Some(2), Some("server.max_connections"), "too large"),
        ("[server]\nspool_threshold = -1\n", Some(2), Some("server.spool_threshold"), "negative"),
        ("[server]\n\nmax_body_size = \"10XB\"\n", Some(3), Some("server.max_body_size"), "unknown size unit"),
        ("[server]\nbody_timeout = \"2 days\"\n", Some(2), Some("server.body_timeout"), "not a duration"),
        ("[server]\nkeepalive_timeout = -1.0\n", Some(2), Some("server.keepalive_timeout"), "not a duration"),
        ("[server]\nbind = \"example.com:80\"\n", Some(2), Some("server.bind"), "not an IP address"),
        ("[server]\nbind = []\n", Some(2), Some("server.bind"), "no address"),
        ("[server]\nbind = [\":1\",\n \"0.0.0.0:1\"]\n", Some(3), Some("server.bind"), "listed twice"),
        ("[server]\nlog_level = \"loud\"\n", Some(2), Some("server.log_level"), "not a log level"),
        ("[server]\nchdir = \"missing\"\n", Some(2), Some("server.chdir"), "not a directory"),
        ("[server]\nspool_dir = \"\"\n", Some(2), Some("server.spool_dir"), "empty path"),
        // routes
        ("[[route]]\npython = \"a:b\"\n", Some(1), Some("route[1].prefix"), "is required"),
        ("[[route]]\nprefix = \"/a\"\n\n[[route]]\nprefix = \"/b\"\n", Some(1), Some("route[1]"), "needs a target"),
        ("[[route]]\nprefix = \"/a\"\npython = \"a:b\"\nstatic = \"public\"\n", Some(4), Some("route[1].static"), "exactly one of"),
        ("[[route]]\nprefix = \"api\"\npython = \"a:b\"\n", Some(2), Some("route[1].prefix"), "start with `/`"),
        ("[[route]]\nprefix = \"/a/../b\"\npython = \"a:b\"\n", Some(2), Some("route[1].prefix"), "`..`"),
        ("[[route]]\nprefix = \"/a?x\"\npython = \"a:b\"\n", Some(2), Some("route[1].prefix"), "'?'"),
        ("[[route]]\nprefix = \"/\"\nhosts = [\"a.test\",\n  \"b.test:8080\"]\npython = \"a:b\"\n", Some(4), Some("route[1].hosts"), "has a port"),
        ("[[route]]\nprefix = \"/\"\nhosts = []\npython = \"a:b\"\n", Some(3), Some("route[1].hosts"), "omit `hosts`"),
        ("[[route]]\nprefix = \"/\"\npython = \"a:create_app()\"\n", Some(3), Some("route[1].python"), "factory"),
        ("[[route]]\nprefix = \"/\"\nstatic = \"nope\"\n", Some(3), Some("route[1].static"), "not a directory"),
        ("[[route]]\nprefix = \"/\"\nstatic = \"public\"\nmax_body_size = \"x\"\n", Some(4), Some("route[1].max_body_size"), "not a size"),
        // static routes and compression
        ("[[route]]\nprefix = \"/\"\nstatic = \"public\"\nmax_age = \"soon\"\n", Some(4), Some("route[1].max_age"), "duration"),
        ("[[route]]\nprefix = \"/\"\nstatic = \"public\"\nlisting = \"yes\"\n", Some(4), Some("route[1].listing"), "true or false"),
        ("[[route]]\nprefix = \"/\"\nstatic = \"public\"\nhiden = true\n", Some(4), Some("route[1].hiden"), "did you mean `hidden`"),
        ("[[route]]\nprefix = \"/\"\npython = \"a:b\"\nprecompressed = true\n", Some(4), Some("route[1].precompressed"), "static routes only"),
        ("[[route]]\nprefix = \"/\"\npython = \"a:b\"\ncompress = 0\n", Some(4), Some("route[1].compress"), "true or false"),
        ("[server]\ncompression = [\"gzip\", \"deflate\"]\n", Some(2), Some("server.compression"), "unknown coding `deflate`"),
        ("[server]\ncompression = [\"br\", \"br\"]\n", Some(2), Some("server.compression"), "listed twice"),
        ("[server]\ncompression = \"gzip\"\n", Some(2), Some("server.compression"), "an array"),
        ("[server]\ncompression_min_size = \"big\"\n", Some(2), Some("server.compression_min_size"), "not a size"),
    ];
    for (src, line, key, want) in cases {
        let e = load_err(src);
        assert_eq!(e.file, "conf/wsrun.toml", "{src:?}: {e}");
        assert_eq!(where_(&e), (*line, *key), "{src:?}: {e}");
        assert!(e.message.contains(want), "{src:?}: {e}");
    }
    // Sanity: the shared route snippet is valid on its own.
    assert!(load(route).1.is_ok());
}

#[test]
fn static_and_compression_keys() {
    let src = "[server]\ncompression = [\"gzip\", \"zstd\"]\ncompression_min_size = \"2KiB\"\n\n[[route]]\nprefix = \"/s\"\nstatic = \"public\"\nmax_age = \"1h\"\nprecompressed = true\nlisting = true\nhidden = true\ncompress = false\n\n[[route]]\nprefix = \"/\"\npython = \"a:app\"\n";
    let (_dir, result) = load(src);
    let (c, _) = result.expect("valid");
    use crate::accept_encoding::Codec;
    assert_eq!(c.server.compression, [Codec::Gzip, Codec::Zstd]);
    assert_eq!(c.server.compression_min_size, 2048);
    let options = &c.routes[0].static_options;
    assert_eq!(options.max_age, Some(3600));
    assert!(options.precompressed && options.listing && options.hidden);
    assert!(!c.routes[0].compress);
    assert!(c.routes[1].compress);
    assert_eq!(c.routes[1].static_options, Default::default());
    let (_dir, off) =
        load("[server]\ncompression = []\n[[route]]\nprefix = \"/\"\npython = \"a:app\"\n");
    assert!(off.expect("valid").0.server.compression.is_empty());
    let (_dir, default) = load("[[route]]\nprefix = \"/\"\npython = \"a:app\"\n");
    assert_eq!(default.expect("valid").0.server.compression, Codec::ALL);
}

#[test]
fn duplicate_prefixes_for_overlapping_hosts() {
    let two = |a: &str, b: &str| {
        format!("[[route]]\nprefix = \"/api\"\n{a}python = \"a:b\"\n\n[[route]]\nprefix = \"/api/\"\n{b}python = \"c:d\"\n")
    };
    let e = load_err(&two("", ""));
    assert_eq!(
        (e.line, e.key.as_deref()),
        (Some(6), Some("route[2].prefix"))
    );
    assert!(e.message.contains("already route[1] (line 2)"), "{e}");
    let e = load_err(&two(
        "hosts = [\"a.test\", \"b.test\"]\n",
        "hosts = [\"B.test\"]\n",
    ));
    assert_eq!(
        (e.line, e.key.as_deref()),
        (Some(7), Some("route[2].prefix"))
    );
    for (a, b) in [
        ("hosts = [\"a.test\"]\n", "hosts = [\"b.test\"]\n"),
        ("", "hosts = [\"b.test\"]\n"),
        ("hosts = [\"a.test\"]\n", ""),
    ] {
        let (_d, result) = load(&two(a, b));
        let (c, root) = result.expect("different host sets may share a prefix");
        assert_eq!((c.routes.len(), root), (2, None));
    }
}

#[test]
fn missing_file_is_reported_against_it() {
    let mut config = defaults();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope.toml");
    let e = apply_file(&path, "nope.toml", &mut config).expect_err("missing");
    assert_eq!(
        (e.file.as_str(), e.line, e.key.as_deref()),
        ("nope.toml", None, None)
    );
    assert!(e.message.contains("cannot read"), "{e}");
}

#[test]
fn line_numbers_count_crlf_and_multibyte_text() {
    let e = load_err("# héllo wörld ✓\r\n[server]\r\n\r\nworkers = 0\r\n");
    assert_eq!(
        (e.line, e.key.as_deref()),
        (Some(4), Some("server.workers"))
    );
}

#[test]
fn wasm_routes_and_tenants() {
    let src = r#"
[[route]]
prefix = "/api/v2"
wasm = "h.wasm"
memory = "64MiB"
timeout = "2s"
max_concurrency = 8
allow_outbound = ["https://api.example.com", "http://127.0.0.1:9000"]
env = { MODE = "prod", B = "2" }

[[tenant]]
name = "acme"
hosts = ["acme.test", "*.acme.test"]
memory = "32MiB"
max_concurrency = 4
env = { WHO = "acme" }
  [[tenant.route]]
  prefix = "/"
  wasm = "h.wasm"
  [[tenant.route]]
  prefix = "/files"
  static = "public"
"#;
    let (_dir, loaded) = load(src);
    let (config, _) = loaded.expect("valid");
    assert_eq!(config.routes.len(), 3);
    let api = &config.routes[0];
    assert!(matches!(&api.target, RouteTarget::Wasm { file } if file.ends_with("h.wasm")));
    let limits = config.wasm_limits(api);
    assert_eq!(limits.memory, 64 << 20);
    assert_eq!(limits.timeout, Duration::from_secs(2));
    assert_eq!(limits.max_concurrency, 8);
    assert_eq!(limits.allow_outbound.len(), 2);
    assert_eq!(limits.env[0], ("MODE".to_string(), "prod".to_string()));
    let site = &config.routes[1];
    assert_eq!(site.tenant, Some(0));
    assert_eq!(site.hosts, vec!["acme.test", "*.acme.test"]);
    let limits = config.wasm_limits(site);
    assert_eq!(limits.memory, 32 << 20);
    assert_eq!(limits.timeout, WasmLimits::default().timeout);
    assert_eq!(limits.env, vec![("WHO".to_string(), "acme".to_string())]);
    assert_eq!(config.tenants[0].defaults.max_concurrency, Some(4));
    assert!(matches!(
        config.routes[2].target,
        RouteTarget::Static { .. }
    ));
}

#[test]
fn tls_files_remember_where_they_were_named() {
    let src = "[server]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n\n[[tenant]]\nname = \"a\"\n\
               hosts = [\"a.test\"]\ntls_cert = \"a.pem\"\ntls_key = \"a.key\"\n\
               [[tenant.route]]\nprefix = \"/\"\nwasm = \"h.wasm\"\n";
    let (dir, result) = load(src);
    let (config, _) = result.expect("loads");
    let cert = config.server.certfile.expect("certfile");
    assert_eq!(cert.path, dir.path().join("c.pem"));
    assert_eq!(
        (cert.source.as_str(), cert.line, cert.key.as_str()),
        ("conf/wsrun.toml", Some(2), "server.tls_cert")
    );
    assert_eq!(
        config.server.keyfile.expect("keyfile").key,
        "server.tls_key"
    );
    let tenant = &config.tenants[0];
    let key = tenant.tls_key.as_ref().expect("tenant key");
    assert_eq!((key.key.as_str(), key.line), ("tenant[1].tls_key", Some(9)));
    assert!(tenant.tls_cert.is_some());
}

#[test]
fn shadow_and_canary_tables_are_read_and_checked() {
    let src = r#"
[[route]]
prefix = "/a"
python = "app:app"
  [route.shadow]
  wasm = "h.wasm"
  ignore = ["$.items[*].id", "header:ETag"]
  [route.canary]
  python = "new:app"
  percent = 12.5
  sticky = "header:X-User"
"#;
    let (_dir, loaded) = load(src);
    let (config, _) = loaded.expect("valid");
    let m = &config.routes[0].migrate;
    let shadow = m.shadow.as_ref().expect("a shadow");
    assert_eq!(shadow.methods, vec!["GET", "HEAD", "OPTIONS"]);
    assert_eq!(shadow.ignore_headers, vec!["etag"]);
    assert_eq!(shadow.ignore_paths[0].to_string(), "$.items[*].id");
    let canary = m.canary.as_ref().expect("a canary");
    assert_eq!(canary.percent, 12.5);
    assert_eq!(canary.rollback_window, 200);

    let e = load_err("[[route]]\nprefix = \"/\"\npython = \"a:b\"\n[route.shadow]\nwasm = \"h.wasm\"\nsample = 2\n");
    assert_eq!(where_(&e), (Some(6), Some("route[1].shadow.sample")));
    let e = load_err(
        "[[route]]\nprefix = \"/\"\nstatic = \"public\"\n[route.shadow]\nwasm = \"h.wasm\"\n",
    );
    assert_eq!(where_(&e), (Some(4), Some("route[1].shadow")));
    let e = load_err("[[route]]\nprefix = \"/\"\npython = \"a:b\"\n[route.canary]\nwasm = \"h.wasm\"\npercent = 1\nrollback_window = 0\n");
    assert_eq!(
        where_(&e),
        (Some(7), Some("route[1].canary.rollback_window"))
    );
}
