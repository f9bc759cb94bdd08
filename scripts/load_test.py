#!/usr/bin/env python3
"""The main job: drive the order platform with orders and account for every one of them.

Default (``make demo``): start the embedded emulator and a private redis-server, build the
function zips, ``terraform apply`` terraform/envs/local to the emulator, run its event source
mappings here (``streamkit.local.Runner``), then:

1. measure the emulator's own GetRecords ceiling on a scratch table;
2. place orders at ``--rate`` for ``--seconds`` (or ``--orders``), with poison orders, declined
   payments, invalid orders, duplicate producer writes and customer cancellations, from
   ``--customers`` customers over ``--products`` products with a hot one;
3. wait until every order settled, then write ``--backlog`` orders while the orders stream's
   mappings are disabled and time how fast the runner drains them once re-enabled;
4. read back what the platform did and check that it balances (see ``loadtest.accounting``):
   the exit status is 1 when it does not, naming the missing order ids;
5. report per-consumer change->handler latency (the handlers' EMF documents, read back from
   CloudWatch Logs), order completion latency, throughput against the ceiling, retries, DLQ and
   idempotent skips; write ``results/load_test.json`` and PNGs; tear everything down.

``--endpoint-url URL --no-deploy`` drives a platform applied earlier (its outputs from
``--outputs FILE`` or ``terraform output -json`` in terraform/envs/local); that endpoint runs
the mappings (LocalStack, AWS), so no runner starts here, and the backlog drain is skipped.

Exit status: 0 balanced, 1 not balanced, 2 a prerequisite is missing or deployment failed.
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadtest import accounting, readback, report
from loadtest.ceiling import measure_ceiling
from loadtest.deploy import DeployError, Platform, applied_platform, embedded_platform
from loadtest.options import Options, parse_args
from loadtest.prereqs import PrerequisiteMissing
from loadtest.progress import Progress
from loadtest.workload import OrderPlan, Writer, now_ms, plan_orders, product_items, write_backlog
from streamkit import serialize

ORDER_STREAM_FUNCTIONS = ("workflow", "order_events")
PII_MARKERS = ("@example.com", "+1555")  # values of the redacted fields (email, phone)
SETTLE_POLL_S = 2.0
SETTLE_POLL_ORDERS = 1000


class Sampler:
    """Cumulative counters every half second: orders placed, records handled per mapping."""

    def __init__(self, run: LoadRun) -> None:
        self.run = run
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            now = time.time()
            with self.run.writer.log.lock:
                placed = len(self.run.writer.log.placed)
            self.samples.setdefault("orders placed/s", []).append((now, placed))
            for name, handled in self.run.handled_per_function().items():
                self.samples.setdefault(f"{name} records handled/s", []).append((now, handled))
            self.run.show(placed)


class LoadRun:
    def __init__(self, options: Options, platform: Platform, progress: Progress) -> None:
        self.options = options
        self.platform = platform
        self.progress = progress
        self.writer = Writer(
            platform.client_factory("dynamodb"), platform.tables["orders"], options.writers
        )
        self.settled = 0
        # Terminal states are final: a settled order is never read again by the poll.
        self.terminal: set[str] = set()
        self.plans: dict[str, OrderPlan] = {}
        self.mappings = self._mappings()

    # -- runner figures -----------------------------------------------------------------

    def _mappings(self) -> dict[str, list[dict[str, Any]]]:
        lambda_ = self.platform.client("lambda")
        found = {}
        for name, function in self.platform.functions.items():
            # By ARN: moto filters by FunctionName only when it is given as an ARN.
            pages = lambda_.get_paginator("list_event_source_mappings").paginate(
                FunctionName=function["function_arn"]
            )
            found[name] = [m for page in pages for m in page["EventSourceMappings"]]
        return found

    def runner_stats(self) -> dict[str, dict[str, Any]]:
        if self.platform.runner is None:
            return {}
        stats: dict[str, dict[str, Any]] = self.platform.runner.stats()
        return stats

    def handled_per_function(self) -> dict[str, int]:
        stats = self.runner_stats()
        return {
            name: sum(
                stats.get(m["UUID"], {}).get("succeeded", 0)
                + stats.get(m["UUID"], {}).get("filtered", 0)
                for m in mappings
            )
            for name, mappings in self.mappings.items()
        }

    def failed_invokes(self) -> int:
        stats = self.runner_stats()
        return sum(
            stats.get(m["UUID"], {}).get("failed", 0)
            for mappings in self.mappings.values()
            for m in mappings
        )

    def failed_fan_out_records(self) -> int:
        """Records of the fan-out functions' failed invokes (failed invokes x BatchSize): the
        most side effects the docs allow to repeat (see loadtest/accounting.py)."""
        stats = self.runner_stats()
        return sum(
            int(stats.get(m["UUID"], {}).get("failed", 0)) * int(m.get("BatchSize", 0))
            for name, mappings in self.mappings.items()
            if name != "workflow"
            for m in mappings
        )

    def show(self, placed: int) -> None:
        handled = self.handled_per_function()
        info = " ".join(f"{name} {count}" for name, count in handled.items())
        if handled:
            info = f"records handled: {info}; failed invokes {self.failed_invokes()}"
        self.progress.update(placed, self.settled, info)

    # -- phases -------------------------------------------------------------------------------

    def seed_products(self) -> int:
        dynamodb = self.platform.client("dynamodb")
        items = product_items(self.options.workload.products, now_ms())
        for item in items:
            dynamodb.put_item(TableName=self.platform.tables["products"], Item=serialize(item))
        return len(items)

    def wait_for_mappings(self) -> None:
        runner = self.platform.runner
        if runner is None:
            return
        uuids = [m["UUID"] for mappings in self.mappings.values() for m in mappings]
        if not uuids:
            raise DeployError("the platform's functions have no event source mappings")
        runner.wait_until(
            lambda stats: all(stats.get(u, {}).get("state") == "polling" for u in uuids),
            timeout=180,
        )

    def wait_settled(self, order_ids: list[str], deadline: float) -> bool:
        """Until every order is terminal, or (poison) in the workflow's on-failure queue."""
        while True:
            placed = [oid for oid in order_ids if oid in self.writer.log.placed]
            # The oldest open orders only: they settle first, and each poll's BatchGetItems run
            # in the emulator the platform needs (at 6,000 open orders, polling them all cost
            # it a quarter of a core). The loop ends only when every order was seen terminal.
            unknown = [oid for oid in placed if oid not in self.terminal][:SETTLE_POLL_ORDERS]
            statuses = readback.order_statuses(self.platform, unknown)
            self.terminal.update(o for o in unknown if statuses.get(o) in readback.TERMINAL)
            open_ids = [oid for oid in placed if oid not in self.terminal]
            poison = [oid for oid in open_ids if self.plans[oid].kind == "poison"]
            if len(poison) == len(open_ids) and poison:
                in_dlq = readback.dead_letters(self.platform).order_ids.get("workflow", set())
                open_ids = [oid for oid in poison if oid not in in_dlq]
            self.settled = len(self.writer.log.placed) - len(open_ids)
            self.show(len(self.writer.log.placed))
            if not open_ids:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(SETTLE_POLL_S)

    def wait_idle(self, quiet_s: float = 3.0, timeout: float = 60.0) -> None:
        """Until the runner handled nothing new for ``quiet_s`` (the fan-out caught up)."""
        if self.platform.runner is None:
            time.sleep(quiet_s)
            return
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            now = self.handled_per_function()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.25)

    def backlog_drain(self, plans: list[OrderPlan]) -> dict[str, float]:
        """Orders written while the orders stream's mappings are disabled; then the records/s
        each mapping handles once re-enabled: the backlog's records over the time from the
        first GetRecords that returned some (the restart before it is not the drain) until all
        of them are handled."""
        lambda_ = self.platform.client("lambda")
        runner = self.platform.runner
        targets = [m for name in ORDER_STREAM_FUNCTIONS for m in self.mappings.get(name, [])]
        for mapping in targets:
            lambda_.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        runner.wait_until(
            lambda s: all(s[m["UUID"]]["state"] == "disabled" for m in targets), timeout=60
        )
        write_backlog(
            self.platform.client("dynamodb"), self.platform.tables["orders"], plans, self.writer.log
        )
        before = runner.stats()
        base = {m["UUID"]: _handled(before[m["UUID"]]) for m in targets}
        polled = {m["UUID"]: int(before[m["UUID"]].get("polled", 0)) for m in targets}
        for mapping in targets:
            lambda_.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
        first: dict[str, float] = {}
        done: dict[str, float] = {}
        deadline = time.monotonic() + self.options.drain_timeout
        while len(done) < len(targets) and time.monotonic() < deadline:
            stats, now = runner.stats(), time.monotonic()
            for mapping in targets:
                uuid = mapping["UUID"]
                if uuid not in first and int(stats[uuid].get("polled", 0)) > polled[uuid]:
                    first[uuid] = now
                if uuid not in done and _handled(stats[uuid]) - base[uuid] >= len(plans):
                    done[uuid] = now
            time.sleep(0.01)
        rates = {}
        for name in ORDER_STREAM_FUNCTIONS:
            for mapping in self.mappings.get(name, []):
                uuid = mapping["UUID"]
                if uuid in first and uuid in done:
                    rates[name] = len(plans) / max(done[uuid] - first[uuid], 0.01)
        if len(done) == len(targets) == len(first) and targets:
            # Every mapping reads every record: the emulator served all of them in this window.
            window = max(done.values()) - min(first.values())
            rates["all mappings"] = len(plans) * len(targets) / max(window, 0.01)
        return rates


