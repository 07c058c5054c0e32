//! Progress while a run goes, on stderr: a redrawn bar on a terminal, one plain line per
//! `PLAIN_EVERY` otherwise (logs and pipes), nothing with `--json` on a non-terminal.
//!
//! Owns: the progress task. Must not touch: the figures (it only reads the done counter).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::plan::Stop;

const TTY_EVERY: Duration = Duration::from_millis(200);
const PLAIN_EVERY: Duration = Duration::from_secs(5);
const BAR_WIDTH: usize = 30;

/// Draws progress until dropped (the task is aborted).
pub struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
    tty: bool,
}

impl Progress {
    /// Starts the progress task; `quiet` for `--json` runs.
    pub fn start(stop: Stop, done: Arc<AtomicU64>, quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        if quiet && !tty {
            return Progress { task: None, tty };
        }
        let every = if tty { TTY_EVERY } else { PLAIN_EVERY };
        let start = Instant::now();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at((start + every).into(), every);
            loop {
                tick.tick().await;
                let line = line(stop, done.load(Ordering::Relaxed), start.elapsed());
                let mut err = std::io::stderr().lock();
                let _ = match tty {
                    true => write!(err, "\r{line}\x1b[K"),
                    false => writeln!(err, "wsrun bench: {line}"),
                };
            }
        });
        Progress {
            task: Some(task),
            tty,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            if self.tty {
                eprint!("\r\x1b[K");
            }
        }
    }
}

/// `[#######.....]  42%  1234 done  3.2s`
pub fn line(stop: Stop, done: u64, elapsed: Duration) -> String {
    let fraction = match stop {
        Stop::Requests(n) => done as f64 / n.max(1) as f64,
        Stop::Duration(d) => elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9),
    }
    .clamp(0.0, 1.0);
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    format!(
        "[{}{}] {:>3.0}%  {done} done  {:.1}s",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        fraction * 100.0,
        elapsed.as_secs_f64()
    )
}
