"""The proof that everything composes: ``terraform apply`` of ``terraform/envs/local`` to a
local endpoint, the event source mappings Terraform created run by ``streamkit.local.Runner``,
a private ``redis-server``, orders written as a client writes them, and every sink's effect
observed: the S3 audit archive, Redis, SES email and SNS SMS, the Step Functions fulfilment, the
aggregates, the on-failure queue.

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
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from orderplatform.storefront import Storefront, plain
from scripts.redis_server import RedisServer

from streamkit import deserialize, serialize
from tests.helpers import AwsClients
from tests.helpers.terraform import Terraform

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
    terraform: Terraform,
    lambda_zip_dir: Path,
    local_endpoint: tuple[str, bool],
    redis_server: RedisServer,
) -> Iterator[Deployment]:
    endpoint_url, _ = local_endpoint
    # A fresh prefix per run: an external endpoint may hold an earlier run's resources.
    prefix = f"e2e{uuid.uuid4().hex[:6]}-"
    variables = [
        "-var", f"endpoint_url={endpoint_url}",
        "-var", f"lambda_zip_dir={lambda_zip_dir}",
        "-var", f"name_prefix={prefix}",
        "-var", f"redis_url={redis_server.url}",
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
    SDK's AWS_ENDPOINT_URL: every resource of the applied local environment, with the AWS
    mapping settings, plus ElastiCache and the fan-out functions in the VPC."""
    # Resource keys carry the name prefix (the monitoring module's); envs/aws's is "streamkit-".
    local_prefix = next(
        v.split("=", 1)[1] for v in deployment.variables if v.startswith("name_prefix=")
    )
    local_resources = [
        line.replace(local_prefix, "streamkit-")
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
        f"-var=lambda_zip_dir={lambda_zip_dir}", "-var=vpc_id=vpc-0123456789abcdef0",
        '-var=subnet_ids=["subnet-0123456789abcdef0","subnet-0123456789abcdef1"]',
        "-var=notification_sender=orders@shop.example", ok_codes=(2,), env=aws_env,
    )  # fmt: skip
    planned = {
        line.split("# ", 1)[1].split(" will be created", 1)[0]
        for line in plan.stdout.splitlines()
        if " will be created" in line
    }
    missing = sorted(set(local_resources) - planned)
    assert not missing, f"envs/aws lacks {missing}"
    assert "aws_elasticache_replication_group.redis" in planned
    assert "module.platform.aws_s3_bucket_policy.audit[0]" in planned  # TLS only
    assert plan.stdout.count('starting_position                  = "LATEST"') == 3
    assert plan.stdout.count("maximum_batching_window_in_seconds = 1") == 3
    assert plan.stdout.count("vpc_config {") == 2  # order_events, product_events


EXPECTED_SOURCES = {
    "workflow": {"orders"},
    "order_events": {"orders"},
    "product_events": {"products"},
}


def test_no_stream_has_more_than_two_mappings(terraform: Terraform, deployment: Deployment) -> None:
    """AWS allows two readers per stream shard: in the applied Terraform state, in the module's
    own accounting, and in what the Lambda API lists."""
    # The raw state (``state pull``: no provider schemas to load, unlike ``show -json``).
    state = json.loads(terraform.run(ENV, "state", "pull").stdout)
    per_stream: Counter[str] = Counter(
        instance["attributes"]["event_source_arn"]
        for resource in state["resources"]
        if resource["mode"] == "managed" and resource["type"] == "aws_lambda_event_source_mapping"
        for instance in resource["instances"]
    )
    streams = deployment.outputs["stream_arns"]
    assert set(per_stream) == set(streams.values())
    assert all(count <= 2 for count in per_stream.values()), per_stream
    # The module's own count (an output whose precondition fails the plan above two).
    assert deployment.outputs["mappings_per_stream"] == {
        name: per_stream[arn] for name, arn in streams.items()
    }
    ours = {f["function_arn"] for f in deployment.functions.values()}
    listed = Counter(
        m["EventSourceArn"]
        for page in deployment.aws.lambda_.get_paginator("list_event_source_mappings").paginate()
        for m in page["EventSourceMappings"]
        if m["FunctionArn"] in ours
    )
    assert listed == per_stream


