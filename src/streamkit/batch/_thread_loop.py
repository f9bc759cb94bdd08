"""The event loop that runs an async handler under the synchronous ``process_batch``.

Imported only when a handler is async: ``asyncio`` costs tens of milliseconds to import,
which a Lambda cold start of a sync handler should not pay.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from streamkit.batch._calls import discard_awaitable

_T = TypeVar("_T")

# The Lambda Python runtime freezes and thaws the process between invokes; closing the loop
# after each batch (asyncio.run) breaks async clients created at init time and reused later
# ("Event loop is closed"). Keep one loop per thread instead, as Powertools and Mangum do.
_thread_loops = threading.local()


def run_on_thread_loop(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion on this thread's loop; refuse inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        discard_awaitable(coro)
        raise RuntimeError(
            "process_batch() with an async handler was called from a running event loop; "
            "use `await process_batch_async(...)` there"
        )
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread_loops.loop = loop
    return loop.run_until_complete(coro)
