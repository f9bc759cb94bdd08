"""Security rules checked on ``terraform show -json`` of a plan of the order platform.

The plan is made after ``apply`` (tests/e2e/test_platform.py), so its ``prior_state`` holds
every attribute as deployed: rendered policy JSON, key ids, encryption settings. A plan before
apply knows neither the policies (their documents name ARNs that do not exist yet, and the
consumers' statements come from dynamic blocks the plan's configuration omits) nor the keys.

Rules (each returns the list of violations; empty means the rule holds):

- identity policies (roles' inline and managed policies): no ``*`` in an action of a data-plane
  service, no ``"Action": "*"``, no ``iam:PassRole`` on a wildcard resource;
- resource policies (KMS key policies, bucket policies, queue and topic policies): a wildcard
  action only where AWS documents it: the default key policy's grant to the account root, which
  hands the key's use to IAM (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html),
  a grant to an AWS service principal bounded by a Condition, or a Deny; never an Allow to ``*``
  without a Condition;
- every SQS queue, SNS topic, S3 bucket, DynamoDB table and CloudWatch log group is encrypted
  (a KMS key, or SQS-managed SSE for queues), and every bucket blocks public access (all four);
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

__all__ = [
    "encryption_violations",
    "identity_policy_violations",
    "public_access_violations",
    "resource_policy_violations",
    "state_resources",
]

DATA_PLANE_SERVICES = frozenset(
    {"dynamodb", "sqs", "sns", "s3", "kms", "ses", "states", "logs", "lambda", "xray",
     "cloudwatch", "events", "secretsmanager", "ssm", "kinesis"}
)  # fmt: skip
PUBLIC_ACCESS_SETTINGS = (
    "block_public_acls",
    "block_public_policy",
    "ignore_public_acls",
    "restrict_public_buckets",
)


def state_resources(plan: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Resources (managed and data) of type ``kind`` in the plan's prior state."""

    def walk(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield from module.get("resources", [])
        for child in module.get("child_modules", []):
            yield from walk(child)

    root = (plan.get("prior_state") or {}).get("values", {}).get("root_module", {})
    return [r for r in walk(root) if r["type"] == kind]


def _statements(policy: Any) -> list[dict[str, Any]]:
    document = json.loads(policy) if isinstance(policy, str) else policy
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def identity_policies(plan: dict[str, Any]) -> list[tuple[str, Any]]:
    found = []
    for kind in ("aws_iam_role_policy", "aws_iam_policy"):
        for resource in state_resources(plan, kind):
            found.append((resource["address"], resource["values"]["policy"]))
    return found


def identity_policy_violations(plan: dict[str, Any]) -> list[str]:
    violations = []
    policies = identity_policies(plan)
    if not policies:
        return ["no identity policy in the state: nothing was checked"]
    for address, policy in policies:
        for s in _statements(policy):
            if s.get("Effect") != "Allow":
                continue
            actions = [str(a) for a in _as_list(s.get("Action"))]
            resources = [str(r) for r in _as_list(s.get("Resource"))]
            if s.get("NotAction"):
                violations.append(f"{address}: NotAction grants everything else")
            for action in actions:
                service, _, name = action.partition(":")
                if action == "*" or (service.lower() in DATA_PLANE_SERVICES and "*" in name):
                    violations.append(f"{address}: wildcard action {action}")
                if action.lower() in ("iam:passrole", "iam:*") and any("*" in r for r in resources):
                    violations.append(f"{address}: {action} on {resources}")
    return violations


def resource_policy_violations(plan: dict[str, Any]) -> list[str]:
    violations = []
    checked = 0
    for kind in ("aws_kms_key", "aws_s3_bucket_policy", "aws_sqs_queue_policy", "aws_sns_topic_policy", "aws_sqs_queue", "aws_sns_topic"):  # fmt: skip
        for resource in state_resources(plan, kind):
            policy = resource["values"].get("policy")
            if not policy:
                continue
            for s in _statements(policy):
                checked += 1
                if s.get("Effect") == "Deny":
                    continue
                principal = s.get("Principal")
                aws = principal.get("AWS") if isinstance(principal, dict) else principal
                service = principal.get("Service") if isinstance(principal, dict) else None
                if "*" in _as_list(aws) and not s.get("Condition"):
                    violations.append(f"{resource['address']}: allows every principal: {s}")
                if not any("*" in str(a) for a in _as_list(s.get("Action"))):
                    continue
                root = bool(aws) and all(str(p).endswith(":root") for p in _as_list(aws))
                if not (root or (service and s.get("Condition"))):
                    violations.append(f"{resource['address']}: wildcard action in {s}")
    if not checked:
        violations.append("no resource policy in the state: nothing was checked")
    return violations


def encryption_violations(plan: dict[str, Any]) -> list[str]:
    missing = []
    for r in state_resources(plan, "aws_sqs_queue"):
        v = r["values"]
        if not (v.get("sqs_managed_sse_enabled") or v.get("kms_master_key_id")):
            missing.append(r["address"])
    for r in state_resources(plan, "aws_sns_topic"):
        if not r["values"].get("kms_master_key_id"):
            missing.append(r["address"])
    for r in state_resources(plan, "aws_dynamodb_table"):
        sse = r["values"].get("server_side_encryption") or []
        if not (sse and sse[0].get("enabled")):
            missing.append(r["address"])
    for r in state_resources(plan, "aws_cloudwatch_log_group"):
        if not r["values"].get("kms_key_id"):
            missing.append(r["address"])
    encrypted = {
        r["values"]["bucket"]
        for r in state_resources(plan, "aws_s3_bucket_server_side_encryption_configuration")
        if any(
            rule.get("apply_server_side_encryption_by_default")
            for rule in r["values"].get("rule") or []
        )
    }
    for r in state_resources(plan, "aws_s3_bucket"):
        if r["values"]["bucket"] not in encrypted:
            missing.append(r["address"])
    return [f"not encrypted: {address}" for address in missing]


def public_access_violations(plan: dict[str, Any]) -> list[str]:
    blocked = {
        r["values"]["bucket"]
        for r in state_resources(plan, "aws_s3_bucket_public_access_block")
        if all(r["values"].get(s) is True for s in PUBLIC_ACCESS_SETTINGS)
    }
    return [
        f"public access not fully blocked: {r['address']}"
        for r in state_resources(plan, "aws_s3_bucket")
        if r["values"]["bucket"] not in blocked
    ]