def _handled(stats: dict[str, Any]) -> int:
    return int(stats.get("succeeded", 0)) + int(stats.get("filtered", 0))


def execute(options: Options, platform: Platform, progress: Progress) -> dict[str, Any]:
    workload = options.workload
    say = progress.say
    run = LoadRun(options, platform, progress)
    rng = random.Random(workload.seed)
    prefix = f"{int(time.time()) % 100000:05d}-"
    steady_plans = plan_orders(workload, workload.orders, rng, prefix)
    backlog_plans = (
        plan_orders(workload, workload.backlog, rng, prefix + "b", steady=False)
        if platform.runner is not None
        else []
    )
    run.plans = {plan.order_id: plan for plan in (*steady_plans, *backlog_plans)}
    started_ms = now_ms()

    run.wait_for_mappings()
    products_put = run.seed_products()
    batch_size = max(
        (m.get("BatchSize", 100) for name in ORDER_STREAM_FUNCTIONS for m in run.mappings[name]),
        default=100,
    )
    say(f"measuring the emulator's GetRecords ceiling (page size {batch_size}) ...")
    ceiling = measure_ceiling(
        platform.client("dynamodb"),
        platform.client("dynamodbstreams"),
        max(2000, workload.backlog),
        batch_size,
    )
    say(
        f"GetRecords ceiling: {ceiling.records_per_s:.0f} records/s at Limit={batch_size}, "
        f"{ceiling.records_per_s_limit_1000:.0f} at Limit=1000"
    )

    with Sampler(run) as sampler:
        say(f"placing {workload.orders} orders at {workload.rate:g}/s ...")
        write_seconds = run.writer.run(steady_plans, workload.rate)
        steady_written = len(run.writer.log.placed)
        deadline = time.monotonic() + options.drain_timeout
        settled = run.wait_settled([p.order_id for p in steady_plans], deadline)
        if not settled:
            say("steady orders did not all settle within --drain-timeout")
        run.wait_idle()
        steady_end_ms = now_ms()
        steady_handled = run.handled_per_function()
        drain_rates: dict[str, float] = {}
        if backlog_plans and settled:
            say(f"backlog: {len(backlog_plans)} orders while the mappings are disabled ...")
            progress.grow(len(backlog_plans))
            drain_rates = run.backlog_drain(backlog_plans)
            run.wait_settled(
                [p.order_id for p in backlog_plans], time.monotonic() + options.drain_timeout
            )
        run.wait_idle()
    say("reading back and settling the account ...")
    account, metrics = settle_account(run, products_put, started_ms, options.drain_timeout)

    latencies = metrics.latencies(started_ms, steady_end_ms)
    orders = readback.orders(platform)
    steady_ids = {p.order_id for p in steady_plans}
    completion = [
        float(item["updated_at"]) - float(item["placed_at"])
        for oid, item in orders.items()
        if oid in steady_ids and str(item.get("status")) in readback.TERMINAL
    ]
    steady_seconds = max(0.001, (steady_end_ms - started_ms) / 1000)
    handled_total = sum(steady_handled.values())
    # Both mappings of the orders stream read the backlog at once, from one emulator: what they
    # read together is what the emulator served, the figure to hold against its ceiling.
    backlog_rate = drain_rates.get("all mappings")
    totals = metrics.totals
    throughput: dict[str, Any] = {
        "writes_per_s": round(steady_written / write_seconds, 1) if write_seconds else 0.0,
        "handled_per_s": round(handled_total / steady_seconds, 1),
        "emulator_get_records_per_s": round(ceiling.records_per_s, 1),
        "emulator_get_records_per_s_limit_1000": round(ceiling.records_per_s_limit_1000, 1),
        "get_records_page_size": ceiling.page_size,
        "backlog_orders": len(backlog_plans),
        "backlog_handled_per_s": round(backlog_rate, 1) if backlog_rate else None,
        "backlog_handled_per_s_by_function": {k: round(v, 1) for k, v in drain_rates.items()},
    }
    if backlog_rate:
        ratio = backlog_rate / ceiling.records_per_s
        throughput["drain_vs_ceiling"] = round(ratio, 2)
        throughput["limit"] = (
            "the emulator (the runner drains at >= 0.9 of its GetRecords ceiling)"
            if ratio >= 0.9
            else "the stack (runner + functions) drains below 0.9 of the emulator's ceiling"
        )
    series = {
        name: report.rates(points, started_ms / 1000) for name, points in sampler.samples.items()
    }
    result: dict[str, Any] = {
        "endpoint_url": platform.endpoint_url,
        "embedded": platform.embedded,
        "workload": {
            "rate": workload.rate,
            "seconds": round(workload.seconds, 2),
            "orders": workload.orders,
            "backlog": len(backlog_plans),
            "customers": workload.customers,
            "products": workload.products,
            "hot_share": workload.hot_share,
            "poison_share": workload.poison_share,
            "decline_share": workload.decline_share,
            "invalid_share": workload.invalid_share,
            "duplicate_share": workload.duplicate_share,
            "cancel_share": workload.cancel_share,
            "seed": workload.seed,
            "kinds": dict(Counter(plan.kind for plan in steady_plans)),
            "duplicates_written": run.writer.log.duplicates,
            "cancels_attempted": run.writer.log.cancels_attempted,
            "cancels_applied": len(run.writer.log.cancelled),
            "write_errors": run.writer.log.failed,
        },
        "accounting": account.as_json(),
        "latency_ms": {name: report.summary(values) for name, values in sorted(latencies.items())},
        "completion_ms": report.summary(completion),
        "throughput": throughput,
        "operations": {
            "failed_invokes": run.failed_invokes() if platform.runner is not None else None,
            "dlq_messages": sum(readback.dead_letters(platform).messages.values()),
            "idempotent_skips": int(
                sum(t.get("RecordsAlreadyCompleted", 0) for t in totals.values())
            ),
            "records_failed": int(sum(t.get("RecordsFailed", 0) for t in totals.values())),
            "emf_documents": metrics.documents,
            "log_lines_dropped": (
                platform.runner.log_shipper.stats()["dropped"]
                if platform.runner is not None and platform.runner.log_shipper is not None
                else None
            ),
            "per_consumer": totals,
            "runner": run.runner_stats(),
        },
        "files": [],
    }
    out = options.out
    result["files"] = [str(report.write_json(result, out))]  # first: a plot failing loses nothing
    files = report.plots(out, latencies, completion, series) + dashboard(platform, out)
    result["files"] += [str(path) for path in files]
    report.write_json(result, out)
    return result


