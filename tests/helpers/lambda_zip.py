"""Build deployment zips and create Lambda functions for tests."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from typing import Any

import boto3

__all__ = ["LAMBDA_ROLE_NAME", "create_function", "ensure_lambda_role", "make_zip"]

LAMBDA_ROLE_NAME = "streamkit-test-lambda-role"

_TRUST_POLICY = """{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
 "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"""

# A fixed timestamp (zip's epoch) and mode make the archive byte-for-byte reproducible,
# so a CodeSha256 can be computed ahead and compared.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def make_zip(files: Mapping[str, str | bytes]) -> bytes:
    """A deterministic zip of ``{path inside the zip: content}``; str content is UTF-8."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            content = files[name]
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


def ensure_lambda_role(iam_client: Any, name: str = LAMBDA_ROLE_NAME) -> str:
    """ARN of an IAM role Lambda can assume, created on first use.

    moto (like AWS) refuses CreateFunction unless the role exists in IAM.
    """
    try:
        role = iam_client.get_role(RoleName=name)
    except iam_client.exceptions.NoSuchEntityException:
        try:
            role = iam_client.create_role(RoleName=name, AssumeRolePolicyDocument=_TRUST_POLICY)
        except iam_client.exceptions.EntityAlreadyExistsException:  # a concurrent test made it
            role = iam_client.get_role(RoleName=name)
    arn: str = role["Role"]["Arn"]
    return arn


def create_function(
    lambda_client: Any,
    name: str,
    files: Mapping[str, str | bytes],
    handler: str = "app.handler",
    *,
    timeout: int = 30,
    env: Mapping[str, str] | None = None,
    memory: int = 128,
    role_arn: str | None = None,
    runtime: str = "python3.12",
) -> str:
    """Create a function from ``files`` (see :func:`make_zip`); returns its FunctionArn.

    Without ``role_arn``, the role comes from :func:`ensure_lambda_role` on the same endpoint,
    region and credentials as ``lambda_client``. Waits until the function is Active (moto is
    immediately; AWS and LocalStack take a moment).
    """
    if role_arn is None:
        credentials = lambda_client._request_signer._credentials
        iam_client = boto3.client(
            "iam",
            endpoint_url=lambda_client.meta.endpoint_url,
            region_name=lambda_client.meta.region_name,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.token,
        )
        role_arn = ensure_lambda_role(iam_client)
    response = lambda_client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=role_arn,
        Handler=handler,
        Code={"ZipFile": make_zip(files)},
        Timeout=timeout,
        MemorySize=memory,
        Environment={"Variables": dict(env or {})},
    )
    if response.get("State", "Active") != "Active":
        lambda_client.get_waiter("function_active_v2").wait(FunctionName=name)
    arn: str = response["FunctionArn"]
    return arn
