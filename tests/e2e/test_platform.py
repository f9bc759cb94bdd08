"""The proof that everything composes: ``terraform apply`` of ``terraform/envs/local`` to a
local endpoint, the event source mappings Terraform created run by ``streamkit.local.Runner``,
orders written as a client writes them, and every consumer's effect observed.

One apply per module (it is the slow part: about a minute and a half on a busy 2-core
machine); the plan after it must be empty; ``terraform destroy`` runs at teardown and must
succeed.

Endpoint: a dedicated embedded emulator, or ``STREAMKIT_ENDPOINT_URL`` (e.g. LocalStack), in
which case that endpoint runs the mappings itself and no local runner is started.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from streamkit import deserialize, serialize
from tests.e2e.conftest import Terraform
from tests.helpers import AwsClients

pytestmark = pytest.mark.timeout(600)

ENV = "envs/local"
PARALLELISM = "-parallelism=30"
T = TypeVar("T")


@dataclass
class Deployment:
    endpoint_url: str
    aws: AwsClients
    outputs: dict[str, Any]
    variables: list[str]  # -var arguments of the apply

    @property
    def tables(self) -> dict[str, str]:
        return dict(self.outputs["table_names"])

    @property
    def functions(self) -> dict[str, dict[str, Any]]:
        return dict(self.outputs["functions"])

    def put(self, table: str, item: dict[str, Any]) -> None:
        self.aws.dynamodb.put_item(TableName=self.tables[table], Item=serialize(item))

    def get(self, table: str, pk: str) -> dict[str, Any] | None:
        item = self.aws.dynamodb.get_item(
            TableName=self.tables[table], Key={"pk": {"S": pk}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else deserialize(item)

    def scan(self, table: str) -> list[dict[str, Any]]:
        pages = self.aws.dynamodb.get_paginator("scan").paginate(
            TableName=self.tables[table], ConsistentRead=True
        )
        return [deserialize(item) for page in pages for item in page["Items"]]


def wait_for(condition: Callable[[], T], *, what: str, timeout: float = 60.0) -> T:
    """Poll until ``condition()`` is truthy (returned); TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout}s (last: {value!r})")
        time.sleep(0.2)


def at_least(count: int, fetch: Callable[[], list[T]]) -> Callable[[], list[T]]:
    """A condition for :func:`wait_for`: ``fetch()`` once it holds ``count`` items, else []."""

    def condition() -> list[T]:
        items = fetch()
        return items if len(items) >= count else []

    return condition


def as_list(value: Any) -> list[Any]:
    """An IAM policy element (a string or a list of strings) as a list."""
    return value if isinstance(value, list) else [value]


class Inbox:
    """Everything an SQS queue received, accumulated across polls (messages are deleted)."""

    def __init__(self, aws: AwsClients, queue_url: str) -> None:
        self.aws = aws
        self.queue_url = queue_url
        self.bodies: list[Any] = []

    def poll(self) -> list[Any]:
        while True:
            messages = self.aws.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return list(self.bodies)
            for message in messages:
                self.bodies.append(json.loads(message["Body"]))
                self.aws.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture(scope="module")
def local_endpoint() -> Iterator[tuple[str, bool]]:
    """(endpoint URL, whether it is our embedded emulator)."""
    external = os.environ.get("STREAMKIT_ENDPOINT_URL")
    if external:
        yield external.rstrip("/"), False
        return
    from streamkit.local.emulator import Emulator

    with Emulator(port=0) as emulator:
        yield emulator.endpoint_url, True


@pytest.fixture(scope="module")
def deployment(
    terraform: Terraform, lambda_zip_dir: Path, local_endpoint: tuple[str, bool]
) -> Iterator[Deployment]:
    endpoint_url, _ = local_endpoint
    # A fresh prefix per run: an external endpoint may hold an earlier run's resources.
    prefix = f"e2e{uuid.uuid4().hex[:6]}-"
    variables = [
        "-var", f"endpoint_url={endpoint_url}",
        "-var", f"lambda_zip_dir={lambda_zip_dir}",
        "-var", f"name_prefix={prefix}",
    ]  # fmt: skip
    terraform.run(ENV, "init", "-input=false")
    try:
        # More than the default 10 operations at once: the provider waits ~25 s on each SQS
        # queue's attributes, and six queues would otherwise hold the slots the rest needs.
        terraform.run(ENV, "apply", "-auto-approve", "-input=false", PARALLELISM, *variables)
        raw = json.loads(terraform.run(ENV, "output", "-json").stdout)
        outputs = {name: entry["value"] for name, entry in raw.items()}
        yield Deployment(endpoint_url, AwsClients(endpoint_url, "us-east-1"), outputs, variables)
    finally:
        # Also after a failed apply: whatever was created goes.
        terraform.run(ENV, "destroy", "-auto-approve", "-input=false", PARALLELISM, *variables)


