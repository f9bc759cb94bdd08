"""How a user's record handler is called: with or without the Lambda context, sync or async.

``streamkit.routing`` checks its handlers with the same two questions (``is_async``,
``takes_context``), so a handler means the same thing to ``process_batch`` and to a Router.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from streamkit.records import StreamRecord


def is_async(handler: Callable[..., Any]) -> bool:
    """True for an ``async def`` function, or an instance whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - instances with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def takes_context(handler: Callable[..., Any]) -> bool:
    """True when ``handler`` accepts a second positional argument (the Lambda context), or
    ``*args``."""
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: call with the record
        return False
    positional = 0
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            positional += 1
    return positional >= 2


def bind_context(handler: Callable[..., Any], context: Any | None) -> Callable[[StreamRecord], Any]:
    """``handler`` as a one-argument function of the record."""
    if takes_context(handler):
        return functools.partial(_call_with_context, handler, context)
    return handler


def _call_with_context(
    handler: Callable[..., Any], context: Any | None, record: StreamRecord
) -> Any:
    return handler(record, context)


def discard_awaitable(awaitable: Awaitable[Any]) -> None:
    """Close an awaitable that will never be awaited."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()  # avoid "coroutine was never awaited" noise


def default_namespace(handler: Callable[..., Any]) -> str:
    """The idempotency namespace of a handler given none: its qualified name."""
    target = handler.func if isinstance(handler, functools.partial) else handler
    module = getattr(target, "__module__", None) or type(target).__module__
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}"
