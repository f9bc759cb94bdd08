"""Tools the embedded default needs; a missing one is one line saying how to install it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


try:  # the platform's Redis helper raises its own; one class for both
    from redis_server import PrerequisiteMissing
except ImportError:

    class PrerequisiteMissing(RuntimeError):  # type: ignore[no-redef]
        """A tool the run needs is not installed; the message says how to install it."""


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        raise PrerequisiteMissing(
            "terraform is not on PATH: install Terraform 1.5+ "
            "(https://developer.hashicorp.com/terraform/install, e.g. apt-get install terraform "
            "from HashiCorp's apt repository)"
        )
    return binary


def terraform_cli_config(path: Path) -> Path:
    """The project's Terraform CLI config (the provider mirror when there is one)."""
    from terraform_cli_config import write_cli_config

    config, _mirror = write_cli_config(path)
    return config


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise PrerequisiteMissing(
            "redis-server is not on PATH: install it with `apt-get install redis-server` "
            "(Debian/Ubuntu) or `brew install redis` (macOS)"
        )
    return binary
