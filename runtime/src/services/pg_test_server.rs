//! A throw-away PostgreSQL server for tests: `initdb` into a temporary directory, `pg_ctl
//! start` on a free port of 127.0.0.1 (its unix socket in that directory too), stopped and
//! removed when dropped.
//!
//! Owns: finding the server binaries (`PATH`, then `/usr/lib/postgresql/*/bin`), running them
//! as the `postgres` user when the tests run as root (initdb refuses root), and creating one
//! database per name. Must not touch: the store (tests open `PgStore` on `url`). Without
//! initdb the caller skips with a loud message; `tests/run` installs Debian's `postgresql`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server; stopped (immediately, it holds only test data) when dropped.
pub struct TestServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The directory holding `initdb` and `pg_ctl`, if PostgreSQL is installed.
fn server_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl TestServer {
    /// Starts a server, or `None` (after saying so loudly) when PostgreSQL is not installed.
    pub fn start() -> Option<TestServer> {
        let Some(bin) = server_bin() else {
            eprintln!(
                "\n*** SKIPPED: no initdb (install Debian's `postgresql`; tests/run does) ***\n"
            );
            return None;
        };
        // SAFETY: geteuid only reads this process's effective user id.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::tempdir().expect("a temporary directory");
        if as_postgres {
            chown_to_postgres(dir.path());
        }
        let port = free_port().expect("a free port");
        let server = TestServer {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = server.dir.path().join("data");
        server.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            path_str(server.dir.path())
        );
        let log = server.dir.path().join("server.log");
        server.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        Some(server)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = match self.as_postgres {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&program);
                c
            }
            false => Command::new(&program),
        };
        let out = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("the PostgreSQL tool runs");
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The URL of database `db` (created by `create_db`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `db` unless it exists.
    pub fn create_db(&self, db: &str) {
        let mut client =
            postgres::Client::connect(&self.url("postgres"), postgres::NoTls).expect("connect");
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
            .expect("look up the database")
            .is_some();
        if !exists {
            let quoted = db.replace('"', "\"\"");
            client
                .batch_execute(&format!("CREATE DATABASE \"{quoted}\""))
                .expect("create the database");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let program = self.bin.join("pg_ctl");
        let mut command = match self.as_postgres {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&program);
                c
            }
            false => Command::new(&program),
        };
        let _ = command
            .args(["-D", path_str(&data), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

fn chown_to_postgres(dir: &Path) {
    let out = Command::new("chown")
        .arg("postgres:")
        .arg(dir)
        .output()
        .expect("chown runs");
    assert!(out.status.success(), "chown postgres: failed");
}
