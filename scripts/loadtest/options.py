"""Command-line knobs of the load test and the workload they describe."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workload:
    """What a run writes. Shares are probabilities per order, drawn from ``seed``."""

    rate: float
    orders: int
    customers: int
    products: int
    hot_share: float
    poison_share: float
    decline_share: float
    invalid_share: float
    duplicate_share: float
    cancel_share: float
    phone_share: float
    backlog: int
    seed: int

    @property
    def seconds(self) -> float:
        return self.orders / self.rate


@dataclass(frozen=True)
class Options:
    workload: Workload
    endpoint_url: str | None
    deploy: bool
    outputs: Path | None
    redis_url: str | None
    region: str
    out: Path
    drain_timeout: float
    writers: int
    progress: bool


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="load_test.py",
        description="Deploy the order platform, drive orders through it, account for every one.",
    )
    add = parser.add_argument
    # Defaults a new user's `make demo` drains in a couple of minutes on a laptop: the fan-out
    # function makes five sink calls per record on one shard lane (BENCHMARKS.md has the figures
    # at higher rates).
    add("--rate", type=float, default=10.0, help="orders placed per second (10)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--seconds", type=float, default=None, help="steady phase length (30)")
    group.add_argument("--orders", type=int, default=None, help="orders to place (rate x seconds)")
    add("--customers", type=int, default=500, help="distinct customers (500)")
    add("--products", type=int, default=50, help="distinct products (50)")
    add("--hot-share", type=float, default=0.2, help="share of lines on the hot product (0.2)")
    add("--poison-share", type=float, default=0.002, help="orders no stage can process (0.002)")
    add("--decline-share", type=float, default=0.02, help="orders whose payment fails (0.02)")
    add("--invalid-share", type=float, default=0.01, help="orders rejected by validation (0.01)")
    add("--duplicate-share", type=float, default=0.05, help="orders put twice (0.05)")
    add("--cancel-share", type=float, default=0.05, help="orders the customer cancels (0.05)")
    add("--phone-share", type=float, default=0.3, help="customers with a phone number (0.3)")
    add(
        "--backlog",
        type=int,
        default=200,
        help="orders written while the mappings are disabled, then drained (200; 0: skip)",
    )
    add("--seed", type=int, default=1, help="random seed of the workload (1)")
    add("--writers", type=int, default=8, help="writer threads (8)")
    add("--endpoint-url", default=None, help="an endpoint to use instead of the embedded one")
    add(
        "--no-deploy",
        action="store_true",
        help="the platform is already applied at --endpoint-url (no apply, no runner)",
    )
    add(
        "--outputs",
        type=Path,
        default=None,
        help="with --no-deploy: `terraform output -json` of the applied platform "
        "(default: read from terraform/envs/local)",
    )
    add("--redis-url", default=None, help="with --no-deploy: the platform's Redis, to check it")
    add("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    add("--out", type=Path, default=Path("results"), help="where results go (results/)")
    add("--drain-timeout", type=float, default=180.0, help="seconds to wait for the drain (180)")
    add("--no-progress", action="store_true", help="no live progress bar")
    args = parser.parse_args(argv)

    shares = ("hot_share", "poison_share", "decline_share", "invalid_share", "duplicate_share")
    for name in (*shares, "cancel_share", "phone_share"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    if args.poison_share + args.decline_share + args.invalid_share > 1.0:
        parser.error("--poison-share + --decline-share + --invalid-share must not exceed 1")
    if args.rate <= 0 or args.customers < 1 or args.products < 1 or args.writers < 1:
        parser.error("--rate, --customers, --products and --writers must be positive")
    if args.backlog < 0:
        parser.error("--backlog must not be negative")
    if args.no_deploy and not args.endpoint_url:
        parser.error("--no-deploy needs --endpoint-url (where the platform is applied)")
    if args.orders is not None:
        if args.orders < 1:
            parser.error("--orders must be positive")
        orders = args.orders
    else:
        seconds = 30.0 if args.seconds is None else args.seconds
        if seconds <= 0:
            parser.error("--seconds must be positive")
        orders = max(1, round(args.rate * seconds))
    workload = Workload(
        rate=args.rate,
        orders=orders,
        customers=args.customers,
        products=args.products,
        hot_share=args.hot_share,
        poison_share=args.poison_share,
        decline_share=args.decline_share,
        invalid_share=args.invalid_share,
        duplicate_share=args.duplicate_share,
        cancel_share=args.cancel_share,
        phone_share=args.phone_share,
        backlog=args.backlog,
        seed=args.seed,
    )
    return Options(
        workload=workload,
        endpoint_url=args.endpoint_url,
        deploy=not args.no_deploy,
        outputs=args.outputs,
        redis_url=args.redis_url,
        region=args.region,
        out=args.out,
        drain_timeout=args.drain_timeout,
        writers=args.writers,
        progress=not args.no_progress,
    )
