"""Type stubs of the native module the wsrun server registers as ``wsrun._services``."""

from collections.abc import Callable
from typing import Any

class ServiceError(Exception): ...
class UnknownRouteError(ServiceError): ...

def add_timer(seconds: float, callable: Callable[[], object], repeat: bool, /) -> int: ...
def cancel_timer(id: int, /) -> bool: ...
def defer(
    callable: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any] | None = None, /
) -> None: ...
def defer_queue_size() -> int: ...
def enqueue(
    path: str,
    body: bytes,
    method: str,
    headers: list[tuple[str, str]],
    delay: float,
    max_attempts: int | None = None,
    host: str | None = None,
    /,
) -> int: ...
def every(
    name: str,
    seconds: float,
    path: str,
    body: bytes,
    method: str,
    headers: list[tuple[str, str]],
    host: str | None = None,
    /,
) -> None: ...
def cancel(name: str, /) -> bool: ...
