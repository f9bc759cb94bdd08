"""Functions that bundle streamkit, deployed and run through the local event source mapping.

- ``with_streamkit({"app.py": SOURCE})``: deployment files plus the streamkit package, copied
  from this checkout's ``src/streamkit``, so the function runs the code under test (the local
  worker puts the zip first on sys.path, as Lambda does with /var/task).
- ``deploy_streamkit_function(aws, name, SOURCE, env=...)``: create that function.
- ``running_mapping(...)``: create a mapping through the Lambda API and run it with an
  in-process ``Runner`` (fast retry pacing) until the ``with`` block ends.
- ``wait_for(condition)``: poll until a condition returns something truthy.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from scripts.build_lambda import streamkit_package_files

from tests.helpers.aws_clients import AwsClients
from tests.helpers.lambda_zip import create_function

__all__ = [
    "deploy_streamkit_function",
    "running_mapping",
    "streamkit_files",
    "wait_for",
    "with_streamkit",
]

T = TypeVar("T")


@functools.cache
def _files() -> tuple[tuple[str, bytes], ...]:
    # The same file selection as a deployment zip (scripts/build_lambda.py), read once.
    return tuple(sorted(streamkit_package_files().items()))


def streamkit_files() -> dict[str, bytes]:
    """``{"streamkit/...py": content}`` for every file of the package, as deployed."""
    return dict(_files())


def with_streamkit(files: Mapping[str, str | bytes]) -> dict[str, str | bytes]:
    """``files`` plus the streamkit package (``files`` win on a name clash)."""
    bundled: dict[str, str | bytes] = dict(streamkit_files())
    bundled.update(files)
    return bundled


def deploy_streamkit_function(
    aws: AwsClients, name: str, app_source: str, *, env: Mapping[str, str], timeout: int = 30
) -> str:
    """Create function ``name`` (handler ``app.handler``) bundling streamkit; its ARN."""
    # 256 MB: a worker importing boto3 and streamkit peaks around 150 MB.
    return create_function(
        aws.lambda_,
        name,
        with_streamkit({"app.py": app_source}),
        env=env,
        timeout=timeout,
        memory=256,
    )


@contextmanager
def running_mapping(
    aws: AwsClients,
    endpoint_url: str,
    state_dir: Path,
    *,
    function: str,
    stream_arn: str,
    **settings: Any,
) -> Iterator[tuple[Any, str]]:
    """Create a mapping (TRIM_HORIZON, ReportBatchItemFailures unless given) and run it with a
    Runner restricted to it; yields ``(runner, mapping UUID)``."""
    from streamkit.local.esm.destinations import DeliveryPolicy
    from streamkit.local.esm.processor import RetryDelay
    from streamkit.local.esm.runner import Runner
    from streamkit.streams.throttling import IdleBackoff

    settings.setdefault("StartingPosition", "TRIM_HORIZON")
    settings.setdefault("FunctionResponseTypes", ["ReportBatchItemFailures"])
    uuid: str = aws.lambda_.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=function, **settings
    )["UUID"]
    runner = Runner(
        endpoint_url,
        state_dir,
        reconcile_interval=0.2,
        mapping_filter=lambda mapping: mapping["UUID"] == uuid,
        retry_delay=RetryDelay(initial=0.05, maximum=0.2),
        delivery=DeliveryPolicy(initial_delay=0.05, max_delay=0.2),
        idle_backoff=lambda: IdleBackoff(min_delay=0.01, max_delay=0.05),
    )
    runner.start()
    try:
        yield runner, uuid
    finally:
        runner.stop()
        # Best effort: the endpoint is shared, and every test's names are unique.
        with contextlib.suppress(Exception):
            aws.lambda_.delete_event_source_mapping(UUID=uuid)


def wait_for(
    condition: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """Poll ``condition`` until it returns a truthy value (returned); TimeoutError otherwise,
    naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what or 'condition'} not met within {timeout}s (last: {value!r})")
        time.sleep(interval)
