# Single entry point. Every target creates (or reuses) its own virtualenv in .venv,
# so a fresh clone needs nothing but python3 >= 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration e2e bench build clean venv checkov lambdas tf-config

HANDLERS := workflow order_events product_events

venv: $(STAMP)

# The editable install compiles the codec's native deserializer in place (hatch_build.py);
# "require" makes a failed compile an error here, so tests and benchmarks never quietly run
# the pure-Python fallback. Editing that module or the hook reinstalls.
NATIVE_SOURCES := hatch_build.py src/streamkit/codec/_native_deserializer.py

$(STAMP): pyproject.toml $(NATIVE_SOURCES)
	$(PYTHON) -m venv $(VENV)
# setuptools too: the copy ensurepip seeds (65.5 on 3.11.7) has published CVEs (RELIABILITY.md).
	$(BIN)/python -m pip install -q --upgrade pip setuptools
	STREAMKIT_BUILD_NATIVE=require $(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

## The main job: load test on the embedded emulator (no AWS account, no docker).
demo: $(STAMP)
	$(BIN)/python scripts/load_test.py

# The suites mostly wait (processes starting, emulators, terraform), so they run on more
# pytest-xdist workers than there are cores. --dist loadgroup keeps the tests that share state
# (marked xdist_group, see tests/conftest.py) on one worker, in order.
# PYTEST_WORKERS=0 runs everything in one process, as before.
PYTEST_WORKERS ?= 4
PYTEST_XDIST   := -n $(PYTEST_WORKERS) --dist loadgroup

## Everything CI runs: lint, strict typing, all test suites.
test: lint typecheck
	$(BIN)/python -m pytest -q $(PYTEST_XDIST) --durations=20 tests

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts handlers hatch_build.py
	$(BIN)/ruff format --check src tests benchmarks scripts handlers hatch_build.py

typecheck: $(STAMP)
	$(BIN)/mypy src

unit: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_XDIST) tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_XDIST) tests/integration

e2e: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_XDIST) tests/e2e

bench: $(STAMP)
	$(BIN)/python -m benchmarks

## Terraform CLI config (provider filesystem mirror when present), written to terraform/cli.tfrc.
tf-config: $(STAMP)
	$(BIN)/python scripts/terraform_cli_config.py

## Deployment zips for the reference handlers, in build/<name>.zip: the codec compiled for the
## runtime terraform/modules declares (build_lambda.py --runtime overrides; cached in build/).
lambdas: $(STAMP)
	$(BIN)/python scripts/build_lambda.py --all -o build/

## checkov in its own venv (it conflicts with python-hcl2); also run by tests/e2e.
checkov:
	scripts/checkov.sh

build: $(STAMP)
	STREAMKIT_BUILD_NATIVE=require $(BIN)/python -m build --outdir dist .

clean:
	rm -rf $(VENV) .venv-checkov dist build terraform/cli.tfrc .mypy_cache .pytest_cache .ruff_cache
	rm -f src/streamkit/codec/*.so src/streamkit/codec/*.source-sha256

## Reliability figures for RELIABILITY.md (each script rewrites only its own section).
.PHONY: reliability fuzz chaos soak audit
reliability: fuzz chaos soak audit
fuzz: $(STAMP)
	$(BIN)/python scripts/fuzz.py
chaos: $(STAMP)
	$(BIN)/python scripts/chaos.py
soak: $(STAMP)
	$(BIN)/python scripts/soak.py --out docs/reliability
audit: $(STAMP)
	$(BIN)/python scripts/dependency_audit.py
