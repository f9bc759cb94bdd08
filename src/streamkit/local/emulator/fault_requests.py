"""Tell what an AWS request is (service, operation, resource, wire protocol) from its WSGI environ.

Every service shares one endpoint, so this reads what the SDK sends:

- the service: the JSON protocols' ``X-Amz-Target`` prefix (``DynamoDB_20120810``,
  ``DynamoDBStreams_20120810``, ``AmazonSQS``, ``AWSStepFunctions`` ...) and otherwise the SigV4
  credential scope (``Credential=AKID/20250101/us-east-1/<service>/aws4_request``). DynamoDB
  Streams signs as ``dynamodb``, so its target prefix decides;
- the operation: the ``X-Amz-Target`` suffix (JSON), the ``Action`` parameter (query protocol:
  SNS, SES, STS, SQS's older wire format), or for REST services (Lambda, S3) the operation whose
  HTTP method and request URI in botocore's own service model match the request;
- the resource: the table, stream, queue, topic, function, bucket or state machine named in the
  request, for rules that target one resource;
- the protocol, which decides the shape of the error answer (``fault_errors.py``).

The request body is read once and put back, so the emulator behind still sees it.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from streamkit.local.emulator.fault_rules import RequestIdentity

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["IdentifiedRequest", "identify_request"]

# X-Amz-Target prefix -> the service name rules use (botocore's client name).
_TARGET_SERVICES: dict[str, str] = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "AmazonSQS": "sqs",
    "AWSStepFunctions": "stepfunctions",
    "Logs_20140328": "logs",
    "AWSEvents": "events",
    "TrentService": "kms",
    "secretsmanager": "secretsmanager",
    "AmazonSSM": "ssm",
    "Kinesis_20131202": "kinesis",
}
# SigV4 signing names that differ from the client name.
_SCOPE_SERVICES: dict[str, str] = {
    "email": "ses",
    "states": "stepfunctions",
    "monitoring": "cloudwatch",
}
_REST_SERVICES = frozenset({"lambda", "s3"})
# Request fields that name the resource, in the order they are looked for.
_RESOURCE_FIELDS = (
    "TableName",
    "StreamArn",
    "QueueUrl",
    "TopicArn",
    "TargetArn",
    "FunctionName",
    "stateMachineArn",
    "executionArn",
    "logGroupName",
    "Source",
)
_CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_MAX_INSPECTED_BODY = 8 * 1024 * 1024


@dataclass(frozen=True)
class IdentifiedRequest:
    identity: RequestIdentity
    protocol: str  # "json", "rest-json", "query", "rest-xml"
    json_version: str = "1.0"
    query_compatible: bool = False


def identify_request(environ: WSGIEnvironment) -> IdentifiedRequest | None:
    """The request's identity, or None for a request that is not a signed AWS API call."""
    service = _scope_service(environ)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target and "." in target:
        prefix, _, operation = target.rpartition(".")
        service = _TARGET_SERVICES.get(prefix, service or prefix.lower())
        body = _json_body(environ)
        content_type = environ.get("CONTENT_TYPE", "")
        version = "1.1" if "1.1" in content_type else "1.0"
        return IdentifiedRequest(
            RequestIdentity(service, operation, _json_resource(operation, body)),
            "json",
            version,
            query_compatible=service == "sqs",
        )
    if service is None:
        return None
    if service in _REST_SERVICES:
        return _identify_rest(environ, service)
    params = _query_params(environ)
    action = params.get("Action")
    if action is None:
        return IdentifiedRequest(RequestIdentity(service, "*"), "query")
    resource = next((params[name] for name in _RESOURCE_FIELDS if params.get(name)), None)
    return IdentifiedRequest(RequestIdentity(service, action, resource), "query")


def _scope_service(environ: WSGIEnvironment) -> str | None:
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:  # presigned URL
        query = parse_qs(environ.get("QUERY_STRING", ""))
        credential = (query.get("X-Amz-Credential") or [""])[0]
        match = _CREDENTIAL.search(f"Credential={credential}")
    if match is None:
        return None
    name = match.group(1)
    return _SCOPE_SERVICES.get(name, name)


