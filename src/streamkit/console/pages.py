"""Server-rendered HTML pages. Each page carries its first data, drawn from the JSON API, so
it is useful without JavaScript; ``static/console.js`` then keeps it live by polling the same
API once a second. Every value from the runner or the endpoint is escaped."""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

__all__ = [
    "destination_page",
    "destinations_page",
    "faults_page",
    "mapping_page",
    "not_found_page",
    "overview_page",
    "stream_page",
]


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _layout(title: str, body: str, *, faults: bool, page: str, data: Any = None) -> str:
    links = [("/", "Overview"), ("/destinations", "On-failure destinations")]
    if faults:
        links.append(("/faults", "Faults"))
    nav = " ".join(f'<a href="{href}">{_e(text)}</a>' for href, text in links)
    payload = escape(json.dumps(data), quote=False) if data is not None else "null"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{_e(title)} - streamkit console</title>
<link rel="stylesheet" href="/static/uPlot.min.css">
<link rel="stylesheet" href="/static/console.css">
</head><body data-page="{_e(page)}">
<header><strong>streamkit console</strong> <nav>{nav}</nav>
<span id="live" class="live" title="updated every second">live</span></header>
<main><h1>{_e(title)}</h1>
{body}
</main>
<script type="application/json" id="initial">{payload}</script>
<script src="/static/uPlot.iife.min.js"></script>
<script src="/static/console.js"></script>
</body></html>
"""


def _age(ms: Any) -> str:
    return "-" if ms is None else f"{float(ms):.0f} ms"


def mapping_row(m: dict[str, Any]) -> str:
    uuid = _e(m["uuid"])
    table = m.get("table_name") or ""
    return (
        f'<tr data-uuid="{uuid}" class="state-{_e(m["state"])}">'
        f'<td><a href="/mappings/{quote(m["uuid"])}">{_e(m["uuid"][:8])}</a></td>'
        f'<td><a href="/tables/{quote(table)}">{_e(table)}</a></td>'
        f"<td>{_e(m['function_name'])}</td>"
        f'<td data-f="state">{_e(m["state"])}</td>'
        f'<td data-f="iterator_age_ms" class="num">{_age(m["iterator_age_ms"])}</td>'
        f'<td data-f="records_per_s" class="num">{m["records_per_s"]}</td>'
        f'<td data-f="invocations" class="num">{m["invocations"]}</td>'
        f'<td data-f="errors" class="num">{m["errors"]}</td>'
        f'<td data-f="throttles" class="num">{m["throttles"]}</td>'
        f'<td data-f="lanes" class="num">{m["lanes"]}</td>'
        f'<td class="spark"><div class="sparkline"></div></td>'
        f'<td data-f="last_error" class="error">{_e(m["last_error"])}</td></tr>'
    )


_MAPPING_HEAD = (
    "<tr><th>Mapping</th><th>Table</th><th>Function</th><th>State</th><th>Iterator age</th>"
    "<th>Records/s</th><th>Invocations</th><th>Errors</th><th>Throttles</th><th>Lanes</th>"
    "<th>Records/s, last minute</th><th>Last error</th></tr>"
)


def overview_page(
    *,
    tables: list[dict[str, Any]],
    mappings: list[dict[str, Any]],
    total: int,
    query: str,
    offset: int,
    limit: int,
    faults: bool,
) -> str:
    table_rows = "".join(
        f'<tr><td><a href="/tables/{quote(t["table_name"])}">{_e(t["table_name"])}</a></td>'
        f"<td>{_e(t['stream_arn'] or '(no stream)')}</td><td>{_e(t['stream_view_type'])}</td>"
        f'<td class="num">{len(t["mappings"])}</td></tr>'
        for t in tables
    )
    rows = "".join(mapping_row(m) for m in mappings)
    pager = []
    if offset > 0:
        back = urlencode({"q": query, "offset": max(0, offset - limit), "limit": limit})
        pager.append(f'<a id="prev" href="/?{back}">previous</a>')
    if offset + limit < total:
        more = urlencode({"q": query, "offset": offset + limit, "limit": limit})
        pager.append(f'<a id="next" href="/?{more}">next</a>')
    shown = f"{offset + 1}-{offset + len(mappings)} of {total}" if mappings else f"0 of {total}"
    body = f"""
