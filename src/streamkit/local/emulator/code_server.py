"""WSGI middleware for the emulator's own routes, in front of moto's application.

- ``GET /_streamkit/lambda-code/<account>/<region>/<function>?qualifier=<version>`` answers with
  the deployment zip moto stored for that function version. GetFunction's ``Code.Location``
  points here (see moto_patches.py), so fetching code works like AWS's presigned S3 URL.

  moto keeps the package bytes on the function object (``code_bytes``) for ZipFile uploads and
  copies them from its S3 backend for S3Bucket/S3Key uploads, at create/update time, as Lambda
  does; so one lookup covers both.
- ``GET /_streamkit/ses/messages`` and ``GET /_streamkit/sns/sms``: what SES and SNS sent
  (integrations.py).
- ``GET /_streamkit/health`` answers ``{"status": "ok"}``: the readiness probe of
  ``Emulator.start()`` and of scripts waiting for ``streamkit emulator``. It is answered here,
  without touching moto's state, so it costs the same however many resources exist (moto's
  ``/moto-api/data.json`` serializes every resource, and fails with HTTP 500 once a Lambda
  function exists and docker is absent).
- ``POST /_streamkit/event-source-mappings/<uuid>/processing-result`` with
  ``{"LastProcessingResult": "OK"}``: ``streamkit run`` reports a mapping's last batch, which
  GetEventSourceMapping then shows, as Lambda does (esm_lifecycle.py). 204, or 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from moto.awslambda.models import lambda_backends

from streamkit.local.emulator import esm_lifecycle
from streamkit.local.emulator.integrations import readback
from streamkit.local.emulator.moto_patches import CODE_PATH_PREFIX, request_base_url

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["HEALTH_PATH", "StreamkitRoutesMiddleware"]

HEALTH_PATH = "/_streamkit/health"
_HEALTH_BODY = json.dumps({"status": "ok"}).encode()


class StreamkitRoutesMiddleware:
    """Serves code downloads and the health probe; passes every other request to moto."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST")
        token = request_base_url.set(f"{environ['wsgi.url_scheme']}://{host}" if host else None)
        try:
            path: str = environ.get("PATH_INFO", "")
            method = environ["REQUEST_METHOD"]
            if path == HEALTH_PATH and method in ("GET", "HEAD"):
                return _respond(start_response, "200 OK", _HEALTH_BODY, "application/json", method)
            if path.startswith(CODE_PATH_PREFIX) and method in ("GET", "HEAD"):
                return self._serve_code(environ, start_response, path[len(CODE_PATH_PREFIX) :])
            if path.startswith(esm_lifecycle.PROCESSING_RESULT_PATH) and method == "POST":
                return _processing_result(environ, start_response, path)
            if path.startswith("/_streamkit/") and (body := readback(path, method)) is not None:
                # Sent email and SMS (integrations.py).
                return _respond(start_response, "200 OK", body, "application/json", method)
            # moto's app answers synchronously within this call, so the base URL is visible to
            # the patched GetFunction running in the same thread.
            return self._app(environ, start_response)
        finally:
            request_base_url.reset(token)

    def _serve_code(
        self, environ: WSGIEnvironment, start_response: StartResponse, rest: str
    ) -> Iterable[bytes]:
        parts = [unquote(part) for part in rest.split("/")]
        if len(parts) != 3 or not all(parts):
            return _respond(
                start_response, "404 Not Found", b"expected <account>/<region>/<function>"
            )
        account_id, region, function_name = parts
        qualifier = parse_qs(environ.get("QUERY_STRING", "")).get("qualifier", [None])[0]
        code = _find_code(account_id, region, function_name, qualifier)
        if code is None:
            message = f"no deployed code for {function_name} ({qualifier or '$LATEST'}) in {account_id}/{region}"
            return _respond(start_response, "404 Not Found", message.encode())
        return _respond(
            start_response, "200 OK", code, "application/zip", environ["REQUEST_METHOD"]
        )


def _processing_result(
    environ: WSGIEnvironment, start_response: StartResponse, path: str
) -> Iterable[bytes]:
    uuid = path[len(esm_lifecycle.PROCESSING_RESULT_PATH) :].removesuffix(
        esm_lifecycle.PROCESSING_RESULT_SUFFIX
    )
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        result = body["LastProcessingResult"]
    except (ValueError, KeyError, TypeError):
        return _respond(
            start_response, "400 Bad Request", b'expected {"LastProcessingResult": str}'
        )
    if not isinstance(result, str) or "/" in uuid:
        return _respond(start_response, "400 Bad Request", b"LastProcessingResult must be a string")
    if not esm_lifecycle.record_processing_result(unquote(uuid), result):
        return _respond(start_response, "404 Not Found", f"no mapping {uuid}".encode())
    return _respond(start_response, "204 No Content", b"")


def _find_code(
    account_id: str, region: str, function_name: str, qualifier: str | None
) -> bytes | None:
    try:
        backend: Any = lambda_backends[account_id][region]
        function = backend.get_function(function_name, qualifier)
    except Exception:  # moto raises its own error types for unknown accounts/regions/functions
        return None
    code: bytes = getattr(function, "code_bytes", b"")
    return code or None


def _respond(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str = "text/plain",
    method: str = "GET",
) -> Iterable[bytes]:
    # A HEAD response carries the headers a GET would, and no body.
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [b"" if method == "HEAD" else body]
