"""What the ``streamkit tail`` and ``streamkit dlq`` commands share: error reporting (a clear
line on stderr and exit code 1, never a traceback for an expected failure), logging setup and a
quiet exit when stdout's reader goes away."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from streamkit.exceptions import StreamkitError

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "configure_logging",
    "error",
    "is_aws_error",
    "run",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def is_aws_error(exc: BaseException) -> bool:
    """A botocore error: a service error (ClientError), an unreachable endpoint, missing
    credentials or region. Expected at the command line; reported, not raised."""
    return type(exc).__module__.startswith(("botocore", "boto3"))


def configure_logging() -> None:
    """Warnings (e.g. trimmed records) on stderr; botocore stays quiet. Leaves logging alone
    when the host (a test runner, an application) has configured it."""
    if logging.getLogger().handlers:
        return
    logging.basicConfig(level=logging.WARNING, format="streamkit: %(message)s", stream=sys.stderr)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def error(command: str, message: object) -> None:
    print(f"streamkit {command}: error: {message}", file=sys.stderr, flush=True)


def run(command: str, body: Callable[[], int]) -> int:
    """``body()``, with streamkit's and botocore's errors turned into exit code 1."""
    try:
        return body()
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep Python from complaining
        # about the unflushable stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except StreamkitError as exc:
        error(command, exc)
        return EXIT_ERROR
    except Exception as exc:
        if not is_aws_error(exc):
            raise
        error(command, exc)
        return EXIT_ERROR
