//! The wasmtime engine of one worker, set up in one readable place.
//!
//! Owns: the engine configuration (async support for the wasi:http host, epoch interruption,
//! the pooling instance allocator sized for this server and how it resets freed memory), the
//! linker with every WASI import a `wasi:http/proxy` component may use plus wsrun's own
//! `wsrun:services` (`services_host`), and the epoch ticker thread. Must not touch: requests,
//! routes or files — those use what this builds.
//!
//! Why these settings (measured with `bench/wasm.sh`): a fresh instance per request is cheap
//! only with the pooling allocator. A freed linear memory is reset as its instance is dropped
//! (see `DECOMMIT_BATCH`): where the kernel has `PAGEMAP_SCAN` (Linux 6.7+), the pages the
//! guest wrote, up to `KEEP_RESIDENT`, are copied back from the memory image in place and stay
//! resident, so the next instance in that slot takes no page fault on them; the rest goes back
//! with `madvise` (see `KEEP_RESIDENT` for the numbers). Without `PAGEMAP_SCAN` nothing is kept
//! resident: zeroing a resident prefix with `memset` (wasmtime serve's tuned setting) cost more
//! than the page faults it saves — hello went from 19k to 28k req/s here. Instances run on the worker's own thread,
//! so the TLB flushes of a reset stay on one CPU. The ticker advances the epoch every `TICK`;
//! a running guest yields to the event loop at each tick, which lets a busy guest share its
//! worker thread and lets the per-route timeout fire. A tick bounds one poll of a guest, not
//! how many polls of one tenant run back to back: `lanes` paces a tenant that takes more than
//! its fair part of the loop (`loop_share`).

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::services_host;
use super::state::GuestState;

/// How often the epoch advances: the longest a guest runs before yielding to other requests.
pub const TICK: Duration = Duration::from_millis(2);
/// Component instances one worker can hold: running ones and idle warm ones.
pub const POOL_INSTANCES: u32 = 1000;
/// Idle warm instances (`warm`) one worker keeps at most, over all routes.
pub const WARM_IDLE: usize = 128;
/// Requests running WASM at once in one worker: the pool less the warm instances' places.
pub const RUNNING_INSTANCES: usize = POOL_INSTANCES as usize - WARM_IDLE;
/// Freed memory regions whose pages are returned to the kernel together (one
/// `process_madvise` and one TLB flush per batch). 1: each instance's pages go back when it
/// is dropped, by the thread that drops it. History: 16 measured +5% req/s on hello once
/// (2026-11), but the flush runs on whichever thread frees the 16th instance, usually the event
/// loop, so a batch holding a hostile tenant's touched memory stalled every other tenant for
/// one long `madvise`. Measured 2026-12-02 (issue 11): `bench/ab.sh` 1 vs 16 on the WASM
/// hello, 12 interleaved rounds: **1.105x** for 1; `bench/hostile.py grow` (14 MiB touched and
/// held per request) neighbour p99 11.5 ms with 1 against 19.0 with 16 (target ~14).
const DECOMMIT_BATCH: usize = 1;
/// With `PAGEMAP_SCAN`: the most written bytes of a freed linear memory that are reset in
/// place (copied back from the image, or zeroed) and kept resident for the slot's next
/// instance; written pages past it are decommitted. Bounds what a slot holds (and what one
/// reset copies) to 4 MiB. Measured 2026-12-03 (issue 17), interleaved rounds, server on one
/// CPU: the componentize-py component 443 against 381 req/s (1.16x; 275 page faults per
/// request instead of 383: wasmtime reports at most 32 written regions per scan and
/// decommits what lies past them, and CPython writes all over its heap), the Rust hello
/// 16.4k against 11.7k (1.40x; 0 faults instead of 4). 2, 4, 32, 64 and 256 MiB measured
/// alike on the Python component.
const KEEP_RESIDENT: usize = 4 << 20;

