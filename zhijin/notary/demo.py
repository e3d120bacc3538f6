"""Demo documents for `make run`: a few anchored records a visitor can look up and verify."""

from __future__ import annotations

import hashlib
from typing import Any

from zhijin.notary import service
from zhijin.platform.gateway import MemberGateway

__all__ = ["DEMO_DOCUMENTS", "seed_notary_demo"]

DEMO_DOCUMENTS = (
    (
        "Supply contract Yangtze Motors / Jiangsu Parts 2026-118",
        b"demo: supply contract 2026-118\n",
    ),
    ("Invoice JS-2026-0457 (CNY 1,280,000.00)", b"demo: invoice JS-2026-0457\n"),
    ("Warehouse receipt WR-88123", b"demo: warehouse receipt WR-88123\n"),
)


def seed_notary_demo(host: Any) -> tuple[str, ...]:
    """Anchor the demo documents through the host's member key; returns their SHA-256.
    Anchoring an already anchored hash changes nothing, so seeding twice is harmless."""
    gateway = MemberGateway(host.node)
    hashes = []
    for title, content in DEMO_DOCUMENTS:
        digest = hashlib.sha256(content).hexdigest()
        service.anchor(gateway, document_hash=digest, title=title)
        hashes.append(digest)
    return tuple(hashes)
