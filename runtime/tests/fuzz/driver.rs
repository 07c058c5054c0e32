//! The fuzz driver: a small, dependency-free, coverage-less mutation fuzzer that runs on stable
//! Rust under `cargo test` (cargo-fuzz/libFuzzer needs nightly).
//!
//! Owns: the random source, the mutations, the seed corpus (`corpus/<target>/`, committed), the
//! time budget, and reporting a failing input. Must not touch: what a target checks (each
//! target is a `Fn(&[u8]) -> Result<String, String>`: `Ok(outcome class)` or `Err(property
//! violated)`; a panic is caught and reported as a crash).
//!
//! Feedback without coverage: each run returns an outcome class (for the guard, the rejection
//! reason or how far the stream got); an input whose class was never seen joins the live
//! corpus, so later mutations start from inputs that reach new places. Budget: each target runs
//! for `WSRUN_FUZZ_SECS` seconds (default 2; `tests/run` sets 15). `WSRUN_FUZZ_SEED` replays a
//! run; the seed in use is printed on failure. A failing input is written to
//! `target/fuzz-failures/<target>-<hash>.bin` so it can be moved into `regressions/<target>/`,
//! whose files are replayed first on every run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Splitmix64: small, fast, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that tend to matter to HTTP and TOML grammars.
const INTERESTING: &[u8] = b"\r\n\t :;=\"\\/?#[]{},.-_0123456789aAfFzZ\x00\x7f\x80\xff";

/// Applies 1..=8 random mutations; `dict` holds tokens worth inserting whole.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], dict: &[&[u8]]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        mutate_once(rng, &mut data, other, dict);
    }
    data
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], dict: &[&[u8]]) {
    let at = rng.below(data.len() + 1);
    match rng.below(9) {
        0 if !data.is_empty() => {
            let i = at.min(data.len() - 1);
            data[i] ^= 1 << rng.below(8);
        }
        1 if !data.is_empty() => {
            let i = at.min(data.len() - 1);
            data[i] = *rng.pick(INTERESTING);
        }
        2 => data.insert(at, *rng.pick(INTERESTING)),
        3 if at < data.len() => {
            let end = (at + 1 + rng.below(16)).min(data.len());
            data.drain(at..end);
        }
        4 if at < data.len() => {
            // Duplicate a range (repeated headers, chunks, lines).
            let end = (at + 1 + rng.below(64)).min(data.len());
            let copy = data[at..end].to_vec();
            let to = rng.below(data.len() + 1);
            data.splice(to..to, copy);
        }
        5 if !dict.is_empty() => {
            let token = rng.pick(dict);
            data.splice(at..at, token.iter().copied());
        }
        6 if !other.is_empty() => {
            // Splice in a piece of another corpus entry.
            let from = rng.below(other.len());
            let end = (from + 1 + rng.below(128)).min(other.len());
            data.splice(at..at, other[from..end].iter().copied());
        }
        7 if at < data.len() => {
            // Overwrite with a run of one byte (long lines, many digits).
            let byte = *rng.pick(INTERESTING);
            let longest = if rng.chance(8) { 20_000 } else { 32 };
            let n = 1 + rng.below(longest);
            data.splice(at..at, std::iter::repeat_n(byte, n));
        }
        _ => data.truncate(at),
    }
}

/// One target's result for one input: `Ok(outcome class)` or `Err(violated property)`.
pub type Verdict = Result<String, String>;

/// Where the committed seeds and regressions live.
fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(kind)
        .join(target)
}

/// Every file of a directory, sorted by name (a missing directory is empty).
pub fn files(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir(kind, target)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let data = std::fs::read(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), data))
        })
        .collect();
    out.sort();
    out
}

fn budget() -> Duration {
    let secs = std::env::var("WSRUN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs.max(0.0))
}

fn seed() -> u64 {
    match std::env::var("WSRUN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => seed,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

thread_local! {
    /// True while this thread runs a target: its panics are reported by `fuzz`, not printed.
    static IN_TARGET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs (once) a panic hook that stays quiet inside targets and prints as usual elsewhere
/// (tests run in parallel threads, so the hook is never swapped back and forth).
fn quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_TARGET.get() {
                default(info);
            }
        }));
    });
}

/// Runs `check` on one input, turning a panic into a crash report.
pub fn run_one(check: &dyn Fn(&[u8]) -> Verdict, input: &[u8]) -> Verdict {
    quiet_hook();
    IN_TARGET.set(true);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input)));
    IN_TARGET.set(false);
    match result {
        Ok(verdict) => verdict,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {msg}"))
        }
    }
}

/// Shows an input readably in a failure message.
pub fn show(input: &[u8]) -> String {
    let shown: String = input
        .iter()
        .take(600)
        .flat_map(|b| b.escape_ascii())
        .map(char::from)
        .collect();
    format!("{} bytes: b\"{shown}\"", input.len())
}

fn save_failure(target: &str, input: &[u8]) -> PathBuf {
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/fuzz-failures")
        .join(format!("{target}-{hash:016x}.bin"));
    if let Some(parent) = out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(&out, input);
    out
}

/// What one fuzzing session did, for the test's output.
pub struct Report {
    pub runs: u64,
    pub classes: usize,
    pub corpus: usize,
}

/// Replays the regressions, then fuzzes from the seeds (plus `extra` generated inputs, called
/// each round) for the time budget. Panics with the input, the seed and the saved file on the
/// first failure.
pub fn fuzz(
    target: &str,
    dict: &[&[u8]],
    generate: &dyn Fn(&mut Rng) -> Vec<u8>,
    check: &dyn Fn(&[u8]) -> Verdict,
) -> Report {
    let seed = seed();
    let fail = |input: &[u8], why: String| -> ! {
        let saved = save_failure(target, input);
        panic!(
            "fuzz target `{target}` (WSRUN_FUZZ_SEED={seed}): {why}\ninput {}\nsaved to {}",
            show(input),
            saved.display()
        )
    };
    for (name, input) in files("regressions", target) {
        if let Err(why) = run_one(check, &input) {
            fail(&input, format!("regression {name}: {why}"));
        }
    }
    let mut corpus: Vec<Vec<u8>> = files("corpus", target)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert!(
        !corpus.is_empty(),
        "fuzz target `{target}` has no seeds in corpus/{target}/"
    );
    let mut seen = BTreeSet::new();
    let mut rng = Rng::new(seed);
    let (start, budget) = (Instant::now(), budget());
    let mut runs = 0u64;
    while runs < corpus.len() as u64 || start.elapsed() < budget {
        let input = match runs {
            n if (n as usize) < corpus.len() => corpus[n as usize].clone(),
            _ if rng.chance(4) => generate(&mut rng),
            _ => {
                let base = rng.below(corpus.len());
                let other = rng.below(corpus.len());
                mutate(&mut rng, &corpus[base], &corpus[other], dict)
            }
        };
        runs += 1;
        match run_one(check, &input) {
            Ok(class) if seen.insert(class.clone()) && corpus.len() < 4096 => corpus.push(input),
            Ok(_) => {}
            Err(why) => fail(&input, why),
        }
    }
    eprintln!(
        "fuzz {target}: {runs} runs, {} outcome classes, corpus {}",
        seen.len(),
        corpus.len()
    );
    Report {
        runs,
        classes: seen.len(),
        corpus: corpus.len(),
    }
}
