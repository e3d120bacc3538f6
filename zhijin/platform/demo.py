"""Demo data for `make run`: people who can sign in, their money, and anchored documents.

Order matters: identity first (the users and their DIDs), then payments (accounts owned by those
DIDs, funding, fees, FX quotes and a few payments including a cross-border one), then the
notary.  Every step is idempotent, so seeding twice changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from zhijin.identity.demo import DEMO_USERS, seed_identity_demo
from zhijin.notary import service as notary
from zhijin.payments.demo import DemoPayments, seed_payments_demo
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.runtime import Platform

__all__ = ["DEMO_DOCUMENTS", "DemoSummary", "seed_demo"]

log = logging.getLogger("zhijin.demo")

DEMO_DOCUMENTS = (
    (
        "Supply contract Yangtze Motors / Jiangsu Parts 2026-118",
        b"demo: supply contract 2026-118\n",
    ),
    ("Invoice JS-2026-0457 (CNY 1,280,000.00)", b"demo: invoice JS-2026-0457\n"),
    ("Warehouse receipt WR-88123", b"demo: warehouse receipt WR-88123\n"),
)
# The demo users who hold money of their own; the SME owner (last) also runs the merchant.
END_USER_KINDS = ("individual", "sme_owner")


@dataclass(frozen=True, slots=True)
class DemoSummary:
    users: dict[str, str]  # name -> DID
    payments: DemoPayments
    documents: tuple[str, ...]  # SHA-256 of each anchored document


def seed_demo(platform: Platform) -> DemoSummary:
    users = seed_identity_demo(platform)
    # Accounts are named after the login's family name: demo-wang-cny, demo-zhaoshop-cny.
    end_users = {
        login.split(".", 1)[0]: users[name]
        for name, login, kind in DEMO_USERS
        if kind in END_USER_KINDS
    }
    payments = seed_payments_demo(platform, end_users)
    gateway = MemberGateway(platform.node)
    hashes = []
    for title, content in DEMO_DOCUMENTS:
        digest = hashlib.sha256(content).hexdigest()
        notary.anchor(gateway, document_hash=digest, title=title)
        hashes.append(digest)
    summary = DemoSummary(users=users, payments=payments, documents=tuple(hashes))
    log.info(
        "demo data: %d users, %d accounts, %d transfers, %d documents",
        len(users),
        len(payments.accounts),
        len(payments.transfers),
        len(hashes),
    )
    return summary
