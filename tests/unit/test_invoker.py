"""The local Lambda runtime: function code loading and worker subprocesses, without an emulator.

Functions are written into a temporary directory (or zipped in memory) and run in real worker
processes; nothing is mocked but GetFunction in the fetch tests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.lambda_zip import make_zip

from streamkit.exceptions import (
    FunctionCodeError,
    InvokerClosedError,
    UnsupportedRuntimeError,
)
from streamkit.local.invoker import FunctionInvoker, InvokeResult
from streamkit.local.invoker.functions import (
    FunctionSpec,
    LoadedFunction,
    fetch_function,
    install_code,
    load_function_from_directory,
)

ENDPOINT = "http://127.0.0.1:45999"
REGION = "eu-west-1"
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:"

MakeInvoker = Callable[..., FunctionInvoker]


def _spec(name: str = "fn", **overrides: Any) -> FunctionSpec:
    fields: dict[str, Any] = {
        "name": name,
        "arn": ARN + name,
        "handler": "app.handler",
        "runtime": "python3.11",
        "timeout_s": 3.0,
        "memory_mb": 256,
    }
    fields.update(overrides)
    return FunctionSpec(**fields)


def _write(code_dir: Path, files: Mapping[str, str]) -> None:
    for name, source in files.items():
        path = code_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


@pytest.fixture
def make_invoker(tmp_path: Path) -> Iterator[MakeInvoker]:
    """``make_invoker({"app.py": source}, timeout_s=1, ...)``: an invoker over that code."""
    invokers: list[FunctionInvoker] = []

    def make(
        files: Mapping[str, str], *, max_concurrency: int = 1, **spec_fields: Any
    ) -> FunctionInvoker:
        code_dir = tmp_path / f"code{len(invokers)}"
        _write(code_dir, files)
        function = load_function_from_directory(_spec(**spec_fields), code_dir)
        invoker = FunctionInvoker(
            function, endpoint_url=ENDPOINT, region=REGION, max_concurrency=max_concurrency
        )
        invokers.append(invoker)
        return invoker

    yield make
    for invoker in invokers:
        invoker.close()


ECHO = """
    import os
    INIT_PID = os.getpid()
    CALLS = 0

    def handler(event, context):
        global CALLS
        CALLS += 1
        return {"event": event, "calls": CALLS, "pid": INIT_PID}
