"""Demo data for `make run`: a few anchored documents, so the explorer has something to show."""

from __future__ import annotations

import hashlib
import logging

from zhijin.notary import service as notary
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.runtime import Platform

__all__ = ["DEMO_DOCUMENTS", "seed_demo"]

log = logging.getLogger("zhijin.demo")

DEMO_DOCUMENTS = (
    (
        "Supply contract Yangtze Motors / Jiangsu Parts 2026-118",
        b"demo: supply contract 2026-118\n",
    ),
    ("Invoice JS-2026-0457 (CNY 1,280,000.00)", b"demo: invoice JS-2026-0457\n"),
    ("Warehouse receipt WR-88123", b"demo: warehouse receipt WR-88123\n"),
)


def seed_demo(platform: Platform) -> list[str]:
    """Anchor the demo documents (idempotent: anchoring again returns the first record)."""
    gateway = MemberGateway(platform.node)
    hashes = []
    for title, content in DEMO_DOCUMENTS:
        digest = hashlib.sha256(content).hexdigest()
        notary.anchor(gateway, document_hash=digest, title=title)
        hashes.append(digest)
    log.info("demo data: %d documents anchored", len(hashes))
    return hashes
