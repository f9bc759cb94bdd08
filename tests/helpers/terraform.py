"""Terraform for the end-to-end tests, and how a missing prerequisite is reported.

- ``Terraform``: the ``terraform`` binary with the project's CLI configuration, run in a
  private copy of ``terraform/`` (the ``terraform`` fixture of tests/e2e/conftest.py makes one).
- ``unavailable(reason)``: a prerequisite is missing: a failure under ``CI=true``, a loud skip
  elsewhere.
- ``REPO``: the checkout's root.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["REPO", "Terraform", "TerraformError", "on_ci", "unavailable"]

REPO = Path(__file__).resolve().parents[2]


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