"""


def test_return_value_round_trips_and_init_runs_once_per_worker(
    make_invoker: MakeInvoker,
) -> None:
    invoker = make_invoker({"app.py": ECHO})
    event = {"Records": [{"n": 1, "s": "ü", "f": 1.5, "none": None, "list": [True, False]}]}

    first = invoker.invoke(event, request_id="req-1")
    second = invoker.invoke({"again": 1})

    assert first.ok and first.function_error is None and first.status_code == 200
    assert first.request_id == "req-1"
    assert first.payload == {"event": event, "calls": 1, "pid": first.payload["pid"]}
    assert first.cold_start and first.init_duration_ms is not None and first.init_duration_ms > 0
    assert first.duration_ms >= 0 and first.max_memory_used_mb
    # Warm: same process, module state kept, no init.
    assert second.payload == {"event": {"again": 1}, "calls": 2, "pid": first.payload["pid"]}
    assert not second.cold_start
    assert second.request_id != first.request_id


def test_handler_path_with_slash_and_bytes_or_str_payloads(make_invoker: MakeInvoker) -> None:
    invoker = make_invoker({"pkg/__init__.py": "", "pkg/mod.py": ECHO}, handler="pkg/mod.handler")
    assert invoker.invoke(b'{"a": 1}').payload["event"] == {"a": 1}
    assert invoker.invoke('{"b": 2}').payload["event"] == {"b": 2}


def test_handler_exception_has_lambdas_error_shape_and_worker_stays_warm(
    make_invoker: MakeInvoker,
) -> None:
    invoker = make_invoker(
        {
            "app.py": """
                def handler(event, context):
                    if event.get("fail"):
                        raise KeyError("order-42")
                    return "fine"
            """
        }
    )
    invoker.invoke({})

    failed = invoker.invoke({"fail": True}, request_id="req-err")
    after = invoker.invoke({})

    assert not failed.ok and failed.function_error == "Unhandled" and failed.status_code == 200
    assert not failed.init_error and not failed.timed_out
    assert failed.payload["errorType"] == "KeyError"
    assert failed.error_type == "KeyError"
    assert failed.payload["errorMessage"] == "'order-42'"
    assert failed.payload["requestId"] == "req-err"
    trace = failed.payload["stackTrace"]
    assert isinstance(trace, list) and len(trace) == 1  # the worker's own frames are trimmed
    assert "app.py" in trace[0] and "in handler" in trace[0]
    assert "[ERROR] KeyError: 'order-42'" in failed.log_tail
    assert after.ok and after.payload == "fine" and not after.cold_start


SLEEPER = """
    import subprocess, sys, time

    def handler(event, context):
        if event.get("child_pid_file"):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            open(event["child_pid_file"], "w").write(str(child.pid))
        print("about to sleep", event.get("sleep", 0))
        if event.get("started_file"):
            open(event["started_file"], "w").close()
        time.sleep(event.get("sleep", 0))
        return "woke"
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_timeout_kills_the_worker_and_its_children_then_next_invoke_cold_starts(
    make_invoker: MakeInvoker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    invoker = make_invoker({"app.py": SLEEPER}, name="sleepy", timeout_s=1.0)
    pid_file = tmp_path / "child.pid"

    with caplog.at_level("INFO", logger="streamkit.local.invoker"):
        started = time.monotonic()
        result = invoker.invoke({"sleep": 30, "child_pid_file": str(pid_file)}, request_id="slow")
        elapsed = time.monotonic() - started
        after = invoker.invoke({"sleep": 0})
    messages = [r.getMessage() for r in caplog.records]

    assert 1.0 <= elapsed < 3.0
    assert result.timed_out and not result.ok and result.function_error == "Unhandled"
    assert result.payload["errorType"] == "Sandbox.Timedout"
    assert result.payload["errorMessage"] == (
        "RequestId: slow Error: Task timed out after 1.00 seconds"
    )
    assert "about to sleep 30" in result.log_tail
    child_pid = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child_pid), "the handler's child process outlived the timeout"
    assert after.ok and after.payload == "woke" and after.cold_start
    # A person can follow it in the log: which function, which request, what happened.
    assert any("timeout" in m and "sleepy" in m and "slow" in m for m in messages)
    assert sum("cold start" in m and "sleepy" in m for m in messages) == 2


def test_remaining_time_counts_down_from_the_timeout(make_invoker: MakeInvoker) -> None:
    invoker = make_invoker(
        {
            "app.py": """
                import time

                def handler(event, context):
                    before = context.get_remaining_time_in_millis()
                    time.sleep(0.2)
                    return [before, context.get_remaining_time_in_millis()]
            """
        },
        timeout_s=2.0,
    )
    before, after = invoker.invoke({}).payload
    assert 1500 < before <= 2000
    assert 150 <= before - after < 1000


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ("os._exit(3)", "Runtime exited with error: exit status 3"),
        ("sys.exit(2)", "Runtime exited with error: exit status 2"),
        (
            "os.kill(os.getpid(), signal.SIGSEGV)",
            "Runtime exited with error: signal: segmentation fault",
        ),
        ("sys.exit(0)", "Runtime exited without providing a reason"),
    ],
)
def test_worker_exit_is_a_runtime_exit_error(
    make_invoker: MakeInvoker, body: str, description: str
) -> None:
    invoker = make_invoker(
        {
            "app.py": f"""
                import os, signal, sys

                def handler(event, context):
                    if event.get("crash"):
                        print("going down")
                        {body}
                    return "alive"
            """
        }
    )
    result = invoker.invoke({"crash": True}, request_id="req-crash")
    after = invoker.invoke({})

    assert not result.ok and not result.timed_out and not result.init_error
    assert result.payload["errorType"] == "Runtime.ExitError"
    assert result.payload["errorMessage"] == f"RequestId: req-crash Error: {description}"
    assert "going down" in result.log_tail
    assert after.ok and after.payload == "alive" and after.cold_start


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"app.py": "import not_installed_anywhere\ndef handler(e, c): pass\n"},
            "app.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'not_installed_anywhere'",
        ),
        (
            {"app.py": "def other(e, c): pass\n"},
            "app.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
        ),
        (
            {"app.py": "def handler(e, c):\n    return (\n"},
            "app.handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'app'",
        ),
        (
            {"app.py": "raise RuntimeError('no config')\n"},
            "app.handler",
            "RuntimeError",
            "no config",
        ),
        (
            # A module of the same name that is already loaded (the stdlib's json) is refused.
            {"json.py": "def handler(e, c): return 'shadow'\n"},
            "json.handler",
            "Runtime.ImportModuleError",
            "outside the function's code",
        ),
    ],
)
def test_init_failures_are_flagged_and_retried_on_the_next_invoke(
    make_invoker: MakeInvoker,
    files: dict[str, str],
    handler: str,
    error_type: str,
    message: str,
) -> None:
    invoker = make_invoker(files, handler=handler)

    first = invoker.invoke({}, request_id="req-init")
    second = invoker.invoke({})

    assert first.init_error and not first.ok and first.function_error == "Unhandled"
    assert first.payload["errorType"] == error_type
    assert message in first.payload["errorMessage"]
    assert first.payload["requestId"] == "req-init"
    assert first.cold_start
    assert second.init_error and second.cold_start  # a new worker tried again
    with pytest.raises(FunctionCodeError, match=re.escape(error_type)):
        invoker.warm()


