"""Checks on user callables (handlers, targets, stages), done once when they are registered."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Final

# The same questions process_batch asks of its handler, so a handler means the same to both.
from streamkit.batch.internal import is_async as is_async
from streamkit.batch.internal import takes_context as takes_context
from streamkit.routing.exceptions import InvalidRouteError

# Names become idempotency namespaces and metric dimensions: keep them printable and stable.
_NAME: Final = re.compile(r"^[^\s#]{1,200}$")


def check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidRouteError(
            f"{what} name must be 1-200 characters without whitespace or '#', got {name!r}"
        )
    return name


def default_name(handler: Callable[..., Any]) -> str:
    target = handler.func if isinstance(handler, functools.partial) else handler
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    if "<lambda>" in name:
        raise InvalidRouteError(
            "a lambda has no stable name; pass name= (names key idempotency markers and metrics)"
        )
    # A function defined inside another is named by itself: "make.<locals>.send" -> "send".
    return str(name).rsplit("<locals>.", 1)[-1]


def check_handler(handler: object, what: str) -> Callable[..., Any]:
    if not callable(handler):
        raise InvalidRouteError(f"{what} must be callable, got {type(handler).__name__}")
    if is_async(handler):
        raise InvalidRouteError(
            f"{what} is async; routing runs handlers synchronously, one record at a time, in "
            "stream order (wrap async code with asyncio.run, or use process_batch_async)"
        )
    return handler
