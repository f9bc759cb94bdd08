"""Where the run happens: the embedded default, deployed here, or a platform applied before.

Embedded default: the emulator in its own process (``spawn_emulator``), a private
``redis-server`` (``scripts/redis_server.py``), the function zips (``build_lambda.py --all``),
``terraform apply`` of ``terraform/envs/local`` in a private copy of ``terraform/`` (the
project's CLI config: the provider mirror when there is one), and the mapping runner in this
process. Tear-down stops them all; the emulator's state goes with it, so there is nothing to
destroy.

``--no-deploy``: the outputs of a platform applied earlier (``--outputs FILE`` or
``terraform output -json`` in ``terraform/envs/local``); that endpoint runs its own mappings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.prereqs import (
    PrerequisiteMissing,
    redis_server_binary,
    terraform_binary,
    terraform_cli_config,
)

REPO = Path(__file__).resolve().parents[2]
ENV_DIR = "envs/local"
# More than Terraform's default 10 operations at once: the AWS provider waits ~25 s on each SQS
# queue's attributes, and the queues would otherwise hold the slots everything else needs.
PARALLELISM = "-parallelism=30"


@dataclass
class Platform:
    """An applied platform: its endpoint, Terraform outputs, and clients on that endpoint."""

    endpoint_url: str
    region: str
    outputs: dict[str, Any]
    embedded: bool
    redis_url: str | None
    runner: Any = None  # streamkit.local.Runner when this process runs the mappings
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = new_client(service, self.endpoint_url, self.region)
            return self._clients[service]

    def client_factory(self, service: str) -> Callable[[], Any]:
        return lambda: new_client(service, self.endpoint_url, self.region)

    @property
    def tables(self) -> dict[str, str]:
        return dict(self.outputs["table_names"])

    @property
    def functions(self) -> dict[str, dict[str, Any]]:
        return dict(self.outputs["functions"])


def new_client(service: str, endpoint_url: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=32,
    )
    session = boto3.session.Session(region_name=region)
    credentials = (
        {}
        if session.get_credentials() is not None
        else {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    )
    return session.client(service, endpoint_url=endpoint_url, config=config, **credentials)


class DeployError(RuntimeError):
    """A deployment step failed; the message carries the step's output."""


def _run(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 1200,
    log: Path | None = None,
) -> str:
    """Run ``command`` and return its stdout; with ``log``, its output goes there as it comes
    instead (a slow apply can be followed with ``tail -f``). DeployError when it fails."""
    what = " ".join(command[:3]) + " ..."
    try:
        if log is None:
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=timeout, check=False
            )
            output, errors = done.stdout, done.stderr
        else:
            with log.open("a") as sink:
                sink.write(f"$ {' '.join(command)}\n")
                sink.flush()
                done = subprocess.run(
                    command,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env=env,
                    timeout=timeout,
                    check=False,
                )
            output, errors = "", log.read_text()[-6000:]
    except subprocess.TimeoutExpired as exc:
        where = f" (its output: {log})" if log is not None else ""
        raise DeployError(f"{what} took over {timeout:.0f} s{where}") from exc
    if done.returncode != 0:
        raise DeployError(f"{what} exited {done.returncode}\n{errors[-4000:]}\n{output[-2000:]}")
    return output


def build_zips(out_dir: Path) -> Path:
    _run([sys.executable, str(REPO / "scripts" / "build_lambda.py"), "--all", "-o", str(out_dir)])
    return out_dir


