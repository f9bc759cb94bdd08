#!/usr/bin/env python3
"""The codec's orders-batch ratios on each Lambda Python runtime, compiled and pure Python.

For every runtime (python3.11, python3.12, python3.13 by default) this:

1. finds the runtime's interpreter (``streamkit.local.interpreters``);
2. makes a venv of it in ``build/bench-venvs/<runtime>`` with boto3 and Powertools at the
   versions this environment has (the anchors; made once, then reused);
3. builds the deployment zip for the runtime (``build_lambda.py``: the codec compiled for it)
   and unpacks it, so what is measured is what Lambda would run;
4. runs the orders-batch deserialization cases of ``benchmarks/bench_codec.py`` there, with
   the compiled walker and with ``STREAMKIT_PURE_PYTHON=1``, each in a fresh interpreter;
   each case is timed twice: with the garbage collector off (``timeit``'s convention) and on
   (how Lambda runs a function; see ``benchmarks.Case.collector``).

``--passes N`` repeats the whole sweep, ``--seconds S`` gives each case more calls to take the
fastest of; the table reports each pass with the load average it
ran under (the machine may be shared: the quietest pass is the one to quote).

    python scripts/bench_runtimes.py [--runtimes python3.12 ...] [--passes 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_lambda
import lambda_codec
from streamkit.local.interpreters import InterpreterNotFoundError, find_interpreter

REPO = Path(__file__).resolve().parents[1]
VENVS = REPO / "build" / "bench-venvs"
ANCHORS = ("boto3", "aws-lambda-powertools")
DEFAULT_SECONDS_PER_CASE = 3.0  # as benchmarks.DEFAULT_SECONDS_PER_CASE

# Run inside the runtime's venv, with the unpacked zip and the repository (for the
# benchmarks package) on sys.path: the two orders-batch cases, as JSON.
_CHILD = """
import json, sys
from benchmarks import measure
from tests.helpers import stream_data as _data
from benchmarks.bench_codec import deserialize_cases
from streamkit import codec
event = _data.orders_event(1000)
cases = [
    *deserialize_cases("orders batch (1000)", event, targets=True),
    *deserialize_cases("orders batch (1000)", event, targets=True, collector=True),
]
results = [measure(case, seconds=float(sys.argv[1])) for case in cases]
print(json.dumps({
    "python": "%d.%d.%d" % sys.version_info[:3],
    "compiled": codec.COMPILED,
    "cases": [
        {"anchor": r.case.anchor_name, "ours_us": r.ours_us, "anchor_us": r.anchor_us,
         "ratio": r.ratio, "median": r.median_ratio, "target": r.case.target,
         "collector": r.case.collector}
        for r in results
    ],
}))
"""


def _venv(runtime: str) -> Path:
    interpreter = find_interpreter(runtime)
    venv = VENVS / runtime
    python = venv / "bin" / "python"
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in ANCHORS]
    stamp = venv / ".anchors"
    if python.exists() and stamp.exists() and stamp.read_text().split() == pins:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([interpreter.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True)
    stamp.write_text("\n".join(pins) + "\n")
    return python


def _task(runtime: str) -> tuple[Path, bool]:
    """The runtime's deployment zip (no handler), unpacked; and whether it is compiled."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lambda_codec.NativeCodecWarning)
        native = build_lambda.native_files(runtime)
    task = VENVS / runtime / "task"
    shutil.rmtree(task, ignore_errors=True)
    task.mkdir(parents=True)
    zip_path = task.with_suffix(".zip")
    zip_path.write_bytes(build_lambda.build_zip({}, native=native))
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task)
    return task, bool(native)


def _run(python: Path, task: Path, pure: bool, seconds: float) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STREAMKIT_PURE_PYTHON")}
    env["PYTHONPATH"] = f"{task}{os.pathsep}{REPO}"
    if pure:
        env["STREAMKIT_PURE_PYTHON"] = "1"
    done = subprocess.run(
        [str(python), "-c", _CHILD, str(seconds)],
        env=env,
        cwd=task,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark on {python} failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = os.getloadavg()[0]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", nargs="+", default=list(lambda_codec.RUNTIMES))
    parser.add_argument("--passes", type=int, default=1)
    # Each case takes the fastest of its interleaved calls: more calls make that minimum
    # less likely to be one a busy machine disturbed (on either side).
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS_PER_CASE,
        help="wall time per case, both sides (default %(default)s)",
    )
    args = parser.parse_args(argv)
    setups = {}
    for runtime in args.runtimes:
        try:
            setups[runtime] = (_venv(runtime), *_task(runtime))
        except InterpreterNotFoundError as error:
            print(f"{runtime}: skipped ({error})")
    print(
        "| pass | runtime | CPython | walker | vs boto3 (median) | vs Powertools (median) "
        "| collector on: vs boto3 (median) | vs Powertools (median) "
        "| streamkit µs/record | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in range(1, args.passes + 1):
        for runtime, (python, task, compiled) in setups.items():
            for pure in (False, True) if compiled else (True,):
                result = _run(python, task, pure, args.seconds)
                cases = result["cases"]
                assert isinstance(cases, list)
                walker = "compiled" if result["compiled"] else "pure Python"
                ratios = " | ".join(f"{c['ratio']:.2f}x ({c['median']:.2f}x)" for c in cases)
                print(
                    f"| {n} | {runtime} | {result['python']} | {walker} | {ratios} "
                    f"| {cases[0]['ours_us']:.1f} | {result['load']:.1f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