/// The engine and linker of a worker, plus the ticker that drives epoch interruption.
#[derive(Clone)]
pub struct WasmEngine {
    pub engine: Engine,
    pub linker: Arc<Linker<GuestState>>,
}

impl WasmEngine {
    /// Builds the engine for guests whose memory may grow to `max_memory` bytes.
    pub fn new(max_memory: u64) -> Result<WasmEngine, String> {
        // `Enabled::Yes` fails where the kernel lacks `PAGEMAP_SCAN`: then keep nothing.
        let engine = Engine::new(&config(max_memory, Reset::ScanKeepResident))
            .or_else(|e| {
                tracing::debug!("no PAGEMAP_SCAN ({e}); freed guest memory is decommitted");
                Engine::new(&config(max_memory, Reset::Decommit))
            })
            .map_err(|e| format!("wasm engine: {e}"))?;
        let mut linker: Linker<GuestState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| services_host::add_to_linker(&mut linker, |state| &mut state.services))
            .map_err(|e| format!("wasm linker: {e:#}"))?;
        Ok(WasmEngine {
            engine,
            linker: Arc::new(linker),
        })
    }

    /// Starts the thread that advances the epoch every `TICK` for as long as the process runs.
    pub fn start_ticker(&self) -> Result<(), String> {
        let engine = self.engine.weak();
        thread::Builder::new()
            .name("wsrun-epoch".to_string())
            .spawn(move || {
                while let Some(engine) = engine.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    thread::sleep(TICK);
                }
            })
            .map(drop)
            .map_err(|e| format!("cannot start the epoch ticker: {e}"))
    }
}

/// How a freed linear memory is reset (see the module header).
#[derive(Clone, Copy)]
enum Reset {
    /// `PAGEMAP_SCAN` finds the written pages; up to `KEEP_RESIDENT` are reset in place.
    ScanKeepResident,
    /// Everything is decommitted with `madvise`.
    Decommit,
}

fn config(max_memory: u64, reset: Reset) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES)
        .total_tables(POOL_INSTANCES * 2)
        .total_stacks(POOL_INSTANCES)
        .max_memories_per_component(2)
        .max_tables_per_component(4)
        .max_core_instances_per_component(16)
        .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
        .decommit_batch_size(DECOMMIT_BATCH)
        .table_keep_resident(64 * 1024)
        .async_stack_keep_resident(1 << 20);
    match reset {
        Reset::ScanKeepResident => pool
            .pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT),
        Reset::Decommit => pool.linear_memory_keep_resident(0),
    };
    let mut config = compile_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// The settings that shape compiled code (and so `precompile_compatibility_hash`), without
/// the instance pool: the compile child (`compile_child`) builds its engine from this alone,
/// as the pool would reserve terabytes of address space under its `RLIMIT_AS`. The pool does
/// not change the code (a unit test checks that both engines' hashes agree).
fn compile_config() -> Config {
    let mut config = Config::new();
    config
        // Compile on the calling thread only: a `--watch` compile runs on the watcher's
        // low-priority thread, and must not fan out to full-priority threads on every core
        // (a hostile file would then take CPU from the requests being served).
        .parallel_compilation(false)
        .epoch_interruption(true)
        .wasm_component_model(true);
    config
}

/// An engine that compiles exactly as a worker's does but cannot run guests (no pool).
pub fn compile_engine() -> Result<Engine, String> {
    Engine::new(&compile_config()).map_err(|e| format!("wasm engine: {e}"))
}

#[cfg(test)]
mod tests {
    use std::hash::{DefaultHasher, Hash, Hasher};

    use super::*;

    fn hash(engine: &Engine) -> u64 {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn compile_engine_makes_the_workers_code() {
        let child = compile_engine().expect("compile engine");
        for reset in [Reset::ScanKeepResident, Reset::Decommit] {
            let Ok(worker) = Engine::new(&config(64 << 20, reset)) else {
                continue; // no PAGEMAP_SCAN here
            };
            assert_eq!(hash(&worker), hash(&child));
        }
    }
}
