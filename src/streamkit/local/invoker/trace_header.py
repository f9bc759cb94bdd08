"""The X-Ray trace header Lambda gives each invocation (``_X_AMZN_TRACE_ID``).

Lambda's Python runtime sets ``_X_AMZN_TRACE_ID`` before every call of the handler, so the
X-Ray SDK (and ``streamkit.observability.Tracer``) can hang its subsegments on the function's
segment. Whether that segment is sampled follows the function's ``TracingConfig``: ``Active``
functions are sampled (Lambda samples at a fixed rate; the local runtime samples every
invocation, so a local trace is never missing), ``PassThrough`` ones are not, because an event
source mapping brings no upstream header to pass through.

Format: https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

ACTIVE = "Active"
PASS_THROUGH = "PassThrough"
TRACING_MODES = (ACTIVE, PASS_THROUGH)
DEFAULT_DAEMON_ADDRESS = "127.0.0.1:2000"  # the SDK's own default; Lambda's is link-local


def new_trace_header(tracing_mode: str, *, clock: Callable[[], float] = time.time) -> str:
    """A fresh header: a new trace root and facade segment id, sampled when ``Active``."""
    root = f"1-{int(clock()):08x}-{secrets.token_hex(12)}"
    sampled = 1 if tracing_mode == ACTIVE else 0
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled={sampled}"
