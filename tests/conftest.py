"""What every test shares.

- Dummy AWS credentials and region, set at import (before any test module creates a boto3
  client), so nothing picks up a developer's real credentials, profile or endpoint override.
- A guard that fails any request to a real AWS endpoint.
- Endpoint fixtures, created only when a test asks for them:

  ``endpoint_url`` (session, str)
      ``STREAMKIT_ENDPOINT_URL`` when set (LocalStack or any other emulator), otherwise the
      embedded emulator, started once per session on a free port.
  ``emulator`` (session, Emulator | None)
      The embedded emulator, or None when STREAMKIT_ENDPOINT_URL is set.
  ``embedded_emulator`` (session, Emulator)
      The same, but skips the test when STREAMKIT_ENDPOINT_URL is set.
  ``region`` (session, str)
      "us-east-1".
  ``aws`` (function, tests.helpers.AwsClients)
      boto3 clients bound to ``endpoint_url``: ``aws.dynamodb``, ``aws.dynamodbstreams``,
      ``aws.lambda_``, ``aws.sqs``, ``aws.sns``, ``aws.s3``, ``aws.iam``, ``aws.client(name)``;
      built once per session and shared (boto3 clients are thread-safe).
  ``unique_name`` (function, Callable[[str], str])
      ``unique_name("orders")`` -> ``"orders-3f9c2a1b"``, fresh on every call.

  The endpoint is never reset between tests: create resources with ``unique_name`` and do
  not rely on an empty account.

- ``redis_server`` (session, scripts.redis_server.RedisServer): a private ``redis-server`` on a
  free loopback port (the order platform's cache). Missing binary: a failure under ``CI=true``
  (``.ci/run`` installs it), a loud skip elsewhere.

- ``each_walker`` (function, streamkit.codec._walker.Deserializer): runs the test once per
  fast deserializer (pure Python, native), with the codec switched to it.

Parallel runs (``make test``: pytest-xdist, ``--dist loadgroup``). Each worker is its own
process with its own session fixtures (emulator, redis, terraform copy), so tests on different
workers share no endpoint. What must stay together is grouped with ``xdist_group``:

- every test that uses a module- or class-scoped fixture of its module is put in a group named
  after the module (done below, automatically), so that fixture (a terraform apply, a console
  pipeline, a browser) is set up once, on one worker, as in a serial run;
- anything else that shares state across modules names a group explicitly.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.helpers.aws_clients import AwsClients

if TYPE_CHECKING:
    from streamkit.local.emulator import Emulator

_DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # No instance-metadata lookups (each would wait for a timeout on a non-EC2 machine).
    "AWS_EC2_METADATA_DISABLED": "true",
    # Point config/credential files at nothing so a profile cannot override the values above.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    # The X-Ray SDK stays quiet unless a test opts in.
    "AWS_XRAY_SDK_ENABLED": "false",
}
# A global endpoint override would send moto.mock_aws-based unit tests to that endpoint.
_REMOVED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")

os.environ.update(_DUMMY_ENV)
for _name in _REMOVED_ENV:
    os.environ.pop(_name, None)
for _name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")]:
    os.environ.pop(_name)


class RealAwsRequestError(RuntimeError):
    """A test tried to send a request to a real AWS endpoint."""


def _refuse_real_aws(original_send: Any) -> Any:
    def send(self: Any, request: Any) -> Any:
        host = urlsplit(request.url).hostname or ""
        if host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws")):
            raise RealAwsRequestError(
                f"test tried to reach real AWS at {request.url}; pass endpoint_url "
                "(the integration fixtures do) or use moto.mock_aws"
            )
        return original_send(self, request)

    return send


def _shares_a_wider_fixture(item: pytest.Item) -> bool:
    """True when the test uses a module- or class-scoped fixture (defined anywhere: the
    module, a conftest): split over workers, it would be set up again on each one."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definitions[-1].scope in ("module", "class")
        for definitions in info.name2fixturedefs.values()
        if definitions
    )


# The longest single tests (one to four minutes each, the rest of the suite is seconds), started
# first in a parallel run so that it does not end with one worker busy and the others idle.
# Groups already go first (xdist orders them by size); these lead the ungrouped tests.
_LONGEST_FIRST = (
    "tests/integration/test_load_test.py::test_a_short_load_test_balances",
    "tests/e2e/test_checkov.py::",
    "tests/reliability/test_soak.py::",
)


