"""Checking a posted run record (the JSON `wsrun bench --report` sends, schema 1).

Owns: the accepted shape and its limits; every error names the field. Must not touch: the
database, HTTP.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

#: Largest body accepted on POST /api/results.
MAX_BODY = 1 << 20
#: Most histogram buckets one run may carry.
MAX_BUCKETS = 20_000
#: Longest text field.
MAX_TEXT = 500
SCHEMA = 1


@dataclass
class Invalid(Exception):
    """A rejected post: the field it concerns and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def _text(value: Any, field: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise Invalid(field, "expected a string")
    if len(value) > MAX_TEXT:
        raise Invalid(field, f"longer than {MAX_TEXT} characters")
    return value


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(field, "expected a whole number")
    if value < 0 or value >= 1 << 63:
        raise Invalid(field, "out of range")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(field, "expected a number")
    if not math.isfinite(value) or value < 0:
        raise Invalid(field, "expected a finite number >= 0")
    return float(value)


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(field, "expected an object")
    return value


def _get(obj: dict[str, Any], key: str, prefix: str = "") -> Any:
    if key not in obj:
        raise Invalid(prefix + key, "missing")
    return obj[key]


def parse(body: bytes) -> dict[str, Any]:
    """Decodes and checks a posted record; returns it as posted. Raises `Invalid`."""
    if len(body) > MAX_BODY:
        raise Invalid("body", f"larger than {MAX_BODY} bytes")
    try:
        record = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Invalid("body", f"not JSON ({err})") from None
    record = _object(record, "body")
    if _get(record, "schema") != SCHEMA:
        raise Invalid("schema", f"expected {SCHEMA}")
    for key in ("scenario", "mode", "target"):
        _text(_get(record, key), key)
    for key in ("started_at", "requests", "bytes_read", "bytes_written"):
        _count(_get(record, key), key)
    for key in ("duration_s", "requests_per_s", "transfer_bytes_per_s"):
        _number(_get(record, key), key)
    _object(_get(record, "settings"), "settings")
    latency = _object(_get(record, "latency_ms"), "latency_ms")
    for key in ("mean", "p50", "p90", "p99", "p999", "max"):
        _number(_get(latency, key, "latency_ms."), f"latency_ms.{key}")
    errors = _object(_get(record, "errors"), "errors")
    for key in ("connect", "read", "write", "timeout"):
        _count(_get(errors, key, "errors."), f"errors.{key}")
    statuses = _object(_get(record, "statuses"), "statuses")
    for status, count in statuses.items():
        if not (status.isdigit() and len(status) == 3):
            raise Invalid(f"statuses.{status[:20]}", "expected a 3-digit status")
        _count(count, f"statuses.{status}")
    _histogram(_get(record, "histogram"))
    _machine(_object(_get(record, "machine"), "machine"))
    return record


def _histogram(value: Any) -> None:
    if not isinstance(value, list):
        raise Invalid("histogram", "expected a list of [latency_us, count]")
    if len(value) > MAX_BUCKETS:
        raise Invalid("histogram", f"more than {MAX_BUCKETS} buckets")
    for i, bucket in enumerate(value):
        if not (isinstance(bucket, list) and len(bucket) == 2):
            raise Invalid(f"histogram[{i}]", "expected [latency_us, count]")
        _count(bucket[0], f"histogram[{i}][0]")
        _count(bucket[1], f"histogram[{i}][1]")


def _machine(machine: dict[str, Any]) -> None:
    for key in ("cpu_model", "kernel", "os", "hostname"):
        _text(_get(machine, key, "machine."), f"machine.{key}")
    for key in ("cpu_count", "memory_bytes"):
        _count(_get(machine, key, "machine."), f"machine.{key}")
    _text(machine.get("git_commit"), "machine.git_commit", optional=True)
    versions = _object(_get(machine, "versions", "machine."), "machine.versions")
    for key in ("wsrun", "python", "wasmtime"):
        _text(_get(versions, key, "machine.versions."), f"machine.versions.{key}")
