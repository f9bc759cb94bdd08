"""Functions run on the Python their ``Runtime`` declares, in the local runtime.

The issue's "done when": a zip built for python3.12 (``scripts/build_lambda.py``, the codec
compiled for CPython 3.12) is deployed to the endpoint, fetched and run by the local invoker,
and inside the handler the interpreter is CPython 3.12 and ``streamkit.codec.COMPILED`` is
true, with streamkit imported from the zip and boto3 from the runner's site-packages.

Needs CPython 3.12 (PATH, pyenv or STREAMKIT_PYTHON_PYTHON3_12): without it the test skips
loudly, and fails under CI=true.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scripts.build_lambda import build_zip, native_files

from streamkit.exceptions import UnsupportedRuntimeError
from streamkit.local.interpreters import InterpreterNotFoundError, find_interpreter
from streamkit.local.invoker import FunctionInvoker
from streamkit.local.invoker.functions import fetch_function
from streamkit.local.invoker.runtime_python import STRICT_ENV
from tests.helpers import AwsClients, ensure_lambda_role

REPORT = """
import sys

import boto3
import streamkit
from streamkit import codec


def handler(event, context):
    return {
        "python": list(sys.version_info[:2]),
        "executable": sys.executable,
        "compiled": codec.COMPILED,
        "streamkit": streamkit.__file__,
        "boto3": boto3.__file__,
        "decoded": repr(codec.deserialize({"n": {"N": "1.50"}})),
    }
"""


def _require(runtime: str) -> str:
    try:
        return find_interpreter(runtime).executable
    except InterpreterNotFoundError as error:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {error}", pytrace=False)
        pytest.skip(f"!!! NOT RUN: {error}")
        raise


@pytest.fixture
def deploy(aws: AwsClients, unique_name: Callable[[str], str]) -> Callable[[str, bytes], str]:
    role = ensure_lambda_role(aws.iam)

    def create(runtime: str, package: bytes) -> str:
        name = unique_name("runtime-py")
        aws.lambda_.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": package},
            Timeout=30,
        )
        return name

    return create


@pytest.fixture
def invoke(
    aws: AwsClients, endpoint_url: str, region: str, tmp_path: Path
) -> Iterator[Callable[[str], dict[str, object]]]:
    invokers: list[FunctionInvoker] = []

    def run(name: str) -> dict[str, object]:
        function = fetch_function(aws.lambda_, name, state_dir=tmp_path)
        invoker = FunctionInvoker(function, endpoint_url=endpoint_url, region=region)
        invokers.append(invoker)
        result = invoker.invoke({})
        assert result.ok, result
        answer: dict[str, object] = result.payload
        assert str(answer["streamkit"]).startswith(str(function.code_dir))
        return answer

    yield run
    for invoker in invokers:
        invoker.close()


def test_a_python312_zip_runs_on_cpython312_with_the_compiled_codec(
    deploy: Callable[[str, bytes], str], invoke: Callable[[str], dict[str, object]]
) -> None:
    _require("python3.12")
    package = build_zip({"app.py": REPORT}, native=native_files("python3.12"))
    answer = invoke(deploy("python3.12", package))
    assert answer["python"] == [3, 12]
    assert answer["compiled"] is True
    assert answer["decoded"] == "{'n': Decimal('1.50')}"
    assert "boto3" in str(answer["boto3"])  # the runner's, as Lambda's runtime provides it


def test_a_function_on_the_runners_own_python_runs_on_this_interpreter(
    deploy: Callable[[str, bytes], str], invoke: Callable[[str], dict[str, object]]
) -> None:
    runtime = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    answer = invoke(deploy(runtime, build_zip({"app.py": REPORT})))
    assert answer["python"] == list(sys.version_info[:2])
    assert answer["compiled"] is False  # a zip without a compiled codec: the pure walker


def test_a_runtime_without_an_interpreter_falls_back_with_a_warning_or_fails_when_strict(
    deploy: Callable[[str, bytes], str],
    invoke: Callable[[str], dict[str, object]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = "python3.13" if sys.version_info[:2] != (3, 13) else "python3.12"
    variable = "STREAMKIT_PYTHON_" + runtime.upper().replace(".", "_")
    monkeypatch.setenv(variable, "/bin/false")  # configured, but not that runtime's Python
    name = deploy(runtime, build_zip({"app.py": REPORT}))
    with caplog.at_level(logging.WARNING, logger="streamkit.local.invoker.runtime_python"):
        answer = invoke(name)
    assert answer["python"] == list(sys.version_info[:2])
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(runtime in m and variable in m and "running it on this Python" in m for m in warned)

    monkeypatch.setenv(STRICT_ENV, "strict")
    with pytest.raises(UnsupportedRuntimeError, match=variable):
        invoke(name)
