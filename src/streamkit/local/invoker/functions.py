"""Lambda functions' deployed code, fetched the way Lambda itself gets it.

``fetch_function`` calls GetFunction, downloads ``Code.Location`` with a plain HTTP GET (a
presigned S3 URL on AWS and LocalStack; the embedded emulator serves the stored zip at the
same place), checks the bytes against ``CodeSha256`` and unpacks them into
``<state_dir>/functions/<name>/<sha256-hex>/``. A directory that is already there is reused:
its name is the hash of what was unpacked into it, and it only appears, by an atomic rename,
once complete.

Nothing here runs the function's code; ``streamkit.local.invoker`` does that, in workers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from streamkit.exceptions import FunctionCodeError, UnsupportedRuntimeError
from streamkit.local.invoker.trace_header import PASS_THROUGH

__all__ = [
    "MAX_UNZIPPED_BYTES",
    "FunctionSpec",
    "HttpGet",
    "LoadedFunction",
    "fetch_function",
    "http_get",
    "install_code",
    "load_function_from_directory",
]

logger = logging.getLogger(__name__)

# Lambda quota: a .zip deployment package may unpack to at most 250 MB.
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 60.0

HttpGet = Callable[[str], bytes]
"""Downloads a URL and returns the body; raises on any failure."""

_SAFE_DIR_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class FunctionSpec:
    """The configuration a Lambda execution environment is built from (GetFunction's
    ``Configuration``), in Python terms."""

    name: str
    arn: str
    handler: str
    runtime: str
    timeout_s: float = 3.0
    memory_mb: int = 128
    environment: Mapping[str, str] = field(default_factory=dict, hash=False)
    code_sha256: str = ""
    """Base64 SHA-256 of the deployment package, as Lambda's ``CodeSha256``."""
    version: str = "$LATEST"
    last_modified: str = ""
    layers: tuple[str, ...] = ()
    """Layer ARNs. The local runtime does not fetch layers; it warns that they are ignored."""
    role: str = ""
    package_type: str = "Zip"
    tracing_mode: str = PASS_THROUGH
    """``TracingConfig.Mode``: ``Active`` invocations get a sampled X-Ray trace header."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, Any]) -> FunctionSpec:
        """Build from a GetFunction/GetFunctionConfiguration ``Configuration`` dict.

        Missing Timeout and MemorySize take Lambda's defaults (3 s, 128 MB).
        """
        environment = (configuration.get("Environment") or {}).get("Variables") or {}
        return cls(
            name=configuration["FunctionName"],
            arn=configuration.get("FunctionArn", ""),
            handler=configuration.get("Handler") or "",
            runtime=configuration.get("Runtime") or "",
            timeout_s=float(configuration.get("Timeout") or 3),
            memory_mb=int(configuration.get("MemorySize") or 128),
            environment={str(k): str(v) for k, v in environment.items()},
            code_sha256=configuration.get("CodeSha256") or "",
            version=configuration.get("Version") or "$LATEST",
            last_modified=configuration.get("LastModified") or "",
            layers=tuple(layer["Arn"] for layer in configuration.get("Layers") or ()),
            role=configuration.get("Role") or "",
            package_type=configuration.get("PackageType") or "Zip",
            tracing_mode=(configuration.get("TracingConfig") or {}).get("Mode") or PASS_THROUGH,
        )

    @property
    def handler_module(self) -> str:
        """The module part of ``Handler`` as Lambda imports it ("pkg/mod.fn" -> "pkg.mod")."""
        module, _, _ = self.handler.rpartition(".")
        return module.replace("/", ".")


@dataclass(frozen=True)
class LoadedFunction:
    """A function whose code sits unpacked in ``code_dir``, ready for ``FunctionInvoker``."""

    spec: FunctionSpec
    code_dir: Path
    code_location: str | None = None
    """Where the code was downloaded from (GetFunction's ``Code.Location``), if it was."""


def http_get(url: str) -> bytes:
    """GET ``url`` with urllib: http(s) only, no AWS signing (presigned URLs need none)."""
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        body: bytes = response.read()
    return body


def fetch_function(
    lambda_client: Any,
    function_name_or_arn: str,
    *,
    state_dir: str | os.PathLike[str],
    http_get: HttpGet = http_get,
) -> LoadedFunction:
    """GetFunction + download + verify + unpack: the function's code as Lambda would run it.

    ``function_name_or_arn`` is anything GetFunction's ``FunctionName`` accepts (name, ARN,
    ``name:qualifier``). Raises ``FunctionCodeError`` (``UnsupportedRuntimeError`` for
    non-Python runtimes and container images) when the code cannot be run locally.
    """
    try:
        response = lambda_client.get_function(FunctionName=function_name_or_arn)
    except Exception as exc:  # botocore's ClientError / connection errors alike
        raise FunctionCodeError(function_name_or_arn, None, f"GetFunction failed: {exc}") from exc
    spec = FunctionSpec.from_configuration(response["Configuration"])
    location: str | None = (response.get("Code") or {}).get("Location")
    _check_supported(spec, location)

    code_dir = _code_dir(state_dir, spec)
    if code_dir.is_dir():
        logger.debug("reusing code of %s (%s) in %s", spec.name, spec.code_sha256, code_dir)
    else:
        if not location:
            raise FunctionCodeError(spec.name, None, "GetFunction returned no Code.Location")
        try:
            package = http_get(location)
        except Exception as exc:
            raise FunctionCodeError(spec.name, location, f"download failed: {exc}") from exc
        _verify_sha256(spec, package, location)
        _extract(package, code_dir, spec.name, location)
        logger.info("fetched code of %s (%d bytes) into %s", spec.name, len(package), code_dir)
    _check_handler_module(spec, code_dir, location)
    return LoadedFunction(spec=spec, code_dir=code_dir, code_location=location)


def install_code(
    spec: FunctionSpec,
    package: bytes,
    *,
    state_dir: str | os.PathLike[str],
    location: str | None = None,
) -> LoadedFunction:
    """Verify ``package`` (zip bytes) against ``spec.code_sha256`` and unpack it, as
    ``fetch_function`` does after its download. An empty ``code_sha256`` is taken from the
    bytes (for tests and tools that build a spec by hand)."""
    _check_supported(spec, location)
    if not spec.code_sha256:
        digest = base64.b64encode(hashlib.sha256(package).digest()).decode()
        spec = replace(spec, code_sha256=digest)
    _verify_sha256(spec, package, location)
    code_dir = _code_dir(state_dir, spec)
    if not code_dir.is_dir():
        _extract(package, code_dir, spec.name, location)
    _check_handler_module(spec, code_dir, location)
    return LoadedFunction(spec=spec, code_dir=code_dir, code_location=location)


def load_function_from_directory(
    spec: FunctionSpec, code_dir: str | os.PathLike[str]
) -> LoadedFunction:
    """Use code that is already unpacked in ``code_dir`` (development, tests). No hash check."""
    path = Path(code_dir).resolve()
    if not path.is_dir():
        raise FunctionCodeError(spec.name, str(path), "code directory does not exist")
    _check_supported(spec, str(path))
    _check_handler_module(spec, path, str(path))
    return LoadedFunction(spec=spec, code_dir=path, code_location=None)


def _check_supported(spec: FunctionSpec, location: str | None) -> None:
    if spec.package_type != "Zip":
        raise UnsupportedRuntimeError(
            spec.name,
            location,
            f"package type {spec.package_type} is not supported by the local runtime "
            "(it runs .zip packages of python3.x functions)",
        )
    if not spec.runtime.startswith("python3"):
        raise UnsupportedRuntimeError(
            spec.name,
            location,
            f"runtime {spec.runtime or '<none>'} is not supported by the local runtime "
            "(it runs python3.x functions)",
        )
    # Which interpreter runs it (the declared runtime's, or a logged fallback) is decided by
    # invoker.runtime_python when its workers start.
    if spec.layers:
        logger.warning(
            "function %s: layers are ignored by the local runtime: %s",
            spec.name,
            ", ".join(spec.layers),
        )


def _code_dir(state_dir: str | os.PathLike[str], spec: FunctionSpec) -> Path:
    sha_hex = _sha_hex(spec)
    safe_name = _SAFE_DIR_NAME.sub("_", spec.name) or "_"
    return Path(state_dir).resolve() / "functions" / safe_name / sha_hex


def _sha_hex(spec: FunctionSpec) -> str:
    try:
        digest = base64.b64decode(spec.code_sha256, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FunctionCodeError(
            spec.name, None, f"CodeSha256 {spec.code_sha256!r} is not base64: {exc}"
        ) from exc
    if len(digest) != hashlib.sha256().digest_size:
        raise FunctionCodeError(
            spec.name, None, f"CodeSha256 {spec.code_sha256!r} is not a SHA-256 digest"
        )
    return digest.hex()


def _verify_sha256(spec: FunctionSpec, package: bytes, location: str | None) -> None:
    expected = _sha_hex(spec)
    actual = hashlib.sha256(package).hexdigest()
    if actual != expected:
        actual_b64 = base64.b64encode(bytes.fromhex(actual)).decode()
        raise FunctionCodeError(
            spec.name,
            location,
            f"SHA-256 mismatch: CodeSha256 is {spec.code_sha256}, "
            f"the {len(package)} downloaded bytes hash to {actual_b64}",
        )


def _extract(package: bytes, code_dir: Path, function: str, location: str | None) -> None:
    """Unpack into a temporary sibling, then rename it into place (atomic on one filesystem),
    so a half-written directory is never mistaken for the code."""
    code_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=code_dir.parent))
    try:
        try:
            with zipfile.ZipFile(io.BytesIO(package)) as archive:
                _unpack_members(archive, staging, function, location)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
            raise FunctionCodeError(function, location, f"corrupt zip: {exc}") from exc
        try:
            staging.rename(code_dir)
        except OSError:
            if not code_dir.is_dir():
                raise
            # Another process unpacked the same bytes first; its copy is as good as ours.
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _unpack_members(
    archive: zipfile.ZipFile, staging: Path, function: str, location: str | None
) -> None:
    members = archive.infolist()
    claimed = sum(member.file_size for member in members)
    if claimed > MAX_UNZIPPED_BYTES:
        raise FunctionCodeError(
            function,
            location,
            f"unzipped size {claimed} bytes exceeds Lambda's {MAX_UNZIPPED_BYTES}-byte limit",
        )
    root = staging.resolve()
    for member in members:
        target = _safe_target(root, member.filename, function, location)
        if member.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        # archive.open checks each member's CRC, so corrupt content fails here.
        with archive.open(member) as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink)
        # Keep the permission bits the zip records (bundled executables), but always readable.
        mode = (member.external_attr >> 16) & 0o777
        if mode:
            target.chmod(mode | 0o400)