def settle_account(
    run: LoadRun, products_put: int, started_ms: int, timeout: float
) -> tuple[accounting.Account, readback.Metrics]:
    """The account, re-read until it balances (sinks are eventually consistent) or time's up."""
    platform = run.platform
    deadline = time.monotonic() + min(timeout, 60.0)
    while True:
        account = accounting.settle(
            placed=dict(run.writer.log.placed),
            orders=readback.orders(platform),
            dead=readback.dead_letters(platform),
            products_put=products_put,
            audit=readback.audit_archive(platform, PII_MARKERS),
            emails=readback.emulator_messages(platform, "/_streamkit/ses/messages"),
            sms=readback.emulator_messages(platform, "/_streamkit/sns/sms"),
            cache=readback.cache_check(platform, list(run.writer.log.placed)),
            aggregates=readback.aggregates(platform),
            failed_fan_out_records=run.failed_fan_out_records(),
        )
        if account.balanced or time.monotonic() > deadline:
            break
        time.sleep(3.0)
    if platform.runner is not None and platform.runner.log_shipper is not None:
        platform.runner.log_shipper.flush(timeout_s=30)
    return account, readback.emf_metrics(platform, started_ms)


def dashboard(platform: Platform, out: Path) -> list[Path]:
    """The analytics dashboard as a PNG, by the platform's renderer."""
    try:
        from analytics_dashboard import render_dashboard
    except ImportError:
        return []
    path = render_dashboard(readback.aggregates(platform), out / "analytics_dashboard.png")
    return [Path(path)]