def test_mappings_have_the_configured_settings(deployment: Deployment) -> None:
    lambda_ = deployment.aws.lambda_
    streams = deployment.outputs["stream_arns"]
    assert set(deployment.functions) == set(EXPECTED_SOURCES)
    for name, function in deployment.functions.items():
        assert set(function["mappings"]) == EXPECTED_SOURCES[name]
        for source, mapping_uuid in function["mappings"].items():
            mapping = lambda_.get_event_source_mapping(UUID=mapping_uuid)
            assert mapping["EventSourceArn"] == streams[source]
            assert mapping["FunctionArn"] == function["function_arn"]
            assert mapping["StartingPosition"] == "TRIM_HORIZON"
            assert mapping["BatchSize"] == 25
            assert mapping["ParallelizationFactor"] == 4
            assert mapping["MaximumBatchingWindowInSeconds"] == 0
            assert mapping["MaximumRetryAttempts"] == 3
            assert mapping["BisectBatchOnFunctionError"] is True
            assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == function["dlq_arn"]
            filters = [
                json.loads(f["Pattern"])
                for f in mapping.get("FilterCriteria", {}).get("Filters", [])
            ]
            if name == "workflow":
                assert filters == [{"eventName": ["INSERT", "MODIFY"]}]
            else:
                assert filters == []  # a fan-out sees every change


def test_every_function_redacts_the_pii_fields_from_its_logs(deployment: Deployment) -> None:
    # The same list the audit archive redacts; merged last, so no extra environment undoes it.
    for function in deployment.functions.values():
        configuration = deployment.aws.lambda_.get_function_configuration(
            FunctionName=function["function_arn"]
        )
        variables = configuration["Environment"]["Variables"]
        assert set(variables["STREAMKIT_LOG_REDACT_FIELDS"].split(",")) == {
            "email",
            "phone",
            "address",
        }


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
    assert "ChangeToHandlerLatency" in text