<section><h2>Tables and streams</h2>
<table id="tables"><tr><th>Table</th><th>Stream</th><th>View</th><th>Mappings</th></tr>
{table_rows or '<tr><td colspan="4">(no tables)</td></tr>'}</table></section>
<section><h2>Event source mappings</h2>
<form method="get" action="/" class="filter">
<input type="search" name="q" id="filter" value="{_e(query)}"
 placeholder="filter: table, function, UUID, state">
<input type="hidden" name="limit" value="{limit}"><button type="submit">Filter</button>
<span id="shown" data-total="{total}">{_e(shown)}</span> {" ".join(pager)}
</form>
<table id="mappings" data-offset="{offset}" data-limit="{limit}" data-query="{_e(query)}">
{_MAPPING_HEAD}{rows or '<tr class="empty"><td colspan="12">(no mappings)</td></tr>'}</table>
</section>"""
    return _layout("Overview", body, faults=faults, page="overview")


def mapping_page(detail: dict[str, Any], failures: dict[str, Any] | None, *, faults: bool) -> str:
    counters = "".join(
        f'<tr><th>{_e(name)}</th><td data-c="{_e(name)}" class="num">{value}</td></tr>'
        for name, value in detail["counters"].items()
    )
    config = "".join(
        f"<tr><th>{_e(k)}</th><td><code>{_e(json.dumps(v))}</code></td></tr>"
        for k, v in detail["config"].items()
    )
    destination = ""
    if failures is not None:
        destination = (
            f'<p>On-failure destination: <a href="/destinations/{quote(detail["uuid"])}">'
            f"{_e(failures['destination_arn'])}</a>; failure records in it now, by condition "
            "(RecordAgeExceeded: record-age expiries): "
            f'<span id="by-condition">{_e(_conditions(failures))}</span></p>'
            + failures_table(failures, replay=False)
        )
    body = f"""
<p class="ids">UUID <code>{_e(detail["uuid"])}</code><br>
Function <code>{_e(detail["function_arn"])}</code><br>
Stream <a href="/tables/{quote(detail["table_name"])}"><code>{_e(detail["event_source_arn"])}</code></a></p>
<table id="summary">{_MAPPING_HEAD}{mapping_row(detail)}</table>
<div class="charts">
<figure><figcaption>Records/s and invocations/s</figcaption><div id="chart-rates"></div></figure>
<figure><figcaption>Iterator age (change to handler), ms</figcaption><div id="chart-age"></div></figure>
<figure><figcaption>Records per invoke (batch size)</figcaption><div id="chart-batch"></div></figure>
<figure><figcaption>Iterator age histogram (one sample per second with invokes)</figcaption>
<div id="chart-histogram"></div></figure>
</div>
<div class="columns"><section><h2>Counters</h2><table id="counters">{counters}</table>
<p class="hint">failed = failed invokes (each is followed by a retry, a bisect or giving up);
retries = re-invokes of a failed batch; bisects = failed batches split in two;
record_age_expired = records older than MaximumRecordAgeInSeconds, given up on;
sent_to_destination / discarded = records given up on (retries exhausted or record too old).</p>
</section>
<section><h2>Settings</h2><table id="config">{config}</table></section></div>
<section><h2>Last failures</h2><p>Last error: <span id="last-error" class="error">{_e(detail["last_error"] or "-")}</span></p>
{destination or "<p>No on-failure destination: records given up on are counted as discarded.</p>"}
</section>"""
    return _layout(
        f"Mapping {detail['function_name']}", body, faults=faults, page="mapping", data=detail
    )


def _conditions(failures: dict[str, Any]) -> str:
    counts = failures.get("by_condition") or {}
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def failures_table(failures: dict[str, Any], *, replay: bool) -> str:
    rows = []
    for f in failures["failures"]:
        records = f["records"]
        keys = ", ".join(json.dumps(r.get("keys"), separators=(",", ":")) for r in records)
        if f.get("unavailable"):
            keys = f"(records unavailable: {f['unavailable']})"
        action = ""
        if replay:
            action = (
                f'<td><button class="replay-one" data-message="{_e(f["message_id"])}">'
                "Replay</button></td>"
            )
        rows.append(
            f'<tr class="failure" data-message="{_e(f["message_id"])}">'
            f"<td>{_e(f['timestamp'])}</td><td>{_e(f['condition'])}</td>"
            f"<td>{_e(f['function_error'])}</td>"
            f"<td>{_e(f['start_sequence_number'])}..{_e(f['end_sequence_number'])}</td>"
            f'<td class="num">{_e(f["batch_size"])}</td>'
            f'<td class="num">{_e(f["approximate_invoke_count"])}</td>'
            f'<td class="keys">{_e(keys)}</td>{action}</tr>'
        )
    head = (
        "<tr><th>When</th><th>Condition</th><th>Function error</th><th>Sequence numbers</th>"
        "<th>Batch</th><th>Invokes</th><th>Keys of the records</th>"
        + ("<th></th>" if replay else "")
        + "</tr>"
    )
    empty = f'<tr class="empty"><td colspan="{8 if replay else 7}">(no failure records)</td></tr>'
    return f'<table id="failures">{head}{"".join(rows) or empty}</table>'


def destinations_page(destinations: list[dict[str, Any]], *, faults: bool) -> str:
    rows = "".join(
        f'<tr><td><a href="/destinations/{quote(d["mapping_uuid"])}">{_e(d["mapping_uuid"][:8])}</a></td>'
        f"<td>{_e(d['function_arn'].rsplit(':', 1)[-1])}</td>"
        f"<td>{_e(d['event_source_arn'].split(':table/')[-1].split('/')[0])}</td>"
        f"<td>{_e(d['destination_arn'])}</td>"
        f'<td class="num" data-f="visible">{_e(d["visible"])}</td>'
        f'<td class="num">{_e(d["in_flight"])}</td></tr>'
        for d in destinations
    )
    body = f"""<table id="destinations"><tr><th>Mapping</th><th>Function</th><th>Table</th>
