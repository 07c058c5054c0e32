//! Fuzz target for the configuration loader (`wsrun.toml` through `config::load`, the same
//! path `wsrun -c FILE` takes).
//!
//! Owns: the property that the loader never panics and that every error it reports about the
//! file names the file and a line inside it (1-based, at most one past the last line), so a
//! user is always pointed at the place. Must not touch: the driver.

use std::path::Path;

use wsrun::config::{load, Cli, RunArgs};

use crate::driver::Verdict;

/// Fills `dir` with what routes may point at (directories, a component, a script).
pub fn sandbox(dir: &Path) -> std::io::Result<()> {
    for sub in ["public", "app", "static"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join("h.wasm"), b"\0asm")?;
    std::fs::write(dir.join("app.py"), b"def app(e, s): pass\n")
}

/// Loads `input` as `dir/wsrun.toml`.
pub fn check_config(dir: &Path, input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let path = dir.join("wsrun.toml");
    std::fs::write(&path, text.as_bytes()).map_err(|e| format!("write: {e}"))?;
    let cli = Cli {
        command: None,
        run: RunArgs {
            config: Some(path.clone()),
            ..RunArgs::default()
        },
    };
    let err = match load(&cli) {
        Ok(_) => return Ok("ok".into()),
        Err(err) => err,
    };
    let lines = text.lines().count().max(1);
    if err.file != path.display().to_string() {
        return Ok(format!("other {}", err.file));
    }
    match err.line {
        Some(line) if (1..=lines + 1).contains(&line) => {}
        other => {
            return Err(format!(
                "error without a line in the file ({other:?} of {lines}): {err}"
            ))
        }
    }
    // The class: the message without quoted user text, so new kinds of error grow the corpus.
    let kind: String = err
        .message
        .split('`')
        .step_by(2)
        .collect::<Vec<_>>()
        .join("_");
    Ok(format!(
        "{}: {}",
        err.key.as_deref().unwrap_or("-"),
        kind.chars().take(60).collect::<String>()
    ))
}
