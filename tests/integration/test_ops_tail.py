"""``streamkit tail`` against the embedded emulator: records in order, one line each, item
images hidden unless ``--images``; ``--max-records``; clear errors; and the console entry
(``python -m streamkit.cli``) stopping cleanly on --max-records and on SIGINT."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from streamkit.cli import main
from tests.helpers import AwsClients, create_stream_table, read_stream

SECRET = "4111-1111-SECRET-7"  # an attribute value that must never leak without --images


@dataclass
class Table:
    name: str
    stream_arn: str
    sequence_numbers: list[str]


def _changes(aws: AwsClients, unique_name: Callable[[str], str]) -> Table:
    """A table whose stream holds INSERT, MODIFY (status changed) and REMOVE of one item."""
    name = unique_name("tail")
    stream_arn = create_stream_table(aws.dynamodb, name, range_key="sk")
    key = {"pk": {"S": "order-1"}, "sk": {"S": "v1"}}
    aws.dynamodb.put_item(
        TableName=name,
        Item={**key, "card": {"S": SECRET}, "status": {"S": "NEW"}, "total": {"N": "12.50"}},
    )
    aws.dynamodb.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "PAID"}},
    )
    aws.dynamodb.delete_item(TableName=name, Key=key)
    sequence_numbers = [
        r["dynamodb"]["SequenceNumber"] for r in read_stream(aws.dynamodbstreams, stream_arn)
    ]
    assert len(sequence_numbers) == 3
    return Table(name, stream_arn, sequence_numbers)


def _tail(endpoint_url: str, *args: str) -> list[str]:
    return ["tail", *args, "--endpoint-url", endpoint_url]


def test_tail_prints_insert_modify_remove_in_order_without_images(
    aws: AwsClients,
    endpoint_url: str,
    unique_name: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = _changes(aws, unique_name)
    code = main(_tail(endpoint_url, table.name, "--from", "trim-horizon", "--max-records", "3"))
    out, err = capsys.readouterr()
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3
    fields = [line.split("  ") for line in lines]
    assert [f[1].strip() for f in fields] == ["INSERT", "MODIFY", "REMOVE"]
    assert [f[2] for f in fields] == table.sequence_numbers
    assert all(f[3] == table.name for f in fields)
    assert all(f[4] == '{"pk":"order-1","sk":"v1"}' for f in fields)
    assert fields[1][5] == "changed: status"
    assert all(len(f) == 5 for f in (fields[0], fields[2]))
    assert SECRET not in out and SECRET not in err
    assert "PAID" not in out  # the changed attribute's name is shown, never its value
    assert f"tailing {table.stream_arn}" in err


def test_tail_prints_images_only_when_asked(
    aws: AwsClients,
    endpoint_url: str,
    unique_name: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = _changes(aws, unique_name)
    args = _tail(endpoint_url, table.stream_arn, "--from", "trim-horizon", "--max-records", "3")
    assert main([*args, "--images"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f'new: {{"pk":"order-1","sk":"v1","card":"{SECRET}"' in lines[0]
    assert "old: " not in lines[0]
    assert '"status":"PAID"' in lines[1] and '"status":"NEW"' in lines[1]
    assert '"total":12.5' in lines[1]
    assert "new: " not in lines[2] and SECRET in lines[2]  # REMOVE: the old image only


def test_tail_json_lines_carry_images_only_with_images(
    aws: AwsClients,
    endpoint_url: str,
    unique_name: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = _changes(aws, unique_name)
    args = _tail(endpoint_url, table.name, "--from", "trim-horizon", "--max-records", "3", "--json")
    assert main(args) == 0
    plain = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["event_name"] for r in plain] == ["INSERT", "MODIFY", "REMOVE"]
    assert [r["sequence_number"] for r in plain] == table.sequence_numbers
    assert plain[1]["changed_attributes"] == ["status"]
    assert all(r["keys"] == {"pk": "order-1", "sk": "v1"} for r in plain)
    assert all("new_image" not in r and "old_image" not in r for r in plain)
    assert SECRET not in json.dumps(plain)

    assert main([*args, "--images"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert shown[0]["new_image"]["card"] == SECRET
    assert shown[1]["old_image"]["status"] == "NEW" and shown[1]["new_image"]["status"] == "PAID"
    assert shown[2]["old_image"]["total"] == 12.5 and "new_image" not in shown[2]


def test_tail_from_latest_shows_only_new_records_and_stops_at_max_records(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("tail")
    create_stream_table(aws.dynamodb, name)
    for i in range(3):
        aws.dynamodb.put_item(TableName=name, Item={"pk": {"S": f"old-{i}"}})
    out = io.StringIO()
    codes: list[int] = []

    def run_tail() -> None:
        # sys.stdout is process-wide: the test's own thread prints nothing meanwhile.
        with contextlib.redirect_stdout(out):
            codes.append(main(_tail(endpoint_url, name, "--max-records", "2")))

    # The stream is read from LATEST once the iterator exists, a moment after the start: keep
    # writing new items until tail has seen two and stopped.
    thread = threading.Thread(target=run_tail)
    thread.start()
    written = 0
    deadline = time.monotonic() + 30
    while thread.is_alive() and time.monotonic() < deadline:
        aws.dynamodb.put_item(TableName=name, Item={"pk": {"S": f"new-{written}"}})
        written += 1
        thread.join(0.2)
    assert not thread.is_alive(), "tail did not stop after --max-records 2"
    assert codes == [0]
    keys = [json.loads(line.split("  ")[4])["pk"] for line in out.getvalue().splitlines()]
    assert len(keys) == 2
    assert all(k.startswith("new-") for k in keys), keys
    first = int(keys[0].removeprefix("new-"))
    assert keys == [f"new-{first}", f"new-{first + 1}"]


def test_tail_of_a_table_without_a_stream_fails_clearly(
    aws: AwsClients,
    endpoint_url: str,
    unique_name: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = unique_name("nostream")
    aws.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert main(_tail(endpoint_url, name)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"streamkit tail: error: table {name} has no stream enabled" in err
    assert "Traceback" not in err


def test_tail_of_a_missing_table_or_stream_fails_clearly(
    aws: AwsClients,
    endpoint_url: str,
    unique_name: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = unique_name("missing")
    assert main(_tail(endpoint_url, missing)) == 1
    assert f"table {missing} does not exist" in capsys.readouterr().err

    gone = f"arn:aws:dynamodb:us-east-1:123456789012:table/{missing}/stream/2020-01-01T00:00:00.000"
    assert main(_tail(endpoint_url, gone)) == 1
    assert f"Stream not found: {gone}" in capsys.readouterr().err


def test_tail_rejects_a_max_records_below_one(
    endpoint_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_tail(endpoint_url, "whatever", "--max-records", "0")) == 2
    assert "--max-records must be at least 1" in capsys.readouterr().err


def _console(endpoint_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli", "tail", *args, "--endpoint-url", endpoint_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_console_entry_stops_after_max_records_and_on_sigint(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str]
) -> None:
    table = _changes(aws, unique_name)
    bounded = _console(endpoint_url, table.name, "--from", "trim-horizon", "--max-records", "2")
    following = _console(endpoint_url, table.name, "--from", "trim-horizon")
    try:
        out, err = bounded.communicate(timeout=60)
        assert bounded.returncode == 0, err
        assert [line.split("  ")[2] for line in out.splitlines()] == table.sequence_numbers[:2]

        assert following.stdout is not None
        seen = [following.stdout.readline() for _ in range(3)]  # all three, then it waits
        assert [line.split("  ")[1].strip() for line in seen] == ["INSERT", "MODIFY", "REMOVE"]
        following.send_signal(signal.SIGINT)
        rest, err = following.communicate(timeout=30)
        assert following.returncode == 0, err
        assert rest == ""
        assert "Traceback" not in err
    finally:
        for process in (bounded, following):
            if process.poll() is None:
                process.kill()
                process.wait()
