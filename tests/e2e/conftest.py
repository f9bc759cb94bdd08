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

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scripts.terraform_cli_config import write_cli_config

from tests.helpers.terraform import REPO, Terraform, unavailable

HANDLER_NAMES = ("workflow", "order_events", "product_events")


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
    # from the package index) and compiles the codec; later ones reuse both.
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_lambda.py"), "--all", "-o", str(out)],
        check=True, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert sorted(p.stem for p in out.glob("*.zip")) == sorted(HANDLER_NAMES)
    return out
