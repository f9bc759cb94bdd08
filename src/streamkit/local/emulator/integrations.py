"""Step Functions executions, and read-back of sent email and SMS, in the embedded emulator.

Step Functions. moto stores state machines but only *runs* them when its config says
``{"stepfunctions": {"execute_state_machine": true}}`` (then its ASL interpreter, ported from
LocalStack, executes each StartExecution in a background thread). Its service integrations
(``arn:aws:states:::dynamodb:updateItem`` and the like) call AWS through a boto3 client whose
endpoint is ``http://localhost:<MOTO_PORT or 5000>``: a moto server that is not this one. So
:func:`enable_step_functions` turns execution on and points that client's port at the newest
running emulator of this process (moto's state is process-wide, so any of them serves the same
tables). It must run before the first state machine is created: moto keeps executing machines
in a separate backend.

ValidateStateMachineDefinition. Terraform's AWS provider calls it when it plans a state
machine; moto does not implement it and answers HTTP 500, which the provider retries for many
minutes. :func:`enable_step_functions` adds it: the definition must be a JSON object whose
``StartAt`` names one of its ``States`` (result ``OK``), else ``FAIL`` with a diagnostic, in the
shape of https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html.
moto's own parser checks the rest when the machine is created or run. The provider also lists
the machine's versions after creating it (ListStateMachineVersions, also missing in moto): the
emulator answers from moto's own version records, newest first, as AWS does.

Read-back. moto records every email SES accepted and every SMS SNS published, but its
``/moto-api/data.json`` serializes every resource of the process and answers HTTP 500 once a
Lambda function exists (its Lambda model wants docker). The emulator serves them itself:

- ``GET /_streamkit/ses/messages``: ``{"messages": [{"id", "source", "destinations",
  "subject", "body", "region"}]}`` (SendEmail, SendTemplatedEmail, SendRawEmail), in order;
- ``GET /_streamkit/sns/sms``: ``{"messages": [{"phone_number", "message", "region"}]}``.

Both cover every account and region of the process. Tests and the load test count them.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urlsplit

from streamkit.local.emulator.moto_patches import request_base_url_fallback

__all__ = [
    "SES_MESSAGES_PATH",
    "SNS_SMS_PATH",
    "definition_diagnostics",
    "enable_step_functions",
    "readback",
    "sent_email",
    "sent_sms",
]

SES_MESSAGES_PATH = "/_streamkit/ses/messages"
SNS_SMS_PATH = "/_streamkit/sns/sms"

_lock = threading.Lock()
_enabled = False


def _emulator_port() -> str:
    base = request_base_url_fallback()
    port = urlsplit(base).port if base else None
    # No emulator running in this process (moto used as a library): moto's own default.
    return str(port) if port else "5000"


def enable_step_functions() -> None:
    """Execute state machines, with service integrations calling this process's emulator.
    Idempotent."""
    global _enabled
    with _lock:
        if _enabled:
            return
        from moto.core.config import default_user_config
        from moto.stepfunctions.parser.asl.utils import boto_client
        from moto.stepfunctions.responses import StepFunctionResponse

        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        # moto finds an action's method by name (ValidateStateMachineDefinition ->
        # validate_state_machine_definition), so adding it to the class is enough.
        StepFunctionResponse.validate_state_machine_definition = _validate_definition  # type: ignore[attr-defined]
        StepFunctionResponse.list_state_machine_versions = _list_versions  # type: ignore[attr-defined]
        # boto_client_for builds f"http://localhost:{moto_server_port()}" at each call, reading
        # the name from its module: replacing it there covers every integration.
        boto_client.moto_server_port = _emulator_port  # type: ignore[attr-defined]
        _enabled = True


def definition_diagnostics(definition: str) -> list[dict[str, str]]:
    """What ValidateStateMachineDefinition reports about ``definition`` (empty: valid)."""

    def error(code: str, message: str, location: str = "/") -> dict[str, str]:
        return {"severity": "ERROR", "code": code, "message": message, "location": location}

    try:
        document = json.loads(definition)
    except ValueError as exc:
        return [error("INVALID_JSON_DESCRIPTION", f"the definition is not JSON: {exc}")]
    if not isinstance(document, dict):
        return [error("SCHEMA_VALIDATION_FAILED", "the definition must be a JSON object")]
    states = document.get("States")
    if not isinstance(states, dict) or not states:
        return [error("SCHEMA_VALIDATION_FAILED", "States must be a non-empty object", "/States")]
    start = document.get("StartAt")
    if start not in states:
        return [error("MISSING_START_STATE", f"StartAt {start!r} is not a state", "/StartAt")]
    return []


def _validate_definition(response: Any) -> str:
    diagnostics = definition_diagnostics(str(response._get_param("definition") or ""))
    return json.dumps({"result": "FAIL" if diagnostics else "OK", "diagnostics": diagnostics})


def _list_versions(response: Any) -> str:
    machine = response.stepfunction_backend.describe_state_machine(
        response._get_param("stateMachineArn")
    )
    versions = sorted(getattr(machine, "versions", {}).values(), key=lambda v: -v.version)
    return json.dumps(
        {
            "stateMachineVersions": [
                {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date.timestamp()}
                for v in versions
            ]
        }
    )


def _message_dict(message: Any, region: str) -> dict[str, Any]:
    destinations = getattr(message, "destinations", None) or getattr(message, "destination", None)
    if isinstance(destinations, dict):
        flat = [a for addresses in destinations.values() for a in (addresses or [])]
    elif isinstance(destinations, list):
        flat = list(destinations)
    else:
        flat = []
    return {
        "id": getattr(message, "id", None),
        "source": getattr(message, "source", None),
        "destinations": flat,
        "subject": getattr(message, "subject", None),
        "body": getattr(message, "body", None) or getattr(message, "raw_data", None),
        "region": region,
    }


def _backends(backend_dict: Any) -> list[tuple[str, Any]]:
    found = []
    for account_id in list(backend_dict.keys()):
        regions = backend_dict[account_id]
        for region in list(regions.keys()):
            found.append((region, regions[region]))
    return found


def sent_email() -> list[dict[str, Any]]:
    """Every message SES accepted in this process, in order of sending per region."""
    from moto.ses.models import ses_backends

    return [
        _message_dict(message, region)
        for region, backend in _backends(ses_backends)
        for message in list(backend.sent_messages)
    ]


def sent_sms() -> list[dict[str, Any]]:
    """Every SMS SNS published in this process (Publish with PhoneNumber)."""
    from moto.sns.models import sns_backends

    return [
        {"phone_number": phone, "message": text, "region": region}
        for region, backend in _backends(sns_backends)
        for phone, text in list(backend.sms_messages.values())
    ]


def readback(path: str, method: str) -> bytes | None:
    """The JSON body for a read-back route, or ``None`` when ``path`` is not one."""
    if method not in ("GET", "HEAD"):
        return None
    if path == SES_MESSAGES_PATH:
        return json.dumps({"messages": sent_email()}, default=str).encode()
    if path == SNS_SMS_PATH:
        return json.dumps({"messages": sent_sms()}, default=str).encode()
    return None