def test_init_output_shows_in_the_failed_init_log_tail(make_invoker: MakeInvoker) -> None:
    invoker = make_invoker({"app.py": "print('loading config')\nimport not_there\n"})
    result = invoker.invoke({})
    assert "loading config" in result.log_tail
    assert "[ERROR] Runtime.ImportModuleError" in result.log_tail


def test_warm_starts_a_worker_the_first_invoke_reuses(make_invoker: MakeInvoker) -> None:
    invoker = make_invoker({"app.py": ECHO})
    invoker.warm()
    result = invoker.invoke({})
    assert result.ok and not result.cold_start and result.payload["calls"] == 1


def test_marshalling_follows_the_lambda_python_runtime(make_invoker: MakeInvoker) -> None:
    invoker = make_invoker(
        {
            "app.py": """
                import datetime
                from decimal import Decimal

                def handler(event, context):
                    kind = event["kind"]
                    if kind == "set":
                        return {"ids": {1, 2}}
                    if kind == "datetime":
                        return datetime.date(2024, 1, 2)
                    if kind == "decimal":
                        return {"price": Decimal("12.5"), "qty": Decimal("3")}
                    if kind == "bytes":
                        return b"\\x00raw"
                    return None
            """
        }
    )
    as_set = invoker.invoke({"kind": "set"})
    as_date = invoker.invoke({"kind": "datetime"})
    as_decimal = invoker.invoke({"kind": "decimal"})
    as_bytes = invoker.invoke({"kind": "bytes"})
    as_none = invoker.invoke({"kind": "none"})

    assert as_set.function_error == "Unhandled" and not as_set.init_error
    assert as_set.payload["errorType"] == "Runtime.MarshalError"
    assert as_set.payload["errorMessage"] == (
        "Unable to marshal response: Object of type set is not JSON serializable"
    )
    assert as_date.payload["errorType"] == "Runtime.MarshalError"
    # awslambdaric encodes Decimal as a JSON number (DynamoDB items are full of them).
    assert as_decimal.ok and as_decimal.payload == {"price": 12.5, "qty": 3}
    assert as_bytes.ok and as_bytes.raw_payload == b"\x00raw" and as_bytes.payload == b"\x00raw"
    assert as_none.ok and as_none.payload is None and as_none.raw_payload == b"null"


