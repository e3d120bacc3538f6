"""Demo data for `make run`: people who can sign in, their money, and anchored documents.

Each module seeds its own (its manifest's `demo`), in manifest order: identity first (the users
and their DIDs), then payments (accounts owned by those DIDs, funding, fees, FX quotes and a few
payments including a cross-border one), then the notary.  Every step is idempotent, so seeding
twice changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from zhijin.node.modules import MODULES
from zhijin.node.runtime import Platform
from zhijin.payments.demo import DemoPayments

__all__ = ["DemoSummary", "seed_demo"]

log = logging.getLogger("zhijin.demo")


@dataclass(frozen=True, slots=True)
class DemoSummary:
    users: dict[str, str]  # name -> DID
    payments: DemoPayments
    documents: tuple[str, ...]  # SHA-256 of each anchored document


def seed_demo(platform: Platform) -> DemoSummary:
    """Run each module's demo seed in manifest order, handing each the results before it."""
    seeded: dict[str, Any] = {}
    for module in MODULES:
        if module.demo is not None:
            seeded[module.name] = module.demo(platform, seeded)
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