def _identify_rest(environ: WSGIEnvironment, service: str) -> IdentifiedRequest:
    method = environ["REQUEST_METHOD"]
    path = unquote(environ.get("PATH_INFO", "") or "/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    best: tuple[int, str, dict[str, str]] | None = None
    for route in _routes(service):
        if route.method != method:
            continue
        match = route.path.fullmatch(path)
        if match is None:
            continue
        if any(
            key not in query or (value is not None and value not in query[key])
            for key, value in route.query
        ):
            continue
        if any(_header(environ, name) is None for name in route.headers):
            continue
        if best is None or route.score > best[0]:
            best = (route.score, route.operation, match.groupdict())
    if best is None:
        return IdentifiedRequest(
            RequestIdentity(service, "*"), "rest-xml" if service == "s3" else "rest-json"
        )
    _score, operation, groups = best
    resource = groups.get("FunctionName") or groups.get("Bucket")
    protocol = "rest-xml" if service == "s3" else "rest-json"
    return IdentifiedRequest(RequestIdentity(service, operation, resource), protocol)


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    path: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]
    headers: tuple[str, ...]  # required header members (CopyObject's x-amz-copy-source)
    score: int


@cache
def _routes(service: str) -> tuple[_Route, ...]:
    import botocore.session  # the emulator depends on botocore through moto

    model = botocore.session.get_session().get_service_model(service)
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        http = operation.http
        uri: str = http.get("requestUri", "/")
        path_part, _, query_part = uri.partition("?")
        pattern = re.sub(
            r"\{([A-Za-z0-9_]+)(\+?)\}",
            lambda m: f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})",
            re.escape(path_part).replace(r"\{", "{").replace(r"\}", "}").replace(r"\+", "+"),
        )
        query: list[tuple[str, str | None]] = []
        for item in filter(None, query_part.split("&")):
            key, sep, value = item.partition("=")
            query.append((key, value if sep else None))
        # Operations sharing a URI (PutObject, CopyObject, UploadPart) differ in required
        # query-string and header members.
        headers: list[str] = []
        shape = operation.input_shape
        for member in shape.required_members if shape is not None else ():
            where = shape.members[member].serialization
            if where.get("location") == "querystring":
                query.append((where.get("name", member), None))
            elif where.get("location") == "header":
                headers.append(where.get("name", member))
        literal = len(re.sub(r"\{[^}]*\}", "", path_part))
        routes.append(
            _Route(
                name,
                http.get("method", "POST"),
                re.compile(pattern),
                tuple(query),
                tuple(headers),
                literal + 100 * (len(query) + len(headers)),
            )
        )
    return tuple(routes)


def _header(environ: WSGIEnvironment, name: str) -> str | None:
    value: str | None = environ.get("HTTP_" + name.upper().replace("-", "_"))
    return value


def _read_body(environ: WSGIEnvironment) -> bytes:
    cached: bytes | None = environ.get("streamkit.body")
    if cached is not None:
        return cached
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0 or length > _MAX_INSPECTED_BODY:
        return b""
    body: bytes = environ["wsgi.input"].read(length)
    # Put the bytes back for the application behind.
    environ["wsgi.input"] = io.BytesIO(body)
    environ["streamkit.body"] = body
    return body


def _json_body(environ: WSGIEnvironment) -> dict[str, Any]:
    try:
        value = json.loads(_read_body(environ) or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _json_resource(operation: str, body: dict[str, Any]) -> str | None:
    for name in _RESOURCE_FIELDS:
        value = body.get(name)
        if isinstance(value, str) and value:
            return value
    iterator = body.get("ShardIterator")
    if isinstance(iterator, str) and "|" in iterator:
        # <stream arn>|1|<token>, the form moto and streamkit's emulator issue.
        return iterator.split("|", 1)[0]
    items = body.get("RequestItems")
    if isinstance(items, dict) and items:
        return str(next(iter(items)))
    return None


def _query_params(environ: WSGIEnvironment) -> dict[str, str]:
    params = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if environ.get("REQUEST_METHOD") == "POST" and "form-urlencoded" in environ.get(
        "CONTENT_TYPE", ""
    ):
        body = _read_body(environ).decode("utf-8", "replace")
        params.update({key: values[0] for key, values in parse_qs(body).items()})
    return params