class Terraform:
    """terraform in a private copy of ``terraform/`` (no state or .terraform in the checkout)."""

    def __init__(self, work: Path) -> None:
        self.binary = terraform_binary()
        self.root = work / "terraform"
        shutil.copytree(
            REPO / "terraform",
            self.root,
            ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "cli.tfrc"),
        )
        cli_config = terraform_cli_config(work / "cli.tfrc")
        self.env = {
            key: value
            for key, value in os.environ.items()
            # The platform's endpoints come from variables, never from the caller's AWS setup.
            if not key.startswith(("AWS_ENDPOINT_URL", "TF_VAR_", "TF_CLI_ARGS"))
        }
        self.env.update(
            TF_CLI_CONFIG_FILE=str(cli_config),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
        )

    def __call__(self, *args: str, log: Path | None = None) -> str:
        return _run(
            [self.binary, f"-chdir={self.root / ENV_DIR}", *args, "-no-color"],
            env=self.env,
            log=log,
        )

    def apply(self, variables: dict[str, str], log: Path) -> dict[str, Any]:
        self("init", "-input=false", log=log)
        var_args = [arg for name, value in variables.items() for arg in ("-var", f"{name}={value}")]
        self("apply", "-auto-approve", "-input=false", PARALLELISM, *var_args, log=log)
        raw = json.loads(self("output", "-json"))
        return {name: entry["value"] for name, entry in raw.items()}


@contextmanager
def embedded_platform(
    region: str, say: Callable[[str], None], log: Path, endpoint_url: str | None = None
) -> Iterator[Platform]:
    """Deploy the platform to a fresh embedded emulator (or the emulator at ``endpoint_url``,
    e.g. one started with ``streamkit emulator``) and run its mappings here."""
    # Every missing tool is reported before anything starts.
    terraform_binary()
    redis_server_binary()
    try:
        import redis  # noqa: F401  (the platform's cache client, and ours for the check)
    except ImportError as exc:
        raise PrerequisiteMissing(
            "the redis Python package is missing: pip install -e '.[dev]' (or pip install redis)"
        ) from exc
    from redis_server import start_redis
    from streamkit.local import Runner, spawn_emulator

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="streamkit-load-")))
        if endpoint_url is None:
            endpoint = stack.enter_context(spawn_emulator())
            say(f"embedded emulator at {endpoint}")
        else:
            endpoint = endpoint_url.rstrip("/")
        redis_server = stack.enter_context(start_redis())
        say(f"redis-server at {redis_server.url}")
        zips = build_zips(work / "zips")
        say(f"function zips in {zips}")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        say(f"terraform apply terraform/envs/local (a minute or two; output in {log}) ...")
        outputs = Terraform(work).apply(
            {
                "endpoint_url": endpoint,
                "lambda_zip_dir": str(zips),
                "name_prefix": f"lt{uuid.uuid4().hex[:6]}-",
                "redis_url": redis_server.url,
            },
            log,
        )
        ours = {f["function_arn"] for f in outputs["functions"].values()}
        console_bind = os.environ.get("STREAMKIT_CONSOLE", "127.0.0.1:0")
        runner = Runner(
            endpoint,
            work / "runner-state",
            region=region,
            reconcile_interval=1.0,
            mapping_filter=lambda mapping: mapping.get("FunctionArn") in ours,
            # The web console, to watch the run in a browser: STREAMKIT_CONSOLE=[HOST:]PORT
            # picks the address (loopback, a free port by default), "off" turns it off.
            console=None if console_bind == "off" else console_bind,
        )
        stack.enter_context(runner)
        if runner.console_url is not None:
            say(f"console at {runner.console_url} (watch the load test in a browser)")
        yield Platform(endpoint, region, outputs, True, redis_server.url, runner)


def applied_platform(
    endpoint_url: str, region: str, outputs_file: Path | None, redis_url: str | None
) -> Platform:
    """A platform applied earlier: its outputs from ``outputs_file`` or Terraform's state."""
    if outputs_file is not None:
        raw = json.loads(outputs_file.read_text())
    else:
        binary = terraform_binary()
        raw = json.loads(
            _run([binary, f"-chdir={REPO / 'terraform' / ENV_DIR}", "output", "-json"])
        )
    outputs = {
        name: entry["value"] if isinstance(entry, dict) and "value" in entry else entry
        for name, entry in raw.items()
    }
    if "functions" not in outputs or "table_names" not in outputs:
        raise DeployError(
            "the Terraform outputs have no `functions`/`table_names`: is the platform applied?"
        )
    return Platform(endpoint_url.rstrip("/"), region, outputs, False, redis_url)
