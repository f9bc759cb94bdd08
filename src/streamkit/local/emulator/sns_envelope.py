"""The JSON envelope SNS wraps a message in (SQS and HTTP subscribers without raw delivery).

AWS's envelope (https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html,
"HTTP/HTTPS Notification JSON format"): ``Type: "Notification"``, ``MessageId``, ``TopicArn``,
``Subject`` (when given), ``Message``, ``Timestamp`` (ISO 8601 with milliseconds, UTC),
``SignatureVersion``, ``Signature``, ``SigningCertURL``, ``UnsubscribeURL`` and
``MessageAttributes`` (when given).

Where moto differs, and what this module does instead:

- ``SignatureVersion`` is always "2" in moto. AWS signs with SHA1withRSA, version "1", unless
  the topic's ``SignatureVersion`` attribute is "2" (SHA256withRSA)
  (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html).
- ``Signature`` covers AWS's string to sign for a notification: ``Message``, ``MessageId``,
  ``Subject`` (if any), ``Timestamp``, ``TopicArn``, ``Type``, each "name\\nvalue\\n"
  (same page). moto leaves ``Subject`` out.
- ``UnsubscribeURL`` names the subscription and its region; moto's names a made-up one in
  us-east-1.
- moto makes a new 2048-bit RSA key and certificate for every message (tens of milliseconds
  each, under the SNS publisher's request); here one key and certificate serve the process,
  as one SNS signing certificate serves a region for a long time.
"""

from __future__ import annotations

import base64
import threading
import uuid
from datetime import timedelta
from typing import Any

__all__ = ["apply_sns_envelope_patches", "signing_certificate_pem"]

_lock = threading.Lock()
_signing: tuple[Any, bytes, str] | None = None  # (private key, certificate PEM, key name)


def _signing_material() -> tuple[Any, bytes, str]:
    global _signing
    with _lock:
        if _signing is None:
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import rsa
            from cryptography.x509.oid import NameOID
            from moto.core.utils import utcnow

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
            issuer = x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Amazon RSA 2048 M01"),
                ]
            )
            certificate = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(issuer)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(utcnow())
                .not_valid_after(utcnow() + timedelta(days=365))
                .sign(key, hashes.SHA256())
            )
            pem = certificate.public_bytes(serialization.Encoding.PEM)
            _signing = (key, pem, f"SimpleNotificationService-{uuid.uuid4().hex}.pem")
        return _signing


def signing_certificate_pem() -> bytes:
    """The certificate whose key signs this process's SNS messages (SigningCertURL's body)."""
    return _signing_material()[1]


def string_to_sign(fields: dict[str, Any]) -> str:
    names = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
    return "".join(f"{name}\n{fields[name]}\n" for name in names if name in fields)


def apply_sns_envelope_patches() -> None:
    """Replace moto's Subscription.get_post_data (idempotent)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.core.utils import iso_8601_datetime_with_milliseconds
    from moto.sns import models as sns_models

    subscription_cls = sns_models.Subscription
    if getattr(subscription_cls.get_post_data, "_streamkit_envelope", False):
        return

    def get_post_data(
        self: Any,
        message: str,
        message_id: str,
        subject: str | None,
        message_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        key, pem, key_name = _signing_material()
        region = self.topic.sns_backend.region_name
        # moto stores topic attributes under snake_case names (CreateTopic, SetTopicAttributes).
        version = str(getattr(self.topic, "signature_version", "1"))
        version = version if version in ("1", "2") else "1"
        data: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": self.topic.arn,
        }
        if subject:
            data["Subject"] = subject
        data["Message"] = message
        data["Timestamp"] = iso_8601_datetime_with_milliseconds()
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = key.sign(string_to_sign(data).encode(), padding.PKCS1v15(), algorithm)
        data["SignatureVersion"] = version
        data["Signature"] = base64.b64encode(signature).decode()
        data["SigningCertURL"] = f"https://sns.{region}.amazonaws.com/{key_name}"
        data["UnsubscribeURL"] = (
            f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={self.arn}"
        )
        if message_attributes:
            data["MessageAttributes"] = message_attributes
        # moto serves SigningCertURL's path from the region's default-account backend.
        keys = sns_models.sns_backends[DEFAULT_ACCOUNT_ID][region]._message_public_keys
        keys.setdefault(key_name, pem)
        return data

    get_post_data._streamkit_envelope = True  # type: ignore[attr-defined]
    subscription_cls.get_post_data = get_post_data  # type: ignore[method-assign]
