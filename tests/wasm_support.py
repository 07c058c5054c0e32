"""The old name of `support.wasm` (and `support.procfs.proc_status_kib`), kept so test files
written against it still import; new code imports from `support` directly."""

from support.procfs import proc_status_kib
from support.wasm import (
    CORE_MODULE,
    EMPTY_COMPONENT,
    HANDLERS,
    REV_MARKER,
    WASM_APPS,
    hello_body,
    hello_rev,
    percentile,
    state_args,
    wasm_handler,
)

__all__ = [
    "CORE_MODULE",
    "EMPTY_COMPONENT",
    "HANDLERS",
    "REV_MARKER",
    "WASM_APPS",
    "hello_body",
    "hello_rev",
    "percentile",
    "proc_status_kib",
    "state_args",
    "wasm_handler",
]
