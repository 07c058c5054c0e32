//! The machine a run was made on: CPU model and count, kernel (`uname -a`), OS, memory, the
//! wsrun/Python/wasmtime versions (given by the wsrun binary) and the git commit when run from a
//! checkout.
//!
//! Owns: reading /proc, /etc/os-release and `uname`/`git` output. Every field falls back to
//! "unknown" (or 0) rather than failing a run. Must not touch: the run's figures.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// Versions the calling binary knows (wsrun passes its own, its Python's and wasmtime's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    pub wsrun: String,
    pub python: String,
    pub wasmtime: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cpu_count: u64,
    pub kernel: String,
    pub os: String,
    pub memory_bytes: u64,
    pub hostname: String,
    pub versions: Versions,
    /// `git rev-parse HEAD` of the working directory, when it is a checkout.
    pub git_commit: Option<String>,
}

const UNKNOWN: &str = "unknown";

pub fn describe(versions: Versions) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    Machine {
        cpu_model: cpu_model(&cpuinfo).unwrap_or(UNKNOWN).to_string(),
        cpu_count: std::thread::available_parallelism().map_or(0, |n| n.get() as u64),
        kernel: command_line("uname", &["-a"]).unwrap_or_else(|| UNKNOWN.to_string()),
        os: pretty_name(&os_release).unwrap_or(UNKNOWN).to_string(),
        memory_bytes: mem_total_kib(&meminfo).unwrap_or(0) * 1024,
        hostname: read_trimmed(Path::new("/proc/sys/kernel/hostname"))
            .unwrap_or_else(|| UNKNOWN.to_string()),
        versions,
        git_commit: command_line("git", &["rev-parse", "HEAD"]),
    }
}

/// The first line of a command's standard output, when it ran and succeeded.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim();
    (out.status.success() && !line.is_empty()).then(|| line.to_string())
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn cpu_model(cpuinfo: &str) -> Option<&str> {
    cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .or_else(|| l.strip_prefix("Model"))
        })
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, v)| v.trim())
}

pub fn mem_total_kib(meminfo: &str) -> Option<u64> {
    let rest = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    rest.split_whitespace().next()?.parse().ok()
}

pub fn pretty_name(os_release: &str) -> Option<&str> {
    let value = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_and_os_release() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 2.00GHz\nflags\t: x\n";
        assert_eq!(cpu_model(cpuinfo), Some("Example CPU @ 2.00GHz"));
        assert_eq!(
            mem_total_kib("MemTotal:       16318124 kB\nMemFree: 1 kB\n"),
            Some(16318124)
        );
        let release = "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(pretty_name(release), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(cpu_model(""), None);
    }

    #[test]
    fn describes_this_machine() {
        let m = describe(Versions::default());
        assert!(m.cpu_count >= 1);
        assert!(m.memory_bytes > 0);
        assert!(m.kernel.starts_with("Linux"), "{}", m.kernel);
    }
}
