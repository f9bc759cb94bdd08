"""scripts/build_lambda.py: function zips bundle the shared platform package, and optionally a
vendored pure-Python dependency, deterministically."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from scripts.build_lambda import build_from_directory, function_dirs, main

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"


def names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_every_function_zip_carries_its_app_the_shared_sinks_and_streamkit() -> None:
    assert [p.name for p in function_dirs(HANDLERS)] == [
        "order_events",
        "product_events",
        "workflow",
    ]
    data = build_from_directory(HANDLERS / "order_events")
    entries = names(data)
    assert "app.py" in entries
    assert {"orderplatform/__init__.py", "orderplatform/audit.py", "orderplatform/cache.py"} <= set(
        entries
    )
    assert "streamkit/__init__.py" in entries
    assert not any(n.startswith("redis/") for n in entries)  # the runner's environment has it
    assert build_from_directory(HANDLERS / "order_events") == data  # deterministic


def test_a_vendored_package_is_bundled_on_request(tmp_path: Path) -> None:
    data = build_from_directory(HANDLERS / "product_events", packages=("redis",))
    assert "redis/__init__.py" in names(data)
    with pytest.raises(ModuleNotFoundError, match="pip install"):
        build_from_directory(HANDLERS / "product_events", packages=("no_such_package_here",))
    assert main(["--all", "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.zip")) == [
        "order_events.zip", "product_events.zip", "workflow.zip",
    ]  # fmt: skip
