"""What AML needs from the rest of the platform: small protocols the composition root's host
satisfies (Cosmos SDK's expected keepers).  AML never reads another domain's tables.

- `FilingAnchors`: the notary, where a filed report's SHA-256 is anchored on chain (the same
  port identity's audit anchoring uses; the root's host carries `zhijin.notary.NotaryService`
  as `notary_anchors`).
- the payments stream itself is read from committed blocks (facts.py), not through a port.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from fastapi import Depends

from zhijin.platform.deps import get_platform
from zhijin.platform.host import Host

__all__ = ["AmlHost", "AmlHostDep", "FilingAnchors"]


class FilingAnchors(Protocol):
    def anchor(self, *, document_hash: str, title: str, timeout_s: float) -> int:
        """Anchor a hash in this member's name; the block height that holds it.  Raises
        ContractError when the contract refuses it."""
        ...

    def anchor_record(self, document_hash: str) -> Mapping[str, Any] | None:
        """The anchor record of a hash as the chain holds it, or None."""
        ...


class AmlHost(Host, Protocol):
    notary_anchors: FilingAnchors


AmlHostDep = Annotated[AmlHost, Depends(get_platform)]