def _safe_target(root: Path, name: str, function: str, location: str | None) -> Path:
    """Where member ``name`` goes; refuses absolute paths and ``..`` ("zip slip")."""
    parts = PurePosixPath(name).parts
    if not name or name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
        raise FunctionCodeError(function, location, f"unsafe path in zip: {name!r}")
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise FunctionCodeError(function, location, f"unsafe path in zip: {name!r}")
    return target


def _check_handler_module(spec: FunctionSpec, code_dir: Path, location: str | None) -> None:
    """The handler's module must be in the code itself: the worker refuses to run a same-named
    module from anywhere else, so this catches a wrong Handler before any worker starts."""
    module, _, function = spec.handler.rpartition(".")
    if not module or not function:
        raise FunctionCodeError(
            spec.name, location, f"handler {spec.handler!r} is not of the form 'module.function'"
        )
    parts = spec.handler_module.split(".")
    if any(not part or part == ".." for part in parts):
        raise FunctionCodeError(spec.name, location, f"handler {spec.handler!r} is malformed")
    base = code_dir.joinpath(*parts[:-1])
    leaf = parts[-1]
    candidates = [base / f"{leaf}.py", base / leaf / "__init__.py", base / f"{leaf}.pyc"]
    found = any(path.is_file() for path in candidates) or any(base.glob(f"{leaf}.*.so"))
    if not found:
        raise FunctionCodeError(
            spec.name,
            location,
            f"handler module {spec.handler_module!r} (from Handler {spec.handler!r}) "
            f"is not in the code: no {'/'.join(parts)}.py",
        )
