"""AWS error answers, in the wire format of each protocol, so SDKs parse them as real errors.

botocore (and every AWS SDK) turns these into a ``ClientError`` whose ``Error.Code`` is the code:

- JSON 1.0/1.1 (DynamoDB, DynamoDB Streams, SQS, Step Functions, Logs):
  ``{"__type": "com.amazonaws.dynamodb.v20120810#Code", "message": "..."}``; the SDK takes the part
  after ``#``. SQS is "awsQueryCompatible": AWS also sends ``x-amzn-query-error: Code;Sender``,
  which botocore prefers, so it is sent too.
- REST-JSON (Lambda): the ``x-amzn-ErrorType`` header names the code; the body is
  ``{"Type": "User"|"Service", "message": "..."}``.
- Query (SNS, SES, STS, SQS's older wire format): ``<ErrorResponse><Error><Type/><Code/><Message/>
  </Error><RequestId/></ErrorResponse>``.
- REST-XML (S3): ``<Error><Code/><Message/><RequestId/></Error>``.
"""

from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape

from streamkit.local.emulator.fault_requests import IdentifiedRequest
from streamkit.local.emulator.fault_rules import FaultRule

__all__ = ["ErrorAnswer", "render_error"]

_JSON_NAMESPACES = {
    "dynamodb": "com.amazonaws.dynamodb.v20120810",
    "dynamodbstreams": "com.amazonaws.dynamodb.v20120810",
    "sqs": "com.amazonaws.sqs",
    "stepfunctions": "com.amazonaws.states",
}

ErrorAnswer = tuple[str, list[tuple[str, str]], bytes]


def render_error(request: IdentifiedRequest, rule: FaultRule) -> ErrorAnswer:
    """Status line, headers and body of the error ``rule`` injects into ``request``."""
    code = rule.error or "InternalFailure"
    status = rule.http_status
    message = rule.message or f"streamkit fault injection ({rule.id}): {code}"
    request_id = str(uuid.uuid4())
    sender = "Sender" if status < 500 else "Receiver"
    headers = [("x-amzn-RequestId", request_id), ("x-amz-request-id", request_id)]
    if request.protocol == "json":
        namespace = _JSON_NAMESPACES.get(request.identity.service, "com.amazonaws")
        body = json.dumps({"__type": f"{namespace}#{code}", "message": message}).encode()
        headers.append(("Content-Type", f"application/x-amz-json-{request.json_version}"))
        if request.query_compatible:
            headers.append(("x-amzn-query-error", f"{code};{sender}"))
    elif request.protocol == "rest-json":
        kind = "User" if status < 500 else "Service"
        body = json.dumps({"Type": kind, "message": message}).encode()
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    elif request.protocol == "rest-xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers.append(("Content-Type", "application/xml"))
    else:
        body = (
            "<ErrorResponse><Error>"
            f"<Type>{sender}</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
    headers.append(("Content-Length", str(len(body))))
    return f"{status} {_REASONS.get(status, 'Error')}", headers, body


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
