"""Demo data for `make run`: people who can sign in, their money, and anchored documents.

Each module seeds its own (its manifest's `demo`), in manifest order: identity first (the users
and their DIDs), then payments (accounts owned by those DIDs, funding, fees, FX quotes and a few
payments including a cross-border one), then the notary, credit (its model and decisions) and
lending (products and loans with months of history).  Every step is idempotent, so seeding twice
changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from zhijin.node.modules import MODULES
from zhijin.node.runtime import Platform
from zhijin.payments.demo import DemoPayments
from zhijin.platform.demo_clock import DEMO_CLOCK, DemoClock

__all__ = ["DemoSummary", "seed_demo"]

log = logging.getLogger("zhijin.demo")


@dataclass(frozen=True, slots=True)
class DemoSummary:
    users: dict[str, str]  # name -> DID
    payments: DemoPayments
    documents: tuple[str, ...]  # SHA-256 of each anchored document


def seed_demo(platform: Platform, *, story_start_ms: int | None = None) -> DemoSummary:
    """Run each module's demo seed in manifest order, handing each the results before it.

    With `story_start_ms` (the demo chain's genesis time, in the past: zhijin/platform/
    demo_clock.py) the node seeds under a `DemoClock` standing at that start.  A seed with a
    history moves it on (lending: months of collections, defaults and a write-off), the clock
    is then brought to the present for what the seeds left to it (fresh FX quotes), and the node
    goes back to the wall clock.
    """
    seeded: dict[str, Any] = {}
    if story_start_ms is None:
        _seed(platform, seeded)
    else:
        node = platform.node
        wall = node.clock
        clock = DemoClock(max(story_start_ms, node.head.time_ms + 1), wall=wall)
        node.clock = clock
        try:
            seeded[DEMO_CLOCK] = clock
            _seed(platform, seeded)
            clock.finish()
        finally:
            node.clock = wall
    summary = DemoSummary(
        users=seeded["identity"]["users"],
        payments=seeded["payments"],
        documents=seeded["notary"],
    )
    log.info(
        "demo data: %d users, %d accounts, %d transfers, %d documents",
        len(summary.users),
        len(summary.payments.accounts),
        len(summary.payments.transfers),
        len(summary.documents),
    )
    return summary


def _seed(platform: Platform, seeded: dict[str, Any]) -> None:
    for module in MODULES:
        if module.demo is not None:
            seeded[module.name] = module.demo(platform, seeded)
