"""The security rules of tests/helpers/security_checks.py catch what they are meant to catch.

The e2e test runs them on the real plan (where they must find nothing); here each rule meets
a plan that breaks it, so a rule that silently checked nothing would fail.
"""

from __future__ import annotations

import json
from typing import Any

from tests.helpers import security_checks as rules


def _plan(*resources: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "prior_state": {
            "values": {
                "root_module": {
                    "resources": [],
                    "child_modules": [
                        {
                            "resources": [
                                {
                                    "address": f"module.m.{kind}.{name}",
                                    "type": kind,
                                    "values": values,
                                }
                                for kind, name, values in resources
                            ]
                        }
                    ],
                }
            }
        }
    }


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_identity_rules() -> None:
    good = _policy({"Effect": "Allow", "Action": ["dynamodb:GetRecords"], "Resource": "arn:x"})
    assert (
        rules.identity_policy_violations(_plan(("aws_iam_role_policy", "ok", {"policy": good})))
        == []
    )
    for statement, expected in [
        ({"Action": "dynamodb:*", "Resource": "arn:x"}, "wildcard action dynamodb:*"),
        ({"Action": ["s3:Get*"], "Resource": "arn:x"}, "wildcard action s3:Get*"),
        ({"Action": "*", "Resource": "arn:x"}, "wildcard action *"),
        ({"Action": "iam:PassRole", "Resource": "*"}, "iam:PassRole on ['*']"),
        ({"Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/*"}, "iam:PassRole on"),
        ({"NotAction": "s3:GetObject", "Resource": "*"}, "NotAction"),
    ]:
        bad = _policy({"Effect": "Allow", **statement})
        found = rules.identity_policy_violations(
            _plan(("aws_iam_role_policy", "bad", {"policy": bad}))
        )
        assert len(found) >= 1 and expected in found[0], (statement, found)
    # A Deny with wildcards is a guard, not a grant.
    deny = _policy({"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    assert rules.identity_policy_violations(_plan(("aws_iam_policy", "d", {"policy": deny}))) == []
    assert rules.identity_policy_violations(_plan()) != []  # nothing checked is not a pass


def test_resource_policy_rules() -> None:
    root = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::1:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    service = {
        "Effect": "Allow",
        "Principal": {"Service": "logs.amazonaws.com"},
        "Action": "kms:Encrypt*",
        "Resource": "*",
        "Condition": {"ArnLike": {"x": "y"}},
    }
    ok = _plan(("aws_kms_key", "k", {"policy": _policy(root, service)}))
    assert rules.resource_policy_violations(ok) == []
    unbounded = {**service}
    del unbounded["Condition"]
    assert rules.resource_policy_violations(
        _plan(("aws_kms_key", "k", {"policy": _policy(unbounded)}))
    )
    public = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
    assert rules.resource_policy_violations(
        _plan(("aws_s3_bucket_policy", "p", {"policy": _policy(public)}))
    )


def test_encryption_and_public_access_rules() -> None:
    plan = _plan(
        ("aws_sqs_queue", "plain", {"sqs_managed_sse_enabled": False, "kms_master_key_id": None}),
        ("aws_sqs_queue", "sse", {"sqs_managed_sse_enabled": True}),
        ("aws_sns_topic", "t", {"kms_master_key_id": ""}),
        ("aws_dynamodb_table", "d", {"server_side_encryption": []}),
        ("aws_cloudwatch_log_group", "l", {"kms_key_id": "arn:k"}),
        ("aws_s3_bucket", "b", {"bucket": "b"}),
        ("aws_s3_bucket_public_access_block", "b", {"bucket": "b", "block_public_acls": True}),
    )
    assert sorted(rules.encryption_violations(plan)) == [
        "not encrypted: module.m.aws_dynamodb_table.d",
        "not encrypted: module.m.aws_s3_bucket.b",
        "not encrypted: module.m.aws_sns_topic.t",
        "not encrypted: module.m.aws_sqs_queue.plain",
    ]
    assert rules.public_access_violations(plan) == [
        "public access not fully blocked: module.m.aws_s3_bucket.b"
    ]
