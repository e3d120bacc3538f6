"""What payments needs of the node host beyond the plumbing's `Host`: identity's services.

The root's host satisfies it structurally; routes receive it through `PaymentsHostDep`.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from zhijin.identity.service import IdentityService
from zhijin.platform.deps import get_platform
from zhijin.platform.host import Host

__all__ = ["PaymentsHost", "PaymentsHostDep"]


class PaymentsHost(Host, Protocol):
    """The host, with identity's service (the vault, the access audit log, authorisation)."""

    identity: IdentityService


PaymentsHostDep = Annotated[PaymentsHost, Depends(get_platform)]