def test_audit_bucket_is_private_encrypted_and_versioned(deployment: Deployment) -> None:
    s3 = deployment.aws.s3
    bucket = deployment.outputs["audit_bucket"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert (
        rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
        == (deployment.outputs["kms_key_arn"])
    )
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    # The TLS-only policy is AWS's (envs/aws plans it); the plain-HTTP emulator would refuse
    # every request under it.


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
_AUDIT = {"ArchiveChanges": {"s3:PutObject"}, "EncryptArchive": {"kms:GenerateDataKey"}}
DATA_ACTIONS: dict[str, dict[str, set[str]]] = {
    "order_events": {
        "IdempotencyRecords": _IDEMPOTENCY,
        **_AUDIT,
        "SendEmail": {"ses:SendEmail"},
        "SendSms": {"sns:Publish"},
        "AddToAggregates": {"dynamodb:UpdateItem"},
        "RecordMarkers": {"dynamodb:PutItem", "dynamodb:BatchGetItem"},
        "StartFulfilment": {"states:StartExecution"},
    },
    "product_events": {"IdempotencyRecords": _IDEMPOTENCY, **_AUDIT},
    "workflow": {
        "AdvanceOrders": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "ReserveStock": {"dynamodb:UpdateItem"},
    },
}


def test_roles_grant_only_named_actions_on_named_resources(deployment: Deployment) -> None:
    iam = deployment.aws.iam
    bucket_arn = f"arn:aws:s3:::{deployment.outputs['audit_bucket']}"
    for name, function in deployment.functions.items():
        role = function["role_name"]
        policy_names = iam.list_role_policies(RoleName=role)["PolicyNames"]
        assert len(policy_names) == 1, (name, policy_names)
        document = iam.get_role_policy(RoleName=role, PolicyName=policy_names[0])["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        statements = {
            s["Sid"]: (
                set(as_list(s["Action"])),
                set(as_list(s.get("Resource", []))),
                set(as_list(s.get("NotResource", []))),
            )
            for s in document["Statement"]
        }
        assert set(statements) == COMMON_SIDS | set(DATA_ACTIONS[name]), name
        for sid, (actions, resources, not_resources) in statements.items():
            assert all("*" not in action for action in actions), (name, sid, actions)
            if sid == "SendSms":
                # SMS has no ARN: everything that is not a topic, i.e. phone numbers only.
                assert (resources, not_resources) == (set(), {"arn:aws:sns:*:*:*"})
            elif sid != "WriteTraces":  # X-Ray has no resource-level permissions
                assert resources and "*" not in resources, (name, sid, resources)
        for sid, actions in DATA_ACTIONS[name].items():
            assert statements[sid][0] == actions, (name, sid)
        if "ArchiveChanges" in statements:
            assert statements["ArchiveChanges"][1] == {f"{bucket_arn}/audit/*"}
        if "StartFulfilment" in statements:
            assert statements["StartFulfilment"][1] == {deployment.outputs["state_machine_arn"]}
        if "SendEmail" in statements:
            (identity,) = statements["SendEmail"][1]
            assert identity.endswith(f":identity/{deployment.outputs['notification_sender']}")
        sources = {deployment.outputs["stream_arns"][s] for s in function["mappings"]}
        assert statements["ReadSourceStreams"][1] == sources, name
        assert statements["SendFailedBatchesToDlq"][:2] == (
            {"sqs:SendMessage"},
            {function["dlq_arn"]},
        )


PII = {
    "email": "ada@example.com",
    "phone": "+15555550123",
    "address": {"street": "1 Secret Lane", "city": "Privacyville"},
}


def order(order_id: str, lines: list[tuple[str, int]], total: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {"pk": f"ORDER#{order_id}", "status": "PLACED", "version": 1,
            "customer": f"customer-{order_id}", "email": f"{order_id}@example.com",
            "total": Decimal(total), "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
            "payment_token": "tok", "updated_at": now, "placed_at": now, **extra}  # fmt: skip


def product(sku: str, stock: int, price: int) -> dict[str, Any]:
    return {"pk": f"PRODUCT#{sku}", "stock": stock, "price": price, "name": sku,
            "updated_at": int(time.time() * 1000)}  # fmt: skip


def readback(platform: Deployment, path: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{platform.endpoint_url}{path}", timeout=30) as response:
        messages: list[dict[str, Any]] = json.loads(response.read())["messages"]
    return messages


def audit_lines(platform: Deployment) -> list[tuple[str, str]]:
    """(key, body) of every audit object and version in the bucket."""
    s3 = platform.aws.s3
    bucket = platform.outputs["audit_bucket"]
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
            found.append((version["Key"], body["Body"].read().decode()))
    return found


def test_orders_flow_through_every_sink(
    running_platform: Deployment, local_endpoint: tuple[str, bool], redis_server: RedisServer
) -> None:
    import redis

    platform = running_platform
    aws = platform.aws
    _, embedded = local_endpoint
    cache = redis.Redis.from_url(redis_server.url)
    storefront = Storefront(
        cache,
        aws.dynamodb,
        orders_table=platform.tables["orders"],
        products_table=platform.tables["products"],
    )

    platform.put("products", product("widget", 10, 5))
    platform.put("products", product("gadget", 3, 8))
    ok = order("ok", [("widget", 2), ("gadget", 1)], "25.50", **PII)
    platform.put("orders", ok)
    # A duplicate producer write: the same item again (no sink may count it twice).
    aws.dynamodb.put_item(
        TableName=platform.tables["orders"], Item=serialize(ok),
        ConditionExpression="#s = :placed AND #v = :one",
        ExpressionAttributeNames={"#s": "status", "#v": "version"},
        ExpressionAttributeValues={":placed": {"S": "PLACED"}, ":one": {"N": "1"}},
    )  # fmt: skip
    # A reader caches the order and a product while they change.
    assert storefront.get_order("ok") is not None and storefront.get_product("widget") is not None
    platform.put("orders", order("declined", [("widget", 1)], "5", payment_token="decline"))
    platform.put("orders", order("greedy", [("gadget", 5)], "40"))  # out of stock -> CANCELLED
    platform.put("orders", order("poison", [("widget", 1)], "5", payment_token="poison"))
    platform.put("orders", order("cancelme", [("widget", 1)], "5"))
    aws.dynamodb.update_item(
        TableName=platform.tables["orders"], Key={"pk": {"S": "ORDER#cancelme"}},
        UpdateExpression="SET #s = :cancelled, #v = #v + :one, updated_at = :now",
        ConditionExpression="#s IN (:placed, :validated)",
        ExpressionAttributeNames={"#s": "status", "#v": "version"},
        ExpressionAttributeValues={
            ":cancelled": {"S": "CANCELLED"}, ":one": {"N": "1"}, ":placed": {"S": "PLACED"},
            ":validated": {"S": "VALIDATED"}, ":now": {"N": str(int(time.time() * 1000))},
        },
    )  # fmt: skip

    def status(order_id: str) -> str | None:
        item = platform.get("orders", f"ORDER#{order_id}")
        return None if item is None else str(item["status"])

    final = {
        "ok": "SHIPPED",
        "declined": "PAYMENT_FAILED",
        "greedy": "CANCELLED",
        "cancelme": "CANCELLED",
        "poison": "PLACED",
    }
    wait_for(lambda: all(status(o) == s for o, s in final.items()), what=f"orders reach {final}")
    workflow_dlq = Inbox(aws, platform.functions["workflow"]["dlq_url"])
    wait_for(lambda: workflow_dlq.poll(), what="the poison order's batch in the workflow DLQ")

    orders = {o: platform.get("orders", f"ORDER#{o}") for o in final}
    versions = {o: int(item["version"]) for o, item in orders.items() if item is not None}
    assert versions["ok"] == 5 and versions["greedy"] == 5 and versions["declined"] == 3
    assert versions["poison"] == 1

    # Fulfilment: one execution, named after the order and the version that was RESERVED.
    sfn = aws.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=platform.outputs["state_machine_arn"])[
        "executions"
    ]
    assert [(e["name"], e["status"]) for e in executions] == [("ok-v4", "SUCCEEDED")]
    shipped = orders["ok"]
    assert shipped is not None and int(shipped["updated_at"]) >= int(ok["updated_at"])
    widget, gadget = (
        platform.get("products", "PRODUCT#widget"),
        platform.get("products", "PRODUCT#gadget"),
    )
    assert widget is not None and gadget is not None
    assert (widget["stock"], gadget["stock"]) == (8, 2)  # only "ok" reserved stock

    # Audit: every change exactly once (one version of one object each), no PII anywhere.
    changes = sum(versions.values()) + 2 + 2  # orders, 2 product puts, 2 reservations
    lines = wait_for(
        at_least(changes, lambda: audit_lines(platform)), what=f"{changes} audit lines"
    )
    time.sleep(1.0)  # anything extra would show now
    lines = audit_lines(platform)
    assert len(lines) == changes, sorted(k for k, _ in lines)
    assert len({key for key, _ in lines}) == changes
    for key, body in lines:
        assert key.startswith("audit/table=") and "/dt=" in key and "/hour=" in key
        assert body.endswith("\n") and body.count("\n") == 1
        for secret in ("ada@example.com", "+15555550123", "Secret Lane", "Privacyville"):
            assert secret not in body, (key, secret)
        for order_id in final:
            assert f"{order_id}@example.com" not in body
    records = [json.loads(body) for _, body in lines]
    ok_trail = sorted(
        (r for r in records if r["keys"] == {"pk": "ORDER#ok"}),
        key=lambda r: int(r["sequence_number"]),
    )
    assert [r["new_status"] for r in ok_trail] == [
        "PLACED",
        "VALIDATED",
        "PAID",
        "RESERVED",
        "SHIPPED",
    ]
    assert ok_trail[0]["new_image"]["email"] == "[REDACTED]"
    assert ok_trail[0]["new_image"]["address"] == "[REDACTED]"

    # Redis: every change invalidated once; no reader sees a value from before a change.
    for order_id, version in versions.items():
        generation = cache.get(f"gen:order:{order_id}")
        assert generation is not None and int(generation) == version, (order_id, generation)
    assert int(cache.get("gen:product:widget") or 0) == 2  # put, reservation
    assert storefront.get_order("ok") == plain(platform.get("orders", "ORDER#ok"))
    assert storefront.get_product("widget") == plain(platform.get("products", "PRODUCT#widget"))

    # Analytics: orders per final status, revenue of the shipped order.
    def settled() -> dict[str, Any]:
        aggregates = {a["pk"]: a for a in platform.scan("aggregates")}
        counts = {
            k.removeprefix("STATUS#"): v["count"]
            for k, v in aggregates.items()
            if k.startswith("STATUS#") and v["count"]
        }
        return (
            aggregates
            if counts == {"SHIPPED": 1, "PAYMENT_FAILED": 1, "CANCELLED": 2, "PLACED": 1}
            else {}
        )

    aggregates = wait_for(settled, what="aggregates settle")
    revenue = [a for k, a in aggregates.items() if k.startswith("REVENUE#")]
    assert sum(a["revenue"] for a in revenue) == Decimal("25.50")
    assert sum(a["orders"] for a in revenue) == 1

    # Notifications: placed x5, shipped x1, cancelled x2; SMS only for the order with a phone.
    if embedded:
        expected = Counter(
            {f"Order {o} placed": 1 for o in final}
            | {"Order ok shipped": 1, "Order greedy cancelled": 1, "Order cancelme cancelled": 1}
        )
        emails = wait_for(
            at_least(8, lambda: readback(platform, "/_streamkit/ses/messages")), what="8 emails"
        )
        time.sleep(0.5)
        emails = readback(platform, "/_streamkit/ses/messages")
        assert Counter(m["subject"] for m in emails) == expected
        assert {m["source"] for m in emails} == {platform.outputs["notification_sender"]}
        assert all(len(m["destinations"]) == 1 for m in emails)
        sms = readback(platform, "/_streamkit/sns/sms")
        assert sorted((m["phone_number"], m["message"]) for m in sms) == [
            ("+15555550123", "Order ok placed, total 25.50."),
            ("+15555550123", "Order ok shipped."),
        ]

    # Only the poison order ran out of retries.
    for name, function in platform.functions.items():
        if name != "workflow":
            assert Inbox(aws, function["dlq_url"]).poll() == [], f"{name} sent batches to its DLQ"


def test_security_of_the_deployed_plan(terraform: Terraform, deployment: Deployment) -> None:
    """``terraform show -json`` of the plan after apply: least privilege, encryption, no public
    buckets (rules and why the plan is taken after apply: tests/helpers/security_checks.py)."""
    from tests.helpers import security_checks as rules

    terraform.run(
        ENV, "plan", "-input=false", "-out=security.tfplan", *deployment.variables, ok_codes=(0,)
    )
    plan = json.loads(terraform.run(ENV, "show", "-json", "security.tfplan").stdout)
    # Not vacuous: the platform has each kind of store the rules look at.
    for kind in ("aws_sqs_queue", "aws_sns_topic", "aws_s3_bucket", "aws_dynamodb_table",
                 "aws_cloudwatch_log_group", "aws_iam_role_policy", "aws_kms_key"):  # fmt: skip
        assert rules.state_resources(plan, kind), f"no {kind} in the plan's state"
    violations = (
        rules.identity_policy_violations(plan)
        + rules.resource_policy_violations(plan)
        + rules.encryption_violations(plan)
        + rules.public_access_violations(plan)
    )
    assert violations == []
