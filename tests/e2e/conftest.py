"""Fixtures of the end-to-end suite: Terraform against a local endpoint.

``terraform`` (session, Terraform)
    The ``terraform`` binary with the project's CLI configuration (``scripts/terraform_cli_config.py``:
    the provider mirror when there is one), running in a private copy of ``terraform/`` so
    that no ``.terraform`` directory or state lands in the checkout. Missing terraform or
    mirror: a failure under ``CI=true``, a loud skip elsewhere.
``lambda_zip_dir`` (session, Path)
    The handler zips, built by ``scripts/build_lambda.py --all`` exactly as for a deployment.
``redis_server`` comes from tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from scripts.terraform_cli_config import write_cli_config

REPO = Path(__file__).resolve().parents[2]
HANDLER_NAMES = ("workflow", "order_events", "product_events")


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """A prerequisite is missing: CI must fail (it would otherwise pass untested), a
    developer machine skips, saying so loudly."""
    if on_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(f"!!! E2E NOT RUN: {reason} (under CI=true this is a failure)")


class TerraformError(RuntimeError):
    """A terraform command failed; carries its arguments, exit code and output."""

    def __init__(self, args: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(
            f"terraform {' '.join(args)} exited {returncode}\n"
            f"--- stderr ---\n{stderr[-6000:]}\n--- stdout (tail) ---\n{stdout[-4000:]}"
        )
        self.args_ = list(args)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


@dataclass
class Terraform:
    """Runs terraform in a private copy of the repository's ``terraform/`` tree."""

    binary: str
    root: Path
    cli_config: Path

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # The platform's endpoints come from variables, never from the caller's AWS_* setup.
            if not key.startswith(("AWS_ENDPOINT_URL", "TF_VAR_", "TF_CLI_ARGS"))
        }
        env.update(
            TF_CLI_CONFIG_FILE=str(self.cli_config),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",  # no version check-in call to HashiCorp
        )
        env.update(extra or {})
        return env

    def run(
        self,
        workdir: str,
        *args: str,
        ok_codes: Sequence[int] = (0,),
        timeout: float = 600,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``terraform -chdir=<copy>/<workdir> args...`` (``env`` added to the environment);
        TerraformError unless the exit code is in ``ok_codes``."""
        command = [self.binary, f"-chdir={self.root / workdir}", *args, "-no-color"]
        result = subprocess.run(
            command, env=self.env(env), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode not in ok_codes:
            raise TerraformError(args, result.returncode, result.stdout, result.stderr)
        return result


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    binary = shutil.which("terraform")
    if binary is None:
        unavailable("terraform is not on PATH")
    assert binary is not None
    work = tmp_path_factory.mktemp("terraform")
    cli_config, mirror = write_cli_config(work / "cli.tfrc")
    if mirror is None:
        unavailable(
            "no filesystem mirror of registry.terraform.io/hashicorp/aws was found "
            "(set STREAMKIT_TF_MIRROR; this machine has no registry access)"
        )
    shutil.copytree(
        REPO / "terraform",
        work / "terraform",
        ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"),
    )
    return Terraform(binary, work / "terraform", cli_config)


@pytest.fixture(scope="session")
def lambda_zip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/workflow.zip``, ``order_events.zip``, ``product_events.zip``, built for the
    runtime the Terraform declares (the codec compiled for it, as ``make lambdas`` builds them)."""
    out = tmp_path_factory.mktemp("lambda-zips")
    # The first build on a fresh checkout also makes the compile toolchain (a venv with mypy
    # from the package index) and compiles the codec; later builds reuse both.
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_lambda.py"), "--all", "-o", str(out)],
        check=True, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert sorted(p.stem for p in out.glob("*.zip")) == sorted(HANDLER_NAMES)
    return out
