"""The envelope SNS puts around a message for an SQS subscriber, as AWS sends it."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from streamkit.local.emulator import Emulator
from streamkit.local.emulator.sns_envelope import signing_certificate_pem, string_to_sign
from tests.helpers import AwsClients
from tests.helpers.queues import create_queue


def _deliver(
    aws: AwsClients,
    unique_name: Callable[[str], str],
    topic_attributes: dict[str, str],
    **publish: Any,
) -> tuple[dict[str, Any], str, str, str]:
    topic_arn = aws.sns.create_topic(Name=unique_name("topic"), Attributes=topic_attributes)[
        "TopicArn"
    ]
    queue_url, queue_arn = create_queue(aws.sqs, unique_name("q"))
    subscription = aws.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)[
        "SubscriptionArn"
    ]
    message_id = aws.sns.publish(TopicArn=topic_arn, **publish)["MessageId"]
    messages = aws.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"]
    return json.loads(messages[0]["Body"]), topic_arn, subscription, message_id


def _verify(envelope: dict[str, Any], algorithm: hashes.HashAlgorithm) -> None:
    certificate = x509.load_pem_x509_certificate(signing_certificate_pem())
    certificate.public_key().verify(  # type: ignore[union-attr,call-arg]
        base64.b64decode(envelope["Signature"]),
        string_to_sign(envelope).encode(),
        padding.PKCS1v15(),  # type: ignore[arg-type]
        algorithm,  # type: ignore[arg-type]
    )


def test_sqs_subscriber_gets_aws_envelope_signed_with_version_1(
    embedded_emulator: Emulator, aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    envelope, topic_arn, subscription, message_id = _deliver(
        aws,
        unique_name,
        {},
        Message="hello",
        Subject="greeting",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "order"}},
    )
    assert set(envelope) == {
        "Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp", "SignatureVersion",
        "Signature", "SigningCertURL", "UnsubscribeURL", "MessageAttributes",
    }  # fmt: skip
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] == message_id
    assert (envelope["TopicArn"], envelope["Subject"], envelope["Message"]) == (
        topic_arn,
        "greeting",
        "hello",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", envelope["Timestamp"])
    assert envelope["SignatureVersion"] == "1"
    assert re.fullmatch(
        rf"https://sns\.{aws.region}\.amazonaws\.com/SimpleNotificationService-[0-9a-f]+\.pem",
        envelope["SigningCertURL"],
    )
    assert envelope["UnsubscribeURL"] == (
        f"https://sns.{aws.region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription}"
    )
    assert envelope["MessageAttributes"] == {"kind": {"Type": "String", "Value": "order"}}
    _verify(envelope, hashes.SHA1())


def test_signature_version_2_on_the_topic_signs_with_sha256(
    embedded_emulator: Emulator, aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    envelope, *_ = _deliver(aws, unique_name, {"SignatureVersion": "2"}, Message="x")
    assert envelope["SignatureVersion"] == "2"
    assert "Subject" not in envelope
    _verify(envelope, hashes.SHA256())
    with pytest.raises(Exception):
        _verify(envelope, hashes.SHA1())
