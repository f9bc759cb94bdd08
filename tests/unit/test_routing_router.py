"""Router matching semantics, predicates, dispatch, fan-out and per-target idempotency."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from tests.helpers.stream_data import lambda_record

from streamkit.batch import process_batch
from streamkit.codec import serialize
from streamkit.exceptions import ImageNotAvailableError
from streamkit.idempotency import MemoryIdempotencyStore
from streamkit.idempotency.exceptions import IdempotencyStoreUnavailableError
from streamkit.records import StreamRecord, parse_event
from streamkit.routing import (
    ANY,
    MISSING,
    InvalidRouteError,
    Router,
    TargetsFailedError,
    UnmatchedRecordError,
    became,
    changed,
    is_ttl_delete,
    key_prefix,
    transition,
    where,
)

ORDERS_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
USERS_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/2024-01-01T00:00:00.000"


def raw_record(
    event_name: str,
    keys: Mapping[str, Any],
    new: Mapping[str, Any] | None = None,
    old: Mapping[str, Any] | None = None,
    *,
    seq: int = 100,
    arn: str = ORDERS_ARN,
    ttl: bool = False,
    view: str = "NEW_AND_OLD_IMAGES",
) -> dict[str, Any]:
    """A record as Lambda delivers it (binary as base64, numbers as strings); images are
    plain Python, encoded here."""
    return lambda_record(
        seq,
        keys=serialize(keys, binary="base64"),
        event_name=event_name,
        new_image=None if new is None else serialize(new, binary="base64"),
        old_image=None if old is None else serialize(old, binary="base64"),
        event_id=f"event-{seq}",
        size_bytes=50,
        view_type=view,
        arn=arn,
        ttl_delete=ttl,
    )


def rec(*args: Any, **kwargs: Any) -> StreamRecord:
    return parse_event({"Records": [raw_record(*args, **kwargs)]})[0]


def insert(pk: str, seq: int = 100, **new: Any) -> dict[str, Any]:
    return raw_record("INSERT", {"pk": pk}, {"pk": pk, **new}, seq=seq)


def modify(
    pk: str, old: Mapping[str, Any], new: Mapping[str, Any], seq: int = 100
) -> dict[str, Any]:
    return raw_record("MODIFY", {"pk": pk}, {"pk": pk, **new}, {"pk": pk, **old}, seq=seq)


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def failed_ids(response: Mapping[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


# --- predicates ----------------------------------------------------------------------------------


PLACED_TO_PAID = rec(
    "MODIFY", {"pk": "o1"}, {"pk": "o1", "status": "PAID"}, {"pk": "o1", "status": "PLACED"}
)
INSERT_PAID = rec("INSERT", {"pk": "o1"}, {"pk": "o1", "status": "PAID"})
REMOVE_PAID = rec("REMOVE", {"pk": "o1"}, None, {"pk": "o1", "status": "PAID"})
NOTE_ONLY = rec(
    "MODIFY",
    {"pk": "o1"},
    {"pk": "o1", "status": "PAID", "note": "b"},
    {"pk": "o1", "status": "PAID", "note": "a"},
)


@pytest.mark.parametrize(
    ("predicate", "record", "expected"),
    [
        (changed("status"), PLACED_TO_PAID, True),
        (changed("status"), NOTE_ONLY, False),
        (changed("note"), NOTE_ONLY, True),
        (changed("status"), INSERT_PAID, True),  # an INSERT changes every attribute it has
        (changed("missing"), INSERT_PAID, False),
        (changed("status"), REMOVE_PAID, True),
        (transition("status", "PLACED", "PAID"), PLACED_TO_PAID, True),
        (transition("status", "PAID", "PLACED"), PLACED_TO_PAID, False),
        (transition("status", "PLACED", ANY), PLACED_TO_PAID, True),
        (transition("status", to="PAID"), PLACED_TO_PAID, True),
        (transition("status", to="PAID"), NOTE_ONLY, False),  # no change: no transition
        (transition("status", MISSING, "PAID"), INSERT_PAID, True),
        (transition("status", MISSING, "PAID"), PLACED_TO_PAID, False),
        (transition("status", "PAID", MISSING), REMOVE_PAID, True),
        (became("status", "PAID"), PLACED_TO_PAID, True),
        (became("status", "PAID"), INSERT_PAID, True),
        (became("status", "PAID"), NOTE_ONLY, False),  # it already was
        (became("status", "PAID"), REMOVE_PAID, False),
        (became("status", "PLACED"), PLACED_TO_PAID, False),
        (key_prefix("pk", "o"), PLACED_TO_PAID, True),
        (key_prefix("pk", "ORDER#"), PLACED_TO_PAID, False),
        (key_prefix("sk", "o"), PLACED_TO_PAID, False),  # no such key attribute
    ],
)
def test_predicate_semantics(predicate: Any, record: StreamRecord, expected: bool) -> None:
    assert predicate(record) is expected


def test_values_compare_as_dynamodb_does_numbers_by_value_never_across_types() -> None:
    record = rec(
        "MODIFY",
        {"pk": "o1"},
        {"pk": "o1", "qty": Decimal("5.0"), "flag": True, "code": "5"},
        {"pk": "o1", "qty": 4, "flag": False, "code": "4"},
    )
    assert became("qty", 5)(record)
    assert became("qty", Decimal("5"))(record)
    assert not became("flag", 1)(record)  # True is not 1 in DynamoDB
    assert became("flag", True)(record)
    assert not became("code", 5)(record)  # "5" is a string
    assert became("code", "5")(record)
    # A number becoming the equal boolean is still a change.
    flipped = rec("MODIFY", {"pk": "o1"}, {"pk": "o1", "v": True}, {"pk": "o1", "v": 1})
    assert changed("v")(flipped)
    same = rec(
        "MODIFY",
        {"pk": "o1"},
        {"pk": "o1", "v": Decimal("1.50")},
        {"pk": "o1", "v": Decimal("1.5")},
    )
    assert not changed("v")(same)


def test_predicates_compose_with_and_or_not() -> None:
    paid = became("status", "PAID")
    orders = key_prefix("pk", "o")
    assert (paid & orders)(PLACED_TO_PAID)
    assert not (paid & ~orders)(PLACED_TO_PAID)
    assert (became("status", "X") | orders)(PLACED_TO_PAID)
    assert not (became("status", "X") | key_prefix("pk", "z"))(PLACED_TO_PAID)
    combined = paid & orders & changed("status")
    assert (
        repr(combined) == "(became('status', 'PAID') & key_prefix('pk', 'o') & changed('status'))"
    )
    assert repr(~(paid | orders)) == "~(became('status', 'PAID') | key_prefix('pk', 'o'))"
    with pytest.raises(TypeError):
        _ = paid & (lambda r: True)  # type: ignore[operator]


def test_where_wraps_a_function_and_ttl_delete_reads_the_user_identity() -> None:
    big = where(lambda r: r.new_image["total"] > 100, name="big")
    assert big(rec("INSERT", {"pk": "o"}, {"pk": "o", "total": 150}))
    assert not big(rec("INSERT", {"pk": "o"}, {"pk": "o", "total": 50}))
    assert repr(big) == "where(big)"
    assert is_ttl_delete()(rec("REMOVE", {"pk": "o"}, None, {"pk": "o"}, ttl=True))
    assert not is_ttl_delete()(rec("REMOVE", {"pk": "o"}, None, {"pk": "o"}))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: changed(""), "non-empty string"),
        (lambda: transition("status", "A", "A"), "never happens"),
        (lambda: transition("status", MISSING, MISSING), "never happens"),
        (lambda: became("total", 1.5), "float"),
        (lambda: became("status", MISSING), "transition"),
        (lambda: became("tags", ["a"]), "compare with"),
        (lambda: key_prefix("pk", ""), "prefix"),
        (lambda: where(42), "callable"),  # type: ignore[arg-type]
    ],
)
def test_invalid_predicates_fail_when_built(build: Any, message: str) -> None:
    with pytest.raises(InvalidRouteError, match=message):
        build()


def test_async_where_is_refused() -> None:
    async def check(record: StreamRecord) -> bool:
        return True

    with pytest.raises(InvalidRouteError, match="synchronous"):
        where(check)


def test_a_predicate_needing_a_missing_image_raises_instead_of_guessing() -> None:
    new_only = rec("MODIFY", {"pk": "o1"}, {"pk": "o1", "status": "PAID"}, None, view="NEW_IMAGE")
    with pytest.raises(ImageNotAvailableError):
        became("status", "PAID")(new_only)  # was it PAID before? unknowable
    with pytest.raises(ImageNotAvailableError):
        changed("status")(new_only)
    # When the new image alone decides, no old image is needed.
    assert not became("status", "SHIPPED")(new_only)


# --- router matching -----------------------------------------------------------------------------


def collecting_router(**kwargs: Any) -> tuple[Router, list[tuple[str, str]]]:
    router = Router("test", **kwargs)
    calls: list[tuple[str, str]] = []

    def recorder(name: str) -> Any:
        def handle(record: StreamRecord) -> str:
            calls.append((name, record.sequence_number))
            return name

        handle.__qualname__ = name
        return handle

    router.recorder = recorder  # type: ignore[attr-defined]
    return router, calls


def test_each_condition_narrows_and_all_must_hold() -> None:
    router, calls = collecting_router()
    rr = router.recorder  # type: ignore[attr-defined]
    router.add_route(rr("orders_table"), table="orders")
    router.add_route(rr("users_table"), table="users")
    router.add_route(rr("inserts"), events="INSERT")
    router.add_route(rr("modify_or_remove"), events=["MODIFY", "REMOVE"])
    router.add_route(rr("ttl_only"), ttl_delete=True)
    router.add_route(rr("not_ttl_removes"), events="REMOVE", ttl_delete=False)
    router.add_route(rr("order_keys"), key_prefix={"pk": "ORDER#"})
    router.add_route(
        rr("raw_paid"), raw_pattern={"dynamodb": {"NewImage": {"status": {"S": ["PAID"]}}}}
    )
    router.add_route(rr("big_total"), pattern={"new": {"total": [{"numeric": [">", 100]}]}})
    router.add_route(rr("became_paid"), when=became("status", "PAID"))
    router.add_route(
        rr("paid_big_orders"),
        table="orders",
        events="MODIFY",
        when=became("status", "PAID"),
        pattern={"new": {"total": [{"numeric": [">=", 150]}]}},
    )

    records = [
        raw_record(
            "INSERT", {"pk": "ORDER#1"}, {"pk": "ORDER#1", "status": "PLACED", "total": 150}, seq=1
        ),
        raw_record(
            "MODIFY",
            {"pk": "ORDER#1"},
            {"pk": "ORDER#1", "status": "PAID", "total": 150},
            {"pk": "ORDER#1", "status": "PLACED", "total": 150},
            seq=2,
        ),
        raw_record(
            "REMOVE",
            {"pk": "ORDER#1"},
            None,
            {"pk": "ORDER#1", "status": "PAID", "total": 150},
            seq=3,
            ttl=True,
        ),
        raw_record(
            "INSERT",
            {"pk": "USER#1"},
            {"pk": "USER#1", "status": "PAID", "total": 5},
            seq=4,
            arn=USERS_ARN,
        ),
        raw_record("REMOVE", {"pk": "USER#1"}, None, {"pk": "USER#1"}, seq=5, arn=USERS_ARN),
    ]
    assert router.handle(event(*records)) == {"batchItemFailures": []}
    by_record: dict[str, list[str]] = {}
    for name, seq in calls:
        by_record.setdefault(seq, []).append(name)
    assert by_record == {
        "1": ["orders_table", "inserts", "order_keys", "big_total"],
        "2": [
            "orders_table",
            "modify_or_remove",
            "order_keys",
            "raw_paid",
            "big_total",
            "became_paid",
            "paid_big_orders",
        ],
        "3": ["orders_table", "modify_or_remove", "ttl_only", "order_keys"],
        "4": ["users_table", "inserts", "raw_paid", "became_paid"],
        "5": ["users_table", "modify_or_remove", "not_ttl_removes"],
    }


def test_match_first_runs_only_the_first_matching_route_in_registration_order() -> None:
    router, calls = collecting_router(match="first")
    rr = router.recorder  # type: ignore[attr-defined]
    router.add_route(rr("paid"), when=became("status", "PAID"))
    router.add_route(rr("any_modify"), events="MODIFY")
    router.add_route(rr("anything"))
    router.handle(
        event(
            modify("a", {"status": "PLACED"}, {"status": "PAID"}, seq=1),
            modify("b", {"n": 1}, {"n": 2}, seq=2),
            insert("c", seq=3),
        )
    )
    assert calls == [("paid", "1"), ("any_modify", "2"), ("anything", "3")]


def test_unmatched_records_are_counted_and_ignored_or_failed_by_configuration() -> None:
    ignoring, calls = collecting_router()
    ignoring.add_route(ignoring.recorder("inserts"), events="INSERT")  # type: ignore[attr-defined]
    batch = event(insert("a", seq=1), modify("a", {"n": 1}, {"n": 2}, seq=2), insert("b", seq=3))
    result = ignoring.run(batch)
    assert result.response() == {"batchItemFailures": []}
    assert result.stats.unmatched == 1 and result.stats.records == 3
    assert [o.unmatched for o in result.outcomes] == [False, True, False]
    assert ignoring.stats.snapshot()["unmatched"] == 1

    failing, calls = collecting_router(on_unmatched="fail")
    failing.add_route(failing.recorder("inserts"), events="INSERT")  # type: ignore[attr-defined]
    result = failing.run(batch)
    assert result.response() == {
        "batchItemFailures": [{"itemIdentifier": "2"}, {"itemIdentifier": "3"}]
    }
    assert isinstance(result.batch.errors[0][1], UnmatchedRecordError)
    assert calls == [("inserts", "1")]  # fail_fast: nothing after the failure ran


def test_the_router_plugs_into_process_batch_and_passes_the_context() -> None:
    router = Router("ctx")
    seen: list[Any] = []

    @router.route(events="INSERT")
    def with_context(record: StreamRecord, context: Any) -> None:
        seen.append(context)

    @router.route(events="MODIFY")
    def explode(record: StreamRecord) -> None:
        raise RuntimeError("boom")

    context = object()
    response = process_batch(
        event(insert("a", seq=1), modify("a", {"n": 1}, {"n": 2}, seq=2), insert("b", seq=3)),
        router,
        context=context,
    )
    assert failed_ids(response) == ["2", "3"]
    assert seen == [context]
    assert with_context.__name__ == "with_context"  # the decorator returns the function


def test_per_key_ordering_keeps_other_items_going() -> None:
    router = Router("pk", ordering="per_key")
    ran: list[str] = []

    @router.route()
    def handle(record: StreamRecord) -> None:
        if record.new_image and record.new_image.get("poison"):
            raise ValueError("poison")
        ran.append(record.sequence_number)

    response = router.handle(
        event(
            insert("a", seq=1, poison=True),
            insert("b", seq=2),
            modify("a", {"n": 1}, {"n": 2}, seq=3),
            insert("c", seq=4),
        )
    )
    assert failed_ids(response) == ["1", "3"]
    assert ran == ["2", "4"]


# --- registration-time validation ----------------------------------------------------------------


def noop(record: StreamRecord) -> None:
    return None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"events": "UPDATE"}, "unknown event name"),
        ({"events": []}, "non-empty"),
        ({"table": ""}, "non-empty"),
        ({"pattern": {"NewImage": {"status": ["PAID"]}}}, "unknown field"),
        ({"pattern": {"new": {"status": "PAID"}}}, "invalid pattern"),
        ({"pattern": '{"new": '}, "invalid pattern"),
        (
            {"raw_pattern": {"dynamodb": {"NewImage": {"total": {"N": [{"numeric": [">"]}]}}}}},
            "invalid pattern",
        ),
        ({"when": lambda r: True}, "Predicate"),
        ({"key_prefix": {"pk": ""}}, "non-empty"),
        ({"ttl_delete": True, "events": "INSERT"}, "REMOVE"),
        ({"name": "has space"}, "name"),
    ],
)
def test_invalid_routes_fail_at_registration(options: dict[str, Any], message: str) -> None:
    router = Router("v")
    with pytest.raises(InvalidRouteError, match=message):
        router.add_route(noop, **options)
    assert router.routes == ()


def test_handlers_and_names_are_checked_at_registration() -> None:
    router = Router("v")
    router.add_route(noop)
    with pytest.raises(InvalidRouteError, match="already exists"):
        router.add_route(noop)
    with pytest.raises(InvalidRouteError, match="lambda"):
        router.add_route(lambda r: None)
    router.add_route(lambda r: None, name="named_lambda")

    async def coroutine(record: StreamRecord) -> None:
        return None

    with pytest.raises(InvalidRouteError, match="async"):
        router.add_route(coroutine)
    with pytest.raises(InvalidRouteError, match="callable"):
        router.add_route(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidRouteError, match="idempotency"):
        router.fan_out("no-store")
    with pytest.raises(InvalidRouteError, match="match"):
        Router("x", match="some")  # type: ignore[arg-type]


def test_a_fan_out_without_targets_fails_before_any_record_runs() -> None:
    router = Router("f", idempotency=MemoryIdempotencyStore())
    router.fan_out("empty")
    with pytest.raises(InvalidRouteError, match="no targets"):
        router.validate()
    with pytest.raises(InvalidRouteError, match="no targets"):
        router.handle(event(insert("a")))


# --- fan-out ---------------------------------------------------------------------------------------


class Targets:
    """Three fan-out targets; ``fail`` names targets that raise (for the given record keys)."""

    def __init__(self, router: Router) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[str, set[str]] = {}
        fan = router.fan_out("order-changed", events=["INSERT", "MODIFY"])
        for name in ("email", "analytics", "cache"):
            fan.add_target(self._target(name), name=name)

    def _target(self, name: str) -> Any:
        def run(record: StreamRecord) -> str:
            self.calls.append((name, record.sequence_number))
            if record.keys["pk"] in self.fail.get(name, set()):
                raise ConnectionError(f"{name} is down")
            return f"{name}:{record.keys['pk']}"

        return run


def test_fan_out_runs_every_target_in_order_and_reports_all_results() -> None:
    store = MemoryIdempotencyStore()
    router = Router("orders", idempotency=store)
    targets = Targets(router)
    targets.fail = {"analytics": {"b"}}
    result = router.run(event(insert("a", seq=1), insert("b", seq=2), insert("c", seq=3)))
    assert failed_ids(result.response()) == ["2", "3"]  # fail_fast from the failed record
    assert targets.calls == [
        ("email", "1"), ("analytics", "1"), ("cache", "1"),
        ("email", "2"), ("analytics", "2"), ("cache", "2"),  # cache ran despite analytics failing
    ]  # fmt: skip
    second = result.outcomes[1]
    assert second.routes == ["order-changed"]
    assert {n: o.status for n, o in second.targets.items()} == {
        "order-changed.email": "succeeded",
        "order-changed.analytics": "failed",
        "order-changed.cache": "succeeded",
    }
    assert second.targets["order-changed.cache"].result == "cache:b"
    assert isinstance(second.targets["order-changed.analytics"].error, ConnectionError)
    error = result.batch.errors[0][1]
    assert isinstance(error, TargetsFailedError)
    assert list(error.failures) == ["order-changed.analytics"]
    assert error.succeeded == ("order-changed.email", "order-changed.cache")
    stats = result.stats.as_dict()["targets"]
    assert stats["order-changed.analytics"] == {
        "matched": 2,
        "succeeded": 1,
        "failed": 1,
        "already_completed": 0,
    }
    assert stats["order-changed.cache"] == {
        "matched": 2,
        "succeeded": 2,
        "failed": 0,
        "already_completed": 0,
    }


def test_on_redelivery_only_the_failed_targets_run_again() -> None:
    store = MemoryIdempotencyStore()
    router = Router("orders", idempotency=store)
    targets = Targets(router)
    targets.fail = {"analytics": {"b"}}
    records = [insert("a", seq=1), insert("b", seq=2), insert("c", seq=3)]
    assert failed_ids(router.handle(event(*records))) == ["2", "3"]

    # Lambda redelivers from the reported record; the analytics outage is over.
    targets.fail = {}
    targets.calls.clear()
    result = router.run(event(*records[1:]))
    assert result.response() == {"batchItemFailures": []}
    assert targets.calls == [("analytics", "2"), ("email", "3"), ("analytics", "3"), ("cache", "3")]
    assert {n: o.status for n, o in result.outcomes[0].targets.items()} == {
        "order-changed.email": "already_completed",
        "order-changed.analytics": "succeeded",
        "order-changed.cache": "already_completed",
    }

    # A full redelivery (say, after a timeout) runs nothing at all.
    targets.calls.clear()
    result = router.run(event(*records))
    assert targets.calls == []
    assert result.stats.as_dict()["targets"]["order-changed.email"]["already_completed"] == 3
    cumulative = router.stats.snapshot()["targets"]["order-changed.analytics"]
    assert cumulative == {"matched": 7, "succeeded": 3, "failed": 1, "already_completed": 3}


def test_markers_are_read_per_batch_and_target_not_per_record() -> None:
    store = MemoryIdempotencyStore()
    router = Router("orders", idempotency=store)
    Targets(router)
    batch = event(*(insert(f"k{i}", seq=i) for i in range(1, 51)))
    before = store.requests
    router.handle(batch)
    # 3 targets: one read each (50 records < 100) and two writes each (50 markers / 25).
    assert store.requests - before == 3 * (1 + 2)
    assert len(store.items) == 150


def test_plain_routes_get_their_own_namespaces_too() -> None:
    store = MemoryIdempotencyStore()
    router = Router("r", idempotency=store)
    ran: list[str] = []
    failing = {"second": True}

    @router.route()
    def first(record: StreamRecord) -> None:
        ran.append("first")

    @router.route()
    def second(record: StreamRecord) -> None:
        ran.append("second")
        if failing["second"]:
            raise RuntimeError("down")

    records = event(insert("a", seq=1))
    assert failed_ids(router.handle(records)) == ["1"]
    failing["second"] = False
    assert router.handle(records) == {"batchItemFailures": []}
    assert ran == ["first", "second", "second"]
    assert sorted(item_id.split("#")[0] for item_id in store.items) == ["r.first", "r.second"]


class BrokenStore(MemoryIdempotencyStore):
    """Cannot be read for one namespace."""

    def __init__(self, broken_namespace: str) -> None:
        super().__init__()
        self.broken = broken_namespace

    def get_many(self, ids: Any) -> Any:
        if any(i.startswith(self.broken + "#") for i in ids):
            raise IdempotencyStoreUnavailableError(self.name, list(ids), "injected outage")
        return super().get_many(ids)


def test_a_target_whose_markers_cannot_be_read_does_not_run_but_the_others_do() -> None:
    router = Router("orders", idempotency=BrokenStore("orders.order-changed.analytics"))
    targets = Targets(router)
    result = router.run(event(insert("a", seq=1)))
    assert failed_ids(result.response()) == ["1"]
    assert targets.calls == [("email", "1"), ("cache", "1")]
    assert isinstance(
        result.outcomes[0].targets["order-changed.analytics"].error,
        IdempotencyStoreUnavailableError,
    )


def test_calling_the_router_per_record_keeps_per_target_semantics() -> None:
    store = MemoryIdempotencyStore()
    router = Router("orders", idempotency=store)
    targets = Targets(router)
    targets.fail = {"email": {"a"}}
    assert failed_ids(process_batch(event(insert("a", seq=1)), router)) == ["1"]
    targets.fail = {}
    targets.calls.clear()
    results = router(parse_event(event(insert("a", seq=1)))[0])
    assert targets.calls == [("email", "1")]
    assert results == {"order-changed.email": "email:a"}


def test_a_record_whose_route_cannot_be_decided_fails_alone() -> None:
    router = Router("r", idempotency=MemoryIdempotencyStore(), ordering="per_key")
    ran: list[str] = []

    @router.route(when=became("status", "PAID"))
    def paid(record: StreamRecord) -> None:
        ran.append(record.sequence_number)

    new_only = raw_record(
        "MODIFY", {"pk": "a"}, {"pk": "a", "status": "PAID"}, None, seq=1, view="NEW_IMAGE"
    )
    result = router.run(event(new_only, insert("b", seq=2, status="PAID")))
    assert failed_ids(result.response()) == ["1"]
    assert isinstance(result.batch.errors[0][1], ImageNotAvailableError)
    assert ran == ["2"]