@pytest.fixture(scope="module")
def running_platform(
    deployment: Deployment,
    local_endpoint: tuple[str, bool],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    """The deployment with its mappings running (a local Runner for the embedded emulator)."""
    _, embedded = local_endpoint
    if not embedded:
        yield deployment  # the endpoint (e.g. LocalStack) runs its own mappings
        return
    from streamkit.local.esm.destinations import DeliveryPolicy
    from streamkit.local.esm.processor import RetryDelay
    from streamkit.local.esm.runner import Runner

    ours = {f["function_arn"] for f in deployment.functions.values()}
    runner = Runner(
        deployment.endpoint_url,
        tmp_path_factory.mktemp("runner-state"),
        reconcile_interval=0.5,
        mapping_filter=lambda mapping: mapping.get("FunctionArn") in ours,
        retry_delay=RetryDelay(initial=0.05, maximum=0.5),
        delivery=DeliveryPolicy(initial_delay=0.05, max_delay=0.5),
    )
    runner.start()
    try:
        yield deployment
    finally:
        runner.stop()


def test_apply_then_plan_is_empty(terraform: Terraform, deployment: Deployment) -> None:
    result = terraform.run(
        ENV, "plan", "-detailed-exitcode", "-input=false", *deployment.variables, ok_codes=(0, 2)
    )
    assert result.returncode == 0, f"plan after apply is not empty:\n{result.stdout[-6000:]}"


def test_aws_environment_plans_the_same_resources(
    terraform: Terraform, deployment: Deployment, lambda_zip_dir: Path
) -> None:
    """envs/aws (no endpoint settings of its own) planned against the emulator through the
    SDK's AWS_ENDPOINT_URL: the same resources as the applied local environment, with the
    AWS mapping settings."""
    local_resources = [
        line
        for line in terraform.run(ENV, "state", "list").stdout.splitlines()
        if line.startswith("module.") and ".data." not in line
    ]
    terraform.run("envs/aws", "init", "-input=false")
    aws_env = {
        "AWS_ENDPOINT_URL": deployment.endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    plan = terraform.run(
        "envs/aws", "plan", "-input=false", "-detailed-exitcode",
        f"-var=lambda_zip_dir={lambda_zip_dir}", ok_codes=(2,), env=aws_env,
    )  # fmt: skip
    assert f"Plan: {len(local_resources)} to add, 0 to change, 0 to destroy." in plan.stdout
    assert plan.stdout.count('starting_position                  = "LATEST"') == 7
    assert plan.stdout.count("maximum_batching_window_in_seconds = 1") == 7


def test_mappings_have_the_configured_settings(deployment: Deployment) -> None:
    lambda_ = deployment.aws.lambda_
    streams = deployment.outputs["stream_arns"]
    expected_sources = {
        "audit": {"orders", "products"},
        "cache": {"orders", "products"},
        "notify": {"orders"},
        "analytics": {"orders"},
        "workflow": {"orders"},
    }
    for name, function in deployment.functions.items():
        assert set(function["mappings"]) == expected_sources[name]
        for source, mapping_uuid in function["mappings"].items():
            mapping = lambda_.get_event_source_mapping(UUID=mapping_uuid)
            assert mapping["EventSourceArn"] == streams[source]
            assert mapping["FunctionArn"] == function["function_arn"]
            assert mapping["StartingPosition"] == "TRIM_HORIZON"
            assert mapping["BatchSize"] == 100
            assert mapping["MaximumBatchingWindowInSeconds"] == 0
            assert mapping["MaximumRetryAttempts"] == 3
            assert mapping["BisectBatchOnFunctionError"] is True
            assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == function["dlq_arn"]
            filters = [
                json.loads(f["Pattern"])
                for f in mapping.get("FilterCriteria", {}).get("Filters", [])
            ]
            if name == "notify":
                assert filters == [
                    {"eventName": ["MODIFY"],
                     "dynamodb": {"NewImage": {"status": {"S": ["PAID", "SHIPPED"]}}}}
                ]  # fmt: skip
            elif name == "cache":
                assert filters == [{"eventName": ["MODIFY", "REMOVE"]}]
            elif name == "workflow":
                assert filters == [{"eventName": ["INSERT", "MODIFY"]}]
            else:
                assert filters == []


def test_every_consumer_has_alarms_and_the_dashboard_exists(deployment: Deployment) -> None:
    cloudwatch = deployment.aws.client("cloudwatch")
    topic = deployment.outputs["alarm_topic_arn"]
    alarms = {
        a["AlarmName"]: a
        for page in cloudwatch.get_paginator("describe_alarms").paginate()
        for a in page["MetricAlarms"]
        if a["AlarmActions"] == [topic]
    }
    expected = {
        f"{function['function_name']}-{kind}"
        for function in deployment.functions.values()
        for kind in ("iterator-age", "errors", "dlq-not-empty")
    }
    assert set(alarms) == expected
    for function in deployment.functions.values():
        age = alarms[f"{function['function_name']}-iterator-age"]
        assert (age["MetricName"], age["Statistic"]) == ("IteratorAge", "Maximum")
        depth = alarms[f"{function['function_name']}-dlq-not-empty"]
        assert depth["Dimensions"] == [
            {"Name": "QueueName", "Value": function["dlq_url"].rsplit("/", 1)[1]}
        ]
    body = json.loads(
        cloudwatch.get_dashboard(DashboardName=deployment.outputs["dashboard_name"])[
            "DashboardBody"
        ]
    )
    text = json.dumps(body)
    assert "RecordsProcessed" in text and "RecordsFailed" in text and "IteratorAge" in text


COMMON_SIDS = {
    "WriteOwnLogs",
    "ReadSourceStreams",
    "SendFailedBatchesToDlq",
    "DecryptWithPlatformKey",
    "WriteTraces",
}
_IDEMPOTENCY = {
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
}
DATA_ACTIONS: dict[str, dict[str, set[str]]] = {
    "audit": {
        "WriteAudit": {"dynamodb:PutItem", "dynamodb:BatchWriteItem"},
        "IdempotencyRecords": _IDEMPOTENCY,
    },
    "cache": {"PublishInvalidations": {"sns:Publish"}, "IdempotencyRecords": _IDEMPOTENCY},
    "notify": {"SendNotifications": {"sqs:SendMessage"}, "IdempotencyRecords": _IDEMPOTENCY},
    "analytics": {
        "AddToAggregates": {"dynamodb:UpdateItem"},
        "RecordMarkers": {"dynamodb:PutItem", "dynamodb:BatchGetItem"},
    },
    "workflow": {
        "AdvanceOrders": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "ReserveStock": {"dynamodb:UpdateItem"},
    },
}


def test_roles_grant_only_named_actions_on_named_resources(deployment: Deployment) -> None:
    iam = deployment.aws.iam
    for name, function in deployment.functions.items():
        role = function["role_name"]
        policy_names = iam.list_role_policies(RoleName=role)["PolicyNames"]
        assert len(policy_names) == 1, (name, policy_names)
        document = iam.get_role_policy(RoleName=role, PolicyName=policy_names[0])["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        statements = {
            s["Sid"]: (set(as_list(s["Action"])), set(as_list(s["Resource"])))
            for s in document["Statement"]
        }
        assert set(statements) == COMMON_SIDS | set(DATA_ACTIONS[name]), name
        for sid, (actions, resources) in statements.items():
            assert all("*" not in action for action in actions), (name, sid, actions)
            if sid != "WriteTraces":  # X-Ray has no resource-level permissions
                assert "*" not in resources, (name, sid, resources)
        for sid, actions in DATA_ACTIONS[name].items():
            assert statements[sid][0] == actions, (name, sid)
        sources = {deployment.outputs["stream_arns"][s] for s in function["mappings"]}
        assert statements["ReadSourceStreams"][1] == sources, name
        assert statements["SendFailedBatchesToDlq"] == ({"sqs:SendMessage"}, {function["dlq_arn"]})


def order(order_id: str, lines: list[tuple[str, int]], total: str, **extra: Any) -> dict[str, Any]:
    return {"pk": f"ORDER#{order_id}", "status": "PLACED", "version": 1,
            "customer": f"{order_id}@example.com", "total": Decimal(total),
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines], **extra}  # fmt: skip


def test_orders_flow_through_every_consumer(running_platform: Deployment) -> None:
    platform = running_platform
    aws = platform.aws
    # Observe the cache topic through an SQS subscription, as a cache node would.
    cache_queue = aws.sqs.create_queue(QueueName=f"{platform.tables['orders']}-cache-observer")[
        "QueueUrl"
    ]
    cache_queue_arn = aws.sqs.get_queue_attributes(
        QueueUrl=cache_queue, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    aws.sns.subscribe(
        TopicArn=platform.outputs["cache_topic_arn"],
        Protocol="sqs",
        Endpoint=cache_queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    notifications = Inbox(aws, platform.outputs["notifications_queue_url"])
    invalidations = Inbox(aws, cache_queue)

    platform.put("products", {"pk": "PRODUCT#widget", "stock": 10, "price": 5, "name": "widget"})
    platform.put("products", {"pk": "PRODUCT#gadget", "stock": 3, "price": 8, "name": "gadget"})
    platform.put("orders", order("ok", [("widget", 2), ("gadget", 1)], "25.50"))
    platform.put("orders", order("declined", [("widget", 1)], "5", payment_token="decline"))

    def status(order_id: str) -> str | None:
        item = platform.get("orders", f"ORDER#{order_id}")
        return None if item is None else str(item["status"])

    final = {"ok": "SHIPPED", "declined": "PAYMENT_FAILED"}
    wait_for(lambda: all(status(o) == s for o, s in final.items()), what=f"orders reach {final}")

    # workflow: the whole pipeline ran, stock was reserved.
    shipped = platform.get("orders", "ORDER#ok")
    assert shipped is not None and shipped["tracking_id"].startswith("trk-")
    declined = platform.get("orders", "ORDER#declined")
    assert declined is not None and declined["workflow_error"]["type"] == "PaymentDeclinedError"
    widget, gadget = (
        platform.get("products", "PRODUCT#widget"),
        platform.get("products", "PRODUCT#gadget"),
    )
    assert widget is not None and gadget is not None
    assert (widget["stock"], gadget["stock"]) == (8, 2)

    # audit: 5 changes of "ok" (PLACED..SHIPPED), 3 of "declined", 4 of products (2 puts, 2
    # reservations).
    audit = wait_for(at_least(12, lambda: platform.scan("audit")), what="12 audit items")
    assert len(audit) == 12
    ok_trail = sorted(
        (a for a in audit if a["pk"] == f"{platform.tables['orders']}#ORDER#ok"),
        key=lambda a: int(a["sk"].split("#")[1]),
    )
    assert [a.get("new_status") for a in ok_trail] == [
        "PLACED",
        "VALIDATED",
        "PAID",
        "RESERVED",
        "SHIPPED",
    ]

    # notify: PAID and SHIPPED of the paid order; nothing for the declined one.
    sent = wait_for(at_least(2, lambda: notifications.poll()), what="2 notifications")
    assert sorted((m["order_id"], m["status"], m["template"]) for m in sent) == [
        ("ok", "PAID", "payment-received"),
        ("ok", "SHIPPED", "order-shipped"),
    ]

    # cache: every MODIFY (4 of "ok", 2 of "declined", 2 reservations), no INSERT.
    seen = wait_for(at_least(8, lambda: invalidations.poll()), what="8 invalidations")
    keys = sorted(m["keys"]["pk"] for m in seen)
    assert keys == ["ORDER#declined"] * 2 + ["ORDER#ok"] * 4 + ["PRODUCT#gadget", "PRODUCT#widget"]
    assert {m["reason"] for m in seen} == {"MODIFY"}

    # analytics: revenue of the paid order, one order per end state.
    def settled() -> dict[str, Any]:
        aggregates = {a["pk"]: a for a in platform.scan("aggregates")}
        counts = {
            k.removeprefix("STATUS#"): v["count"]
            for k, v in aggregates.items()
            if k.startswith("STATUS#") and v["count"]
        }
        return (
            aggregates
            if sum(counts.values()) == 2 and any(k.startswith("REVENUE#") for k in aggregates)
            else {}
        )

    aggregates = wait_for(settled, what="aggregates settle")
    counts = {
        k.removeprefix("STATUS#"): v["count"]
        for k, v in aggregates.items()
        if k.startswith("STATUS#") and v["count"]
    }
    assert counts == {"SHIPPED": 1, "PAYMENT_FAILED": 1}
    revenue = [a for k, a in aggregates.items() if k.startswith("REVENUE#")]
    assert sum(a["revenue"] for a in revenue) == Decimal("25.50")
    assert sum(a["orders"] for a in revenue) == 1

    # Nothing ran out of retries.
    for name, function in platform.functions.items():
        assert Inbox(aws, function["dlq_url"]).poll() == [], f"{name} sent batches to its DLQ"
