//! From a `.wasm` file to a `HandlerVersion`: checks, compilation, the on-disk code cache.
//!
//! Owns: recognising what a file is (not WebAssembly, a core module built for the wrong
//! target, a component), compiling it — or loading the machine code cached under
//! `<state_dir>/wasm-cache/` by the file's SHA-256 and the engine's settings — and linking it
//! as a `wasi:http/proxy` handler. Every error names the file and says what to do. Must not
//! touch: routes, requests or the watcher; callers decide what a failure means.
//!
//! Compiling runs in a child process within `CompileLimits` (`compile_child`): the child
//! writes the code to the cache entry (or to a temporary file when there is no cache) and the
//! worker loads it from there, so a compile-time bomb costs the child, not the worker.
//! Cache files are written to a temporary name and renamed, so workers compiling the same
//! file at once never see a half-written entry; an entry that fails to load is recompiled.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::compile_child::{self, CompileLimits};
use super::engine::WasmEngine;
use super::registry::HandlerVersion;

/// The component-model layer/version bytes that follow `\0asm`.
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
const CORE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
/// The largest handler file read: a bigger one is refused before it is read or compiled
/// (the largest component in this repository is ~0.2 MiB; componentize-py's are ~40 MiB).
pub const MAX_COMPONENT_SIZE: u64 = 128 * 1024 * 1024;

/// Compiles handler files for one engine, through the cache when there is one.
#[derive(Clone)]
pub struct Compiler {
    engine: WasmEngine,
    cache_dir: Option<PathBuf>,
    limits: CompileLimits,
}

/// What a load did, for the log.
pub struct Loaded {
    pub version: HandlerVersion,
    pub from_cache: bool,
    pub elapsed: std::time::Duration,
}

impl Compiler {
    pub fn new(engine: WasmEngine, cache_dir: Option<PathBuf>, limits: CompileLimits) -> Compiler {
        if let Some(dir) = &cache_dir {
            if let Err(err) = std::fs::create_dir_all(dir) {
                tracing::warn!(
                    "wasm code cache {}: {err}; compiling without it",
                    dir.display()
                );
                return Compiler {
                    engine,
                    cache_dir: None,
                    limits,
                };
            }
        }
        Compiler {
            engine,
            cache_dir,
            limits,
        }
    }

    /// Reads, checks, compiles (or loads cached code) and links `file`.
    pub fn load(&self, file: &Path) -> Result<Loaded, String> {
        let started = Instant::now();
        let shown = file.display();
        let len = std::fs::metadata(file)
            .map_err(|e| format!("{shown}: cannot read: {e}"))?
            .len();
        if len > MAX_COMPONENT_SIZE {
            return Err(format!(
                "{shown}: is {} bytes, more than the {} MiB a handler file may have",
                len,
                MAX_COMPONENT_SIZE >> 20
            ));
        }
        let bytes = std::fs::read(file).map_err(|e| format!("{shown}: cannot read: {e}"))?;
        check_kind(&bytes).map_err(|why| format!("{shown}: {why}"))?;
        let digest = hex(&Sha256::digest(&bytes));
        let (component, from_cache) = self
            .component(&bytes, &digest)
            .map_err(|why| format!("{shown}: {why}"))?;
        let pre = self
            .link(&component)
            .map_err(|why| format!("{shown}: {why}"))?;
        Ok(Loaded {
            version: HandlerVersion::new(pre, digest),
            from_cache,
            elapsed: started.elapsed(),
        })
    }

    fn link(&self, component: &Component) -> Result<ProxyPre<super::state::GuestState>, String> {
        let instance_pre = self.engine.linker.instantiate_pre(component).map_err(|e| {
            format!("imports something this host does not provide (wsrun offers wasi:http/proxy 0.2, wasi:cli and wsrun:services@0.1.0): {e:#}")
        })?;
        ProxyPre::new(instance_pre).map_err(|e| {
            format!("is not a wasi:http/proxy handler: it must export wasi:http/incoming-handler ({e:#})")
        })
    }

    /// The compiled component: from the cache when a usable entry exists, else compiled now
    /// in a child process (into the cache entry, or a temporary file without a cache).
    fn component(&self, bytes: &[u8], digest: &str) -> Result<(Component, bool), String> {
        let entry = self.cache_entry(digest);
        if let Some(entry) = entry.as_ref().filter(|e| e.is_file()) {
            match self.deserialize(entry) {
                Ok(component) => return Ok((component, true)),
                Err(err) => tracing::warn!("{err}; recompiling"),
            }
        }
        let scratch;
        let out = match entry {
            Some(entry) => entry,
            None => {
                scratch = tempfile::Builder::new()
                    .prefix("wsrun-compile-")
                    .suffix(".cwasm")
                    .tempfile()
                    .map_err(|e| format!("cannot make a temporary file: {e}"))?;
                scratch.path().to_path_buf()
            }
        };
        compile_child::compile(bytes, &out, self.limits)?;
        Ok((self.deserialize(&out)?, false))
    }

    fn deserialize(&self, code: &Path) -> Result<Component, String> {
        // SAFETY: `code` was written only by the compile child (`compile_child`) from
        // `precompile_component` of this same engine configuration (a cache key includes the
        // engine's hash; a scratch file is this call's own), and renamed into place complete.
        unsafe { Component::deserialize_file(&self.engine.engine, code) }
            .map_err(|e| format!("compiled code {}: {e:#}", code.display()))
    }

    fn cache_entry(&self, digest: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut hasher = std::hash::DefaultHasher::new();
        self.engine
            .engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        Some(dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish())))
    }
}

/// Refuses files that are not components, saying what they are instead.
fn check_kind(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("is not a WebAssembly file (no `\\0asm` header)".to_string());
    }
    let version = &bytes[4..8];
    if version == COMPONENT_VERSION {
        Ok(())
    } else if version == CORE_VERSION {
        Err(
            "is a core WebAssembly module, not a component: build it for the wasm32-wasip2 \
             target (or wrap it with `wasm-tools component new`)"
                .to_string(),
        )
    } else {
        Err(format!("has an unknown WebAssembly version {version:02x?}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds_are_named() {
        assert!(check_kind(b"hello world")
            .unwrap_err()
            .contains("not a WebAssembly"));
        let core = [b"\0asm".as_slice(), &CORE_VERSION].concat();
        assert!(check_kind(&core).unwrap_err().contains("wasm32-wasip2"));
        let component = [b"\0asm".as_slice(), &COMPONENT_VERSION].concat();
        assert!(check_kind(&component).is_ok());
    }
}
