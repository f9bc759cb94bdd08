"""Which fast deserializer the codec runs (streamkit.codec._walker), and that CI compiles it.

The selection is tested on copies of the installed package in a temporary directory, imported
by a child interpreter, so each layout (editable build, wheel, stale build, broken build,
pure-Python request) is the real thing rather than a patched import system.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers.walkers import NATIVE_IS_COMPILED

import streamkit
from streamkit import codec
from streamkit.codec import _native_deserializer
from streamkit.codec._walker import DIGEST_SUFFIX, PURE_PYTHON_ENV, stale_reason

PACKAGE = Path(streamkit.__file__).parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

needs_compiled = pytest.mark.skipif(
    not NATIVE_IS_COMPILED and not IN_CI,
    reason=(
        "NOT TESTED: the native deserializer is not compiled in this environment (no C "
        "compiler when it was installed?). `make venv` builds it; CI requires it."
    ),
)

PROBE = """
import json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    from streamkit import codec
image = {"n": {"N": "1E+40"}, "m": {"M": {"q": {"N": "2"}, "s": {"SS": ["a"]}}}}
print(json.dumps({
    "compiled": codec.COMPILED,
    "decoded": repr(codec.deserialize(image)),
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
}))
"""
EXPECTED_DECODED = "{'n': Decimal('1E+40'), 'm': {'q': Decimal('2'), 's': {'a'}}}"


def _copy_package(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    shutil.copytree(PACKAGE, root / "streamkit", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _probe(root: Path, **env: str) -> dict[str, object]:
    child_env = {k: v for k, v in os.environ.items() if k != PURE_PYTHON_ENV}
    child_env.update(env, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=child_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    assert result["decoded"] == EXPECTED_DECODED  # whichever walker, the same answer
    return result


def _codec_dir(root: Path) -> Path:
    return root / "streamkit" / "codec"


def _compiled_files(root: Path) -> list[Path]:
    return sorted(_codec_dir(root).glob("_native_deserializer*.so"))


def test_native_walker_is_compiled_in_ci() -> None:
    if not IN_CI and not NATIVE_IS_COMPILED:
        pytest.skip(
            "NOT TESTED: the native deserializer is not compiled here; run `make venv`. "
            "Under CI=true this is a failure."
        )
    assert NATIVE_IS_COMPILED, f"imported from {_native_deserializer.__file__}"
    assert codec.COMPILED or os.environ.get(PURE_PYTHON_ENV)
    if PACKAGE.parent.name == "src":  # an editable install (make, CI): compiled in place
        # hatch_build.py wrote the source digest under the name _walker reads.
        source = PACKAGE / "codec" / "_native_deserializer.py"
        assert source.with_name(source.name + DIGEST_SUFFIX).exists()


@needs_compiled
def test_the_codec_runs_the_compiled_walker_by_default(tmp_path: Path) -> None:
    result = _probe(_copy_package(tmp_path))
    assert result == {"compiled": True, "decoded": EXPECTED_DECODED, "warnings": []}


@needs_compiled
def test_pure_python_can_be_asked_for(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    assert _probe(root, **{PURE_PYTHON_ENV: "1"})["compiled"] is False
    assert _probe(root, **{PURE_PYTHON_ENV: "0"})["compiled"] is True


@needs_compiled
def test_a_compiled_walker_older_than_its_source_is_not_used(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    source = _codec_dir(root) / "_native_deserializer.py"
    digest = source.with_name(source.name + DIGEST_SUFFIX)
    if not digest.exists():  # installed from a wheel: make it look like an editable build
        import hashlib

        digest.write_text(hashlib.sha256(source.read_bytes()).hexdigest() + "\n")
    assert _probe(root)["compiled"] is True
    source.write_text(source.read_text() + "\n# edited after the build\n")
    result = _probe(root)
    assert result["compiled"] is False
    warnings = result["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1
    assert warnings[0].startswith("StaleNativeBuildWarning: ")
    assert "make venv" in warnings[0]


@needs_compiled
def test_a_wheel_layout_without_a_digest_trusts_its_compiled_walker(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    for digest in _codec_dir(root).glob(f"*{DIGEST_SUFFIX}"):
        digest.unlink()
    assert _probe(root)["compiled"] is True


@needs_compiled
def test_a_compiled_walker_that_cannot_load_falls_back_to_pure_python(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    for compiled in _compiled_files(root):
        compiled.write_bytes(b"not an ELF file")  # what a zip built for another platform is
    assert _probe(root)["compiled"] is False


def test_without_a_compiled_walker_the_pure_one_runs(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    for compiled in _compiled_files(root):
        compiled.unlink()
    result = _probe(root)
    assert result["compiled"] is False
    assert result["warnings"] == []  # nothing is wrong: it was never built


def test_stale_reason_compares_the_recorded_digest(tmp_path: Path) -> None:
    import hashlib

    source = tmp_path / "_native_deserializer.py"
    compiled = tmp_path / "_native_deserializer.cpython-311-x86_64-linux-gnu.so"
    digest = tmp_path / ("_native_deserializer.py" + DIGEST_SUFFIX)
    source.write_text("x = 1\n")
    compiled.write_bytes(b"")
    assert stale_reason(compiled) is None  # no digest: a wheel
    digest.write_text(hashlib.sha256(b"x = 1\n").hexdigest() + "\n")
    assert stale_reason(compiled) is None
    source.write_text("x = 2\n")
    reason = stale_reason(compiled)
    assert reason is not None and "older _native_deserializer.py" in reason
