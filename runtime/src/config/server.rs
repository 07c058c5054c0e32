//! The `[server]` settings: ONE line per setting gives its name (field, `--flag` and TOML key),
//! type, default, kind of value, flag type and help.
//!
//! Adding a setting = one entry in the table below (+ reading `config.server.NAME` where it is
//! used). The macro (`settings::settings_table!`) generates `ServerConfig` and its `Default`,
//! the clap flags `ServerFlags` (help shows the default, rendered from the value), the TOML key
//! list and dispatch used by `toml_file`, and the flag application used by `cli`. Every
//! `[server]` key has a flag of the same name, except where a line says `toml KEY`
//! (`--certfile`/`tls_cert`, `--keyfile`/`tls_key`: gunicorn's flag names, the keys);
//! `watch` is the one `[server]` key outside this table (it lands in `Config::watch`, and
//! `--watch` sits with `--wasm` in `cli`).
//!
//! Owns: the settings table, `ServerConfig::bind_addrs`. Must not touch: how a kind of value
//! is read (`setting_kinds`) or the generated code's shape (`settings`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::admin::AdminBind;
use super::setting_kinds::{
    default_node, AccessLog, AccessLogFormatKind, AdminAddr, AnyPath, Binds, Codecs, Count, Dur,
    ExistingDir, Limit, LogLevel, NodeName, OptionalPath, PathList, Size, SizeUsize, Switch,
    TlsPem,
};
use super::settings::settings_table;
use super::tls::TlsFile;
pub use super::units::AccessLogFormat;
pub use super::units::DEFAULT_BIND;
use super::units::LOG_LEVELS;
use crate::accept_encoding::Codec;

