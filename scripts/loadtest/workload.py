"""The orders a run places, and the writer that places them as clients would.

Items follow the platform contract (docs: ``platform-contract.md`` / ``docs/reference-app.md``):
products ``PRODUCT#<sku>``; orders ``ORDER#<id>`` written ``PLACED`` at version 1 with
``updated_at`` and ``placed_at`` (epoch ms, the moment of the write: handlers measure their
change->handler latency from it). Kinds: normal; ``poison`` (a stage raises every time: the
record ends in the workflow's on-failure queue); ``decline`` (PAYMENT_FAILED); invalid (total 0:
REJECTED). Some orders are put twice (a duplicate producer write: identical item, conditional
on still being PLACED at version 1), some are cancelled by the customer shortly after placing
(conditional on PLACED or VALIDATED, version + 1).
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from streamkit import serialize

HOT_SKU = "SKU-0000"
PRODUCT_STOCK = 1_000_000  # enough for any run: out-of-stock is not what this measures
CANCEL_DELAY_S = (0.0, 0.15)  # a cancel races the pipeline's first stages


@dataclass(frozen=True)
class OrderPlan:
    order_id: str
    kind: str  # normal | poison | decline | invalid
    customer: int
    email: str
    phone: str | None
    lines: tuple[tuple[str, int], ...]
    total: Decimal
    duplicate: bool = False
    cancel_after_s: float | None = None

    @property
    def payment_token(self) -> str:
        return {"poison": "poison", "decline": "decline"}.get(self.kind, f"tok-{self.order_id}")


def sku(n: int) -> str:
    return f"SKU-{n:04d}"


def price(n: int) -> Decimal:
    return Decimal(5 + n % 40) + Decimal("0.99")


def product_items(count: int, now_ms: int) -> list[dict[str, Any]]:
    return [
        {
            "pk": f"PRODUCT#{sku(n)}",
            "stock": PRODUCT_STOCK,
            "price": price(n),
            "name": f"Product {n}",
            "updated_at": now_ms,
        }
        for n in range(count)
    ]


def plan_orders(
    workload: Any, count: int, rng: random.Random, prefix: str, *, steady: bool = True
) -> list[OrderPlan]:
    """``count`` orders drawn from ``workload``'s shares; backlog orders (``steady=False``) are
    all normal, without duplicates or cancellations, so the drain measures plain throughput."""
    plans = []
    for i in range(count):
        customer = rng.randrange(workload.customers)
        lines: dict[str, int] = {}
        for _ in range(rng.randint(1, 3)):
            n = 0 if rng.random() < workload.hot_share else rng.randrange(workload.products)
            lines[sku(n)] = lines.get(sku(n), 0) + rng.randint(1, 3)
        total = sum((price(int(s[4:])) * q for s, q in lines.items()), Decimal(0))
        kind = "normal"
        if steady:
            draw = rng.random()
            shares = (
                ("poison", workload.poison_share),
                ("decline", workload.decline_share),
                ("invalid", workload.invalid_share),
            )
            for name, share in shares:
                if draw < share:
                    kind = name
                    break
                draw -= share
        if kind == "invalid":
            total = Decimal(0)
        has_phone = _customer_has_phone(customer, workload.phone_share)
        plans.append(
            OrderPlan(
                order_id=f"{prefix}{i:06d}",
                kind=kind,
                customer=customer,
                email=f"customer{customer}@example.com",
                phone=f"+1555{customer:07d}" if has_phone else None,
                lines=tuple(sorted(lines.items())),
                total=total,
                duplicate=steady and rng.random() < workload.duplicate_share,
                # A poison order's fate is the on-failure queue: a customer's cancel would end
                # it CANCELLED and hide that from the account.
                cancel_after_s=rng.uniform(*CANCEL_DELAY_S)
                if steady and kind != "poison" and rng.random() < workload.cancel_share
                else None,
            )
        )
    return plans


def _customer_has_phone(customer: int, share: float) -> bool:
    # Per customer, not per order: a customer's orders all text them or none does.
    return random.Random(customer).random() < share


def order_item(plan: OrderPlan, now_ms: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": f"ORDER#{plan.order_id}",
        "status": "PLACED",
        "version": 1,
        "customer": f"CUSTOMER#{plan.customer}",
        "email": plan.email,
        "total": plan.total,
        "lines": [{"sku": s, "qty": q} for s, q in plan.lines],
        "payment_token": plan.payment_token,
        "updated_at": now_ms,
        "placed_at": now_ms,
    }
    if plan.phone:
        item["phone"] = plan.phone
    return serialize(item)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class WriteLog:
    """What the writer did; thread-safe through ``lock``."""

    placed: dict[str, int] = field(default_factory=dict)  # order id -> placed_at (ms)
    failed: dict[str, str] = field(default_factory=dict)  # order id -> error (not written)
    duplicates: int = 0
    duplicates_refused: int = 0
    cancels_attempted: int = 0
    cancelled: set[str] = field(default_factory=set)
    cancels_refused: int = 0
    write_times: list[float] = field(default_factory=list)  # epoch s of each order put
    lock: threading.Lock = field(default_factory=threading.Lock)


class Writer:
    """Places planned orders at a steady rate from ``threads`` threads, each with its own
    client; a cancellation is scheduled ``cancel_after_s`` after its order."""

    def __init__(self, client_factory: Callable[[], Any], orders_table: str, threads: int) -> None:
        self._client_factory = client_factory
        self._table = orders_table
        self._threads = threads
        self._local = threading.local()
        self.log = WriteLog()

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._client_factory()
        return client

    def run(
        self,
        plans: list[OrderPlan],
        rate: float,
        on_placed: Callable[[], None] = lambda: None,
    ) -> float:
        """Place ``plans`` at ``rate`` per second; returns the seconds it took."""
        tasks: queue.PriorityQueue[tuple[float, int, Callable[[], None]]] = queue.PriorityQueue()
        start = time.monotonic() + 0.05
        for i, plan in enumerate(plans):
            due = start + i / rate
            tasks.put((due, 2 * i, lambda plan=plan: self._place(plan, on_placed)))
            if plan.cancel_after_s is not None:
                cancel_due = due + plan.cancel_after_s
                tasks.put((cancel_due, 2 * i + 1, lambda plan=plan: self._cancel(plan)))
        workers = [
            threading.Thread(target=self._work, args=(tasks,), daemon=True)
            for _ in range(self._threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return time.monotonic() - start

    def _work(self, tasks: queue.PriorityQueue[tuple[float, int, Callable[[], None]]]) -> None:
        while True:
            try:
                due, _, task = tasks.get_nowait()
            except queue.Empty:
                return
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            task()

    def _place(self, plan: OrderPlan, on_placed: Callable[[], None]) -> None:
        stamp = now_ms()
        item = order_item(plan, stamp)
        client = self._client()
        try:
            client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            with self.log.lock:
                self.log.failed[plan.order_id] = f"{type(exc).__name__}: {exc}"
            return
        with self.log.lock:
            self.log.placed[plan.order_id] = stamp
            self.log.write_times.append(stamp / 1000)
        on_placed()
        if plan.duplicate:
            self._duplicate(client, item)

    def _duplicate(self, client: Any, item: dict[str, Any]) -> None:
        try:
            client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="#s = :placed AND #v = :one",
                ExpressionAttributeNames={"#s": "status", "#v": "version"},
                ExpressionAttributeValues={":placed": {"S": "PLACED"}, ":one": {"N": "1"}},
            )
            refused = 0
        except client.exceptions.ConditionalCheckFailedException:
            refused = 1  # the pipeline moved on first: a late duplicate never rewinds an order
        with self.log.lock:
            self.log.duplicates += 1
            self.log.duplicates_refused += refused

    def _cancel(self, plan: OrderPlan) -> None:
        with self.log.lock:
            if plan.order_id not in self.log.placed:
                return
            self.log.cancels_attempted += 1
        client = self._client()
        try:
            client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"ORDER#{plan.order_id}"}},
                UpdateExpression="SET #s = :cancelled, #v = #v + :one, updated_at = :now",
                ConditionExpression="#s IN (:placed, :validated)",
                ExpressionAttributeNames={"#s": "status", "#v": "version"},
                ExpressionAttributeValues={
                    ":cancelled": {"S": "CANCELLED"},
                    ":placed": {"S": "PLACED"},
                    ":validated": {"S": "VALIDATED"},
                    ":one": {"N": "1"},
                    ":now": {"N": str(now_ms())},
                },
            )
        except client.exceptions.ConditionalCheckFailedException:
            with self.log.lock:
                self.log.cancels_refused += 1  # already past VALIDATED: it ships instead
            return
        with self.log.lock:
            self.log.cancelled.add(plan.order_id)


def write_backlog(client: Any, orders_table: str, plans: list[OrderPlan], log: WriteLog) -> None:
    """Put ``plans`` with BatchWriteItem as fast as the endpoint takes them."""
    for start in range(0, len(plans), 25):
        chunk = plans[start : start + 25]
        stamp = now_ms()
        requests = [{"PutRequest": {"Item": order_item(plan, stamp)}} for plan in chunk]
        pending = {orders_table: requests}
        while pending:
            response = client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
        with log.lock:
            for plan in chunk:
                log.placed[plan.order_id] = stamp
                log.write_times.append(stamp / 1000)