# tryfirst: xdist turns the xdist_group marks into node ids in its own collection hook, which
# would otherwise run before this one.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None and _shares_a_wider_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a serial run keeps the file order
        items.sort(key=lambda item: not item.nodeid.startswith(_LONGEST_FIRST))


def pytest_collection_finish(session: pytest.Session) -> None:
    # xdist marks a grouped test by suffixing its node id with "@<group>"; a pytest where that
    # no longer takes effect (pytest-xdist#1386) would spread the groups silently.
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [
        item.nodeid
        for item in session.items
        if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid
    ]
    if lost:
        message = (
            f"--dist loadgroup is not grouping ({len(lost)} tests, e.g. {lost[0]}): this "
            "pytest/pytest-xdist pair loses the xdist_group marks (see pyproject.toml)"
        )
        # This runs in a worker, whose output is captured and lost when it stops: say it on
        # the terminal first (xdist then reports the worker's end as an internal error).
        capture = session.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            sys.stderr.write(f"\nERROR: {message}\n")
        raise pytest.UsageError(message)


def pytest_configure(config: pytest.Config) -> None:
    # Hooked where botocore hands a request to the network: moto.mock_aws answers earlier (in
    # a before-send event), so mocked calls never get here, and calls to a local endpoint pass.
    from botocore.httpsession import URLLib3Session

    if not getattr(URLLib3Session.send, "_streamkit_guard", False):
        guarded = _refuse_real_aws(URLLib3Session.send)
        guarded._streamkit_guard = True
        URLLib3Session.send = guarded


# --- redis ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    from scripts.redis_server import PrerequisiteMissing, start_redis

    try:
        server = start_redis()
    except PrerequisiteMissing as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(f"!!! NOT RUN: {exc} (under CI=true this is a failure)")
    with server:
        yield server


# --- endpoint fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator | None]:
    """The embedded emulator of this session, or None when STREAMKIT_ENDPOINT_URL is set."""
    if os.environ.get("STREAMKIT_ENDPOINT_URL"):
        yield None
        return
    # Imported here: moto takes ~0.4 s to import, and unit tests never need it.
    from streamkit.local.emulator import Emulator

    with Emulator(port=0) as embedded:
        yield embedded


@pytest.fixture(scope="session")
def embedded_emulator(emulator: Emulator | None) -> Emulator:
    """The embedded emulator; skips the test when running against STREAMKIT_ENDPOINT_URL."""
    if emulator is None:
        pytest.skip("needs the embedded emulator (STREAMKIT_ENDPOINT_URL is set)")
    return emulator


@pytest.fixture(scope="session")
def endpoint_url(emulator: Emulator | None) -> str:
    """The AWS endpoint tests talk to, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
    if emulator is None:
        return os.environ["STREAMKIT_ENDPOINT_URL"].rstrip("/")
    return emulator.endpoint_url


@pytest.fixture(scope="session")
def region() -> str:
    return "us-east-1"


@pytest.fixture(scope="session")
def _session_clients(endpoint_url: str, region: str) -> AwsClients:
    return AwsClients(endpoint_url, region)


@pytest.fixture
def aws(_session_clients: AwsClients) -> AwsClients:
    """boto3 clients bound to ``endpoint_url`` (see the module docstring)."""
    return _session_clients


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """``unique_name("orders")`` -> ``"orders-3f9c2a1b"``: a fresh name on every call.

    Lower-case letters, digits and hyphens, at most 63 characters: valid for DynamoDB tables,
    Lambda functions, SQS queues, SNS topics, IAM roles and S3 buckets alike.
    """

    def make(prefix: str = "sk") -> str:
        cleaned = "".join(c if c.isalnum() else "-" for c in prefix.lower()).strip("-") or "sk"
        return f"{cleaned[:54]}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture(params=["python", "native"])
def each_walker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    from streamkit import codec
    from tests.helpers.walkers import WALKERS

    walker = WALKERS[request.param]
    monkeypatch.setattr(codec, "_fast_decimal_map", walker.decimal_map)
    monkeypatch.setattr(codec, "_fast_map_for", walker.map_for)
    return walker
