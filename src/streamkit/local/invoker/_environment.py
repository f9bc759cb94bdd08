"""The environment a worker process runs with (see ``streamkit.local.invoker``'s docstring)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from streamkit.local.invoker._worker import WORKER_MAIN
from streamkit.local.invoker.functions import FunctionSpec
from streamkit.local.invoker.trace_header import DEFAULT_DAEMON_ADDRESS

# The package's one logger, named for the public module users configure.
logger = logging.getLogger("streamkit.local.invoker")

DEFAULT_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_SESSION_TOKEN": "test",
}
_PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TMPDIR")
_LAMBDA_TASK_ROOT = "/var/task"


def build_worker_environment(
    spec: FunctionSpec,
    code_dir: Path,
    *,
    endpoint_url: str | None,
    region: str,
    log_stream_name: str,
    credentials: Mapping[str, str] = DEFAULT_CREDENTIALS,
) -> dict[str, str]:
    """The environment a worker of ``spec`` runs with (see ``streamkit.local.invoker``)."""
    env = {name: os.environ[name] for name in _PASSTHROUGH_ENV if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env["TZ"] = ":UTC"  # as in Lambda
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env.update(spec.environment)
    if endpoint_url:
        # Ours wins over a value in the function's configuration: that one names wherever the
        # function was deployed for (a LocalStack hostname, last run's port), not this endpoint.
        configured = spec.environment.get("AWS_ENDPOINT_URL")
        if configured and configured != endpoint_url:
            logger.info(
                "function %s: AWS_ENDPOINT_URL %s replaced by the local endpoint %s",
                spec.name,
                configured,
                endpoint_url,
            )
        env["AWS_ENDPOINT_URL"] = endpoint_url
    env.update(credentials)
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(WORKER_MAIN.parent),
            # Leave the unpacked code as it was downloaded (Lambda's /var/task is read-only).
            "PYTHONDONTWRITEBYTECODE": "1",
            # Set by Lambda for the X-Ray SDK; the trace header itself comes per invocation.
            # A daemon address in the runner's own environment (a local X-Ray daemon, a test
            # listener) is passed on.
            "AWS_XRAY_DAEMON_ADDRESS": os.environ.get(
                "AWS_XRAY_DAEMON_ADDRESS", DEFAULT_DAEMON_ADDRESS
            ),
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        }
    )
    python_path = _python_path(code_dir, spec.environment.get("PYTHONPATH"))
    if python_path:
        env["PYTHONPATH"] = python_path
    else:
        env.pop("PYTHONPATH", None)
    return env


def _python_path(code_dir: Path, configured: str | None) -> str:
    """The function's own PYTHONPATH, with /var/task read as the code directory.

    The code directory itself is not on it: the worker puts it first on ``sys.path`` once its
    own imports are done (as Lambda's runtime does with /var/task), so a module in the zip that
    shares a name with one of the standard library cannot break the worker itself.
    """
    entries: list[str] = []
    for entry in (configured or "").split(os.pathsep):
        if entry.startswith(_LAMBDA_TASK_ROOT):
            entry = str(code_dir) + entry[len(_LAMBDA_TASK_ROOT) :]
        if entry and entry not in entries:
            entries.append(entry)
    return os.pathsep.join(entries)


def new_log_stream_name(version: str) -> str:
    """A log stream name as Lambda makes them: date, version, a random id."""
    return f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"
