"""A mapping's filter whose keys are dotted paths filters as on AWS (event-ruler flattens
patterns and records to dotted field names), end to end over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.integration import test_runner as base
from tests.integration.test_runner import Scenario

scenario = base.scenario  # the fixture, shared


def test_a_dotted_filter_key_matches_the_nested_record_path(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario()
    pattern = {"dynamodb": {"NewImage.status.S": ["PAID"]}, "eventName": ["INSERT"]}
    uuid = s.map(FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]})
    s.put("unpaid", status={"S": "NEW"})
    s.put("paid", status={"S": "PAID"})
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["succeeded"] >= 1 and st[uuid]["filtered"] >= 1)
    assert [k for call in s.invocations(1) for k in call.keys] == ["paid"]
    s.assert_no_more()
