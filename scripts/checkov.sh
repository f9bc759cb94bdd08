#!/usr/bin/env bash
# Static security checks of terraform/ with checkov, in its own virtualenv (.venv-checkov):
# checkov 3.x pins a python-hcl2 that conflicts with the dev environment's.
#
#   scripts/checkov.sh            # create/reuse .venv-checkov, scan, exit non-zero on findings
#   CHECKOV_INSTALL_ONLY=1 scripts/checkov.sh   # only create .venv-checkov (exit 0 if usable)
#
# Every skip is inline next to the resource (#checkov:skip=CKV_...: reason). --skip-download
# keeps the run offline (no Prisma Cloud guideline download).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${CHECKOV_VENV:-.venv-checkov}"
PYTHON="${PYTHON:-python3}"
CHECKOV_SPEC="${CHECKOV_SPEC:-checkov>=3.2,<4}"

if [[ ! -x "$VENV/bin/checkov" ]]; then
  echo "checkov.sh: installing $CHECKOV_SPEC into $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "$CHECKOV_SPEC"
fi

if [[ -n "${CHECKOV_INSTALL_ONLY:-}" ]]; then
  exec "$VENV/bin/checkov" --version
fi

exec "$VENV/bin/checkov" -d terraform --framework terraform --quiet --compact \
  --skip-download --skip-path '\.terraform' "$@"
