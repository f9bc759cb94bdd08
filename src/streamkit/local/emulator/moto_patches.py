"""Patches that make moto's server behave like AWS where streamkit depends on it.

moto is the engine of the embedded emulator (see ``server.py``). A few of its behaviours differ
from AWS in ways that break a DynamoDB Streams + Lambda system; this module corrects them. Each
numbered section below says what moto does, what AWS does, and why it matters:

1. moto never delivers stream records to Lambda itself (it would drop them without docker).
2. Stream records carry the table's region, not always us-east-1.
3. GetFunction's Code.Location is a URL the emulator serves (code_server.py).
4. Event source mapping requests are validated, defaulted and answered like Lambda does
   (states and conflicts: esm_lifecycle.py).
5. Two per-request lookups are cached (speed only).
6. moto's GetRecords forgets the iterator it consumed (memory stays flat while idle-polling;
   over HTTP, streams_api.py answers instead).
7. A cancelled transaction leaves the stream exactly as it was.
8. UpdateFunctionConfiguration applies TracingConfig.
9. Stream records: eventVersion 1.1, DynamoDB's SizeBytes, none for a write that changes
   nothing, one INSERT for an UpdateItem that creates its item (stream_records.py).
10. Streams have several shards that roll over, expiring iterators and a 24-hour trim
   (stream_shards.py; served over HTTP by streams_api.py, which server.py calls).
11. moto's item-size check runs once per item, not once per attribute (moto_speed.py).
12. SNS envelopes carry SignatureVersion "1" and AWS's signed fields (sns_envelope.py).

server.py adds one more: DynamoDB requests run one at a time, so concurrent writes get unique,
ordered sequence numbers and consistent OldImage/NewImage chains.

Deviations left as they are (documented in the README): alarms are never evaluated, and Invoke
does not run code (``streamkit run`` runs functions itself).

:func:`apply_moto_patches` is idempotent and thread-safe. It runs when the emulator package is
imported and again at every start, so the patches are in place before any request is served.
They change moto's classes process-wide, so they also apply to ``moto.mock_aws`` in the same
process; every change is towards AWS behaviour.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from moto.awslambda import models as lambda_models
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import table as dynamodb_table_models
from moto.dynamodbstreams.models import dynamodbstreams_backends

from streamkit.exceptions import InvalidParameterValueError
from streamkit.local.emulator import esm_lifecycle
from streamkit.local.emulator.moto_speed import apply_write_speed_patches
from streamkit.local.emulator.sns_envelope import apply_sns_envelope_patches
from streamkit.local.emulator.stream_records import apply_stream_record_patches
from streamkit.local.emulator.stream_shards import apply_shard_patches
from streamkit.local.esm.config import (
    STREAM_MAPPING_DEFAULTS,
    is_dynamodb_stream_arn,
    validate_create_request,
    validate_update_request,
)
from streamkit.local.invoker.trace_header import TRACING_MODES

__all__ = [
    "CODE_PATH_PREFIX",
    "LambdaUserError",
    "add_running_base_url",
    "apply_moto_patches",
    "code_url_path",
    "remove_running_base_url",
    "request_base_url",
    "request_base_url_fallback",
]

# URL path under which the emulator serves deployed function code (see code_server.py).
CODE_PATH_PREFIX = "/_streamkit/lambda-code/"

# The base URL ("http://host:port") of the request being served. The code-serving middleware
# sets it for each request, so GetFunction's Code.Location names the host the client used.
request_base_url: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "streamkit_emulator_request_base_url", default=None
)
# Fallback when a request arrives without a Host header (HTTP/1.0): the endpoint of the newest
# emulator still running in this process. A tuple, replaced whole, so readers need no lock; an
# emulator stopped by one test must not leave its dead URL as the fallback for the others.
_running_base_urls: tuple[str, ...] = ()
_running_lock = threading.Lock()

_lock = threading.Lock()
_applied = False


def add_running_base_url(url: str) -> None:
    """Record an emulator that started serving at ``url`` (the newest is the fallback)."""
    global _running_base_urls
    with _running_lock:
        _running_base_urls = (*_running_base_urls, url)


def remove_running_base_url(url: str) -> None:
    """Forget an emulator that stopped; the fallback goes back to the newest one left."""
    global _running_base_urls
    with _running_lock:
        _running_base_urls = tuple(u for u in _running_base_urls if u != url)


def request_base_url_fallback() -> str | None:
    """The endpoint of the newest emulator still running in this process, if any."""
    running = _running_base_urls
    return running[-1] if running else None


def code_url_path(account_id: str, region: str, function_name: str, qualifier: str) -> str:
    return (
        f"{CODE_PATH_PREFIX}{quote(account_id, safe='')}/{quote(region, safe='')}/"
        f"{quote(function_name, safe='')}?qualifier={quote(qualifier, safe='')}"
    )


class LambdaUserError(JsonRESTError):
    """A Lambda client error shaped like AWS Lambda's own.

    Lambda answers a bad request with the error code in the ``x-amzn-ErrorType`` header and the
    body ``{"Type": "User", "message": ...}``; botocore reads the code from the header.
    """

    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(error_type, message)
        self.code = status
        self.description = json.dumps({"Type": "User", "message": message})


def apply_moto_patches() -> None:
    """Apply every patch once; later calls do nothing."""
    global _applied
    with _lock:
        if _applied:
            return
        _stop_moto_delivering_stream_records()
        _serve_code_location()
        _check_event_source_mapping_requests()
        _cache_response_method_names()
        _forget_consumed_shard_iterators()
        _roll_back_transactions_in_place()
        _update_function_configuration_applies_tracing()
        apply_stream_record_patches()
        apply_shard_patches()
        apply_write_speed_patches()
        apply_sns_envelope_patches()
        _applied = True


# --- 1. moto must not deliver DynamoDB stream records to Lambda itself -------------------------
#
# moto's StreamShard.add (moto/dynamodb/models/table.py) calls the Lambda backend for every
# mapping registered in ``table.lambda_event_source_mappings`` on every write. That invoke needs
# docker; without docker it "succeeds" with an error string, and StreamShard.add then clears the
# shard's records (``self.items = []``): the stream silently loses its data and sequence numbers
# restart. The registration happens in LambdaBackend.create_event_source_mapping and is never
# undone by Update/DeleteEventSourceMapping, so the damage outlives the mapping.
#
# In streamkit the ESM runner (``streamkit run``) executes mappings, as Lambda does in AWS.
# So the table gets a class-level property that always reads as an empty mapping and ignores
# writes. A data descriptor on the class wins over the instance attribute Table.__init__ sets,
# so tables created before the patch are covered too. The mapping itself stays stored in the
# Lambda backend (``_event_source_mappings``), so Get/List/Update/Delete work as before.


class _WriteIgnoringDict(dict[str, Any]):
    """An always-empty dict: item assignment is silently dropped."""

    def __setitem__(self, key: str, value: Any) -> None:
        return None

    def setdefault(self, key: str, default: Any = None) -> Any:
        return default

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _no_table_mappings(_table: Any) -> dict[str, Any]:
    return _WriteIgnoringDict()


def _ignore_table_mappings(_table: Any, _value: Any) -> None:
    return None


def _stop_moto_delivering_stream_records() -> None:
    dynamodb_table_models.Table.lambda_event_source_mappings = property(  # type: ignore[assignment]
        _no_table_mappings, _ignore_table_mappings
    )


# --- 2. awsRegion in stream records ------------------------------------------------------------
#
# moto hard-codes "awsRegion": "us-east-1"; AWS puts the table's region there. stream_records.py
# builds the whole record (section 9), region included.


# --- 3. GetFunction's Code.Location must be downloadable ---------------------------------------
#
# AWS returns a presigned URL for the deployment package in Code.Location
# (https://docs.aws.amazon.com/lambda/latest/api/API_FunctionCodeLocation.html); moto returns a
# made-up S3 URL nobody can fetch. The emulator serves the stored zip itself (code_server.py),
# and GetFunction points at that URL, so the ESM runner downloads code the same way from AWS,
# LocalStack and the emulator: a plain HTTP GET of Code.Location.


def _base_url() -> str | None:
    return request_base_url.get() or request_base_url_fallback()


def _serve_code_location() -> None:
    function_cls = lambda_models.LambdaFunction
    original_get_code: Callable[[Any], dict[str, Any]] = function_cls.get_code

    def get_code(self: Any) -> dict[str, Any]:
        response = original_get_code(self)
        base = _base_url()
        if base and self.package_type == "Zip" and getattr(self, "code_bytes", b""):
            path = code_url_path(
                self.account_id, self.region, self.function_name, str(self.version)
            )
            response["Code"] = {"RepositoryType": "S3", "Location": base + path}
        return response

    function_cls.get_code = get_code  # type: ignore[method-assign]


# --- 4. Event source mapping requests are checked the way Lambda checks them --------------------
#
# - A DynamoDB stream ARN that does not exist: moto answers ResourceNotFoundException "Invalid
#   EventSourceArn"; Lambda answers InvalidParameterValueException "Stream not found: <arn>".
# - Parameter ranges (BatchSize 1-10000, windows, retries, filters, destinations, ...): moto
#   checks almost none. The checks live in streamkit.local.esm.config, shared with the
#   runner. A rejected request gets HTTP 400 with Lambda's error code and body.
# - Update/Delete of an unknown UUID: moto answers 404 with an empty body, which botocore turns
#   into a bare "404" error; Lambda answers ResourceNotFoundException.
# - UpdateEventSourceMapping leaves LastModified unchanged in moto; Lambda moves it.
# - moto omits every optional field the request did not set; Lambda reports its defaults for a
#   stream mapping (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html),
#   so the runner and Terraform read the same shape from both (STREAM_MAPPING_DEFAULTS in
#   esm.config), and ``DestinationConfig: {"OnFailure": {}}`` when none was given.
# - States (Creating/Enabling/Disabling/Updating/Deleting), StateTransitionReason,
#   LastProcessingResult, the 202 of Create and the 409 of a duplicate mapping: esm_lifecycle.py.


def _validate(validator: Callable[[Mapping[str, Any]], None], params: Mapping[str, Any]) -> None:
    try:
        validator(params)
    except InvalidParameterValueError as exc:
        # The validator tells the API model's constraint errors (ValidationException) from the
        # service's own checks (InvalidParameterValueException), as Lambda does; both are 400.
        raise LambdaUserError(exc.code, exc.message) from exc


def _check_stream_exists(backend: Any, arn: str) -> None:
    streams = dynamodbstreams_backends[backend.account_id][backend.region_name].list_streams()
    if not any(stream["StreamArn"] == arn for stream in streams):
        raise LambdaUserError("InvalidParameterValueException", f"Stream not found: {arn}")


def _mapping_not_found(uuid: str) -> LambdaUserError:
    return LambdaUserError(
        "ResourceNotFoundException",
        f"The resource you requested does not exist. (Service: Lambda, UUID: {uuid})",
        status=404,
    )


def _function_key(name_or_arn: str) -> tuple[str, ...]:
    """(function name,) or (function name, qualifier) from a name, ARN or partial ARN."""
    parts = str(name_or_arn).split(":")
    if parts[0] == "arn":
        parts = parts[6:]
    elif len(parts) >= 3 and parts[1] == "function":  # 123456789012:function:name[:q]
        parts = parts[2:]
    return tuple(parts[:2])


def _check_no_duplicate(backend: Any, arn: str, function_name: Any) -> None:
    function = backend._lambdas.get_function_by_name_or_arn_with_qualifier(str(function_name or ""))
    for esm in backend.list_event_source_mappings(arn, None):
        if esm.function_arn == function.function_arn:
            raise LambdaUserError(
                "ResourceConflictException",
                esm_lifecycle.conflict_message(arn, function.function_name, esm.uuid),
                status=409,
            )


def _answer_mappings_like_lambda() -> None:
    """State, StateTransitionReason, LastProcessingResult and the empty OnFailure as Lambda
    reports them; CreateEventSourceMapping answers 202 (see esm_lifecycle)."""
    from moto.awslambda.responses import LambdaResponse

    esm_cls = lambda_models.EventSourceMapping
    original_config: Callable[[Any], dict[str, Any]] = esm_cls.get_configuration

    def get_configuration(self: Any) -> dict[str, Any]:
        config = original_config(self)
        life = esm_lifecycle.lifecycle_of(self)
        config["State"] = life.state(bool(self.enabled))
        config["StateTransitionReason"] = esm_lifecycle.USER_ACTION
        config["LastProcessingResult"] = life.last_processing_result
        if is_dynamodb_stream_arn(str(self.event_source_arn)):
            destination = dict(config.get("DestinationConfig") or {})
            destination.setdefault("OnFailure", {})
            config["DestinationConfig"] = destination
        return config

    original_create_response = LambdaResponse.create_event_source_mapping

    def create_event_source_mapping(self: Any) -> Any:
        _status, headers, body = original_create_response(self)
        return 202, {**headers, "status": 202}, body

    esm_cls.get_configuration = get_configuration  # type: ignore[method-assign]
    LambdaResponse.create_event_source_mapping = create_event_source_mapping  # type: ignore[method-assign]


def _check_event_source_mapping_requests() -> None:
    backend_cls = lambda_models.LambdaBackend
    original_create = backend_cls.create_event_source_mapping
    original_update = backend_cls.update_event_source_mapping
    original_get = backend_cls.get_event_source_mapping
    original_list = backend_cls.list_event_source_mappings

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        _validate(validate_create_request, spec)
        arn = spec.get("EventSourceArn")
        if isinstance(arn, str) and is_dynamodb_stream_arn(arn):
            _check_stream_exists(self, arn)
            _check_no_duplicate(self, arn, spec.get("FunctionName"))
            for key, default in STREAM_MAPPING_DEFAULTS.items():
                if spec.get(key) is None:
                    spec[key] = list(default) if isinstance(default, list) else default
        esm = original_create(self, spec)
        esm_lifecycle.start_lifecycle(esm)
        return esm

    def update_event_source_mapping(self: Any, uuid: str, spec: dict[str, Any]) -> Any:
        current = self.get_event_source_mapping(uuid)
        if current is None:
            raise _mapping_not_found(uuid)
        _validate(validate_update_request, spec)
        transition = esm_lifecycle.update_transition(bool(current.enabled), spec)
        esm = original_update(self, uuid, spec)
        if esm is not None:
            esm.last_modified = time.time()
            esm_lifecycle.lifecycle_of(esm).begin(transition)
        return esm

    def delete_event_source_mapping(self: Any, uuid: str) -> Any:
        esm = self.get_event_source_mapping(uuid)
        if esm is None:
            raise _mapping_not_found(uuid)
        # Listed as Deleting until the transition is over (esm_lifecycle.purge_deleted).
        esm_lifecycle.lifecycle_of(esm).begin("Deleting")
        return esm

    def get_event_source_mapping(self: Any, uuid: str) -> Any:
        esm_lifecycle.purge_deleted(self)
        return original_get(self, uuid)

    def list_event_source_mappings(self: Any, event_source_arn: str, function_name: str) -> Any:
        esm_lifecycle.purge_deleted(self)
        mappings = original_list(self, event_source_arn, "")
        if not function_name:
            return mappings
        # moto compares FunctionName with the text the mapping was created with; Lambda takes
        # a name, an ARN or a partial ARN, with an optional qualifier, and means the function.
        wanted = _function_key(function_name)
        return [m for m in mappings if _function_key(m.function_arn)[: len(wanted)] == wanted]

    backend_cls.create_event_source_mapping = create_event_source_mapping  # type: ignore[method-assign]
    backend_cls.update_event_source_mapping = update_event_source_mapping  # type: ignore[method-assign]
    backend_cls.delete_event_source_mapping = delete_event_source_mapping  # type: ignore[method-assign]
    backend_cls.get_event_source_mapping = get_event_source_mapping  # type: ignore[method-assign]
    backend_cls.list_event_source_mappings = list_event_source_mappings  # type: ignore[method-assign]
    _answer_mappings_like_lambda()


# --- 5. Request dispatch speed ------------------------------------------------------------------
#
# Not a behaviour change. Per request, moto's server lists its own package directory (about 150
# os.listdir/isdir calls, in DomainDispatcherApplication.get_backend_for_host) and runs
# inspect.getmembers over the response class (method_names_from_class). Both answers never change
# while the process runs, so they are cached; together they were ~30% of the server's time per
# put_item. The dispatcher cache lives in server.py (a subclass); the class-method list is here.


def _cache_response_method_names() -> None:
    from moto.core import responses as core_responses

    # responses.py imports the function by name, so that is the reference to replace.
    original: Callable[[object], list[str]] = core_responses.method_names_from_class  # type: ignore[attr-defined]
    if getattr(original, "_streamkit_cached", False):
        return
    cache: dict[object, list[str]] = {}

    def method_names_from_class(clazz: object) -> list[str]:
        names = cache.get(clazz)
        if names is None:
            names = cache[clazz] = original(clazz)
        return names

    method_names_from_class._streamkit_cached = True  # type: ignore[attr-defined]
    core_responses.method_names_from_class = method_names_from_class  # type: ignore[attr-defined]


# --- 6. GetRecords forgets the iterator it consumed ---------------------------------------------
#
# moto keeps every shard iterator it ever handed out (DynamoDBStreamsBackend.shard_iterators),
# and each GetRecords hands out a new one (NextShardIterator), so a runner polling an idle
# shard four times a second grows the emulator's memory forever (~1 KB per call). Here the
# iterator a GetRecords consumed is dropped. Using it again gets ExpiredIteratorException, as
# an expired iterator does on AWS, which every stream reader handles by asking for a new one
# (AWS would accept a reuse within its 15 minutes: the one deviation, and it is on the safe
# side). An iterator moto never knew gets the same error instead of an internal error.
# Over HTTP the emulator answers stream reads itself (streams_api.py: stateless iterators,
# reusable until they expire, as on AWS); this patch covers moto's own path (moto.mock_aws).


def _forget_consumed_shard_iterators() -> None:
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original_get_records = DynamoDBStreamsBackend.get_records
    if getattr(original_get_records, "_streamkit_forgets", False):
        return

    def get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        if iterator_arn not in self.shard_iterators:
            raise JsonRESTError(
                "ExpiredIteratorException",
                "Iterator expired: it was already used or never issued "
                "(the embedded emulator accepts each shard iterator once)",
            )
        result: dict[str, Any] = original_get_records(self, iterator_arn, limit)
        self.shard_iterators.pop(iterator_arn, None)
        return result

    get_records._streamkit_forgets = True  # type: ignore[attr-defined]
    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]


# --- 7. A cancelled transaction must leave the stream exactly as it was ------------------------
#
# moto's DynamoDBBackend.transact_write_items backs every involved table up with deepcopy and,
# when the transaction is cancelled, *replaces* the table objects with those copies. The
# writes it made before failing have already appended stream records to the live shard, and
# the copies carry a new StreamShard object. Stream readers hold iterators bound to the old
# shard object, which keeps the phantom records of a change that never happened and never
# receives another record: every later write goes to the copy's shard. (Seen: a reader saw a
# MODIFY of a cancelled transaction, then never the next real INSERT.)
#
# DynamoDB applies a transaction all or nothing and emits stream records only for a committed
# one. So the emulator runs moto's transaction with a rollback of its own
# (moto_speed.transact_write_items): before each action writes, it keeps a copy of that item and
# the length of its table's stream; on cancellation it puts those items back and truncates the
# shards, in place. The table and shard objects readers hold stay the live ones, and no phantom
# record survives. Together with the emulator's lock over DynamoDB and DynamoDB Streams requests
# (server.py), no reader can observe the records in between. (It also avoids moto's deepcopy of
# every named table per transaction, whose cost grew with the table: see moto_speed.py.)


def _roll_back_transactions_in_place() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    from streamkit.local.emulator.moto_speed import transact_write_items

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


# --- 8. UpdateFunctionConfiguration applies TracingConfig ---------------------------------------
#
# moto's LambdaFunction.update_configuration ignores TracingConfig: the mode stays what
# CreateFunction set. Lambda applies it. It matters twice: the local runtime gives Active
# functions sampled trace headers (streamkit.local.invoker.trace_header), and Terraform, which changes
# tracing_config in place, would otherwise plan the same change forever.


def _update_function_configuration_applies_tracing() -> None:
    function_cls = lambda_models.LambdaFunction
    original: Callable[[Any, dict[str, Any]], dict[str, Any]] = function_cls.update_configuration

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        tracing = config_updates.get("TracingConfig")
        if isinstance(tracing, dict) and tracing.get("Mode") in TRACING_MODES:
            self.tracing_config = {"Mode": tracing["Mode"]}
        return original(self, config_updates)

    function_cls.update_configuration = update_configuration  # type: ignore[method-assign]