<th>Destination</th><th>Messages</th><th>In flight</th></tr>
{rows or '<tr><td colspan="6">(no mapping has an on-failure destination)</td></tr>'}</table>"""
    return _layout("On-failure destinations", body, faults=faults, page="destinations")


def destination_page(mapping_uuid: str, failures: dict[str, Any], *, faults: bool) -> str:
    body = f"""<p>Mapping <a href="/mappings/{quote(mapping_uuid)}"><code>{_e(mapping_uuid)}</code></a>
sends what it gives up on to <code>{_e(failures["destination_arn"])}</code>.
<span id="counts">{_e(failures["visible"])} message(s), {_e(failures["in_flight"])} in flight</span></p>
<p class="hint">Each failure record names a batch by shard and sequence numbers; the keys are read back
from the stream while it keeps them (24 hours). Replay re-reads the batch, invokes the function as the
runner would, and deletes the message only if the function took it (as <code>streamkit dlq replay</code>).</p>
<p><button id="replay-all">Replay all</button> <span id="replay-result" role="status"></span></p>
<div id="failures-box" data-mapping="{_e(mapping_uuid)}">{failures_table(failures, replay=True)}</div>"""
    return _layout("On-failure records", body, faults=faults, page="destination")


def stream_page(table: str, images: bool, *, faults: bool) -> str:
    toggle = (
        f'<a href="/tables/{quote(table)}">hide images</a>'
        if images
        else f'<a href="/tables/{quote(table)}?images=1">show images</a>'
    )
    body = f"""<p>Live tail of <code>{_e(table)}</code>'s stream from now on, as <code>streamkit tail</code>
shows it: keys and changed attribute names; item images only on request ({toggle}).
<span id="tail-status">connecting</span></p>
<table id="tail" data-table="{_e(table)}" data-images="{int(images)}">
<tr><th>Time</th><th>Event</th><th>Sequence number</th><th>Keys</th><th>Changed</th>
{"<th>New image</th><th>Old image</th>" if images else ""}</tr></table>"""
    return _layout(f"Stream of {table}", body, faults=faults, page="stream")


def faults_page(rules: Any, *, faults: bool) -> str:
    body = f"""<p>Fault-injection rules active on the emulator (<code>/_streamkit/faults</code>).</p>
<pre id="rules">{_e(json.dumps(rules, indent=2))}</pre>
<form id="fault-form"><label>New rule (JSON)<br>
<textarea id="fault-rule" rows="6" cols="70">{{"service": "dynamodb", "operation": "PutItem", "error": "ThrottlingException", "probability": 0.5, "count": 10}}</textarea></label><br>
<button type="submit">Add rule</button> <button type="button" id="faults-clear">Clear all</button>
<span id="fault-result" role="status"></span></form>"""
    return _layout("Faults", body, faults=faults, page="faults")


def not_found_page(message: str, *, faults: bool) -> str:
    return _layout("Not found", f"<p>{_e(message)}</p>", faults=faults, page="missing")
