"""Customer notifications: email through SES, SMS through SNS, from templates.

An order sends one notification per change that matters to the customer:

- ``placed``: the order's INSERT (status PLACED);
- ``shipped``: a MODIFY into SHIPPED;
- ``cancelled``: a MODIFY into CANCELLED (a customer's cancellation or an out-of-stock
  compensation).

Email goes to the order's ``email`` from the verified SES identity ``sender``; an SMS goes to
``phone`` (E.164) when the order has one, through SNS Publish(PhoneNumber), which SNS sends as
a transactional SMS. "Once per change": the trigger is the change itself (an INSERT, a status
transition), so a duplicate producer write (a no-op MODIFY) and a workflow redelivery (the
state write is fenced by version) never trigger twice; the router's per-target markers stop a
redelivered record from sending again.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template
from typing import Any

from orderplatform.changes import ORDER_PREFIX, is_noop, order_id
from streamkit import StreamRecord

__all__ = ["TEMPLATES", "NotificationTemplate", "Notifier", "template_for"]


@dataclass(frozen=True)
class NotificationTemplate:
    name: str
    subject: Template
    body: Template
    sms: Template

    def render(self, fields: dict[str, str]) -> tuple[str, str, str]:
        return (
            self.subject.substitute(fields),
            self.body.substitute(fields),
            self.sms.substitute(fields),
        )


TEMPLATES = {
    "PLACED": NotificationTemplate(
        "placed",
        Template("Order $order_id placed"),
        Template(
            "Hello $customer,\n\nthank you for your order $order_id (total $total). We will "
            "let you know when it ships.\n"
        ),
        Template("Order $order_id placed, total $total."),
    ),
    "SHIPPED": NotificationTemplate(
        "shipped",
        Template("Order $order_id shipped"),
        Template("Hello $customer,\n\nyour order $order_id is on its way.\n"),
        Template("Order $order_id shipped."),
    ),
    "CANCELLED": NotificationTemplate(
        "cancelled",
        Template("Order $order_id cancelled"),
        Template(
            "Hello $customer,\n\nyour order $order_id was cancelled; any payment is refunded.\n"
        ),
        Template("Order $order_id cancelled."),
    ),
}


def template_for(record: StreamRecord) -> NotificationTemplate | None:
    """The template this change calls for, if any."""
    if not str(record.keys.get("pk", "")).startswith(ORDER_PREFIX) or is_noop(record):
        return None
    new = record.new_image or {}
    status = new.get("status")
    if record.event_name == "INSERT":
        return TEMPLATES["PLACED"] if status == "PLACED" else None
    entered = (record.old_image or {}).get("status") != status
    if record.event_name == "MODIFY" and status in ("SHIPPED", "CANCELLED") and entered:
        return TEMPLATES[str(status)]
    return None


class Notifier:
    """The notify fan-out target. Returns the template name sent, or ``None``."""

    def __init__(self, *, ses: Any, sns: Any, sender: str) -> None:
        if not sender:
            raise ValueError("Notifier needs a verified SES sender identity")
        self.ses = ses
        self.sns = sns
        self.sender = sender

    def __call__(self, record: StreamRecord) -> str | None:
        template = template_for(record)
        if template is None:
            return None
        image = record.new_image or {}
        fields = {
            "order_id": order_id(record),
            "customer": str(image.get("customer") or "customer"),
            "total": str(image.get("total", "")),
        }
        subject, body, sms = template.render(fields)
        email = image.get("email")
        if isinstance(email, str) and email:
            self.ses.send_email(
                Source=self.sender,
                Destination={"ToAddresses": [email]},
                Message={
                    "Subject": {"Data": subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
                },
            )
        phone = image.get("phone")
        if isinstance(phone, str) and phone:
            self.sns.publish(
                PhoneNumber=phone,
                Message=sms,
                MessageAttributes={
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
                },
            )
        return template.name
