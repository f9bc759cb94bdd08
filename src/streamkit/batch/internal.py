"""The internal protocol between ``process_batch`` / ``run_batch`` and the streamkit packages
that wrap or drive them (``streamkit.routing``, ``streamkit.observability``).

Not public API -- names may change between releases -- but the only batch internals other
streamkit packages use, so a change here is a change of this documented contract:

- How a record handler is called, so a handler means the same thing to ``process_batch``
  and to a Router or an aggregator: :func:`is_async`, :func:`takes_context`,
  :func:`bind_context`, and :func:`default_namespace` (the idempotency namespace of a
  handler).
- Orderings: :data:`ORDERINGS` and :func:`check_ordering`.
- Failure logging. ``run_batch`` logs each failed record at WARNING with its traceback, and
  a batch summary when records are reported. A record wrapper that logs failures and the
  summary itself (``observed_batch_handler``'s does, with the record's fields) is marked with
  :func:`mark_logs_failures`; ``run_batch`` and the aggregators ask :func:`logs_failures`
  and then log those at DEBUG only, instead of a second WARNING with the same traceback.
  Failures the wrapper never saw (the idempotency store, an awaitable from a sync handler)
  are logged as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from streamkit.batch._calls import bind_context, default_namespace, is_async, takes_context
from streamkit.batch._types import ORDERINGS, check_ordering

__all__ = [
    "ORDERINGS",
    "bind_context",
    "check_ordering",
    "default_namespace",
    "is_async",
    "logs_failures",
    "mark_logs_failures",
    "takes_context",
]

F = TypeVar("F", bound=Callable[..., Any])

_LOGS_FAILURES: Final = "_streamkit_logs_failures"


def mark_logs_failures(wrapper: F) -> F:
    """Mark ``wrapper`` as logging each failure itself (see the module doc); returns it."""
    setattr(wrapper, _LOGS_FAILURES, True)
    return wrapper


def logs_failures(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` was marked with :func:`mark_logs_failures`."""
    return getattr(handler, _LOGS_FAILURES, False) is True
