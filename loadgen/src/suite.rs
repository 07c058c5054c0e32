//! `wsrun bench --suite`: the Fapws3 benchmark suite. Starts wsrun with examples/bench-suite/
//! (see `suite_server`), runs each scenario in turn against it — GET `/hello`, `/iterhello`,
//! `/long`, `/getenv` and a POST scenario (`--post-clients` of the connections POST), first
//! from Python, then from WebAssembly (`/wasm/...`) — stores and reports every run like a
//! single one, prints a summary table and stops the server.
//!
//! Owns: the scenario list and the per-scenario flags (`-c`, `-d`/`-n` apply to each; -d
//! defaults to `DEFAULT_DURATION`). Must not touch: how a run is measured (`measure`).

use std::path::{Path, PathBuf};

use crate::args::{BenchArgs, LoadArgs, Mode};
use crate::machine::Versions;
use crate::measure::{self, Failure};
use crate::output;
use crate::suite_server::SuiteServer;

/// Each scenario's length unless -d or -n says otherwise.
const DEFAULT_DURATION: &str = "5s";
/// Where the suite lives in a checkout.
const SUITE_DIR: &str = "examples/bench-suite";

/// One scenario: a variant (where the route is mounted) and a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub variant: &'static str,
    pub route: &'static str,
    pub post: bool,
}

impl Scenario {
    fn path(&self) -> String {
        match self.variant {
            "wasm" => format!("/wasm/{}", self.route),
            _ => format!("/{}", self.route),
        }
    }

    fn name(&self, prefix: Option<&str>) -> String {
        format!(
            "{} {} {}",
            prefix.unwrap_or("suite"),
            self.variant,
            self.route
        )
    }
}

/// Every scenario, in the order they run.
pub fn scenarios() -> Vec<Scenario> {
    let routes = [
        ("hello", false),
        ("iterhello", false),
        ("long", false),
        ("getenv", false),
        ("post", true),
    ];
    ["python", "wasm"]
        .into_iter()
        .flat_map(|variant| {
            routes.map(|(route, post)| Scenario {
                variant,
                route,
                post,
            })
        })
        .collect()
}

/// `--suite`: start the server, run every scenario, stop the server, print the table.
pub fn main(args: &BenchArgs, versions: Versions) -> Result<String, Failure> {
    let load = &args.load;
    if load.mode != Mode::Saturate {
        return Err(Failure::Usage(
            "--suite: runs saturate scenarios; drop --mode".into(),
        ));
    }
    let dir = suite_dir(load.suite_dir.as_deref())?;
    let mut store = measure::open_store(load, &args.db)?;
    let runtime = measure::runtime()?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Run(format!("--suite: cannot find this binary: {e}")))?;
    let state = state_dir(&args.db);
    let mut server = SuiteServer::start(&exe, &dir.join("wsrun.toml"), &state, &versions.wasmtime)
        .map_err(Failure::Run)?;
    let mut runs = Vec::new();
    let mut text = String::new();
    for scenario in scenarios() {
        let flags = scenario_flags(load, scenario, &server)?;
        let measured = measure::measure(&flags, &runtime, store.as_mut(), versions.clone())?;
        if load.json {
            text.push_str(&measure::json_line(&measured.record)?);
        }
        runs.push(measured);
    }
    let stopped = server.stop();
    if !load.json {
        text = output::suite_table(&runs, server.addr, &stopped);
        if store.is_some() {
            text.push_str(&format!("  stored in {}\n", args.db.display()));
        }
    }
    Ok(text)
}

/// The user's load flags, aimed at one scenario.
fn scenario_flags(
    load: &LoadArgs,
    scenario: Scenario,
    server: &SuiteServer,
) -> Result<LoadArgs, Failure> {
    let mut flags = load.clone();
    flags.suite = false;
    flags.url = Some(format!("http://{}{}", server.addr, scenario.path()));
    flags.scenario = Some(scenario.name(load.scenario.as_deref()));
    if flags.duration.is_none() && flags.requests.is_none() {
        flags.duration = Some(DEFAULT_DURATION.to_string());
    }
    flags.post_clients = match scenario.post {
        true => Some(
            load.post_clients
                .unwrap_or((load.connections / 2).max(1))
                .min(load.connections),
        ),
        false => None,
    };
    if !scenario.post {
        flags.body_size = None;
        flags.method = None;
    }
    Ok(flags)
}

/// `--suite-dir`, else examples/bench-suite under the current directory, else under the
/// checkout the binary sits in (`target/release/wsrun` → `../..`).
fn suite_dir(given: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(dir) = given {
        return match dir.join("wsrun.toml").is_file() {
            true => Ok(dir.to_path_buf()),
            false => Err(Failure::Usage(format!(
                "--suite-dir: {} has no wsrun.toml",
                dir.display()
            ))),
        };
    }
    let exe = std::env::current_exe().ok();
    let mut candidates = vec![PathBuf::from(SUITE_DIR)];
    if let Some(exe) = &exe {
        candidates.extend(exe.ancestors().skip(1).map(|a| a.join(SUITE_DIR)));
    }
    candidates
        .into_iter()
        .find(|c| c.join("wsrun.toml").is_file())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--suite: cannot find {SUITE_DIR}/wsrun.toml here or above the binary; \
                 give --suite-dir"
            ))
        })
}

/// The suite server's state (WebAssembly cache, journal, log): beside the store.
fn state_dir(db: &Path) -> PathBuf {
    match db.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.join("suite-state"),
        None => PathBuf::from("suite-state"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_scenarios_python_then_wasm_one_post_each() {
        let all = scenarios();
        assert_eq!(all.len(), 10);
        assert_eq!(all[0].path(), "/hello");
        assert_eq!(all[5].path(), "/wasm/hello");
        assert_eq!(all.iter().filter(|s| s.post).count(), 2);
        assert_eq!(all[9].name(None), "suite wasm post");
    }
}
