"""The console's HTTP server: stdlib ``ThreadingHTTPServer``, pages, JSON API, static files.

Bound to loopback by default. On a loopback address, requests whose ``Host`` header names
another host are refused (a web page elsewhere cannot reach the console through DNS
rebinding), and changes (POST/DELETE) must send ``Content-Type: application/json``, which a
cross-site form cannot send without a CORS preflight, which the console never grants.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from streamkit.console import pages
from streamkit.console.api import Tables, mapping_detail, mapping_entry, select_mappings
from streamkit.console.failures import Destinations, NotFound
from streamkit.console.faults import Faults, FaultsUnavailable
from streamkit.console.history import History
from streamkit.console.runner_view import RunnerLike, RunnerView
from streamkit.console.tails import TailHub
from streamkit.exceptions import StreamkitError

__all__ = ["Console", "ConsoleBindError", "parse_bind", "serve"]

LOG = logging.getLogger("streamkit.console")

DEFAULT_HOST = "127.0.0.1"
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_BODY_BYTES = 64 * 1024  # a replay request or a fault rule is a few hundred bytes

_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}


class ConsoleBindError(ValueError):
    """``--console`` was not ``[HOST:]PORT``."""


def parse_bind(text: str) -> tuple[str, int]:
    """``"8080"`` -> (127.0.0.1, 8080); ``"0.0.0.0:8080"``; ``"[::1]:0"``; port 0 picks one."""
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, value
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        raise ConsoleBindError(f"console address must be [HOST:]PORT, not {text!r}") from None
    if not 0 <= port <= 65535:
        raise ConsoleBindError(f"console port must be 0-65535, not {port}")
    return host, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _HttpError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Route = Callable[["_Request"], Any]


class _Request:
    def __init__(self, handler: _Handler, match: re.Match[str]) -> None:
        self.handler = handler
        self.match = match
        parts = urlsplit(handler.path)
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}

    def arg(self, index: int) -> str:
        return unquote(self.match.group(index))

    def int_param(self, name: str, default: int, lo: int, hi: int) -> int:
        try:
            return max(lo, min(hi, int(self.query.get(name, default))))
        except ValueError:
            raise _HttpError(HTTPStatus.BAD_REQUEST, f"{name} must be an integer") from None

    def json_body(self) -> Any:
        try:
            length = int(self.handler.headers.get("Content-Length") or 0)
        except ValueError:
            raise _HttpError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            self.handler.close_connection = True  # the unread body must not be parsed as a request
            raise _HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"bodies are at most {MAX_BODY_BYTES} bytes"
            )
        raw = self.handler.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise _HttpError(HTTPStatus.BAD_REQUEST, "the body must be JSON") from None


class Console:
    """The console of one runner; ``start()`` serves it on a background thread."""

    def __init__(self, runner: RunnerLike, bind: str = f"{DEFAULT_HOST}:0") -> None:
        self.host, port = parse_bind(bind)
        self.view = RunnerView(runner)
        self.history = History(self.view)
        self.tables = Tables(self.view)
        self.destinations = Destinations(self.view)
        self.faults = Faults(self.view.endpoint_url)
        self.tails = TailHub(self.view.client, endpoint=self.view.endpoint_url)
        self._httpd = ThreadingHTTPServer((self.host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.console = self  # type: ignore[attr-defined]
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None
        self.allowed_hosts: set[str] | None = None
        if _is_loopback(self.host):
            names = {self.host, "localhost", "127.0.0.1", "[::1]", f"[{self.host}]"}
            self.allowed_hosts = {f"{n}:{self.port}" for n in names} | names
        self._routes = self._build_routes()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/"

    def start(self) -> Console:
        self.history.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="streamkit-console", daemon=True
        )
        self._thread.start()
        if not _is_loopback(self.host):
            LOG.warning("console bound to %s: anyone who can reach it can replay", self.host)
        LOG.info("console at %s", self.url)
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self.history.stop()
        self.tails.close()

    def __enter__(self) -> Console:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- routes ------------------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Route]]:
        table: list[tuple[str, str, Route]] = [
            ("GET", r"/", self._overview_page),
            ("GET", r"/mappings/([^/]+)", self._mapping_page),
            ("GET", r"/tables/([^/]+)", self._stream_page),
            ("GET", r"/destinations", self._destinations_page),
            ("GET", r"/destinations/([^/]+)", self._destination_page),
            ("GET", r"/faults", self._faults_page),
            ("GET", r"/static/([A-Za-z0-9_.-]+)", self._static),
            ("GET", r"/api/health", self._api_health),
            ("GET", r"/api/mappings", self._api_mappings),
            ("GET", r"/api/mappings/([^/]+)", self._api_mapping),
            ("GET", r"/api/mappings/([^/]+)/failures", self._api_failures),
            ("GET", r"/api/tables", self._api_tables),
            ("GET", r"/api/tables/([^/]+)/tail", self._api_tail),
            ("GET", r"/api/destinations", self._api_destinations),
            ("POST", r"/api/destinations/([^/]+)/replay", self._api_replay),
            ("GET", r"/api/faults", self._api_faults),
            ("POST", r"/api/faults", self._api_faults_add),
            ("DELETE", r"/api/faults", self._api_faults_clear),
            ("DELETE", r"/api/faults/([^/]+)", self._api_faults_clear),
        ]
        return [(method, re.compile(pattern + r"/?\Z"), fn) for method, pattern, fn in table]

    def dispatch(self, handler: _Handler, method: str) -> None:
        path = urlsplit(handler.path).path
        is_api = path.startswith("/api/")
        try:
            if self.allowed_hosts is not None:
                host = (handler.headers.get("Host") or "").lower()
                if host not in self.allowed_hosts:
                    raise _HttpError(HTTPStatus.FORBIDDEN, f"unexpected Host header {host!r}")
            allowed = []
            for route_method, pattern, fn in self._routes:
                match = pattern.match(path)
                if match is None:
                    continue
                if route_method != method:
                    allowed.append(route_method)
                    continue
                if method != "GET":
                    kind = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
                    if kind != "application/json":
                        raise _HttpError(
                            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json"
                        )
                result = fn(_Request(handler, match))
                if isinstance(result, tuple):  # (content type, bytes)
                    handler.send_body(HTTPStatus.OK, result[0], result[1])
                elif isinstance(result, str):
                    handler.send_body(HTTPStatus.OK, "text/html; charset=utf-8", result.encode())
                else:
                    handler.send_json(HTTPStatus.OK, result)
                return
            if allowed:
                raise _HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} not allowed on {path}")
            raise _HttpError(HTTPStatus.NOT_FOUND, f"no such page: {path}")
        except _HttpError as exc:
            self._error(handler, is_api, exc.status, exc.message)
        except (NotFound, FaultsUnavailable, StreamkitError) as exc:
            self._error(handler, is_api, HTTPStatus.NOT_FOUND, str(exc))
        except ValueError as exc:
            self._error(handler, is_api, HTTPStatus.BAD_REQUEST, str(exc))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away
        except Exception as exc:
            LOG.exception("console: %s %s failed", method, path)
            self._error(handler, is_api, HTTPStatus.BAD_GATEWAY, f"{type(exc).__name__}: {exc}")

    def _error(self, handler: _Handler, is_api: bool, status: HTTPStatus, message: str) -> None:
        if is_api:
            handler.send_json(status, {"error": message, "status": int(status)})
        else:
            page = pages.not_found_page(message, faults=self._faults_on())
            handler.send_body(status, "text/html; charset=utf-8", page.encode())

    def _faults_on(self) -> bool:
        return self.faults.available()

    # -- helpers ---------------------------------------------------------------------------

    def _figure(self, uuid: str) -> Any:
        for f in self.view.figures():
            if f.uuid == uuid:
                return f
        raise NotFound(f"no mapping {uuid}")

    def _selected(self, request: _Request) -> tuple[list[dict[str, Any]], int, int, int]:
        offset = request.int_param("offset", 0, 0, 10**9)
        limit = request.int_param("limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
        chosen = select_mappings(
            self.view.figures(),  # current figures; the history gives rates and series
            query=request.query.get("q", ""),
            state=request.query.get("state", ""),
        )
        window = chosen[offset : offset + limit]
        return [mapping_entry(f, self.history) for f in window], len(chosen), offset, limit

    def _failures_or_none(self, uuid: str) -> dict[str, Any] | None:
        try:
            return self.destinations.failures(uuid)
        except NotFound:
            return None

    # -- pages -------------------------------------------------------------------------------

    def _overview_page(self, request: _Request) -> str:
        mappings, total, offset, limit = self._selected(request)
        return pages.overview_page(
            tables=self.tables.list(self.view.figures()),
            mappings=mappings,
            total=total,
            query=request.query.get("q", ""),
            offset=offset,
            limit=limit,
            faults=self._faults_on(),
        )

    def _mapping_page(self, request: _Request) -> str:
        uuid = request.arg(1)
        detail = mapping_detail(self._figure(uuid), self.history, self.view)
        return pages.mapping_page(detail, self._failures_or_none(uuid), faults=self._faults_on())

    def _stream_page(self, request: _Request) -> str:
        return pages.stream_page(
            request.arg(1), request.query.get("images") == "1", faults=self._faults_on()
        )

    def _destinations_page(self, request: _Request) -> str:
        return pages.destinations_page(self.destinations.summary(), faults=self._faults_on())

    def _destination_page(self, request: _Request) -> str:
        uuid = request.arg(1)
        return pages.destination_page(
            uuid, self.destinations.failures(uuid), faults=self._faults_on()
        )

    def _faults_page(self, request: _Request) -> str:
        if not self._faults_on():
            raise _HttpError(HTTPStatus.NOT_FOUND, "this endpoint has no fault injection")
        return pages.faults_page(self.faults.rules(), faults=True)

    def _static(self, request: _Request) -> tuple[str, bytes]:
        name = request.arg(1)
        kind = next((t for ext, t in _STATIC_TYPES.items() if name.endswith(ext)), None)
        resource = resources.files("streamkit.console").joinpath("static", name)
        if kind is None or not resource.is_file():
            raise _HttpError(HTTPStatus.NOT_FOUND, f"no static file {name}")
        return f"{kind}; charset=utf-8", resource.read_bytes()

    # -- API -------------------------------------------------------------------------------

    def _api_health(self, request: _Request) -> dict[str, Any]:
        return {
            "endpoint_url": self.view.endpoint_url,
            "region": self.view.region,
            "mappings": len(self.view.figures()),
            "faults": self._faults_on(),
        }

    def _api_mappings(self, request: _Request) -> Any:
        mappings, total, _, _ = self._selected(request)
        request.handler.extra_headers["X-Total-Count"] = str(total)
        return mappings

    def _api_mapping(self, request: _Request) -> dict[str, Any]:
        return mapping_detail(self._figure(request.arg(1)), self.history, self.view)

    def _api_failures(self, request: _Request) -> dict[str, Any]:
        self._figure(request.arg(1))
        return self.destinations.failures(request.arg(1))

    def _api_tables(self, request: _Request) -> list[dict[str, Any]]:
        return self.tables.list(self.view.figures())

    def _api_tail(self, request: _Request) -> dict[str, Any]:
        session = self.tails.session(request.arg(1), images=request.query.get("images") == "1")
        return session.read(request.int_param("after", 0, 0, 10**12))

    def _api_destinations(self, request: _Request) -> list[dict[str, Any]]:
        return self.destinations.summary()

    def _api_replay(self, request: _Request) -> dict[str, Any]:
        body = request.json_body()
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise _HttpError(
                HTTPStatus.BAD_REQUEST,
                'replay changes the queue: send {"confirm": true, "message_id": ...} '
                'or {"confirm": true, "all": true}',
            )
        uuid = request.arg(1)
        if body.get("all") is True:
            return self.destinations.replay_all(uuid)
        message_id = body.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise _HttpError(HTTPStatus.BAD_REQUEST, "message_id (a string) or all: true")
        return self.destinations.replay_one(uuid, message_id)

    def _api_faults(self, request: _Request) -> Any:
        return self.faults.rules()

    def _api_faults_add(self, request: _Request) -> Any:
        return self.faults.add(request.json_body())

    def _api_faults_clear(self, request: _Request) -> Any:
        rule_id = request.arg(1) if request.match.lastindex else None
        return self.faults.clear(rule_id)


class _Handler(BaseHTTPRequestHandler):
    server_version = "streamkit-console"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.extra_headers: dict[str, str] = {}

    @property
    def console(self) -> Console:
        console: Console = self.server.console  # type: ignore[attr-defined]
        return console

    def do_GET(self) -> None:
        self.extra_headers = {}
        self.console.dispatch(self, "GET")

    def do_POST(self) -> None:
        self.extra_headers = {}
        self.console.dispatch(self, "POST")

    def do_DELETE(self) -> None:
        self.extra_headers = {}
        self.console.dispatch(self, "DELETE")

    def send_json(self, status: HTTPStatus, value: Any) -> None:
        self.send_body(status, "application/json", json.dumps(value).encode())

    def send_body(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        for name, value in self.extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s %s", self.address_string(), format % args)


def serve(runner: RunnerLike, bind: str = f"{DEFAULT_HOST}:0") -> Console:
    """Start a console for ``runner`` on ``bind`` (``[HOST:]PORT``, default a free loopback
    port) and return it; ``console.url`` is its address, ``console.close()`` stops it."""
    return Console(runner, bind).start()