settings_table! {
    /// The `[server]` table and its command-line flags.
    config ServerConfig, flags ServerFlags;

    /// Listen on HOST:PORT, :PORT or PORT (repeatable; IPv6 as [::1]:8000)
    /// `None` until a flag, the TOML file or a script's `SERVER` sets it (see `bind_addrs`).
    #[arg(short = 'b', value_name = "ADDR")]
    bind: Option<Vec<SocketAddr>> = None, read Binds, flag Vec<String>;
    /// Worker processes
    #[arg(short = 'w', value_name = "N")]
    workers: usize = 1, read Count, flag Option<usize>;
    /// Python executor threads per worker
    #[arg(value_name = "N")]
    threads: usize = 1, read Count, flag Option<usize>;
    /// Directory for durable state
    #[arg(value_name = "DIR")]
    state_dir: PathBuf = PathBuf::from(".wsrun"), read AnyPath, flag Option<PathBuf>;
    /// This node's name among the nodes that share a PostgreSQL job store
    /// Leases are held by (node, worker pid): every node needs its own name.
    #[arg(value_name = "NAME")]
    node: String = default_node(), read NodeName, flag Option<String>;
    /// Directory for spooled request bodies
    #[arg(value_name = "DIR")]
    spool_dir: PathBuf = std::env::temp_dir(), read AnyPath, flag Option<PathBuf>;
    /// Largest request body accepted, e.g. 10MiB
    /// The default for every route; a route's own `max_body_size` wins.
    #[arg(value_name = "SIZE")]
    max_body_size: u64 = 10 * 1024 * 1024, read Size, flag Option<String>;
    /// Bodies larger than this are spooled to disk
    #[arg(value_name = "SIZE")]
    spool_threshold: u64 = 1024 * 1024, read Size, flag Option<String>;
    /// Time allowed for a whole request head
    /// The whole request head must arrive within this (slowloris guard).
    #[arg(value_name = "DUR")]
    header_timeout: Duration = Duration::from_secs(10), read Dur, flag Option<String>;
    /// Base time allowed for a request body
    /// This much time, plus one second per `body_min_rate` bytes received.
    #[arg(value_name = "DUR")]
    body_timeout: Duration = Duration::from_secs(20), read Dur, flag Option<String>;
    /// Extra body time: one second per this many bytes received
    #[arg(value_name = "SIZE")]
    body_min_rate: u64 = 512, read Size, flag Option<String>;
    /// Idle time allowed between requests on a kept-alive connection
    #[arg(value_name = "DUR")]
    keepalive_timeout: Duration = Duration::from_secs(5), read Dur, flag Option<String>;
    /// Largest request head accepted
    /// Past it the client gets 431.
    #[arg(value_name = "SIZE")]
    max_header_size: usize = 16 * 1024, read SizeUsize, flag Option<String>;
    /// Most header fields in one request
    /// Past it the client gets 431.
    #[arg(value_name = "N")]
    max_headers: usize = 100, read Count, flag Option<usize>;
    /// Open connections per worker (0: the open-file limit less 256)
    /// At the cap a new connection takes the place of the oldest one serving no request (a
    /// head still arriving, or idle keep-alive); when every one is busy it gets 503. The soft
    /// open-file limit is raised to the hard limit at start-up.
    #[arg(value_name = "N")]
    max_connections: u64 = 0, read Limit, flag Option<u64>;
    /// How long SIGTERM waits for in-flight requests
    #[arg(value_name = "DUR")]
    graceful_timeout: Duration = Duration::from_secs(30), read Dur, flag Option<String>;
    /// Log level
    #[arg(value_name = "LEVEL", value_parser = clap::builder::PossibleValuesParser::new(LOG_LEVELS))]
    log_level: String = "info".to_string(), read LogLevel, flag Option<String>;
    /// Write an access log to PATH (`-` for stdout)
    /// `None`: no access log.
    #[arg(value_name = "PATH")]
    access_log: Option<String> = None, read AccessLog, flag Option<String>;
    /// Access log line format: `combined` or `json`
    /// `combined` is Apache's combined format; `json` is one JSON object per line (see the
    /// README for its fields).
    #[arg(value_name = "FORMAT")]
    access_log_format: AccessLogFormat = AccessLogFormat::Combined, read AccessLogFormatKind, flag Option<String>;
    /// Recycle a worker after this many requests (0: never)
    /// gunicorn's `max_requests`: the worker starts its replacement, then drains and exits.
    #[arg(value_name = "N")]
    max_requests: u64 = 0, read Limit, flag Option<u64>;
    /// Add a random 0..=N to each worker's `max_requests`
    /// So that workers started together do not all recycle at once.
    #[arg(value_name = "N")]
    max_requests_jitter: u64 = 0, read Limit, flag Option<u64>;
    /// Recycle a worker whose resident memory exceeds this, e.g. 512MiB (0: never)
    /// Measured from /proc/self/statm once a second; the worker is replaced, then drains.
    #[arg(value_name = "SIZE")]
    max_rss: u64 = 0, read Size, flag Option<String>;
    /// Add to the Python import path (repeatable; one value may list DIR:DIR:...)
    /// With `-c FILE`, the file's own directory is added after these (see `cli`).
    #[arg(value_name = "DIR")]
    pythonpath: Vec<PathBuf> = Vec::new(), read PathList, flag Vec<PathBuf>;
    /// Change to this directory before loading the app
    #[arg(value_name = "DIR")]
    chdir: Option<PathBuf> = None, read ExistingDir, flag Option<PathBuf>;
    /// Debug mode: tracebacks in error responses
    debug: bool = false, read Switch, flag bool;
    /// Profile the routes: each worker writes DIR/worker-N.pstats (Python) and DIR/worker-N-wasm.json (WebAssembly) when it drains
    /// Off by default, and then free: no profiler is installed and no clock read. The
    /// directory is created if need be.
    #[arg(value_name = "DIR")]
    profile: Option<PathBuf> = None, read OptionalPath, flag Option<PathBuf>;
    /// WebAssembly linear memory all instances of one worker may hold at once (0: auto)
    /// 0 means three quarters of the machine's RAM, shared by the workers; a growth past it
    /// fails inside the guest, as past its route's `memory`.
    #[arg(value_name = "SIZE")]
    wasm_memory: u64 = 0, read Size, flag Option<String>;
    /// CPU time one WebAssembly file may take to compile (whole seconds)
    /// Compiling runs in a child process; past this it is killed and the file refused (the
    /// previous version keeps serving). 60 s: the largest real component here compiles in ~1 s
    /// single-threaded, an 18 MB componentize-py hello in ~20 s (both measured here).
    #[arg(value_name = "DUR")]
    compile_timeout: Duration = Duration::from_secs(60), read Dur, flag Option<String>;
    /// Address space one WebAssembly compile may use
    /// The compile child's `RLIMIT_AS`; past it the file is refused. 4 GiB: a normal compile
    /// needs well under 1 GiB of address space (see the README's limits table).
    #[arg(value_name = "SIZE")]
    compile_memory: u64 = 4 * 1024 * 1024 * 1024, read Size, flag Option<String>;
    /// Response compression codings, in order of preference (`off` or [] for none)
    /// Negotiated with `Accept-Encoding` (its q-values first, then this order) for every route
    /// kind; a route's `compress = false` opts out.
    #[arg(value_name = "LIST")]
    compression: Vec<Codec> = Codec::ALL.to_vec(), read Codecs, flag Option<String>;
    /// Smallest response body that is compressed
    /// Below it the coding costs more than it saves (a streamed body of unknown length is
    /// always compressed).
    #[arg(value_name = "SIZE")]
    compression_min_size: u64 = 1024, read Size, flag Option<String>;
    /// Memory per worker for compressed bodies kept for reuse (0 turns it off)
    /// A whole body that a route sends again byte for byte is compressed once per codec
    /// (`server/compress_cache.rs`); bodies over 256 KiB are never kept.
    #[arg(value_name = "SIZE")]
    compression_cache: u64 = 8 * 1024 * 1024, read Size, flag Option<String>;
    /// Serve TLS with this PEM certificate chain (needs --keyfile)
    /// gunicorn's flag name; the TOML key is `tls_cert`. The default certificate: tenants may
    /// bring their own, chosen by SNI. Reloaded when the file changes.
    #[arg(value_name = "PEM")]
    certfile: Option<TlsFile> = None, read TlsPem, flag Option<PathBuf>, toml tls_cert;
    /// The PEM private key of --certfile
    /// The TOML key is `tls_key`.
    #[arg(value_name = "PEM")]
    keyfile: Option<TlsFile> = None, read TlsPem, flag Option<PathBuf>, toml tls_key;
    /// Serve /metrics (Prometheus) and /status (JSON) on HOST:PORT (off by default)
    /// The TOML key is `bind` under `[admin]`. Never one of the public addresses; served by
    /// the master process, summed over the workers.
    #[arg(value_name = "ADDR")]
    admin: Option<AdminBind> = None, read AdminAddr, flag Option<String>;
}

impl ServerConfig {
    /// `wasm_memory` as a worker enforces it: the value given, or three quarters of the
    /// machine's RAM divided by the workers.
    pub fn wasm_memory_budget(&self) -> u64 {
        if self.wasm_memory > 0 {
            return self.wasm_memory;
        }
        // SAFETY: sysconf only reads system constants.
        let (pages, page_size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let ram = u64::try_from(pages).unwrap_or(0) * u64::try_from(page_size).unwrap_or(0);
        let workers = self.workers.max(1) as u64;
        match ram {
            0 => u64::MAX,
            ram => ram / 4 * 3 / workers,
        }
    }

    /// The addresses to listen on, falling back to the default.
    pub fn bind_addrs(&self) -> Vec<SocketAddr> {
        match &self.bind {
            Some(addrs) => addrs.clone(),
            None => vec![DEFAULT_BIND],
        }
    }
}
