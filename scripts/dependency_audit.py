"""Check the project's installed dependencies for known vulnerabilities; report into RELIABILITY.md.

    python scripts/dependency_audit.py            # audits .venv's distributions
    python scripts/dependency_audit.py --no-write # print only

Two sources, both PyPI's own advisory data (the PyPA advisory database that pip-audit's default
"pypi" service reads):

1. ``pip-audit`` when it is installed and can reach its service. On machines whose PyPI access
   goes through a proxy that serves ``/pypi/<name>/json`` but not the per-version
   ``/pypi/<name>/<version>/json`` pip-audit asks for, it reports every package as "Dependency
   not found on PyPI and could not be audited": that outcome is recorded as such, never as clean.
2. The project JSON ``/pypi/<name>/json``, whose ``vulnerabilities`` list describes the latest
   release. A distribution installed at that latest release is audited by it; one installed at an
   older release is listed as not audited (with its version and the latest), because the
   latest release's list says nothing about older ones.

The exit status is 1 when a known vulnerability is found, 0 otherwise (unaudited packages are
reported, not failed: the machine, not the code, decides whether they can be checked).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

from _reliability_doc import today, write_section


def installed() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() != "streamkit":
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


def project_json(name: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=20) as response:
            data: dict[str, object] = json.loads(response.read())
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None


def run_pip_audit() -> tuple[str, int, int]:
    """(summary, audited, vulnerable) from pip-audit over this interpreter's packages."""
    # The one next to this interpreter first: `.venv/bin/python scripts/...` runs without the
    # virtualenv's bin/ on PATH.
    beside = Path(sys.executable).parent / "pip-audit"
    binary = str(beside) if beside.exists() else shutil.which("pip-audit")
    if binary is None:
        return "pip-audit is not installed (`pip install pip-audit`)", 0, 0
    result = subprocess.run(
        [binary, "--format", "json", "--progress-spinner", "off", "--path",
         str(Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages")],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return f"pip-audit failed: {result.stderr.strip()[-300:]}", 0, 0
    deps = data.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = len(deps) - len(skipped)
    vulnerable = sum(1 for d in deps if d.get("vulns"))
    summary = (
        f"{len(deps)} packages, {audited} audited, {len(skipped)} skipped, {vulnerable} vulnerable"
    )
    if skipped:
        summary += f" (skip reason, e.g.: {skipped[0]['skip_reason']})"
    return summary, audited, vulnerable


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    packages = installed()
    pip_audit, _audited, pip_audit_vulnerable = run_pip_audit()
    latest_ok: list[str] = []
    vulnerable: list[str] = []
    unaudited: list[str] = []
    for name, version in packages.items():
        data = project_json(name)
        if data is None:
            unaudited.append(f"{name} {version} (PyPI did not answer)")
            continue
        info = data.get("info") or {}
        latest = str(info.get("version", "")) if isinstance(info, dict) else ""
        if latest != version:
            unaudited.append(f"{name} {version} (latest {latest})")
            continue
        vulns = data.get("vulnerabilities") or []
        if vulns:
            ids = ", ".join(str(v.get("id")) for v in vulns if isinstance(v, dict))
            vulnerable.append(f"{name} {version}: {ids}")
        else:
            latest_ok.append(f"{name} {version}")
    lines = [
        f"Command: `python scripts/dependency_audit.py` ({today()}), over the "
        f"{len(packages)} distributions installed in `.venv` (`make venv`: streamkit's `[dev]` extra, "
        "which includes `[local]` and `[xray]`; plus pip-audit and its own dependencies when it "
        "is installed).",
        "",
        f"- pip-audit: {pip_audit}.",
        f"- PyPI advisory data for the installed release (project JSON): {len(latest_ok)} audited "
        f"clean, {len(vulnerable)} with known vulnerabilities, {len(unaudited)} not audited "
        "(installed release is not the latest, so PyPI's list does not describe it).",
    ]
    if vulnerable:
        lines += ["", "Known vulnerabilities:", ""] + [f"- {v}" for v in vulnerable]
    if unaudited:
        lines += ["", "Not audited: " + ", ".join(unaudited) + "."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("audit", body, "Dependency vulnerabilities")
    return 1 if vulnerable or pip_audit_vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