def test_a_response_over_6_mb_is_refused_like_lambda(make_invoker: MakeInvoker) -> None:
    invoker = make_invoker(
        {"app.py": "def handler(event, context):\n    return 'x' * event['size']\n"}
    )
    too_big = invoker.invoke({"size": 6_300_000})
    just_fits = invoker.invoke({"size": 6_000_000})
    assert too_big.payload["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291556 bytes" in too_big.payload["errorMessage"]
    assert just_fits.ok and len(just_fits.payload) == 6_000_000


def test_an_init_that_outlasts_the_init_timeout_is_killed(tmp_path: Path) -> None:
    _write(tmp_path, {"app.py": "import time\ntime.sleep(30)\ndef handler(e, c): pass\n"})
    function = load_function_from_directory(_spec(), tmp_path)
    with FunctionInvoker(function, endpoint_url=None, region=REGION, init_timeout_s=0.5) as invoker:
        started = time.monotonic()
        result = invoker.invoke({})
        assert time.monotonic() - started < 2.5
    assert result.init_error and result.timed_out
    assert result.payload["errorType"] == "Sandbox.Timedout"


def test_memory_above_memory_size_is_reported_not_enforced(
    make_invoker: MakeInvoker, caplog: pytest.LogCaptureFixture
) -> None:
    invoker = make_invoker({"app.py": ECHO}, name="tiny", memory_mb=1)
    with caplog.at_level("WARNING", logger="streamkit.local.invoker"):
        first = invoker.invoke({})
        second = invoker.invoke({})
    assert first.ok and second.ok
    assert first.max_memory_used_mb is not None and first.max_memory_used_mb > 1
    warnings = [r.getMessage() for r in caplog.records if "MemorySize" in r.getMessage()]
    assert len(warnings) == 1  # once per worker, not per invoke
    assert "function tiny used" in warnings[0] and "MemorySize of 1 MB" in warnings[0]


def test_an_event_that_is_not_json_is_an_unmarshal_error(make_invoker: MakeInvoker) -> None:
    invoker = make_invoker({"app.py": ECHO})
    result = invoker.invoke(b"{not json")
    assert result.payload["errorType"] == "Runtime.UnmarshalError"
    assert result.payload["errorMessage"].startswith("Unable to unmarshal input:")


def test_environment_is_lambdas_plus_the_local_endpoint_and_nothing_else(
    make_invoker: MakeInvoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_ONLY_SECRET", "do-not-leak")
    invoker = make_invoker(
        {
            "app.py": """
                import os, sys

                def handler(event, context):
                    import boto3  # provided by the runtime, as in Lambda
                    client = boto3.client("sqs")  # no endpoint, no region, no credentials
                    credentials = client._request_signer._credentials
                    return {
                        "env": dict(os.environ),
                        "sys_path0": sys.path[0],
                        "cwd": os.getcwd(),
                        "boto3": [client.meta.endpoint_url, client.meta.region_name,
                                  credentials.access_key],
                    }
            """
        },
        name="orders-fn",
        environment={"TABLE_NAME": "orders", "AWS_REGION": "ignored-reserved"},
    )
    result = invoker.invoke({})
    env = result.payload["env"]
    code_dir = str(invoker.function.code_dir)

    assert env["TABLE_NAME"] == "orders"
    assert env["AWS_ENDPOINT_URL"] == ENDPOINT
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == REGION
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"] and env["AWS_SESSION_TOKEN"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "orders-fn"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/orders-fn"
    assert re.fullmatch(
        r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"]
    )
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["LAMBDA_TASK_ROOT"] == code_dir
    assert env["TZ"] == ":UTC"
    assert "RUNNER_ONLY_SECRET" not in env and "HOME" not in env
    assert result.payload["sys_path0"] == code_dir and result.payload["cwd"] == code_dir
    assert result.payload["boto3"] == [ENDPOINT, REGION, env["AWS_ACCESS_KEY_ID"]]


def test_context_has_the_lambda_python_runtimes_fields(make_invoker: MakeInvoker) -> None:
    invoker = make_invoker(
        {
            "app.py": """
                def handler(event, context):
                    return {
                        "function_name": context.function_name,
                        "function_version": context.function_version,
                        "invoked_function_arn": context.invoked_function_arn,
                        "memory_limit_in_mb": context.memory_limit_in_mb,
                        "aws_request_id": context.aws_request_id,
                        "log_group_name": context.log_group_name,
                        "log_stream_name": context.log_stream_name,
                        "identity": [context.identity.cognito_identity_id,
                                     context.identity.cognito_identity_pool_id],
                        "client_context": context.client_context,
                    }
            """
        },
        name="ctx-fn",
    )
    result = invoker.invoke({}, request_id="req-ctx")
    payload = result.payload
    assert payload["function_name"] == "ctx-fn"
    assert payload["function_version"] == "$LATEST"
    assert payload["invoked_function_arn"] == ARN + "ctx-fn"
    assert payload["memory_limit_in_mb"] == "256"  # a str, as awslambdaric reads it from env
    assert payload["aws_request_id"] == "req-ctx"
    assert payload["log_group_name"] == "/aws/lambda/ctx-fn"
    assert payload["log_stream_name"].endswith("]" + payload["log_stream_name"][-32:])
    assert payload["identity"] == [None, None]
    assert payload["client_context"] is None


def test_invokes_run_in_parallel_up_to_max_concurrency(make_invoker: MakeInvoker) -> None:
    invoker = make_invoker(
        {
            "app.py": """
                import os, time

                def handler(event, context):
                    time.sleep(event["sleep"])
                    return os.getpid()
            """
        },
        max_concurrency=2,
    )

    def run_parallel(count: int, sleep: float) -> tuple[float, list[InvokeResult]]:
        results: list[InvokeResult] = []
        lock = threading.Lock()

        def one() -> None:
            result = invoker.invoke({"sleep": sleep})
            with lock:
                results.append(result)

        threads = [threading.Thread(target=one) for _ in range(count)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started, results

    _, warmups = run_parallel(2, 0.3)  # both slots busy at once: two workers start
    elapsed, results = run_parallel(2, 1.0)
    _, capped = run_parallel(3, 0.1)

    assert {r.payload for r in warmups} == {r.payload for r in results}
    assert len({r.payload for r in results}) == 2
    assert not any(r.cold_start for r in results)
    assert elapsed < 1.7, f"two 1 s invokes took {elapsed:.2f} s with max_concurrency=2"
    assert {r.payload for r in capped} <= {r.payload for r in results}  # never a third worker


def test_handler_output_goes_to_log_tail_and_never_into_the_protocol(
    make_invoker: MakeInvoker,
) -> None:
    invoker = make_invoker(
        {
            "app.py": """
                import logging, os, struct, sys

                def handler(event, context):
                    print("plain print")
                    # Bytes that look like a protocol frame, on every path to fd 1 and 2.
                    fake = struct.pack(">II", 2, 0) + b"{}"
                    sys.stdout.buffer.write(fake + b"\\n")
                    os.write(1, b"raw fd1 " + fake + b"\\n")
                    print("to stderr", file=sys.stderr)
                    logging.getLogger().setLevel(logging.INFO)
                    logging.getLogger("app").info("logged %s", event["n"])
                    context.log("via context\\n")
                    sys.stdout.write("no newline at the end")
                    return {"n": event["n"]}
            """
        }
    )
    for n in range(3):
        result = invoker.invoke({"n": n}, request_id=f"req-{n}")
        assert result.ok and result.payload == {"n": n}
        tail = result.log_tail
        assert "plain print" in tail and "to stderr" in tail and "via context" in tail
        assert "raw fd1" in tail
        assert re.search(rf"\[INFO\]\t\S+Z\treq-{n}\tlogged {n}", tail)
        assert tail.endswith("no newline at the end")
        assert "END RequestId" not in tail
        assert tail.count("plain print") == 1  # only this invoke's output


def test_the_zips_own_copy_of_a_library_wins(make_invoker: MakeInvoker) -> None:
    invoker = make_invoker(
        {
            "streamkit/__init__.py": "BUNDLED = True\n",
            "app.py": """
                import streamkit

                def handler(event, context):
                    return [getattr(streamkit, "BUNDLED", False), streamkit.__file__]
            """,
        }
    )
    bundled, location = invoker.invoke({}).payload
    assert bundled is True
    assert location.startswith(str(invoker.function.code_dir))


def test_close_interrupts_an_invoke_in_flight_and_refuses_new_ones(
    make_invoker: MakeInvoker, tmp_path: Path
) -> None:
    invoker = make_invoker({"app.py": SLEEPER}, timeout_s=30.0)
    invoker.warm()
    outcome: list[BaseException | InvokeResult] = []

    started = tmp_path / "started"

    def slow() -> None:
        try:
            outcome.append(invoker.invoke({"sleep": 20, "started_file": str(started)}))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    deadline = time.monotonic() + 10
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started.exists(), "the invoke never started"
    invoker.close()  # the handler is mid-sleep now
    thread.join(timeout=5)

    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], InvokerClosedError)
    with pytest.raises(InvokerClosedError):
        invoker.invoke({})


# --- loading code -------------------------------------------------------------------------


APP = {"app.py": "def handler(event, context):\n    return 'from zip'\n"}


def _b64_sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class _FakeLambda:
    """Answers GetFunction like Lambda for one function (the integration tests use the real
    API); counts calls."""

    def __init__(self, configuration: Mapping[str, Any], location: str) -> None:
        self.configuration = dict(configuration)
        self.location = location

    def get_function(self, FunctionName: str) -> dict[str, Any]:  # boto3's parameter name
        assert FunctionName in (
            self.configuration["FunctionName"],
            self.configuration["FunctionArn"],
        )
        return {
            "Configuration": self.configuration,
            "Code": {"RepositoryType": "S3", "Location": self.location},
        }


def _configuration(package: bytes, **overrides: Any) -> dict[str, Any]:
    configuration = {
        "FunctionName": "zipped",
        "FunctionArn": ARN + "zipped",
        "Runtime": "python3.11",
        "Role": "arn:aws:iam::123456789012:role/r",
        "Handler": "app.handler",
        "CodeSha256": _b64_sha(package),
        "Timeout": 7,
        "MemorySize": 512,
        "Version": "$LATEST",
        "LastModified": "2024-01-01T00:00:00.000+0000",
        "Environment": {"Variables": {"K": "v"}},
        "PackageType": "Zip",
    }
    configuration.update(overrides)
    return configuration


def test_fetch_function_downloads_verifies_unpacks_and_reuses(tmp_path: Path) -> None:
    package = make_zip({**APP, "lib/data.txt": "payload"})
    downloads: list[str] = []

    def http_get(url: str) -> bytes:
        downloads.append(url)
        return package

    client = _FakeLambda(_configuration(package), "http://code.example/zipped.zip")
    first = fetch_function(client, "zipped", state_dir=tmp_path, http_get=http_get)
    second = fetch_function(client, ARN + "zipped", state_dir=tmp_path, http_get=http_get)

    sha_hex = hashlib.sha256(package).hexdigest()
    assert first.code_dir == tmp_path.resolve() / "functions" / "zipped" / sha_hex
    assert (first.code_dir / "lib" / "data.txt").read_text() == "payload"
    assert first.code_location == "http://code.example/zipped.zip"
    assert downloads == ["http://code.example/zipped.zip"]  # the second fetch reused the dir
    assert second.code_dir == first.code_dir
    spec = first.spec
    assert (spec.name, spec.handler, spec.timeout_s, spec.memory_mb) == (
        "zipped",
        "app.handler",
        7.0,
        512,
    )
    assert dict(spec.environment) == {"K": "v"} and spec.role.endswith(":role/r")
    assert [p.name for p in first.code_dir.parent.iterdir()] == [sha_hex]  # no leftovers


def test_fetched_code_runs(tmp_path: Path) -> None:
    package = make_zip(APP)
    client = _FakeLambda(_configuration(package), "http://code.example/z.zip")
    function = fetch_function(client, "zipped", state_dir=tmp_path, http_get=lambda url: package)
    with FunctionInvoker(function, endpoint_url=None, region=REGION) as invoker:
        assert invoker.invoke({}).payload == "from zip"


def test_sha256_mismatch_is_rejected_and_nothing_is_unpacked(tmp_path: Path) -> None:
    package = make_zip(APP)
    tampered = make_zip({"app.py": "def handler(e, c):\n    return 'evil'\n"})
    client = _FakeLambda(_configuration(package), "http://code.example/z.zip")

    with pytest.raises(FunctionCodeError) as caught:
        fetch_function(client, "zipped", state_dir=tmp_path, http_get=lambda url: tampered)

    error = caught.value
    assert error.function == "zipped" and error.location == "http://code.example/z.zip"
    assert "SHA-256 mismatch" in str(error) and "http://code.example/z.zip" in str(error)
    assert _b64_sha(package) in str(error) and _b64_sha(tampered) in str(error)
    assert not (tmp_path / "functions" / "zipped").exists() or not any(
        (tmp_path / "functions" / "zipped").iterdir()
    )


@pytest.mark.parametrize("evil_name", ["../escaped.py", "/tmp/absolute-escape.py", "a/../../up.py"])
def test_zip_slip_paths_are_rejected(tmp_path: Path, evil_name: str) -> None:
    package = make_zip({**APP, evil_name: "owned = True\n"})
    state_dir = tmp_path / "state"
    with pytest.raises(FunctionCodeError, match="unsafe path in zip"):
        install_code(_spec("slip"), package, state_dir=state_dir)
    assert not (tmp_path / "escaped.py").exists()
    assert not Path("/tmp/absolute-escape.py").exists()
    assert not any((state_dir / "functions" / "slip").iterdir())  # staging cleaned up


def test_download_failure_and_corrupt_zip_name_the_cause(tmp_path: Path) -> None:
    package = b"PK\x03\x04 this is not really a zip"
    client = _FakeLambda(_configuration(package), "http://code.example/bad.zip")

    def refuse(url: str) -> bytes:
        raise OSError("connection refused")

    with pytest.raises(FunctionCodeError, match="download failed: connection refused"):
        fetch_function(client, "zipped", state_dir=tmp_path, http_get=refuse)
    with pytest.raises(FunctionCodeError, match="corrupt zip"):
        fetch_function(client, "zipped", state_dir=tmp_path, http_get=lambda url: package)


def test_a_handler_module_missing_from_the_code_is_refused_before_any_worker(
    tmp_path: Path,
) -> None:
    package = make_zip(APP)
    with pytest.raises(FunctionCodeError, match=re.escape("handler module 'orders.main'")):
        install_code(_spec("missing", handler="orders/main.handler"), package, state_dir=tmp_path)
    with pytest.raises(FunctionCodeError, match=re.escape("not of the form 'module.function'")):
        install_code(_spec("malformed", handler="handler"), package, state_dir=tmp_path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Runtime": "nodejs20.x"}, "runtime nodejs20.x is not supported by the local runtime"),
        ({"Runtime": "provided.al2023"}, "runtime provided.al2023 is not supported"),
        (
            {"PackageType": "Image", "Runtime": None},
            "package type Image is not supported by the local runtime",
        ),
    ],
)
def test_non_python_functions_are_refused(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    package = make_zip(APP)
    client = _FakeLambda(_configuration(package, **overrides), "http://code.example/z.zip")
    downloads: list[str] = []

    def http_get(url: str) -> bytes:
        downloads.append(url)
        return package

    with pytest.raises(UnsupportedRuntimeError, match=re.escape(message)):
        fetch_function(client, "zipped", state_dir=tmp_path, http_get=http_get)
    assert downloads == []


def test_get_function_failure_is_a_function_code_error(tmp_path: Path) -> None:
    class Missing:
        def get_function(self, FunctionName: str) -> dict[str, Any]:
            raise LookupError(f"Function not found: {FunctionName}")

    with pytest.raises(FunctionCodeError, match="GetFunction failed: Function not found: ghost"):
        fetch_function(Missing(), "ghost", state_dir=tmp_path)


def test_loaded_function_is_plain_data(tmp_path: Path) -> None:
    _write(tmp_path, APP)
    function = load_function_from_directory(_spec(environment={"A": "1"}), tmp_path)
    assert isinstance(function, LoadedFunction)
    with pytest.raises(TypeError):
        function.spec.environment["B"] = "2"  # type: ignore[index]
    assert hash(function.spec) == hash(_spec(environment={"A": "1"}))


def test_cold_starts_take_turns_one_per_core(make_invoker: MakeInvoker) -> None:
    """Concurrent cold starts share this machine's cores (on AWS each environment has its own
    CPU), so at most one per core initializes at a time, and each init is timed on its own."""
    from streamkit.local import invoker as invoker_module

    cores = max(1, os.cpu_count() or 1)
    lanes = cores + 2
    slow_init = """
        import time
        INIT = (time.time(), time.sleep(0.4), time.time())

        def handler(event, context):
            return [INIT[0], INIT[2]]
    """
    invoker = make_invoker({"app.py": slow_init}, max_concurrency=lanes)
    results: list[InvokeResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(invoker.invoke({}))) for _ in range(lanes)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == lanes and all(r.ok and r.cold_start for r in results)
    spans = [tuple(r.payload) for r in results]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert 1 <= most <= cores
    # The init time is the worker's own: the wait for a turn is not in it.
    assert all(r.init_duration_ms is not None and r.init_duration_ms < 10_000 for r in results)
    assert invoker_module._COLD_STARTS._value == cores  # every turn given back
