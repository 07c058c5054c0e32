//! The command line of `wsrun bench`: `wsrun bench [OPTIONS] URL`, `wsrun bench history` and
//! `wsrun bench compare A B`.
//!
//! Owns: the clap definitions (`BenchArgs`, `BenchAction`, `Mode`), flattened into wsrun's CLI
//! as one subcommand. Values are kept as typed; `plan` checks them and names the flag in its
//! errors. Must not touch: sockets, the store, output.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// `wsrun bench`: load a URL and record the run; or list and compare recorded runs.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub action: Option<BenchAction>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// The SQLite file runs are stored in
    #[arg(
        long,
        value_name = "FILE",
        default_value = ".wsrun/bench.sqlite3",
        global = true
    )]
    pub db: PathBuf,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum BenchAction {
    /// List the recorded runs, newest first
    History {
        /// Show at most this many runs
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
    },
    /// Print the differences between two recorded runs (ids from `history`)
    Compare { a: i64, b: i64 },
}

/// What a load run sends, how hard, and where the result goes.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct LoadArgs {
    /// The target: http://HOST[:PORT][/PATH]
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// saturate (as fast as the connections go), slow (slowloris) or flood (connection attempts)
    #[arg(long, value_enum, default_value_t = Mode::Saturate)]
    pub mode: Mode,
    /// Open connections (slow mode: trickling connections; flood: attempts in flight)
    #[arg(short = 'c', long, value_name = "N", default_value_t = 10)]
    pub connections: usize,
    /// Run this long, e.g. 10s, 500ms, 1m [default: 10s unless -n is given]
    #[arg(
        short = 'd',
        long,
        value_name = "DURATION",
        conflicts_with = "requests"
    )]
    pub duration: Option<String>,
    /// Send exactly this many requests, then stop
    #[arg(short = 'n', long, value_name = "N")]
    pub requests: Option<u64>,
    /// The request method (POST when --body-size is given and this is not)
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Bytes of body each POSTing connection sends per request
    #[arg(long, value_name = "BYTES")]
    pub body_size: Option<u64>,
    /// An extra request header, "Name: value" (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// M of the connections POST a body of --body-size (default 1024) while the rest GET
    #[arg(long, value_name = "M")]
    pub post_clients: Option<usize>,
    /// Fixed arrival rate in requests per second over all connections; latency counts from the
    /// intended send time
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Close the connection after every request
    #[arg(long)]
    pub no_keepalive: bool,
    /// Count a request as timed out after this long
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: String,
    /// Slow mode: trickle request heads (`head`) or bodies (`body`)
    #[arg(long, value_enum, default_value_t = SlowPart::Head)]
    pub slow_part: SlowPart,
    /// Slow mode: bytes sent per second on each connection
    #[arg(long, value_name = "BYTES", default_value_t = 1)]
    pub slow_rate: u64,
    /// A name for this run in the store [default: MODE METHOD PATH]
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// Print the run as one JSON object instead of the summary
    #[arg(long)]
    pub json: bool,
    /// Do not store the run in --db
    #[arg(long)]
    pub no_store: bool,
    /// POST the run as JSON to this results board URL
    #[arg(long, value_name = "URL")]
    pub report: Option<String>,
    /// Start wsrun with the bundled suite (examples/bench-suite/) on a free port and run each
    /// scenario (hello, iterhello, long, getenv, post; Python and WebAssembly) for -d each
    /// [default: 5s]
    #[arg(long, conflicts_with = "url")]
    pub suite: bool,
    /// The suite's directory (its wsrun.toml) [default: examples/bench-suite under the current
    /// directory or the checkout the binary was built in]
    #[arg(long, value_name = "DIR", requires = "suite")]
    pub suite_dir: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Saturate,
    Slow,
    Flood,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Saturate => "saturate",
            Mode::Slow => "slow",
            Mode::Flood => "flood",
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowPart {
    Head,
    Body,
}