def route_logs(out: Path) -> Path:
    """The runtime's own logs (retries of poison records, cold starts) go to a file: they are
    expected in a load test and would drown the live view. Errors still reach the console."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runtime.log"
    to_file = logging.FileHandler(path, mode="w")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_console = logging.StreamHandler()
    to_console.setLevel(logging.ERROR)
    logging.basicConfig(level=logging.INFO, handlers=[to_file, to_console], force=True)
    return path


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    log_file = route_logs(options.out)
    # SIGTERM tears down like Ctrl-C: the emulator, Redis and the runner's workers stop with us.
    signal.signal(signal.SIGTERM, _interrupt)
    progress = Progress(options.workload.orders, options.progress)
    try:
        with ExitStack() as stack:
            if options.deploy:
                platform = stack.enter_context(
                    embedded_platform(
                        options.region,
                        progress.say,
                        options.out / "deploy.log",
                        options.endpoint_url,
                    )
                )
            else:
                assert options.endpoint_url is not None
                platform = applied_platform(
                    options.endpoint_url, options.region, options.outputs, options.redis_url
                )
            with progress:
                result = execute(options, platform, progress)
            progress.say("tearing down ...")
    except PrerequisiteMissing as exc:
        print(f"load_test.py: {exc}", file=sys.stderr)
        return 2
    except DeployError as exc:
        print(f"load_test.py: deployment failed: {exc}", file=sys.stderr)
        return 2
    report.print_summary(result)
    print("results: " + ", ".join(result["files"]))
    deploy_log = f", {options.out / 'deploy.log'} (terraform)" if options.deploy else ""
    print(f"logs: {log_file} (runtime){deploy_log}")
    return 0 if result["accounting"]["balanced"] else 1


if __name__ == "__main__":
    sys.exit(main())
